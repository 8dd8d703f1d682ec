//! `scribe update …`: signed update bundles — check, install and switch, roll back — and the
//! vendor's side (a signing key, packing a bundle).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use firmware::{BINARIES, Releases, Version};

use crate::commands::Context;

pub fn verify(releases: &Releases, bundle: &Path) -> Result<ExitCode> {
    let verified = releases.verify(bundle)?;
    println!(
        "{}: version {}, signed by {}, {} files ({} bytes), every SHA-256 matches",
        bundle.display(),
        verified.version,
        verified.signed_by,
        verified.manifest.files.len(),
        verified.bytes
    );
    Ok(ExitCode::SUCCESS)
}

pub fn apply(ctx: &Context, releases: &Releases, bundle: &Path, allow_downgrade: bool) -> Result<ExitCode> {
    let models = ctx.config.models_dir(&ctx.home);
    let applied = releases.apply(bundle, &models, allow_downgrade)?;
    let from = applied
        .previous
        .map_or_else(|| "nothing".to_string(), |v| v.to_string());
    println!(
        "verified {} (signed by {}); installed beside {from} and switched to it",
        applied.verified.version, applied.verified.signed_by
    );
    for name in &applied.models_added {
        println!("model added: {name}");
    }
    for name in &applied.models_kept {
        println!("model already installed, unchanged: {name}");
    }
    println!("restart the service to run it (systemctl restart scribe); `scribe update rollback` returns to {from}");
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(releases: &Releases) -> Result<ExitCode> {
    let (from, to) = releases.rollback()?;
    println!("switched from {from} back to {to} (its binaries checked); restart the service to run it");
    Ok(ExitCode::SUCCESS)
}

pub fn status(releases: &Releases) -> Result<ExitCode> {
    let installed = releases.installed()?;
    if installed.is_empty() {
        println!("no release installed under {}", releases.root().display());
    }
    for release in installed {
        let previous = release
            .previous
            .map(|v| format!(" (installed over {v})"))
            .unwrap_or_default();
        let marker = if release.current { "* " } else { "  " };
        println!("{marker}{}{previous}", release.version);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn trust(releases: &Releases, public_key: &Path) -> Result<ExitCode> {
    let dest = releases.trust(public_key)?;
    println!(
        "bundles signed by {} are now accepted ({})",
        public_key.display(),
        dest.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn adopt(releases: &Releases, version: &str, bin_dir: &Path) -> Result<ExitCode> {
    let version: Version = version.parse().map_err(anyhow::Error::msg)?;
    if releases.adopt(version, bin_dir)? {
        println!("installed {version} from {} and switched to it", bin_dir.display());
    } else {
        println!("{version} installed; a newer or the same release stays current");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn keygen(dir: &Path, name: &str) -> Result<ExitCode> {
    let (key, public) = firmware::keygen(dir, name)?;
    println!("signing key: {} (keep it off the appliances)", key.display());
    println!("public key:  {} (install with `scribe update trust`)", public.display());
    Ok(ExitCode::SUCCESS)
}

pub fn pack(key: &Path, version: &str, bin_dir: &Path, models: &[PathBuf], out: &Path) -> Result<ExitCode> {
    let version: Version = version.parse().map_err(anyhow::Error::msg)?;
    let mut files: Vec<(String, PathBuf)> = BINARIES
        .iter()
        .map(|bin| (format!("bin/{bin}"), bin_dir.join(bin)))
        .collect();
    for model in models {
        let Some(name) = model.file_name().and_then(|n| n.to_str()) else {
            bail!("{} has no file name", model.display());
        };
        files.push((format!("models/{name}"), model.clone()));
    }
    let manifest = firmware::pack(key, version, &files, out).with_context(|| format!("packing {}", out.display()))?;
    println!(
        "{}: version {version}, {} files, signed with {}",
        out.display(),
        manifest.files.len(),
        key.display()
    );
    Ok(ExitCode::SUCCESS)
}
