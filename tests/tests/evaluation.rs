//! `scribe eval aci-bench` drafts every dialogue through the real drafting path and writes a report.

use tests::{Appliance, text};

#[test]
fn eval_drafts_each_dialogue_and_writes_a_report_with_a_plot() {
    let app = Appliance::new();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/aci-mini");
    let out = app.home().join("report");
    let run = app.run(
        &[
            "eval",
            "aci-bench",
            "--data",
            data,
            "--split",
            "valid",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("off-template 0; failed 0"), "{stdout}");

    let md = std::fs::read_to_string(out.join("aci-bench-valid.md")).unwrap();
    assert!(
        md.contains("| encounters | 2 (drafted 2, off-template 0, failed 0) |"),
        "{md}"
    );
    assert!(
        md.contains("| T001 | drafted |") && md.contains("| T002 | drafted |"),
        "{md}"
    );
    assert!(md.contains("| sentences with valid citations | 100.00 % |"), "{md}");
    let svg = std::fs::read_to_string(out.join("aci-bench-valid.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("T002"), "{svg}");

    let missing = app.run(&["eval", "aci-bench", "--data", data, "--split", "train"], None);
    assert!(
        !missing.status.success() && text(&missing).contains("train.csv"),
        "{}",
        text(&missing)
    );
}

#[test]
fn eval_with_audio_runs_the_speech_path_and_reports_word_error_rate() {
    let app = Appliance::new();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/aci-mini");
    let out = app.home().join("report");
    let args = [
        "eval",
        "aci-bench",
        "--data",
        data,
        "--limit",
        "1",
        "--audio",
        "--out",
        out.to_str().unwrap(),
    ];
    let run = app.run(&args, None);
    assert!(run.status.success(), "{}", text(&run));
    let md = std::fs::read_to_string(out.join("aci-bench-valid.md")).unwrap();
    let wer_row = md
        .lines()
        .find(|l| l.starts_with("| speech recognition WER"))
        .expect("WER row");
    let wer: f64 = wer_row
        .split('|')
        .nth(2)
        .unwrap()
        .trim()
        .trim_end_matches(" %")
        .parse()
        .unwrap();
    // tiny.en on espeak-ng speech of a short dialogue: mostly right, never perfect.
    assert!(wer < 40.0, "{wer_row}");
    assert!(md.contains("| T001 | drafted |"), "{md}");
}

#[test]
fn a_dose_removed_from_the_dialogue_is_never_stated_unflagged() {
    let app = Appliance::new();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/aci-mini");
    let out = app.home().join("report");
    let run = app.run(
        &[
            "eval",
            "aci-bench",
            "--data",
            data,
            "--planted",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(run.status.success(), "{}", text(&run));
    let md = std::fs::read_to_string(out.join("aci-bench-valid.md")).unwrap();
    assert!(
        md.contains("| T001 | five hundred milligrams |") && md.contains("| T002 | four hundred milligrams |"),
        "{md}"
    );
    assert!(md.contains("2 cases:") && md.contains("stated unflagged 0 |"), "{md}");
}
