//! Fuzz targets: every parser that takes bytes from outside the box — an uploaded recording, a
//! CTranslate2 model being imported, a clinic's template, the config file, the browser
//! recorder's WebSocket messages (parsed, and carried through to the store), and HTTP requests to
//! the review app's forms.
//!
//! Each target is a plain function here, so its inputs replay as an ordinary test on stable Rust
//! (`cargo test -p scribe-fuzz`): `seeds/<target>/` (valid examples of the format, and every input
//! that once crashed it, as `regression-…`) and `corpus/<target>/` (what fuzzing kept, minimized).
//! `fuzz_targets/` wraps the same functions for cargo-fuzz, and `cargo xtask fuzz` runs them all
//! for a set time and reports.
//!
//! A target panics only when a promise breaks: a parser panicked, or accepted input that does not
//! satisfy what its caller relies on, or the review app answered a request with a server error.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// A fuzz target: panics when the input breaks a promise.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its `fuzz_targets/` binary and its corpus folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("audio_decode", audio_decode),
    ("ct2_import", ct2_import),
    ("template_parse", template_parse),
    ("config_parse", config_parse),
    ("ws_audio_chunk", ws_audio_chunk),
    ("ws_recording", ws_recording),
    ("http_request", http_request),
];

/// An uploaded recording: any container, any codec, any damage. Decoding either fails with an
/// error or yields at most `max_seconds` of 16 kHz audio.
pub fn audio_decode(data: &[u8]) {
    let_decoder_panics_unwind();
    // Small limits keep one input from decoding for seconds; the checks are the same.
    let limits = audio::Limits {
        max_bytes: 1 << 20,
        max_seconds: 30,
    };
    if let Ok(recording) = audio::decode(data, &limits) {
        let seconds = recording.pcm.samples.len() as f64 / 16_000.0;
        assert!(seconds <= 31.0, "decoded {seconds:.1} s past a 30 s limit");
    }
}

/// symphonia's demuxers can panic on crafted data (an overflowing multiplication in a WAV header,
/// with the overflow checks fuzz builds have); `audio::decode` contains such a panic and reports a
/// damaged file. libFuzzer's panic hook aborts at the panic itself, before that guard runs, so
/// panics raised inside symphonia are let through to unwind. One the guard does not catch still
/// fails the run: libfuzzer-sys aborts when a target panics.
fn let_decoder_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("/symphonia")) {
                fuzzer_hook(info);
            }
        }));
    });
}

/// A CTranslate2 `model.bin` given to `scribe models import`: refused with an error, never a
/// panic or an allocation the file's size does not justify.
pub fn ct2_import(data: &[u8]) {
    thread_local! {
        static DIR: tempfile::TempDir = {
            let dir = tempfile::tempdir().expect("scratch folder");
            std::fs::write(dir.path().join("vocabulary.txt"), "!\n\"\n#\n$\n%\n&\n'\n(\n").expect("vocabulary");
            dir
        };
    }
    DIR.with(|dir| {
        std::fs::write(dir.path().join("model.bin"), data).expect("write model.bin");
        let _ = firmware::import_ct2(dir.path(), &dir.path().join("ggml.bin"));
    });
}

/// A clinic's template file. One that parses must also give a grammar and a prompt.
pub fn template_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(template) = drafting::Template::parse(text, "fuzz.toml") else {
        return;
    };
    let transcript = transcript();
    let grammar = drafting::grammar(&template, &transcript);
    assert!(grammar.contains("root"), "a grammar without a root rule");
    let _ = drafting::Prompt::for_encounter(&transcript, &template);
    let _ = drafting::max_tokens(&template);
}

/// `scribe.toml`. What parses must write back out as TOML that parses again (the settings page and
/// `scribe init` write configs back).
pub fn config_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = appliance::config::Config::parse(text) else {
        return;
    };
    let again = toml::to_string(&config).expect("a parsed config serializes");
    if let Err(e) = appliance::config::Config::parse(&again) {
        panic!("a parsed config does not parse back: {e}\n{again}");
    }
}

/// One binary message on the recorder's WebSocket: a chunk accepted is exactly its sequence
/// number and at most one second of samples.
pub fn ws_audio_chunk(data: &[u8]) {
    if let Ok((seq, pcm)) = review_ui::web::parse_chunk(data) {
        assert!(!pcm.is_empty() && pcm.len() <= review_ui::web::MAX_CHUNK_SAMPLES);
        assert_eq!(data.len(), 4 + 2 * pcm.len());
        assert_eq!(seq.to_le_bytes(), data[..4]);
    }
}

/// A recording stream from first message to last, through the review app's handler into a real
/// SQLCipher store, on a fresh visit. The input is a list of messages `[kind u8][len u16 LE][bytes]`:
/// an even kind sends the bytes as a binary chunk, an odd one sends "stop". Whatever the order,
/// resends, gaps or garbage: every chunk the protocol allows is acknowledged and stored (the first
/// copy of a sequence number wins), everything else is refused with the recorder's reason (never
/// the appliance's own failure), "stop" is always honoured and nothing is taken after it, and the
/// recording read back is exactly the acknowledged chunks in sequence order.
pub fn ws_recording(data: &[u8]) {
    let rec = Recording::get();
    let mut guard = rec.scratch.lock().expect("scratch store");
    guard.visits += 1;
    if guard.visits.is_multiple_of(2000) {
        // Keep the scratch database small over millions of runs.
        *guard = Scratch::new();
    }
    let scratch = &mut *guard;
    let id = scratch
        .store
        .start_recording(&scratch.clinician, &store::NewEncounter::default())
        .expect("a recording visit");
    let mut acked: std::collections::BTreeMap<u32, Vec<i16>> = Default::default();
    let mut stopped = false;
    let mut rest = data;
    while let [kind, lo, hi, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let message = if kind % 2 == 0 {
            review_ui::web::StreamMessage::Chunk(bytes)
        } else {
            review_ui::web::StreamMessage::Stop
        };
        let reply = rec.runtime.block_on(review_ui::web::recording_message(
            &scratch.app,
            &scratch.clinician,
            &id,
            message,
        ));
        let error = reply.get("error").and_then(|e| e.as_str());
        assert_ne!(error, Some(review_ui::web::STREAM_STORE_FAILED), "{reply}");
        if kind % 2 == 1 {
            // Stopping again is done again (a recorder retrying after a network blip).
            assert!(reply.get("done").is_some(), "stop is always honoured: {reply}");
            stopped = true;
            continue;
        }
        match (review_ui::web::parse_chunk(bytes), stopped) {
            (Ok((seq, pcm)), false) => {
                assert_eq!(reply["ack"], seq, "a valid chunk while recording is stored: {reply}");
                acked.entry(seq).or_insert(pcm);
            }
            _ => assert!(error.is_some(), "refused with a reason: {reply}"),
        }
    }
    let stored = scratch
        .store
        .audio(&store::Actor::system("fuzz"), &id, "fuzz: check")
        .expect("the recording reads back");
    let expected: Vec<i16> = acked.into_values().flatten().collect();
    assert!(
        stored == expected,
        "stored {} samples, acknowledged {}",
        stored.len(),
        expected.len()
    );
}

/// The recording target's appliance: a runtime, and a scratch store the review app writes into.
struct Recording {
    runtime: tokio::runtime::Runtime,
    scratch: Mutex<Scratch>,
}

/// A scratch database (in memory-backed /dev/shm where there is one: fsyncs are what a fuzzer
/// would otherwise spend its time on), the review app over it, a second handle to check what it
/// stored, and the clinician who records.
struct Scratch {
    app: std::sync::Arc<review_ui::web::App>,
    store: store::Store,
    clinician: store::Actor,
    visits: u64,
    _dir: tempfile::TempDir,
}

impl Recording {
    fn get() -> &'static Recording {
        static RECORDING: OnceLock<Recording> = OnceLock::new();
        RECORDING.get_or_init(|| Recording {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            scratch: Mutex::new(Scratch::new()),
        })
    }
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("scratch folder");
        let (db, key) = (dir.path().join("scribe.db"), dir.path().join("scribe.key"));
        let mut store = store::Store::create(&db, &key).expect("create the store");
        let system = store::Actor::system("fuzz");
        store
            .add_user(&system, "nina", store::Role::Clinician, "correct horse nina")
            .expect("add the clinician");
        let clinician = store.authenticate("nina", "correct horse nina", None).expect("log in");
        let app = review_ui::web::App::new(store, review_ui::web::WebConfig::default());
        let store = store::Store::open(&db, &key).expect("a second handle");
        Scratch {
            app,
            store,
            clinician,
            visits: 0,
            _dir: dir,
        }
    }
}

/// One HTTP request to the review app, as `FLAGS METHOD PATH\nHeader: value\n…\n\nbody`.
/// FLAGS (the first byte) bit 0 sends the logged-in physician's session cookie; `{csrf}` and `{id}`
/// anywhere become that session's CSRF token and a real visit's id, so the fuzzer reaches the
/// handlers behind the login and the token check. No request may get a 500.
pub fn http_request(data: &[u8]) {
    let_decoder_panics_unwind();
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let http = Http::get();
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let head = String::from_utf8_lossy(&http.fill(head)).into_owned();
    let body = http.fill(body);
    let mut lines = head.lines();
    let Some((method, path)) = lines.next().and_then(|l| l.split_once(' ')) else {
        return;
    };
    let mut request = axum::http::Request::builder().method(method).uri(path);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    let cookie = http.cookie.lock().expect("cookie").clone();
    if flags & 1 == 1 {
        request = request.header("Cookie", format!("{}={cookie}", review_ui::web::COOKIE));
    }
    // Requests hyper itself refuses (bad method, URI or header) never reach the app.
    let Ok(mut request) = request.body(axum::body::Body::from(body)) else {
        return;
    };
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40_000,
        ))));
    let (status, body) = http.send(request);
    assert!(status != 500, "{method} {path} → 500: {body}");
    if path.starts_with("/logout") {
        http.log_in();
    }
}

/// A short two-voice transcript for the template target.
fn transcript() -> protocol::Transcript {
    serde_json::from_value(serde_json::json!({"segments": [
        {"id": 1, "start_ms": 0, "end_ms": 2000, "speaker": "clinician", "text": "What brings you in today?", "confidence": 0.9},
        {"id": 2, "start_ms": 2000, "end_ms": 5000, "speaker": "patient", "text": "A cough and a fever of 38.5 for three days.", "confidence": 0.9}
    ]}))
    .expect("a transcript")
}

/// The review app over a real SQLCipher store in a scratch folder, with a physician logged in and
/// one drafted visit; requests go straight to the router (no sockets).
struct Http {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    cookie: Mutex<String>,
    csrf: Mutex<String>,
    id: String,
    _dir: tempfile::TempDir,
}

const PHYSICIAN: &str = "dr_fuzz";
const PASSWORD: &str = "correct horse dr_fuzz";

impl Http {
    fn get() -> &'static Http {
        static HTTP: OnceLock<Http> = OnceLock::new();
        HTTP.get_or_init(Http::start)
    }

    fn start() -> Http {
        let dir = tempfile::tempdir().expect("scratch folder");
        let mut store = store::Store::create(&dir.path().join("scribe.db"), &dir.path().join("scribe.key"))
            .expect("create the store");
        let system = store::Actor::system("fuzz");
        store
            .add_user(&system, PHYSICIAN, store::Role::Physician, PASSWORD)
            .expect("add the physician");
        let physician = store.authenticate(PHYSICIAN, PASSWORD, None).expect("log in");
        let new = store::NewEncounter {
            template: "soap".into(),
            label: "Fuzzed visit".into(),
            assigned_to: None,
            clinician: None,
        };
        let id = store
            .create_transcript_encounter(&physician, &new, &transcript())
            .expect("a visit");
        let draft = protocol::Draft::new(
            "soap",
            vec![protocol::Section {
                name: "Subjective".into(),
                sentences: vec![protocol::Sentence::new("Cough and fever for three days.", vec![2])],
            }],
        );
        store.save_draft(&system, &id, &draft, "fuzz").expect("a draft");
        let config = review_ui::web::WebConfig {
            clinic: "Fuzz Clinic".into(),
            idle_timeout: std::time::Duration::from_secs(3600),
            absolute_lifetime: std::time::Duration::from_secs(24 * 3600),
            tls: false,
            appliance_facts: vec![],
            export: Default::default(),
            upload_limits: audio::Limits {
                max_bytes: 1 << 20,
                max_seconds: 30,
            },
            concurrent_uploads: 2,
            spool_dir: std::env::temp_dir(),
            compliance_report: None,
        };
        let app = review_ui::web::App::new(store, config);
        let http = Http {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime"),
            router: review_ui::web::router(app),
            cookie: Mutex::new(String::new()),
            csrf: Mutex::new(String::new()),
            id: id.to_string(),
            _dir: dir,
        };
        http.log_in();
        http
    }

    /// Logs the physician in (again, after a fuzzed logout) and reads the session's CSRF token.
    fn log_in(&self) {
        let login = axum::http::Request::post("/login")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(format!(
                "user={PHYSICIAN}&password=correct+horse+dr_fuzz"
            )))
            .expect("login request");
        let response = self
            .runtime
            .block_on(tower::ServiceExt::oneshot(self.router.clone(), login));
        let response = response.expect("the router answers");
        let Some(cookie) = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{}=", review_ui::web::COOKIE)))
            .map(|v| v.split(';').next().unwrap_or("").to_string())
        else {
            // Locked out by fuzzed wrong passwords: go on without a session.
            return;
        };
        *self.cookie.lock().expect("cookie") = cookie.clone();
        let inbox = axum::http::Request::get("/inbox")
            .header("Cookie", format!("{}={cookie}", review_ui::web::COOKIE))
            .body(axum::body::Body::empty())
            .expect("inbox request");
        let (_, page) = self.send(inbox);
        if let Some(at) = page.find("name=\"csrf\" value=\"") {
            let rest = &page[at + 19..];
            *self.csrf.lock().expect("csrf") = rest[..rest.find('"').unwrap_or(0)].to_string();
        }
    }

    /// `bytes` with `{csrf}` and `{id}` replaced (bytes, so a binary upload's form fields work too).
    fn fill(&self, bytes: &[u8]) -> Vec<u8> {
        let csrf = self.csrf.lock().expect("csrf").clone();
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix(b"{csrf}") {
                out.extend_from_slice(csrf.as_bytes());
                rest = after;
            } else if let Some(after) = rest.strip_prefix(b"{id}") {
                out.extend_from_slice(self.id.as_bytes());
                rest = after;
            } else {
                out.push(rest[0]);
                rest = &rest[1..];
            }
        }
        out
    }

    fn send(&self, request: axum::http::Request<axum::body::Body>) -> (u16, String) {
        self.runtime.block_on(async {
            let response = tower::ServiceExt::oneshot(self.router.clone(), request)
                .await
                .expect("the router answers");
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 24)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            (status, body)
        })
    }
}

/// Every input of `target`: its seeds, then what fuzzing kept.
pub fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut all = files("seeds", target);
    all.extend(files("corpus", target));
    all
}

/// The seeds of `target` (`seeds/<target>/*`): valid examples, and the regressions.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    files("seeds", target)
}

fn files(folder: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), std::fs::read(&p).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed — including the inputs that once crashed a target, kept as `regression-…` when
    /// the bug was fixed — and every input fuzzing kept still passes, on stable Rust, in every
    /// test run.
    #[test]
    fn every_seed_and_corpus_input_passes_its_target() {
        for (target, run) in TARGETS {
            assert!(!seeds(target).is_empty(), "seeds/{target} is empty");
            for (name, data) in inputs(target) {
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target}: {name} fails");
            }
        }
    }

    /// The seeds are inputs the parsers accept, so fuzzing starts inside the formats, not at
    /// their first check.
    #[test]
    fn the_seeds_are_valid_inputs() {
        for (name, data) in seeds("audio_decode").into_iter().filter(|(n, _)| n.starts_with("tone")) {
            let limits = audio::Limits {
                max_bytes: 1 << 20,
                max_seconds: 30,
            };
            let recording = audio::decode(&data, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!recording.pcm.samples.is_empty(), "{name}");
        }
        let (_, model) = seeds("ct2_import")
            .into_iter()
            .find(|(n, _)| n == "whisper-1-layer-d4.ct2")
            .expect("the CT2 seed");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.bin"), model).unwrap();
        std::fs::write(dir.path().join("vocabulary.txt"), "a\nb\n").unwrap();
        firmware::import_ct2(dir.path(), &dir.path().join("ggml.bin")).expect("the CT2 seed converts");
        for (name, data) in seeds("template_parse") {
            drafting::Template::parse(std::str::from_utf8(&data).unwrap(), &name).expect("a shipped template");
        }
        for (name, data) in seeds("config_parse") {
            appliance::config::Config::parse(std::str::from_utf8(&data).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// The HTTP target fuzzes the handlers behind the login, not just the redirect to it.
    #[test]
    fn the_http_target_is_logged_in_and_knows_a_visit() {
        let http = Http::get();
        let page = |cookie: bool| {
            let path = String::from_utf8(http.fill(b"/encounters/{id}")).unwrap();
            let mut request = axum::http::Request::get(path);
            if cookie {
                let c = http.cookie.lock().unwrap().clone();
                request = request.header("Cookie", format!("{}={c}", review_ui::web::COOKIE));
            }
            http.send(request.body(axum::body::Body::empty()).unwrap())
        };
        let (status, body) = page(true);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Cough and fever for three days."), "{body}");
        assert!(!http.csrf.lock().unwrap().is_empty());
        assert_eq!(page(false).0, 303);
    }
}
