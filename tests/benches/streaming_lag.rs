//! Live-transcription lag: how long after words are spoken they appear in the live transcript.
//!
//! A synthesized visit (two voices, a 15-second pause in the middle while the doctor examines)
//! is streamed into a real daemon at real time, one-second chunks through the store as the room
//! recorder and the browser do. A second connection polls the transcript every 50 ms. For every
//! quarter second of the visit, the lag is how long after it was spoken the transcript first
//! reached it: first with any hearing (an utterance still being spoken is heard ahead), then with
//! the utterance's final text. The report also gives what is left after "stop": the tail after
//! the last pause, transcribed again.
//!
//! `cargo bench -p tests --bench streaming_lag -- [--out DIR]` writes DIR/streaming-lag.md
//! (default DIR: docs/bench).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::{Actor, NewEncounter, Store};
use tests::{Appliance, visit_wav};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench"));
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--out") {
        out = PathBuf::from(&args[i + 1]);
    }

    let visit = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    let mut pcm = visit.clone();
    pcm.extend(std::iter::repeat_n(0i16, 15 * 16_000));
    pcm.extend(&visit);
    let audio_s = pcm.len() as f64 / 16_000.0;

    let app = Appliance::new();
    let mut daemon = app.spawn_pipeline_daemon(&[]);
    let mut store = Store::open(&app.db(), &app.key()).unwrap();
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
    // Let the daemon load its workers before the clock starts, as it has long before a visit.
    std::thread::sleep(Duration::from_secs(5));

    // Every poll: when, and the live transcript's segments (id, end_ms, text).
    type Snapshot = (Instant, Vec<(i64, i64, String)>);
    let snapshots: Arc<Mutex<Vec<Snapshot>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (snapshots, done, conn, id) = (Arc::clone(&snapshots), Arc::clone(&done), app.open_raw(), id.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let mut stmt = conn
                    .prepare_cached("SELECT id, end_ms, text FROM segments WHERE encounter_id = ?1")
                    .unwrap();
                let rows: Vec<(i64, i64, String)> = stmt
                    .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap_or_default();
                snapshots.lock().unwrap().push((Instant::now(), rows));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // Chunk k holds second k of the visit; it exists only once that second has been spoken.
    let t0 = Instant::now();
    for (seq, chunk) in pcm.chunks(16_000).enumerate() {
        let spoken = t0 + Duration::from_millis((seq as u64 * 1000) + chunk.len() as u64 / 16);
        if let Some(wait) = spoken.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        store.append_audio(&source, &id, seq as u32, chunk, None).unwrap();
    }
    // The last utterance ends in silence only once the recording stops; give it the pause.
    std::thread::sleep(Duration::from_secs(3));
    done.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    store.finish_recording(&source, &id, "stopped").unwrap();
    let show = app.wait_until_settled(&id, Duration::from_secs(900));
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let snapshots = snapshots.lock().unwrap();
    let last = snapshots.last().map(|(_, rows)| rows.clone()).unwrap_or_default();
    let final_text: BTreeMap<i64, &str> = last.iter().map(|(sid, _, text)| (*sid, text.as_str())).collect();
    // How far into the visit the transcript reached at each poll: with any hearing, and with
    // final text only. Never past the audio committed by then.
    let reach: Vec<(f64, i64, i64)> = snapshots
        .iter()
        .map(|(at, rows)| {
            let t = at.duration_since(t0).as_secs_f64();
            let committed = (t.floor() as i64 * 1000).max(0);
            let any = rows.iter().map(|r| r.1).max().unwrap_or(0).min(committed);
            let settled = rows
                .iter()
                .filter(|r| final_text.get(&r.0) == Some(&r.2.as_str()))
                .map(|r| r.1)
                .max()
                .unwrap_or(0)
                .min(committed);
            (t, any, settled)
        })
        .collect();
    let visit_ms = visit.len() as i64 / 16;
    let pause = visit_ms..visit_ms + 15_000;
    let spoken_end = last.iter().map(|r| r.1).max().unwrap_or(0);
    let lags = |pick: fn(&(f64, i64, i64)) -> i64| {
        let mut lags: Vec<f64> = (0..spoken_end)
            .step_by(250)
            .filter(|x| !pause.contains(x))
            .filter_map(|x| {
                let at = reach.iter().find(|r| pick(r) >= x)?;
                Some(at.0 - x as f64 / 1000.0)
            })
            .collect();
        lags.sort_by(f64::total_cmp);
        lags
    };
    let first = lags(|r| r.1);
    let settled = lags(|r| r.2);
    assert!(
        !first.is_empty() && !settled.is_empty(),
        "the live transcript never grew"
    );
    let in_pause = last.iter().filter(|r| pause.contains(&r.1)).count();
    let asr = show["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["kind"] == "asr"))
        .cloned()
        .unwrap_or_default();
    // The final transcript keeps the utterances heard live; only the tail is heard again.
    let final_wall_s = asr["stats"]["wall_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0;
    let tail_s = asr["stats"]["audio_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0;

    let report = format!(
        "# Live-transcription lag\n\n\
         `cargo bench -p tests --bench streaming_lag` — {threads} cores, profile `{profile}`, {date}.\n\n\
         A {audio_s:.0} s synthesized visit (two voices, a 15 s pause in the middle) streamed into `scribe daemon` \
         at real time in one-second chunks; the transcript polled every 50 ms. For each quarter second of speech, \
         lag = when the live transcript first reached it − when it was spoken, so it includes waiting for the \
         one-second chunk to fill. *First hearing*: an utterance still being spoken is transcribed ahead, once \
         per new second. *Final*: the text the utterance keeps once the pause after it is heard.\n\n\
         | measure | first hearing | final |\n|---|---:|---:|\n\
         | lag p50 | {:.2} s | {:.2} s |\n\
         | lag p95 | {:.2} s | {:.2} s |\n\
         | lag max | {:.2} s | {:.2} s |\n\n\
         | measure | value |\n|---|---:|\n\
         | live segments at the end | {n} |\n\
         | segments placed in the 15 s pause | {in_pause} |\n\
         | after stop: the tail after the last pause ({tail_s:.1} s) transcribed in | {final_wall_s:.1} s |\n",
        percentile(&first, 0.5),
        percentile(&settled, 0.5),
        percentile(&first, 0.95),
        percentile(&settled, 0.95),
        first.last().unwrap(),
        settled.last().unwrap(),
        n = last.len(),
        threads = std::thread::available_parallelism().map_or(0, |n| n.get()),
        profile = tests::profile(),
        date = tests::today(),
    );
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("streaming-lag.md"), &report).unwrap();
    println!("{report}");
}
