//! The crash campaign: visits driven through a real `scribe daemon` the way a clinic drives them
//! (the browser recorder's WebSocket protocol, the review app's sign form), the daemon's whole
//! process group (daemon and engine workers) killed with SIGKILL at a chosen or random moment,
//! restarted, and the promises checked:
//!
//! - the database passes `scribe db check` (SQLite integrity, the audit chain, every signature);
//! - every note signed so far is still there, byte for byte (its SHA-256 as first signed);
//! - every audio chunk the appliance acknowledged is stored;
//! - nothing is stuck: after the restart the visit goes on (the recorder reconnects and resends
//!   what was not acknowledged, the pipeline redoes the interrupted stage) and ends signed or
//!   `failed` with a reason, and no other encounter is left in recording, transcribing or drafting.
//!
//! Used by `tests/tests/crash_campaign.rs` (a kill in each phase) and by the
//! `crash_campaign` bench (N cycles at random moments, a report per phase).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::Appliance;
use crate::web::{Client, Recorder};

const PHYSICIAN: &str = "dr_crash";
/// How long a pipeline stage may take before the visit counts as stuck.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A recording whose recorder has sent nothing for this long is finished by the daemon. Short, so
/// an encounter created just before a kill (its id never reached the recorder) ends in this cycle;
/// long enough that a recorder reconnecting after the restart finds its recording still open.
const FINALIZE_AFTER: &str = "8s";

/// How often the campaign's recorder sends a one-second chunk.
const CHUNK_EVERY: Duration = Duration::from_millis(100);

/// Where a visit was when the daemon was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The daemon was still starting (opening the store, binding the review app).
    Starting = 0,
    /// The recorder was opening the visit, streaming its audio or stopping it.
    Recording = 1,
    /// Committed state `transcribing`.
    Transcribing = 2,
    /// Committed state `drafting`.
    Drafting = 3,
    /// The draft was ready and the physician about to sign.
    AwaitingReview = 4,
    /// The physician's sign request was in flight.
    Signing = 5,
    /// The visit was finished (signed or failed); the daemon was idle.
    Done = 6,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Starting,
        Phase::Recording,
        Phase::Transcribing,
        Phase::Drafting,
        Phase::AwaitingReview,
        Phase::Signing,
        Phase::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "daemon starting",
            Phase::Recording => "recording",
            Phase::Transcribing => "transcribing",
            Phase::Drafting => "drafting",
            Phase::AwaitingReview => "awaiting review",
            Phase::Signing => "signing",
            Phase::Done => "idle (visit finished)",
        }
    }

    fn from_u8(v: u8) -> Phase {
        Phase::ALL[usize::from(v).min(Phase::ALL.len() - 1)]
    }
}

/// When to kill the daemon in a cycle: this long after the visit is first seen in this phase.
#[derive(Clone, Copy, Debug)]
pub struct Kill(pub Phase, pub Duration);

/// How a visit ended once the daemon was back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Signed,
    Failed(String),
}

/// What one cycle found.
#[derive(Debug)]
pub struct CycleReport {
    /// Where the visit was at the kill.
    pub killed_in: Phase,
    pub outcome: Outcome,
    /// Broken promises; empty when all held.
    pub violations: Vec<String>,
    /// Audio chunks acknowledged before the kill (all found stored, unless a violation says not).
    pub acked_before_kill: u32,
    pub duration: Duration,
}

/// The audio a visit streams, one second per chunk.
fn chunks(pcm: &[i16]) -> Vec<Vec<i16>> {
    pcm.chunks(16_000).map(<[i16]>::to_vec).collect()
}

/// A campaign over one appliance home: the notes signed so far (id → SHA-256) carry over from
/// cycle to cycle, so every kill is checked against all of them.
pub struct Campaign {
    pub app: Appliance,
    audio: Vec<Vec<i16>>,
    password: String,
    signed: BTreeMap<String, String>,
    /// Engine threads for the daemon's workers (tests run side by side on one: the default).
    pub threads: usize,
}

impl Campaign {
    /// A fresh home with the review app on plain loopback HTTP and a physician who records and
    /// signs; `pcm` is the visit's audio (16 kHz mono).
    pub fn new(pcm: &[i16]) -> Campaign {
        let app = Appliance::new();
        let config = std::fs::read_to_string(app.home().join("scribe.toml")).expect("read scribe.toml");
        if config.contains("\ntls = true") {
            app.set_config("\ntls = true", "\ntls = false");
        }
        let password = app.add_user(PHYSICIAN, "physician");
        Campaign {
            app,
            audio: chunks(pcm),
            password,
            signed: BTreeMap::new(),
            threads: 1,
        }
    }

    /// How many notes the campaign has signed (and checks after every kill).
    pub fn signed_notes(&self) -> usize {
        self.signed.len()
    }

    /// One visit with no kill: how long each phase of it lasts (the idle phase: 3 s), so kills
    /// can be spread over every phase.
    pub fn undisturbed_visit(&mut self) -> Result<BTreeMap<Phase, Duration>, String> {
        let started = Instant::now();
        let mut daemon = Daemon::start(self);
        let never = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicU8::new(Phase::Starting as u8));
        let watcher = {
            let (phase, done) = (Arc::clone(&phase), Arc::clone(&never));
            std::thread::spawn(move || {
                let mut entered = vec![(Phase::Starting, Duration::ZERO)];
                while !done.load(Ordering::SeqCst) {
                    let now = Phase::from_u8(phase.load(Ordering::SeqCst));
                    if entered.last().is_some_and(|(p, _)| *p != now) {
                        entered.push((now, started.elapsed()));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                entered
            })
        };
        let mut visit = Visit::default();
        let result = drive(self, &mut daemon, &mut visit, &phase, &AtomicBool::new(false));
        never.store(true, Ordering::SeqCst);
        let entered = watcher.join().expect("the phase watcher");
        daemon.stop();
        match (result, visit.outcome.clone()) {
            (Ok(()), Some(Outcome::Signed)) => self.record_signature(&visit)?,
            (Ok(()), other) => return Err(format!("the undisturbed visit did not end signed: {other:?}")),
            (Err(e), _) => return Err(format!("the undisturbed visit failed: {e}")),
        }
        let mut lasted: BTreeMap<Phase, Duration> = BTreeMap::new();
        for pair in entered.windows(2) {
            *lasted.entry(pair[0].0).or_default() += pair[1].1 - pair[0].1;
        }
        lasted.insert(Phase::Done, Duration::from_secs(3));
        Ok(lasted)
    }

    /// Starts the daemon, drives a visit, kills the daemon's process group as `kill` says,
    /// checks what survived, restarts, finishes the visit and checks that nothing is stuck.
    pub fn cycle(&mut self, kill: Kill) -> CycleReport {
        let started = Instant::now();
        let mut violations = Vec::new();
        let mut visit = Visit::default();
        let phase = Arc::new(AtomicU8::new(Phase::Starting as u8));
        let killed = Arc::new(AtomicBool::new(false));
        let driver_done = Arc::new(AtomicBool::new(false));

        let mut daemon = Daemon::start(self);
        let killer = {
            let (pgid, phase, killed, done) = (
                daemon.pgid(),
                Arc::clone(&phase),
                Arc::clone(&killed),
                Arc::clone(&driver_done),
            );
            std::thread::spawn(move || killer(kill, pgid, &phase, &killed, &done))
        };
        let driven = drive(self, &mut daemon, &mut visit, &phase, &killed);
        if let Err(e) = &driven
            && !killed.load(Ordering::SeqCst)
        {
            violations.push(format!("the visit failed with no kill: {e}"));
        }
        // The kill may still be due (a random moment after the visit finished); wait for it.
        driver_done.store(true, Ordering::SeqCst);
        let killed_in = killer.join().expect("the killer thread");
        daemon.reap();
        // Whatever phase the recorder or the physician was in, the committed state says which
        // pipeline stage the daemon was in.
        let killed_in = self.refine(killed_in, &visit);
        let acked_before_kill = visit.acked;
        self.check_survivors(&visit, &mut violations);

        // The restart: the recorder reconnects, the physician signs.
        let mut daemon = Daemon::start(self);
        let never = Arc::new(AtomicBool::new(false));
        if let Err(e) = drive(self, &mut daemon, &mut visit, &phase, &never) {
            violations.push(format!("after the restart the visit could not go on: {e}"));
        }
        match self.settle() {
            Ok(()) => {}
            Err(e) => violations.push(e),
        }
        daemon.stop();
        if visit.outcome == Some(Outcome::Signed)
            && let Err(e) = self.record_signature(&visit)
        {
            violations.push(e);
        }
        self.check_survivors(&visit, &mut violations);
        CycleReport {
            killed_in,
            outcome: visit
                .outcome
                .unwrap_or_else(|| Outcome::Failed("the visit never finished".into())),
            violations,
            acked_before_kill,
            duration: started.elapsed(),
        }
    }

    /// The driver's phase, made precise with the committed state when the driver was waiting on
    /// the pipeline.
    fn refine(&self, phase: Phase, visit: &Visit) -> Phase {
        if !matches!(phase, Phase::Transcribing | Phase::Drafting | Phase::AwaitingReview) {
            return phase;
        }
        let Some(id) = &visit.id else { return phase };
        match self.state(id).as_deref() {
            Ok("transcribing") => Phase::Transcribing,
            Ok("drafting") => Phase::Drafting,
            Ok("awaiting_review") => Phase::AwaitingReview,
            _ => phase,
        }
    }

    fn state(&self, id: &str) -> Result<String, String> {
        self.app
            .open_raw()
            .query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))
            .map_err(|e| format!("reading the state of {id}: {e}"))
    }

    fn record_signature(&mut self, visit: &Visit) -> Result<(), String> {
        let id = visit.id.as_deref().ok_or("a signed visit with no id")?;
        let sha: String = self
            .app
            .open_raw()
            .query_row("SELECT sha256 FROM signed_notes WHERE encounter_id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(|e| format!("signed visit {id} has no signed note: {e}"))?;
        if let Some(before) = self.signed.insert(id.to_string(), sha.clone())
            && before != sha
        {
            return Err(format!("the signed note of {id} changed: {before} → {sha}"));
        }
        Ok(())
    }

    /// With the daemon down: the database is sound, every signed note is as signed, every
    /// acknowledged chunk of this visit is stored.
    fn check_survivors(&self, visit: &Visit, violations: &mut Vec<String>) {
        let out = self.app.run(&["db", "check"], None);
        if !out.status.success() {
            violations.push(format!("`scribe db check` failed: {}", crate::text(&out)));
        }
        let conn = self.app.open_raw();
        for (id, sha) in &self.signed {
            let now: Result<String, _> =
                conn.query_row("SELECT sha256 FROM signed_notes WHERE encounter_id = ?1", [id], |r| {
                    r.get(0)
                });
            match now {
                Ok(now) if now == *sha => {}
                Ok(now) => violations.push(format!("signed note {id} altered: {sha} → {now}")),
                Err(e) => violations.push(format!("signed note {id} lost: {e}")),
            }
        }
        if let Some(id) = &visit.id {
            let stored: u32 = conn
                .query_row(
                    "SELECT count(*) FROM audio_chunks WHERE encounter_id = ?1 AND seq < ?2",
                    rusqlite::params![id, visit.acked],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            if stored != visit.acked {
                violations.push(format!(
                    "{id}: {} acknowledged audio chunks, {stored} stored",
                    visit.acked
                ));
            }
        }
    }

    /// Waits until no encounter is in recording, transcribing or drafting; a `failed` one must say why.
    fn settle(&self) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let conn = self.app.open_raw();
            let busy: Vec<(String, String)> = conn
                .prepare("SELECT id, state FROM encounters WHERE state IN ('recording', 'transcribing', 'drafting')")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()
                })
                .map_err(|e| format!("listing encounters: {e}"))?;
            if busy.is_empty() {
                let silent: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM encounters WHERE state = 'failed' AND coalesce(failure_reason, '') = ''",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| format!("counting failures: {e}"))?;
                return match silent {
                    0 => Ok(()),
                    n => Err(format!("{n} encounters failed without a reason")),
                };
            }
            if Instant::now() > deadline {
                return Err(format!("stuck after the restart: {busy:?}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A visit as its recorder and physician know it: it survives the daemon.
#[derive(Debug, Default)]
struct Visit {
    id: Option<String>,
    /// Chunks `0..acked` were acknowledged (committed).
    acked: u32,
    stopped: bool,
    outcome: Option<Outcome>,
}

/// A `scribe daemon` in its own process group (its workers are in it too).
struct Daemon {
    child: Child,
    url: mpsc::Receiver<String>,
    known_url: Option<String>,
}

impl Daemon {
    fn start(c: &Campaign) -> Daemon {
        use std::os::unix::process::CommandExt;
        let mut cmd = c.app.command(&["daemon"]);
        cmd.env("SCRIBE_FINALIZE_AFTER", FINALIZE_AFTER)
            .env("SCRIBE_THREADS", c.threads.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn scribe daemon");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, url) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(u) = line.trim().strip_prefix("review app listening on ") {
                    let _ = tx.send(u.to_string());
                }
            }
        });
        Daemon {
            child,
            url,
            known_url: None,
        }
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The review app's address once the daemon announced it.
    fn url(&mut self, killed: &AtomicBool) -> Result<String, String> {
        if let Some(u) = &self.known_url {
            return Ok(u.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if killed.load(Ordering::SeqCst) {
                return Err("killed while starting".into());
            }
            if let Ok(u) = self.url.recv_timeout(Duration::from_millis(20)) {
                self.known_url = Some(u.clone());
                return Ok(u);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the daemon exited while starting: {status}"));
            }
        }
        Err("the daemon did not announce its review app within 60 s".into())
    }

    /// Waits for the killed group's leader.
    fn reap(&mut self) {
        let _ = self.child.wait();
    }

    /// Asks the daemon to stop (SIGTERM) and waits; kills the group if it takes too long.
    fn stop(&mut self) {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(self.pgid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Workers notice the closed pipe and exit; make sure none lingers.
                // SAFETY: the group we created; harmless if it is already empty.
                unsafe { libc::killpg(self.pgid(), libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::killpg(self.pgid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Kills the daemon's process group when `kill` says; returns the phase the visit was in.
fn killer(Kill(aim, delay): Kill, pgid: i32, phase: &AtomicU8, killed: &AtomicBool, driver_done: &AtomicBool) -> Phase {
    let mut seen: Option<Instant> = None;
    loop {
        let now = Phase::from_u8(phase.load(Ordering::SeqCst));
        if now == aim && seen.is_none() {
            seen = Some(Instant::now());
        }
        // A phase too short to be seen (a few milliseconds) is passed, and a visit that failed
        // never reaches it: the kill lands then instead; `killed_in` tells.
        let due = seen.is_some_and(|at| at.elapsed() >= delay)
            || (now == Phase::Done && aim != Phase::Done)
            || (driver_done.load(Ordering::SeqCst) && now != Phase::Done);
        if due {
            killed.store(true, Ordering::SeqCst);
            // SAFETY: the daemon's own process group, which the campaign created.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
            return now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Takes the visit as far as it goes: to its outcome, or to the kill (an error).
fn drive(
    c: &Campaign,
    daemon: &mut Daemon,
    visit: &mut Visit,
    phase: &AtomicU8,
    killed: &AtomicBool,
) -> Result<(), String> {
    let t0 = Instant::now();
    let set = |p: Phase| {
        if std::env::var_os("SCRIBE_CRASH_TRACE").is_some() && phase.load(Ordering::SeqCst) != p as u8 {
            eprintln!("{:>8.2?} {p:?}", t0.elapsed());
        }
        phase.store(p as u8, Ordering::SeqCst)
    };
    if visit.outcome.is_some() {
        set(Phase::Done);
        return Ok(());
    }
    let url = daemon.url(killed)?;
    let mut client = Client::new(&url);
    let login = client
        .try_post("/login", &[("user", PHYSICIAN), ("password", &c.password)])
        .map_err(|e| format!("login: {e}"))?;
    if login.status != 303 || client.cookie.is_none() {
        return Err(format!("login refused: {login:?}"));
    }
    let csrf = client.try_csrf().map_err(|e| format!("CSRF token: {e}"))?;

    if !visit.stopped {
        set(Phase::Recording);
        let id = match &visit.id {
            Some(id) => id.clone(),
            None => {
                let r = client
                    .try_post(
                        "/record",
                        &[
                            ("csrf", &csrf),
                            ("label", "Crash campaign"),
                            ("template", "soap"),
                            ("physician", ""),
                        ],
                    )
                    .map_err(|e| format!("opening the visit: {e}"))?;
                let id = r
                    .location
                    .as_deref()
                    .and_then(|l| l.strip_prefix("/record/"))
                    .ok_or_else(|| format!("opening the visit: {r:?}"))?
                    .to_string();
                visit.id = Some(id.clone());
                id
            }
        };
        // A recording the daemon already finished (the kill came after "stop" was committed, or
        // the recorder was away too long) takes no more audio.
        if c.state(&id)? != "recording" {
            visit.stopped = true;
        } else {
            stream(&client, &csrf, &id, &c.audio, visit)?;
        }
    }
    let id = visit.id.clone().expect("a stopped visit has an id");

    set(Phase::Transcribing);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if killed.load(Ordering::SeqCst) {
            return Err("killed while the pipeline ran".into());
        }
        match c.state(&id)?.as_str() {
            "transcribing" => set(Phase::Transcribing),
            "drafting" => set(Phase::Drafting),
            "awaiting_review" => break,
            "signed" => {
                visit.outcome = Some(Outcome::Signed);
                set(Phase::Done);
                return Ok(());
            }
            "failed" => {
                let reason: String = c
                    .app
                    .open_raw()
                    .query_row(
                        "SELECT coalesce(failure_reason, '') FROM encounters WHERE id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .map_err(|e| e.to_string())?;
                visit.outcome = Some(Outcome::Failed(reason));
                set(Phase::Done);
                return Ok(());
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(format!("{id} stuck in the pipeline"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    set(Phase::AwaitingReview);
    // The physician goes through the flags, then signs.
    let (_, version) = client.try_acknowledge_flags(&id)?;
    set(Phase::Signing);
    let r = client
        .try_post(
            &format!("/encounters/{id}/sign"),
            &[("csrf", &csrf), ("version", &version), ("password", &c.password)],
        )
        .map_err(|e| format!("signing: {e}"))?;
    if r.status != 303 {
        return Err(format!("signing refused: {} {}", r.status, r.body));
    }
    visit.outcome = Some(Outcome::Signed);
    set(Phase::Done);
    Ok(())
}

/// Streams the chunks not yet acknowledged, one at a time as the recorder page does, then "stop".
fn stream(client: &Client, csrf: &str, id: &str, audio: &[Vec<i16>], visit: &mut Visit) -> Result<(), String> {
    let mut recorder = Recorder::open(client, csrf, id)?;
    for seq in visit.acked..audio.len() as u32 {
        let r = recorder.send(seq, &audio[seq as usize])?;
        if r["ack"] != seq {
            return Err(format!("chunk {seq} answered {r}"));
        }
        visit.acked = seq + 1;
        // A recorder sends a chunk a second; ten times that keeps a cycle short and still gives
        // the daemon a live recording to transcribe, and a kill a recording to land in.
        std::thread::sleep(CHUNK_EVERY);
    }
    let r = recorder.stop()?;
    if r["done"] != true {
        return Err(format!("stop answered {r}"));
    }
    visit.stopped = true;
    Ok(())
}
