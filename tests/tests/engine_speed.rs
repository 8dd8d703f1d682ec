//! `scribe-draft-bench`, the drafting engine's speed as docs/bench/peers.md and gpu.md compare it
//! with llama.cpp's llama-bench: it must run the real engine on a real model and count what it
//! timed, or those comparisons mean nothing.

use std::path::PathBuf;
use std::process::Command;

use tests::{bin_dir, models_dir, text};

/// The smallest installed GGUF (the test profile's SmolLM2 on CI).
fn smallest_llm() -> PathBuf {
    std::fs::read_dir(models_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .min_by_key(|p| p.metadata().unwrap().len())
        .expect("an installed GGUF model")
}

#[test]
fn the_draft_bench_times_the_tokens_it_says_it_evaluated() {
    let out = Command::new(bin_dir().join("scribe-draft-bench"))
        .arg("--model")
        .arg(smallest_llm())
        .args(["--threads", "2", "--prompt", "64", "--generate", "8", "--reps", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    // This build has no GPU backend: the report says so, and so does the daemon's log.
    assert_eq!(report["engine"], "llama.cpp on CPU", "{report}");
    assert_eq!(report["threads"], 2);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{report}");
    for run in runs {
        assert_eq!(run["prompt_tokens"], 64, "{run}");
        assert_eq!(run["generated_tokens"], 8, "{run}");
        for rate in ["prompt_tokens_per_s", "generate_tokens_per_s"] {
            let r = run[rate].as_f64().unwrap();
            assert!(r.is_finite() && r > 1.0, "{rate} = {r}: {run}");
        }
        // Prompt tokens go through in batches, generated ones one at a time: batching must pay.
        assert!(
            run["prompt_tokens_per_s"].as_f64().unwrap() > run["generate_tokens_per_s"].as_f64().unwrap(),
            "{run}"
        );
    }

    let missing = Command::new(bin_dir().join("scribe-draft-bench"))
        .args(["--model", "/nonexistent.gguf"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(text(&missing).contains("/nonexistent.gguf"), "{}", text(&missing));
}
