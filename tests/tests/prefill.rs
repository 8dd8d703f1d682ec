//! A visit recorded live is ready soon after "stop": the daemon keeps the utterances it already
//! transcribed (only the tail after the last pause is heard again) and evaluates the transcript
//! into the model's cache while the visit goes on, so drafting reads only what is new.
//!
//! The recording source is the test, writing one-second chunks through the store at twice real
//! time (as `scribe record` or a browser would); daemon, workers and models are the real ones.

use std::time::Duration;

use store::{Actor, NewEncounter, Store};
use tests::{Appliance, VISIT_KEY_WORDS, visit_wav};

/// Records the test visit through a daemon started with `env`; returns `show --json` once the
/// draft is ready, and the recording's length in milliseconds.
fn record_visit(env: &[(&str, &str)]) -> (serde_json::Value, u64) {
    let app = Appliance::new();
    let pcm = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    let mut daemon = app.spawn_pipeline_daemon(env);
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
    for (seq, chunk) in pcm.chunks(16_000).enumerate() {
        store.append_audio(&source, &id, seq as u32, chunk, None).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    store.finish_recording(&source, &id, "stopped").unwrap();
    let done = app.wait_until_settled(&id, Duration::from_secs(600));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    (done, pcm.len() as u64 / 16)
}

fn job_stats(show: &serde_json::Value, kind: &str) -> serde_json::Value {
    show["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|j| j["kind"] == kind && j["ok"] == true)
        .unwrap_or_else(|| panic!("no {kind} job in {show}"))["stats"]
        .clone()
}

#[test]
fn after_stop_only_the_tail_is_transcribed_and_the_prefilled_prompt_is_reused() {
    let (done, audio_ms) = record_visit(&[]);
    assert_eq!(done["state"], "awaiting_review", "{done}");

    // The final transcript is the whole visit, numbered from 1, though only the tail was heard again.
    let segments = done["transcript"]["segments"].as_array().unwrap();
    let ids: Vec<u64> = segments.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let text = tests::transcript_lowercase(&done);
    let heard = VISIT_KEY_WORDS.iter().filter(|w| text.contains(*w)).count();
    assert!(heard * 2 >= VISIT_KEY_WORDS.len(), "final transcript: {text}");
    let asr = job_stats(&done, "asr");
    assert!(
        asr["audio_ms"].as_u64().unwrap() * 2 < audio_ms,
        "the final transcription heard the whole {audio_ms} ms again: {asr}"
    );

    // Drafting found most of its prompt already evaluated.
    let draft = job_stats(&done, "draft");
    let (prompt, cached) = (
        draft["prompt_tokens"].as_u64().unwrap(),
        draft["cached_tokens"].as_u64().unwrap(),
    );
    assert!(
        cached * 2 > prompt,
        "only {cached} of {prompt} prompt tokens were prefilled: {draft}"
    );
    eprintln!("prefill: {cached} of {prompt} prompt tokens prefilled; tail transcribed: {asr}");

    // The draft still rests on the whole visit.
    let cited: Vec<u64> = done["draft"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sentences"].as_array().unwrap())
        .flat_map(|s| s["citations"].as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert!(!cited.is_empty(), "{done}");
    assert!(cited.iter().all(|c| ids.contains(c)), "{cited:?} vs {ids:?}");
}

#[test]
fn with_prefill_switched_off_the_note_is_drafted_from_scratch() {
    let (done, _) = record_visit(&[("SCRIBE_PREFILL_WHILE_RECORDING", "false")]);
    assert_eq!(done["state"], "awaiting_review", "{done}");
    let draft = job_stats(&done, "draft");
    assert_eq!(draft["cached_tokens"], 0, "{draft}");
}
