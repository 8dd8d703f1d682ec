//! Load: K visits recorded at once (browser recorders streaming one-second chunks in real time over
//! the WebSocket protocol) while review clients read encounter pages, against one `scribe daemon`
//! on loopback. For each K: chunk commit latency (chunk sent → acknowledged), page latency and
//! throughput, errors, audio lost (stored vs sent, per visit), and whether live transcription kept
//! up (how much audio it had not yet heard when each recording stopped). A fresh appliance per K.
//!
//! `cargo bench -p tests --bench load -- [--recorders 1,2,4,8] [--seconds 45] [--readers 2]
//! [--out DIR]` writes DIR/load.md (default DIR: docs/bench).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tests::web::{Client, Recorder, ReviewServer};
use tests::{Appliance, DIALOGUE, text};

const PHYSICIAN: &str = "dr_load";

/// Live transcription "keeps up" when, at stop, it has heard all but this much of a recording
/// (about two utterances: what is still being spoken plus the pause that ends it).
const KEEPS_UP: Duration = Duration::from_secs(10);

struct Level {
    recorders: usize,
    acks: Vec<Duration>,
    pages: Vec<Duration>,
    page_seconds: f64,
    errors: Vec<String>,
    audio_lost_s: f64,
    behind: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn run_level(recorders: usize, seconds: usize, readers: usize, pcm: &[i16]) -> Level {
    let app = Appliance::new();
    app.set_config("\ntls = true", "\ntls = false");
    let password = app.add_user(PHYSICIAN, "physician");
    // A drafted visit for the readers.
    let file = app.home().join("dialogue.txt");
    std::fs::write(&file, DIALOGUE).unwrap();
    let (out, id) = app.ingest(&["--transcript", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let page = format!("/encounters/{}", id.unwrap());
    let server = ReviewServer::daemon(&app, &[("SCRIBE_THREADS", "2")]);
    let chunks: Vec<Vec<i16>> = pcm.chunks(16_000).cycle().take(seconds).map(<[i16]>::to_vec).collect();
    let chunks = Arc::new(chunks);

    let stop_reading = Arc::new(AtomicBool::new(false));
    let reader_threads: Vec<_> = (0..readers)
        .map(|_| {
            let (url, page, password, stop) = (
                server.url.clone(),
                page.clone(),
                password.clone(),
                Arc::clone(&stop_reading),
            );
            std::thread::spawn(move || {
                let mut client = Client::new(&url);
                client.login(PHYSICIAN, &password);
                let (mut times, mut errors) = (Vec::new(), Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    match client.try_get(&page) {
                        Ok(r) if r.status == 200 => times.push(t.elapsed()),
                        Ok(r) => errors.push(format!("GET {page}: {}", r.status)),
                        Err(e) => errors.push(format!("GET {page}: {e}")),
                    }
                }
                (times, errors)
            })
        })
        .collect();

    let started = Instant::now();
    let recorder_threads: Vec<_> = (0..recorders)
        .map(|n| {
            let (url, password, chunks) = (server.url.clone(), password.clone(), Arc::clone(&chunks));
            let (db, key) = (app.db(), app.key());
            std::thread::spawn(move || {
                let mut client = Client::new(&url);
                client.login(PHYSICIAN, &password);
                let csrf = client.csrf();
                let label = format!("Room {n}");
                let r = client.post(
                    "/record",
                    &[
                        ("csrf", &csrf),
                        ("label", &label),
                        ("template", "soap"),
                        ("physician", ""),
                    ],
                );
                let id = r.location.unwrap().trim_start_matches("/record/").to_string();
                let mut recorder = Recorder::open(&client, &csrf, &id).expect("open the stream");
                let (mut acks, mut errors) = (Vec::new(), Vec::new());
                let begun = Instant::now();
                for (seq, chunk) in chunks.iter().enumerate() {
                    // Real time: chunk n leaves at n seconds, as a microphone fills it.
                    let due = begun + Duration::from_secs(seq as u64 + 1);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let t = Instant::now();
                    match recorder.send(seq as u32, chunk) {
                        Ok(r) if r["ack"] == seq => acks.push(t.elapsed()),
                        Ok(r) => errors.push(format!("chunk {seq}: {r}")),
                        Err(e) => errors.push(format!("chunk {seq}: {e}")),
                    }
                }
                // What the live transcription has heard by now: the end of its last segment.
                let heard_ms: i64 = tests::open_raw(&db, &key)
                    .query_row(
                        "SELECT coalesce(max(end_ms), 0) FROM segments WHERE encounter_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                let behind = Duration::from_millis((chunks.len() as i64 * 1000 - heard_ms).max(0) as u64);
                if let Err(e) = recorder.stop() {
                    errors.push(format!("stop: {e}"));
                }
                (id, acks, errors, behind)
            })
        })
        .collect();
    let recorded: Vec<_> = recorder_threads.into_iter().map(|h| h.join().unwrap()).collect();
    let page_seconds = started.elapsed().as_secs_f64();
    stop_reading.store(true, Ordering::SeqCst);

    let mut level = Level {
        recorders,
        acks: Vec::new(),
        pages: Vec::new(),
        page_seconds,
        errors: Vec::new(),
        audio_lost_s: 0.0,
        behind: Vec::new(),
    };
    for h in reader_threads {
        let (times, errors) = h.join().unwrap();
        level.pages.extend(times);
        level.errors.extend(errors);
    }
    let conn = app.open_raw();
    for (id, acks, errors, behind) in recorded {
        level.acks.extend(acks);
        level.errors.extend(errors);
        let stored_ms: i64 = conn
            .query_row(
                "SELECT coalesce(audio_ms, 0) FROM encounters WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        // The visit's last chunk is shorter than a second: what was sent, not `seconds`.
        let sent_ms = chunks.iter().map(Vec::len).sum::<usize>() as f64 / 16.0;
        level.audio_lost_s += ((sent_ms - stored_ms as f64) / 1000.0).max(0.0);
        level.behind.push(behind);
    }
    drop(server);
    level.acks.sort();
    level.pages.sort();
    level.behind.sort();
    level
}

fn main() {
    let args = tests::BenchArgs::from_env();
    let arg = |name: &str| args.get(name);
    let out = args.out();
    let levels: Vec<usize> = arg("--recorders")
        .unwrap_or_else(|| "1,2,4,8".into())
        .split(',')
        .map(|n| n.parse().expect("--recorders 1,2,4"))
        .collect();
    let seconds: usize = arg("--seconds").map_or(45, |n| n.parse().expect("--seconds N"));
    let readers: usize = arg("--readers").map_or(2, |n| n.parse().expect("--readers N"));
    let pcm = audio::decode_wav_file(&tests::visit_wav()).expect("the visit").samples;

    let mut md = String::new();
    let _ = writeln!(md, "# Load: recordings and review traffic at once\n");
    let _ = writeln!(
        md,
        "`cargo bench -p tests --bench load -- --recorders {} --seconds {seconds} --readers {readers}` — 2 cores, profile `{}`, {}.\n",
        levels.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        tests::profile(),
        tests::today()
    );
    let _ = writeln!(
        md,
        "K browser recorders each stream a {seconds}-second visit in real time (a one-second chunk a \
         second over the WebSocket protocol, each acknowledged once committed) into one `scribe \
         daemon` on loopback, while {readers} review clients read an encounter page back to back \
         (decrypt, authorize, audit, render). A fresh appliance for each K. *Live transcript behind*: \
         audio the live transcription had not heard when the recording stopped; it keeps up in \
         real time if that is at most {} s for every visit.\n",
        KEEPS_UP.as_secs()
    );
    let _ = writeln!(
        md,
        "| recordings at once | chunk commit p50 / p99 (ms) | page p50 / p99 (ms) | pages/s | errors | audio lost | live transcript behind, worst | keeps up in real time |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut failures = Vec::new();
    for k in levels {
        eprintln!("load: {k} recordings at once");
        let l = run_level(k, seconds, readers, &pcm);
        let worst = l.behind.last().copied().unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} | {} | {:.1} s | {:.1} s | {} |",
            l.recorders,
            percentile(&l.acks, 0.5),
            percentile(&l.acks, 0.99),
            percentile(&l.pages, 0.5),
            percentile(&l.pages, 0.99),
            l.pages.len() as f64 / l.page_seconds,
            l.errors.len(),
            l.audio_lost_s,
            worst.as_secs_f64(),
            if worst <= KEEPS_UP { "yes" } else { "no" }
        );
        failures.extend(l.errors.iter().map(|e| format!("K={k}: {e}")));
        eprint!("{md}");
    }
    if !failures.is_empty() {
        let _ = writeln!(md, "\nErrors:\n");
        for f in failures.iter().take(20) {
            let _ = writeln!(md, "- {f}");
        }
    }
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("load.md"), &md).unwrap();
    eprintln!("{md}");
}
