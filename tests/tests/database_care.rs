//! Backups, restores, key rotation and retention on real SQLCipher files: a backup taken while
//! the daemon runs, the database wiped, the backup restored — every signed note still verifies; a
//! tampered backup is refused and changes nothing; the key is rotated and everything still opens;
//! a signed visit's audio is deleted when the policy says, audited, and nothing else goes.

use tests::web::{Client, ReviewServer};
use tests::{Appliance, text, visit_wav};

/// An appliance with one signed note; returns its id.
fn signed_visit(app: &Appliance) -> String {
    app.signed_typed_visit(
        "[doctor] what brings you in ?\n[patient] a sore throat since monday .\n[doctor] it looks viral , rest and fluids .\n",
    )
    .0
}

fn ok(app: &Appliance, args: &[&str]) -> String {
    let out = app.run(args, None);
    assert!(out.status.success(), "scribe {args:?}: {}", text(&out));
    text(&out)
}

#[test]
fn backup_while_running_wipe_restore_and_every_signature_still_verifies() {
    let app = Appliance::new();
    let id = signed_visit(&app);
    let backup = app.home().join("backup-1.db");

    // Online: the daemon keeps the database open (and writing) while the backup is taken.
    let mut daemon = app.spawn_pipeline_daemon(&[]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let said = ok(&app, &["db", "backup", backup.to_str().unwrap()]);
    assert!(said.contains("1 signed notes"), "{said}");
    let refused = app.run(&["db", "restore", backup.to_str().unwrap()], None);
    assert!(
        !refused.status.success() && text(&refused).contains("stop it"),
        "{}",
        text(&refused)
    );
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let raw = std::fs::read(&backup).unwrap();
    assert!(!raw.starts_with(b"SQLite format 3"), "the backup is encrypted");
    assert!(!raw.windows(11).any(|w| w == b"sore throat"), "no PHI in the clear");

    // The box loses its database.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", app.db().display()));
    }
    assert!(!app.run(&["show", &id], None).status.success());

    // A tampered backup is refused and leaves nothing behind.
    let tampered = app.home().join("tampered.db");
    let mut bytes = raw.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&tampered, bytes).unwrap();
    let out = app.run(&["db", "restore", tampered.to_str().unwrap()], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!app.db().exists(), "a refused restore puts nothing in place");

    let said = ok(&app, &["db", "restore", backup.to_str().unwrap()]);
    assert!(said.contains("1 signed notes verified"), "{said}");
    let verify = ok(&app, &["verify", &id]);
    assert!(verify.contains("OK"), "{verify}");
    assert!(ok(&app, &["audit", "verify"]).contains("OK"));
    assert!(ok(&app, &["db", "check"]).contains("signatures: 1 signed notes, 0 failing"));
}

#[test]
fn key_rotation_reencrypts_and_everything_still_opens() {
    let app = Appliance::new();
    let id = signed_visit(&app);
    let old_key = std::fs::read_to_string(app.key()).unwrap();
    let said = ok(&app, &["db", "rekey"]);
    assert!(said.contains("re-encrypted"), "{said}");
    assert_ne!(std::fs::read_to_string(app.key()).unwrap(), old_key);
    assert!(ok(&app, &["verify", &id]).contains("OK"));
    assert!(ok(&app, &["audit", "verify"]).contains("OK"));

    // The old key opens nothing any more.
    std::fs::write(app.key(), &old_key).unwrap();
    let out = app.run(&["show", &id], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("key"), "{}", text(&out));
}

#[test]
fn retention_deletes_a_signed_visits_audio_audited_and_keeps_the_rest() {
    let app = Appliance::new();
    app.set_config("audio_after_signing = \"30days\"", "audio_after_signing = \"0s\"");
    let wav = visit_wav();
    let (out, signed) = app.ingest(&[wav.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let (out, unsigned) = app.ingest(&[wav.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let (signed, unsigned) = (signed.unwrap(), unsigned.unwrap());
    let password = app.add_user("dr_house", "physician");
    let out = app.run(
        &["sign", &signed, "--user", "dr_house", "--acknowledge-flags"],
        Some(&format!("{password}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));

    let said = ok(&app, &["db", "retention"]);
    assert!(said.contains("audio of 1 visits deleted"), "{said}");
    let conn = app.open_raw();
    let chunks = |id: &str| -> i64 {
        conn.query_row("SELECT count(*) FROM audio_chunks WHERE encounter_id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(chunks(&signed), 0);
    assert!(chunks(&unsigned) > 0, "an unsigned visit keeps its audio");
    let purges: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_events WHERE action = 'audio.purge' AND encounter_id = ?1 AND purpose LIKE 'retention:%'",
            [&signed],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(purges, 1);
    drop(conn);
    let show = app.show(&signed);
    assert!(show["audio_purged_at"].is_string(), "{show}");
    assert!(
        !show["transcript"]["segments"].as_array().unwrap().is_empty(),
        "the transcript stays"
    );
    assert!(ok(&app, &["verify", &signed]).contains("OK"));
    assert!(
        ok(&app, &["db", "retention"]).contains("audio of 0 visits"),
        "nothing twice"
    );

    // The review app says so instead of failing to play.
    let server = ReviewServer::plain(&app, &[]);
    let mut doctor = Client::new(&server.url);
    doctor.login("dr_house", &password);
    let page = doctor.get(&format!("/encounters/{signed}"));
    assert!(page.body.contains("deleted under the clinic"), "{}", page.body);
    let r = doctor.get(&format!("/encounters/{signed}/audio?start_ms=0&end_ms=1000"));
    assert_eq!(r.status, 410, "{r:?}");
}

/// IT seals the key with an operator passphrase: a copy of the disk alone no longer opens the
/// database; the passphrase comes from a file or the service's systemd credential; a rotated key
/// stays sealed; unsealing gives the plain file back.
#[test]
fn a_key_sealed_with_a_passphrase_opens_only_with_it() {
    let app = Appliance::new();
    let id = signed_visit(&app);
    let plain_key = std::fs::read_to_string(app.key()).unwrap().trim().to_string();
    let secrets = tempfile::tempdir().unwrap();
    let (right, wrong, short) = (
        secrets.path().join("right"),
        secrets.path().join("wrong"),
        secrets.path().join("short"),
    );
    std::fs::write(&right, "correct horse battery staple\n").unwrap();
    std::fs::write(&wrong, "correct horse battery stable\n").unwrap();
    std::fs::write(&short, "tooshort\n").unwrap();
    let with = |file: &std::path::Path, args: &[&str]| {
        let mut cmd = app.command(args);
        cmd.env("SCRIBE_KEY_PASSPHRASE_FILE", file);
        cmd.output().unwrap()
    };

    let out = app.run(&["db", "seal-key", "--passphrase-file", short.to_str().unwrap()], None);
    assert!(
        !out.status.success() && text(&out).contains("at least 12 characters"),
        "{}",
        text(&out)
    );
    ok(&app, &["db", "seal-key", "--passphrase-file", right.to_str().unwrap()]);
    let sealed = std::fs::read_to_string(app.key()).unwrap();
    assert!(sealed.starts_with("scribe-key-sealed-v1"), "{sealed}");
    assert!(
        !sealed.contains(&plain_key),
        "the key itself is not in the file any more"
    );

    // Without the passphrase, with a wrong one: clear errors, nothing opened.
    let out = app.run(&["verify", &id], None);
    assert!(
        !out.status.success() && text(&out).contains("locked with an operator passphrase"),
        "{}",
        text(&out)
    );
    let out = with(&wrong, &["verify", &id]);
    assert!(
        !out.status.success() && text(&out).contains("wrong passphrase"),
        "{}",
        text(&out)
    );
    let out = with(&right, &["verify", &id]);
    assert!(out.status.success(), "{}", text(&out));
    // As systemd hands it over: a credential file in $CREDENTIALS_DIRECTORY.
    let credentials = tempfile::tempdir().unwrap();
    std::fs::copy(&right, credentials.path().join("scribe-key-passphrase")).unwrap();
    let out = app
        .command(&["db", "check"])
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Rotation keeps it sealed, with the same passphrase.
    let out = with(&right, &["db", "rekey"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        std::fs::read_to_string(app.key())
            .unwrap()
            .starts_with("scribe-key-sealed-v1")
    );
    assert!(!with(&wrong, &["verify", &id]).status.success());
    let out = with(&right, &["verify", &id]);
    assert!(out.status.success(), "{}", text(&out));

    // Unsealed: the plain key file again, opening without a passphrase; both changes audited.
    let out = with(&right, &["db", "unseal-key"]);
    assert!(out.status.success(), "{}", text(&out));
    ok(&app, &["verify", &id]);
    let conn = app.open_raw();
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit_events WHERE action LIKE 'key.%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["key.seal", "key.rotate", "key.unseal"]);
}
