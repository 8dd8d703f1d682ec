//! `cargo xtask demo | test | lint | deb | fuzz | gpu-bundle`: the README's set-up commands, the
//! package, the fuzzing campaign, and what the GPU benchmark carries to a GPU box.
//!
//! Each installs what is missing on a fresh Debian machine (system packages, models), builds into
//! a target directory outside the checkout (`CARGO_TARGET_DIR`, default `~/.cache/scribe/target`)
//! so later runs are incremental, and then does its job.
//!
//! xtask is what installs the system packages, so it must build without any: it depends on the
//! standard library and pure-Rust crates only, never on a workspace crate (those link ALSA,
//! SQLCipher and the engines). What needs the workspace runs as one of its binaries after the
//! build (`demo-visit`, `bench-gpu`). `xtask/tests/bootstrap.rs` fails if that ever changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Debian packages the build, the tests and the demo need.
const PACKAGES: &[&str] = &[
    "cmake",          // whisper.cpp and llama.cpp build with CMake
    "g++",            // their C++ (else `c++` is clang++, built without OpenMP)
    "clang",          // bindgen for the -sys crates
    "libclang-dev",   //
    "pkg-config",     //
    "libasound2-dev", // cpal (room microphone)
    "espeak-ng",      // synthesized visits for tests and the demo
    "sox",            //
    "perl",           // vendored OpenSSL for SQLCipher
    "make",           //
];

/// And what only the tests need: a real browser for the review app's end-to-end test.
const TEST_PACKAGES: &[&str] = &[
    "chromium",          // headless, driven over WebDriver
    "chromium-driver",   //
    "fonts-dejavu-core", // so screenshots show text
    "ffmpeg",            // upload tests: MP3, M4A/AAC, OGG Vorbis/Opus and WebM made from real speech
    "iproute2",          // the egress test brings up loopback in an empty network namespace
    "nftables",          // the generated firewall rules are checked by nft itself
    "systemd",           // systemd-analyze scores the units; systemd-socket-activate runs their workers
    "faketime",          // the clock-jump fault test moves the daemon's wall clock (libfaketime)
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    match args.first().map(String::as_str) {
        Some("demo") => demo(args.get(1).map(String::as_str).unwrap_or("default"))?,
        Some("test") => test(&args[1..])?,
        Some("lint") => lint()?,
        Some("deb") => deb()?,
        Some("fuzz") => fuzz(&args[1..])?,
        Some("gpu-bundle") => bench_gpu(&["bundle"])?,
        Some("gpu-report") => bench_gpu(&["report", args.get(1).context("usage: cargo xtask gpu-report RESULTS")?])?,
        _ => bail!(
            "usage: cargo xtask demo [PROFILE] | test [CARGO TEST ARGS] | lint | deb | fuzz [--seconds N] [--runs N] [TARGET…] | gpu-bundle | gpu-report RESULTS"
        ),
    }
    eprintln!("xtask: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/scribe")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| cache_dir().join("target"), PathBuf::from)
}

fn models_dir() -> PathBuf {
    std::env::var_os("SCRIBE_MODELS").map_or_else(|| cache_dir().join("models"), PathBuf::from)
}

/// The checkout `cargo xtask` was run in, not the one this binary was compiled from: with a
/// target dir shared between checkouts, one xtask binary serves them all.
fn workspace_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("a current directory");
    match cwd.ancestors().find(|d| d.join("xtask/Cargo.toml").exists()) {
        Some(root) => root.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace")
            .to_path_buf(),
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root()).env("CARGO_TARGET_DIR", target_dir());
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed with {status}", cmd.get_program());
    }
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn has_pip() -> bool {
    runs(Command::new("python3").args(["-m", "pip", "--version"]))
}

/// Installs missing Debian packages, `PACKAGES` and `extra` (and python3-pip, which model
/// installation and the FHIR validation in the tests use) — or, where that cannot be done, stops
/// with the packages and the command that installs them, before anything is built.
fn ensure_system_packages(extra: &[&'static str]) -> Result<()> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .chain(extra)
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if !has_pip() {
        for p in ["python3", "python3-pip"] {
            if !missing.contains(&p) {
                missing.push(p);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let sudo = if root { "" } else { "sudo " };
    let refuse = |why: String| -> anyhow::Error {
        anyhow::anyhow!(
            "Scribe needs these Debian packages, which are not installed: {list}\n\
             {why}\n\
             Install them, then run this command again:\n\n    \
             {sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends {list}\n",
            list = missing.join(" "),
        )
    };
    if !root && !runs(Command::new("sudo").arg("--version")) {
        return Err(refuse(
            "xtask cannot install them: it does not run as root and sudo is not available.".into(),
        ));
    }
    eprintln!("xtask: installing system packages: {}", missing.join(" "));
    let apt = |args: &[&str]| -> Command {
        let mut c = Command::new(if root { "apt-get" } else { "sudo" });
        if !root {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run(&mut apt(&["update", "-qq"])).map_err(|e| {
        refuse(format!(
            "`{sudo}apt-get update` failed ({e:#}): are Debian's package sources reachable?"
        ))
    })?;
    run(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(&missing))
        .map_err(|e| refuse(format!("`{sudo}apt-get install` failed ({e:#}).")))?;
    let still: Vec<&str> = missing.iter().copied().filter(|p| !installed(p)).collect();
    if !still.is_empty() {
        return Err(refuse(format!(
            "apt-get finished, but dpkg still lists these as not installed: {}.",
            still.join(" ")
        )));
    }
    Ok(())
}

/// Whether `cmd` starts and exits 0 (its output discarded).
fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build() -> Result<PathBuf> {
    run(cargo().args(["build", "--release", "--workspace", "--bins"]))?;
    Ok(target_dir().join("release"))
}

fn scribe(bin: &Path) -> Command {
    let mut cmd = Command::new(bin.join("scribe"));
    cmd.arg("--models").arg(models_dir());
    cmd
}

fn test(extra: &[String]) -> Result<()> {
    ensure_system_packages(TEST_PACKAGES)?;
    let bin = build()?;
    run(scribe(&bin).args(["models", "install", "--profile", "test"]))?;
    run(cargo()
        .args(["test", "--release", "--workspace"])
        .args(extra)
        .env("SCRIBE_BIN_DIR", &bin)
        .env("SCRIBE_MODELS", models_dir()))
}

/// `cargo xtask gpu-bundle | gpu-report RESULTS`: the tests crate's `bench-gpu`, which needs the
/// workspace (so the system packages) to build.
fn bench_gpu(args: &[&str]) -> Result<()> {
    ensure_system_packages(&[])?;
    run(cargo()
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "tests",
            "--bin",
            "bench-gpu",
            "--",
        ])
        .args(args))
}

/// Builds the binaries and packs them, the systemd units and the docs into a .deb in
/// `<target>/debian/`.
fn deb() -> Result<()> {
    ensure_system_packages(&[])?;
    let bin = build()?;
    let version = env!("CARGO_PKG_VERSION");
    let out = target_dir().join("debian");
    run(Command::new("sh")
        .arg(workspace_root().join("firmware/package/build-deb.sh"))
        .arg(&bin)
        .arg(version)
        .arg(&out))
}

fn lint() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// What `cargo xtask fuzz` runs: `fuzz/`'s targets, one after another.
const FUZZ_TARGETS: &[&str] = &[
    "audio_decode",
    "ct2_import",
    "template_parse",
    "config_parse",
    "ws_audio_chunk",
    "ws_recording",
    "http_request",
];

/// Runs each fuzz target (all, or those named) for `--seconds` (default 300), or until `--runs`
/// executions if that comes first, on its seeds
/// (`fuzz/seeds/`) and corpus (`fuzz/corpus/`: what it finds new is kept there, minimized) and writes
/// `docs/bench/fuzz.md`: executions, speed, corpus size and crashes (saved in
/// `fuzz/artifacts/TARGET/`). Needs the nightly toolchain and cargo-fuzz; installs them if missing.
fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = 300u64;
    let mut runs: Option<u64> = None;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = it.next().context("--seconds N")?.parse().context("--seconds N")?,
            "--runs" => runs = Some(it.next().context("--runs N")?.parse().context("--runs N")?),
            t if FUZZ_TARGETS.contains(&t) => targets.push(t.to_string()),
            other => bail!(
                "unknown fuzz target or option {other:?}; targets: {}",
                FUZZ_TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.iter().map(|t| t.to_string()).collect();
    }
    ensure_system_packages(&[])?;
    let nightly = |args: &[&str]| -> Command {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", "nightly"]).args(args).current_dir(workspace_root());
        cmd
    };
    if !nightly(&["rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
    }
    if !nightly(&["cargo", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    // Panics, overflow and debug assertions are what safe Rust can get wrong; no sanitizer keeps
    // the targets fast. A separate target dir: nightly and stable artifacts do not mix.
    let fuzz_target_dir = cache_dir().join("fuzz-target");
    let common = |cmd: &mut Command| {
        cmd.args(["--fuzz-dir", "fuzz", "--sanitizer", "none", "--debug-assertions"])
            .args(["--features", "libfuzzer", "--target-dir"])
            .arg(&fuzz_target_dir);
    };
    let mut build = nightly(&["cargo", "fuzz", "build"]);
    common(&mut build);
    run(&mut build)?;

    let mut rows = Vec::new();
    for target in &targets {
        let corpus = workspace_root().join("fuzz/corpus").join(target);
        // A new target has no corpus yet; libFuzzer wants the folder to keep what it finds.
        std::fs::create_dir_all(&corpus)?;
        let before = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        let mut cmd = nightly(&["cargo", "fuzz", "run"]);
        common(&mut cmd);
        cmd.arg(target)
            .arg(&corpus)
            .arg(workspace_root().join("fuzz/seeds").join(target))
            .args(["--", &format!("-runs={}", runs.map_or(-1, |n| n as i64))])
            .args([
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
                "-timeout=20",
                "-print_final_stats=1",
            ]);
        match runs {
            Some(n) => eprintln!("xtask: fuzzing {target} for {n} executions (at most {seconds} s)"),
            None => eprintln!("xtask: fuzzing {target} for {seconds} s"),
        }
        let started = Instant::now();
        let out = cmd.stderr(Stdio::piped()).output().context("run cargo fuzz")?;
        // Less than asked when it stopped at a crash.
        let ran = started.elapsed().as_secs();
        let log = String::from_utf8_lossy(&out.stderr);
        let log_path = cache_dir().join(format!("fuzz-{target}.log"));
        std::fs::write(&log_path, log.as_bytes())?;
        let stat = |name: &str| -> String {
            log.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .map_or_else(|| "?".into(), |v| v.trim().to_string())
        };
        let crashes: Vec<String> = std::fs::read_dir(workspace_root().join("fuzz/artifacts").join(target))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if out.status.success() {
            // Keep the corpus small enough for the repository: only inputs that reach new code
            // (edges, not hit counts).
            let mut cmin = nightly(&["cargo", "fuzz", "cmin"]);
            common(&mut cmin);
            run(cmin.arg(target).args(["--", "-use_counters=0"]))?;
        }
        let after = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        rows.push(format!(
            "| {target} | {} | {ran} | {} | {} | {before} → {after} | {} | {} |",
            today()?,
            stat("number_of_executed_units"),
            stat("average_exec_per_sec"),
            stat("peak_rss_mb"),
            if crashes.is_empty() && out.status.success() {
                "0".to_string()
            } else if crashes.is_empty() {
                format!("failed: see {}", log_path.display())
            } else {
                format!("**{}** ({})", crashes.len(), crashes.join(", "))
            }
        ));
    }
    // Targets not run this time keep their row from the last report.
    let path = workspace_root().join("docs/bench/fuzz.md");
    let earlier = std::fs::read_to_string(&path).unwrap_or_default();
    for target in FUZZ_TARGETS.iter().filter(|t| !targets.iter().any(|r| r == *t)) {
        if let Some(row) = earlier.lines().find(|l| l.starts_with(&format!("| {target} |"))) {
            rows.push(row.to_string());
        }
    }
    rows.sort_by_key(|row| FUZZ_TARGETS.iter().position(|t| row.starts_with(&format!("| {t} |"))));
    let report = format!(
        "# Fuzzing\n\n`cargo xtask fuzz [--seconds N] [--runs N] [TARGET…]` (2-core build box; cargo-fuzz/libFuzzer, \
         no sanitizer, debug assertions and overflow checks on); each row is that target's latest run. \
         Each target starts from its seeds in `fuzz/seeds/TARGET/` and the corpus earlier runs kept \
         in `fuzz/corpus/TARGET/` (minimized to the inputs that reach new code); `cargo test -p \
         scribe-fuzz` replays them all on stable in each test run. A crash is saved in \
         `fuzz/artifacts/TARGET/`; once fixed, it joins the seeds as `regression-…`.\n\n\
         | target | run on | seconds | executions | exec/s | corpus files (before → after) | peak RSS (MB) | crashes |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n{}\n",
        rows.join("\n")
    );
    std::fs::write(&path, report)?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

fn today() -> Result<String> {
    let out = Command::new("date").arg("+%Y-%m-%d").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn demo(profile: &str) -> Result<()> {
    ensure_system_packages(&[])?;
    let bin = build()?;
    run(scribe(&bin).args(["models", "install", "--profile", profile]))?;

    let dir = cache_dir().join("demo");
    let home = dir.join("home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&dir)?;
    let wav = dir.join("visit.wav");
    eprintln!(
        "xtask: synthesizing a two-voice visit with espeak-ng → {}",
        wav.display()
    );
    run(Command::new(bin.join("demo-visit")).arg(&wav))?;

    let app = |args: &[&str]| {
        let mut c = scribe(&bin);
        c.arg("--home").arg(&home).args(args);
        c
    };
    run(&mut app(&["init", "--profile", profile]))?;
    let password = "demo-password-123\n";
    run_with_stdin(
        &mut app(&["user", "add", "dr_demo", "--role", "physician", "--password-stdin"]),
        password,
    )?;

    println!("\n=== scribe ingest {} ===", wav.display());
    let out = app(&["ingest", wav.to_str().unwrap()])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("ingest failed");
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    println!("\n=== scribe show {id} ===");
    run(&mut app(&["show", &id]))?;
    // A physician checks each flag against the transcript before letting it stand; the demo
    // acknowledges them all so it can show a signature (the list is printed first).
    println!("=== scribe sign {id} --user dr_demo --acknowledge-flags ===");
    run_with_stdin(
        &mut app(&["sign", &id, "--user", "dr_demo", "--acknowledge-flags"]),
        password,
    )?;
    println!("\n=== scribe verify {id} ===");
    run(&mut app(&["verify", &id]))?;
    println!(
        "\nDemo home: {} (inspect with: scribe --home {} show {id})",
        home.display(),
        home.display()
    );
    Ok(())
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<()> {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).spawn()?;
    child.stdin.take().expect("stdin").write_all(input.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("{:?} failed with {status}", cmd.get_program());
    }
    Ok(())
}
