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

/// Account lockout: `max_failures` wrong passwords in a row lock the account for `lockout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lockout_ms: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 5,
            lockout_ms: 15 * 60 * 1000,
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
}

impl Store {
    /// Everyone with an account; for IT admins.
    pub fn users(&mut self, by: &Actor) -> Result<Vec<UserInfo>, StoreError> {
        if by.role != Role::System {
            crate::Permission::ManageUsers.check(by)?;
        }
        let now = crate::now_ms();
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, created_ms, locked_until_ms FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (name, role, created_ms, locked_until) = row?;
            Ok(UserInfo {
                role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user {name} has role {role}")))?,
                name,
                created_ms,
                locked: locked_until > now,
            })
        })
        .collect()
    }

    /// Clears a lockout (IT admin), audited.
    pub fn unlock_user(&mut self, by: &Actor, name: &str) -> Result<(), StoreError> {
        crate::Permission::ManageUsers.check(by)?;
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE name = ?1",
            [name],
        )?;
        if n == 0 {
            return Err(StoreError::NoUser(name.into()));
        }
        crate::audit::append(&tx, by, "user.unlock", None, "administration")?;
        tx.commit()?;
        Ok(())
    }

    pub fn add_user(&mut self, by: &Actor, name: &str, role: Role, password: &str) -> Result<(), StoreError> {
        if role == Role::System {
            return Err(StoreError::Forbidden {
                actor: by.name.clone(),
                role: by.role.as_str().into(),
                action: "create a system user".into(),
            });
        }
        let salt = SaltString::encode_b64(&crate::random_bytes::<16>()).expect("16 bytes is a valid salt");
        // argon2id with the crate's defaults (19 MiB, 2 passes): memory-hard against offline guessing.
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| StoreError::Corrupt(format!("hashing failed: {e}")))?
            .to_string();
        let tx = self.write_tx()?;
        let exists: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)", [name], |r| {
            r.get(0)
        })?;
        if exists {
            return Err(StoreError::UserExists(name.into()));
        }
        tx.execute(
            "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash, crate::now_ms()],
        )?;
        crate::audit::append(&tx, by, &format!("user.add:{}", role.as_str()), None, "administration")?;
        tx.commit()?;
        Ok(())
    }

    /// Checks a user's password; the attempt is audited either way. After
    /// [`LoginPolicy::max_failures`] wrong passwords in a row the account is locked for a while,
    /// and even the right password is refused until then.
    pub fn authenticate(&mut self, name: &str, password: &str, source: Option<&str>) -> Result<Actor, StoreError> {
        let now = crate::now_ms();
        let policy = self.login_policy;
        let row: Option<(String, String, i64)> = self
            .conn
            .query_row(
                "SELECT role, password_hash, locked_until_ms FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let tx = self.write_tx()?;
        let Some((role, hash, locked_until)) = row else {
            crate::audit::append(
                &tx,
                &Actor {
                    name: name.into(),
                    role: Role::System,
                    source: source.map(str::to_string),
                },
                "login.unknown_user",
                None,
                "authentication",
            )?;
            tx.commit()?;
            return Err(StoreError::NoUser(name.into()));
        };
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user {name} has role {role}")))?;
        let actor = Actor {
            name: name.into(),
            role,
            source: source.map(str::to_string),
        };
        if locked_until > now {
            crate::audit::append(&tx, &actor, "login.locked", None, "authentication")?;
            tx.commit()?;
            return Err(StoreError::LockedOut {
                name: name.into(),
                minutes: (locked_until - now + 59_999) / 60_000,
            });
        }
        let parsed =
            PasswordHash::new(&hash).map_err(|e| StoreError::Corrupt(format!("password hash of {name}: {e}")))?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        if ok {
            tx.execute(
                "UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE name = ?1",
                [name],
            )?;
        } else {
            let failures: u32 = tx.query_row(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE name = ?1 RETURNING failed_logins",
                [name],
                |r| r.get(0),
            )?;
            if failures >= policy.max_failures {
                tx.execute(
                    "UPDATE users SET failed_logins = 0, locked_until_ms = ?2 WHERE name = ?1",
                    params![name, now + policy.lockout_ms],
                )?;
                crate::audit::append(&tx, &actor, "user.lockout", None, "authentication")?;
            }
        }
        crate::audit::append(
            &tx,
            &actor,
            if ok { "login.ok" } else { "login.failed" },
            None,
            "authentication",
        )?;
        tx.commit()?;
        if ok {
            Ok(actor)
        } else {
            Err(StoreError::WrongPassword(name.into()))
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
