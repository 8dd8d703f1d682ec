//! `scribe console --once`: the operator's view, rendered as text on a real appliance home.

use tests::{Appliance, text};

#[test]
fn console_shows_health_models_an_empty_queue_and_no_microphone() {
    let app = Appliance::new();
    let out = app.run(&["console", "--once"], None);
    assert!(out.status.success(), "{}", text(&out));
    let screen = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "SQLCipher",
        "intact",
        "whisper-tiny.en",
        "verified",
        "Queue empty",
        "no microphone found",
        "No recent errors.",
    ] {
        assert!(screen.contains(expected), "{expected:?} missing from:\n{screen}");
    }

    // A model that no longer matches its hash is shown as such: a model store where the ASR
    // model is a corrupted copy and the rest are links to the real files.
    let store = tempfile::tempdir().unwrap();
    let mut tampered = false;
    for entry in std::fs::read_dir(&app.models).unwrap().flatten() {
        let (path, name) = (entry.path(), entry.file_name());
        if name.to_string_lossy().contains("tiny.en") {
            let mut bytes = std::fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(store.path().join(&name), bytes).unwrap();
            tampered = true;
        } else {
            std::os::unix::fs::symlink(&path, store.path().join(&name)).unwrap();
        }
    }
    assert!(tampered, "no tiny.en model in {}", app.models.display());
    let out = std::process::Command::new(tests::bin_dir().join("scribe"))
        .arg("--home")
        .arg(app.home())
        .arg("--models")
        .arg(store.path())
        .args(["console", "--once"])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("NOT VERIFIED"), "{screen}");
}
