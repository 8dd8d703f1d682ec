//! Note-ready latency: how long after "stop" a recorded visit's draft is ready for review.
//!
//! A synthesized visit (two voices, many problems, doses and sides, as a long follow-up visit
//! has) is streamed into a real daemon at `--speed` times real time in one-second chunks, as the
//! room recorder and the browser do; the clock runs from "stop" until the draft is stored. Three
//! ways, each on a fresh daemon that has already drafted a short warm-up visit (models loaded):
//!
//! - *prefill*: the default — utterances transcribed live are kept (only the tail after the last
//!   pause is transcribed after stop) and the transcript is evaluated into the model's cache while
//!   the visit is recorded;
//! - *no prefill*: the same with `drafting.prefill_while_recording = false`;
//! - *upload*: the same audio as a file, `scribe ingest visit.wav` — the whole recording is
//!   transcribed and read by the model after the fact (what a visit costs with no streaming).
//!
//! `SCRIBE_TEST_PROFILE=default cargo bench -p tests --bench note_ready -- [--minutes 5,15]
//! [--speed 2] [--ways prefill,no prefill,upload] [--out DIR]` writes DIR/note-ready.md (default
//! DIR: docs/bench). `SCRIBE_BENCH_KEEP_HOMES=1` keeps each run's appliance home (and its log).

use std::path::Path;
use std::time::{Duration, Instant};

use eval::speech::Voice;
use store::{Actor, NewEncounter, Store};
use tests::Appliance;

#[derive(Debug, Default)]
struct Run {
    ready_s: f64,
    /// Audio transcribed after stop, and how long it took.
    asr_audio_s: f64,
    asr_s: f64,
    prompt_tokens: u64,
    cached_tokens: u64,
    prompt_s: f64,
    generated_tokens: u64,
    generate_s: f64,
    daemon_peak_rss_mb: f64,
    asr_peak_rss_mb: f64,
    llm_peak_rss_mb: f64,
    failed: Option<String>,
}

fn last_job(show: &serde_json::Value, kind: &str) -> serde_json::Value {
    show["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().rfind(|j| j["kind"] == kind))
        .map(|j| j["stats"].clone())
        .unwrap_or_default()
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn state(conn: &rusqlite::Connection, id: &str) -> String {
    conn.query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))
        .unwrap_or_default()
}

fn wait_settled(conn: &rusqlite::Connection, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let s = state(conn, id);
        if !matches!(s.as_str(), "recording" | "transcribing" | "drafting" | "") || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Streams `pcm` into the store as a recording at `speed` times real time.
fn stream(store: &mut Store, pcm: &[i16], speed: f64) -> String {
    let source = Actor::system("bench-source");
    let id = store
        .start_recording(
            &source,
            &NewEncounter {
                template: "soap".into(),
                ..NewEncounter::default()
            },
        )
        .unwrap();
    let t0 = Instant::now();
    for (seq, chunk) in pcm.chunks(16_000).enumerate() {
        let spoken = t0 + Duration::from_secs_f64((seq as f64 + chunk.len() as f64 / 16_000.0) / speed);
        if let Some(wait) = spoken.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        store.append_audio(&source, &id, seq as u32, chunk, None).unwrap();
    }
    id
}

enum Mode {
    Prefill,
    NoPrefill,
    Upload,
}

fn run(mode: Mode, pcm: &[i16], wav: &Path, speed: f64) -> Run {
    let app = Appliance::new();
    if std::env::var_os("SCRIBE_BENCH_KEEP_HOMES").is_some() {
        eprintln!("  home: {}", app.home().display());
    }
    let prefill = if matches!(mode, Mode::Prefill) { "true" } else { "false" };
    let mut daemon = app.spawn_pipeline_daemon(&[("SCRIBE_PREFILL_WHILE_RECORDING", prefill)]);
    let mut store = Store::open(&app.db(), &app.key()).unwrap();
    let conn = app.open_raw();
    // Warm-up: a short recorded visit loads both workers, as on a box that has run all day.
    let warm = stream(&mut store, &pcm[..(20 * 16_000).min(pcm.len())], 4.0);
    store
        .finish_recording(&Actor::system("bench-source"), &warm, "stopped")
        .unwrap();
    wait_settled(&conn, &warm);

    let (id, stopped) = match mode {
        Mode::Upload => {
            let started = Instant::now();
            let out = app.command(&["ingest", "--no-wait"]).arg(wav).output().unwrap();
            assert!(out.status.success(), "{}", tests::text(&out));
            let id = String::from_utf8_lossy(&out.stdout)
                .trim()
                .lines()
                .last()
                .unwrap()
                .to_string();
            (id, started)
        }
        Mode::Prefill | Mode::NoPrefill => {
            let id = stream(&mut store, pcm, speed);
            // "Stop" is pressed when the visit ends.
            let stopped = Instant::now();
            store
                .finish_recording(&Actor::system("bench-source"), &id, "stopped")
                .unwrap();
            (id, stopped)
        }
    };
    let end = wait_settled(&conn, &id);
    let ready_s = stopped.elapsed().as_secs_f64();
    let daemon_peak_rss_mb = peak_rss_mb(daemon.id());
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let show = app.show(&id);
    let (asr, draft) = (last_job(&show, "asr"), last_job(&show, "draft"));
    let ms = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0) / 1000.0;
    let mb = |v: &serde_json::Value| v["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0;
    if std::env::var_os("SCRIBE_BENCH_KEEP_HOMES").is_some() {
        // Leaves the temporary home (database, logs) on disk for a look afterwards.
        std::mem::forget(app);
    }
    Run {
        ready_s,
        asr_audio_s: ms(&asr, "audio_ms"),
        asr_s: ms(&asr, "wall_ms"),
        prompt_tokens: draft["prompt_tokens"].as_u64().unwrap_or(0),
        cached_tokens: draft["cached_tokens"].as_u64().unwrap_or(0),
        prompt_s: ms(&draft, "prompt_ms"),
        generated_tokens: draft["generated_tokens"].as_u64().unwrap_or(0),
        generate_s: ms(&draft, "generate_ms"),
        daemon_peak_rss_mb,
        asr_peak_rss_mb: mb(&asr),
        llm_peak_rss_mb: mb(&draft),
        failed: (end != "awaiting_review").then(|| format!("{end}: {}", show["failure_reason"])),
    }
}

fn main() {
    let args = tests::BenchArgs::from_env();
    let arg = |name: &str| args.get(name);
    let out = args.out();
    let speed: f64 = arg("--speed").map_or(2.0, |s| s.parse().expect("--speed N"));
    let minutes: Vec<f64> = arg("--minutes")
        .unwrap_or_else(|| "5,15".into())
        .split(',')
        .map(|m| m.parse().expect("--minutes 5,15"))
        .collect();

    let ways: Vec<String> = arg("--ways").map_or_else(
        || vec!["prefill".into(), "no prefill".into(), "upload".into()],
        |w| w.split(',').map(str::to_string).collect(),
    );
    let ways: Vec<&str> = ways.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    let mut memory = String::new();
    let mut ratios = String::new();
    for &m in &minutes {
        let wav = dir.path().join(format!("visit-{m}.wav"));
        let lines = tests::long_visit_lines(m);
        let lines: Vec<(Voice, &str)> = lines.iter().map(|(v, t)| (*v, t.as_str())).collect();
        eval::speech::synthesize(&lines, &wav).expect("synthesize (espeak-ng and sox)");
        let pcm = audio::decode_wav_file(&wav).unwrap().samples;
        let audio_min = pcm.len() as f64 / 16_000.0 / 60.0;
        eprintln!("{audio_min:.1}-minute visit: streaming at {speed}x");
        let runs: Vec<(&str, Run)> = [
            ("prefill", Mode::Prefill),
            ("no prefill", Mode::NoPrefill),
            ("upload", Mode::Upload),
        ]
        .into_iter()
        .filter(|(label, _)| ways.contains(label))
        .map(|(label, mode)| (label, run(mode, &pcm, &wav, speed)))
        .collect();
        for (label, r) in &runs {
            eprintln!("  {label}: {r:?}");
            rows.push_str(&format!(
                "| {audio_min:.1} min | {label} | **{:.1} s** | {:.1} s | {:.1} s of audio in {:.1} s | {} ({} cached) | {:.1} s | {} in {:.1} s |{}\n",
                r.ready_s,
                r.ready_s - r.generate_s,
                r.asr_audio_s,
                r.asr_s,
                r.prompt_tokens,
                r.cached_tokens,
                r.prompt_s,
                r.generated_tokens,
                r.generate_s,
                r.failed.as_deref().map_or(String::new(), |f| format!(" failed: {f}")),
            ));
            memory.push_str(&format!(
                "| {audio_min:.1} min | {label} | {:.0} MB | {:.0} MB | {:.0} MB |\n",
                r.daemon_peak_rss_mb, r.asr_peak_rss_mb, r.llm_peak_rss_mb
            ));
        }
        let way = |w: &str| runs.iter().find(|(l, _)| *l == w).map(|(_, r)| r);
        let ratio = |w: &str, f: fn(&Run) -> f64| match (way(w), way("prefill")) {
            (Some(a), Some(b)) => f(a) / f(b),
            _ => f64::NAN,
        };
        let ready = |r: &Run| r.ready_s;
        let starts = |r: &Run| r.ready_s - r.generate_s;
        ratios.push_str(&format!(
            "| {audio_min:.1} min | {:.2} | {:.2} | {:.1} | {:.1} |\n",
            ratio("no prefill", ready),
            ratio("upload", ready),
            ratio("no prefill", starts),
            ratio("upload", starts),
        ));
    }
    let report = format!(
        "# Note-ready latency after \"stop\"\n\n\
         `SCRIBE_TEST_PROFILE={profile} cargo bench -p tests --bench note_ready -- --speed {speed}` — {threads} cores, \
         profile `{profile}`, {date}.\n\n\
         A synthesized follow-up visit (two espeak-ng voices, twelve problems with doses, sides and results, \
         revisited for the longer visit) streamed into `scribe daemon` at {speed}× real time in one-second chunks; \
         the clock runs from \"stop\" to the draft being stored. Each way on a fresh daemon whose workers have \
         already drafted a warm-up visit. *prefill*: the default; *no prefill*: `drafting.prefill_while_recording \
         = false`; *upload*: the same audio ingested as a file after the visit.\n\n\
         | visit | way | note ready after stop | writing starts after stop | transcribed after stop | prompt tokens | prompt evaluated in | tokens generated |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n{rows}\n\
         *Writing starts* = note ready − generation time: what prefill and live transcription remove. The \
         rest is the model writing the note, which varies with the note's length (the live and uploaded \
         transcripts differ slightly, so the notes do).\n\n\
         Ratio of note-ready latency to *prefill* (same run):\n\n\
         | visit | note ready: no prefill / prefill | upload / prefill | writing starts: no prefill / prefill | upload / prefill |\n\
         |---|---:|---:|---:|---:|\n{ratios}\n\
         Peak resident memory:\n\n\
         | visit | way | daemon | speech worker | drafting worker |\n|---|---|---:|---:|---:|\n{memory}",
        profile = tests::profile(),
        threads = std::thread::available_parallelism().map_or(0, |n| n.get()),
        date = tests::today(),
    );
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("note-ready.md"), &report).unwrap();
    println!("{report}");
}
