//! A visit longer than the model's context is drafted in parts, not truncated: every part of the
//! transcript is drafted and cited.

use tests::{Appliance, text};

const BRIEF: &str = r#"name = "brief"
title = "brief note"

[[section]]
name = "History"
instruction = "What the patient reported."
max_sentences = 2

[[section]]
name = "Plan"
instruction = "What will be done."
max_sentences = 2
"#;

#[test]
fn a_visit_longer_than_the_context_is_drafted_in_parts_with_citations_throughout() {
    let app = Appliance::new();
    // A small context window stands in for a 45-minute visit on a real model.
    std::fs::write(
        app.home().join("scribe.toml"),
        "profile = \"test\"\n[drafting]\ncontext_tokens = 900\npatient_instructions = false\n",
    )
    .unwrap();
    std::fs::create_dir(app.home().join("templates")).unwrap();
    std::fs::write(app.home().join("templates/brief.toml"), BRIEF).unwrap();

    let complaints = [
        "headache",
        "back pain",
        "cough",
        "rash",
        "knee pain",
        "fatigue",
        "dizziness",
        "heartburn",
    ];
    let mut dialogue = String::new();
    for c in complaints {
        dialogue.push_str(&format!(
            "[doctor] tell me about the {c} .\n[patient] the {c} started a few weeks ago and it is worse in the evening , \
             it keeps me from sleeping well and i have tried rest without much change .\n\
             [doctor] okay , for the {c} we will try a simple treatment and check again next month .\n"
        ));
    }
    let file = app.home().join("long.txt");
    std::fs::write(&file, &dialogue).unwrap();
    let (out, id) = app.ingest(&["--transcript", file.to_str().unwrap(), "--template", "brief"]);
    assert!(out.status.success(), "{}", text(&out));
    let show = app.show(&id.unwrap());
    assert_eq!(show["state"], "awaiting_review", "{show}");

    let segments = show["transcript"]["segments"].as_array().unwrap().len() as u64;
    let cited: Vec<u64> = show["draft"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sentences"].as_array().unwrap().iter())
        .flat_map(|s| s["citations"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()))
        .collect();
    assert!(cited.iter().all(|&c| (1..=segments).contains(&c)), "{cited:?}");
    assert!(
        cited.iter().any(|&c| c <= segments / 4),
        "the start of the visit is cited: {cited:?}"
    );
    assert!(
        cited.iter().any(|&c| c > segments * 3 / 4),
        "the end of the visit is cited: {cited:?}"
    );

    let log = std::fs::read_to_string(app.home().join("logs/scribe.log")).unwrap();
    assert!(log.contains("drafting in parts"), "{log}");
}
