//! Model cards: for each model of the running profile, where it came from, its hash and licence,
//! what it is for, what it gets wrong, whether the installed file still matches, and the
//! evaluation numbers measured on this appliance (`scribe eval …` records each run in
//! `<home>/eval-history.jsonl`). Model changes are audit events (`model.install:…`).

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use firmware::ModelSpec;
use serde::{Deserialize, Serialize};

use crate::commands::{Context, local_operator};
use crate::config::{Config, Home};

/// One evaluation run, as kept in the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalRecord {
    pub at: String,
    /// The models measured, as `name sha256:…`.
    pub models: Vec<String>,
    /// What was measured: "ACI-Bench valid, 20 encounters, typed transcripts".
    pub what: String,
    /// The headline numbers, as printed.
    pub results: String,
}

fn history(home: &Home) -> std::path::PathBuf {
    home.dir.join("eval-history.jsonl")
}

/// Appends an evaluation run to the appliance's history.
pub fn record_eval(home: &Home, record: &EvalRecord) -> Result<()> {
    let path = history(home);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(record)?)?;
    Ok(())
}

fn evals_of(home: &Home, spec: &ModelSpec) -> Vec<EvalRecord> {
    let Ok(text) = std::fs::read_to_string(history(home)) else {
        return Vec::new();
    };
    let me = version(spec);
    text.lines()
        .filter_map(|l| serde_json::from_str::<EvalRecord>(l).ok())
        .filter(|r| r.models.contains(&me))
        .collect()
}

/// A model as drafts, evaluations and the audit trail name it.
pub fn version(spec: &ModelSpec) -> String {
    format!("{} sha256:{}", spec.name, &spec.sha256[..12])
}

/// Records a model installed into the store in the audit trail, if this home has a database.
pub fn audit_install(ctx: &Context, spec: &ModelSpec, how: &str) -> Result<()> {
    if ctx.home.db().exists() {
        let mut store = ctx.open_store()?;
        store.audit(
            &local_operator(),
            &format!("model.install:{}", version(spec)),
            None,
            how,
        )?;
    }
    Ok(())
}

/// The card of one model, in Markdown.
pub fn card(config: &Config, home: &Home, spec: &ModelSpec) -> String {
    let path = firmware::installed_path(&config.models_dir(home), spec);
    let installed = match crate::supervisor::model_ref(path.clone(), &spec.sha256).verify() {
        Ok(()) => format!("installed at `{}`, SHA-256 verified now", path.display()),
        Err(e) => format!("**not usable**: {e}"),
    };
    let packages: Vec<String> = spec
        .source
        .packages
        .iter()
        .map(|p| format!("`{}=={}`", p.name, p.version))
        .collect();
    let format = match spec.source.format {
        firmware::Format::Gguf => "GGUF, used as published",
        firmware::Format::Ctranslate2 => "CTranslate2 weights converted on the box to whisper.cpp ggml",
    };
    let kind = match spec.kind {
        firmware::ModelKind::Asr => "speech recognition (whisper.cpp)",
        firmware::ModelKind::Llm => "note drafting (llama.cpp, grammar-constrained)",
    };
    let mut md = format!(
        "### {name}\n\n\
         | | |\n|---|---|\n\
         | Role | {kind} |\n\
         | File | `{file}`, {size:.1} MB |\n\
         | SHA-256 | `{sha}` |\n\
         | Source | PyPI {packages} ({format}) |\n\
         | Licence | {license} |\n\
         | On this box | {installed} |\n\n\
         **Intended use.** {use_}\n\n**Known limits.** {limits}\n\n",
        name = spec.name,
        file = spec.file,
        size = spec.size as f64 / 1e6,
        sha = spec.sha256,
        packages = packages.join(", "),
        license = spec.license,
        use_ = spec.intended_use,
        limits = spec.limits,
    );
    let evals = evals_of(home, spec);
    if evals.is_empty() {
        md.push_str("**Measured on this appliance.** Nothing yet: `scribe eval aci-bench` or `scribe eval speakers` records its numbers here.\n");
    } else {
        md.push_str("**Measured on this appliance.**\n\n| When | What | Results |\n|---|---|---|\n");
        for r in evals.iter().rev().take(5) {
            md.push_str(&format!("| {} | {} | {} |\n", r.at, r.what, r.results));
        }
    }
    md
}

/// `scribe models cards`: the running profile's cards, printed or written to a folder.
pub fn cards(ctx: &Context, out: Option<&Path>) -> Result<std::process::ExitCode> {
    let (asr, llm) = ctx.manifest.profile(&ctx.config.profile)?;
    for spec in [asr, llm] {
        let md = card(&ctx.config, &ctx.home, spec);
        match out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("{}.md", spec.name));
                std::fs::write(&path, md)?;
                println!("{}", path.display());
            }
            None => println!("{md}"),
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Records in the audit trail which model versions the pipeline runs, whenever they differ from
/// the last ones recorded there: whatever changed them (an update bundle, a reinstall, another
/// profile), the change is logged. Returns what changed.
pub fn audit_models_in_use(ctx: &Context, store: &mut store::Store) -> Result<Vec<String>> {
    let (asr, llm) = ctx.manifest.profile(&ctx.config.profile)?;
    let mut changed = Vec::new();
    for (kind, spec) in [("asr", asr), ("llm", llm)] {
        let prefix = format!("model.in_use:{kind}:");
        // Once per pipeline start: one query from the newest event back, not the whole trail loaded.
        let last_action = store.last_audit_action(&prefix)?;
        let last = last_action.as_deref().and_then(|a| a.strip_prefix(&prefix));
        let now = version(spec);
        if last != Some(now.as_str()) {
            let from = last.map_or_else(|| "first use".to_string(), |l| format!("was {l}"));
            store.audit(
                &store::Actor::system("pipeline"),
                &format!("{prefix}{now}"),
                None,
                &format!("model change ({from})"),
            )?;
            changed.push(now);
        }
    }
    Ok(changed)
}
