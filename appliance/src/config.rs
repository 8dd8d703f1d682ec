//! One home for all state, and one TOML file for settings.
//!
//! The home directory holds the database, its key file, the config and the logs. It is chosen by
//! `--home`, else `SCRIBE_HOME`, else `~/.local/share/scribe`. Every config key has a default;
//! environment variables override the file (`SCRIBE_PROFILE`, `SCRIBE_MODELS`, `SCRIBE_THREADS`,
//! `SCRIBE_PREFILL_WHILE_RECORDING`, …).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "scribe.toml";

#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn resolve(flag: Option<PathBuf>) -> Home {
        let dir = flag
            .or_else(|| std::env::var_os("SCRIBE_HOME").map(PathBuf::from))
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/var/lib"), PathBuf::from);
                home.join(".local/share/scribe")
            });
        Home { dir }
    }

    /// Refuses a home that belongs to another user: files we created there (logs, the database's
    /// WAL) would belong to us, and the service user could no longer open them.
    pub fn check_owner(&self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(&self.dir) else {
            return Ok(()); // not created yet: whoever creates it owns it
        };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            anyhow::bail!(
                "{} belongs to user id {}, not to you (user id {me}); run scribe as its owner, e.g. `sudo -u scribe scribe …`",
                self.dir.display(),
                meta.uid()
            );
        }
        Ok(())
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("scribe.db")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("scribe.key")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }
    /// Pidfiles of running recorders.
    pub fn recordings_dir(&self) -> PathBuf {
        self.dir.join("recordings")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    /// Held (flock) by whichever process runs the pipeline: the daemon, or `ingest` when no
    /// daemon is running.
    pub fn pipeline_lock(&self) -> PathBuf {
        self.dir.join("pipeline.lock")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which model pair from the manifest: "default" or "test".
    pub profile: String,
    /// The model store; empty means `<home>/models`.
    pub models_dir: String,
    pub asr: AsrConfig,
    pub drafting: DraftingConfig,
    pub web: WebConfig,
    pub export: ExportConfig,
    pub capture: CaptureConfig,
    pub retention: RetentionConfig,
    pub network: NetworkConfig,
}

/// The egress policy: what the appliance may talk to besides itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Networks (CIDRs) the review app may listen on and notes may be sent to; loopback always.
    pub allow: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            allow: firmware::PRIVATE_NETWORKS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl NetworkConfig {
    pub fn allow_list(&self) -> Result<firmware::AllowList> {
        firmware::AllowList::parse(&self.allow).context("network.allow in the config")
    }
}

/// How long recordings are kept. Transcripts, notes and signatures are not affected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete a visit's audio this long after its note is signed ("0s": at once; "never").
    pub audio_after_signing: Period,
    /// Delete any finished visit's audio this long after it was recorded, signed or not.
    pub audio_max_age: Period,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            audio_after_signing: Period(Some(Duration::from_secs(30 * 24 * 3600))),
            audio_max_age: Period(None),
        }
    }
}

impl RetentionConfig {
    pub fn audio(&self) -> store::AudioRetention {
        let ms = |p: &Period| p.0.map(|d| d.as_millis() as i64);
        store::AudioRetention {
            after_signing_ms: ms(&self.audio_after_signing),
            max_age_ms: ms(&self.audio_max_age),
        }
    }
}

/// A duration ("30d", "12h", "0s") or "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Option<Duration>);

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(d) => write!(f, "{}", humantime::format_duration(d)),
            None => f.write_str("never"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim() == "never" {
            return Ok(Period(None));
        }
        humantime::parse_duration(text.trim())
            .map(|d| Period(Some(d)))
            .map_err(|e| {
                serde::de::Error::custom(format!("{text:?} is neither a duration (\"30d\") nor \"never\": {e}"))
            })
    }
}

/// Recording from the room microphone, and live recordings in general.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// The room microphone, by the name `scribe devices` shows; empty: the system default.
    pub device: String,
    /// A live recording whose source has sent nothing for this long is finished as it stands.
    #[serde(with = "humantime_serde")]
    pub finalize_after: Duration,
    /// Uploaded recordings (CLI or web) larger than this are refused before they are read.
    pub max_upload_mb: u64,
    /// Uploaded recordings longer than this are refused before they are stored.
    pub max_upload_minutes: u64,
    /// Uploads received and decoded at once; one more is turned away (429) until one ends. Each
    /// holds up to `max_upload_mb` in memory while it decodes.
    pub concurrent_uploads: usize,
    /// Who speaks on the left channel of a recording with a microphone per speaker, and on the
    /// right; on one channel, who is heard first and who is the other voice.
    pub speaker_roles: [protocol::Speaker; 2],
}

impl CaptureConfig {
    pub fn upload_limits(&self) -> audio::Limits {
        audio::Limits {
            max_bytes: self.max_upload_mb.saturating_mul(1024 * 1024),
            max_seconds: self.max_upload_minutes.saturating_mul(60),
        }
    }
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            device: String::new(),
            finalize_after: Duration::from_secs(30),
            max_upload_mb: 512,
            max_upload_minutes: 120,
            concurrent_uploads: 2,
            speaker_roles: [protocol::Speaker::Clinician, protocol::Speaker::Patient],
        }
    }
}

/// Where physicians may send signed notes besides downloading them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// A folder signed notes are written to (an EHR's import share); empty: none.
    pub folder: String,
    /// FHIR base URLs (https) of EHRs on the clinic network; the only places notes are POSTed to.
    pub ehr_endpoints: Vec<String>,
    /// EHR endpoints reached over plain http, on purpose: the note crosses the network
    /// unencrypted. `http://` is refused anywhere else.
    pub ehr_endpoints_plain_http: Vec<String>,
    /// A PEM bundle of the CA(s) that sign the EHRs' certificates (a clinic CA); empty: the public
    /// roots.
    pub ehr_ca_file: String,
}

impl ExportConfig {
    /// Every EHR endpoint, https first, each marked plain http only if it is listed as such.
    pub fn ehr_endpoints(&self) -> anyhow::Result<Vec<review_ui::export::EhrEndpoint>> {
        let mut endpoints = Vec::new();
        for url in &self.ehr_endpoints {
            if !url.starts_with("https://") {
                anyhow::bail!(
                    "export.ehr_endpoints: {url} is not https. Notes are sent encrypted; an EHR that only \
                     speaks plain http goes in export.ehr_endpoints_plain_http, on purpose"
                );
            }
            endpoints.push(review_ui::export::EhrEndpoint {
                url: url.clone(),
                plain_http: false,
            });
        }
        for url in &self.ehr_endpoints_plain_http {
            if !url.starts_with("http://") {
                anyhow::bail!("export.ehr_endpoints_plain_http: {url} is not an http:// URL");
            }
            endpoints.push(review_ui::export::EhrEndpoint {
                url: url.clone(),
                plain_http: true,
            });
        }
        Ok(endpoints)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where the review app listens; empty disables it in the daemon.
    pub listen: String,
    /// Serve over TLS. Plain HTTP is refused on anything but a loopback address.
    pub tls: bool,
    /// PEM certificate and key; empty means `<home>/tls/cert.pem` and `key.pem`, issued by the
    /// appliance's clinic CA (`<home>/tls/ca.pem`) at `scribe init` / `scribe provision`.
    pub tls_cert: String,
    pub tls_key: String,
    /// The clinic's name on pages and in exports.
    pub clinic: String,
    /// Log a session off after this long without a request ("15m").
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Log a session off this long after login ("12h").
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// This many wrong passwords in a row lock an account for `lockout`.
    pub lockout_failures: u32,
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "0.0.0.0:8443".into(),
            tls: true,
            tls_cert: String::new(),
            tls_key: String::new(),
            clinic: "Clinic".into(),
            idle_timeout: Duration::from_secs(15 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            lockout_failures: 5,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

impl WebConfig {
    pub fn tls_files(&self, home: &Home) -> (PathBuf, PathBuf) {
        let or = |s: &str, default: &str| {
            if s.is_empty() {
                home.tls_dir().join(default)
            } else {
                PathBuf::from(s)
            }
        };
        (or(&self.tls_cert, "cert.pem"), or(&self.tls_key, "key.pem"))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsrConfig {
    /// Threads for whisper; 0 means all cores.
    pub threads: u32,
    /// The clinic's own words (drug names, local places and clinicians): given to whisper as the
    /// text before each recording, so it spells them the clinic's way.
    pub vocabulary: Vec<String>,
}

impl AsrConfig {
    /// The vocabulary as whisper's initial prompt; `None` when there is none.
    pub fn initial_prompt(&self) -> Option<String> {
        let terms: Vec<&str> = self
            .vocabulary
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        (!terms.is_empty()).then(|| format!("Clinic vocabulary: {}.", terms.join(", ")))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DraftingConfig {
    /// Threads for the LLM; 0 means all cores.
    pub threads: u32,
    /// The LLM context window to allocate at most (tokens).
    pub context_tokens: u32,
    /// The note template used when `ingest` names none.
    pub template: String,
    /// A folder of clinic templates (`NAME.toml`); empty means `<home>/templates`.
    pub templates_dir: String,
    /// Evaluate the transcript into the model's cache while a visit is being recorded, so the
    /// note is ready sooner after "stop". Off saves the CPU it costs during the visit.
    pub prefill_while_recording: bool,
    /// Draft after-visit instructions for the patient beside every note (template
    /// `patient-instructions`), reviewed and signed with it.
    pub patient_instructions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            profile: "default".into(),
            models_dir: String::new(),
            asr: AsrConfig::default(),
            drafting: DraftingConfig::default(),
            web: WebConfig::default(),
            export: ExportConfig::default(),
            capture: CaptureConfig::default(),
            retention: RetentionConfig::default(),
            network: NetworkConfig::default(),
        }
    }
}

impl Default for DraftingConfig {
    fn default() -> Self {
        DraftingConfig {
            threads: 0,
            context_tokens: 8192,
            template: "soap".into(),
            templates_dir: String::new(),
            prefill_while_recording: true,
            patient_instructions: true,
        }
    }
}

impl Config {
    /// The settings in a `scribe.toml`'s text; keys left out keep their defaults.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads `<home>/scribe.toml` if present, then applies environment overrides.
    pub fn load(home: &Home) -> Result<Config> {
        let path = home.config();
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text).with_context(|| format!("config file {} is invalid", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if let Ok(p) = std::env::var("SCRIBE_PROFILE") {
            config.profile = p;
        }
        if let Ok(m) = std::env::var("SCRIBE_MODELS") {
            config.models_dir = m;
        }
        if let Ok(l) = std::env::var("SCRIBE_WEB_LISTEN") {
            config.web.listen = l;
        }
        if let Ok(t) = std::env::var("SCRIBE_FINALIZE_AFTER") {
            config.capture.finalize_after = humantime::parse_duration(&t)
                .with_context(|| format!("SCRIBE_FINALIZE_AFTER={t:?} is not a duration"))?;
        }
        if let Ok(t) = std::env::var("SCRIBE_WEB_IDLE_TIMEOUT") {
            config.web.idle_timeout = humantime::parse_duration(&t)
                .with_context(|| format!("SCRIBE_WEB_IDLE_TIMEOUT={t:?} is not a duration"))?;
        }
        if let Ok(p) = std::env::var("SCRIBE_PREFILL_WHILE_RECORDING") {
            config.drafting.prefill_while_recording = match p.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => anyhow::bail!("SCRIBE_PREFILL_WHILE_RECORDING={p:?} is not true or false"),
            };
        }
        if let Some(t) = std::env::var("SCRIBE_THREADS").ok().and_then(|t| t.parse().ok()) {
            config.asr.threads = t;
            config.drafting.threads = t;
        }
        Ok(config)
    }

    pub fn models_dir(&self, home: &Home) -> PathBuf {
        if self.models_dir.is_empty() {
            home.dir.join("models")
        } else {
            PathBuf::from(&self.models_dir)
        }
    }

    pub fn templates_dir(&self, home: &Home) -> PathBuf {
        if self.drafting.templates_dir.is_empty() {
            home.dir.join("templates")
        } else {
            PathBuf::from(&self.drafting.templates_dir)
        }
    }

    /// The file `scribe init` writes: every key, its default, and what it does.
    /// The commented config with a clinic's name and networks filled in.
    pub fn provisioned(profile: &str, clinic: &str, allow: &[String]) -> String {
        let text = Config::commented(profile);
        let clinic = toml::Value::String(clinic.to_string());
        let allow = toml::Value::Array(allow.iter().map(|c| toml::Value::String(c.clone())).collect());
        let with_clinic = text.replacen("clinic = \"Clinic\"", &format!("clinic = {clinic}"), 1);
        with_clinic.replacen(
            "allow = [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"fc00::/7\", \"fe80::/10\"]",
            &format!("allow = {allow}"),
            1,
        )
    }

    pub fn commented(profile: &str) -> String {
        format!(
            r#"# Scribe appliance configuration. Every key is optional; shown here with its default.
# Environment overrides: SCRIBE_PROFILE, SCRIBE_MODELS, SCRIBE_THREADS, SCRIBE_WEB_LISTEN,
# SCRIBE_WEB_IDLE_TIMEOUT, SCRIBE_FINALIZE_AFTER, SCRIBE_PREFILL_WHILE_RECORDING.

# Which model pair to run (from the model manifest): "default" (whisper base + Qwen2.5 1.5B)
# or "test" (whisper tiny.en + SmolLM2 135M, fast and weak).
profile = "{profile}"

# Where verified models live; empty means <home>/models.
models_dir = ""

[asr]
# Threads for speech recognition; 0 means all cores.
threads = 0
# The clinic's own words (drug names, local places, clinicians' names), given to whisper as the
# text before each recording so it spells them the clinic's way, e.g.
# vocabulary = ["apixaban", "empagliflozin", "Dr. Okafor"]
# Whisper reads at most about 220 tokens of it (a hundred or so terms).
vocabulary = []

[drafting]
# Threads for the language model; 0 means all cores.
threads = 0
# Largest context window (tokens) to allocate for one note.
context_tokens = 8192
# Template used when `scribe ingest` is not given --template.
template = "soap"
# Folder of clinic templates (NAME.toml); empty means <home>/templates.
templates_dir = ""
# Read the transcript into the model while the visit is recorded, so the note is ready seconds
# after "stop" instead of after reading the whole visit. Costs CPU during the visit.
prefill_while_recording = true
# Also draft plain-language after-visit instructions for the patient from the same transcript
# (template "patient-instructions"; a clinic file of that name replaces it). The physician reviews
# and signs them with the note.
patient_instructions = true

[web]
# The review app's address (the daemon serves it; so does `scribe serve`). Empty disables it.
listen = "0.0.0.0:8443"
# TLS is required on every address but loopback.
tls = true
# PEM certificate and private key; empty means <home>/tls/cert.pem and key.pem, issued at
# provisioning by the appliance's own clinic CA (<home>/tls/ca.pem: install it on the clinic's
# browsers and tablets; it can vouch only for this box). Or point these at IT's own certificate.
tls_cert = ""
tls_key = ""
# The clinic's name on pages and in exported notes.
clinic = "Clinic"
# Log a session off after this long without a request, and this long after login.
idle_timeout = "15m"
session_lifetime = "12h"
# This many wrong passwords in a row lock an account for `lockout`.
lockout_failures = 5
lockout = "15m"

[export]
# A folder physicians can send signed notes to (e.g. an EHR's import share); empty: none.
folder = ""
# FHIR base URLs (https) of EHRs on the clinic network that may receive signed notes. Nothing
# else can; an endpoint whose name resolves outside the clinic network is refused at send time,
# and the connection goes to the address that was checked.
ehr_endpoints = []
# EHRs that only speak plain http, listed here on purpose: the note crosses the network unencrypted.
ehr_endpoints_plain_http = []
# The CA that signs the EHRs' certificates, as a PEM file (e.g. the clinic's own CA); empty: the
# public roots.
ehr_ca_file = ""

[capture]
# The room microphone, by the name `scribe devices` lists; empty means the system default.
device = ""
# A live recording whose source has sent nothing for this long (the recorder was killed, the
# browser never reconnected) is finished with the audio it has and transcribed.
finalize_after = "30s"
# Uploaded recordings (WAV, FLAC, MP3, M4A/AAC, OGG Vorbis/Opus, WebM/Opus) over either limit are
# refused with a clear error and nothing is stored.
max_upload_mb = 512
max_upload_minutes = 120
# Uploads received and decoded at once (each holds up to max_upload_mb in memory while it
# decodes); one more is asked to try again shortly.
concurrent_uploads = 2
# Speaker roles. A stereo recording with a microphone per speaker is split by channel: the first
# role speaks on the left, the second on the right. On one channel, two voices are told apart by
# pitch (a similar pair stays "unknown") and the first role is the voice heard first.
speaker_roles = ["clinician", "patient"]

[network]
# The networks (CIDRs) the appliance talks to besides itself: the clinic's subnets and its EHR.
# The review app only listens on them (or on every interface, left to the host firewall) and
# notes are only sent to addresses in them. `scribe firewall` turns this into nftables rules.
allow = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"]

[retention]
# A visit's audio is deleted this long after its note is signed ("0s": at signing; "never").
# The transcript, the note and its signature stay; each deletion is an audit event.
audio_after_signing = "30days"
# Any finished visit's audio is deleted this long after it was recorded, signed or not.
audio_max_age = "never"
"#
        )
    }
}

pub fn threads(configured: u32) -> u32 {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
    }
}

pub fn ensure_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_default_config_parses_to_the_defaults() {
        let parsed: Config = toml::from_str(&Config::commented("default")).unwrap();
        let default = Config::default();
        assert_eq!(parsed.profile, default.profile);
        assert_eq!(parsed.drafting.context_tokens, default.drafting.context_tokens);
        assert_eq!(parsed.drafting.template, default.drafting.template);
        assert_eq!(parsed.web.idle_timeout, default.web.idle_timeout);
        assert_eq!(parsed.web.lockout, default.web.lockout);
        assert_eq!(parsed.web.listen, default.web.listen);
        assert_eq!(parsed.capture.upload_limits(), default.capture.upload_limits());
        assert_eq!(parsed.capture.speaker_roles, default.capture.speaker_roles);
        assert_eq!(parsed.asr.initial_prompt(), None);
        assert_eq!(parsed.retention.audio(), default.retention.audio());
        assert_eq!(parsed.network.allow, default.network.allow);
        let never: RetentionConfig = toml::from_str("audio_after_signing = \"never\"\naudio_max_age = \"0s\"").unwrap();
        assert_eq!(never.audio().after_signing_ms, None);
        assert_eq!(never.audio().max_age_ms, Some(0));
        assert!(toml::from_str::<RetentionConfig>("audio_after_signing = \"soon\"").is_err());
    }

    #[test]
    fn a_provisioned_config_names_the_clinic_and_its_networks() {
        let text = Config::provisioned("test", "St. Mary's \"Annex\"", &["10.20.0.0/16".into()]);
        let parsed: Config = toml::from_str(&text).unwrap();
        assert_eq!(parsed.web.clinic, "St. Mary's \"Annex\"");
        assert_eq!(parsed.network.allow, vec!["10.20.0.0/16".to_string()]);
        assert_eq!(parsed.profile, "test");
    }

    #[test]
    fn the_vocabulary_becomes_one_prompt_sentence() {
        let asr = AsrConfig {
            vocabulary: vec!["apixaban".into(), " ".into(), "Dr. Okafor ".into()],
            ..AsrConfig::default()
        };
        assert_eq!(
            asr.initial_prompt().as_deref(),
            Some("Clinic vocabulary: apixaban, Dr. Okafor.")
        );
    }
}
