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
}

impl Actor {
    pub fn system(component: &str) -> Actor {
        Actor {
            name: format!("system:{component}"),
            role: Role::System,
        }
    }
}

impl Store {
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

    /// Checks a user's password; the attempt is audited either way.
    pub fn authenticate(&mut self, name: &str, password: &str) -> Result<Actor, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row("SELECT role, password_hash FROM users WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let tx = self.write_tx()?;
        let Some((role, hash)) = row else {
            crate::audit::append(
                &tx,
                &Actor {
                    name: name.into(),
                    role: Role::System,
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
        };
        let parsed =
            PasswordHash::new(&hash).map_err(|e| StoreError::Corrupt(format!("password hash of {name}: {e}")))?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
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
