//! The retention policy: a visit's audio is deleted a set time after its note is signed, or a
//! set time after it was recorded, whichever comes first. The transcript, the note and its
//! signature stay; every deletion is an audit event.

use rusqlite::params;

use crate::review::{Use, authorize};
use crate::{Actor, EncounterId, Store, StoreError, audit};

/// How long audio is kept; `None` in a field means that rule never deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudioRetention {
    pub after_signing_ms: Option<i64>,
    pub max_age_ms: Option<i64>,
}

impl Store {
    /// Encounters whose audio the policy says to delete at `now_ms`. A visit still being
    /// recorded, transcribed or drafted is never among them: its audio is still needed.
    pub fn audio_due_for_purge(&self, policy: AudioRetention, now_ms: i64) -> Result<Vec<EncounterId>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.id FROM encounters e LEFT JOIN signed_notes s ON s.encounter_id = e.id
             WHERE e.audio_purged_ms IS NULL
               AND EXISTS (SELECT 1 FROM audio_chunks c WHERE c.encounter_id = e.id)
               AND e.state IN ('awaiting_review', 'signed', 'amended', 'failed', 'discarded')
               AND ((?1 IS NOT NULL AND s.signed_ms IS NOT NULL AND s.signed_ms + ?1 <= ?3)
                 OR (?2 IS NOT NULL AND e.created_ms + ?2 <= ?3))
             ORDER BY e.created_ms",
        )?;
        let rows = stmt.query_map(params![policy.after_signing_ms, policy.max_age_ms, now_ms], |r| {
            r.get(0)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes an encounter's audio for `reason` (audited as the purpose). Returns the seconds
    /// deleted.
    pub fn purge_audio(&mut self, by: &Actor, id: &str, reason: &str) -> Result<usize, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Write, "delete the audio", reason)?;
        let chunks = tx.execute("DELETE FROM audio_chunks WHERE encounter_id = ?1", [id])?;
        tx.execute(
            "UPDATE encounters SET audio_purged_ms = ?2 WHERE id = ?1",
            params![id, crate::now_ms()],
        )?;
        audit::append(&tx, by, "audio.purge", Some(id), &purpose)?;
        tx.commit()?;
        Ok(chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewEncounter;

    #[test]
    fn audio_goes_after_signing_or_when_too_old_and_never_while_needed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("s.db"), &dir.path().join("k")).unwrap();
        let system = Actor::system("test");
        let recording = store.start_recording(&system, &NewEncounter::default()).unwrap();
        store.append_audio(&system, &recording, 0, &[1; 16_000], None).unwrap();
        let queued = store
            .create_audio_encounter(&system, &NewEncounter::default(), &[1; 32_000], None)
            .unwrap();
        let now = crate::now_ms();
        let day = 24 * 3600 * 1000;

        // Nothing signed, nothing settled: no rule deletes anything, however old.
        let keep_a_day = AudioRetention {
            after_signing_ms: Some(0),
            max_age_ms: Some(day),
        };
        assert!(store.audio_due_for_purge(keep_a_day, now + 2 * day).unwrap().is_empty());

        // Once settled, the age rule applies.
        store.fail(&system, &queued, "test").unwrap();
        assert_eq!(
            store.audio_due_for_purge(keep_a_day, now + 2 * day).unwrap(),
            vec![queued.clone()]
        );
        assert!(store.audio_due_for_purge(keep_a_day, now).unwrap().is_empty());
        assert_eq!(store.purge_audio(&system, &queued, "retention: test").unwrap(), 2);
        assert!(store.audio_due_for_purge(keep_a_day, now + 2 * day).unwrap().is_empty());
        assert!(matches!(
            store.audio(&system, &queued, "test"),
            Err(StoreError::AudioPurged { .. })
        ));
        assert!(store.encounter(&queued).unwrap().audio_purged_ms.is_some());
        let events = store.audit_events(Some(&queued)).unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "audio.purge" && e.purpose == "retention: test")
        );
    }
}
