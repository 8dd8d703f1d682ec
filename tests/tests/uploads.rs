//! Uploaded recordings, from the CLI and from the review app's upload form: every format a phone,
//! a dictation recorder or a browser makes is accepted and transcribed; a file that is not audio,
//! is cut off, or is over the configured size or length is refused with its reason, and nothing
//! is stored.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::web::{Client, ReviewServer};
use tests::{Appliance, VISIT_KEY_WORDS, text, visit_wav};

/// The synthesized visit re-encoded by ffmpeg into `dir/visit.EXT`.
fn encoded(dir: &Path, ext: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("visit.{ext}"));
    let result = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(visit_wav())
        .args(args)
        .arg(&out)
        .output()
        .expect("run ffmpeg (cargo xtask test installs it)");
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    out
}

fn upload(client: &mut Client, csrf: &str, filename: &str, bytes: &[u8]) -> tests::web::Reply {
    client.post_file(
        "/upload",
        &[
            ("csrf", csrf),
            ("label", "Dictation, room 1"),
            ("template", "soap"),
            ("physician", ""),
        ],
        ("recording", filename, bytes),
    )
}

#[test]
fn an_uploaded_m4a_is_transcribed_and_drafted_and_cli_ingest_takes_every_format() {
    let app = Appliance::new();
    app.add_user("nina", "clinician");
    let dir = app.home().join("inputs");
    std::fs::create_dir(&dir).unwrap();
    let m4a = encoded(&dir, "m4a", &["-c:a", "aac", "-b:a", "48k"]);

    let server = ReviewServer::daemon(&app, &[]);
    let cert = std::fs::read(app.home().join("tls/ca.pem")).unwrap();
    let mut nina = Client::trusting(&server.url.replace("127.0.0.1", "localhost"), &cert);
    nina.login("nina", "correct horse nina");
    assert!(nina.get("/record").body.contains("enctype=\"multipart/form-data\""));
    let csrf = nina.csrf();
    let r = upload(&mut nina, &csrf, "visit.m4a", &std::fs::read(&m4a).unwrap());
    assert_eq!(r.status, 303, "{r:?}");
    let id = r
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/encounters/"))
        .expect("redirected to the new encounter")
        .to_string();
    let show = app.wait_until_settled(&id, Duration::from_secs(600));
    assert_eq!(show["state"], "awaiting_review", "{show}");
    assert_eq!(show["created_by"], "nina", "{show}");
    let transcript = tests::transcript_lowercase(&show);
    let heard = VISIT_KEY_WORDS.iter().filter(|w| transcript.contains(*w)).count();
    assert!(heard + 1 >= VISIT_KEY_WORDS.len(), "{heard} key words in {transcript}");
    drop(server);

    // The CLI stores each format with the visit's full length (the daemon is gone, so nothing
    // else runs: --no-wait leaves them for the next daemon).
    let wav_ms = app.show(&id)["audio_ms"].as_u64().unwrap();
    for (ext, args) in [
        ("flac", &[][..]),
        ("mp3", &["-b:a", "64k"][..]),
        ("ogg", &["-c:a", "libvorbis"][..]),
        ("opus", &["-c:a", "libopus"][..]),
        ("webm", &["-c:a", "libopus"][..]),
    ] {
        let file = encoded(&dir, ext, args);
        let (out, id) = app.ingest(&["--no-wait", file.to_str().unwrap()]);
        assert!(out.status.success(), "{ext}: {}", text(&out));
        let ms = app.show(&id.unwrap())["audio_ms"].as_u64().unwrap();
        assert!(
            ms.abs_diff(wav_ms) < 150,
            "{ext}: {ms} ms stored, the visit is {wav_ms} ms"
        );
    }
}

/// A 16-bit PCM WAV declaring `rate` Hz and `channels` channels, with `data_bytes` of silence.
fn wav_header(rate: u32, channels: u16, data_bytes: u32) -> Vec<u8> {
    let block = channels * 2;
    let mut w = b"RIFF".to_vec();
    w.extend((36 + data_bytes).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(16u32.to_le_bytes());
    w.extend(1u16.to_le_bytes()); // PCM
    w.extend(channels.to_le_bytes());
    w.extend(rate.to_le_bytes());
    w.extend((rate * u32::from(block)).to_le_bytes());
    w.extend(block.to_le_bytes());
    w.extend(16u16.to_le_bytes());
    w.extend(b"data");
    w.extend(data_bytes.to_le_bytes());
    w.resize(w.len() + data_bytes as usize, 0);
    w
}

#[test]
fn bad_uploads_are_refused_with_their_reason_and_store_nothing() {
    let app = Appliance::new();
    app.add_user("nina", "clinician");
    app.add_user("ivan", "it_admin");
    app.set_config("max_upload_mb = 512", "max_upload_mb = 1");
    app.set_config("max_upload_minutes = 120", "max_upload_minutes = 1");
    let dir = app.home().join("inputs");
    std::fs::create_dir(&dir).unwrap();
    let mp3 = std::fs::read(encoded(&dir, "mp3", &["-b:a", "32k"])).unwrap();
    let m4a = std::fs::read(encoded(&dir, "m4a", &["-c:a", "aac", "-b:a", "32k"])).unwrap();
    // 70 s of visit and quiet: a small file over the one-minute limit.
    let long = dir.join("long.flac");
    let sox = Command::new("sox")
        .arg(visit_wav())
        .arg(&long)
        .args(["pad", "0", "60"])
        .output()
        .unwrap();
    assert!(sox.status.success(), "{}", String::from_utf8_lossy(&sox.stderr));
    let long = std::fs::read(&long).unwrap();
    assert!(long.len() < 1024 * 1024, "{}", long.len());
    let big = vec![0u8; 2 * 1024 * 1024];
    // Upload bombs. Ten seconds of silence, 8 channels at 192 kHz: 15 KB of FLAC that decodes
    // to more samples than 61 s of 48 kHz stereo (the budget under a one-minute limit).
    let bomb = dir.join("bomb.flac");
    let sox = Command::new("sox")
        .args(["-D", "-n", "-r", "192000", "-c", "8", "-b", "16"])
        .arg(&bomb)
        .args(["trim", "0", "10"])
        .output()
        .unwrap();
    assert!(sox.status.success(), "{}", String::from_utf8_lossy(&sox.stderr));
    let bomb = std::fs::read(&bomb).unwrap();
    // And a WAV header declaring 8 channels at 655,350 Hz (as the FLAC that once took the server
    // down with an 8.6 GB allocation did), with a moment of audio.
    let absurd = wav_header(655_350, 8, 8 * 2 * 100);

    let server = ReviewServer::plain(&app, &[]);
    let mut nina = Client::new(&server.url);
    nina.login("nina", "correct horse nina");
    let csrf = nina.csrf();
    let cases: [(&str, &[u8], u16, &str); 7] = [
        (
            "notes.pdf",
            b"%PDF-1.7 a referral letter",
            422,
            "not a recording: a PDF document",
        ),
        (
            "notes.txt",
            b"Subjective: cough for three days",
            422,
            "not a recording: text",
        ),
        ("cut.mp3", &mp3[..mp3.len() / 2], 422, "incomplete"),
        ("cut.m4a", &m4a[..m4a.len() / 2], 422, "damaged or cut off"),
        ("long.flac", &long, 413, "the limit is 60 s"),
        (
            "bomb.flac",
            &bomb,
            413,
            "record at a lower sample rate or with fewer channels",
        ),
        ("absurd.wav", &absurd, 422, "at most 8 channels and 192000 Hz"),
    ];
    for (name, bytes, status, reason) in cases {
        let r = upload(&mut nina, &csrf, name, bytes);
        assert_eq!(r.status, status, "{name}: {r:?}");
        assert!(r.body.contains(reason), "{name}: {}", r.body);
    }
    // Over the size limit the appliance answers 413 from the headers, without reading the body;
    // the client may still be sending and then sees the connection closed instead.
    let fields = [
        ("csrf", csrf.as_str()),
        ("label", "x"),
        ("template", "soap"),
        ("physician", ""),
    ];
    match nina.try_post_file("/upload", &fields, ("recording", "big.wav", &big)) {
        Ok(r) => assert_eq!(r.status, 413, "{r:?}"),
        Err(e) => {
            let e = e.to_string().to_lowercase();
            assert!(
                ["pipe", "reset", "closed", "aborted"].iter().any(|w| e.contains(w)),
                "{e}"
            );
        }
    }
    // A form without the session's token, or from someone who may not record, is refused too.
    let r = upload(&mut nina, "forged", "visit.mp3", &mp3);
    assert_eq!(r.status, 403, "{r:?}");
    let mut ivan = Client::new(&server.url);
    ivan.login("ivan", "correct horse ivan");
    let ivan_csrf = ivan.csrf();
    let r = upload(&mut ivan, &ivan_csrf, "visit.mp3", &mp3);
    assert_eq!(r.status, 403, "{r:?}");
    drop(server);

    // The CLI says the same and stores nothing either.
    let cut = dir.join("cut.mp3");
    std::fs::write(&cut, &mp3[..mp3.len() / 2]).unwrap();
    let (out, _) = app.ingest(&[cut.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("incomplete"), "{}", text(&out));
    assert_eq!(app.encounter_count(), 0, "a refused upload leaves nothing behind");
}
