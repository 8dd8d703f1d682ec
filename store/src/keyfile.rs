//! The database key: 32 random bytes, hex-encoded, in a file only its owner can read.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::StoreError;

pub(crate) struct DbKey(String);

impl DbKey {
    /// The `PRAGMA key` value for a raw 256-bit key (SQLCipher skips its KDF for raw keys).
    pub(crate) fn pragma_value(&self) -> String {
        format!("x'{}'", self.0)
    }
}

pub(crate) fn create(path: &Path) -> Result<DbKey, StoreError> {
    let key = hex::encode(crate::random_bytes::<32>());
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
    file.write_all(format!("{key}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io(path))?;
    Ok(DbKey(key))
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
    let key = text.trim();
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("expected 64 hex digits"));
    }
    Ok(DbKey(key.to_ascii_lowercase()))
}
