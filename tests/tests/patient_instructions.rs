//! After-visit instructions for the patient: drafted from the same transcript as the note,
//! grounded the same way (every sentence cites what was said; what the transcript does not say is
//! flagged), reviewed and edited beside the note, signed with it, and printed for the patient.

use std::time::Duration;

use tests::web::{Client, ReviewServer};
use tests::{Appliance, text};

const DIALOGUE: &str = "[doctor] what brings you in today ?\n\
[patient] i twisted my right ankle playing soccer two days ago and it is swollen .\n\
[doctor] any numbness or trouble putting weight on it ?\n\
[patient] no numbness , i can walk on it but it hurts .\n\
[doctor] the right ankle is swollen over the outside with no bone tenderness , so this looks like a sprain .\n\
[doctor] take ibuprofen four hundred milligrams three times a day with food for one week .\n\
[doctor] keep the ankle raised and put ice on it for twenty minutes a few times a day .\n\
[doctor] come back if you cannot walk on it or the pain gets worse .\n\
[patient] okay , thank you .\n";

const SECTIONS: [&str; 4] = ["What we found", "Your medicines", "What to do next", "When to get help"];

fn sentences(doc: &serde_json::Value) -> Vec<&serde_json::Value> {
    doc["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sentences"].as_array().unwrap())
        .collect()
}

/// The instructions follow their template and rest on the transcript like the note does.
fn assert_grounded(show: &serde_json::Value) {
    let instructions = &show["draft"]["patient_instructions"];
    assert_eq!(instructions["template"], "patient-instructions", "{show}");
    let names: Vec<&str> = instructions["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SECTIONS);
    let segments: Vec<u64> = show["transcript"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    let transcript = tests::transcript_lowercase(show);
    let all = sentences(instructions);
    assert!(!all.is_empty(), "no instructions: {instructions}");
    for s in all {
        let cites = s["citations"].as_array().unwrap();
        assert!(!cites.is_empty(), "uncited: {s}");
        assert!(cites.iter().all(|c| segments.contains(&c.as_u64().unwrap())), "{s}");
        let flags: Vec<&str> = s["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        // The template's style example names lisinopril; a copy of it is not this visit's fact.
        let said = s["text"].as_str().unwrap().to_lowercase();
        if said.contains("lisinopril") && !transcript.contains("lisinopril") {
            assert!(
                flags.contains(&"unsupported_medication"),
                "unflagged copy of the example: {s}"
            );
        }
    }
}

#[test]
fn a_note_comes_with_patient_instructions_that_are_edited_signed_and_printed_with_it() {
    let app = Appliance::new().with_patient_instructions();
    let password = app.add_user("dr_grey", "physician");
    let file = app.home().join("visit.txt");
    std::fs::write(&file, DIALOGUE).unwrap();
    let (out, id) = app.ingest(&["--transcript", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();
    let show = app.show(&id);
    assert_eq!(show["state"], "awaiting_review", "{show}");
    assert_grounded(&show);
    let note_before = show["draft"]["sections"].clone();

    // The physician sees them under the note and edits one of their sentences.
    let server = ReviewServer::plain(&app, &[]);
    let mut doctor = Client::new(&server.url);
    doctor.login("dr_grey", &password);
    let page = doctor.get(&format!("/encounters/{id}"));
    assert!(page.body.contains("Patient instructions"), "{}", page.body);
    assert!(
        page.body.contains("value=\"patient_instructions\""),
        "no edit form for them"
    );
    let base = page.input("base_version").expect("an edit form");
    let section = show["draft"]["patient_instructions"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| !s["sentences"].as_array().unwrap().is_empty())
        .unwrap()
        .to_string();
    let csrf = doctor.csrf();
    let r = doctor.post(
        &format!("/encounters/{id}/edit"),
        &[
            ("csrf", &csrf),
            ("base_version", &base),
            ("document", "patient_instructions"),
            ("section", &section),
            ("sentence", "0"),
            ("text", "Your right ankle is sprained, not broken."),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let edited = app.show(&id);
    let first = &edited["draft"]["patient_instructions"]["sections"][section.parse::<usize>().unwrap()]["sentences"][0];
    assert_eq!(first["text"], "Your right ankle is sprained, not broken.", "{edited}");
    assert_eq!(
        edited["draft"]["sections"], note_before,
        "editing the instructions changed the note"
    );

    // Signed with the note: the signature covers them, and they print for the patient.
    let out = app.run(
        &["sign", &id, "--user", "dr_grey", "--acknowledge-flags"],
        Some(&format!("{password}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = app.run(&["verify", &id], None);
    assert!(out.status.success() && text(&out).contains("OK"), "{}", text(&out));
    let handout = doctor.get(&format!("/encounters/{id}/export/instructions"));
    assert_eq!(handout.status, 200, "{handout:?}");
    assert!(
        handout.body.contains("Your right ankle is sprained, not broken."),
        "{}",
        handout.body
    );
    assert!(
        handout.body.contains("Reviewed and signed by dr_grey"),
        "{}",
        handout.body
    );
    assert!(
        !handout.body.contains("[S"),
        "citations are for the reviewer, not the patient"
    );
    let raw = String::from_utf8_lossy(&std::fs::read(app.home().join("scribe.db")).unwrap()).to_lowercase();
    assert!(!raw.contains("sprained"), "the instructions are stored encrypted");
}

#[test]
fn the_daemon_drafts_the_instructions_once_the_note_is_ready() {
    let app = Appliance::new().with_patient_instructions();
    let mut daemon = app.spawn_pipeline_daemon(&[]);
    let file = app.home().join("visit.txt");
    std::fs::write(&file, DIALOGUE).unwrap();
    let (out, id) = app.ingest(&["--transcript", file.to_str().unwrap(), "--no-wait"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();
    let settled = app.wait_until_settled(&id, Duration::from_secs(600));
    assert_eq!(settled["state"], "awaiting_review", "{settled}");
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let show = loop {
        let show = app.show(&id);
        if !show["draft"]["patient_instructions"].is_null() {
            break show;
        }
        assert!(std::time::Instant::now() < deadline, "no instructions: {show}");
        std::thread::sleep(Duration::from_millis(500));
    };
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_grounded(&show);
    let job = show["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "instructions");
    assert!(job.is_some_and(|j| j["ok"] == true), "{show}");
}
