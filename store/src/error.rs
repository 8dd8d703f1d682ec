use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key file {0} does not exist; create the appliance with `scribe init` or point --home at it")]
    KeyFileMissing(PathBuf),
    #[error("key file {path} is not a valid Scribe key ({why})")]
    KeyFileInvalid { path: PathBuf, why: String },
    #[error(
        "the database key {0} is locked with an operator passphrase: give it in the file named by SCRIBE_KEY_PASSPHRASE_FILE, as the service's systemd credential `scribe-key-passphrase`, or at the prompt"
    )]
    KeyLocked(PathBuf),
    #[error("wrong passphrase for the database key {0}")]
    KeyPassphraseWrong(PathBuf),
    #[error("key file {0} already exists; refusing to overwrite the key of an existing store")]
    KeyFileExists(PathBuf),
    #[error("database {0} does not exist; run `scribe init` first")]
    DatabaseMissing(PathBuf),
    #[error("database {0} already exists")]
    DatabaseExists(PathBuf),
    #[error(
        "cannot decrypt database {db} with key file {key_file}: wrong key, or the file is corrupted or not a Scribe database"
    )]
    WrongKey { db: PathBuf, key_file: PathBuf },
    #[error("no encounter {0}")]
    NoEncounter(String),
    #[error("encounter {id} is {state}, expected {expected}")]
    WrongState {
        id: String,
        state: String,
        expected: String,
    },
    #[error("no user {0}")]
    NoUser(String),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("wrong password for user {0}")]
    WrongPassword(String),
    #[error("the account {0} is disabled; ask IT")]
    Disabled(String),
    #[error("user {name} is locked out after repeated failed logins; try again in {minutes} min or ask IT")]
    LockedOut { name: String, minutes: i64 },
    #[error("{0} is not a physician, so cannot be assigned to sign")]
    NotAPhysician(String),
    #[error("the draft of {id} changed since it was opened (version {current}, edited from {base}); reload it")]
    EditConflict { id: String, base: u32, current: u32 },
    #[error("{0}")]
    Invalid(String),
    #[error("{actor} ({role}) may not {action}")]
    Forbidden {
        actor: String,
        role: String,
        action: String,
    },
    #[error(
        "the draft of {id} has {open} open flag(s): edit or remove each flagged sentence, or acknowledge the flag, before signing"
    )]
    OpenFlags { id: String, open: usize },
    #[error("encounter {0} has no draft to sign")]
    NoDraft(String),
    #[error("encounter {0} is not signed")]
    NotSigned(String),
    #[error("the audio of {id} was deleted under the retention policy on {at}; its transcript and note remain")]
    AudioPurged { id: String, at: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the database is read-only (file permissions, an immutable file, or a read-only mount): nothing was written"
    )]
    ReadOnly,
    #[error("the disk holding the database is full: nothing was written; free space and try again")]
    DiskFull,
    #[error("the database stayed locked by another process: nothing was written; try again")]
    Busy,
    #[error("database error: {0}")]
    Sql(rusqlite::Error),
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// SQLite's errors that people can act on get their own message; the rest stay SQL errors.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sql(e),
        }
    }
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
