//! `scribe console`: the operator's view on the box itself (see `review_ui::console`).

use std::io::{BufRead, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use review_ui::console::{Microphone, QueueItem, Recording, Snapshot};
use store::{State, Store};

use crate::commands::Context;

/// How many log lines of WARN or ERROR to show.
const RECENT_ERRORS: usize = 6;

pub fn console(ctx: &Context, once: bool) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let models = verify_models(ctx);
    let mut microphone = microphone(ctx);
    if once {
        let chain = chain_status(&store);
        let snapshot = snapshot(ctx, &mut store, &models, (&chain.0, chain.1), &microphone, None);
        print!("{}", review_ui::console::render_text(&snapshot, 110, 30));
        return Ok(ExitCode::SUCCESS);
    }
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        let mut chain = (String::new(), false, Instant::now() - Duration::from_secs(60));
        let mut notice: Option<String> = None;
        let mut mic_checked = Instant::now();
        loop {
            if mic_checked.elapsed() > Duration::from_secs(10) {
                microphone = self::microphone(ctx);
                mic_checked = Instant::now();
            }
            // Re-walking the audit chain is the costly part; every ten seconds is enough.
            if chain.2.elapsed() > Duration::from_secs(10) {
                let (text, ok) = chain_status(&store);
                chain = (text, ok, Instant::now());
            }
            let snapshot = snapshot(
                ctx,
                &mut store,
                &models,
                (&chain.0, chain.1),
                &microphone,
                notice.clone(),
            );
            terminal.draw(|f| review_ui::console::draw(f, &snapshot))?;
            if event::poll(Duration::from_millis(500))?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('r') => notice = Some(start_recording(ctx, &microphone)),
                    KeyCode::Char('s') => {
                        let live = store.live_recordings().unwrap_or_default();
                        let stopped = live
                            .iter()
                            .filter(|(id, _, _)| crate::record::stop_recording(ctx, id))
                            .count();
                        notice = Some(format!("asked {stopped} of {} recording(s) to stop", live.len()));
                    }
                    _ => {}
                }
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

/// Starts `scribe record` for the room microphone as a process of its own, so the recording
/// goes on if the console is closed; `s` (or Ctrl-C in a terminal running it) stops it.
fn start_recording(ctx: &Context, microphone: &Microphone) -> String {
    if !matches!(microphone, Microphone::Device { .. }) {
        return "no microphone to record from".into();
    }
    let Ok(exe) = std::env::current_exe() else {
        return "cannot find the scribe binary".into();
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home")
        .arg(&ctx.home.dir)
        .arg("--models")
        .arg(ctx.config.models_dir(&ctx.home))
        .args(["record", "--no-wait"]);
    if !ctx.config.capture.device.is_empty() {
        cmd.args(["--room", &ctx.config.capture.device]);
    }
    use std::os::unix::process::CommandExt;
    match cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
    {
        Ok(_) => "recording started".into(),
        Err(e) => format!("cannot start recording: {e}"),
    }
}

/// The configured room microphone, or the default input device, as the console shows it.
fn microphone(ctx: &Context) -> Microphone {
    let wanted = &ctx.config.capture.device;
    match audio::capture::input_devices() {
        Ok(devices) if devices.is_empty() => Microphone::None,
        Ok(devices) if wanted.is_empty() => {
            devices
                .iter()
                .find(|d| d.is_default)
                .map_or(Microphone::None, |d| Microphone::Device {
                    name: format!("{} (default)", d.name),
                })
        }
        Ok(devices) => match devices.iter().find(|d| &d.name == wanted) {
            Some(d) => Microphone::Device { name: d.name.clone() },
            None => Microphone::Error(format!(
                "capture.device {wanted:?} is not connected; `scribe devices` lists what is"
            )),
        },
        Err(_) => Microphone::None,
    }
}

fn snapshot(
    ctx: &Context,
    store: &mut Store,
    models: &[(String, String, bool)],
    chain: (&str, bool),
    microphone: &Microphone,
    notice: Option<String>,
) -> Snapshot {
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
        microphone: microphone.clone(),
        recordings: store
            .live_recordings()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, ms, peak)| Recording {
                id,
                seconds: (ms / 1000) as u64,
                level_dbfs: peak.unwrap_or(-90.0),
            })
            .collect(),
        errors,
        notice,
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
