//! `scribe console`: the operator's view on the box itself (see `review_ui::console`).

use std::io::{BufRead, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use review_ui::console::{Microphone, QueueItem, Snapshot};
use store::{State, Store};

use crate::commands::Context;

/// How many log lines of WARN or ERROR to show.
const RECENT_ERRORS: usize = 6;

pub fn console(ctx: &Context, once: bool) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let models = verify_models(ctx);
    if once {
        let chain = chain_status(&store);
        let snapshot = snapshot(ctx, &mut store, &models, (&chain.0, chain.1));
        print!("{}", review_ui::console::render_text(&snapshot, 110, 30));
        return Ok(ExitCode::SUCCESS);
    }
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        let mut chain = (String::new(), false, Instant::now() - Duration::from_secs(60));
        loop {
            // Re-walking the audit chain is the costly part; every ten seconds is enough.
            if chain.2.elapsed() > Duration::from_secs(10) {
                let (text, ok) = chain_status(&store);
                chain = (text, ok, Instant::now());
            }
            let snapshot = snapshot(ctx, &mut store, &models, (&chain.0, chain.1));
            terminal.draw(|f| review_ui::console::draw(f, &snapshot))?;
            if event::poll(Duration::from_millis(500))?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
                && matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
            {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result?;
    Ok(ExitCode::SUCCESS)
}

fn chain_status(store: &Store) -> (String, bool) {
    match store.verify_audit_chain() {
        Ok(r) => match r.broken_at {
            None => (format!("intact, {} events", r.events), true),
            Some((seq, why)) => (format!("BROKEN at event {seq}: {why}"), false),
        },
        Err(e) => (format!("cannot check: {e}"), false),
    }
}

/// Hashes each model of the profile once, at start (seconds for the default models).
fn verify_models(ctx: &Context) -> Vec<(String, String, bool)> {
    let Ok((asr, llm)) = ctx.manifest.profile(&ctx.config.profile) else {
        return Vec::new();
    };
    let dir = ctx.config.models_dir(&ctx.home);
    [("asr", asr), ("llm", llm)]
        .into_iter()
        .map(|(role, spec)| {
            let path = firmware::installed_path(&dir, spec);
            let ok = crate::supervisor::model_ref(path, &spec.sha256).verify().is_ok();
            (spec.name.clone(), role.to_string(), ok)
        })
        .collect()
}

fn snapshot(ctx: &Context, store: &mut Store, models: &[(String, String, bool)], chain: (&str, bool)) -> Snapshot {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut health = vec![match store.cipher_version() {
        Ok(v) => ("database".to_string(), format!("open (SQLCipher {v})"), true),
        Err(e) => ("database".to_string(), format!("error: {e}"), false),
    }];
    health.push(("audit trail".into(), chain.0.to_string(), chain.1));
    health.push(match free_space_mb(&ctx.home.dir) {
        Some(mb) if mb < 1024 => ("disk".into(), format!("{mb} MiB free: LOW"), false),
        Some(mb) => ("disk".into(), format!("{} GiB free", mb / 1024), true),
        None => ("disk".into(), "unknown".into(), false),
    });
    let web = &ctx.config.web;
    health.push((
        "review app".into(),
        if web.listen.is_empty() {
            "off".into()
        } else {
            format!("{} ({})", web.listen, if web.tls { "TLS" } else { "plain, loopback" })
        },
        true,
    ));
    let mut queue = Vec::new();
    let mut errors = Vec::new();
    for state in [State::Recording, State::Transcribing, State::Drafting, State::Failed] {
        for id in store.encounters_in(state).unwrap_or_default() {
            if let Ok(e) = store.encounter(&id) {
                if state == State::Failed {
                    // Failed ones older than a day are history, not the queue.
                    if now_ms - e.updated_ms > 24 * 3600 * 1000 {
                        continue;
                    }
                    errors.push(format!(
                        "encounter {id} failed: {}",
                        e.failure_reason.as_deref().unwrap_or("no reason recorded")
                    ));
                }
                queue.push(QueueItem {
                    id,
                    state: state.as_str().into(),
                    age_s: (now_ms - e.updated_ms).max(0) / 1000,
                });
            }
        }
    }
    errors.extend(recent_log_problems(&ctx.home.logs().join("scribe.log")));
    errors.truncate(RECENT_ERRORS);
    Snapshot {
        health,
        models: models.to_vec(),
        queue,
        // Room capture arrives with the microphone work (issue 3); until then this box
        // records through browsers and uploads only.
        microphone: Microphone::None,
        recordings: Vec::new(),
        errors,
    }
}

/// The last WARN/ERROR lines of the log (which holds ids and reasons, never PHI).
fn recent_log_problems(path: &std::path::Path) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    // Only the tail matters: read the last 64 KiB.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    lines.reverse();
    lines.truncate(RECENT_ERRORS);
    lines
}

fn free_space_mb(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed out-struct.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then(|| s.f_bavail * s.f_frsize / (1024 * 1024))
}
