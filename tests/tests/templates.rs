//! Clinics add their own templates as files; the grammar derived from a template makes every draft
//! follow it, and a broken template is reported with its file and line.

use tests::{Appliance, section_names, text};

const DERM: &str = r#"name = "derm"
title = "dermatology note"

[[section]]
name = "Lesion History"
instruction = "Where the lesion is, how long it has been there and how it changed."
max_sentences = 3

[[section]]
name = "Impression and Plan"
instruction = "What the clinician thinks it is and what will be done."
max_sentences = 3
"#;

#[test]
fn a_clinic_template_shapes_the_draft_and_errors_name_file_and_line() {
    let app = Appliance::new();
    let dir = app.home().join("templates");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("derm.toml"), DERM).unwrap();

    let out = app.run(&["templates", "list"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("derm") && text(&out).contains("soap") && text(&out).contains("aci"),
        "{}",
        text(&out)
    );

    let dialogue = app.home().join("visit.txt");
    std::fs::write(
        &dialogue,
        "[doctor] what brings you in ?\n[patient] a dark spot on my left arm that has grown over three months .\n\
         [doctor] it is irregular , so i will take a biopsy today .\n",
    )
    .unwrap();
    let (out, id) = app.ingest(&["--transcript", dialogue.to_str().unwrap(), "--template", "derm"]);
    assert!(out.status.success(), "{}", text(&out));
    let show = app.show(&id.unwrap());
    let sections = section_names(&show);
    assert_eq!(sections, ["Lesion History", "Impression and Plan"]);
    assert_eq!(show["draft"]["template"], "derm");

    // A typo in a clinic template: the listing and a check name the file and the line.
    std::fs::write(
        dir.join("broken.toml"),
        "name = \"broken\"\ntitle = \"B\"\n[[section]]\nname = \"A\"\ninstructions = \"typo\"\n",
    )
    .unwrap();
    let out = app.run(&["templates", "list"], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("broken.toml, line 5"), "{}", text(&out));
    let out = app.run(&["templates", "check", dir.join("broken.toml").to_str().unwrap()], None);
    assert!(!out.status.success() && text(&out).contains("line 5"), "{}", text(&out));
    // And ingesting with it is refused before anything is stored.
    let (out, id) = app.ingest(&["--transcript", dialogue.to_str().unwrap(), "--template", "broken"]);
    assert!(!out.status.success() && id.is_none(), "{}", text(&out));
}
