//! The encrypted store on disk: wrong keys, tampering, and bad input that must leave no trace.

use std::os::unix::fs::PermissionsExt;

use tests::{Appliance, text, visit_wav};

#[test]
fn wrong_or_missing_key_is_a_clear_error_naming_the_key_file() {
    let app = Appliance::new();
    let key = app.key();
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = app.run(&["show", "0000000000000000"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong key") && err.contains(&key.display().to_string()),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    std::fs::remove_file(&key).unwrap();
    let out = app.run(&["show", "0000000000000000"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not exist") && err.contains("scribe.key"),
        "{err}"
    );
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let app = Appliance::new();
    assert_eq!(
        std::fs::metadata(app.key()).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(app.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = app.run(&["audit", "verify"], None);
    assert!(
        !out.status.success() && text(&out).contains("chmod 600"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_recordings_get_clear_errors_and_store_nothing() {
    let app = Appliance::new();
    let dir = app.home().join("inputs");
    std::fs::create_dir(&dir).unwrap();
    let wav = std::fs::read(visit_wav()).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("empty.wav", vec![], "empty"),
        (
            "notes.wav",
            b"%PDF-1.7 this is a PDF, not a recording".to_vec(),
            "not a recording: a PDF document",
        ),
        ("cut.wav", wav[..wav.len() / 3].to_vec(), "truncated"),
        ("header-only.wav", wav[..44].to_vec(), "truncated"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (out, _) = app.ingest(&[path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected) && err.contains(name), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no encounter id is printed");
    }
    let out = app.ingest(&["--transcript", dir.join("notes.wav").to_str().unwrap()]).0;
    assert!(
        !out.status.success() && text(&out).contains("speaker tag"),
        "{}",
        text(&out)
    );
    assert_eq!(app.encounter_count(), 0, "nothing was stored");
}

#[test]
fn a_signed_note_is_immutable_and_tampering_is_detected() {
    let app = Appliance::new();
    let (id, _) = app.signed_typed_visit("[doctor] what brings you in ?\n[patient] a sore throat since monday .\n[doctor] it looks like a viral pharyngitis , rest and fluids .\n");

    let conn = app.open_raw();
    let err = conn
        .execute("UPDATE signed_notes SET signer = 'someone else'", [])
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    assert!(conn.execute("DELETE FROM signed_notes", []).is_err());

    // An attacker with the key drops the guard and flips one byte of the note.
    conn.execute_batch("DROP TRIGGER signed_notes_are_immutable").unwrap();
    let original: String = conn
        .query_row("SELECT canonical_text FROM signed_notes", [], |r| r.get(0))
        .unwrap();
    let mut bytes = original.clone().into_bytes();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    conn.execute(
        "UPDATE signed_notes SET canonical_text = ?1",
        [String::from_utf8(bytes).unwrap()],
    )
    .unwrap();
    drop(conn);
    let out = app.run(&["verify", &id], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("altered"), "{}", text(&out));

    // Flipping a byte of the encrypted file itself is caught by SQLCipher's page HMACs.
    // Byte 100 lies in page 1 (after SQLCipher's 16-byte salt), which every open reads.
    let mut file = std::fs::read(app.db()).unwrap();
    file[100] ^= 0xff;
    std::fs::write(app.db(), file).unwrap();
    let _ = std::fs::remove_file(app.home().join("scribe.db-wal"));
    let out = app.run(&["verify", &id], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("corrupted") && !text(&out).contains("panicked"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_audit_chain_detects_an_edited_event() {
    let app = Appliance::new();
    app.add_user("auditor_a", "auditor");
    let out = app.run(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", text(&out));
    let conn = app.open_raw();
    conn.execute_batch("DROP TRIGGER audit_events_append_only; UPDATE audit_events SET actor = 'nobody' WHERE seq = 1")
        .unwrap();
    drop(conn);
    let out = app.run(&["audit", "verify"], None);
    assert!(
        !out.status.success() && text(&out).contains("event 1"),
        "{}",
        text(&out)
    );

    // Where an access came from is part of the event: recorded, and covered by its hash.
    let app = Appliance::new();
    app.add_user("auditor_b", "auditor");
    let conn = app.open_raw();
    let (seq, source): (i64, Option<String>) = conn
        .query_row(
            "SELECT seq, source FROM audit_events WHERE action = 'user.add:auditor:auditor_b'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(source.as_deref(), Some("local"), "the box's own command line");
    for forged in ["'10.20.0.7'", "NULL"] {
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS audit_events_append_only; UPDATE audit_events SET source = {forged} WHERE seq = {seq}"
        ))
        .unwrap();
        let out = app.run(&["audit", "verify"], None);
        assert!(
            !out.status.success() && text(&out).contains(&format!("event {seq}")),
            "source set to {forged}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_signed_head_held_elsewhere_detects_a_rollback_and_an_export_proves_itself() {
    let app = Appliance::new();
    app.add_user("auditor_a", "auditor");
    let head = app.run(&["audit", "head"], None);
    assert!(head.status.success(), "{}", text(&head));
    let held = app.home().join("held-head.json");
    std::fs::write(&held, &head.stdout).unwrap();
    app.add_user("auditor_b", "auditor");
    let out = app.run(&["audit", "verify", "--head", held.to_str().unwrap()], None);
    assert!(
        out.status.success() && text(&out).contains("events since"),
        "{}",
        text(&out)
    );

    // An export is checked on its own, and an edited one is caught.
    let export = app.home().join("audit.json");
    let out = app.run(&["audit", "export", export.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    let text_of_export = std::fs::read_to_string(&export).unwrap();
    assert!(text_of_export.contains("user.add:auditor") && text_of_export.contains("\"signature\""));
    let out = app.run(&["audit", "verify", "--export", export.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(
        &export,
        text_of_export.replacen("user.add:auditor", "user.add:physician", 1),
    )
    .unwrap();
    let out = app.run(&["audit", "verify", "--export", export.to_str().unwrap()], None);
    assert!(!out.status.success(), "{}", text(&out));

    // Someone with the key drops the guard and cuts the newest events off the end: the chain
    // alone still checks, the held head does not.
    let head: serde_json::Value = serde_json::from_slice(&std::fs::read(&held).unwrap()).unwrap();
    let seq = head["seq"].as_i64().unwrap();
    let conn = app.open_raw();
    assert!(conn.execute("DELETE FROM audit_events WHERE seq >= ?1", [seq]).is_err());
    conn.execute_batch("DROP TRIGGER audit_events_kept").unwrap();
    conn.execute("DELETE FROM audit_events WHERE seq >= ?1", [seq]).unwrap();
    drop(conn);
    assert!(
        app.run(&["audit", "verify"], None).status.success(),
        "truncation keeps the chain valid"
    );
    let out = app.run(&["audit", "verify", "--head", held.to_str().unwrap()], None);
    assert!(
        !out.status.success() && text(&out).contains("rolled back"),
        "{}",
        text(&out)
    );

    // A forged head (one digit of its signature changed) is refused.
    let forged = std::fs::read_to_string(&held)
        .unwrap()
        .replacen("\"signature\": \"", "\"signature\": \"0", 1);
    std::fs::write(&held, forged).unwrap();
    let out = app.run(&["audit", "verify", "--head", held.to_str().unwrap()], None);
    assert!(!out.status.success(), "{}", text(&out));
}
