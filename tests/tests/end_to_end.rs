//! A recorded visit becomes an encrypted, signed, verifiable note — through the real command line,
//! real whisper and llama models, and a real SQLCipher file.

use tests::{Appliance, VISIT_KEY_WORDS, section_names, text, visit_wav};

const SOAP: [&str; 4] = ["Subjective", "Objective", "Assessment", "Plan"];

/// Every sentence cites at least one segment, and every cited segment exists.
fn assert_cited(show: &serde_json::Value) {
    let ids: Vec<u64> = show["transcript"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    let mut sentences = 0;
    for section in show["draft"]["sections"].as_array().unwrap() {
        for s in section["sentences"].as_array().unwrap() {
            sentences += 1;
            let cites = s["citations"].as_array().unwrap();
            assert!(!cites.is_empty(), "uncited sentence: {s}");
            for c in cites {
                assert!(
                    ids.contains(&c.as_u64().unwrap()),
                    "sentence cites missing segment {c}: {s}"
                );
            }
        }
    }
    assert!(sentences > 0, "the draft has no sentences: {show}");
}

#[test]
fn a_recorded_visit_becomes_a_signed_verified_note() {
    let app = Appliance::new();
    let (out, id) = app.ingest(&[visit_wav().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.expect("ingest prints the encounter id last");

    let show = app.show(&id);
    assert_eq!(show["state"], "awaiting_review", "{show}");
    let transcript: String = tests::transcript_lowercase(&show);
    for word in VISIT_KEY_WORDS {
        assert!(transcript.contains(word), "transcript lacks {word:?}: {transcript}");
    }
    for s in show["transcript"]["segments"].as_array().unwrap() {
        assert!(s["end_ms"].as_u64() >= s["start_ms"].as_u64(), "{s}");
        assert!(
            s["words"].as_array().is_some_and(|w| !w.is_empty()),
            "per-word confidence: {s}"
        );
    }
    let sections = section_names(&show);
    assert_eq!(sections, SOAP);
    assert_cited(&show);

    // Only a physician signs, with the right password.
    let nurse = app.add_user("nurse_joy", "clinician");
    let out = app.run(&["sign", &id, "--user", "nurse_joy"], Some(&format!("{nurse}\n")));
    assert!(
        !out.status.success() && text(&out).contains("may not sign notes"),
        "{}",
        text(&out)
    );
    let doctor = app.add_user("dr_grey", "physician");
    let out = app.run(&["sign", &id, "--user", "dr_grey"], Some("not the password\n"));
    assert!(
        !out.status.success() && text(&out).contains("wrong password"),
        "{}",
        text(&out)
    );
    // Signing with eyes open: open flags are listed and refused unless acknowledged, in the
    // signer's name, and the signed text records each.
    let open = open_flag_count(&app.show(&id));
    if open > 0 {
        let out = app.run(&["sign", &id, "--user", "dr_grey"], Some(&format!("{doctor}\n")));
        assert!(
            !out.status.success() && text(&out).contains(&format!("{open} open flag(s)")),
            "{}",
            text(&out)
        );
        assert_eq!(app.show(&id)["state"], "awaiting_review");
    }
    let out = app.run(
        &["sign", &id, "--user", "dr_grey", "--acknowledge-flags"],
        Some(&format!("{doctor}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&app.run(&["show", &id], None));
    assert_eq!(
        shown.matches("acknowledged-by: dr_grey").count(),
        open,
        "the signed text records every acknowledged flag: {shown}"
    );

    let show = app.show(&id);
    assert_eq!(show["state"], "signed");
    assert_eq!(show["signature"]["signer"], "dr_grey");
    let out = app.run(&["verify", &id], None);
    assert!(out.status.success() && text(&out).contains("OK"), "{}", text(&out));
    let out = app.run(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", text(&out));

    // Nothing of the visit is readable in the database files or the logs.
    for file in ["scribe.db", "scribe.db-wal", "logs/scribe.log"] {
        let path = app.home().join(file);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let lower = String::from_utf8_lossy(&bytes).to_lowercase();
        for word in VISIT_KEY_WORDS {
            assert!(!lower.contains(word), "{file} contains the visit's word {word:?}");
        }
    }
    let log = std::fs::read_to_string(app.home().join("logs/scribe.log")).unwrap();
    assert!(
        log.contains("transcribed") && log.contains(&id),
        "the log records the run by id:\n{log}"
    );
}

#[test]
fn a_typed_dialogue_is_drafted_with_speaker_roles() {
    let app = Appliance::new();
    let dialogue = app.home().join("dialogue.txt");
    std::fs::write(
        &dialogue,
        "[doctor] hi , how are you doing today ?\n[patient] my right knee has been hurting for two weeks .\n\
         [doctor] did you try anything for it ?\n[patient] i took ibuprofen , four hundred milligrams , twice a day .\n\
         [doctor] okay . the knee is swollen but stable . let's get an x-ray and see you in two weeks .\n",
    )
    .unwrap();
    let (out, id) = app.ingest(&["--transcript", dialogue.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let show = app.show(&id.unwrap());
    assert_eq!(show["state"], "awaiting_review", "{show}");
    let roles: Vec<&str> = show["transcript"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["speaker"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["clinician", "patient", "clinician", "patient", "clinician"]);
    assert_cited(&show);
}

fn open_flag_count(show: &serde_json::Value) -> usize {
    let draft = &show["draft"];
    [&draft["sections"], &draft["patient_instructions"]["sections"]]
        .into_iter()
        .filter_map(|sections| sections.as_array())
        .flatten()
        .flat_map(|s| s["sentences"].as_array().into_iter().flatten())
        .flat_map(|s| s["flags"].as_array().into_iter().flatten())
        .filter(|f| f["acknowledged_by"].is_null())
        .count()
}
