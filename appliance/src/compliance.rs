//! The compliance report: where PHI travels, who can see it, what the appliance talks to, what it
//! keeps and for how long, which models it runs, and the audit trail's signed head — generated from
//! the running configuration and the code's own tables each time, so it cannot drift from them.
//!
//! `scribe compliance report` writes it as Markdown and HTML; IT admins see the same document on
//! the review app's admin page.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use firmware::Manifest;
use store::{Access, Actor, BREAK_GLASS_PER_DAY, NewEncounter, Permission, Role, Store};

use crate::commands::{Context, local_operator};
use crate::config::{Config, Home};

/// What the report needs from the database, read in one visit so the rest of the report (hashing
/// every model, a scratch database with argon2 accounts) runs without holding the store.
pub struct TrailFacts {
    owner: Option<store::SecurityOwner>,
    head: store::SignedHead,
    chain: store::ChainReport,
    model_changes: Vec<store::AuditEvent>,
    /// The security-relevant counts, in the report's order.
    counts: Vec<(&'static str, usize)>,
}

/// The security-relevant events the report counts: (label, action prefix, purpose prefix).
const COUNTED: [(&str, &str, &str); 8] = [
    ("Break-glass accesses", "", "break-glass"),
    ("Break-glass grants, read-only", "break_glass:read-only", ""),
    (
        "Break-glass grants with the password (read and write)",
        "break_glass:with-password",
        "",
    ),
    ("Account lockouts", "user.lockout", ""),
    ("Logins as unknown users", "login.unknown_user", ""),
    ("Logins with invalid user names", "login.invalid_name", ""),
    ("Key seals, rotations, unseals", "key.", ""),
    ("Recordings deleted under retention", "audio.purge", ""),
];

/// Reads the trail's facts and signs the audit chain's head now (an audit event too), then
/// records that the report was made.
pub fn trail_facts(store: &mut Store, by: &Actor) -> Result<TrailFacts> {
    let owner = store.security_owner()?;
    let head = store.sign_audit_head(by)?;
    let chain = store.verify_audit_chain()?;
    let model_changes = store.audit_events_with_action("model.")?;
    let counts = COUNTED
        .iter()
        .map(|&(label, action, purpose)| Ok((label, store.count_audit_events(action, purpose)?)))
        .collect::<Result<_>>()?;
    store.audit(by, "compliance.report", None, "compliance")?;
    Ok(TrailFacts {
        owner,
        head,
        chain,
        model_changes,
        counts,
    })
}

/// The report as Markdown, from the live configuration and what [`trail_facts`] read.
pub fn markdown(config: &Config, home: &Home, manifest: &Manifest, facts: TrailFacts) -> Result<String> {
    let TrailFacts {
        owner,
        head,
        chain,
        model_changes: changes,
        counts,
    } = facts;

    let mut md = String::new();
    let host = std::fs::read_to_string("/etc/hostname").map_or_else(|_| "this box".into(), |h| h.trim().to_string());
    md.push_str(&format!(
        "# Compliance report: {clinic}\n\n\
         Appliance `{host}`, Scribe {version}, generated {at} from the running configuration \
         (`{config}`) and database. Regenerate it any time: `scribe compliance report`.\n\n",
        clinic = config.web.clinic,
        version = env!("CARGO_PKG_VERSION"),
        at = store::rfc3339_utc(head.signed_ms),
        config = home.config().display(),
    ));
    md.push_str("**Security owner** (accountable for this appliance's PHI risk): ");
    md.push_str(&match &owner {
        Some(o) => format!(
            "{} ({}), since {}.\n\n",
            o.name,
            o.contact,
            store::rfc3339_utc(o.since_ms)
        ),
        None => "**none named** — `scribe security-owner NAME --contact C`.\n\n".to_string(),
    });

    md.push_str(&data_flow(config, home));
    md.push_str(&access_matrix()?);
    md.push_str(&network(config));
    md.push_str(&retention(config));
    md.push_str(
        "## Models\n\nEvery model is installed at provisioning from the package registries or a local \
                 folder, checked against the SHA-256 in the manifest compiled into this release, and checked again \
                 by the worker immediately before it loads. Each draft records the model versions that produced \
                 it.\n\n",
    );
    let (asr, llm) = manifest.profile(&config.profile)?;
    for spec in [asr, llm] {
        md.push_str(&crate::model_cards::card(config, home, spec));
        md.push('\n');
    }
    md.push_str("### Model changes\n\n");
    if changes.is_empty() {
        md.push_str("No model installs recorded in the audit trail.\n\n");
    } else {
        md.push_str("| When | Change | By | How |\n|---|---|---|---|\n");
        for e in changes {
            md.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                store::rfc3339_utc(e.at_ms),
                e.action,
                e.actor,
                e.purpose
            ));
        }
        md.push('\n');
    }

    md.push_str("## Audit trail\n\n");
    md.push_str(&format!(
        "{} events, SHA-256 hash-chained; every read and write of PHI is one, in the same transaction as \
         the access. Chain check now: **{}**.\n\n",
        chain.events,
        match &chain.broken_at {
            None => "intact".to_string(),
            Some((seq, why)) => format!("BROKEN at event {seq}: {why}"),
        }
    ));
    md.push_str("| Security-relevant events so far | Count |\n|---|---|\n");
    for (label, n) in counts {
        md.push_str(&format!("| {label} | {n} |\n"));
    }
    md.push('\n');
    md.push_str(
        "The head below is signed with the appliance's Ed25519 key. Keep this copy: `scribe audit verify \
         --head FILE` later proves that no event up to it was removed or replaced.\n\n```json\n",
    );
    md.push_str(&serde_json::to_string_pretty(&head)?);
    md.push_str(
        "\n```\n\nIncident response: the runbook (`docs/runbook.md`, installed as \
                 `/usr/share/doc/scribe/runbook.md`).\n",
    );
    Ok(md)
}

/// The hops PHI takes; the table under it says what each holds.
const DIAGRAM: &str = r#" room microphone ─┐
 browser/tablet ──┼─ TLS ─► scribe daemon ─► SQLCipher database ({home}):
 uploaded file ───┘         │      ▲         audio, transcripts, drafts, signed notes, audit trail
                            │      │
         one visit's audio  │      │ its transcript
                            ▼      │
                  ASR worker (whisper)         no network
                            │ that transcript, as the prompt
                            ▼
                  drafting worker (llama.cpp)  no network
                            │ the validated draft, stored
                            ▼
      physician reviews and signs over TLS ─► export: download, folder, allow-listed EHR
"#;

fn data_flow(config: &Config, home: &Home) -> String {
    let key = if store::key_is_sealed(&home.key()) {
        "sealed with an operator passphrase (argon2id + ChaCha20-Poly1305)"
    } else {
        "a file readable by the service user only (0600)"
    };
    let workers = if std::env::var_os("SCRIBE_WORKER_SOCKETS").is_some() {
        "socket-activated systemd units with `PrivateNetwork=yes`, no socket families, and no view of the \
         database or key"
    } else {
        "child processes that move into an empty network namespace before their first job, with an empty \
         environment"
    };
    let tls = if config.web.tls {
        "TLS, certificate from the clinic CA (`tls/ca.pem`)"
    } else {
        "plain HTTP, loopback only"
    };
    let export = if config.export.folder.is_empty() {
        "none configured".to_string()
    } else {
        format!("`{}`", config.export.folder)
    };
    format!(
        "## Where PHI travels\n\n```text\n{diagram}```\n\n\
| Hop | What it holds | At rest / in transit | Network |\n|---|---|---|---|\n\
| Capture | One second of audio at a time in memory; each second committed before it is acknowledged | {tls} | the review app listens on `{listen}` only inside `network.allow` |\n\
| Store | Audio, transcripts, drafts, signed notes, audit trail | SQLCipher (AES-256) at `{db}`; key {key} | none (a file) |\n\
| ASR worker | One visit's audio during one job; keeps nothing but its model | memory only | none: {workers} |\n\
| Drafting worker | One visit's transcript (the only text in its prompt besides the template); its KV cache keeps that one visit's prompt between jobs, under the visit's id, and drops it when a job for any other visit arrives | memory only | none (as above) |\n\
| Review | What the signed-in user may open (see the access matrix) | {tls}; sessions in memory | `network.allow` only |\n\
| Export | A signed note, on a physician's request | to a folder: {export}; to an EHR: HTTPS POST | only EHR endpoints listed in the config and inside `network.allow`, checked at send time |\n\n\
The only process that opens network sockets is `scribe daemon` (the review app and EHR export). \
Logs carry encounter ids, counts and durations, never transcript or note text.\n\n",
        diagram = DIAGRAM.replace("{home}", &home.dir.display().to_string()),
        listen = config.web.listen,
        db = home.db().display(),
    )
}

/// For the probing actor's name: who recorded the visit, and who it is assigned to.
type Relation = fn(&str) -> (String, Option<String>);

/// The role table the code enforces, and the per-visit rule evaluated by the store itself on a
/// scratch database: nothing here is a copy.
fn access_matrix() -> Result<String> {
    const PEOPLE: [Role; 4] = [Role::Clinician, Role::Physician, Role::ItAdmin, Role::Auditor];
    let mut md = String::from(
        "## Who can see it\n\nWhat each role may do (the table every route of the review app and the store's \
         own checks consult):\n\n| Action | Clinician | Physician | IT admin | Auditor |\n|---|---|---|---|---|\n",
    );
    for p in Permission::ALL {
        let cells: Vec<&str> = PEOPLE.iter().map(|r| if p.allows(*r) { "✓" } else { "—" }).collect();
        let phi = if p.touches_phi() { " (PHI)" } else { "" };
        md.push_str(&format!("| {}{phi} | {} |\n", p.describe(), cells.join(" | ")));
    }

    // The per-visit rule, asked of the store for each relation and role.
    let scratch = tempfile::tempdir()?;
    let mut store = Store::create(&scratch.path().join("probe.db"), &scratch.path().join("probe.key"))?;
    let relations: [(&str, Relation); 4] = [
        ("recorded by them", |me| (me.to_string(), None)),
        ("assigned to them", |me| ("someone".to_string(), Some(me.to_string()))),
        ("in the clinic pool (assigned to no one)", |_| {
            ("someone".to_string(), None)
        }),
        ("assigned to another physician", |_| {
            ("someone".to_string(), Some("other".to_string()))
        }),
    ];
    md.push_str(
        "\nWhich visits a PHI action applies to (the store's own rule, evaluated now on a scratch database; \
         every per-visit read and write checks it inside the transaction that audits the access):\n\n\
         | Visit | Clinician | Physician | IT admin | Auditor |\n|---|---|---|---|---|\n",
    );
    let system = Actor::system("compliance-probe");
    let people = PEOPLE.iter().map(|r| (format!("probe-{}", r.as_str()), *r));
    for (name, role) in people.chain([("someone".into(), Role::Clinician), ("other".into(), Role::Physician)]) {
        store.add_user(&system, &name, role, "a probe account, never logged in")?;
    }
    for (what, relation) in relations {
        let mut cells = Vec::new();
        for role in PEOPLE {
            let me = format!("probe-{}", role.as_str());
            let (clinician, assigned_to) = relation(&me);
            let new = NewEncounter {
                template: "soap".into(),
                label: String::new(),
                assigned_to,
                clinician: Some(clinician),
            };
            // A relation the store will not create (an auditor recording a visit) cannot arise.
            let Ok(id) = store.create_transcript_encounter(&system, &new, &protocol::Transcript::default()) else {
                cells.push("n/a".to_string());
                continue;
            };
            let actor = Actor {
                name: me,
                role,
                source: None,
            };
            cells.push(match store.access(&actor, &id)? {
                Access::Granted => "opens".to_string(),
                Access::BreakGlass { .. } | Access::NeedsBreakGlass => format!(
                    "break-glass only (a reason from a list, read-only without the password, 1 h, at most \
                     {BREAK_GLASS_PER_DAY} a day, flagged in the audit)"
                ),
                Access::Denied => "—".to_string(),
            });
        }
        md.push_str(&format!("| {what} | {} |\n", cells.join(" | ")));
    }
    md.push('\n');
    Ok(md)
}

fn network(config: &Config) -> String {
    let mut md = String::from("## What it talks to\n\n| Endpoint | Why |\n|---|---|\n");
    md.push_str("| loopback | the appliance's own processes |\n");
    for cidr in &config.network.allow {
        md.push_str(&format!(
            "| `{cidr}` | `network.allow`: the clinic networks the review app serves |\n"
        ));
    }
    for url in &config.export.ehr_endpoints {
        md.push_str(&format!(
            "| `{url}` | EHR endpoint for signed notes (sent only if its address is inside `network.allow`) |\n"
        ));
    }
    for url in &config.export.ehr_endpoints_plain_http {
        md.push_str(&format!(
            "| `{url}` | EHR endpoint for signed notes, **plain http: unencrypted on the wire** (sent only if its \
             address is inside `network.allow`) |\n"
        ));
    }
    md.push_str(
        "\nNothing else, ever: no model hub, no telemetry, no update server (updates are signed bundles carried \
         to the box). `scribe firewall` and `scribe firewall --systemd` turn the list into nftables rules and the \
         service's `IPAddressAllow=`.\n\n",
    );
    md
}

fn retention(config: &Config) -> String {
    format!(
        "## What it keeps\n\n| Data | Kept |\n|---|---|\n\
         | Recordings of signed visits | {} after signing |\n\
         | Any recording | at most {} |\n\
         | Transcripts, drafts, signed notes, addenda | until IT deletes the appliance's data (signed notes are immutable) |\n\
         | Audit trail | always (the database refuses to update or delete events) |\n\
         | Sessions | in memory only; a restart logs everyone out |\n\n\
         Each deletion of a recording is an audit event naming the policy.\n\n",
        config.retention.audio_after_signing, config.retention.audio_max_age
    )
}

/// Markdown to a standalone HTML page.
pub fn html(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES);
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, parser);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Scribe compliance report</title>\
         <style>body{{font-family:sans-serif;max-width:70em;margin:2em auto;line-height:1.4}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\
         pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style></head><body>{body}</body></html>"
    )
}

/// `scribe compliance report`: writes `compliance-report.md` and `.html` into `out`.
pub fn report(ctx: &Context, out: &Path) -> Result<ExitCode> {
    let mut store = ctx.open_store()?;
    let facts = trail_facts(&mut store, &local_operator())?;
    let md = markdown(&ctx.config, &ctx.home, &ctx.manifest, facts)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (md_path, html_path) = (out.join("compliance-report.md"), out.join("compliance-report.html"));
    std::fs::write(&md_path, &md)?;
    std::fs::write(&html_path, html(&md))?;
    println!("{}\n{}", md_path.display(), html_path.display());
    Ok(ExitCode::SUCCESS)
}
