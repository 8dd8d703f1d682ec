//! `scribe-draft-bench`: the drafting engine's prompt-processing and generation speed, measured
//! the way llama.cpp's own `llama-bench` measures it (`-p` prompt tokens, `-n` generated tokens,
//! a warm-up run, then `--reps` timed runs), so the two can be compared on the same model, threads
//! and device. It goes through `llm::Llama` — the worker's model loading (SHA-256 checked), context
//! set-up and decode calls — and prints one JSON object.
//!
//! `scribe-draft-bench --model M.gguf [--threads N] [--prompt 512] [--generate 128] [--reps 3]`

use std::time::Instant;

use anyhow::{Context, Result, bail};
use llm::Llama;
use protocol::job::ModelRef;

fn main() -> Result<()> {
    let mut model = None;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let (mut prompt, mut generate, mut reps) = (512usize, 128usize, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(value()?),
            "--threads" => threads = value()?.parse()?,
            "--prompt" => prompt = value()?.parse()?,
            "--generate" => generate = value()?.parse()?,
            "--reps" => reps = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let path = model.context("--model is required")?;
    let sha256 = protocol::worker::sha256_file(path.as_ref()).with_context(|| format!("reading {path}"))?;
    let started = Instant::now();
    let mut llama = Llama::load(
        &ModelRef {
            path: path.clone(),
            sha256,
        },
        0,
        threads,
    )?;
    let load_ms = started.elapsed().as_millis();

    // The first run pays for allocations and (on a GPU) kernel loading; llama-bench discards it too.
    llama.bench(prompt, generate.min(16), 0)?;
    let mut runs = Vec::new();
    for rep in 0..reps {
        let speed = llama.bench(prompt, generate, rep as u64 + 1)?;
        runs.push(serde_json::json!({
            "prompt_tokens": speed.prompt_tokens,
            "prompt_ms": speed.prompt_ms,
            "prompt_tokens_per_s": speed.prompt_tokens as f64 * 1000.0 / speed.prompt_ms,
            "generated_tokens": speed.generated_tokens,
            "generate_ms": speed.generate_ms,
            "generate_tokens_per_s": speed.generated_tokens as f64 * 1000.0 / speed.generate_ms,
        }));
    }
    let report = serde_json::json!({
        "engine": llama.description(),
        "model": path,
        "threads": threads,
        "load_ms": load_ms,
        "peak_rss_kb": protocol::worker::peak_rss_kb(),
        "runs": runs,
    });
    println!("{report}");
    Ok(())
}
