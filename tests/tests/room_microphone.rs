//! The room microphone through the real capture path (ALSA via cpal): device listing, the
//! microphone self-test, a recorded visit that is transcribed and drafted, a recording killed with
//! SIGKILL that keeps every committed second, and a box with no such microphone.
//!
//! CI boxes have no sound card, so the "microphone" is an ALSA device defined in a private
//! `~/.asoundrc`: ALSA's `file` plugin over the `null` device, which delivers a synthesized visit
//! as captured audio. Everything from ALSA up is the code that runs on the appliance.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{Appliance, VISIT_KEY_WORDS, text, visit_wav};

/// A HOME whose ALSA configuration has one capture device, `scribetest`, that plays `wav`
/// (looped `repeat` times) as if spoken into it.
struct TestMicrophone {
    home: tempfile::TempDir,
}

impl TestMicrophone {
    fn new(app: &Appliance, wav: &Path, repeat: u32) -> TestMicrophone {
        let home = tempfile::tempdir().unwrap();
        // A first definition with a placeholder file, to ask which format recording will use.
        let raw = home.path().join("mic.raw");
        let write_config = || {
            std::fs::write(
                home.path().join(".asoundrc"),
                format!(
                    "pcm.scribetest {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n \
                     hint {{ show on description \"Scribe test microphone\" }}\n}}\n",
                    raw.display()
                ),
            )
            .unwrap();
        };
        std::fs::write(&raw, []).unwrap();
        write_config();
        let mic = TestMicrophone { home };
        let out = mic.scribe(app, &["devices"]);
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success() && listing.contains("scribetest"), "{}", text(&out));
        // "records as 2 ch, 44100 Hz, f32"
        let format = listing
            .lines()
            .skip_while(|l| !l.starts_with("scribetest"))
            .find_map(|l| l.trim().strip_prefix("records as "))
            .unwrap_or_else(|| panic!("no recording format in:\n{listing}"))
            .to_string();
        let parts: Vec<&str> = format.split(", ").collect();
        let channels = parts[0].trim_end_matches(" ch");
        let rate = parts[1].trim_end_matches(" Hz");
        let (encoding, bits) = match parts[2] {
            "f32" => ("floating-point", "32"),
            "i16" => ("signed-integer", "16"),
            "i32" => ("signed-integer", "32"),
            other => panic!("test microphone format {other} not handled"),
        };
        let mut sox = Command::new("sox");
        sox.arg(wav)
            .args(["-t", "raw", "-r", rate, "-c", channels, "-e", encoding, "-b", bits])
            .arg(&raw);
        if repeat > 1 {
            sox.args(["repeat", &(repeat - 1).to_string()]);
        }
        let out = sox.output().expect("run sox");
        assert!(out.status.success(), "{}", text(&out));
        mic
    }

    fn command(&self, app: &Appliance, args: &[&str]) -> Command {
        let mut cmd = app.command(args);
        cmd.env("HOME", self.home.path());
        cmd
    }

    fn scribe(&self, app: &Appliance, args: &[&str]) -> std::process::Output {
        self.command(app, args).output().expect("run scribe")
    }
}

#[test]
fn a_visit_recorded_from_the_room_microphone_is_transcribed_and_drafted() {
    let app = Appliance::new();
    let mic = TestMicrophone::new(&app, &visit_wav(), 1);

    let test = mic.scribe(&app, &["mic-test", "--device", "scribetest"]);
    let report = String::from_utf8_lossy(&test.stdout);
    assert!(
        report.contains("peak:") && report.contains("clipped samples: 0"),
        "{}",
        text(&test)
    );

    let out = mic.scribe(
        &app,
        &["record", "--room", "scribetest", "--seconds", "31", "--label", "Room 1"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    let show = app.show(&id);
    assert_eq!(show["state"], "awaiting_review", "{show}");
    let audio_ms = show["audio_ms"].as_i64().unwrap();
    assert!(
        (31_000..32_000).contains(&audio_ms),
        "31 s and the part-second in flight at the stop: {audio_ms}"
    );
    let transcript = tests::transcript_lowercase(&show);
    let heard = VISIT_KEY_WORDS.iter().filter(|w| transcript.contains(*w)).count();
    assert!(
        heard * 2 >= VISIT_KEY_WORDS.len(),
        "only {heard} of {VISIT_KEY_WORDS:?} in: {transcript}"
    );
}

#[test]
fn a_recorder_killed_mid_visit_loses_no_committed_second_and_the_daemon_finishes_it() {
    let app = Appliance::new();
    app.set_config("device = \"\"", "device = \"scribetest\"");
    // Ten minutes of visit, so the recorder is still capturing when it is killed.
    let mic = TestMicrophone::new(&app, &visit_wav(), 20);
    let mut recorder = mic
        .command(
            &app,
            &["record", "--room", "scribetest", "--seconds", "600", "--no-wait"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(recorder.stdout.take().unwrap()), &mut line).unwrap();
    let id = line.trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let show = app.show(&id);
        if show["audio_ms"].as_i64().unwrap_or(0) >= 5_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the recording never reached 5 s: {show}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The console shows the recording in progress with its level.
    let console = mic.scribe(&app, &["console", "--once"]);
    let screen = String::from_utf8_lossy(&console.stdout);
    assert!(
        screen.contains(&id) && screen.contains("dBFS") && screen.contains("device: scribetest"),
        "{screen}"
    );
    recorder.kill().unwrap(); // SIGKILL: no chance to finish cleanly
    recorder.wait().unwrap();

    let killed = app.show(&id);
    assert_eq!(killed["state"], "recording", "{killed}");
    let kept_ms = killed["audio_ms"].as_i64().unwrap();
    assert!(
        kept_ms >= 5_000 && kept_ms % 1_000 == 0,
        "whole committed seconds: {kept_ms}"
    );

    // The daemon finds the recording, sees its source is gone, and finishes it with every
    // committed second.
    let mut daemon = app.spawn_pipeline_daemon(&[("SCRIBE_FINALIZE_AFTER", "1s")]);
    let done = app.wait_until_settled(&id, Duration::from_secs(600));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_eq!(done["state"], "awaiting_review", "{done}");
    assert_eq!(
        done["audio_ms"].as_i64().unwrap(),
        kept_ms,
        "audio was lost or invented"
    );
    assert!(!done["transcript"]["segments"].as_array().unwrap().is_empty());
}

#[test]
fn no_such_microphone_is_a_clear_error_and_nothing_is_stored() {
    let app = Appliance::new();
    let empty_home = tempfile::tempdir().unwrap();
    for args in [
        vec!["record", "--room", "Conference Mic", "--seconds", "3"],
        vec!["mic-test", "--device", "Conference Mic"],
    ] {
        let out = app.command(&args).env("HOME", empty_home.path()).output().unwrap();
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no microphone found"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Nothing was stored, and everything else still works.
    let out = app.run(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", text(&out));
    let out = app.run(&["console", "--once"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Queue empty"),
        "{}",
        text(&out)
    );
}

#[test]
fn scribe_stop_ends_a_recording_cleanly_and_queues_it() {
    let app = Appliance::new();
    let mic = TestMicrophone::new(&app, &visit_wav(), 20);
    let mut recorder = mic
        .command(&app, &["record", "--room", "scribetest", "--no-wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(recorder.stdout.take().unwrap()), &mut line).unwrap();
    let id = line.trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.show(&id)["audio_ms"].as_i64().unwrap_or(0) < 3_000 {
        assert!(Instant::now() < deadline, "the recording never reached 3 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = app.run(&["stop", &id], None);
    assert!(out.status.success(), "{}", text(&out));
    let status = recorder.wait().unwrap();
    assert!(status.success(), "the recorder did not exit cleanly: {status}");
    let show = app.show(&id);
    assert_eq!(show["state"], "transcribing", "{show}");
    // Its pidfile is gone, so a second stop says there is nothing to stop.
    let again = app.run(&["stop", &id], None);
    assert!(
        !again.status.success() && text(&again).contains("no recorder is running"),
        "{}",
        text(&again)
    );
}
