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
        "Chain check now: **intact**",
    ] {
        assert!(md.contains(expected), "{expected:?} missing:\n{md}");
    }
    assert!(!md.contains("cough"), "no visit content in the report");

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
