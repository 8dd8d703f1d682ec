//! What each `scribe` subcommand does. Human-readable progress goes to stderr; stdout carries
//! only what scripts consume (an encounter id, JSON).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use firmware::Manifest;
use serde_json::json;
use store::{Actor, NewEncounter, Role, State, Store, StoreError, Verification};

/// How often the daemon applies the retention policy.
const RETENTION_EVERY: Duration = Duration::from_secs(10 * 60);

use crate::config::{Config, Home, ensure_dir};
use crate::lock::PipelineLock;
use crate::pipeline::{Pipeline, installed_models};

pub struct Context {
    pub home: Home,
    pub config: Config,
    pub manifest: Manifest,
}

impl Context {
    pub fn new(home: Home, models: Option<PathBuf>) -> Result<Context> {
        let mut config = Config::load(&home)?;
        if let Some(m) = models {
            config.models_dir = m.display().to_string();
        }
        Ok(Context {
            home,
            config,
            manifest: Manifest::builtin(),
        })
    }

    pub fn open_store(&self) -> Result<Store> {
        Ok(Store::open(&self.home.db(), &self.home.key())?)
    }
}

/// Makes sure the review app has a certificate from the clinic CA for this box's names;
/// returns what was done, a line a step.
pub(crate) fn review_app_certificate(ctx: &Context, clinic: &str, allow: &[String]) -> Result<Vec<String>> {
    let host = std::fs::read_to_string("/etc/hostname").map_or_else(|_| "scribe".into(), |h| h.trim().to_string());
    let names = vec![host, "localhost".into(), "127.0.0.1".into()];
    let networks = allow
        .iter()
        .map(|c| c.parse::<firmware::Cidr>())
        .collect::<Result<Vec<_>, _>>()
        .context("network.allow")?;
    let dir = ctx.home.tls_dir();
    let files = firmware::TlsFiles::new(&dir);
    let outcomes = firmware::issue_tls(&dir, clinic, &names, &networks)?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome {
            firmware::TlsOutcome::CaCreated => format!(
                "clinic CA created: install {} on the clinic's browsers and tablets (it can vouch only for this box)",
                files.ca_cert().display()
            ),
            firmware::TlsOutcome::Issued { reason, not_after } => {
                format!("certificate for {} {reason}, valid until {not_after}", names.join(", "))
            }
            firmware::TlsOutcome::Kept { not_after } => {
                format!("{}: kept, valid until {not_after}", files.cert().display())
            }
            firmware::TlsOutcome::NotOurs => format!(
                "{}: kept (not issued by this appliance's CA; IT renews it)",
                files.cert().display()
            ),
        })
        .collect())
}

/// Whoever runs the CLI on the box itself: recorded in the audit trail by their OS account.
pub(crate) fn local_operator() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor {
        name: format!("local:{user}"),
        role: Role::System,
        source: Some("local".into()),
    }
}

pub fn init(ctx: &Context, profile: &str) -> Result<ExitCode> {
    ctx.manifest.profile(profile)?;
    ensure_dir(&ctx.home.dir)?;
    let store = Store::create(&ctx.home.db(), &ctx.home.key())?;
    let config = ctx.home.config();
    if !config.exists() {
        std::fs::write(&config, Config::commented(profile))
            .with_context(|| format!("cannot write {}", config.display()))?;
    }
    ensure_dir(&ctx.home.logs())?;
    for line in review_app_certificate(ctx, &ctx.config.web.clinic, &ctx.config.network.allow)? {
        eprintln!("tls: {line}");
    }
    eprintln!(
        "created {} (SQLCipher {})",
        ctx.home.db().display(),
        store.cipher_version()?
    );
    eprintln!(
        "key file {} (mode 0600): keep it apart from backups of the database",
        ctx.home.key().display()
    );
    eprintln!("config {} (profile {profile})", config.display());
    Ok(ExitCode::SUCCESS)
}

/// `scribe user add NAME --role R`: like the admin page, the account gets no password its maker
/// knows; the one-time enrolment code goes to stdout, to be handed to its owner. With
/// `--password-stdin` (scripted provisioning) the password is read from stdin instead.
pub fn user_add(ctx: &Context, name: &str, role: &str, password_stdin: bool) -> Result<ExitCode> {
    let role = Role::parse(role)
        .with_context(|| format!("unknown role {role:?}; use clinician, physician, it_admin or auditor"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        bail!("user name {name:?} may only contain letters, digits, '.', '_' and '-'");
    }
    if !password_stdin {
        let code = ctx.open_store()?.add_user_enrolling(&local_operator(), name, role)?;
        eprintln!(
            "added {name} ({}) without a password. Give them this one-time code in person; they set their \
             password with it at /enrol within {} hours:",
            role.as_str(),
            store::ENROLMENT_MS / 3_600_000
        );
        println!("{code}");
        return Ok(ExitCode::SUCCESS);
    }
    let password = read_password(&format!("New password for {name}: "))?;
    if password.chars().count() < 8 {
        bail!("the password must be at least 8 characters");
    }
    ctx.open_store()?.add_user(&local_operator(), name, role, &password)?;
    eprintln!("added {name} ({})", role.as_str());
    Ok(ExitCode::SUCCESS)
}

/// `scribe user disable|enable NAME` at the box's console. A running daemon keeps the sessions it
/// has until they end; `/admin` ends them at once.
pub fn user_set_disabled(ctx: &Context, name: &str, disabled: bool) -> Result<ExitCode> {
    ctx.open_store()?.set_user_disabled(&local_operator(), name, disabled)?;
    eprintln!("{name} is {}", if disabled { "disabled" } else { "enabled" });
    Ok(ExitCode::SUCCESS)
}

/// `scribe user reset NAME`: the enrolment code goes to stdout, to be handed to the person.
pub fn user_reset(ctx: &Context, name: &str) -> Result<ExitCode> {
    let code = ctx.open_store()?.reset_password(&local_operator(), name)?;
    eprintln!(
        "{name}'s password no longer works. Give them this one-time code in person; they set a new \
         password with it at /enrol within {} hours:",
        store::ENROLMENT_MS / 3_600_000
    );
    println!("{code}");
    Ok(ExitCode::SUCCESS)
}

pub fn models_install(ctx: &Context, profile: Option<&str>) -> Result<ExitCode> {
    let profile = profile.unwrap_or(&ctx.config.profile);
    let (asr, llm) = ctx.manifest.profile(profile)?;
    let dir = ctx.config.models_dir(&ctx.home);
    let fetcher = firmware::PipFetcher::default();
    for spec in [asr, llm] {
        let had = crate::supervisor::model_ref(firmware::installed_path(&dir, spec), &spec.sha256)
            .verify()
            .is_ok();
        firmware::install(spec, &dir, &fetcher, &mut |line| eprintln!("{line}"))?;
        if !had {
            crate::model_cards::audit_install(ctx, spec, "models install")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn models_verify(ctx: &Context, profile: Option<&str>) -> Result<ExitCode> {
    let profile = profile.unwrap_or(&ctx.config.profile);
    let (asr, llm) = ctx.manifest.profile(profile)?;
    let dir = ctx.config.models_dir(&ctx.home);
    let mut ok = true;
    for spec in [asr, llm] {
        let path = firmware::installed_path(&dir, spec);
        let model = crate::supervisor::model_ref(path.clone(), &spec.sha256);
        match model.verify() {
            Ok(()) => eprintln!("{}: OK ({})", spec.name, path.display()),
            Err(e) => {
                ok = false;
                eprintln!("{}: FAILED: {e}", spec.name);
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn templates_list(ctx: &Context) -> Result<ExitCode> {
    for name in drafting::Template::builtin_names() {
        let t = drafting::Template::builtin(name).expect("listed");
        println!("{name:<12} built-in  {} ({} sections)", t.title, t.sections.len());
    }
    let dir = ctx.config.templates_dir(&ctx.home);
    let mut ok = true;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for file in files {
            match drafting::Template::load(&file) {
                Ok(t) => println!("{:<12} clinic    {} ({} sections)", t.name, t.title, t.sections.len()),
                Err(e) => {
                    ok = false;
                    println!("INVALID      {e}");
                }
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn templates_check(file: &Path) -> Result<ExitCode> {
    let t = drafting::Template::load(file)?;
    let names: Vec<&str> = t.sections.iter().map(|s| s.name.as_str()).collect();
    println!("OK: {} ({}): {}", t.name, t.title, names.join(" / "));
    Ok(ExitCode::SUCCESS)
}

pub fn import_ct2(dir: &Path, out: &Path) -> Result<ExitCode> {
    firmware::import_ct2(dir, out)?;
    let sha = protocol::worker::sha256_file(out)?;
    eprintln!(
        "wrote {} ({} bytes, sha256 {sha})",
        out.display(),
        std::fs::metadata(out)?.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `ingest` and `record` are told about the visit besides its audio.
#[derive(clap::Args)]
pub struct VisitArgs {
    /// Note template (default: the config's drafting.template).
    #[arg(long)]
    pub template: Option<String>,
    /// What the inbox calls the visit, e.g. "Room 2, 10:30".
    #[arg(long)]
    pub label: Option<String>,
    /// The clinician (or physician) whose visit this is; default: the box's operator.
    #[arg(long)]
    pub clinician: Option<String>,
    /// The physician who is to sign it; default: any physician of the clinic.
    #[arg(long)]
    pub physician: Option<String>,
}

pub fn ingest(
    ctx: &mut Context,
    file: Option<&Path>,
    transcript: Option<&Path>,
    visit: VisitArgs,
    no_wait: bool,
) -> Result<ExitCode> {
    let template = visit.template.unwrap_or_else(|| ctx.config.drafting.template.clone());
    // Check everything that can be checked before anything is stored: a bad file, an unknown
    // template or missing models leave no trace.
    crate::templates::resolve(&template, &ctx.config.templates_dir(&ctx.home))?;
    installed_models(&ctx.manifest, &ctx.config, &ctx.home)?;
    let mut store = ctx.open_store()?;
    let actor = local_operator();
    let new = NewEncounter {
        template: template.clone(),
        label: visit.label.unwrap_or_default(),
        assigned_to: visit.physician,
        clinician: visit.clinician,
    };
    let id = match (file, transcript) {
        (Some(path), None) => {
            let recording = audio::decode_file(path, &ctx.config.capture.upload_limits())
                .with_context(|| format!("cannot ingest {}", path.display()))?;
            tracing::info!(
                audio_ms = recording.pcm.duration_ms(),
                channel_track = recording.channel_track.is_some(),
                "recording decoded"
            );
            store.create_audio_encounter(&actor, &new, &recording.pcm.samples, recording.channel_track.as_deref())?
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("cannot ingest {}: not UTF-8 text", path.display()))?;
            let transcript =
                crate::dialogue::parse_dialogue(&text).with_context(|| format!("cannot ingest {}", path.display()))?;
            store.create_transcript_encounter(&actor, &new, &transcript)?
        }
        _ => bail!("give either a recording or --transcript FILE"),
    };
    tracing::info!(encounter = %id, "encounter stored");

    if no_wait {
        if PipelineLock::try_acquire(&ctx.home.pipeline_lock())?.is_some() {
            eprintln!(
                "stored; no daemon is running in {}, so it will be drafted when `scribe daemon` starts",
                ctx.home.dir.display()
            );
        }
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }

    let state = process_or_wait(ctx, &mut store, &id)?;
    summarize(&mut store, &id, state)?;
    println!("{id}");
    Ok(if state == State::AwaitingReview {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Processes the encounter here if no one else runs the pipeline; otherwise waits for whoever
/// does. That may be a daemon, which will get to it, or another `ingest`, which processes only
/// its own encounter and then lets go of the lock, so the lock is tried again while waiting.
pub(crate) fn process_or_wait(ctx: &Context, store: &mut Store, id: &str) -> Result<State> {
    loop {
        if let Some(_lock) = PipelineLock::try_acquire(&ctx.home.pipeline_lock())? {
            let mut pipeline = Pipeline::new(&ctx.config, &ctx.home, &ctx.manifest)?;
            crate::model_cards::audit_models_in_use(ctx, store)?;
            return pipeline.process(store, id);
        }
        let state = store.encounter(id)?.state;
        if state.is_settled() {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn summarize(store: &mut Store, id: &str, state: State) -> Result<()> {
    let encounter = store.encounter(id)?;
    for run in store.job_runs(id)? {
        let s = &run.stats;
        let n = |k: &str| s.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        match run.kind.as_str() {
            "asr" if run.ok => eprintln!(
                "transcribed {:.1} s of audio in {:.2} s (worker peak RSS {} MiB)",
                n("audio_ms") as f64 / 1000.0,
                n("wall_ms") as f64 / 1000.0,
                n("peak_rss_kb") / 1024
            ),
            "draft" if run.ok => eprintln!(
                "drafted in {:.1} s: prompt {} tokens at {:.0} tok/s, generated {} tokens at {:.1} tok/s (worker peak RSS {} MiB)",
                n("wall_ms") as f64 / 1000.0,
                n("prompt_tokens"),
                per_s(n("prompt_tokens"), n("prompt_ms")),
                n("generated_tokens"),
                per_s(n("generated_tokens"), n("generate_ms")),
                n("peak_rss_kb") / 1024
            ),
            _ => {}
        }
    }
    match state {
        State::AwaitingReview => eprintln!("encounter {id}: draft ready for review"),
        State::Failed => eprintln!(
            "encounter {id} failed: {}",
            encounter.failure_reason.as_deref().unwrap_or("no reason recorded")
        ),
        other => eprintln!("encounter {id}: {other}"),
    }
    Ok(())
}

fn per_s(count: u64, ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        count as f64 * 1000.0 / ms as f64
    }
}

pub fn show(ctx: &Context, id: &str, as_json: bool) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let actor = local_operator();
    let encounter = store.encounter(id)?;
    let transcript = store.transcript(&actor, id, "review")?;
    let latest = store.latest_draft(&actor, id, "review")?;
    let draft_version = latest.as_ref().map(|(v, _)| *v);
    let draft = latest.map(|(_, d)| d);
    let signed = store.signed_note(&actor, id, "review")?;
    if as_json {
        let value = json!({
            "id": encounter.id,
            "state": encounter.state.as_str(),
            "template": encounter.template,
            "label": encounter.label,
            "created_by": encounter.created_by,
            "assigned_to": encounter.assigned_to,
            "draft_version": draft_version,
            "draft_models": store.draft_models(id)?,
            "spoken_instructions": drafting::spoken_instructions(&transcript),
            "failure_reason": encounter.failure_reason,
            "audio_ms": encounter.audio_ms,
            "audio_purged_at": encounter.audio_purged_ms.map(store::rfc3339_utc),
            "transcript": { "segments": transcript.segments },
            "draft": draft,
            "signature": signed.as_ref().map(|s| json!({
                "signer": s.signer,
                "signed_at": humantime::format_rfc3339_millis(
                    std::time::UNIX_EPOCH + Duration::from_millis(s.signed_ms as u64)).to_string(),
                "draft_version": s.draft_version,
                "sha256": s.sha256,
                "signature": s.signature,
                "key_id": s.key_id,
            })),
            "jobs": store.job_runs(id)?.into_iter().map(|r| json!({"kind": r.kind, "ok": r.ok, "stats": r.stats})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("encounter {} — {}", encounter.id, encounter.state);
    if let Some(reason) = &encounter.failure_reason {
        println!("failed: {reason}");
    }
    println!(
        "\nTranscript ({} segments):\n{}",
        transcript.segments.len(),
        review_ui::transcript_text(&transcript)
    );
    match (&signed, &draft) {
        (Some(s), _) => println!("Signed note (signed by {}):\n{}", s.signer, s.canonical_text),
        (None, Some(d)) => println!(
            "Draft ({} template, {} flags):\n{}",
            d.template,
            d.flag_count(),
            review_ui::draft_text(d)
        ),
        (None, None) => println!("No draft yet."),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn sign(ctx: &Context, id: &str, user: &str, acknowledge_flags: bool) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    store.encounter(id)?;
    let password = read_password(&format!("Password for {user} (signing encounter {id}): "))?;
    let signer = store.authenticate(user, &password, Some("local"))?;
    // Who may not sign is told so before anything of the draft is read.
    store::Permission::SignNotes.check(&signer)?;
    let (version, mut draft) = store
        .latest_draft(&signer, id, "signing")?
        .ok_or_else(|| StoreError::NoDraft(id.into()))?;
    let open = open_flags(&draft);
    if !open.is_empty() {
        for (i, (where_, sentence, flag)) in open.iter().enumerate() {
            eprintln!(
                "⚑ {}. {where_}: {sentence:?}\n     {}: {:?}",
                i + 1,
                flag.kind.describe(),
                flag.term
            );
        }
        if !acknowledge_flags {
            anyhow::bail!(
                "{} open flag(s) above: check each against the transcript (`scribe show {id}`), edit the draft in \
                 the review app, or rerun with --acknowledge-flags to let them stand in your name",
                open.len()
            );
        }
        let count = draft.acknowledge_open_flags(&signer.name);
        store.save_edited_draft(&signer, id, version, &draft)?;
        eprintln!("acknowledged {count} flag(s) as {}", signer.name);
    }
    let note = store.sign(&signer, id)?;
    eprintln!(
        "signed encounter {id} as {} (sha256 {}, key {})",
        note.signer, note.sha256, note.key_id
    );
    Ok(ExitCode::SUCCESS)
}

/// The draft's open flags, note first, each with where it is and its sentence.
fn open_flags(draft: &protocol::Draft) -> Vec<(String, String, protocol::Flag)> {
    let mut out = Vec::new();
    let mut collect = |doc: &protocol::Draft, prefix: &str| {
        for section in &doc.sections {
            for s in &section.sentences {
                for f in s.flags.iter().filter(|f| f.acknowledged_by.is_none()) {
                    out.push((format!("{prefix}{}", section.name), s.text.clone(), f.clone()));
                }
            }
        }
    };
    collect(draft, "");
    if let Some(p) = draft.patient_instructions.as_deref() {
        collect(p, "Patient instructions / ");
    }
    out
}

pub fn verify(ctx: &Context, id: &str) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    match store.verify(&local_operator(), id)? {
        Verification::Valid { signer, key_id, sha256 } => {
            println!("OK: the signed note of {id} is intact (signed by {signer}, sha256 {sha256}, key {key_id})");
            Ok(ExitCode::SUCCESS)
        }
        Verification::HashMismatch { expected, actual } => {
            println!(
                "FAILED: the signed note of {id} was altered after signing (sha256 is {actual}, signed {expected})"
            );
            Ok(ExitCode::FAILURE)
        }
        Verification::BadSignature => {
            println!("FAILED: the signature on {id} does not verify with this appliance's key");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn daemon(ctx: &Context) -> Result<ExitCode> {
    let Some(_lock) = PipelineLock::try_acquire(&ctx.home.pipeline_lock())? else {
        bail!(
            "another scribe daemon (or an ingest) is already processing {}",
            ctx.home.dir.display()
        );
    };
    let mut store = ctx.open_store()?;
    let mut pipeline = Pipeline::new(&ctx.config, &ctx.home, &ctx.manifest)?;
    crate::model_cards::audit_models_in_use(ctx, &mut store)?;
    // Bound before the daemon says it runs, so a taken port or a missing certificate stops it here.
    let web = if ctx.config.web.listen.is_empty() {
        None
    } else {
        Some(crate::serve::prepare(ctx, None)?)
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    tracing::info!(pid = std::process::id(), "daemon started");
    println!(
        "scribe daemon running (pid {}) for {}",
        std::process::id(),
        ctx.home.dir.display()
    );
    if let Some(web) = web {
        println!("review app listening on {}", web.url);
        std::thread::Builder::new().name("review-app".into()).spawn(move || {
            if let Err(e) = web.run() {
                tracing::error!("review app stopped: {e:#}");
            }
        })?;
    }
    std::io::stdout().flush()?;
    let mut retention_due = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if std::time::Instant::now() >= retention_due {
            retention_due += RETENTION_EVERY;
            if let Err(e) =
                crate::database::apply_retention(&ctx.config.retention, &mut store, &Actor::system("retention"))
            {
                tracing::error!("retention failed: {e:#}");
            }
            // A signed head now and then, so a copy taken off the box later proves this stretch.
            if let Err(e) = store.sign_audit_head(&Actor::system("audit")) {
                tracing::error!("signing the audit head failed: {e:#}");
            }
        }
        match pipeline.step(&mut store) {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                // A store error (full disk, locked file): nothing was committed for that step;
                // back off and retry rather than exit and leave the queue unattended.
                tracing::error!("pipeline step failed: {e:#}");
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    tracing::info!("daemon stopping");
    Ok(ExitCode::SUCCESS)
}

pub fn audit_verify(ctx: &Context) -> Result<ExitCode> {
    let store = ctx.open_store()?;
    let report = store.verify_audit_chain()?;
    match report.broken_at {
        None => {
            println!("OK: {} audit events, hash chain intact", report.events);
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, why)) => {
            println!("FAILED: audit event {seq} {why} ({} events)", report.events);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Checks the chain, then compares it with a signed head held elsewhere.
pub fn audit_verify_head(ctx: &Context, head: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(head).with_context(|| format!("cannot read {}", head.display()))?;
    let held: store::SignedHead =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a signed audit head", head.display()))?;
    if audit_verify(ctx)? != ExitCode::SUCCESS {
        return Ok(ExitCode::FAILURE);
    }
    let store = ctx.open_store()?;
    let failed = match store.check_head(&held)? {
        store::HeadCheck::Consistent { later } => {
            println!(
                "OK: the head signed at {} (event {}) is in the chain; {later} events since",
                held.signed_at, held.seq
            );
            return Ok(ExitCode::SUCCESS);
        }
        store::HeadCheck::NotOurs(why) => format!("the head is not this appliance's: {why}"),
        store::HeadCheck::RolledBack { head_seq, chain_len } => format!(
            "rolled back: the head signed at {} names event {head_seq}, the chain ends at {chain_len}",
            held.signed_at
        ),
        store::HeadCheck::Diverged { seq } => format!(
            "replaced: event {seq} is not the one the head signed at {} names",
            held.signed_at
        ),
    };
    println!("FAILED: {failed}");
    Ok(ExitCode::FAILURE)
}

/// Checks an export file on its own, without the appliance's database.
pub fn audit_verify_export(file: &Path) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let export: store::AuditExport =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not an audit export", file.display()))?;
    match export.verify() {
        Ok(n) => {
            println!(
                "OK: {n} audit events chained, head signed at {} by this key: {}",
                export.head.signed_at, export.head.public_key
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            println!("FAILED: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The nftables ruleset for the configured allow-list and review-app port.
pub fn firewall(ctx: &Context, systemd: bool) -> Result<ExitCode> {
    let allow = ctx.config.network.allow_list()?;
    if systemd {
        print!("{}", allow.systemd_dropin());
        return Ok(ExitCode::SUCCESS);
    }
    let port = ctx
        .config
        .web
        .listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .filter(|&p| p != 0)
        .with_context(|| format!("web.listen {:?} names no fixed port to open", ctx.config.web.listen))?;
    print!("{}", allow.nftables(port));
    Ok(ExitCode::SUCCESS)
}

pub fn security_owner(ctx: &Context, name: Option<&str>, contact: Option<&str>) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    if let Some(name) = name {
        let contact = contact.context("--contact: how to reach the new security owner")?;
        if store.set_security_owner(&local_operator(), name, contact)? {
            println!("security owner: {name} ({contact}); the change is in the audit trail");
        } else {
            println!("security owner: {name} ({contact}), unchanged");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match store.security_owner()? {
        Some(o) => println!("{} ({}), since {}", o.name, o.contact, store::rfc3339_utc(o.since_ms)),
        None => println!("no security owner named; `scribe security-owner NAME --contact C` names one"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Signs the chain's head now and prints it, for a copy kept off the appliance.
pub fn audit_head(ctx: &Context) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let head = store.sign_audit_head(&local_operator())?;
    println!("{}", serde_json::to_string_pretty(&head)?);
    Ok(ExitCode::SUCCESS)
}

pub fn audit_export(ctx: &Context, out: &Path) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let (export, report) = store.audit_export(&local_operator())?;
    std::fs::write(out, serde_json::to_vec_pretty(&export)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let chain = match report.broken_at {
        None => "intact".to_string(),
        Some((seq, why)) => format!("BROKEN at event {seq}: {why}"),
    };
    println!(
        "{} audit events written to {} with a head signed at {}; chain {chain}",
        export.events.len(),
        out.display(),
        export.head.signed_at
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a password: from a prompt with echo off on a terminal, else the first line of stdin.
pub(crate) fn read_password(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("{prompt}");
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        set_echo(true);
        eprintln!();
    }
    read.context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password given on stdin");
    }
    Ok(password)
}

fn set_echo(on: bool) {
    // SAFETY: termios calls on stdin's descriptor with a struct we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) == 0 {
            if on {
                t.c_lflag |= libc::ECHO;
            } else {
                t.c_lflag &= !libc::ECHO;
            }
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
    }
}

/// `scribe export ID --deidentified`: the visit's note and transcript with the Safe Harbor
/// identifiers replaced, for quality review. The key back is kept (encrypted, in the database)
/// only with `keep_key`.
pub fn export_deidentified(ctx: &Context, id: &str, out: Option<&Path>, keep_key: bool) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let actor = local_operator();
    let purpose = "quality review: de-identified export";
    let encounter = store.encounter(id)?;
    let transcript = store.transcript(&actor, id, purpose)?;
    let draft = store.latest_draft(&actor, id, purpose)?;
    let mut deid = review_ui::deid::Deidentifier::new();
    let mut note = String::new();
    match &draft {
        None => note.push_str("(no draft)\n"),
        Some((version, draft)) => {
            let state = if encounter.state == State::Signed || encounter.state == State::Amended {
                "signed"
            } else {
                "draft, not signed"
            };
            note.push_str(&format!(
                "## Note ({state}, version {version}, template {})\n\n",
                draft.template
            ));
            for section in &draft.sections {
                note.push_str(&format!("### {}\n\n", section.name));
                if section.sentences.is_empty() {
                    note.push_str("- Not discussed.\n");
                }
                for s in &section.sentences {
                    let cites: Vec<String> = s.citations.iter().map(|c| format!("S{c}")).collect();
                    note.push_str(&format!("- {} [{}]\n", deid.redact(&s.text), cites.join(", ")));
                }
                note.push('\n');
            }
        }
    }
    let mut lines = String::from("## Transcript\n\n");
    for seg in &transcript.segments {
        lines.push_str(&format!(
            "S{} {}: {}\n",
            seg.id,
            seg.speaker.as_str(),
            deid.redact(&seg.text)
        ));
    }
    let key = deid.key();
    let export_id = if keep_key {
        let mapping: Vec<serde_json::Value> = key
            .iter()
            .map(|(placeholder, kind, value)| json!({"placeholder": placeholder, "kind": kind, "value": value}))
            .collect();
        Some(store.keep_deid_key(&actor, id, &serde_json::to_string(&mapping)?)?)
    } else {
        None
    };
    store.audit(&actor, "export.deidentified", Some(id), purpose)?;
    let doc = format!(
        "# De-identified visit{}\n\nHIPAA Safe Harbor identifiers are replaced by placeholders; one placeholder is one \
         identifier throughout. Years of dates are kept; ages over 89 read \"90 or older\". {} identifiers replaced. \
         A person reviews this before it leaves the clinic: names said with no cue can slip through.\n\n{note}{lines}",
        export_id
            .as_deref()
            .map(|e| format!(" (export {e})"))
            .unwrap_or_default(),
        key.len(),
    );
    match out {
        Some(path) => {
            std::fs::write(path, &doc).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("written: {}", path.display());
        }
        None => print!("{doc}"),
    }
    match export_id {
        Some(e) => eprintln!("re-identification key kept in the encrypted database as export {e}"),
        None => eprintln!("no re-identification key kept"),
    }
    Ok(ExitCode::SUCCESS)
}
