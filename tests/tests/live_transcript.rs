//! A visit transcribed while it is being recorded: the daemon shows a live transcript that grows
//! with the recording, and the final transcription replaces it when the recording ends.
//!
//! The recording source here is the test itself, writing one-second chunks through the store API
//! at twice real time (as `scribe record` or a browser would); the daemon, workers and models are
//! the real ones.

use std::time::Duration;

use store::{Actor, NewEncounter, Store};
use tests::{Appliance, VISIT_KEY_WORDS, visit_wav};

fn segment_texts(show: &serde_json::Value) -> Vec<String> {
    show["transcript"]["segments"]
        .as_array()
        .map(|s| s.iter().map(|x| x["text"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn the_transcript_grows_during_the_recording_and_is_replaced_at_the_end() {
    let app = Appliance::new();
    let pcm = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    let mut daemon = app.spawn_pipeline_daemon(&[]);

    let mut store = Store::open(&app.db(), &app.key()).unwrap();
    let source = Actor::system("test-source");
    let id = store
        .start_recording(
            &source,
            &NewEncounter {
                template: "soap".into(),
                ..NewEncounter::default()
            },
        )
        .unwrap();
    let mut live_seen: Vec<(usize, usize)> = Vec::new(); // (seconds sent, live segments)
    for (seq, chunk) in pcm.chunks(16_000).enumerate() {
        store.append_audio(&source, &id, seq as u32, chunk, None).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let show = app.show(&id);
        if show["state"] == "recording" {
            live_seen.push((seq + 1, segment_texts(&show).len()));
        }
    }
    let live_final = app.show(&id);
    let live_texts = segment_texts(&live_final);
    store.finish_recording(&source, &id, "stopped").unwrap();

    let done = app.wait_until_settled(&id, Duration::from_secs(600));
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    // Segments appeared while the visit was still being recorded, and kept coming.
    let first_live = live_seen.iter().find(|(_, n)| *n > 0);
    assert!(
        first_live.is_some(),
        "no live transcript during the recording: {live_seen:?}"
    );
    assert!(
        live_seen.last().unwrap().1 > first_live.unwrap().1,
        "the live transcript did not grow: {live_seen:?}"
    );
    assert!(!live_texts.is_empty());
    // The final transcript is the whole visit, numbered from 1, and what the draft cites.
    assert_eq!(done["state"], "awaiting_review", "{done}");
    let segments = done["transcript"]["segments"].as_array().unwrap();
    let ids: Vec<u64> = segments.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let text = segment_texts(&done).join(" ").to_lowercase();
    let heard = VISIT_KEY_WORDS.iter().filter(|w| text.contains(*w)).count();
    assert!(heard * 2 >= VISIT_KEY_WORDS.len(), "final transcript: {text}");
    eprintln!("live transcript after each second sent: {live_seen:?}");
}
