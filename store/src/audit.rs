//! The audit trail: an append-only, hash-chained log of who touched which encounter, and why.
//!
//! Each event's hash is SHA-256 over the previous hash and the event's fields, so editing,
//! deleting, inserting or reordering any event breaks the chain from that point on.

use rusqlite::{Transaction, params};
use sha2::{Digest, Sha256};

use crate::{Actor, Store, StoreError};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub encounter_id: Option<String>,
    pub purpose: String,
    /// Where the access came from (see `Actor::source`); absent in events from before schema v7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    pub events: usize,
    /// The first event that does not follow from its predecessor, and why.
    pub broken_at: Option<(i64, String)>,
}

impl AuditEvent {
    /// SHA-256 over the previous hash and every field, separated so fields cannot run together.
    fn expected_hash(&self) -> String {
        let mut h = Sha256::new();
        for field in [
            self.prev_hash.as_str(),
            &self.seq.to_string(),
            &self.at_ms.to_string(),
            &self.actor,
            &self.role,
            &self.action,
            self.encounter_id.as_deref().unwrap_or(""),
            &self.purpose,
        ] {
            h.update(field.as_bytes());
            h.update([0x1f]);
        }
        // Events from before sources were recorded hash as they always did.
        if let Some(source) = &self.source {
            h.update(source.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(h.finalize())
    }
}

/// Appends an event inside the caller's transaction, so the event commits with the access.
pub(crate) fn append(
    tx: &Transaction<'_>,
    actor: &Actor,
    action: &str,
    encounter: Option<&str>,
    purpose: &str,
) -> Result<(), StoreError> {
    let (last_seq, prev): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
            e => Err(e),
        })?;
    let mut e = AuditEvent {
        seq: last_seq + 1,
        at_ms: crate::now_ms(),
        actor: actor.name.clone(),
        role: actor.role.as_str().into(),
        action: action.into(),
        encounter_id: encounter.map(str::to_string),
        purpose: purpose.into(),
        source: actor.source.clone(),
        prev_hash: prev,
        hash: String::new(),
    };
    e.hash = e.expected_hash();
    tx.execute(
        "INSERT INTO audit_events (seq, at_ms, actor, role, action, encounter_id, purpose, prev_hash, hash, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.seq,
            e.at_ms,
            e.actor,
            e.role,
            e.action,
            e.encounter_id,
            e.purpose,
            e.prev_hash,
            e.hash,
            e.source
        ],
    )?;
    Ok(())
}

impl Store {
    /// Records an access that happened outside the store (e.g. an export) in the trail.
    pub fn audit(
        &mut self,
        actor: &Actor,
        action: &str,
        encounter: Option<&str>,
        purpose: &str,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        append(&tx, actor, action, encounter, purpose)?;
        tx.commit()?;
        Ok(())
    }

    /// The newest event whose action starts with `prefix`, without reading the whole trail.
    pub fn last_audit_action(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT action FROM audit_events WHERE substr(action, 1, length(?1)) = ?1 ORDER BY seq DESC LIMIT 1",
                [prefix],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn audit_events(&self, encounter: Option<&str>) -> Result<Vec<AuditEvent>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_ms, actor, role, action, encounter_id, purpose, prev_hash, hash, source
             FROM audit_events WHERE ?1 IS NULL OR encounter_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([encounter], |r| {
            Ok(AuditEvent {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                role: r.get(3)?,
                action: r.get(4)?,
                encounter_id: r.get(5)?,
                purpose: r.get(6)?,
                prev_hash: r.get(7)?,
                hash: r.get(8)?,
                source: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Walks the whole chain and reports the first event that does not follow.
    pub fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        Ok(check_chain(&self.audit_events(None)?))
    }
}

/// Walks a chain of events (from the store or an export) and reports the first that does not
/// follow.
pub(crate) fn check_chain(events: &[AuditEvent]) -> ChainReport {
    let mut prev = GENESIS.to_string();
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let why = if e.seq != expected_seq {
            Some(format!("sequence jumps to {} where {expected_seq} was expected", e.seq))
        } else if e.prev_hash != prev {
            Some("does not link to the event before it".to_string())
        } else if e.hash != e.expected_hash() {
            Some("its contents do not match its hash".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return ChainReport {
                events: events.len(),
                broken_at: Some((e.seq, why)),
            };
        }
        prev = e.hash.clone();
    }
    ChainReport {
        events: events.len(),
        broken_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real chain of five events from a fresh store.
    fn chain() -> Vec<AuditEvent> {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("db"), &dir.path().join("key")).unwrap();
        let who = Actor {
            name: "drbob".into(),
            role: crate::Role::Physician,
            source: Some("10.20.0.7".into()),
        };
        for i in 0..5 {
            store
                .audit(&who, &format!("note.read:{i}"), Some("e1"), "treatment")
                .unwrap();
        }
        let events = store.audit_events(None).unwrap();
        assert_eq!(check_chain(&events).broken_at, None);
        events
    }

    fn broken_at(events: &[AuditEvent]) -> i64 {
        check_chain(events).broken_at.expect("the change is caught").0
    }

    #[test]
    fn edits_deletions_insertions_and_reorderings_are_caught() {
        let events = chain();
        let n = events.len();

        let mut edited = events.clone();
        edited[2].purpose = "billing".into();
        assert_eq!(broken_at(&edited), 3);

        let mut deleted = events.clone();
        deleted.remove(2);
        assert_eq!(broken_at(&deleted), 4, "the event after the gap");

        // An inserted event with a hash that matches its own contents and links to its
        // predecessor: the sequence numbers (or, renumbered, the next link) give it away.
        let mut inserted = events.clone();
        let mut forged = events[1].clone();
        forged.action = "note.read:forged".into();
        forged.hash = forged.expected_hash();
        inserted.insert(2, forged);
        assert!(broken_at(&inserted) <= 3);
        let mut renumbered = inserted.clone();
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert!(broken_at(&renumbered) <= 3);

        let mut reordered = events.clone();
        reordered.swap(1, 3);
        assert_eq!(broken_at(&reordered), reordered[1].seq);

        assert_eq!(
            check_chain(&events[..n - 1]).broken_at,
            None,
            "cut from the end: see audit_head"
        );
    }
}
