//! The database key: 32 random bytes, hex-encoded, in a file only its owner can read — or, when
//! IT chose an operator passphrase, sealed in that file under a key derived from the passphrase
//! (argon2id, then ChaCha20-Poly1305), so a copy of the disk alone does not open the database.
//!
//! A sealed key is opened with the passphrase from, in order: one the process was given
//! ([`provide_passphrase`], the CLI's prompt), the file named by `SCRIBE_KEY_PASSPHRASE_FILE`, or
//! the systemd credential `scribe-key-passphrase` (`LoadCredentialEncrypted=`, which can bind it to
//! the box's TPM).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use crate::StoreError;

const SEALED: &str = "scribe-key-sealed-v1";
/// argon2id cost: 64 MiB and 3 passes, about a quarter second here — paid once per process.
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;

pub(crate) struct DbKey(String);

impl DbKey {
    /// The `PRAGMA key` value for a raw 256-bit key (SQLCipher skips its KDF for raw keys).
    pub(crate) fn pragma_value(&self) -> String {
        format!("x'{}'", self.0)
    }
}

static PROVIDED: OnceLock<String> = OnceLock::new();
/// The last key opened from a sealed file, with that file's text: a process opens the store
/// many times, and the derivation is deliberately slow.
static OPENED: Mutex<Option<(PathBuf, String, String)>> = Mutex::new(None);

/// Gives this process the operator passphrase (e.g. typed at a prompt).
pub fn provide_passphrase(passphrase: String) {
    let _ = PROVIDED.set(passphrase);
}

/// Whether the key file is sealed with a passphrase.
pub fn is_sealed(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.starts_with(SEALED))
}

fn passphrase() -> Result<Option<String>, StoreError> {
    if let Some(p) = PROVIDED.get() {
        return Ok(Some(p.clone()));
    }
    let from_file = |path: PathBuf| -> Result<Option<String>, StoreError> {
        let text = std::fs::read_to_string(&path).map_err(StoreError::io(&path))?;
        Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
    };
    if let Some(file) = std::env::var_os("SCRIBE_KEY_PASSPHRASE_FILE").filter(|f| !f.is_empty()) {
        return from_file(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let credential = PathBuf::from(dir).join("scribe-key-passphrase");
        if credential.exists() {
            return from_file(credential);
        }
    }
    Ok(None)
}

fn kek(passphrase: &str, salt: &[u8]) -> Result<LessSafeKey, StoreError> {
    let params = argon2::Params::new(ARGON2_M_KIB, ARGON2_T, 1, Some(32))
        .map_err(|e| StoreError::Corrupt(format!("argon2 parameters: {e}")))?;
    let mut derived = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut derived)
        .map_err(|e| StoreError::Corrupt(format!("argon2: {e}")))?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, &derived).expect("a 32-byte key"),
    ))
}

/// The text of a key file holding `key` (hex), sealed with `passphrase` if given.
fn file_text(key: &str, passphrase: Option<&str>) -> Result<String, StoreError> {
    let Some(passphrase) = passphrase else {
        return Ok(format!("{key}\n"));
    };
    let salt = crate::random_bytes::<16>();
    let nonce = crate::random_bytes::<12>();
    let mut sealed = key.as_bytes().to_vec();
    kek(passphrase, &salt)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(SEALED.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| StoreError::Corrupt("sealing the key failed".into()))?;
    Ok(format!(
        "{SEALED}\nsalt {}\nnonce {}\nsealed {}\n",
        hex::encode(salt),
        hex::encode(nonce),
        hex::encode(sealed)
    ))
}

/// Writes a new key file that must not exist yet: a fresh random key, sealed if `passphrase`.
pub(crate) fn create(path: &Path, passphrase: Option<&str>) -> Result<DbKey, StoreError> {
    let key = hex::encode(crate::random_bytes::<32>());
    let text = file_text(&key, passphrase)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => StoreError::KeyFileExists(path.to_path_buf()),
            _ => StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io(path))?;
    Ok(DbKey(key))
}

/// The passphrase a sealed key file was opened with, so a rotated key is sealed the same way.
pub(crate) fn passphrase_for(path: &Path) -> Result<Option<String>, StoreError> {
    if is_sealed(path) { passphrase() } else { Ok(None) }
}

/// Rewrites the key file holding the same key, sealed with `passphrase` or (None) plain. The
/// new file replaces the old one by rename, so a crash leaves one or the other.
pub(crate) fn reseal(path: &Path, passphrase: Option<&str>) -> Result<(), StoreError> {
    let key = read(path)?;
    let text = file_text(&key.0, passphrase)?;
    let next = PathBuf::from(format!("{}.resealing", path.display()));
    let _ = std::fs::remove_file(&next);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&next)
        .map_err(StoreError::io(&next))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io(&next))?;
    std::fs::rename(&next, path).map_err(StoreError::io(path))?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<DbKey, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::KeyFileMissing(path.to_path_buf()));
        }
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let invalid = |why: &str| StoreError::KeyFileInvalid {
        path: path.to_path_buf(),
        why: why.into(),
    };
    let mode = std::fs::metadata(path)
        .map_err(StoreError::io(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(invalid(&format!(
            "permissions {:o} let others read it; chmod 600 it",
            mode & 0o777
        )));
    }
    let key = if text.starts_with(SEALED) {
        open_sealed(path, &text)?
    } else {
        text.trim().to_string()
    };
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("expected 64 hex digits"));
    }
    Ok(DbKey(key.to_ascii_lowercase()))
}

fn open_sealed(path: &Path, text: &str) -> Result<String, StoreError> {
    let mut opened = OPENED.lock().expect("opened key lock");
    if let Some((p, t, key)) = opened.as_ref()
        && p == path
        && t == text
    {
        return Ok(key.clone());
    }
    let invalid = |why: &str| StoreError::KeyFileInvalid {
        path: path.to_path_buf(),
        why: why.into(),
    };
    let field = |name: &str| -> Result<Vec<u8>, StoreError> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| hex::decode(v.trim()).ok())
            .ok_or_else(|| invalid(&format!("sealed key without a valid {name}")))
    };
    let (salt, nonce, mut sealed) = (field("salt")?, field("nonce")?, field("sealed")?);
    let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| invalid("bad nonce"))?;
    let passphrase = passphrase()?.ok_or_else(|| StoreError::KeyLocked(path.to_path_buf()))?;
    let key = kek(&passphrase, &salt)?
        .open_in_place(nonce, Aad::from(SEALED.as_bytes()), &mut sealed)
        .map_err(|_| StoreError::KeyPassphraseWrong(path.to_path_buf()))?;
    let key = String::from_utf8(key.to_vec()).map_err(|_| invalid("sealed key is not text"))?;
    *opened = Some((path.to_path_buf(), text.to_string(), key.clone()));
    Ok(key)
}
