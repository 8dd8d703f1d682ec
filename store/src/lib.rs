//! The encrypted store: one SQLCipher database per appliance.
//!
//! Everything that holds PHI (audio, transcripts, drafts, signed notes) lives here and nowhere
//! else, encrypted with a 256-bit key kept in a separate key file. Every read or write of PHI goes
//! through a method that appends an audit event in the same transaction, so an access that is not
//! audited cannot happen through this API.

mod audit;
mod audit_head;
mod backup;
mod db;
mod encounter;
mod error;
mod keyfile;
mod permissions;
mod retention;
mod review;
mod signing;
mod users;

pub use audit::{AuditEvent, AuditFilter, AuditPage, ChainReport};
pub use audit_head::{AuditExport, HeadCheck, SignedHead};
pub use backup::{BackupReport, HealthReport};
pub use db::Store;
pub use encounter::{Encounter, EncounterId, JobRun, NewEncounter, Source, State};
pub use error::StoreError;
pub use keyfile::{is_sealed as key_is_sealed, provide_passphrase as provide_key_passphrase};
pub use permissions::Permission;
pub use retention::AudioRetention;
pub use review::{Access, BREAK_GLASS_PER_DAY, BreakGlassGrant, BreakGlassReason, InboxItem};
pub use signing::{Addendum, SignedNote, Verification, rfc3339_utc};
pub use users::{
    Actor, ENROLMENT_MS, INVALID_USER_NAME, LoginAttempt, LoginPolicy, MAX_USER_NAME, MIN_PASSWORD_CHARS, Role,
    SecurityOwner, UserInfo, check_user_name,
};

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random number generator is available");
    buf
}
