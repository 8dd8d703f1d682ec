//! Signed update bundles: verified before anything is touched, installed beside the running
//! release, switched to atomically, rolled back the same way.
//!
//! A bundle is one tar file. Its first entry is `bundle.toml` (the version and every file's
//! SHA-256 and size), its second `bundle.sig` (Ed25519 over `bundle.toml`, hex), then the files:
//! `bin/…` (the three binaries) and `models/…` (model files). Nothing in the bundle is trusted
//! until the signature verifies against a key in `<root>/keys`, and no file is used until its hash
//! and size match the signed list.
//!
//! On the box, under the releases root (`/opt/scribe` for the package, root-owned so the service
//! cannot rewrite its own binaries):
//!
//! ```text
//! keys/*.pub                     trusted update keys (hex Ed25519 public keys)
//! releases/<version>/bin/…       each installed release, with its bundle.toml and `previous`
//! current -> releases/<version>  what the service runs; replaced with rename(2), so atomically
//! ```
//!
//! Models go into the model store beside the ones already there, never over a different file of
//! the same name, so every installed release still finds its models after a rollback.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const BUNDLE_FORMAT: &str = "scribe-update-v1";
/// The binaries every bundle carries; a release runs nothing else.
pub const BINARIES: [&str; 3] = ["scribe", "scribe-asr-worker", "scribe-draft-worker"];
/// What the signature covers before `bundle.toml`'s bytes, so it cannot be replayed elsewhere.
const SIGNED_PREFIX: &[u8] = b"scribe update bundle v1\n";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0} is not an update bundle: {1}")]
    NotABundle(PathBuf, String),
    #[error("the bundle is not signed (no bundle.sig after bundle.toml)")]
    Unsigned,
    #[error(
        "no update key is trusted on this appliance: add the vendor's public key with `scribe update trust KEY.pub`"
    )]
    NoTrustedKeys,
    #[error(
        "the bundle's signature does not verify with any trusted key ({keys}): it was altered after signing, or signed by someone else"
    )]
    BadSignature { keys: String },
    #[error(
        "{path} in the bundle has SHA-256 {actual} and {actual_size} bytes; the signed list says {expected} and {expected_size}: the file was altered after signing"
    )]
    Tampered {
        path: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("the bundle is cut off: {path} has {actual_size} of its {expected_size} bytes; copy or download it again")]
    CutOff {
        path: String,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("the bundle holds {0}, which its signed list does not name")]
    Unlisted(String),
    #[error("the bundle lacks {0}, which its signed list names")]
    Missing(String),
    #[error("the bundle's list is invalid: {0}")]
    Invalid(String),
    #[error("version {0} is already running")]
    AlreadyCurrent(Version),
    #[error(
        "the bundle holds version {bundle}, older than the running {current}: refusing a downgrade (use `scribe update rollback`, or --allow-downgrade)"
    )]
    Downgrade { current: Version, bundle: Version },
    #[error(
        "the bundle's model {name} differs from the installed file of that name; new weights need a new file name so older releases keep theirs"
    )]
    ModelConflict { name: String },
    #[error("no release is installed under {0}")]
    NothingInstalled(PathBuf),
    #[error("release {0} has no earlier release to roll back to")]
    NoPrevious(Version),
    #[error("release {version} is damaged: {why}; not switching to it")]
    Damaged { version: Version, why: String },
    #[error("bad key file {0}: {1}")]
    BadKey(PathBuf, String),
    #[error("{0} already exists; not overwriting a key")]
    KeyExists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A release version: MAJOR.MINOR.PATCH, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Version, String> {
        let parts: Vec<u64> = s
            .split('.')
            .map(|p| {
                p.parse::<u64>()
                    .map_err(|_| format!("version {s:?} is not MAJOR.MINOR.PATCH"))
            })
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [a, b, c] => Ok(Version(a, b, c)),
            _ => Err(format!("version {s:?} is not MAJOR.MINOR.PATCH")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The signed list: `bundle.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format: String,
    pub version: String,
    pub files: Vec<BundleFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    /// `bin/NAME` or `models/NAME`.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

impl BundleManifest {
    /// Checks the list's shape: format, version, paths, the three binaries, no duplicates.
    fn validate(&self) -> Result<Version, UpdateError> {
        if self.format != BUNDLE_FORMAT {
            return Err(UpdateError::Invalid(format!(
                "format {:?}, expected {BUNDLE_FORMAT:?}",
                self.format
            )));
        }
        let version: Version = self.version.parse().map_err(UpdateError::Invalid)?;
        let mut seen = std::collections::BTreeSet::new();
        for file in &self.files {
            if !seen.insert(file.path.as_str()) {
                return Err(UpdateError::Invalid(format!("{} is listed twice", file.path)));
            }
            let (dir, name) = split_path(&file.path)
                .ok_or_else(|| UpdateError::Invalid(format!("{:?} is not bin/NAME or models/NAME", file.path)))?;
            if dir == "bin" && !BINARIES.contains(&name) {
                return Err(UpdateError::Invalid(format!(
                    "{} is not one of the appliance's binaries",
                    file.path
                )));
            }
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(UpdateError::Invalid(format!("{} has no SHA-256", file.path)));
            }
        }
        for bin in BINARIES {
            if !seen.contains(format!("bin/{bin}").as_str()) {
                return Err(UpdateError::Invalid(format!("bin/{bin} is missing from the list")));
            }
        }
        Ok(version)
    }

    fn models(&self) -> impl Iterator<Item = (&str, &BundleFile)> {
        self.files.iter().filter_map(|f| match split_path(&f.path) {
            Some(("models", name)) => Some((name, f)),
            _ => None,
        })
    }
}

/// `bin/NAME` or `models/NAME` with a plain file name, else None: no `..`, no hidden files, no
/// deeper paths, so nothing in a bundle can name a place outside its release.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (dir, name) = path.split_once('/')?;
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    (matches!(dir, "bin" | "models") && plain).then_some((dir, name))
}

/// What a successful check of a bundle found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub version: Version,
    /// The trusted key file whose key signed it.
    pub signed_by: String,
    pub manifest: BundleManifest,
    pub bytes: u64,
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub verified: Verified,
    pub previous: Option<Version>,
    pub models_added: Vec<String>,
    pub models_kept: Vec<String>,
}

/// One installed release, for `scribe update status`.
#[derive(Debug, Clone)]
pub struct Release {
    pub version: Version,
    pub previous: Option<Version>,
    pub current: bool,
}

/// The releases root: trusted keys, installed releases, and the `current` link.
pub struct Releases {
    root: PathBuf,
}

struct TrustedKey {
    name: String,
    public: Vec<u8>,
}

impl Releases {
    pub fn new(root: impl Into<PathBuf>) -> Releases {
        Releases { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    fn releases_dir(&self) -> PathBuf {
        self.root.join("releases")
    }

    fn release_dir(&self, version: Version) -> PathBuf {
        self.releases_dir().join(version.to_string())
    }

    /// Where the running release's binaries are, through the `current` link.
    pub fn current_bin(&self) -> PathBuf {
        self.root.join("current").join("bin")
    }

    /// Adds a public key (a file as `keygen` writes it) to the trusted keys.
    pub fn trust(&self, public_key_file: &Path) -> Result<PathBuf, UpdateError> {
        let public = read_public_key(public_key_file)?;
        let name = public_key_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "key.pub".into());
        let dir = self.keys_dir();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let dest = dir.join(&name);
        write_synced(&dest, format!("{}\n", hex::encode(public)).as_bytes(), 0o644)?;
        Ok(dest)
    }

    fn trusted_keys(&self) -> Result<Vec<TrustedKey>, UpdateError> {
        let mut keys = Vec::new();
        for path in entries_of(&self.keys_dir())? {
            if path.extension().is_some_and(|e| e == "pub") {
                keys.push(TrustedKey {
                    name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                    public: read_public_key(&path)?,
                });
            }
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// The running release, from the `current` link.
    pub fn current(&self) -> Result<Option<Version>, UpdateError> {
        let link = self.root.join("current");
        match std::fs::read_link(&link) {
            Ok(target) => target
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .map(Some)
                .ok_or_else(|| UpdateError::Invalid(format!("{} points at {}", link.display(), target.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&link)(e)),
        }
    }

    /// The installed releases, oldest first.
    pub fn installed(&self) -> Result<Vec<Release>, UpdateError> {
        let current = self.current()?;
        let mut releases = Vec::new();
        for path in entries_of(&self.releases_dir())? {
            if let Some(version) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Version>().ok())
            {
                releases.push(Release {
                    version,
                    previous: self.previous_of(version)?,
                    current: current == Some(version),
                });
            }
        }
        releases.sort_by_key(|r| r.version);
        Ok(releases)
    }

    fn previous_of(&self, version: Version) -> Result<Option<Version>, UpdateError> {
        let path = self.release_dir(version).join("previous");
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| UpdateError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Checks a bundle completely — signature, list, every file's hash and size — and writes
    /// nothing.
    pub fn verify(&self, bundle: &Path) -> Result<Verified, UpdateError> {
        let keys = self.trusted_keys()?;
        scan(bundle, &keys, None)
    }

    /// Verifies the bundle, then installs it beside the running release and switches to it. A
    /// bundle that fails any check leaves the running release and the model store as they were.
    pub fn apply(&self, bundle: &Path, models_dir: &Path, allow_downgrade: bool) -> Result<Applied, UpdateError> {
        let keys = self.trusted_keys()?;
        let verified = scan(bundle, &keys, None)?;
        let version = verified.version;
        let previous = self.current()?;
        if let Some(current) = previous {
            if version == current {
                return Err(UpdateError::AlreadyCurrent(version));
            }
            if version < current && !allow_downgrade {
                return Err(UpdateError::Downgrade {
                    current,
                    bundle: version,
                });
            }
        }
        // Decide about every model before writing anything.
        let mut models_added = Vec::new();
        let mut models_kept = Vec::new();
        for (name, file) in verified.manifest.models() {
            let installed = models_dir.join(name);
            // The model store belongs to the service, this runs as root: a symlink there is
            // replaced, never read through.
            if installed.symlink_metadata().is_ok_and(|m| !m.is_file()) {
                models_added.push(name.to_string());
                continue;
            }
            match hash_regular_file(&installed) {
                Ok((sha, _)) if sha == file.sha256 => models_kept.push(name.to_string()),
                Ok(_) => return Err(UpdateError::ModelConflict { name: name.to_string() }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => models_added.push(name.to_string()),
                Err(e) => return Err(io_err(&installed)(e)),
            }
        }

        // Unpack into a staging folder, checking every hash again: the file may have changed
        // since the first pass.
        let releases = self.releases_dir();
        std::fs::create_dir_all(&releases).map_err(io_err(&releases))?;
        let staging = releases.join(format!(".incoming-{version}"));
        remove_dir_if_present(&staging)?;
        let result = (|| {
            scan(bundle, &keys, Some(&staging))?;
            std::fs::create_dir_all(models_dir).map_err(io_err(models_dir))?;
            for name in &models_added {
                let staged = staging.join("models").join(name);
                let mut from = File::open(&staged).map_err(io_err(&staged))?;
                crate::files::replace_in_folder(models_dir, name, 0o644, |to| io::copy(&mut from, to).map(drop))
                    .map_err(io_err(&models_dir.join(name)))?;
            }
            remove_dir_if_present(&staging.join("models"))?;
            self.settle(&staging, &verified.manifest, previous)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        self.switch_to(version)?;
        Ok(Applied {
            verified,
            previous,
            models_added,
            models_kept,
        })
    }

    /// Switches back to the release that was running before the current one, after checking its
    /// binaries against the list it was installed with. Returns (from, to).
    pub fn rollback(&self) -> Result<(Version, Version), UpdateError> {
        let current = self
            .current()?
            .ok_or_else(|| UpdateError::NothingInstalled(self.root.clone()))?;
        let previous = self.previous_of(current)?.ok_or(UpdateError::NoPrevious(current))?;
        self.check_release(previous)?;
        self.switch_to(previous)?;
        Ok((current, previous))
    }

    /// Installs a release from binaries already on the box (the .deb's own files, which dpkg
    /// checked) and switches to it unless a newer release is running. Returns whether it switched.
    pub fn adopt(&self, version: Version, bin_dir: &Path) -> Result<bool, UpdateError> {
        let current = self.current()?;
        if current == Some(version) {
            return Ok(false);
        }
        let releases = self.releases_dir();
        let staging = releases.join(format!(".incoming-{version}"));
        remove_dir_if_present(&staging)?;
        std::fs::create_dir_all(staging.join("bin")).map_err(io_err(&staging))?;
        let mut files = Vec::new();
        for bin in BINARIES {
            let (src, dest) = (bin_dir.join(bin), staging.join("bin").join(bin));
            copy_synced(&src, &dest)?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).map_err(io_err(&dest))?;
            let (sha256, size) = hash_file(&dest).map_err(io_err(&dest))?;
            files.push(BundleFile {
                path: format!("bin/{bin}"),
                sha256,
                size,
            });
        }
        let manifest = BundleManifest {
            format: BUNDLE_FORMAT.into(),
            version: version.to_string(),
            files,
        };
        self.settle(&staging, &manifest, current)?;
        if current.is_some_and(|c| c > version) {
            return Ok(false);
        }
        self.switch_to(version)?;
        Ok(true)
    }

    /// Turns a staged release (its files in place) into `releases/<version>`: records its list and
    /// the release it was installed over, then renames it into place. A release of the same
    /// version installed earlier (and rolled back from) is replaced.
    fn settle(&self, staging: &Path, manifest: &BundleManifest, previous: Option<Version>) -> Result<(), UpdateError> {
        let text = toml::to_string(manifest).expect("a manifest serializes");
        write_synced(&staging.join("bundle.toml"), text.as_bytes(), 0o644)?;
        let previous_text = previous.map(|v| format!("{v}\n")).unwrap_or_default();
        write_synced(&staging.join("previous"), previous_text.as_bytes(), 0o644)?;
        sync_dir(staging)?;
        let dest = self.releases_dir().join(&manifest.version);
        remove_dir_if_present(&dest)?;
        std::fs::rename(staging, &dest).map_err(io_err(&dest))?;
        sync_dir(&self.releases_dir())
    }

    /// Re-hashes an installed release's binaries against the list it was installed with.
    fn check_release(&self, version: Version) -> Result<(), UpdateError> {
        let dir = self.release_dir(version);
        let damaged = |why: String| UpdateError::Damaged { version, why };
        let text =
            std::fs::read_to_string(dir.join("bundle.toml")).map_err(|e| damaged(format!("its bundle.toml: {e}")))?;
        let manifest: BundleManifest = toml::from_str(&text).map_err(|e| damaged(format!("its bundle.toml: {e}")))?;
        for file in manifest.files.iter().filter(|f| f.path.starts_with("bin/")) {
            match hash_file(&dir.join(&file.path)) {
                Ok((sha, _)) if sha == file.sha256 => {}
                Ok(_) => return Err(damaged(format!("{} does not match its SHA-256", file.path))),
                Err(e) => return Err(damaged(format!("{}: {e}", file.path))),
            }
        }
        Ok(())
    }

    /// Points `current` at a release: a new link renamed over the old one, so a reader sees the
    /// old release or the new one, never neither.
    fn switch_to(&self, version: Version) -> Result<(), UpdateError> {
        let next = self.root.join("current.next");
        match std::fs::remove_file(&next) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&next)(e)),
        }
        std::os::unix::fs::symlink(Path::new("releases").join(version.to_string()), &next).map_err(io_err(&next))?;
        let current = self.root.join("current");
        std::fs::rename(&next, &current).map_err(io_err(&current))?;
        sync_dir(&self.root)
    }
}

/// Reads a bundle from start to end. Checks the signature before reading anything else, then
/// every file against the signed list; with `unpack_to`, writes each file there as it is hashed.
fn scan(bundle: &Path, keys: &[TrustedKey], unpack_to: Option<&Path>) -> Result<Verified, UpdateError> {
    let not_bundle = |why: &str| UpdateError::NotABundle(bundle.to_path_buf(), why.to_string());
    let file = File::open(bundle).map_err(io_err(bundle))?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let mut entries = archive.entries().map_err(|_| not_bundle("not a tar file"))?;

    let mut next_named = |name: &str, limit: u64| -> Result<Option<Vec<u8>>, UpdateError> {
        let Some(entry) = entries.next() else {
            return Ok(None);
        };
        let mut entry = entry.map_err(|_| not_bundle("not a tar file"))?;
        if entry.path_bytes().as_ref() != name.as_bytes() {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io_err(bundle))?;
        Ok(Some(bytes))
    };
    let manifest_bytes =
        next_named("bundle.toml", 1 << 20)?.ok_or_else(|| not_bundle("it does not start with bundle.toml"))?;
    let signature_hex = next_named("bundle.sig", 1024)?.ok_or(UpdateError::Unsigned)?;

    if keys.is_empty() {
        return Err(UpdateError::NoTrustedKeys);
    }
    let signature = hex::decode(String::from_utf8_lossy(&signature_hex).trim()).unwrap_or_default();
    let mut signed = SIGNED_PREFIX.to_vec();
    signed.extend_from_slice(&manifest_bytes);
    let signed_by = keys
        .iter()
        .find(|k| {
            signature::UnparsedPublicKey::new(&signature::ED25519, &k.public)
                .verify(&signed, &signature)
                .is_ok()
        })
        .map(|k| k.name.clone())
        .ok_or_else(|| UpdateError::BadSignature {
            keys: keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", "),
        })?;

    let text =
        std::str::from_utf8(&manifest_bytes).map_err(|_| UpdateError::Invalid("bundle.toml is not UTF-8".into()))?;
    let manifest: BundleManifest = toml::from_str(text).map_err(|e| UpdateError::Invalid(e.to_string()))?;
    let version = manifest.validate()?;
    let mut pending: BTreeMap<&str, &BundleFile> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();

    let mut bytes = 0;
    for entry in entries {
        let mut entry = entry.map_err(|_| not_bundle("the tar file is damaged or cut off"))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let listed = pending
            .remove(path.as_str())
            .ok_or_else(|| UpdateError::Unlisted(path.clone()))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(UpdateError::Invalid(format!("{path} is not a regular file")));
        }
        let mut out = match unpack_to {
            Some(dir) => {
                let dest = dir.join(&path);
                let parent = dest.parent().expect("bundle paths have a folder");
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                let mode = if path.starts_with("bin/") { 0o755 } else { 0o644 };
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&dest)
                    .map_err(io_err(&dest))?;
                Some((dest, file))
            }
            None => None,
        };
        let declared = entry.header().size().unwrap_or(0);
        // Read one byte past the listed size, so a longer file is caught without reading it all.
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        let mut limited = entry.by_ref().take(listed.size + 1);
        loop {
            let n = limited
                .read(&mut buf)
                .map_err(|_| not_bundle("the tar file is damaged or cut off"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            if let Some((dest, file)) = out.as_mut() {
                file.write_all(&buf[..n]).map_err(io_err(dest))?;
            }
        }
        let sha = hex::encode(hasher.finalize());
        if size < listed.size && declared == listed.size {
            // The tar header promised the whole file but the bytes ran out.
            return Err(UpdateError::CutOff {
                path,
                expected_size: listed.size,
                actual_size: size,
            });
        }
        if sha != listed.sha256 || size != listed.size {
            return Err(UpdateError::Tampered {
                path,
                expected: listed.sha256.clone(),
                expected_size: listed.size,
                actual: sha,
                actual_size: size,
            });
        }
        if let Some((dest, file)) = out {
            file.sync_all().map_err(io_err(&dest))?;
        }
        bytes += size;
    }
    if let Some(missing) = pending.keys().next() {
        return Err(UpdateError::Missing(missing.to_string()));
    }
    Ok(Verified {
        version,
        signed_by,
        manifest,
        bytes,
    })
}

/// Makes an update signing key pair: `NAME.key` (PKCS#8, hex, 0600 — keep it off the appliances)
/// and `NAME.pub` (what appliances trust).
pub fn keygen(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), UpdateError> {
    let (key, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    for path in [&key, &public] {
        if path.exists() {
            return Err(UpdateError::KeyExists(path.clone()));
        }
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG works");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a fresh key parses");
    write_synced(&key, format!("{}\n", hex::encode(pkcs8.as_ref())).as_bytes(), 0o600)?;
    write_synced(
        &public,
        format!("{}\n", hex::encode(pair.public_key().as_ref())).as_bytes(),
        0o644,
    )?;
    Ok((key, public))
}

/// Builds and signs a bundle: `files` are (path in the bundle, file on disk).
pub fn pack(
    signing_key: &Path,
    version: Version,
    files: &[(String, PathBuf)],
    out: &Path,
) -> Result<BundleManifest, UpdateError> {
    let key_hex = std::fs::read_to_string(signing_key).map_err(io_err(signing_key))?;
    let pkcs8 = hex::decode(key_hex.trim()).map_err(|e| UpdateError::BadKey(signing_key.into(), e.to_string()))?;
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| UpdateError::BadKey(signing_key.into(), "not an Ed25519 PKCS#8 key".into()))?;
    let mut listed = Vec::new();
    for (path, source) in files {
        let (sha256, size) = hash_file(source).map_err(io_err(source))?;
        listed.push(BundleFile {
            path: path.clone(),
            sha256,
            size,
        });
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT.into(),
        version: version.to_string(),
        files: listed,
    };
    manifest.validate()?;
    let text = toml::to_string(&manifest).expect("a manifest serializes");
    let mut signed = SIGNED_PREFIX.to_vec();
    signed.extend_from_slice(text.as_bytes());
    let signature = format!("{}\n", hex::encode(pair.sign(&signed).as_ref()));

    let partial = out.with_extension("partial");
    let write = || -> io::Result<()> {
        let mut builder = tar::Builder::new(io::BufWriter::new(File::create(&partial)?));
        let mut append = |path: &str, size: u64, mode: u32, data: &mut dyn Read| {
            let mut header = tar::Header::new_gnu();
            header.set_size(size);
            header.set_mode(mode);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, data)
        };
        append("bundle.toml", text.len() as u64, 0o644, &mut text.as_bytes())?;
        append("bundle.sig", signature.len() as u64, 0o644, &mut signature.as_bytes())?;
        for ((path, source), file) in files.iter().zip(&manifest.files) {
            let mode = if path.starts_with("bin/") { 0o755 } else { 0o644 };
            append(path, file.size, mode, &mut File::open(source)?)?;
        }
        let file = builder.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    };
    write().map_err(io_err(&partial))?;
    std::fs::rename(&partial, out).map_err(io_err(out))?;
    Ok(manifest)
}

fn read_public_key(path: &Path) -> Result<Vec<u8>, UpdateError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    match hex::decode(text.trim()) {
        Ok(key) if key.len() == 32 => Ok(key),
        _ => Err(UpdateError::BadKey(path.into(), "not a hex Ed25519 public key".into())),
    }
}

fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// [`hash_file`] of a file that must be a regular file when opened: a symlink (swapped in after
/// a check) is not followed and a FIFO or device does not block, so root is never led elsewhere.
fn hash_regular_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags::O_NOFOLLOW | libc_flags::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut hasher = Sha256::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// The open(2) flags used here (Linux values; the appliance runs on Linux only).
mod libc_flags {
    pub const O_NONBLOCK: i32 = 0o4000;
    pub const O_NOFOLLOW: i32 = 0o400000;
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), UpdateError> {
    crate::files::write_synced(path, bytes, mode).map_err(io_err(path))
}

/// The paths in a folder; none if it does not exist yet.
fn entries_of(dir: &Path) -> Result<Vec<PathBuf>, UpdateError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.map(|e| e.path()).map_err(io_err(dir))).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn copy_synced(from: &Path, to: &Path) -> Result<(), UpdateError> {
    std::fs::copy(from, to).map_err(io_err(from))?;
    File::open(to).and_then(|f| f.sync_all()).map_err(io_err(to))
}

fn sync_dir(dir: &Path) -> Result<(), UpdateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

fn remove_dir_if_present(dir: &Path) -> Result<(), UpdateError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        key: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let (key, public) = keygen(&dir.path().join("vendor"), "vendor").unwrap();
            Releases::new(dir.path().join("opt")).trust(&public).unwrap();
            Fixture { dir, key }
        }

        fn releases(&self) -> Releases {
            Releases::new(self.dir.path().join("opt"))
        }

        fn models(&self) -> PathBuf {
            self.dir.path().join("models")
        }

        /// A bundle whose binaries are small scripts naming their version.
        fn bundle(&self, version: &str, model: Option<(&str, &[u8])>) -> PathBuf {
            let src = self.dir.path().join(format!("src-{version}"));
            std::fs::create_dir_all(&src).unwrap();
            let mut files = Vec::new();
            for bin in BINARIES {
                let path = src.join(bin);
                std::fs::write(&path, format!("#!/bin/sh\necho {bin} {version}\n")).unwrap();
                files.push((format!("bin/{bin}"), path));
            }
            if let Some((name, bytes)) = model {
                let path = src.join(name);
                std::fs::write(&path, bytes).unwrap();
                files.push((format!("models/{name}"), path));
            }
            let out = self.dir.path().join(format!("scribe-{version}.bundle"));
            pack(&self.key, version.parse().unwrap(), &files, &out).unwrap();
            out
        }

        fn running(&self) -> String {
            std::fs::read_to_string(self.releases().current_bin().join("scribe")).unwrap()
        }
    }

    #[test]
    fn applies_switches_and_rolls_back() {
        let f = Fixture::new();
        let releases = f.releases();
        let v1 = f.bundle("1.0.0", Some(("a.bin", b"weights a")));
        let applied = releases.apply(&v1, &f.models(), false).unwrap();
        assert_eq!(applied.previous, None);
        assert_eq!(applied.models_added, vec!["a.bin"]);
        assert!(f.running().contains("scribe 1.0.0"));

        let v2 = f.bundle("1.1.0", Some(("a.bin", b"weights a")));
        let applied = releases.apply(&v2, &f.models(), false).unwrap();
        assert_eq!(applied.previous, Some(Version(1, 0, 0)));
        assert_eq!(applied.models_kept, vec!["a.bin"]);
        assert!(f.running().contains("scribe 1.1.0"));

        assert_eq!(releases.rollback().unwrap(), (Version(1, 1, 0), Version(1, 0, 0)));
        assert!(f.running().contains("scribe 1.0.0"));
        assert!(matches!(releases.rollback(), Err(UpdateError::NoPrevious(_))));
        let status = releases.installed().unwrap();
        assert_eq!(status.len(), 2);
        assert!(status[0].current && !status[1].current);

        // The old version's signed bundle is refused as a downgrade once 1.1.0 runs again.
        releases.apply(&v2, &f.models(), false).unwrap();
        assert!(matches!(
            releases.apply(&v1, &f.models(), false),
            Err(UpdateError::Downgrade { .. })
        ));
        assert!(matches!(
            releases.apply(&v2, &f.models(), false),
            Err(UpdateError::AlreadyCurrent(_))
        ));
    }

    #[test]
    fn a_changed_model_name_is_a_conflict_and_changes_nothing() {
        let f = Fixture::new();
        let releases = f.releases();
        releases
            .apply(&f.bundle("1.0.0", Some(("a.bin", b"weights a"))), &f.models(), false)
            .unwrap();
        let err = releases
            .apply(
                &f.bundle("1.1.0", Some(("a.bin", b"other weights"))),
                &f.models(),
                false,
            )
            .unwrap_err();
        assert!(matches!(err, UpdateError::ModelConflict { .. }), "{err}");
        assert_eq!(std::fs::read(f.models().join("a.bin")).unwrap(), b"weights a");
        assert!(f.running().contains("1.0.0"));
    }

    /// The attack: whoever runs as the service owns the model store and plants symlinks where
    /// root (applying an update) would write or read a model.
    #[test]
    fn symlinks_planted_in_the_model_store_are_replaced_not_followed() {
        let f = Fixture::new();
        let victim = f.dir.path().join("root-owned");
        std::fs::write(&victim, b"not to be overwritten").unwrap();
        std::fs::create_dir_all(f.models()).unwrap();
        std::os::unix::fs::symlink(&victim, f.models().join(".a.bin.partial")).unwrap();
        std::os::unix::fs::symlink(&victim, f.models().join("b.bin")).unwrap();

        let releases = f.releases();
        releases
            .apply(&f.bundle("1.0.0", Some(("a.bin", b"weights a"))), &f.models(), false)
            .unwrap();
        let applied = releases
            .apply(&f.bundle("1.1.0", Some(("b.bin", b"weights b"))), &f.models(), false)
            .unwrap();
        assert_eq!(applied.models_added, vec!["b.bin"]);
        assert_eq!(std::fs::read(&victim).unwrap(), b"not to be overwritten");
        for (name, bytes) in [("a.bin", &b"weights a"[..]), ("b.bin", b"weights b")] {
            let path = f.models().join(name);
            assert!(path.symlink_metadata().unwrap().is_file(), "{name} is a regular file");
            assert_eq!(std::fs::read(path).unwrap(), bytes);
        }
    }

    #[test]
    fn paths_outside_a_release_are_refused() {
        for bad in [
            "../x",
            "bin/../../x",
            "bin/.hidden",
            "etc/passwd",
            "models/a/b",
            "models/",
        ] {
            assert!(split_path(bad).is_none(), "{bad}");
        }
        assert_eq!(
            split_path("models/whisper-base.ggml.bin"),
            Some(("models", "whisper-base.ggml.bin"))
        );
    }
}
