//! Who may open which encounter, the reviewer's inbox, edits to a draft, and break-glass access.
//!
//! The rules (product brief, "Roles and permissions"): a clinician opens the visits they recorded;
//! a physician opens those they recorded, those assigned to them and those assigned to nobody
//! (the clinic's pool); any other encounter only through break-glass, with a reason, for a limited
//! time. IT admins and auditors never open PHI.

use protocol::Draft;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::encounter::{ENCOUNTER_COLUMNS, encounter_from_row};
use crate::{Actor, Encounter, Role, State, Store, StoreError, audit};

/// How long a break-glass grant lasts.
const BREAK_GLASS_MS: i64 = 60 * 60 * 1000;

/// Break-glass grants one physician may take in 24 hours. More is not an emergency but a pattern,
/// for the security owner to look into: the next is refused until the oldest is a day old.
pub const BREAK_GLASS_PER_DAY: i64 = 5;

/// How an actor may open one encounter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Theirs to read and edit.
    Granted,
    /// Not theirs, but opened through a live break-glass grant: every access is audited as such.
    /// Read-only unless the grant was taken with the physician's password.
    BreakGlass {
        writes: bool,
    },
    /// A physician could open it through break-glass, with a reason.
    NeedsBreakGlass,
    Denied,
}

impl Access {
    pub fn allows(self) -> bool {
        matches!(self, Access::Granted | Access::BreakGlass { .. })
    }

    /// Whether the actor may change the encounter (edit, sign, amend, export, send) and not only
    /// read it.
    pub fn writes(self) -> bool {
        matches!(self, Access::Granted | Access::BreakGlass { writes: true })
    }
}

/// Whether a PHI operation only reads the encounter, or changes or discloses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Read,
    Write,
}

/// Why a physician opens a visit that is not theirs: one of a short list, so that the security
/// owner can count them, with the physician's own words beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakGlassReason {
    Emergency,
    Covering,
    PatientRequest,
    Continuity,
}

impl BreakGlassReason {
    pub const ALL: [BreakGlassReason; 4] = [
        BreakGlassReason::Emergency,
        BreakGlassReason::Covering,
        BreakGlassReason::PatientRequest,
        BreakGlassReason::Continuity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakGlassReason::Emergency => "emergency",
            BreakGlassReason::Covering => "covering",
            BreakGlassReason::PatientRequest => "patient-request",
            BreakGlassReason::Continuity => "continuity",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            BreakGlassReason::Emergency => "Emergency care",
            BreakGlassReason::Covering => "Covering for the assigned physician",
            BreakGlassReason::PatientRequest => "At the patient's request",
            BreakGlassReason::Continuity => "Continuity of care",
        }
    }

    pub fn parse(s: &str) -> Option<BreakGlassReason> {
        BreakGlassReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One break-glass grant, as the security owner's pages list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    pub encounter_id: String,
    pub actor: String,
    pub reason: String,
    pub writes: bool,
    pub granted_ms: i64,
    pub expires_ms: i64,
}

/// One line of a reviewer's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub encounter: Encounter,
    pub draft_version: Option<u32>,
    /// Unsupported-claim and low-confidence flags in the newest draft.
    pub flags: usize,
}

/// The access rule, inside a transaction so the check and the access see the same rows.
pub(crate) fn access_in(tx: &Transaction<'_>, by: &Actor, id: &str) -> Result<Access, StoreError> {
    let owner: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT created_by, assigned_to FROM encounters WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (created_by, assigned_to) = owner.ok_or_else(|| StoreError::NoEncounter(id.into()))?;
    Ok(match by.role {
        Role::System => Access::Granted,
        Role::ItAdmin | Role::Auditor => Access::Denied,
        Role::Clinician if created_by == by.name => Access::Granted,
        Role::Clinician => Access::Denied,
        Role::Physician
            if created_by == by.name || assigned_to.is_none() || assigned_to.as_deref() == Some(by.name.as_str()) =>
        {
            Access::Granted
        }
        Role::Physician => {
            let live: Option<bool> = tx.query_row(
                "SELECT MAX(writes) FROM break_glass WHERE encounter_id = ?1 AND actor = ?2 AND expires_ms > ?3",
                params![id, by.name, crate::now_ms()],
                |r| r.get(0),
            )?;
            match live {
                Some(writes) => Access::BreakGlass { writes },
                None => Access::NeedsBreakGlass,
            }
        }
    })
}

/// Checks access for one PHI operation and returns the purpose to audit it under.
pub(crate) fn authorize(
    tx: &Transaction<'_>,
    by: &Actor,
    id: &str,
    how: Use,
    action: &str,
    purpose: &str,
) -> Result<String, StoreError> {
    match access_in(tx, by, id)? {
        Access::Granted => Ok(purpose.to_string()),
        Access::BreakGlass { writes: false } if how == Use::Write => Err(StoreError::Forbidden {
            actor: by.name.clone(),
            role: by.role.as_str().into(),
            action: format!(
                "{action} of encounter {id} on read-only break-glass access (break glass again with your password to change it)"
            ),
        }),
        Access::BreakGlass { .. } => Ok(format!("break-glass: {purpose}")),
        Access::NeedsBreakGlass | Access::Denied => Err(StoreError::Forbidden {
            actor: by.name.clone(),
            role: by.role.as_str().into(),
            action: format!("{action} of encounter {id}"),
        }),
    }
}

impl Store {
    /// How `by` may open encounter `id` (no PHI is read, so nothing is audited).
    pub fn access(&mut self, by: &Actor, id: &str) -> Result<Access, StoreError> {
        let tx = self.conn.transaction()?;
        access_in(&tx, by, id)
    }

    /// The encounters `by` may open, newest first, with their draft's flag count. Reading the
    /// inbox is itself audited (labels may identify patients).
    pub fn inbox(&mut self, by: &Actor) -> Result<Vec<InboxItem>, StoreError> {
        crate::Permission::OpenInbox.check(by)?;
        let tx = self.write_tx()?;
        let encounters: Vec<Encounter> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {ENCOUNTER_COLUMNS} FROM encounters WHERE state != 'discarded' ORDER BY created_ms DESC, id"
            ))?;
            let rows = stmt.query_map([], encounter_from_row)?;
            let mut all = Vec::new();
            for row in rows {
                all.push(row??);
            }
            all
        };
        let mut items = Vec::new();
        for encounter in encounters {
            if access_in(&tx, by, &encounter.id)? != Access::Granted {
                continue;
            }
            let draft: Option<(u32, String)> = tx
                .query_row(
                    "SELECT version, body FROM drafts WHERE encounter_id = ?1 ORDER BY version DESC LIMIT 1",
                    [&encounter.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (draft_version, flags) = match draft {
                Some((v, body)) => {
                    let d: Draft = serde_json::from_str(&body)
                        .map_err(|e| StoreError::Corrupt(format!("draft of {}: {e}", encounter.id)))?;
                    (Some(v), d.flag_count())
                }
                None => (None, 0),
            };
            items.push(InboxItem {
                encounter,
                draft_version,
                flags,
            });
        }
        audit::append(&tx, by, "inbox.read", None, "treatment")?;
        tx.commit()?;
        Ok(items)
    }

    /// Emergency access for a physician to an encounter that is not theirs, for an hour: a reason
    /// from [`BreakGlassReason`] with the physician's own words (at least 10 characters), kept in
    /// the audit trail. Read-only unless `writes`, which the caller may set only when it has just
    /// checked the physician's password. At most [`BREAK_GLASS_PER_DAY`] grants a day.
    pub fn break_glass(
        &mut self,
        by: &Actor,
        id: &str,
        reason: BreakGlassReason,
        details: &str,
        writes: bool,
    ) -> Result<(), StoreError> {
        let details = details.trim();
        crate::Permission::UseBreakGlass.check(by)?;
        if details.chars().count() < 10 {
            return Err(StoreError::Invalid(
                "break-glass access needs a reason in your own words (at least 10 characters)".into(),
            ));
        }
        if details.chars().count() > 500 || details.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "a break-glass reason is one line of at most 500 characters".into(),
            ));
        }
        let tx = self.write_tx()?;
        access_in(&tx, by, id)?;
        let now = crate::now_ms();
        let today: i64 = tx.query_row(
            "SELECT COUNT(*) FROM break_glass WHERE actor = ?1 AND granted_ms > ?2",
            params![by.name, now - 24 * 60 * 60 * 1000],
            |r| r.get(0),
        )?;
        if today >= BREAK_GLASS_PER_DAY {
            audit::append(
                &tx,
                by,
                "break_glass.refused",
                Some(id),
                "break-glass: over the daily limit",
            )?;
            tx.commit()?;
            return Err(StoreError::Forbidden {
                actor: by.name.clone(),
                role: by.role.as_str().into(),
                action: format!(
                    "break glass more than {BREAK_GLASS_PER_DAY} times in 24 hours (ask the security owner)"
                ),
            });
        }
        let reason = format!("{}: {details}", reason.as_str());
        tx.execute(
            "INSERT INTO break_glass (encounter_id, actor, reason, granted_ms, expires_ms, writes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, by.name, reason, now, now + BREAK_GLASS_MS, writes],
        )?;
        let action = if writes {
            "break_glass:with-password"
        } else {
            "break_glass:read-only"
        };
        audit::append(&tx, by, action, Some(id), &format!("break-glass: {reason}"))?;
        tx.commit()?;
        tracing::warn!(encounter = %id, actor = %by.name, writes, "break-glass access granted");
        Ok(())
    }

    /// The newest break-glass grants (at most `limit`), for the security owner's pages; reading
    /// them is audited.
    pub fn break_glass_grants(&mut self, by: &Actor, limit: u32) -> Result<Vec<BreakGlassGrant>, StoreError> {
        if by.role != Role::System {
            crate::Permission::ReadAuditTrail.check(by)?;
        }
        let tx = self.write_tx()?;
        let grants = {
            let mut stmt = tx.prepare(
                "SELECT encounter_id, actor, reason, writes, granted_ms, expires_ms FROM break_glass
                 ORDER BY granted_ms DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(BreakGlassGrant {
                    encounter_id: r.get(0)?,
                    actor: r.get(1)?,
                    reason: r.get(2)?,
                    writes: r.get(3)?,
                    granted_ms: r.get(4)?,
                    expires_ms: r.get(5)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        audit::append(&tx, by, "break_glass.list", None, "oversight")?;
        tx.commit()?;
        Ok(grants)
    }

    /// Saves a reviewer's edit as a new draft version. `base_version` is the version the editor
    /// started from: if someone saved in between, the edit is refused rather than silently
    /// overwriting theirs. The sections must stay the template's.
    pub fn save_edited_draft(
        &mut self,
        by: &Actor,
        id: &str,
        base_version: u32,
        draft: &Draft,
    ) -> Result<u32, StoreError> {
        crate::Permission::EditDrafts.check(by)?;
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Write, "edit the draft", "treatment")?;
        crate::encounter::require_state(&tx, id, &[State::AwaitingReview])?;
        let (current, body): (u32, String) = tx
            .query_row(
                "SELECT version, body FROM drafts WHERE encounter_id = ?1 ORDER BY version DESC LIMIT 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NoDraft(id.into()))?;
        if current != base_version {
            return Err(StoreError::EditConflict {
                id: id.into(),
                base: base_version,
                current,
            });
        }
        let base: Draft =
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("draft of {id}: {e}")))?;
        let names = |d: &Draft| d.sections.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let shape = |d: &Draft| {
            (
                d.template.clone(),
                names(d),
                d.patient_instructions
                    .as_deref()
                    .map(|p| (p.template.clone(), names(p))),
            )
        };
        if shape(&base) != shape(draft) {
            return Err(StoreError::Invalid(
                "an edit must keep the template's sections, in order (and the patient instructions')".into(),
            ));
        }
        review_marks_are_honest(&base, draft, by)?;
        if let Some(instructions) = draft.patient_instructions.as_deref() {
            let base_instructions = base.patient_instructions.as_deref().expect("same shape");
            review_marks_are_honest(base_instructions, instructions, by)?;
        }
        let version = current + 1;
        tx.execute(
            "INSERT INTO drafts (encounter_id, version, body, model, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                version,
                serde_json::to_string(draft).expect("drafts serialize"),
                format!("edit:{}", by.name),
                crate::now_ms()
            ],
        )?;
        audit::append(&tx, by, "draft.edit", Some(id), &purpose)?;
        tx.commit()?;
        Ok(version)
    }
}

/// What an edit may do to the checker's flags and to who-did-what, whoever calls: a sentence
/// left as it was keeps every flag it had (only a physician may acknowledge one, in their own
/// name); a sentence whose words or citations changed is marked as edited by the editor, and its
/// flags are the checker's fresh ones, none acknowledged.
fn review_marks_are_honest(base: &Draft, edited: &Draft, by: &Actor) -> Result<(), StoreError> {
    let refuse = |why: &str| Err(StoreError::Invalid(format!("edit refused: {why}")));
    for (before, after) in base.sections.iter().zip(&edited.sections) {
        for sentence in &after.sentences {
            let unchanged = before
                .sentences
                .iter()
                .find(|b| b.text == sentence.text && b.citations == sentence.citations);
            let Some(unchanged) = unchanged else {
                if sentence.edited_by.as_deref() != Some(by.name.as_str()) {
                    return refuse("a changed sentence must be marked as edited by its editor");
                }
                if sentence.flags.iter().any(|f| f.acknowledged_by.is_some()) {
                    return refuse("a changed sentence's flags are new and cannot be acknowledged yet");
                }
                continue;
            };
            if sentence.edited_by != unchanged.edited_by {
                return refuse("who edited a sentence cannot be changed");
            }
            let new_flag_acknowledged = sentence.flags.iter().any(|f| {
                f.acknowledged_by.is_some() && !unchanged.flags.iter().any(|b| b.kind == f.kind && b.term == f.term)
            });
            if new_flag_acknowledged {
                return refuse("a flag is acknowledged after it was raised, not with it");
            }
            for flag in &unchanged.flags {
                let kept = sentence
                    .flags
                    .iter()
                    .find(|f| f.kind == flag.kind && f.term == flag.term);
                match kept {
                    None => {
                        return refuse("a flag can only go by editing its sentence, removing it, or acknowledging it");
                    }
                    Some(f) if f.acknowledged_by == flag.acknowledged_by => {}
                    Some(f)
                        if flag.acknowledged_by.is_none() && f.acknowledged_by.as_deref() == Some(by.name.as_str()) =>
                    {
                        crate::Permission::SignNotes.check(by)?;
                    }
                    Some(_) => return refuse("a flag is acknowledged by the physician who saw it, once"),
                }
            }
        }
    }
    Ok(())
}

impl Store {
    /// Keeps the re-identification key of a de-identified export (placeholder → original, JSON)
    /// in the encrypted database, audited; returns the export's id.
    pub fn keep_deid_key(&mut self, by: &Actor, id: &str, mapping_json: &str) -> Result<String, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(
            &tx,
            by,
            id,
            Use::Write,
            "keep a re-identification key",
            "quality review",
        )?;
        let export_id = hex::encode(crate::random_bytes::<8>());
        tx.execute(
            "INSERT INTO deid_keys (export_id, encounter_id, created_ms, mapping) VALUES (?1, ?2, ?3, ?4)",
            params![export_id, id, crate::now_ms(), mapping_json],
        )?;
        audit::append(&tx, by, &format!("deid_key.keep:{export_id}"), Some(id), &purpose)?;
        tx.commit()?;
        Ok(export_id)
    }
}
