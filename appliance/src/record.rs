//! Recording from the room microphone: `scribe devices`, `scribe mic-test`, `scribe record`.
//!
//! A recording is spooled into the encrypted store one second at a time as it is captured, so a
//! crash, a kill or a power cut loses at most the second in flight; the daemon finishes a
//! recording whose recorder went away and transcribes what was kept.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use audio::capture::{self, CaptureError, Chunk};
use store::{NewEncounter, State};

use crate::commands::{Context, VisitArgs, local_operator, process_or_wait, summarize};

pub fn devices() -> Result<ExitCode> {
    let devices = capture::input_devices()?;
    if devices.is_empty() {
        eprintln!("no microphone found: the sound system lists no input devices");
        return Ok(ExitCode::FAILURE);
    }
    for d in devices {
        println!("{}{}", d.name, if d.is_default { "  (default)" } else { "" });
        if let Some(f) = d.default_format {
            println!("    records as {f}");
        }
        for f in d.formats {
            println!("    {f}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn device_name<'a>(ctx: &'a Context, flag: Option<&'a str>) -> Option<&'a str> {
    flag.or(Some(ctx.config.capture.device.as_str()))
        .filter(|d| !d.is_empty())
}

/// Records three seconds, stores nothing, and says whether the level is usable.
pub fn mic_test(ctx: &Context, device: Option<&str>) -> Result<ExitCode> {
    let mut mic = capture::open(device_name(ctx, device))?;
    eprintln!("recording 3 s from {} ({} Hz)…", mic.device, mic.device_rate());
    let chunks: Vec<Chunk> = (0..3).map(|_| mic.next_second()).collect::<Result<_, _>>()?;
    let peak = chunks.iter().map(|c| c.peak_dbfs).fold(f32::MIN, f32::max);
    let rms = chunks.iter().map(|c| c.rms_dbfs).sum::<f32>() / chunks.len() as f32;
    let clipped: usize = chunks.iter().map(|c| c.clipped).sum();
    println!("device: {}", mic.device);
    println!("peak: {peak:.1} dBFS, average: {rms:.1} dBFS, clipped samples: {clipped}");
    let verdict = if clipped > 0 {
        "CLIPPING: lower the input gain or move the microphone away"
    } else if peak < -50.0 {
        "SILENT: check that the microphone is connected, unmuted, and its gain up"
    } else if rms < -45.0 {
        "QUIET: speech may be missed; raise the gain or move the microphone closer"
    } else {
        "OK"
    };
    println!("{verdict}");
    Ok(if verdict == "OK" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub struct RecordArgs<'a> {
    pub device: Option<&'a str>,
    pub seconds: Option<u64>,
    pub visit: VisitArgs,
    pub no_wait: bool,
}

/// Records until Ctrl-C (or `--seconds`), one committed second at a time, then drafts.
pub fn record(ctx: &Context, args: RecordArgs<'_>) -> Result<ExitCode> {
    let template = args
        .visit
        .template
        .unwrap_or_else(|| ctx.config.drafting.template.clone());
    crate::templates::resolve(&template, &ctx.config.templates_dir(&ctx.home))?;
    // The microphone is opened before anything is stored: no device, no encounter.
    let mut mic = capture::open(device_name(ctx, args.device))?;
    let mut store = ctx.open_store()?;
    let actor = local_operator();
    let id = store.start_recording(
        &actor,
        &NewEncounter {
            template,
            label: args.visit.label.unwrap_or_default(),
            assigned_to: args.visit.physician,
            clinician: args.visit.clinician,
        },
    )?;
    // The id first, so whoever started the recording can follow it (and find it after a crash).
    println!("{id}");
    std::io::stdout().flush()?;
    // Lets the console (or anyone on the box) stop this recording with SIGINT.
    let pidfile = PidFile::create(&ctx.home.recordings_dir(), &id)?;
    tracing::info!(encounter = %id, device = %mic.device, "recording started");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let live = std::io::stderr().is_terminal();
    let mut seq = 0u32;
    let outcome = loop {
        if stop.load(Ordering::Relaxed) || args.seconds.is_some_and(|s| u64::from(seq) >= s) {
            break Ok(());
        }
        match mic.next_second() {
            Ok(chunk) => {
                store
                    .append_audio(&actor, &id, seq, &chunk.pcm, Some(chunk.peak_dbfs))
                    .with_context(|| format!("cannot store second {seq} of recording {id}"))?;
                seq += 1;
                if live {
                    eprint!(
                        "\r{} {:>4} s {}",
                        level_bar(chunk.peak_dbfs),
                        seq,
                        if chunk.clipped > 0 { "CLIPPING" } else { "        " }
                    );
                }
            }
            Err(e) => break Err(e),
        }
    };
    if live {
        eprintln!();
    }
    if let Some(rest) = mic.finish() {
        store.append_audio(&actor, &id, seq, &rest.pcm, Some(rest.peak_dbfs))?;
    }
    let how = if outcome.is_ok() { "stopped" } else { "device-lost" };
    store.finish_recording(&actor, &id, how)?;
    drop(pidfile);
    if let Err(e) = outcome {
        // Every committed second is kept and goes on to be transcribed.
        eprintln!("error: {e}; the {seq} s recorded so far are kept as encounter {id}");
        if matches!(e, CaptureError::Stopped { .. }) && seq == 0 {
            return Ok(ExitCode::FAILURE);
        }
    }
    eprintln!("recorded {seq} s as encounter {id}");
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let state = process_or_wait(ctx, &mut store, &id)?;
    summarize(&mut store, &id, state)?;
    Ok(if state == State::AwaitingReview {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `<home>/recordings/<id>.pid` while a recorder runs; removed when it ends (a killed recorder
/// leaves it behind, naming a pid that no longer exists).
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn create(dir: &std::path::Path, id: &str) -> Result<PidFile> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{id}.pid"));
        std::fs::write(&path, std::process::id().to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Asks the recorder of `id`, if it is alive, to stop (as Ctrl-C would). Returns whether one was
/// told.
pub fn stop_recording(ctx: &Context, id: &str) -> bool {
    let path = ctx.home.recordings_dir().join(format!("{id}.pid"));
    let Some(pid) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return false;
    };
    // SAFETY: kill(2) with a pid read from our own pidfile and SIGINT.
    unsafe { libc::kill(pid, libc::SIGINT) == 0 }
}

/// A 30-character meter from -60 to 0 dBFS.
fn level_bar(dbfs: f32) -> String {
    let filled = (((dbfs + 60.0) / 60.0).clamp(0.0, 1.0) * 30.0).round() as usize;
    format!("[{}{}] {:>6.1} dBFS", "#".repeat(filled), " ".repeat(30 - filled), dbfs)
}
