//! `bench-gpu bundle` (what `cargo xtask gpu-bundle` runs): everything the GPU benchmark needs on a
//! GPU box that has nvcc and CMake but no Rust and no network, in one folder (`.gpu/`, well under
//! the 64 MiB a device call carries): the drafting worker and `scribe-draft-bench` built with
//! `--features cuda` and their libllama/libggml libraries, the llama.cpp sources vendored in
//! llama-cpp-sys-2 (trimmed to what a CUDA build reads), llama-bench's two source files from
//! llama-cpp-python's source package, `build-cuda-backend.sh`, `tests/gpu/run.sh`, and the default
//! drafting model as its header alone. `run.sh` pads the header with zeros to the model's size: a
//! model whose every weight is zero does the same arithmetic as the real one (speed only; the
//! tokens it writes are noise).
//!
//! `bench-gpu report RESULTS` (what `cargo xtask gpu-report RESULTS` runs) turns what `run.sh`
//! wrote on the GPU box into `docs/bench/gpu.md`.
//!
//! It lives here, beside the benches, rather than in xtask: it needs the tests library, and xtask
//! must build with no system packages (it is what installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use ::tests::llama_sources::{llama_bench_sources, vendored_llama_cpp};
use ::tests::{cache_dir, today};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bundle") => bundle(),
        Some("report") => report(Path::new(args.get(1).context("usage: bench-gpu report RESULTS")?)),
        _ => bail!("usage: bench-gpu bundle | bench-gpu report RESULTS"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the tests crate")
        .to_path_buf()
}

/// The model store the demo installed into (`SCRIBE_MODELS`, else `~/.cache/scribe/models`).
fn models_dir() -> PathBuf {
    std::env::var_os("SCRIBE_MODELS").map_or_else(|| cache_dir().join("models"), PathBuf::from)
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("bench-gpu: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed with {status}", cmd.get_program());
    }
    Ok(())
}

/// The drafting model of the default profile (`firmware/models.toml`).
const MODEL_FILE: &str = "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf";
/// ggml backends the GPU build does not read: left out to keep the bundle small.
const OTHER_BACKENDS: &[&str] = &[
    "ggml-cann",
    "ggml-et",
    "ggml-hexagon",
    "ggml-hip",
    "ggml-metal",
    "ggml-musa",
    "ggml-opencl",
    "ggml-openvino",
    "ggml-rpc",
    "ggml-sycl",
    "ggml-virtgpu",
    "ggml-vulkan",
    "ggml-webgpu",
    "ggml-zdnn",
    "ggml-zendnn",
];

fn bundle() -> Result<()> {
    let root = workspace_root();
    let out = root.join(".gpu");
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::create_dir_all(out.join("worker"))?;

    // The worker with backends as run-time modules. Its own target dir: the feature changes
    // llama-cpp-sys-2's build, and the CPU build's binaries must stay as they are. No
    // target-cpu=native: the GPU box's processor is another, and ggml picks its CPU variant at
    // run time anyway.
    let target = cache_dir().join("target-cuda");
    run(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", "-Cdebuginfo=0")
            .args(["build", "--release", "-p", "llm", "--features", "cuda", "--bins"]),
    )?;
    let release = target.join("release");
    for bin in ["scribe-draft-worker", "scribe-draft-bench"] {
        fs::copy(release.join(bin), out.join("worker").join(bin))?;
    }
    // libllama/libggml (with their soname links) and the CPU variants, as cargo's build of
    // llama-cpp-sys-2 left them.
    let sys_out = newest_build_out(&release, "llama-cpp-sys-2")?;
    copy_libraries(&sys_out.join("lib"), &out.join("worker"))?;
    copy_libraries(&sys_out.join("backends"), &out.join("worker"))?;

    let llama_cpp = vendored_llama_cpp();
    copy_tree(&llama_cpp, &out.join("llama.cpp"), &|rel: &Path| {
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let keep_top = [
            "CMakeLists.txt",
            "cmake",
            "include",
            "src",
            "common",
            "vendor",
            "ggml",
            "LICENSE",
        ];
        // miniaudio.h (4 MB) is only for llama.cpp's audio tools; its CMakeLists stays.
        keep_top.contains(&top)
            && rel != Path::new("vendor/miniaudio/miniaudio.h")
            && !OTHER_BACKENDS
                .iter()
                .any(|b| rel.starts_with(Path::new("ggml/src").join(b)))
    })?;
    llama_bench_sources(&out.join("llama-bench-src"));

    let model = models_dir().join(MODEL_FILE);
    let (head, size) =
        gguf_head(&model).with_context(|| format!("reading {} (install it: cargo xtask demo)", model.display()))?;
    fs::write(out.join("model.head"), head)?;
    fs::write(out.join("model.size"), size.to_string())?;

    let package = root.join("firmware/package");
    fs::copy(package.join("build-cuda-backend.sh"), out.join("build-cuda-backend.sh"))?;
    copy_tree(&package.join("cuda"), &out.join("cuda"), &|_: &Path| true)?;
    fs::copy(root.join("tests/gpu/run.sh"), out.join("run.sh"))?;
    eprintln!(
        "gpu: GPU bundle in {} ({:.1} MB); on the GPU box: bash .gpu/run.sh RESULTS",
        out.display(),
        dir_size(&out)? as f64 / 1e6
    );
    Ok(())
}

/// The shared libraries in `dir` (links kept as links).
fn copy_libraries(dir: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // libllama-common is llama.cpp's tool library: the worker does not link it. The
        // Sapphire Rapids CPU variant uses AMX, which virtualised Xeons advertise but do not
        // grant: it dies with SIGILL there (as the AMX kernels of a native build segfault, see
        // .cargo/config.toml); without it ggml picks the next best variant (zen4 on those Xeons).
        let left_out = ["libllama-common", "libggml-cpu-sapphirerapids"];
        if name.starts_with("lib") && name.contains(".so") && !left_out.iter().any(|l| name.starts_with(l)) {
            let dest = to.join(name);
            if path.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&path)?, dest)?;
            } else {
                fs::copy(&path, dest)?;
            }
        }
    }
    Ok(())
}

/// `release/build/<crate>-<hash>/out` of the most recent build of that crate's build script.
fn newest_build_out(release: &Path, krate: &str) -> Result<PathBuf> {
    let mut outs: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(release.join("build"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("out"))
        .filter(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{krate}-")))
                && p.is_dir()
        })
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    outs.sort();
    outs.pop().map(|(_, p)| p).context("no build output of llama-cpp-sys-2")
}

fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<()> {
    fn walk(base: &Path, dir: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let rel = path.strip_prefix(base)?;
            if !keep(rel) {
                continue;
            }
            let dest = to.join(rel);
            if path.is_dir() {
                fs::create_dir_all(&dest)?;
                walk(base, &path, to, keep)?;
            } else {
                fs::copy(&path, &dest)?;
            }
        }
        Ok(())
    }
    fs::create_dir_all(to)?;
    walk(from, from, to, keep)
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.path().symlink_metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// A GGUF file's bytes up to where its tensor data starts, and its whole size.
fn gguf_head(path: &Path) -> Result<(Vec<u8>, u64)> {
    use std::io::Read;
    let file = fs::File::open(path)?;
    let size = file.metadata()?.len();
    // A header is a few MB (mostly the vocabulary); 64 MiB is all a device call carries anyway.
    let mut head = Vec::new();
    file.take(64 << 20).read_to_end(&mut head)?;
    let offset = gguf_data_offset(&head)?;
    head.truncate(offset);
    Ok((head, size))
}

/// Walks GGUF v2/v3's header (key/values, tensor infos) to the aligned start of the tensor data.
fn gguf_data_offset(b: &[u8]) -> Result<usize> {
    struct Reader<'a> {
        b: &'a [u8],
        at: usize,
    }
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8]> {
            let end = self
                .at
                .checked_add(n)
                .filter(|&e| e <= self.b.len())
                .context("GGUF header cut short")?;
            let s = &self.b[self.at..end];
            self.at = end;
            Ok(s)
        }
        fn u32(&mut self) -> Result<u32> {
            Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
        }
        fn u64(&mut self) -> Result<u64> {
            Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
        }
        fn string(&mut self) -> Result<String> {
            let n = self.u64()? as usize;
            Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
        }
        /// Skips one value of `kind`, returning it when it is an integer (for general.alignment).
        fn value(&mut self, kind: u32) -> Result<Option<u64>> {
            let fixed = |kind| match kind {
                0 | 1 | 7 => Some(1),
                2 | 3 => Some(2),
                4..=6 => Some(4),
                10..=12 => Some(8),
                _ => None,
            };
            match kind {
                8 => self.string().map(|_| None),
                9 => {
                    let inner = self.u32()?;
                    let n = self.u64()?;
                    for _ in 0..n {
                        self.value(inner)?;
                    }
                    Ok(None)
                }
                k => {
                    let size = fixed(k).with_context(|| format!("unknown GGUF value type {k}"))?;
                    let raw = self.take(size)?;
                    let mut wide = [0u8; 8];
                    wide[..size].copy_from_slice(raw);
                    Ok(Some(u64::from_le_bytes(wide)))
                }
            }
        }
    }
    let mut r = Reader { b, at: 0 };
    if r.take(4)? != b"GGUF" {
        bail!("not a GGUF file");
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        bail!("GGUF version {version} is not supported");
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    let mut alignment = 32u64;
    for _ in 0..kvs {
        let key = r.string()?;
        let kind = r.u32()?;
        let value = r.value(kind)?;
        if key == "general.alignment" {
            alignment = value.filter(|&a| a > 0).context("bad general.alignment")?;
        }
    }
    for _ in 0..tensors {
        r.string()?;
        let dims = r.u32()?;
        r.take(dims as usize * 8 + 4 + 8)?;
    }
    Ok(r.at.div_ceil(alignment as usize) * alignment as usize)
}

/// `cargo xtask gpu-report RESULTS`: `docs/bench/gpu.md` from what `run.sh` wrote on the GPU box.
fn report(results: &Path) -> Result<()> {
    let read = |name: &str| -> Result<String> {
        fs::read_to_string(results.join(name)).with_context(|| format!("reading {name} in {}", results.display()))
    };
    let json = |name: &str| -> Result<serde_json::Value> {
        serde_json::from_str(&read(name)?).with_context(|| format!("{name} is not JSON"))
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let scribe = |name: &str| -> Result<(String, f64, f64, f64)> {
        let v = json(name)?;
        let runs = v["runs"].as_array().context("no runs")?;
        let get = |k: &str| median(runs.iter().filter_map(|r| r[k].as_f64()).collect());
        Ok((
            v["engine"].as_str().unwrap_or("?").to_string(),
            get("prompt_tokens_per_s"),
            get("generate_tokens_per_s"),
            v["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
        ))
    };
    let llama = |name: &str| -> Result<(f64, f64)> {
        let v = json(name)?;
        let pick = |p: u64, g: u64, d: u64| {
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .find(|t| t["n_prompt"] == p && t["n_gen"] == g && t["n_depth"] == d)
                })
                .and_then(|t| t["samples_ts"].as_array())
                .map(|runs| median(runs.iter().filter_map(|r| r.as_f64()).collect()))
                .with_context(|| format!("no pp{p}/tg{g}@d{d} in {name}"))
        };
        Ok((pick(512, 0, 0)?, pick(0, 128, 512)?))
    };
    let (gpu_engine, gpu_pp, gpu_tg, gpu_rss) = scribe("scribe-gpu.json")?;
    let (cpu_engine, cpu_pp, cpu_tg, cpu_rss) = scribe("scribe-cpu.json")?;
    let (lgpu_pp, lgpu_tg) = llama("llama-bench-gpu.json")?;
    let (lcpu_pp, lcpu_tg) = llama("llama-bench-cpu.json")?;
    let host = read("host.txt")?;
    let mut host = host.lines();
    let cores = host.next().unwrap_or("?").trim().to_string();
    let cpu = host
        .next()
        .unwrap_or("")
        .split(':')
        .nth(1)
        .unwrap_or("?")
        .trim()
        .to_string();
    let gpu = read("gpu.txt")?.trim().to_string();
    let build = read("build.txt")?
        .trim()
        .trim_start_matches("cuda_build_s=")
        .to_string();
    let row =
        |what: &str, ours: f64, theirs: f64| format!("| {what} | {ours:.0} | {theirs:.0} | {:.2} |\n", ours / theirs);
    let md = format!(
        "# Drafting on a GPU\n\n\
         Measured {date} on a lent GPU box — {gpu} (name, memory, driver); {cores} cores of {cpu} — with\n\
         `cargo xtask gpu-bundle`, then on the box `bash .gpu/run.sh RESULTS` (one script: builds ggml's\n\
         CUDA backend and llama-bench from the bundled sources in {build} s, then benchmarks), then\n\
         `cargo xtask gpu-report RESULTS`.\n\n\
         The model is the default drafting model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1.1 GB) with its\n\
         header as installed and every weight zero: a device call carries 64 MiB, and the arithmetic —\n\
         hence the speed — does not depend on the weights' values. So these are speeds, not notes.\n\
         Scribe is `scribe-draft-bench` built with `--features cuda` (the worker's engine: ggml's\n\
         backends loaded at run time from its folder, every layer on the GPU); llama-bench is llama.cpp's\n\
         own, from the same vendored sources. Prompt: 512 tokens from an empty context; generation: 128\n\
         tokens after a 512-token prompt. Tokens/s, the median of 5 runs after a warm-up (each tool's own).\n\n\
         ## On the GPU ({gpu_engine})\n\n\
         | | Scribe | llama-bench | Scribe / llama-bench |\n|---|---:|---:|---:|\n{g1}{g2}\n\
         ## On the same box's CPUs ({cpu_engine}, all {cores} cores, GPU hidden)\n\n\
         | | Scribe | llama-bench | Scribe / llama-bench |\n|---|---:|---:|---:|\n{c1}{c2}\n\
         ![Scribe and llama-bench on the GPU and the CPUs](gpu.svg)\n\n\
         GPU over CPU, Scribe: prompt {pr:.0}×, generation {gr:.1}×. Peak RSS of the benchmark process:\n\
         {gpu_rss:.0} MB on the GPU, {cpu_rss:.0} MB on the CPU (the model is memory-mapped).\n",
        date = today(),
        g1 = row("prompt tokens/s", gpu_pp, lgpu_pp),
        g2 = row("generated tokens/s", gpu_tg, lgpu_tg),
        c1 = row("prompt tokens/s", cpu_pp, lcpu_pp),
        c2 = row("generated tokens/s", cpu_tg, lcpu_tg),
        pr = gpu_pp / cpu_pp,
        gr = gpu_tg / cpu_tg,
    );
    let path = workspace_root().join("docs/bench/gpu.md");
    fs::write(&path, md)?;
    use ::tests::Bar;
    let panel = |what: &str, gpu: (f64, f64), cpu: (f64, f64)| {
        vec![
            Bar::new(&format!("{what}: Scribe, GPU"), gpu.0, true),
            Bar::new(&format!("{what}: llama-bench, GPU"), gpu.1, false),
            Bar::new(&format!("{what}: Scribe, CPU ({cores} cores)"), cpu.0, true),
            Bar::new(&format!("{what}: llama-bench, CPU"), cpu.1, false),
        ]
    };
    let svg = ::tests::bars_svg(&[
        (
            "Prompt, tokens/s",
            "",
            panel("prompt", (gpu_pp, lgpu_pp), (cpu_pp, lcpu_pp)),
        ),
        (
            "Generation, tokens/s",
            "",
            panel("generation", (gpu_tg, lgpu_tg), (cpu_tg, lcpu_tg)),
        ),
    ]);
    fs::write(path.with_extension("svg"), svg)?;
    eprintln!("bench-gpu: wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::gguf_data_offset;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// A GGUF v3 header: an array, a string and the alignment among the key/values, one 2-D tensor.
    fn header(alignment: Option<u32>) -> Vec<u8> {
        let mut h = b"GGUF".to_vec();
        h.extend(3u32.to_le_bytes());
        h.extend(1u64.to_le_bytes()); // tensors
        h.extend((2 + alignment.is_some() as u64).to_le_bytes()); // key/values
        string(&mut h, "tokenizer.ggml.tokens");
        h.extend(9u32.to_le_bytes()); // array
        h.extend(8u32.to_le_bytes()); // of strings
        h.extend(2u64.to_le_bytes());
        string(&mut h, "hello");
        string(&mut h, "world");
        string(&mut h, "general.name");
        h.extend(8u32.to_le_bytes());
        string(&mut h, "tiny");
        if let Some(a) = alignment {
            string(&mut h, "general.alignment");
            h.extend(4u32.to_le_bytes()); // u32
            h.extend(a.to_le_bytes());
        }
        string(&mut h, "w");
        h.extend(2u32.to_le_bytes());
        h.extend(4u64.to_le_bytes());
        h.extend(8u64.to_le_bytes());
        h.extend(0u32.to_le_bytes()); // f32
        h.extend(0u64.to_le_bytes()); // offset in the data
        h
    }

    #[test]
    fn the_tensor_data_starts_at_the_aligned_end_of_the_header() {
        for (alignment, expect) in [(None, 32), (Some(64), 64), (Some(256), 256)] {
            let mut file = header(alignment);
            let end = file.len();
            file.resize(end.div_ceil(expect) * expect + 128, 0);
            let offset = gguf_data_offset(&file).unwrap();
            assert_eq!(offset % expect, 0, "{alignment:?}");
            assert!(offset >= end && offset - end < expect, "{offset} vs header end {end}");
        }
    }

    #[test]
    fn a_cut_or_foreign_header_is_refused() {
        let file = header(None);
        assert!(gguf_data_offset(&file[..file.len() - 3]).is_err());
        assert!(gguf_data_offset(b"PK\x03\x04 not a model").is_err());
        let mut v9 = file.clone();
        v9[4] = 9;
        assert!(gguf_data_offset(&v9).unwrap_err().to_string().contains("version 9"));
    }
}
