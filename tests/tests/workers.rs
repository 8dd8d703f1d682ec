//! Engine workers are separate processes: a crash costs one job, never the daemon; a tampered
//! model is refused by hash before it is loaded.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tests::{Appliance, text, visit_wav};

/// A running `scribe daemon`, stopped (SIGTERM) when dropped.
struct Daemon(Child);

impl Daemon {
    fn start(app: &Appliance) -> Daemon {
        let mut child = app
            .command(&["daemon"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("daemon running"), "daemon did not start: {line:?}");
        Daemon(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Children of `parent` whose executable name starts with `name` (Linux /proc).
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split at the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && name.starts_with(comm) {
            found.push(pid);
        }
    }
    found
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LONG_DIALOGUE: &str = "[doctor] good afternoon , what brings you in today ?\n\
[patient] i have had headaches almost every day for the last three weeks , mostly in the morning .\n\
[doctor] any nausea , vision changes , or weakness ?\n\
[patient] some nausea , no vision changes . i have been taking ibuprofen most days .\n\
[doctor] how much ibuprofen ?\n\
[patient] about six hundred milligrams , two or three times a day .\n\
[doctor] your blood pressure today is one fifty over ninety five , which is high .\n\
[doctor] i think these are medication overuse headaches on top of high blood pressure .\n\
[doctor] stop the ibuprofen , start amlodipine five milligrams daily , and come back in two weeks .\n";

#[test]
fn a_killed_drafting_worker_fails_its_job_and_the_next_job_succeeds() {
    let app = Appliance::new();
    let dialogue = app.home().join("long.txt");
    std::fs::write(&dialogue, LONG_DIALOGUE).unwrap();
    let daemon = Daemon::start(&app);

    let (out, id) = app.ingest(&["--no-wait", "--transcript", dialogue.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();
    // The daemon starts the drafting worker for this job; kill it (as a C++ abort would) mid-job.
    let worker = wait_for("the drafting worker", Duration::from_secs(60), || {
        children_named(daemon.pid(), "scribe-draft-worker").into_iter().next()
    });
    // The worker runs in a network namespace of its own: no interface but a loopback that is down.
    let netns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    wait_for(
        "the worker to leave the daemon's network namespace",
        Duration::from_secs(5),
        || (netns(worker) != netns(daemon.pid())).then_some(()),
    );
    let links = std::fs::read_to_string(format!("/proc/{worker}/net/dev")).unwrap();
    let interfaces: Vec<&str> = links
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{links}");

    // SAFETY: signalling a process this test's daemon started.
    unsafe { libc::kill(worker as i32, libc::SIGABRT) };

    let show = wait_for("the job to settle", Duration::from_secs(120), || {
        let s = app.show(&id);
        (s["state"] != "drafting").then_some(s)
    });
    assert_eq!(show["state"], "failed", "{show}");
    let reason = show["failure_reason"].as_str().unwrap();
    assert!(
        reason.contains("drafting worker crashed") && reason.contains("SIGABRT"),
        "{reason}"
    );

    // The daemon lives on, starts a fresh worker, and the next visit is drafted.
    let (out, id) = app.ingest(&["--transcript", dialogue.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.show(&id.unwrap())["state"], "awaiting_review");
    let fresh = children_named(daemon.pid(), "scribe-draft-worker");
    assert!(
        !fresh.is_empty() && !fresh.contains(&worker),
        "a new worker process serves the next job"
    );
}

#[test]
fn a_corrupted_model_file_is_refused_by_hash() {
    let mut app = Appliance::new();
    // A private copy of the model store with one byte of the whisper model flipped.
    let models = app.home().join("models");
    std::fs::create_dir(&models).unwrap();
    for entry in std::fs::read_dir(&app.models).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), models.join(entry.file_name())).unwrap();
        }
    }
    let whisper = models.join("whisper-tiny.en.ggml.bin");
    let mut bytes = std::fs::read(&whisper).unwrap();
    bytes[1_000_000] ^= 0x40;
    std::fs::write(&whisper, bytes).unwrap();
    app.models = models;

    let out = app.run(&["models", "verify"], None);
    assert!(!out.status.success() && text(&out).contains("FAILED"), "{}", text(&out));

    let (out, id) = app.ingest(&[visit_wav().to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let show = app.show(&id.unwrap());
    assert_eq!(show["state"], "failed");
    let reason = show["failure_reason"].as_str().unwrap();
    assert!(
        reason.contains("SHA-256") && reason.contains("refusing to load"),
        "{reason}"
    );
    assert!(
        show["audio_ms"].as_u64().unwrap() > 10_000,
        "the recording itself is kept: {show}"
    );
}
