//! Where llama.cpp's sources come from for the benchmarks that build llama.cpp's own tools beside
//! Scribe's engine (the peers bench, the GPU bundle): the tree vendored in llama-cpp-sys-2 — the
//! drafting worker's exact sources — and llama-bench's two source files, which that crate leaves
//! out, from llama-cpp-python's source package on PyPI (they build unchanged against the tree).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cache_dir, text};

/// The source package llama-bench's sources are taken from.
pub const LLAMA_BENCH_SDIST: &str = "llama-cpp-python==0.3.36";

/// The llama.cpp tree inside the llama-cpp-sys-2 that cargo builds the drafting worker from.
pub fn vendored_llama_cpp() -> PathBuf {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .current_dir(workspace)
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "llama-cpp-sys-2")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("llama-cpp-sys-2 in cargo metadata");
    let tree = Path::new(manifest)
        .parent()
        .expect("the crate's folder")
        .join("llama.cpp");
    assert!(
        tree.join("ggml/CMakeLists.txt").exists(),
        "no llama.cpp tree in {}",
        tree.display()
    );
    tree
}

/// tools/llama-bench/{llama-bench.cpp,main.cpp} in `to`, the source package downloaded once
/// into `~/.cache/scribe/packages/llama-cpp-python`.
pub fn llama_bench_sources(to: &Path) {
    if to.join("llama-bench.cpp").exists() {
        return;
    }
    let cache = cache_dir().join("packages/llama-cpp-python");
    let sdist = || {
        std::fs::read_dir(&cache)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
    };
    if sdist().is_none() {
        std::fs::create_dir_all(&cache).expect("create the package cache");
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
            ])
            .arg(&cache)
            .arg(LLAMA_BENCH_SDIST)
            .output()
            .expect("run pip");
        assert!(out.status.success(), "pip download {LLAMA_BENCH_SDIST}: {}", text(&out));
    }
    let archive = sdist().expect("pip left no source package");
    std::fs::create_dir_all(to).expect("create the sources folder");
    let out = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(to)
        .args([
            "--strip-components=5",
            "--wildcards",
            "*/vendor/llama.cpp/tools/llama-bench/*.cpp",
        ])
        .output()
        .expect("run tar");
    assert!(
        out.status.success() && to.join("llama-bench.cpp").exists(),
        "{} holds no tools/llama-bench/llama-bench.cpp: {}",
        archive.display(),
        text(&out)
    );
}
