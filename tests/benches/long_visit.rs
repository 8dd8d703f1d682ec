//! The longest visit: a typed follow-up visit of about `--minutes` minutes of conversation
//! (default 45; at 150 spoken words a minute) drafted by the profile's model with the SOAP
//! template through `scribe ingest`. A transcript that does not fit the model's context is drafted
//! in parts; the report says how many, whether every stretch of the visit is cited (nothing
//! dropped), what was flagged, and what it cost.
//!
//! `SCRIBE_TEST_PROFILE=default cargo bench -p tests --bench long_visit -- [--minutes 45]
//! [--out DIR]` writes DIR/long-visit.md (default DIR: docs/bench).

use std::time::Instant;

use eval::speech::Voice;
use tests::{Appliance, text};

fn main() {
    let args = tests::BenchArgs::from_env();
    let arg = |name: &str| args.get(name);
    let out = args.out();
    let minutes: f64 = arg("--minutes").map_or(45.0, |m| m.parse().expect("--minutes N"));

    let app = Appliance::new();
    let lines = tests::long_visit_lines(minutes);
    let dialogue: String = lines
        .iter()
        .map(|(voice, line)| {
            let who = if *voice == Voice::Doctor { "doctor" } else { "patient" };
            format!("[{who}] {line}\n")
        })
        .collect();
    // What is said, not the speaker labels.
    let words: usize = lines.iter().map(|(_, line)| line.split_whitespace().count()).sum();
    let file = app.home().join("long-visit.txt");
    std::fs::write(&file, &dialogue).unwrap();

    let started = Instant::now();
    let (result, id) = app.ingest(&["--transcript", file.to_str().unwrap()]);
    let wall_s = started.elapsed().as_secs_f64();
    assert!(result.status.success(), "{}", text(&result));
    let show = app.show(&id.unwrap());

    let segments = show["transcript"]["segments"].as_array().unwrap().len();
    let sentences: Vec<&serde_json::Value> = show["draft"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sentences"].as_array().unwrap())
        .collect();
    let flagged = sentences
        .iter()
        .filter(|s| !s["flags"].as_array().unwrap().is_empty())
        .count();
    // Which quarters of the visit the note's sentences cite: a dropped stretch shows as zero.
    let mut quarters = [0usize; 4];
    for s in &sentences {
        let mut hit = [false; 4];
        for c in s["citations"].as_array().unwrap() {
            let q = ((c.as_u64().unwrap() as usize - 1) * 4 / segments).min(3);
            hit[q] = true;
        }
        for (q, h) in hit.iter().enumerate() {
            quarters[q] += usize::from(*h);
        }
    }
    let log = std::fs::read_to_string(app.home().join("logs/scribe.log")).unwrap_or_default();
    let splits = log.matches("transcript too long: drafting in parts").count();
    let draft = show["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|j| j["kind"] == "draft")
        .map(|j| j["stats"].clone())
        .unwrap_or_default();
    let context = std::fs::read_to_string(app.home().join("scribe.toml"))
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("context_tokens"))
                .map(|l| l.trim_start_matches("context_tokens = ").to_string())
        })
        .unwrap_or_default();

    let report = format!(
        "# The longest visit\n\n\
         `SCRIBE_TEST_PROFILE={profile} cargo bench -p tests --bench long_visit -- --minutes {minutes}` — \
         {threads} cores, profile `{profile}`, {date}.\n\n\
         A typed follow-up visit ({words} words, about {spoken:.0} minutes of conversation at 150 words a minute; \
         twelve problems with doses, sides and results, each revisited) ingested with the SOAP template. The model's \
         context is {context} tokens; a transcript that does not fit is halved until each part fits, the parts are \
         drafted separately and merged section by section, citations kept.\n\n\
         | measure | value |\n|---|---:|\n\
         | transcript segments | {segments} |\n\
         | drafted in parts | {parts} |\n\
         | prompt tokens (all parts) | {prompt_tokens} |\n\
         | generated tokens (all parts) | {generated_tokens} |\n\
         | note sentences | {n_sentences} |\n\
         | sentences citing the 1st / 2nd / 3rd / 4th quarter of the visit | {q0} / {q1} / {q2} / {q3} |\n\
         | sentences flagged for the reviewer | {flagged} |\n\
         | state | {state} |\n\
         | ingest to draft, wall time | {wall_s:.0} s |\n",
        profile = tests::profile(),
        threads = std::thread::available_parallelism().map_or(0, |n| n.get()),
        date = tests::today(),
        spoken = words as f64 / 150.0,
        parts = splits + 1,
        prompt_tokens = draft["prompt_tokens"],
        generated_tokens = draft["generated_tokens"],
        n_sentences = sentences.len(),
        q0 = quarters[0],
        q1 = quarters[1],
        q2 = quarters[2],
        q3 = quarters[3],
        state = show["state"].as_str().unwrap_or(""),
    );
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("long-visit.md"), &report).unwrap();
    println!("{report}");
}
