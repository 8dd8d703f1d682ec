//! Whisper on what is not a visit: silence and noise give no text, and a decoder loop (whisper
//! repeating one line on audio it cannot decode) is collapsed. Real audio, made with sox.

use std::path::Path;
use std::process::Command;

use tests::{Appliance, text, visit_wav};

fn sox_from(input: &Path, out: &Path, effects: &[&str]) {
    let status = Command::new("sox")
        .arg(input)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(out)
        .args(effects)
        .status()
        .expect("run sox");
    assert!(status.success(), "sox {effects:?}");
}

#[test]
fn silence_and_noise_produce_no_text() {
    let app = Appliance::new();
    let dir = tempfile::tempdir().unwrap();
    let synthesize = ["-n", "-r", "16000", "-c", "1", "-b", "16"];
    let cases: [(&str, Vec<&str>); 4] = [
        ("silence", vec!["trim", "0", "10"]),
        ("white-noise", vec!["synth", "10", "whitenoise", "vol", "0.1"]),
        ("pink-noise", vec!["synth", "10", "pinknoise", "vol", "0.2"]),
        ("brown-noise", vec!["synth", "10", "brownnoise", "vol", "0.6"]),
    ];
    for (name, effects) in cases {
        let wav = dir.path().join(format!("{name}.wav"));
        let mut args = synthesize.to_vec();
        args.push(wav.to_str().unwrap());
        args.extend(effects);
        let status = Command::new("sox").args(&args).status().unwrap();
        assert!(status.success());
        let (out, id) = app.ingest(&[wav.to_str().unwrap()]);
        let show = app.show(&id.unwrap_or_else(|| panic!("{name}: {}", text(&out))));
        let segments = show["transcript"]["segments"].as_array().unwrap();
        assert!(segments.is_empty(), "{name} produced text: {segments:?}");
        assert_eq!(show["state"], "failed", "{name}: {show}");
        assert!(
            show["failure_reason"].as_str().unwrap().contains("no speech"),
            "{name}: {show}"
        );
    }
}

#[test]
fn a_decoder_loop_is_collapsed() {
    let app = Appliance::new();
    let dir = tempfile::tempdir().unwrap();
    // The visit played 2.76 times too fast: whisper cannot follow it and, unchecked, repeats one
    // invented line segment after segment.
    let fast = dir.path().join("fast.wav");
    sox_from(&visit_wav(), &fast, &["speed", "2.76"]);
    let (out, id) = app.ingest(&[fast.to_str().unwrap()]);
    let show = app.show(&id.unwrap_or_else(|| panic!("{}", text(&out))));
    let texts: Vec<String> = show["transcript"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["text"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || c.is_whitespace())
                .collect()
        })
        .collect();
    for run in texts.windows(3) {
        assert!(!(run[0] == run[1] && run[1] == run[2]), "a loop survived: {texts:?}");
    }
}
