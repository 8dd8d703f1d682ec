//! `scribe eval aci-bench` drafts every dialogue through the real drafting path and writes a report.

use std::process::Output;

use tests::{Appliance, text};

const ACI_MINI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/aci-mini");

/// Runs `scribe eval aci-bench` on the fixture with `extra` arguments; returns the run and the
/// report's Markdown (empty if none was written).
fn eval(app: &Appliance, extra: &[&str]) -> (Output, String) {
    let out = app.home().join("report");
    let mut args = vec!["eval", "aci-bench", "--data", ACI_MINI, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = app.run(&args, None);
    let md = std::fs::read_to_string(out.join("aci-bench-valid.md")).unwrap_or_default();
    (run, md)
}

#[test]
fn eval_drafts_each_dialogue_and_writes_a_report_with_a_plot() {
    let app = Appliance::new();
    let (run, md) = eval(&app, &["--split", "valid"]);
    assert!(run.status.success(), "{}", text(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("off-template 0; failed 0"), "{stdout}");

    assert!(
        md.contains("| encounters | 2 (drafted 2, off-template 0, failed 0) |"),
        "{md}"
    );
    assert!(
        md.contains("| T001 | drafted |") && md.contains("| T002 | drafted |"),
        "{md}"
    );
    assert!(md.contains("| sentences with valid citations | 100.00 % |"), "{md}");
    let svg = std::fs::read_to_string(app.home().join("report/aci-bench-valid.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("T002"), "{svg}");
    // The run is part of the drafting model's card from now on.
    let cards = app.run(&["models", "cards"], None);
    let cards = String::from_utf8_lossy(&cards.stdout).into_owned();
    assert!(
        cards.contains("**Measured on this appliance.**") && cards.contains("ACI-Bench valid, 2 encounters"),
        "{cards}"
    );

    let missing = app.run(&["eval", "aci-bench", "--data", ACI_MINI, "--split", "train"], None);
    assert!(
        !missing.status.success() && text(&missing).contains("train.csv"),
        "{}",
        text(&missing)
    );
}

#[test]
fn eval_with_audio_runs_the_speech_path_and_reports_word_error_rate() {
    let app = Appliance::new();
    let (run, md) = eval(&app, &["--limit", "1", "--audio"]);
    assert!(run.status.success(), "{}", text(&run));
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
    let (run, md) = eval(&app, &["--planted"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        md.contains("| T001 | five hundred milligrams |") && md.contains("| T002 | four hundred milligrams |"),
        "{md}"
    );
    assert!(md.contains("2 cases:") && md.contains("stated unflagged 0 |"), "{md}");
}
