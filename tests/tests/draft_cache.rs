//! The drafting worker's prompt cache, spoken to over its real frame protocol: what a visit's
//! prompt left in the cache while it was being recorded is reused when its note is drafted — and
//! never by a job for another visit, nor by a job that names no visit.

use std::io::{BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use protocol::frame::{read_frame, write_frame};
use protocol::job::{GenerateJob, JobStats, ModelRef, Request, Response};
use tests::{bin_dir, models_dir, profile};

struct Worker {
    child: Child,
    to: BufWriter<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Worker {
    fn start() -> Worker {
        let manifest = firmware::Manifest::builtin();
        let (_, llm) = manifest.profile(&profile()).unwrap();
        let path = firmware::installed_path(&models_dir(), llm);
        let mut child = Command::new(bin_dir().join("scribe-draft-worker"))
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut worker = Worker {
            to: BufWriter::new(child.stdin.take().unwrap()),
            from: BufReader::new(child.stdout.take().unwrap()),
            child,
        };
        let loaded = worker.call(&Request::Load {
            model: ModelRef {
                path: path.display().to_string(),
                sha256: llm.sha256.clone(),
            },
            threads: 2,
            language: None,
            context_tokens: 2048,
            initial_prompt: None,
        });
        assert!(matches!(loaded, Response::Loaded { .. }), "{loaded:?}");
        worker
    }

    fn call(&mut self, request: &Request) -> Response {
        write_frame(&mut self.to, request, &[]).unwrap();
        self.to.flush().unwrap();
        read_frame::<Response>(&mut self.from).unwrap().0
    }

    fn prefill(&mut self, job: GenerateJob) -> JobStats {
        match self.call(&Request::Prefill(job)) {
            Response::Prefilled { stats } => stats,
            other => panic!("prefill answered {other:?}"),
        }
    }

    fn generate(&mut self, job: GenerateJob) -> JobStats {
        match self.call(&Request::Generate(job)) {
            Response::Generated { stats, .. } => stats,
            other => panic!("generate answered {other:?}"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LINES: &[&str] = &[
    "S1 clinician: what brings you in today?",
    "S2 patient: my right knee has been swelling since tuesday.",
    "S3 clinician: any fever or redness?",
    "S4 patient: no fever, a little redness.",
    "S5 clinician: we will get an x-ray and start ibuprofen 400 milligrams.",
    "S6 patient: okay, thank you.",
];

/// A job as the daemon would send it for a visit whose transcript so far is `lines`.
fn job(lines: &[&str], cache_key: Option<&str>) -> GenerateJob {
    GenerateJob {
        system: "You are a careful clinical scribe. Write one sentence about the visit.".into(),
        user: format!("Transcript:\n{}\n", lines.join("\n")),
        grammar: "root ::= \"The patient \" [a-z ,]+ \".\"\n".into(),
        max_tokens: 16,
        cache_key: cache_key.map(str::to_string),
    }
}

#[test]
fn a_visit_prefilled_while_recorded_is_drafted_from_its_cache_and_no_other_job_reuses_it() {
    let mut worker = Worker::start();

    // While the visit is recorded: the first half, then one more utterance.
    let first = worker.prefill(job(&LINES[..3], Some("visit-a")));
    assert_eq!(
        first.cached_tokens, 0,
        "a new visit starts from an empty cache: {first:?}"
    );
    let more = worker.prefill(job(&LINES[..4], Some("visit-a")));
    assert!(
        more.cached_tokens + 16 >= first.prompt_tokens && more.cached_tokens < more.prompt_tokens,
        "only the new utterance (and the closing of the prompt) is evaluated: {first:?} then {more:?}"
    );

    // "Stop": the whole visit is drafted, evaluating only what came after the last prefill.
    let draft = worker.generate(job(LINES, Some("visit-a")));
    assert!(
        draft.cached_tokens + 16 >= more.prompt_tokens,
        "the draft reused the prefilled prompt: {more:?} then {draft:?}"
    );
    assert!(draft.generated_tokens > 0);

    // Another visit shares the system prompt token for token, and still starts from nothing.
    let other = worker.generate(job(&LINES[..2], Some("visit-b")));
    assert_eq!(
        other.cached_tokens, 0,
        "another visit reused visit-a's cache: {other:?}"
    );
    // ...and it replaced visit-a's cache: the worker holds one visit at most.
    let again = worker.generate(job(LINES, Some("visit-a")));
    assert_eq!(
        again.cached_tokens, 0,
        "visit-a's cache outlived visit-b's job: {again:?}"
    );

    // A job that names no visit neither uses a cache nor leaves one behind.
    let anonymous = worker.generate(job(LINES, None));
    assert_eq!(anonymous.cached_tokens, 0, "{anonymous:?}");
    let after = worker.generate(job(LINES, None));
    assert_eq!(after.cached_tokens, 0, "an anonymous job left a cache: {after:?}");

    // Prefilled or not, a visit too long for the context is refused, not truncated.
    let long: Vec<String> = (0..400)
        .map(|i| format!("S{i} patient: the pain is worse at night."))
        .collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let full = worker.call(&Request::Prefill(job(&long, Some("visit-c"))));
    assert!(matches!(full, Response::ContextFull { .. }), "{full:?}");
}
