//! The engines never share a binary: `scribe` links neither, each worker links only its own.
//! (whisper-rs and llama-cpp-2 vendor different ggml builds; linking both is unsafe.)

use std::process::Command;

fn normal_deps(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--package",
            package,
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn each_engine_is_linked_into_exactly_one_worker() {
    let scribe = normal_deps("appliance");
    assert!(
        !scribe.contains("whisper-rs") && !scribe.contains("llama-cpp"),
        "scribe links an engine:\n{scribe}"
    );
    let asr = normal_deps("asr");
    assert!(asr.contains("whisper-rs") && !asr.contains("llama-cpp"), "{asr}");
    let llm = normal_deps("llm");
    assert!(llm.contains("llama-cpp-2") && !llm.contains("whisper-rs"), "{llm}");
}
