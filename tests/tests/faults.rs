//! Faults a clinic's box will meet — a full disk during a recording and during signing, a
//! database locked by another process or on a read-only mount, the wall clock jumping — each
//! gets a clear error and loses nothing committed. (A worker killed mid-job and a model file
//! corrupted after install: `workers.rs`; a daemon killed at any moment: `crash_campaign.rs`.)

use std::time::{Duration, Instant};

use tests::web::{Client, Recorder, ReviewServer};
use tests::{Appliance, DIALOGUE, SmallDisk, text, visit_wav};

/// One-second chunks of the synthesized visit.
fn seconds_of_visit(n: usize) -> Vec<Vec<i16>> {
    let pcm = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    pcm.chunks(16_000).take(n).map(<[i16]>::to_vec).collect()
}

fn plain_http(app: &Appliance) {
    app.set_config("\ntls = true", "\ntls = false");
}

fn state(app: &Appliance, id: &str) -> String {
    app.open_raw()
        .query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn stored_chunks(app: &Appliance, id: &str) -> u32 {
    app.open_raw()
        .query_row("SELECT count(*) FROM audio_chunks WHERE encounter_id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
}

fn wait_for_state(app: &Appliance, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while state(app, id) != want {
        assert!(
            Instant::now() < deadline,
            "{id} never reached {want}: {}",
            state(app, id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Leaves the write-ahead log empty, so the next write needs new disk space (a WAL that grew
/// earlier would otherwise absorb a few more commits on a full disk).
fn empty_the_wal(app: &Appliance) {
    let conn = app.open_raw();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // (busy, frames in the log, frames checkpointed): the daemon's readers can hold it up.
        let (busy, frames): (i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        if busy == 0 && frames == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the write-ahead log never emptied");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_visit(client: &mut Client, csrf: &str) -> String {
    let r = client.post(
        "/record",
        &[
            ("csrf", csrf),
            ("label", "Room 2"),
            ("template", "soap"),
            ("physician", ""),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    r.location.unwrap().trim_start_matches("/record/").to_string()
}

#[test]
fn a_full_disk_while_recording_and_while_signing_is_told_and_loses_nothing() {
    let disk = SmallDisk::mount(48);
    let app = Appliance::new_in(disk.path());
    plain_http(&app);
    let password = app.add_user("dr_full", "physician");
    let server = ReviewServer::daemon(&app, &[("SCRIBE_FINALIZE_AFTER", "10m")]);
    let mut client = Client::new(&server.url);
    client.login("dr_full", &password);
    let csrf = client.csrf();
    let id = open_visit(&mut client, &csrf);
    let audio = seconds_of_visit(20);

    // Recording: the first seconds are stored; then the disk fills up.
    let mut recorder = Recorder::open(&client, &csrf, &id).unwrap();
    for seq in 0..4u32 {
        assert_eq!(recorder.send(seq, &audio[seq as usize]).unwrap()["ack"], seq);
    }
    empty_the_wal(&app);
    disk.fill();
    let mut acked = 4u32;
    let refusal = loop {
        let r = recorder.send(acked, &audio[acked as usize]).unwrap();
        if r["ack"] == acked {
            acked += 1;
            assert!(acked < 12, "a full disk never refused a chunk");
            continue;
        }
        break r["error"].as_str().unwrap_or_default().to_string();
    };
    assert!(
        refusal.contains("disk holding the database is full") && refusal.contains("Keep this page open"),
        "{refusal}"
    );
    assert_eq!(stored_chunks(&app, &id), acked, "every acknowledged second is stored");

    // IT frees space; the page reconnects and sends what was not acknowledged.
    disk.free();
    let mut recorder = Recorder::open(&client, &csrf, &id).unwrap();
    for seq in acked..audio.len() as u32 {
        assert_eq!(recorder.send(seq, &audio[seq as usize]).unwrap()["ack"], seq);
    }
    assert_eq!(recorder.stop().unwrap()["done"], true);
    wait_for_state(&app, &id, "awaiting_review");

    // Signing on a full disk: refused with the reason, the draft untouched, nothing signed.
    let (_, version) = client.acknowledge_flags(&id);
    let sign = |client: &mut Client| {
        client.post(
            &format!("/encounters/{id}/sign"),
            &[("csrf", &csrf), ("version", &version), ("password", &password)],
        )
    };
    empty_the_wal(&app);
    disk.fill();
    let r = sign(&mut client);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        r.body.contains("Storage unavailable") && r.body.contains("disk holding the database is full"),
        "{}",
        r.body
    );
    assert_eq!(state(&app, &id), "awaiting_review");
    disk.free();
    let r = sign(&mut client);
    assert_eq!(r.status, 303, "{r:?}");
    drop(server);

    assert_eq!(state(&app, &id), "signed");
    assert_eq!(app.show(&id)["audio_ms"], 20_000, "all twenty seconds, once each");
    for check in [vec!["verify", id.as_str()], vec!["db", "check"]] {
        let out = app.run(&check, None);
        assert!(out.status.success(), "scribe {check:?}: {}", text(&out));
    }
}

#[test]
fn a_locked_or_read_only_database_is_a_clear_error_and_loses_nothing() {
    let disk = SmallDisk::mount(64);
    let app = Appliance::new_in(disk.path());
    let (id, _) = app.signed_typed_visit(DIALOGUE);
    let dialogue = app.home().join("second-visit.txt");
    std::fs::write(&dialogue, DIALOGUE).unwrap();
    let ingest = || app.ingest(&["--transcript", dialogue.to_str().unwrap()]).0;

    // Another process holds the write lock longer than the store waits (10 s).
    let holder = app.open_raw();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let out = ingest();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("locked by another process") && text(&out).contains("nothing was written"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "it waited for the lock first"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(app.encounter_count(), 1);

    // The mount goes read-only: writing and even reading (every read is audited) are refused.
    disk.read_only(true);
    let out = ingest();
    assert!(!out.status.success());
    assert!(text(&out).contains("read-only"), "{}", text(&out));
    let out = app.run(&["verify", &id], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("read-only"), "{}", text(&out));

    // Back to read-write: everything is as it was, and works.
    disk.read_only(false);
    assert_eq!(app.encounter_count(), 1);
    for check in [vec!["verify", id.as_str()], vec!["db", "check"]] {
        let out = app.run(&check, None);
        assert!(out.status.success(), "scribe {check:?}: {}", text(&out));
    }
    let out = ingest();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.encounter_count(), 2);
}

/// The daemon's wall clock steps three hours forward in the middle of a recording, then two days
/// back before the note is signed (libfaketime; the monotonic clock runs on, as with an NTP
/// step). The recording is not taken for abandoned, the note signs, and the audit chain holds.
#[test]
fn a_wall_clock_jump_neither_cuts_a_recording_nor_breaks_signing() {
    let libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(libfaketime).exists(),
        "{libfaketime} is missing: apt-get install faketime (cargo xtask test installs it)"
    );
    let app = Appliance::new();
    plain_http(&app);
    let password = app.add_user("dr_clock", "physician");
    let clock = app.home().join("faketime");
    std::fs::write(&clock, "+0").unwrap();
    let server = ReviewServer::daemon(
        &app,
        &[
            ("LD_PRELOAD", libfaketime),
            ("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap()),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            // Short, so a recording wrongly taken for abandoned would be finished mid-test.
            ("SCRIBE_FINALIZE_AFTER", "3s"),
        ],
    );
    let mut client = Client::new(&server.url);
    client.login("dr_clock", &password);
    let csrf = client.csrf();
    let id = open_visit(&mut client, &csrf);
    let audio = seconds_of_visit(12);

    let mut recorder = Recorder::open(&client, &csrf, &id).unwrap();
    for (seq, chunk) in audio.iter().enumerate() {
        if seq == 4 {
            std::fs::write(&clock, "+3h").unwrap();
            // A hiccup on the tablet's Wi-Fi, well under the 3 s a recorder may be silent.
            std::thread::sleep(Duration::from_millis(1500));
        }
        let r = recorder.send(seq as u32, chunk).unwrap();
        assert_eq!(r["ack"], seq, "chunk {seq} after the clock jumped: {r}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(recorder.stop().unwrap()["done"], true);
    wait_for_state(&app, &id, "awaiting_review");

    std::fs::write(&clock, "-2d").unwrap();
    let (_, version) = client.acknowledge_flags(&id);
    let r = client.post(
        &format!("/encounters/{id}/sign"),
        &[("csrf", &csrf), ("version", &version), ("password", &password)],
    );
    assert_eq!(r.status, 303, "{r:?}");
    drop(server);

    let show = app.show(&id);
    assert_eq!(show["state"], "signed");
    assert_eq!(show["audio_ms"], 12_000, "one recording, every second: {show}");
    assert_eq!(app.encounter_count(), 1);
    for check in [vec!["verify", id.as_str()], vec!["db", "check"]] {
        let out = app.run(&check, None);
        assert!(out.status.success(), "scribe {check:?}: {}", text(&out));
    }
}
