//! The appliance's TLS certificate, issued at provisioning.
//!
//! `scribe init` issues a self-signed certificate for the box's names so the review app is
//! encrypted on the LAN from the first boot; IT replaces it with one from the clinic's own CA by
//! pointing `web.tls_cert`/`web.tls_key` at it. The private key file is readable by its owner only.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot issue a TLS certificate: {0}")]
    Issue(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Writes `cert.pem` and `key.pem` (mode 0600) into `dir` for `names` (DNS names or IP
/// addresses), unless both already exist. Returns whether it issued new ones.
pub fn issue_self_signed(dir: &Path, names: &[String]) -> Result<bool, TlsError> {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let issued = rcgen::generate_simple_self_signed(names.to_vec())?;
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(write_err(&key_path))?;
    // An existing file keeps its mode under `mode()`: set it explicitly.
    key.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(write_err(&key_path))?;
    key.write_all(issued.signing_key.serialize_pem().as_bytes())
        .and_then(|()| key.sync_all())
        .map_err(write_err(&key_path))?;
    std::fs::write(&cert_path, issued.cert.pem()).map_err(write_err(&cert_path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_once_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        assert!(issue_self_signed(dir.path(), &names).unwrap());
        let cert = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        let mode = std::fs::metadata(dir.path().join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            !issue_self_signed(dir.path(), &names).unwrap(),
            "an existing certificate is kept"
        );
    }
}
