use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{StoreError, keyfile};

/// An open, decrypted store. One per process; SQLite's WAL lets the daemon and CLI commands share
/// the file.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    /// How many failed logins lock an account, and for how long.
    pub login_policy: crate::LoginPolicy,
}

/// The schema as the walking skeleton created it (version 1). Never edit a shipped step; add one.
const SCHEMA_V1: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);

CREATE TABLE encounters (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('recording', 'transcribing', 'drafting',
        'awaiting_review', 'signed', 'amended', 'failed', 'discarded')),
    source TEXT NOT NULL CHECK (source IN ('audio', 'transcript')),
    template TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    audio_ms INTEGER,
    failure_reason TEXT
);
CREATE INDEX encounters_by_state ON encounters (state, created_ms);

-- 16 kHz mono 16-bit PCM in chunks of at most one second.
CREATE TABLE audio_chunks (
    encounter_id TEXT NOT NULL REFERENCES encounters (id),
    seq INTEGER NOT NULL,
    pcm BLOB NOT NULL,
    PRIMARY KEY (encounter_id, seq)
);

CREATE TABLE segments (
    encounter_id TEXT NOT NULL REFERENCES encounters (id),
    id INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    confidence REAL NOT NULL,
    words TEXT NOT NULL,
    PRIMARY KEY (encounter_id, id)
);

CREATE TABLE drafts (
    encounter_id TEXT NOT NULL REFERENCES encounters (id),
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    model TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (encounter_id, version)
);

CREATE TABLE signed_notes (
    encounter_id TEXT PRIMARY KEY REFERENCES encounters (id),
    draft_version INTEGER NOT NULL,
    canonical_text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signer TEXT NOT NULL,
    signed_ms INTEGER NOT NULL
);
CREATE TRIGGER signed_notes_are_immutable BEFORE UPDATE ON signed_notes
BEGIN SELECT RAISE(ABORT, 'signed notes are immutable; changes are addenda'); END;
CREATE TRIGGER signed_notes_are_kept BEFORE DELETE ON signed_notes
BEGIN SELECT RAISE(ABORT, 'signed notes are immutable; changes are addenda'); END;

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('clinician', 'physician', 'it_admin', 'auditor')),
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Hash-chained: each event's hash covers its fields and the previous event's hash.
-- Ids and actions only, never transcript or note text.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    encounter_id TEXT,
    purpose TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- What each engine job cost (counts and durations only).
CREATE TABLE job_runs (
    encounter_id TEXT NOT NULL REFERENCES encounters (id),
    kind TEXT NOT NULL,
    finished_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    stats TEXT NOT NULL
);
"#;

/// Version 2: who recorded an encounter and who signs it, login lockout, addenda, break-glass.
const SCHEMA_V2: &str = r#"
-- Who recorded it, who is to sign it (NULL: any physician of the clinic), and the visit label
-- people see in the inbox (e.g. "Room 2, 10:30").
ALTER TABLE encounters ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE encounters ADD COLUMN assigned_to TEXT;
ALTER TABLE encounters ADD COLUMN label TEXT NOT NULL DEFAULT '';

ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until_ms INTEGER NOT NULL DEFAULT 0;

-- Addenda to a signed note: each signed like the note, and just as immutable.
CREATE TABLE addenda (
    encounter_id TEXT NOT NULL REFERENCES signed_notes (encounter_id),
    seq INTEGER NOT NULL,
    canonical_text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signer TEXT NOT NULL,
    signed_ms INTEGER NOT NULL,
    PRIMARY KEY (encounter_id, seq)
);
CREATE TRIGGER addenda_are_immutable BEFORE UPDATE ON addenda
BEGIN SELECT RAISE(ABORT, 'signed addenda are immutable'); END;
CREATE TRIGGER addenda_are_kept BEFORE DELETE ON addenda
BEGIN SELECT RAISE(ABORT, 'signed addenda are immutable'); END;

-- Emergency access by a physician to an encounter that is not theirs: reason required, time-boxed.
CREATE TABLE break_glass (
    encounter_id TEXT NOT NULL REFERENCES encounters (id),
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    granted_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
"#;

/// Version 3: each live-recorded chunk's peak level, so the console can show a meter without
/// reading audio.
const SCHEMA_V3: &str = r#"
ALTER TABLE audio_chunks ADD COLUMN peak_dbfs REAL;
"#;

/// Version 4: for a recording with a microphone per speaker, which channel was louder per 100 ms
/// (the audio itself is stored mixed to mono), so speaker roles come from the channels.
const SCHEMA_V4: &str = r#"
ALTER TABLE encounters ADD COLUMN channel_track BLOB;
"#;

/// Version 5: when a visit's audio was deleted under the retention policy (the transcript and
/// note stay).
const SCHEMA_V5: &str = r#"
ALTER TABLE encounters ADD COLUMN audio_purged_ms INTEGER;
"#;

/// Version 6: the audit chain's signed heads (see `audit_head.rs`), and audit events that the
/// database itself refuses to delete (it already refused to update them).
const SCHEMA_V6: &str = r#"
CREATE TABLE audit_heads (
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    signed_ms INTEGER NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER audit_events_kept BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are kept'); END;
"#;

/// Version 7: where an audited access came from (the client's address, or "local" for the box's
/// own command line); covered by the event's hash.
const SCHEMA_V7: &str = r#"
ALTER TABLE audit_events ADD COLUMN source TEXT;
"#;

/// Version 8: re-identification keys of de-identified exports, kept only here (encrypted, like
/// everything in this file) when the exporter asks for them.
const SCHEMA_V8: &str = r#"
CREATE TABLE deid_keys (
    export_id TEXT PRIMARY KEY,
    encounter_id TEXT NOT NULL REFERENCES encounters (id),
    created_ms INTEGER NOT NULL,
    mapping TEXT NOT NULL
);
"#;

/// Version 9: wrong passwords counted per account and per address they came from, so a lockout
/// holds against that address only (replacing the per-account count of version 2).
const SCHEMA_V9: &str = r#"
CREATE TABLE login_failures (
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    failures INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL,
    PRIMARY KEY (name, source)
);
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN locked_until_ms;
"#;

/// Version 10: how each audit event's hash covers its fields (`audit.rs`): events written from
/// now on are hashed with length-prefixed fields (2), those before keep their 0x1f-joined hash (1).
const SCHEMA_V10: &str = r#"
ALTER TABLE audit_events ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1;
"#;

/// Version 11: whether a break-glass grant may change the visit (taken with the physician's
/// password) or only read it; grants from before are read-only.
const SCHEMA_V11: &str = r#"
ALTER TABLE break_glass ADD COLUMN writes INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 12: accounts that can be disabled, and accounts waiting for their owner to set a
/// password with a one-time enrolment code (only its hash is kept).
const SCHEMA_V12: &str = r#"
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN enrolment_hash TEXT;
ALTER TABLE users ADD COLUMN enrolment_expires_ms INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 13: the drafts of a signed note are as immutable as the note: no version of them
/// changes or goes, and no new one is added. Audit pages filtered by actor or visit use an index.
const SCHEMA_V13: &str = r#"
CREATE TRIGGER signed_drafts_are_immutable BEFORE UPDATE ON drafts
WHEN EXISTS (SELECT 1 FROM signed_notes WHERE encounter_id IN (OLD.encounter_id, NEW.encounter_id))
BEGIN SELECT RAISE(ABORT, 'the drafts of a signed note are immutable; changes are addenda'); END;
CREATE TRIGGER signed_drafts_are_kept BEFORE DELETE ON drafts
WHEN EXISTS (SELECT 1 FROM signed_notes WHERE encounter_id = OLD.encounter_id)
BEGIN SELECT RAISE(ABORT, 'the drafts of a signed note are immutable; changes are addenda'); END;
CREATE TRIGGER signed_notes_take_no_new_drafts BEFORE INSERT ON drafts
WHEN EXISTS (SELECT 1 FROM signed_notes WHERE encounter_id = NEW.encounter_id)
BEGIN SELECT RAISE(ABORT, 'the drafts of a signed note are immutable; changes are addenda'); END;
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_encounter ON audit_events (encounter_id, seq);
"#;

/// Schema steps in order; a database at version N has run the first N.
const MIGRATIONS: [&str; 13] = [
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8, SCHEMA_V9, SCHEMA_V10,
    SCHEMA_V11, SCHEMA_V12, SCHEMA_V13,
];

/// The folder holding `db_path` cannot be written (a read-only mount; root ignores mode bits).
fn folder_is_read_only(db_path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let folder = db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(c_path) = std::ffi::CString::new(folder.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path we own; it only reads it.
    let rc = unsafe { libc::access(c_path.as_ptr(), libc::W_OK) };
    rc != 0
        && matches!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EROFS | libc::EACCES)
        )
}

impl Store {
    /// Creates a new store: a fresh random key in `key_path` (mode 0600) and an empty encrypted
    /// database at `db_path`. Refuses to touch an existing key or database.
    pub fn create(db_path: &Path, key_path: &Path) -> Result<Store, StoreError> {
        if db_path.exists() {
            return Err(StoreError::DatabaseExists(db_path.to_path_buf()));
        }
        let key = keyfile::create(key_path, None)?;
        let conn = Connection::open(db_path)?;
        conn.pragma_update(None, "key", key.pragma_value())?;
        let mut store = Store::configure(conn, db_path)?;
        let tx = store.write_tx()?;
        tx.execute_batch(SCHEMA_V1)?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')", [])?;
        crate::signing::create_appliance_key(&tx)?;
        tx.commit()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store. A missing or wrong key is a clear error naming the key file.
    pub fn open(db_path: &Path, key_path: &Path) -> Result<Store, StoreError> {
        match Store::open_with(db_path, key_path) {
            Err(StoreError::WrongKey { .. }) if crate::backup::next_key_path(key_path).exists() => {
                // A key rotation re-encrypted the database but was stopped before the new key
                // file took the old one's place: finish it.
                let next = crate::backup::next_key_path(key_path);
                let store = Store::open_with(db_path, &next)?;
                std::fs::rename(&next, key_path).map_err(StoreError::io(key_path))?;
                tracing::warn!("finished an interrupted key rotation");
                Ok(store)
            }
            other => other,
        }
    }

    fn open_with(db_path: &Path, key_path: &Path) -> Result<Store, StoreError> {
        match Store::open_unmapped(db_path, key_path) {
            // SQLite says only "unable to open database file" when the write-ahead log cannot be
            // created or written beside the database: on a read-only mount, say so.
            Err(StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::CannotOpen && folder_is_read_only(db_path) =>
            {
                Err(StoreError::ReadOnly)
            }
            other => other,
        }
    }

    fn open_unmapped(db_path: &Path, key_path: &Path) -> Result<Store, StoreError> {
        let key = keyfile::read(key_path)?;
        if !db_path.exists() {
            return Err(StoreError::DatabaseMissing(db_path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            db_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "key", key.pragma_value())?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // SQLCipher only notices a wrong key on the first read of a page.
        let wrong_key = || StoreError::WrongKey {
            db: db_path.to_path_buf(),
            key_file: key_path.to_path_buf(),
        };
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
                return Err(wrong_key());
            }
            Err(e) => return Err(e.into()),
        }
        let mut store = Store::configure(conn, db_path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Runs the schema steps this database has not run yet, each in its own transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: String = self.conn.query_row(
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        let done: usize = version
            .parse()
            .ok()
            .filter(|&v| (1..=MIGRATIONS.len()).contains(&v))
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "database schema version {version} is not one this scribe knows (1 to {}); update scribe",
                    MIGRATIONS.len()
                ))
            })?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = self.write_tx()?;
            tx.execute_batch(step)?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [(i + 1).to_string()],
            )?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database schema migrated");
        }
        Ok(())
    }

    fn configure(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL lets readers (the review UI, `scribe show`) run beside the pipeline's writes;
        // synchronous=FULL makes every acknowledged commit survive a power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted rows (purged audio) are overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            login_policy: crate::LoginPolicy::default(),
        })
    }

    /// Every transaction here writes (at least an audit event), so it takes the write lock up
    /// front: a deferred transaction that upgrades from read to write fails at once with
    /// SQLITE_BUSY when another process committed in between, without waiting.
    pub(crate) fn write_tx(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLCipher's version, e.g. "4.20.0 community".
    pub fn cipher_version(&self) -> Result<String, StoreError> {
        Ok(self.conn.query_row("PRAGMA cipher_version", [], |r| r.get(0))?)
    }

    /// SQLite's own integrity check; "ok" when the file is sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_database_is_a_clear_error_and_keeps_what_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("s.db"), &dir.path().join("key")).unwrap();
        let by = crate::Actor::system("test");
        store.audit(&by, "before", None, "test").unwrap();
        // As a read-only mount or an immutable file answers (root ignores file modes).
        store.conn.pragma_update(None, "query_only", true).unwrap();
        let err = store.audit(&by, "after", None, "test").unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly), "{err:?}");
        assert!(err.to_string().contains("read-only") && err.to_string().contains("nothing was written"));
        let actions: Vec<String> = store
            .audit_events(None)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions.last().map(String::as_str), Some("before"));
    }

    #[test]
    fn the_file_is_encrypted_and_a_wrong_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (db, key) = (dir.path().join("s.db"), dir.path().join("key"));
        let store = Store::create(&db, &key).unwrap();
        assert!(store.cipher_version().unwrap().starts_with('4'));
        drop(store);
        let head = std::fs::read(&db).unwrap();
        assert!(!head.starts_with(b"SQLite format 3"));

        let other = dir.path().join("other-key");
        keyfile::create(&other, None).unwrap();
        let err = Store::open(&db, &other).err().unwrap();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains("other-key"), "{err}");
        let err = Store::open(&db, &dir.path().join("missing")).err().unwrap();
        assert!(matches!(err, StoreError::KeyFileMissing(_)), "{err}");
        Store::open(&db, &key).unwrap();
    }
}
