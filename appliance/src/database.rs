//! `scribe db …`: backups, restores, key rotation and a full check of the database.

use std::path::Path;
use std::process::ExitCode;

use std::io::IsTerminal;

use anyhow::{Context as _, Result, bail};
use store::{Actor, Store};

use crate::commands::{Context, local_operator, read_password};
use crate::lock::PipelineLock;

/// A backup while everything keeps running: one consistent, encrypted copy.
pub fn backup(ctx: &Context, out: &Path) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let report = store.backup(&local_operator(), out)?;
    println!(
        "backup written: {} ({} bytes, sha256 {}): {} encounters, {} signed notes, {} audit events",
        report.path.display(),
        report.bytes,
        report.sha256,
        report.encounters,
        report.signed_notes,
        report.audit_events
    );
    println!(
        "it is encrypted with the database key ({}); keep a copy of that key apart from the backup",
        ctx.home.key().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Restores a backup, after checking it completely, with the daemon stopped.
pub fn restore(ctx: &Context, backup: &Path) -> Result<ExitCode> {
    let Some(_lock) = PipelineLock::try_acquire(&ctx.home.pipeline_lock())? else {
        bail!(
            "a scribe daemon is running in {}; stop it (and any `scribe serve`) before restoring",
            ctx.home.dir.display()
        );
    };
    if !backup.exists() {
        bail!("no backup at {}", backup.display());
    }
    let report = Store::restore(backup, &ctx.home.db(), &ctx.home.key(), &local_operator())?;
    println!(
        "restored {}: integrity ok, {} audit events chained, {} signed notes verified",
        backup.display(),
        report.health.audit_events,
        report.health.signed_notes
    );
    if let Some(aside) = report.replaced {
        println!("the database it replaced is kept at {}", aside.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-encrypts the database with a new key, with the daemon stopped (a pause of seconds).
pub fn rekey(ctx: &Context) -> Result<ExitCode> {
    let Some(_lock) = PipelineLock::try_acquire(&ctx.home.pipeline_lock())? else {
        bail!(
            "a scribe daemon is running in {}; stop it for the rotation (it takes seconds), then start it again",
            ctx.home.dir.display()
        );
    };
    let started = std::time::Instant::now();
    Store::rekey(&ctx.home.db(), &ctx.home.key(), &local_operator())?;
    println!(
        "database re-encrypted with a new key in {:.1} s; {} holds it now (backups made before are still under the old key)",
        started.elapsed().as_secs_f64(),
        ctx.home.key().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A new operator passphrase: from a file (scripts, provisioning), else typed twice at a
/// prompt, else one line of stdin.
pub fn new_passphrase(file: Option<&Path>) -> Result<String> {
    let passphrase = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the passphrase from {}", f.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => {
            let first = read_password("new passphrase for the database key: ")?;
            if std::io::stdin().is_terminal() && read_password("again: ")? != first {
                bail!("the two passphrases differ; nothing was changed");
            }
            first
        }
    };
    if passphrase.chars().count() < 12 {
        bail!("the passphrase must have at least 12 characters; nothing was changed");
    }
    Ok(passphrase)
}

/// Seals the key file with an operator passphrase: a copy of the disk alone no longer opens the
/// database. The service then needs the passphrase at every start.
pub fn seal_key(ctx: &Context, passphrase_file: Option<&Path>) -> Result<ExitCode> {
    let passphrase = new_passphrase(passphrase_file)?;
    Store::seal_key(&ctx.home.db(), &ctx.home.key(), Some(&passphrase), &local_operator())?;
    println!(
        "{} is sealed with the passphrase. The service needs it at every start: as the systemd credential \
         scribe-key-passphrase (systemd-creds encrypt, LoadCredentialEncrypted= in scribe.service), or in the \
         file named by SCRIBE_KEY_PASSPHRASE_FILE; the command line asks for it. Keep it apart from backups.",
        ctx.home.key().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Stores the key plain again (mode 0600), for boxes that start unattended without credentials.
pub fn unseal_key(ctx: &Context) -> Result<ExitCode> {
    Store::seal_key(&ctx.home.db(), &ctx.home.key(), None, &local_operator())?;
    println!(
        "{} holds the key without a passphrase again (mode 0600)",
        ctx.home.key().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// SQLite's integrity check, the audit chain and every signature.
pub fn check(ctx: &Context) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let health = store.health(&local_operator())?;
    println!("integrity: {}", health.integrity);
    match &health.audit_broken_at {
        None => println!("audit chain: {} events, intact", health.audit_events),
        Some((seq, why)) => println!("audit chain: BROKEN at event {seq}: {why}"),
    }
    println!(
        "signatures: {} signed notes, {} failing",
        health.signed_notes,
        health.bad_signatures.len()
    );
    for (id, why) in &health.bad_signatures {
        println!("  {id}: {why}");
    }
    Ok(if health.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Deletes the audio the retention policy says is due; returns how many visits' audio went.
pub fn apply_retention(config: &crate::config::RetentionConfig, store: &mut Store, by: &Actor) -> Result<usize> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let due = store.audio_due_for_purge(config.audio(), now_ms)?;
    let reason = format!(
        "retention: audio kept {} after signing, {} at most",
        config.audio_after_signing, config.audio_max_age
    );
    for id in &due {
        let seconds = store.purge_audio(by, id, &reason)?;
        tracing::info!(encounter = %id, seconds, "audio deleted under the retention policy");
    }
    Ok(due.len())
}

/// Applies the retention policy now (the daemon also does, every few minutes).
pub fn retention(ctx: &Context) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let purged = apply_retention(&ctx.config.retention, &mut store, &local_operator())?;
    println!(
        "retention (audio after signing: {}, at most: {}): audio of {purged} visits deleted",
        ctx.config.retention.audio_after_signing, ctx.config.retention.audio_max_age
    );
    Ok(ExitCode::SUCCESS)
}
