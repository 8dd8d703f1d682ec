//! The compliance report, generated from a provisioned appliance: the security owner, the live
//! allow-list and retention, the permission table the code enforces, the per-visit rule as the
//! store evaluates it, model cards with the installed hashes and the model changes from the audit
//! trail, and a signed audit head that `scribe audit verify --head` accepts.

use tests::{Appliance, models_dir, text, visit_wav};

#[test]
fn the_report_describes_the_running_appliance() {
    // Provisioned from a local folder, so the model installs are in the audit trail.
    let models = tempfile::tempdir().unwrap();
    let app = Appliance {
        home: tempfile::tempdir().unwrap(),
        models: models.path().to_path_buf(),
    };
    let out = app.run(
        &[
            "provision",
            "--clinic",
            "Riverside Family Practice",
            "--allow",
            "10.20.0.0/16",
            "--security-owner",
            "Dana Reyes",
            "--security-contact",
            "dana@riverside.example",
            "--profile",
            "test",
            "--models-from",
            models_dir().to_str().unwrap(),
        ],
        Some("correct horse admin\n"),
    );
    assert!(out.status.success(), "{}", text(&out));

    // A recorded visit's draft names the model versions that made it.
    let (out, id) = app.ingest(&[visit_wav().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let show = app.show(&id.unwrap());
    let made_by = show["draft_models"].as_str().unwrap_or_default().to_string();
    assert!(
        made_by.starts_with("smollm2-135m-instruct sha256:") && made_by.contains("; speech: whisper-tiny.en sha256:"),
        "{show}"
    );

    // Another visit with the same models logs no change.
    let typed = app.home().join("typed.txt");
    std::fs::write(&typed, tests::DIALOGUE).unwrap();
    let (out, _) = app.ingest(&["--transcript", typed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let out = app.run(&["compliance", "report", "--out", dir.path().to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(dir.path().join("compliance-report.md")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("compliance-report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("Dana Reyes"), "{html}");

    for expected in [
        "# Compliance report: Riverside Family Practice",
        "Dana Reyes (dana@riverside.example)",
        "| `10.20.0.0/16` | `network.allow`",
        "| Recordings of signed visits | 30days after signing |",
        // The permission table, as the code enforces it.
        "| sign notes (PHI) | — | ✓ | — | — |",
        "| read the audit trail | — | — | ✓ | ✓ |",
        // The per-visit rule, as the store answers it.
        "| recorded by them | opens | opens | n/a | n/a |",
        "| in the clinic pool (assigned to no one) | — | opens | — | — |",
        "| assigned to another physician | — | break-glass only",
        // Models with their hashes, and their installs from the audit trail.
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "SHA-256 verified now",
        "`model.install:whisper-tiny.en sha256:25d0eb8164c9` | local:",
        "`model.install:smollm2-135m-instruct sha256:b179c9523d0e`",
        // The versions the pipeline ran, logged the first time they ran.
        "`model.in_use:llm:smollm2-135m-instruct sha256:b179c9523d0e` | system:pipeline | model change (first use)",
        "`model.in_use:asr:whisper-tiny.en sha256:25d0eb8164c9`",
        "Chain check now: **intact**",
    ] {
        assert!(md.contains(expected), "{expected:?} missing:\n{md}");
    }
    assert!(!md.contains("cough"), "no visit content in the report");
    assert_eq!(md.matches("model.in_use:llm:").count(), 1, "{md}");

    // The signed head in the report is the real one: a copy kept elsewhere verifies the chain.
    let json = md
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a signed head");
    let held = dir.path().join("head.json");
    std::fs::write(&held, json).unwrap();
    let out = app.run(&["audit", "verify", "--head", held.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
}

/// A de-identified export for quality review: the Safe Harbor identifiers said in a visit are gone
/// from the note and the transcript, one placeholder per identifier throughout; the key back is
/// kept only inside the encrypted database, and only when asked.
#[test]
fn a_deidentified_export_removes_the_identifiers_and_keeps_the_key_encrypted() {
    let app = Appliance::new();
    let dialogue = app.home().join("visit.txt");
    std::fs::write(
        &dialogue,
        "[doctor] Good morning Mrs. Alvarez. Can you confirm your date of birth?\n\
         [patient] My name is Maria Alvarez, born March 3rd, 1931. I am 95 years old.\n\
         [doctor] And a phone number?\n\
         [patient] 555-201-1311. My email is maria.alvarez@example.com and I live at 42 Maple Street, Springfield, Illinois 62704.\n\
         [doctor] Your record number is 48213377. What brings you in?\n\
         [patient] A cough and a fever for three days. My daughter Priya drove me.\n\
         [doctor] Your lungs sound clear. It looks viral. Rest and fluids, Mrs. Alvarez.\n",
    )
    .unwrap();
    let (out, id) = app.ingest(&["--transcript", dialogue.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();

    let file = app.home().join("review.md");
    let out = app.run(
        &[
            "export",
            &id,
            "--deidentified",
            "--keep-key",
            "--out",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("re-identification key kept"), "{}", text(&out));
    let doc = std::fs::read_to_string(&file).unwrap();
    for identifier in [
        "Alvarez",
        "Maria",
        "March 3rd",
        "555-201-1311",
        "maria.alvarez",
        "42 Maple",
        "Springfield",
        "62704",
        "48213377",
        "Priya",
        "95 years",
    ] {
        assert!(!doc.contains(identifier), "{identifier} survived:\n{doc}");
    }
    assert!(doc.contains("1931") && doc.contains("90 or older"), "{doc}");
    assert!(
        doc.contains("cough") && doc.contains("fever"),
        "clinical content stays:\n{doc}"
    );
    // One person, one placeholder, in every line that names them.
    assert!(doc.matches("[NAME-1]").count() >= 3, "{doc}");
    assert!(doc.contains("## Note") && doc.contains("## Transcript"), "{doc}");

    // The key is in the database (encrypted with it), not in the export, and both are audited.
    let conn = app.open_raw();
    let mapping: String = conn
        .query_row("SELECT mapping FROM deid_keys WHERE encounter_id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(mapping.contains("alvarez"), "{mapping}");
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit_events WHERE encounter_id = ?1 AND (action LIKE 'deid_key%' OR action = 'export.deidentified')")
        .unwrap()
        .query_map([&id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    let bytes = std::fs::read(app.db()).unwrap();
    assert!(
        !bytes.windows(7).any(|w| w == b"Alvarez"),
        "the database file is encrypted"
    );

    // Planted identifiers in synthesized visits: recall measured and reported.
    let report = tempfile::tempdir().unwrap();
    let out = app.run(
        &[
            "eval",
            "deid",
            "--visits",
            "20",
            "--out",
            report.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(report.path().join("deid-typed.md")).unwrap();
    eprintln!("{md}");
    for structured in [
        "phone",
        "fax",
        "email",
        "ssn",
        "url",
        "ip",
        "record number",
        "plan number",
        "zip",
        "date",
    ] {
        assert!(
            md.contains(&format!("| {structured} | 20 | 20 | 20 | 100.0 % |")),
            "{structured}:\n{md}"
        );
    }
    assert!(
        md.contains("Clinical words kept (cough, fever, lungs, viral, fluids): 100/100"),
        "{md}"
    );
}
