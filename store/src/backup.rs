//! Keeping the database safe over time: online encrypted backups, restoring one, and rotating
//! the database key.
//!
//! A backup is a complete SQLCipher copy made in one read transaction, so it is consistent while
//! the daemon keeps recording and drafting; it is encrypted with the database key (keep the key
//! file, which is never in a backup, somewhere else). A restore checks a backup completely —
//! it opens with the key, SQLite's integrity check, the audit chain, every signature — before it
//! replaces anything, and the database it replaces is kept beside it, never deleted.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::keyfile;
use crate::{Actor, Store, StoreError, Verification, audit};

/// What a backup holds, for the operator and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub encounters: i64,
    pub signed_notes: i64,
    pub audit_events: i64,
}

/// The result of checking a backup (or any database file) completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub integrity: String,
    pub audit_events: usize,
    pub audit_broken_at: Option<(i64, String)>,
    pub signed_notes: usize,
    /// Encounters whose signed note or an addendum does not verify, with why.
    pub bad_signatures: Vec<(String, String)>,
}

impl HealthReport {
    pub fn is_sound(&self) -> bool {
        self.integrity == "ok" && self.audit_broken_at.is_none() && self.bad_signatures.is_empty()
    }
}

impl Store {
    /// Writes an encrypted copy of the whole database to `out` (which must not exist) while the
    /// store stays in use, and records it in the audit trail.
    pub fn backup(&mut self, by: &Actor, out: &Path) -> Result<BackupReport, StoreError> {
        if out.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists; a backup never overwrites a file",
                out.display()
            )));
        }
        let partial = PathBuf::from(format!("{}.partial", out.display()));
        let _ = std::fs::remove_file(&partial);
        // The store's connection may not create files; an empty file is a database to SQLite.
        // Owner-only, like the database itself.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(StoreError::io(&partial))?;
        let target = partial
            .to_str()
            .ok_or_else(|| StoreError::Invalid("the backup path is not UTF-8".into()))?;
        // Without KEY, SQLCipher encrypts an attached database with the main database's key.
        self.conn.execute("ATTACH DATABASE ?1 AS backup", [target])?;
        let exported = (|| {
            // One transaction: the copy is one consistent moment; in WAL mode the daemon's
            // writers carry on meanwhile.
            self.conn.execute_batch("BEGIN")?;
            let result = self.conn.query_row("SELECT sqlcipher_export('backup')", [], |_| Ok(()));
            self.conn.execute_batch("COMMIT")?;
            result
        })();
        self.conn.execute("DETACH DATABASE backup", [])?;
        if let Err(e) = exported {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(StoreError::io(&partial))?;
        std::fs::rename(&partial, out).map_err(StoreError::io(out))?;
        let (bytes, sha256) = hash_file(out).map_err(StoreError::io(out))?;
        let count = |table: &str| -> Result<i64, StoreError> {
            Ok(self
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        };
        let report = BackupReport {
            path: out.to_path_buf(),
            bytes,
            sha256,
            encounters: count("encounters")?,
            signed_notes: count("signed_notes")?,
            audit_events: count("audit_events")?,
        };
        let tx = self.write_tx()?;
        audit::append(&tx, by, "backup.create", None, "backup")?;
        tx.commit()?;
        Ok(report)
    }

    /// Checks the whole database: SQLite's integrity check, the audit chain, and the signature
    /// of every signed note and addendum (each read audited, purpose "verification").
    pub fn health(&mut self, by: &Actor) -> Result<HealthReport, StoreError> {
        let integrity = self.integrity_check()?;
        let chain = self.verify_audit_chain()?;
        let signed: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT encounter_id FROM signed_notes ORDER BY encounter_id")?;
            stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let mut bad_signatures = Vec::new();
        for id in &signed {
            match self.verify(by, id)? {
                Verification::Valid { .. } => {}
                other => bad_signatures.push((id.clone(), format!("{other:?}"))),
            }
        }
        let tx = self.write_tx()?;
        audit::append(&tx, by, "database.check", None, "integrity")?;
        tx.commit()?;
        Ok(HealthReport {
            integrity,
            audit_events: chain.events,
            audit_broken_at: chain.broken_at,
            signed_notes: signed.len(),
            bad_signatures,
        })
    }

    /// Replaces the database key: a new random key is written beside the old one, the database
    /// is re-encrypted with it (SQLCipher's rekey), and only then does the new key file take the
    /// old one's place. Interrupted between the two, [`Store::open`] finds the new key.
    pub fn rekey(db_path: &Path, key_path: &Path, by: &Actor) -> Result<(), StoreError> {
        let mut store = Store::open(db_path, key_path)?;
        let next = next_key_path(key_path);
        // A leftover from an interrupted rotation that never reached the database.
        let _ = std::fs::remove_file(&next);
        // A key sealed with the operator's passphrase is replaced by one sealed with it too.
        let passphrase = keyfile::passphrase_for(key_path)?;
        let key = keyfile::create(&next, passphrase.as_deref())?;
        // SQLCipher re-encrypts the main file only; fold the WAL in first and leave WAL mode
        // for the rotation.
        store
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        store.conn.pragma_update(None, "journal_mode", "DELETE")?;
        store.conn.pragma_update(None, "rekey", key.pragma_value())?;
        store.conn.pragma_update(None, "journal_mode", "WAL")?;
        let tx = store.write_tx()?;
        audit::append(&tx, by, "key.rotate", None, "security")?;
        tx.commit()?;
        drop(store);
        std::fs::rename(&next, key_path).map_err(StoreError::io(key_path))?;
        if let Some(dir) = key_path.parent() {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Store {
    /// Seals the key file with an operator passphrase, or (None) stores it plain again. The key
    /// itself does not change: it is checked against the database first, and the change is
    /// audited.
    pub fn seal_key(db_path: &Path, key_path: &Path, passphrase: Option<&str>, by: &Actor) -> Result<(), StoreError> {
        let mut store = Store::open(db_path, key_path)?;
        keyfile::reseal(key_path, passphrase)?;
        let tx = store.write_tx()?;
        let action = if passphrase.is_some() { "key.seal" } else { "key.unseal" };
        audit::append(&tx, by, action, None, "security")?;
        tx.commit()?;
        Ok(())
    }
}

/// Size and SHA-256 of a file, read in pieces (a backup holds every recording).
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let (mut hasher, mut buf, mut total) = (Sha256::new(), vec![0u8; 1 << 20], 0u64);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((total, hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub health: HealthReport,
    /// Where the database that was replaced now is (with its WAL), if there was one.
    pub replaced: Option<PathBuf>,
}

impl Store {
    /// Puts the backup at `backup` in place of the database at `db_path`, after checking a
    /// copy of it completely; a backup that does not check out changes nothing. The caller
    /// makes sure no other process has the database open.
    pub fn restore(backup: &Path, db_path: &Path, key_path: &Path, by: &Actor) -> Result<RestoreReport, StoreError> {
        let staging = PathBuf::from(format!("{}.restoring", db_path.display()));
        remove_with_wal(&staging);
        std::fs::copy(backup, &staging).map_err(StoreError::io(backup))?;
        std::fs::set_permissions(&staging, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .and_then(|()| std::fs::File::open(&staging)?.sync_all())
            .map_err(StoreError::io(&staging))?;
        let checked = Store::open(&staging, key_path).and_then(|mut copy| copy.health(by));
        let health = match checked {
            Ok(health) if health.is_sound() => health,
            Ok(health) => {
                remove_with_wal(&staging);
                return Err(StoreError::Corrupt(format!(
                    "the backup does not check out (integrity: {}; audit chain broken at: {:?}; bad signatures: {:?}); nothing was changed",
                    health.integrity, health.audit_broken_at, health.bad_signatures
                )));
            }
            Err(e) => {
                remove_with_wal(&staging);
                return Err(e);
            }
        };
        let replaced = if db_path.exists() {
            let aside = PathBuf::from(format!("{}.replaced-{}", db_path.display(), crate::now_ms()));
            // The WAL moves with its database: it may hold commits not yet in the main file.
            for suffix in ["-wal", "-shm", ""] {
                let from = PathBuf::from(format!("{}{suffix}", db_path.display()));
                if from.exists() {
                    let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                    std::fs::rename(&from, &to).map_err(StoreError::io(&from))?;
                }
            }
            Some(aside)
        } else {
            None
        };
        std::fs::rename(&staging, db_path).map_err(StoreError::io(db_path))?;
        if let Some(dir) = db_path.parent() {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        let mut store = Store::open(db_path, key_path)?;
        let tx = store.write_tx()?;
        audit::append(&tx, by, "backup.restore", None, "recovery")?;
        tx.commit()?;
        Ok(RestoreReport { health, replaced })
    }
}

fn remove_with_wal(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Where a key rotation writes the new key before it is in force.
pub(crate) fn next_key_path(key_path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.next", key_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEncounter, Role};

    fn physician(store: &mut Store) -> Actor {
        store
            .add_user(&Actor::system("test"), "drbob", Role::Physician, "correct horse drbob")
            .unwrap();
        Actor {
            name: "drbob".into(),
            role: Role::Physician,
            source: None,
        }
    }

    /// A store with one signed note, in a temp dir.
    fn signed_store(dir: &Path) -> (PathBuf, PathBuf, String) {
        let (db, key) = (dir.join("scribe.db"), dir.join("scribe.key"));
        let mut store = Store::create(&db, &key).unwrap();
        let doctor = physician(&mut store);
        let transcript = protocol::Transcript {
            segments: vec![protocol::Segment {
                id: 1,
                start_ms: 0,
                end_ms: 1000,
                speaker: protocol::Speaker::Patient,
                text: "My knee hurts.".into(),
                confidence: 0.9,
                words: Vec::new(),
            }],
        };
        let id = store
            .create_transcript_encounter(&doctor, &NewEncounter::default(), &transcript)
            .unwrap();
        let draft = protocol::Draft {
            template: "soap".into(),
            patient_instructions: None,
            sections: vec![protocol::Section {
                name: "Subjective".into(),
                sentences: vec![protocol::Sentence::new("Knee pain.", vec![1])],
            }],
        };
        store
            .save_draft(&Actor::system("pipeline"), &id, &draft, "test")
            .unwrap();
        store.sign(&doctor, &id).unwrap();
        (db, key, id)
    }

    #[test]
    fn a_backup_is_encrypted_complete_and_checks_sound() {
        let dir = tempfile::tempdir().unwrap();
        let (db, key, id) = signed_store(dir.path());
        let mut store = Store::open(&db, &key).unwrap();
        let out = dir.path().join("backup.db");
        let report = store.backup(&Actor::system("test"), &out).unwrap();
        assert_eq!((report.encounters, report.signed_notes), (1, 1));
        assert!(!std::fs::read(&out).unwrap().starts_with(b"SQLite format 3"));
        assert!(store.backup(&Actor::system("test"), &out).is_err(), "never overwrites");

        let mut copy = Store::open(&out, &key).unwrap();
        let health = copy.health(&Actor::system("test")).unwrap();
        assert!(health.is_sound(), "{health:?}");
        assert_eq!(health.signed_notes, 1);
        assert!(matches!(
            copy.verify(&Actor::system("test"), &id).unwrap(),
            Verification::Valid { .. }
        ));
    }

    #[test]
    fn rekey_reencrypts_and_an_interrupted_rotation_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let (db, key, id) = signed_store(dir.path());
        let old_key = std::fs::read_to_string(&key).unwrap();
        Store::rekey(&db, &key, &Actor::system("test")).unwrap();
        assert_ne!(std::fs::read_to_string(&key).unwrap(), old_key);
        assert!(!next_key_path(&key).exists());
        let mut store = Store::open(&db, &key).unwrap();
        assert!(matches!(
            store.verify(&Actor::system("test"), &id).unwrap(),
            Verification::Valid { .. }
        ));
        drop(store);
        // The old key no longer opens it.
        let stale = dir.path().join("stale.key");
        std::fs::write(&stale, &old_key).unwrap();
        std::fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(matches!(Store::open(&db, &stale), Err(StoreError::WrongKey { .. })));

        // Stopped after the re-encryption, before the key file moved: simulated by putting the
        // current key where a rotation leaves the new one and an old key in its place.
        std::fs::rename(&key, next_key_path(&key)).unwrap();
        std::fs::copy(&stale, &key).unwrap();
        let store = Store::open(&db, &key).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        assert!(!next_key_path(&key).exists());
    }
}
