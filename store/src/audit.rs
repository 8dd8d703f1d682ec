//! The audit trail: an append-only, hash-chained log of who touched which encounter, and why.
//!
//! Each event's hash is SHA-256 over the previous hash and the event's fields, so editing,
//! deleting, inserting or reordering any event breaks the chain from that point on.
//!
//! How the fields are put together is the event's `hash_version`. Version 1 (events written before
//! schema v10) joined them with 0x1f, so a field holding 0x1f could later be re-split into other
//! fields with the same hash. Version 2 prefixes each field with its length, after a tag that no
//! version-1 encoding can start with (those start with the previous event's hash): fields cannot
//! run together, and an event cannot be passed off as the other version.

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
    /// How `hash` covers the fields (see the module's doc); 1 in exports from before schema v10.
    #[serde(default = "version_1")]
    pub hash_version: u8,
}

/// The encoding new events are hashed with.
pub const HASH_VERSION: u8 = 2;

fn version_1() -> u8 {
    1
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    pub events: usize,
    /// The first event that does not follow from its predecessor, and why.
    pub broken_at: Option<(i64, String)>,
}

impl AuditEvent {
    /// SHA-256 over the previous hash and every field, in the event's `hash_version`; `None` for a
    /// version this build does not know.
    fn expected_hash(&self) -> Option<String> {
        let (seq, at_ms) = (self.seq.to_string(), self.at_ms.to_string());
        let fields = [
            self.prev_hash.as_str(),
            &seq,
            &at_ms,
            &self.actor,
            &self.role,
            &self.action,
            self.encounter_id.as_deref().unwrap_or(""),
            &self.purpose,
        ];
        let mut h = Sha256::new();
        match self.hash_version {
            1 => {
                for field in fields {
                    h.update(field.as_bytes());
                    h.update([0x1f]);
                }
                // Events from before sources were recorded hash as they always did.
                if let Some(source) = &self.source {
                    h.update(source.as_bytes());
                    h.update([0x1f]);
                }
            }
            2 => {
                h.update(b"scribe audit event v2\0");
                let mut field = |bytes: &[u8]| {
                    h.update((bytes.len() as u64).to_le_bytes());
                    h.update(bytes);
                };
                for f in fields {
                    field(f.as_bytes());
                }
                field(&[u8::from(self.encounter_id.is_some()), u8::from(self.source.is_some())]);
                field(self.source.as_deref().unwrap_or("").as_bytes());
            }
            _ => return None,
        }
        Some(hex::encode(h.finalize()))
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
        hash_version: HASH_VERSION,
    };
    e.hash = e.expected_hash().expect("this build hashes its own version");
    tx.execute(
        "INSERT INTO audit_events (seq, at_ms, actor, role, action, encounter_id, purpose, prev_hash, hash, source, hash_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
            e.source,
            e.hash_version
        ],
    )?;
    Ok(())
}

/// Which events a page of the trail holds; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub encounter: Option<String>,
    pub actor: Option<String>,
}

/// Where a page of the trail starts: the event numbers it is next to.
#[derive(Debug, Clone, Copy)]
pub enum AuditPage {
    /// The newest events before this one (`i64::MAX`: the newest of all).
    NewestBefore(i64),
    /// The oldest events after this one (0: from the first).
    OldestAfter(i64),
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

    /// How many events have an action and a purpose starting with these (either may be empty),
    /// counted by the database rather than by reading the trail.
    pub fn count_audit_events(&self, action_prefix: &str, purpose_prefix: &str) -> Result<usize, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM audit_events WHERE substr(action, 1, length(?1)) = ?1 AND substr(purpose, 1, length(?2)) = ?2",
            [action_prefix, purpose_prefix],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// The events whose action starts with `prefix`, oldest first.
    pub fn audit_events_with_action(&self, prefix: &str) -> Result<Vec<AuditEvent>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE substr(action, 1, length(?1)) = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([prefix], event_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One page of the trail, filtered by the database: `limit` events next to the cursor, newest
    /// first for `NewestBefore`, oldest first for `OldestAfter`. Pages and exports walk the trail
    /// this way, so none of them holds it whole.
    pub fn audit_events_page(
        &self,
        filter: &AuditFilter,
        page: AuditPage,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let (condition, seq) = match page {
            AuditPage::NewestBefore(seq) => ("seq < ?3 ORDER BY seq DESC", seq),
            AuditPage::OldestAfter(seq) => ("seq > ?3 ORDER BY seq", seq),
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events \
             WHERE (?1 IS NULL OR encounter_id = ?1) AND (?2 IS NULL OR actor = ?2) AND {condition} LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![filter.encounter, filter.actor, seq, limit as i64],
            event_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn audit_events(&self, encounter: Option<&str>) -> Result<Vec<AuditEvent>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE ?1 IS NULL OR encounter_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([encounter], event_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Walks the whole chain, a row at a time, and reports the first event that does not follow.
    pub fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        let mut walk = ChainWalk::default();
        while let Some(row) = rows.next()? {
            walk.push(&event_from_row(row)?);
        }
        Ok(walk.report())
    }
}

const EVENT_COLUMNS: &str =
    "seq, at_ms, actor, role, action, encounter_id, purpose, prev_hash, hash, source, hash_version";

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
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
        hash_version: r.get(10)?,
    })
}

/// A chain walked one event at a time: what it holds is the last hash, not the events.
#[derive(Debug)]
struct ChainWalk {
    prev: String,
    events: usize,
    broken_at: Option<(i64, String)>,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk {
            prev: GENESIS.to_string(),
            events: 0,
            broken_at: None,
        }
    }
}

impl ChainWalk {
    fn push(&mut self, e: &AuditEvent) {
        self.events += 1;
        if self.broken_at.is_some() {
            return;
        }
        let expected_seq = self.events as i64;
        let why = if e.seq != expected_seq {
            Some(format!("sequence jumps to {} where {expected_seq} was expected", e.seq))
        } else if e.prev_hash != self.prev {
            Some("does not link to the event before it".to_string())
        } else {
            match e.expected_hash() {
                None => Some(format!("hash version {} is not one this scribe knows", e.hash_version)),
                Some(h) if h != e.hash => Some("its contents do not match its hash".to_string()),
                Some(_) => None,
            }
        };
        match why {
            Some(why) => self.broken_at = Some((e.seq, why)),
            None => self.prev = e.hash.clone(),
        }
    }

    fn report(self) -> ChainReport {
        ChainReport {
            events: self.events,
            broken_at: self.broken_at,
        }
    }
}

/// Walks a chain of events (from the store or an export) and reports the first that does not
/// follow.
pub(crate) fn check_chain(events: &[AuditEvent]) -> ChainReport {
    let mut walk = ChainWalk::default();
    for e in events {
        walk.push(e);
    }
    walk.report()
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
        forged.hash = forged.expected_hash().unwrap();
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

    /// The attack on version 1: a field holding 0x1f (a purpose typed into a form, say) can be
    /// re-split by someone with write access into different fields with the same hash.
    #[test]
    fn fields_cannot_be_re_split_into_a_forged_event() {
        let events = chain();
        let mut planted = events[2].clone();
        planted.purpose = "treatment\u{1f}extra".into();
        let mut resplit = planted.clone();
        resplit.encounter_id = Some("e1\u{1f}treatment".into());
        resplit.purpose = "extra".into();
        for version in [1, 2] {
            planted.hash_version = version;
            resplit.hash_version = version;
            let same = planted.expected_hash() == resplit.expected_hash();
            assert_eq!(same, version == 1, "version {version}");
        }
        // Nor is a version-2 event taken for a version-1 one.
        let mut downgraded = events.clone();
        downgraded[2].hash_version = 1;
        assert_eq!(broken_at(&downgraded), 3);
        let mut unknown = events.clone();
        unknown[2].hash_version = 9;
        assert!(check_chain(&unknown).broken_at.unwrap().1.contains("hash version 9"));
    }

    /// A trail written before version 2 (and exports of it, which carry no version) still
    /// verifies, and new events chain on after it.
    #[test]
    fn version_1_events_still_verify() {
        let mut events = chain();
        let mut prev = GENESIS.to_string();
        for e in &mut events {
            e.hash_version = 1;
            e.prev_hash = prev.clone();
            e.hash = e.expected_hash().unwrap();
            prev = e.hash.clone();
        }
        assert_eq!(check_chain(&events).broken_at, None);
        let json = serde_json::to_string(&events[0])
            .unwrap()
            .replace(",\"hash_version\":1", "");
        let exported: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(exported.hash_version, 1);
        let mut next = events[4].clone();
        next.seq = 6;
        next.prev_hash = prev;
        next.hash_version = HASH_VERSION;
        next.hash = next.expected_hash().unwrap();
        events.push(next);
        assert_eq!(check_chain(&events).broken_at, None);
    }
}
