//! Users, roles and who is acting.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Clinician,
    Physician,
    ItAdmin,
    Auditor,
    /// The appliance itself (the pipeline, an operator at the box's console).
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Physician => "physician",
            Role::ItAdmin => "it_admin",
            Role::Auditor => "auditor",
            Role::System => "system",
        }
    }

    /// The roles a person can hold.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "clinician" => Some(Role::Clinician),
            "physician" => Some(Role::Physician),
            "it_admin" => Some(Role::ItAdmin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// Who is doing something, for authorization and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    /// Where the request came from: the client's address, "local" for the box's own command
    /// line, None for the appliance's own components. Recorded with every audit event.
    pub source: Option<String>,
}

impl Actor {
    pub fn system(component: &str) -> Actor {
        Actor {
            name: format!("system:{component}"),
            role: Role::System,
            source: None,
        }
    }
}

/// The longest user name an account may have; a login form's name is refused past it, before it
/// reaches the database or the audit trail.
pub const MAX_USER_NAME: usize = 64;

/// What the audit trail records as the actor of a login attempt whose user name no account could
/// have (too long, or with characters outside [`check_user_name`]'s): never the name itself.
pub const INVALID_USER_NAME: &str = "(invalid user name)";

/// A user name is 1 to [`MAX_USER_NAME`] ASCII letters, digits, `.`, `_`, `-` or `@`. It is shown
/// on pages, kept in the audit trail and its CSV, and typed at a login prompt: no markup, no
/// control or separator characters, no bulk.
pub fn check_user_name(name: &str) -> Result<(), StoreError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.len() > MAX_USER_NAME || !name.chars().all(allowed) {
        return Err(StoreError::Invalid(format!(
            "a user name is 1 to {MAX_USER_NAME} ASCII letters, digits, '.', '_', '-' or '@'"
        )));
    }
    Ok(())
}

/// Whether a name typed at a login could belong to an account: at most [`MAX_USER_NAME`] bytes and
/// no control characters (which would let a name pose as several audit fields). Looser than
/// [`check_user_name`], so accounts made before that rule can still log in.
fn could_be_account(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_USER_NAME && !name.chars().any(char::is_control)
}

/// The hash a refused login is checked against when there is no account's own to check (an
/// unknown, invalid or locked name): every refusal costs what a wrong password costs, so response
/// times do not tell which names exist or are locked.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = SaltString::encode_b64(&[7u8; 16]).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(b"no account has this password", &salt)
        .expect("hashing a constant")
        .to_string()
});

fn verify_password(hash: &str, password: &str) -> Result<bool, StoreError> {
    let parsed = PasswordHash::new(hash).map_err(|e| StoreError::Corrupt(format!("password hash: {e}")))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Account lockout: `max_failures` wrong passwords in a row from one address lock the account for
/// `lockout_ms` — from that address only. Someone on the network who fails on purpose locks
/// themselves out, not the physician at their own workstation. Only when the account is locked
/// from [`LoginPolicy::locked_addresses`] addresses at once (a guessing campaign spread over many
/// machines) is it locked everywhere, until those locks expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lockout_ms: i64,
    pub locked_addresses: u32,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 5,
            lockout_ms: 15 * 60 * 1000,
            locked_addresses: 10,
        }
    }
}

/// A login between looking the account up and recording the outcome: the password check in
/// between ([`LoginAttempt::check_password`], tens of milliseconds of argon2) needs no store, so
/// a server can run it without holding the store while recordings wait to be written.
#[derive(Debug)]
pub struct LoginAttempt {
    name: String,
    source: Option<String>,
    valid: bool,
    /// The account's role and password hash, if there is one.
    account: Option<(String, String)>,
    locked_until: i64,
    checked_at: i64,
    disabled: bool,
}

impl LoginAttempt {
    /// Checks `password` against the account's hash; an unknown, invalid or locked name is checked
    /// against a dummy hash and fails, so every refusal costs the same time.
    pub fn check_password(&self, password: &str) -> Result<bool, StoreError> {
        match &self.account {
            // An account waiting for enrolment has no password ('').
            Some((_, hash)) if self.locked_until <= self.checked_at && !hash.is_empty() && !self.disabled => {
                verify_password(hash, password)
            }
            _ => {
                verify_password(&DUMMY_HASH, password)?;
                Ok(false)
            }
        }
    }
}

/// A user as the admin pages show it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    pub locked: bool,
    pub disabled: bool,
    /// Waiting for its owner to set a password with their enrolment code.
    pub enrolling: bool,
}

/// How long an enrolment code works.
pub const ENROLMENT_MS: i64 = 72 * 60 * 60 * 1000;
/// The shortest password a person may set.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A one-time enrolment code: 16 characters from an alphabet without look-alikes, ~80 bits.
fn enrolment_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    crate::random_bytes::<16>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn hash_secret(secret: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&crate::random_bytes::<16>()).expect("16 bytes is a valid salt");
    // argon2id with the crate's defaults (19 MiB, 2 passes): memory-hard against offline guessing.
    Ok(Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| StoreError::Corrupt(format!("hashing failed: {e}")))?
        .to_string())
}

impl Store {
    /// Everyone with an account; for IT admins.
    pub fn users(&mut self, by: &Actor) -> Result<Vec<UserInfo>, StoreError> {
        if by.role != Role::System {
            crate::Permission::ManageUsers.check(by)?;
        }
        let now = crate::now_ms();
        let mut stmt = self.conn.prepare(
            "SELECT name, role, created_ms,
                    (SELECT COALESCE(MAX(locked_until_ms), 0) FROM login_failures f WHERE f.name = u.name),
                    disabled, enrolment_hash IS NOT NULL
             FROM users u ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (name, role, created_ms, locked_until, disabled, enrolling) = row?;
            Ok(UserInfo {
                role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user {name} has role {role}")))?,
                name,
                created_ms,
                locked: locked_until > now,
                disabled,
                enrolling,
            })
        })
        .collect()
    }

    /// Clears a lockout from every address (IT admin), audited with the account's name.
    pub fn unlock_user(&mut self, by: &Actor, name: &str) -> Result<(), StoreError> {
        crate::Permission::ManageUsers.check(by)?;
        if !could_be_account(name) {
            return Err(StoreError::NoUser(INVALID_USER_NAME.into()));
        }
        let tx = self.write_tx()?;
        let exists: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)", [name], |r| {
            r.get(0)
        })?;
        if !exists {
            return Err(StoreError::NoUser(name.into()));
        }
        tx.execute("DELETE FROM login_failures WHERE name = ?1", [name])?;
        crate::audit::append(&tx, by, &format!("user.unlock:{name}"), None, "administration")?;
        tx.commit()?;
        Ok(())
    }

    /// Adds an account with the password given (the box's own console, where the person types
    /// it themselves).
    pub fn add_user(&mut self, by: &Actor, name: &str, role: Role, password: &str) -> Result<(), StoreError> {
        let hash = hash_secret(password)?;
        self.insert_account(by, name, role, &hash, None)
    }

    /// Adds an account whose owner sets their own password: the account gets no password, and the
    /// one-time enrolment code returned (shown once, to be handed to the person) lets its owner set
    /// one within [`ENROLMENT_MS`]. Whoever creates an account never knows its password.
    pub fn add_user_enrolling(&mut self, by: &Actor, name: &str, role: Role) -> Result<String, StoreError> {
        if by.role != Role::System {
            crate::Permission::ManageUsers.check(by)?;
        }
        let code = enrolment_code();
        let code_hash = hash_secret(&code)?;
        self.insert_account(by, name, role, "", Some(&code_hash))?;
        Ok(code)
    }

    /// One new account, audited with its name and role; `enrolment` is the hash of its one-time
    /// code when it has no password yet (`password_hash` empty).
    fn insert_account(
        &mut self,
        by: &Actor,
        name: &str,
        role: Role,
        password_hash: &str,
        enrolment: Option<&str>,
    ) -> Result<(), StoreError> {
        if role == Role::System {
            return Err(StoreError::Forbidden {
                actor: by.name.clone(),
                role: by.role.as_str().into(),
                action: "create a system user".into(),
            });
        }
        check_user_name(name)?;
        let now = crate::now_ms();
        let tx = self.write_tx()?;
        let exists: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)", [name], |r| {
            r.get(0)
        })?;
        if exists {
            return Err(StoreError::UserExists(name.into()));
        }
        tx.execute(
            "INSERT INTO users (name, role, password_hash, created_ms, enrolment_hash, enrolment_expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                role.as_str(),
                password_hash,
                now,
                enrolment,
                if enrolment.is_some() { now + ENROLMENT_MS } else { 0 }
            ],
        )?;
        crate::audit::append(
            &tx,
            by,
            &format!("user.add:{}:{name}", role.as_str()),
            None,
            "administration",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Takes an account's password away and returns a new enrolment code for its owner to set
    /// another (a forced change): the old password stops working at once.
    pub fn reset_password(&mut self, by: &Actor, name: &str) -> Result<String, StoreError> {
        if by.role != Role::System {
            crate::Permission::ManageUsers.check(by)?;
        }
        let code = enrolment_code();
        let code_hash = hash_secret(&code)?;
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE users SET password_hash = '', enrolment_hash = ?2, enrolment_expires_ms = ?3 WHERE name = ?1",
            params![name, code_hash, crate::now_ms() + ENROLMENT_MS],
        )?;
        if n == 0 {
            return Err(StoreError::NoUser(name.into()));
        }
        tx.execute("DELETE FROM login_failures WHERE name = ?1", [name])?;
        crate::audit::append(&tx, by, &format!("user.reset:{name}"), None, "administration")?;
        tx.commit()?;
        Ok(code)
    }

    /// Disables an account (nobody can log in as it; its sessions are the caller's to end) or
    /// enables it again.
    pub fn set_user_disabled(&mut self, by: &Actor, name: &str, disabled: bool) -> Result<(), StoreError> {
        if by.role != Role::System {
            crate::Permission::ManageUsers.check(by)?;
        }
        if disabled && by.name == name {
            return Err(StoreError::Invalid(
                "an IT admin cannot disable their own account".into(),
            ));
        }
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE users SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        if n == 0 {
            return Err(StoreError::NoUser(name.into()));
        }
        let action = if disabled { "user.disable" } else { "user.enable" };
        crate::audit::append(&tx, by, &format!("{action}:{name}"), None, "administration")?;
        tx.commit()?;
        Ok(())
    }

    /// The owner of an account sets its password with their enrolment code. A wrong code counts
    /// as a failed login from `source` (lockout and audit alike); the code works once.
    pub fn enrol(&mut self, name: &str, code: &str, password: &str, source: Option<&str>) -> Result<Actor, StoreError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(StoreError::Invalid(format!(
                "a password has at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let mut attempt = self.begin_login(name, source)?;
        let pending: Option<(Option<String>, i64)> = if attempt.account.is_some() {
            self.conn
                .query_row(
                    "SELECT enrolment_hash, enrolment_expires_ms FROM users WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
        } else {
            None
        };
        let now = crate::now_ms();
        // Checked as a login would check a password: against the code's hash, or a dummy one.
        let live_code = pending.and_then(|(hash, expires)| hash.filter(|_| expires > now));
        if let Some(account) = &mut attempt.account {
            account.1 = live_code.clone().unwrap_or_default();
        }
        let ok = attempt.check_password(code)? && live_code.is_some();
        if !ok {
            self.finish_login(attempt, false)?;
            return Err(StoreError::WrongPassword(name.into()));
        }
        let hash = hash_secret(password)?;
        {
            let tx = self.write_tx()?;
            tx.execute(
                "UPDATE users SET password_hash = ?2, enrolment_hash = NULL, enrolment_expires_ms = 0 WHERE name = ?1",
                params![name, hash],
            )?;
            let by = Actor {
                name: name.into(),
                role: Role::System,
                source: source.map(str::to_string),
            };
            crate::audit::append(&tx, &by, &format!("user.enrol:{name}"), None, "authentication")?;
            tx.commit()?;
        }
        self.finish_login(attempt, true)
    }

    /// Checks a user's password; the attempt is audited either way. After
    /// [`LoginPolicy::max_failures`] wrong passwords in a row from one address, the account is
    /// locked for a while from that address, and even the right password is refused from there.
    ///
    /// A name no account could have is refused before any lookup and audited as
    /// [`INVALID_USER_NAME`], so what the audit trail keeps of an anonymous attempt is bounded.
    pub fn authenticate(&mut self, name: &str, password: &str, source: Option<&str>) -> Result<Actor, StoreError> {
        let attempt = self.begin_login(name, source)?;
        let ok = attempt.check_password(password)?;
        self.finish_login(attempt, ok)
    }

    /// The first half of [`Store::authenticate`]: looks the account and its lockout up, writing
    /// nothing.
    pub fn begin_login(&self, name: &str, source: Option<&str>) -> Result<LoginAttempt, StoreError> {
        let now = crate::now_ms();
        let valid = could_be_account(name);
        let from = source.unwrap_or("");
        let mut attempt = LoginAttempt {
            name: if valid { name.into() } else { INVALID_USER_NAME.into() },
            source: source.map(str::to_string),
            valid,
            account: None,
            locked_until: 0,
            checked_at: now,
            disabled: false,
        };
        if !valid {
            return Ok(attempt);
        }
        let account: Option<(String, String, bool)> = self
            .conn
            .query_row(
                "SELECT role, password_hash, disabled FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        attempt.disabled = account.as_ref().is_some_and(|a| a.2);
        attempt.account = account.map(|(role, hash, _)| (role, hash));
        if attempt.account.is_some() {
            let (here, addresses, everywhere): (i64, u32, i64) = self.conn.query_row(
                "SELECT COALESCE(MAX(CASE WHEN source = ?2 THEN locked_until_ms END), 0),
                        COUNT(CASE WHEN locked_until_ms > ?3 THEN 1 END),
                        COALESCE(MAX(locked_until_ms), 0)
                 FROM login_failures WHERE name = ?1",
                params![name, from, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            attempt.locked_until = if addresses >= self.login_policy.locked_addresses {
                everywhere
            } else {
                here
            };
        }
        Ok(attempt)
    }

    /// The second half of [`Store::authenticate`]: records the outcome of the password check (the
    /// audit event, the failure count and any lockout) and says who logged in, or why not.
    pub fn finish_login(&mut self, attempt: LoginAttempt, password_ok: bool) -> Result<Actor, StoreError> {
        let now = crate::now_ms();
        let policy = self.login_policy;
        let LoginAttempt {
            name,
            source,
            valid,
            account,
            locked_until,
            disabled,
            ..
        } = attempt;
        let from = source.clone().unwrap_or_default();
        let tx = self.write_tx()?;
        let Some((role, _)) = account else {
            let by = Actor {
                name: name.clone(),
                role: Role::System,
                source,
            };
            let action = if valid {
                "login.unknown_user"
            } else {
                "login.invalid_name"
            };
            crate::audit::append(&tx, &by, action, None, "authentication")?;
            tx.commit()?;
            return Err(StoreError::NoUser(name));
        };
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user {name} has role {role}")))?;
        let actor = Actor {
            name: name.clone(),
            role,
            source,
        };
        if disabled {
            crate::audit::append(&tx, &actor, "login.disabled", None, "authentication")?;
            tx.commit()?;
            return Err(StoreError::Disabled(name));
        }
        if locked_until > now {
            crate::audit::append(&tx, &actor, "login.locked", None, "authentication")?;
            tx.commit()?;
            return Err(StoreError::LockedOut {
                name,
                minutes: (locked_until - now + 59_999) / 60_000,
            });
        }
        // Locks that have run out are forgotten.
        tx.execute(
            "DELETE FROM login_failures WHERE name = ?1 AND failures = 0 AND locked_until_ms <= ?2",
            params![name, now],
        )?;
        if password_ok {
            tx.execute(
                "DELETE FROM login_failures WHERE name = ?1 AND source = ?2",
                params![name, from],
            )?;
        } else {
            let failures: u32 = tx.query_row(
                "INSERT INTO login_failures (name, source, failures, locked_until_ms) VALUES (?1, ?2, 1, 0)
                 ON CONFLICT (name, source) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                params![name, from],
                |r| r.get(0),
            )?;
            if failures >= policy.max_failures {
                tx.execute(
                    "UPDATE login_failures SET failures = 0, locked_until_ms = ?3 WHERE name = ?1 AND source = ?2",
                    params![name, from, now + policy.lockout_ms],
                )?;
                crate::audit::append(&tx, &actor, "user.lockout", None, "authentication")?;
            }
        }
        crate::audit::append(
            &tx,
            &actor,
            if password_ok { "login.ok" } else { "login.failed" },
            None,
            "authentication",
        )?;
        tx.commit()?;
        if password_ok {
            Ok(actor)
        } else {
            Err(StoreError::WrongPassword(name))
        }
    }
}

/// The person accountable for this appliance's PHI risk, named at provisioning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecurityOwner {
    pub name: String,
    /// How to reach them: an email address or a phone number.
    pub contact: String,
    pub since_ms: i64,
}

impl Store {
    pub fn security_owner(&self) -> Result<Option<SecurityOwner>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'security_owner'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("security owner: {e}"))))
            .transpose()
    }

    /// Names the security owner (IT admins, or the box's own command line); audited with the old
    /// and new names. Returns whether anything changed.
    pub fn set_security_owner(&mut self, by: &Actor, name: &str, contact: &str) -> Result<bool, StoreError> {
        if by.role != Role::System {
            crate::Permission::Administer.check(by)?;
        }
        let (name, contact) = (name.trim(), contact.trim());
        if name.is_empty() || contact.is_empty() {
            return Err(StoreError::Invalid(
                "the security owner needs a name and a contact".into(),
            ));
        }
        let previous = self.security_owner()?;
        if previous
            .as_ref()
            .is_some_and(|p| p.name == name && p.contact == contact)
        {
            return Ok(false);
        }
        let owner = SecurityOwner {
            name: name.into(),
            contact: contact.into(),
            since_ms: crate::now_ms(),
        };
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('security_owner', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [serde_json::to_string(&owner).expect("serializes")],
        )?;
        let action = match previous {
            Some(p) => format!("security_owner.change:{} -> {}", p.name, owner.name),
            None => format!("security_owner.set:{}", owner.name),
        };
        crate::audit::append(&tx, by, &action, None, "administration")?;
        tx.commit()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("s.db"), &dir.path().join("key")).unwrap();
        (dir, store)
    }

    fn db_bytes(dir: &tempfile::TempDir) -> u64 {
        ["s.db", "s.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len()))
            .sum()
    }

    /// The attack: anonymous logins with megabyte user names, each once kept whole in the
    /// audit trail for ever (200 of them grew a database from 139 KB to 217 MB).
    #[test]
    fn megabyte_user_names_leave_a_bounded_trace() {
        let (dir, mut store) = store();
        let before = db_bytes(&dir);
        let huge = "a".repeat(1 << 20);
        for _ in 0..20 {
            let err = store.authenticate(&huge, "guess", Some("10.0.0.66")).unwrap_err();
            assert!(
                matches!(err, StoreError::NoUser(ref n) if n == INVALID_USER_NAME),
                "{err:?}"
            );
        }
        // Each commit writes a few pages to the WAL (the event, its chain row, two audit indexes):
        // a bound per attempt, far below the 20 MB the names would take.
        let grew = db_bytes(&dir) - before;
        assert!(
            grew < 400_000,
            "20 logins with 1 MB names grew the database by {grew} bytes"
        );
        let events = store.audit_events(None).unwrap();
        let attempts: Vec<_> = events.iter().filter(|e| e.action == "login.invalid_name").collect();
        assert_eq!(attempts.len(), 20, "each attempt is still audited");
        assert!(
            attempts
                .iter()
                .all(|e| e.actor == INVALID_USER_NAME && e.source.as_deref() == Some("10.0.0.66"))
        );
    }

    #[test]
    fn accounts_get_plain_bounded_names() {
        let (_dir, mut store) = store();
        let system = Actor::system("test");
        for bad in [
            "",
            "a b",
            "dr<script>",
            "nina\u{1f}login.ok",
            "é",
            &"x".repeat(MAX_USER_NAME + 1),
        ] {
            let err = store.add_user(&system, bad, Role::Physician, "pw").unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err:?}");
        }
        for good in ["nina", "dr.bob-2", "a_b@clinic", &"x".repeat(MAX_USER_NAME)] {
            store.add_user(&system, good, Role::Physician, "pw").unwrap();
        }
        let events = store.audit_events(None).unwrap();
        assert!(
            events.iter().any(|e| e.action == "user.add:physician:dr.bob-2"),
            "the event names the account"
        );
        // An account made before names were checked still logs in.
        store
            .conn
            .execute(
                "INSERT INTO users (name, role, password_hash, created_ms) VALUES ('Jane Doe', 'physician', ?1, 0)",
                [DUMMY_HASH.as_str()],
            )
            .unwrap();
        store
            .authenticate("Jane Doe", "no account has this password", None)
            .unwrap();
    }

    /// Five wrong passwords from one address lock the account there, not at the physician's own
    /// workstation; IT's unlock clears every address.
    #[test]
    fn a_lockout_holds_against_the_address_that_failed_only() {
        let (_dir, mut store) = store();
        let system = Actor::system("test");
        let it = Actor {
            name: "ivan".into(),
            role: Role::ItAdmin,
            source: Some("local".into()),
        };
        store.add_user(&system, "drbob", Role::Physician, "right").unwrap();
        let (attacker, workstation) = (Some("10.0.0.66"), Some("10.0.0.5"));
        for _ in 0..5 {
            let err = store.authenticate("drbob", "wrong", attacker).unwrap_err();
            assert!(matches!(err, StoreError::WrongPassword(_)), "{err:?}");
        }
        let err = store.authenticate("drbob", "right", attacker).unwrap_err();
        assert!(matches!(err, StoreError::LockedOut { .. }), "{err:?}");
        store.authenticate("drbob", "right", workstation).unwrap();
        assert!(
            store
                .users(&system)
                .unwrap()
                .iter()
                .any(|u| u.name == "drbob" && u.locked)
        );

        store.unlock_user(&it, "drbob").unwrap();
        store.authenticate("drbob", "right", attacker).unwrap();

        // A campaign spread over ten addresses locks the account everywhere, until those locks run
        // out; one address (or nine) cannot.
        for i in 0..10 {
            let address = format!("10.0.1.{i}");
            for _ in 0..5 {
                store.authenticate("drbob", "wrong", Some(&address)).unwrap_err();
            }
            let from_workstation = store.authenticate("drbob", "right", workstation);
            assert_eq!(from_workstation.is_ok(), i < 9, "after {} locked addresses", i + 1);
        }
        let events = store.audit_events(None).unwrap();
        assert!(
            events.iter().any(|e| e.action == "user.unlock:drbob"),
            "the event names the account"
        );
        assert!(matches!(store.unlock_user(&it, "nobody"), Err(StoreError::NoUser(_))));
    }

    /// An unknown name, a name no account could have and a locked account are refused after the
    /// same work as a wrong password: response times do not tell which names exist.
    #[test]
    fn every_refusal_takes_as_long_as_a_wrong_password() {
        let (_dir, mut store) = store();
        let system = Actor::system("test");
        store.add_user(&system, "drbob", Role::Physician, "right").unwrap();
        store.add_user(&system, "locked", Role::Physician, "right").unwrap();
        for _ in 0..5 {
            store.authenticate("locked", "wrong", Some("s")).unwrap_err();
        }
        // drbob's wrong passwords below must not lock drbob too.
        store.login_policy.max_failures = 1000;
        // Warm the dummy hash, then time each kind of refusal, taking turns so that whatever
        // else the machine is doing weighs on all of them alike.
        store.authenticate("nobody", "x", Some("s")).unwrap_err();
        let control = "nina\u{1f}login.ok";
        let kinds = [
            ("a wrong password", "drbob"),
            ("an unknown name", "nobody"),
            ("an invalid name", control),
            ("a locked account", "locked"),
        ];
        let mut times = vec![Vec::new(); kinds.len()];
        for _ in 0..7 {
            for (k, (_, name)) in kinds.iter().enumerate() {
                let t = Instant::now();
                store.authenticate(name, "wrong", Some("s")).unwrap_err();
                times[k].push(t.elapsed());
            }
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        for (k, (what, _)) in kinds.iter().enumerate().skip(1) {
            assert!(
                medians[k] * 2 > medians[0],
                "{what} is refused in {:?}, a wrong password in {:?}",
                medians[k],
                medians[0]
            );
        }
    }
}
