//! Encounters and their lifecycle, and the PHI that belongs to them.

use protocol::{Draft, Segment, Speaker, Transcript};
use rusqlite::{OptionalExtension, params};

use crate::review::{Use, authorize};
use crate::{Actor, Role, Store, StoreError, audit};

pub type EncounterId = String;

/// `recording → transcribing → drafting → awaiting_review → signed (→ amended)`, plus `failed`
/// (with a reason) and `discarded`. Each transition is committed before it is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Recording,
    Transcribing,
    Drafting,
    AwaitingReview,
    Signed,
    Amended,
    Failed,
    Discarded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Recording => "recording",
            State::Transcribing => "transcribing",
            State::Drafting => "drafting",
            State::AwaitingReview => "awaiting_review",
            State::Signed => "signed",
            State::Amended => "amended",
            State::Failed => "failed",
            State::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [
            State::Recording,
            State::Transcribing,
            State::Drafting,
            State::AwaitingReview,
            State::Signed,
            State::Amended,
            State::Failed,
            State::Discarded,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// No further processing will happen in this state without a person.
    pub fn is_settled(self) -> bool {
        !matches!(self, State::Recording | State::Transcribing | State::Drafting)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Audio,
    Transcript,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Audio => "audio",
            Source::Transcript => "transcript",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    pub id: EncounterId,
    pub state: State,
    pub template: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub audio_ms: Option<i64>,
    pub failure_reason: Option<String>,
    /// The user who recorded or uploaded it ("system:…" for the appliance's own operator).
    pub created_by: String,
    /// The physician who is to sign it; `None` means any physician of the clinic.
    pub assigned_to: Option<String>,
    /// What people call the visit in the inbox, e.g. "Room 2, 10:30" (may identify the patient).
    pub label: String,
    /// When its audio was deleted under the retention policy, if it was.
    pub audio_purged_ms: Option<i64>,
}

/// What is known about a visit when it is first stored.
#[derive(Debug, Clone, Default)]
pub struct NewEncounter {
    pub template: String,
    pub label: String,
    pub assigned_to: Option<String>,
    /// The clinician the visit belongs to when someone else stores it (the box's operator
    /// ingesting a file for them); `None` means whoever stores it.
    pub clinician: Option<String>,
}

/// One engine job's outcome and cost, for reports (no PHI).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub kind: String,
    pub ok: bool,
    pub stats: serde_json::Value,
}

/// Audio is stored in chunks of one second: a crash loses at most the chunk being written.
const CHUNK_SAMPLES: usize = 16_000;

fn new_id() -> EncounterId {
    hex::encode(crate::random_bytes::<8>())
}

fn may_handle_phi(actor: &Actor, action: &str) -> Result<(), StoreError> {
    match actor.role {
        Role::Clinician | Role::Physician | Role::System => Ok(()),
        Role::ItAdmin | Role::Auditor => Err(StoreError::Forbidden {
            actor: actor.name.clone(),
            role: actor.role.as_str().into(),
            action: action.into(),
        }),
    }
}

impl Store {
    /// Stores a recording (16 kHz mono) as a new encounter, queued for transcription.
    pub fn create_audio_encounter(
        &mut self,
        by: &Actor,
        new: &NewEncounter,
        pcm: &[i16],
        channel_track: Option<&[u8]>,
    ) -> Result<EncounterId, StoreError> {
        may_handle_phi(by, "record a visit")?;
        let id = new_id();
        let tx = self.write_tx()?;
        insert_encounter(
            &tx,
            &id,
            by,
            new,
            State::Transcribing,
            Source::Audio,
            Some(pcm.len() as i64 * 1000 / 16_000),
        )?;
        tx.execute(
            "UPDATE encounters SET channel_track = ?2 WHERE id = ?1",
            params![id, channel_track],
        )?;
        {
            let mut stmt = tx.prepare("INSERT INTO audio_chunks (encounter_id, seq, pcm) VALUES (?1, ?2, ?3)")?;
            for (seq, chunk) in pcm.chunks(CHUNK_SAMPLES).enumerate() {
                stmt.execute(params![id, seq as i64, protocol::frame::pcm_to_bytes(chunk)])?;
            }
        }
        audit::append(&tx, by, "encounter.create.audio", Some(&id), "treatment")?;
        tx.commit()?;
        Ok(id)
    }

    /// For a recording with a microphone per speaker: which channel was louder, per 100 ms
    /// (`audio::speakers::channel_track`). Says who spoke when, never what was said.
    pub fn channel_track(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT channel_track FROM encounters WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NoEncounter(id.to_string()))
    }

    /// Starts a live recording: the encounter exists, in `recording`, before the first second of
    /// audio arrives, so a crash at any later point finds it.
    pub fn start_recording(&mut self, by: &Actor, new: &NewEncounter) -> Result<EncounterId, StoreError> {
        may_handle_phi(by, "record a visit")?;
        let id = new_id();
        let tx = self.write_tx()?;
        insert_encounter(&tx, &id, by, new, State::Recording, Source::Audio, Some(0))?;
        audit::append(&tx, by, "recording.start", Some(&id), "treatment")?;
        tx.commit()?;
        Ok(id)
    }

    /// Commits one chunk (at most a second) of a live recording. Chunks are numbered by the
    /// source; a chunk that is already stored (a client resending after a network blip) is
    /// ignored, and `false` says so. The recording's start and end are audited, not each chunk.
    pub fn append_audio(
        &mut self,
        by: &Actor,
        id: &str,
        seq: u32,
        pcm: &[i16],
        peak_dbfs: Option<f32>,
    ) -> Result<bool, StoreError> {
        if pcm.len() > CHUNK_SAMPLES {
            return Err(StoreError::Invalid(format!(
                "an audio chunk holds at most {CHUNK_SAMPLES} samples, not {}",
                pcm.len()
            )));
        }
        let tx = self.write_tx()?;
        authorize(&tx, by, id, Use::Write, "record audio", "treatment")?;
        let state: String = tx.query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))?;
        if state != State::Recording.as_str() {
            return Err(StoreError::WrongState {
                id: id.into(),
                state,
                expected: State::Recording.as_str().into(),
            });
        }
        let added = tx.execute(
            "INSERT OR IGNORE INTO audio_chunks (encounter_id, seq, pcm, peak_dbfs) VALUES (?1, ?2, ?3, ?4)",
            params![id, seq, protocol::frame::pcm_to_bytes(pcm), peak_dbfs.map(f64::from)],
        )? == 1;
        tx.execute(
            "UPDATE encounters SET updated_ms = ?2, audio_ms = (SELECT COALESCE(SUM(length(pcm)), 0) / 32 FROM audio_chunks WHERE encounter_id = ?1) WHERE id = ?1",
            params![id, crate::now_ms()],
        )?;
        tx.commit()?;
        Ok(added)
    }

    /// Seconds `[from, to)` of a recording (whole one-second chunks), for live transcription.
    pub fn audio_seconds(
        &mut self,
        by: &Actor,
        id: &str,
        from: u32,
        to: u32,
        purpose: &str,
    ) -> Result<Vec<i16>, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the audio", purpose)?;
        let mut pcm = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT pcm FROM audio_chunks WHERE encounter_id = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
            )?;
            let mut rows = stmt.query(params![id, from, to])?;
            while let Some(row) = rows.next()? {
                pcm.extend(protocol::frame::pcm_from_bytes(&row.get::<_, Vec<u8>>(0)?));
            }
        }
        audit::append(&tx, by, "audio.read", Some(id), &purpose)?;
        tx.commit()?;
        Ok(pcm)
    }

    /// The transcript so far of a recording still in progress, shown live; the final
    /// transcription replaces it when the recording ends.
    pub fn save_live_transcript(&mut self, by: &Actor, id: &str, transcript: &Transcript) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        authorize(&tx, by, id, Use::Write, "write the live transcript", "treatment")?;
        let state: String = tx.query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))?;
        if state != State::Recording.as_str() {
            // The recording ended meanwhile: the final transcript is (or will be) the one that counts.
            return Ok(());
        }
        tx.execute("DELETE FROM segments WHERE encounter_id = ?1", [id])?;
        insert_segments(&tx, id, transcript)?;
        audit::append(&tx, by, "transcript.write:live", Some(id), "treatment")?;
        tx.commit()?;
        Ok(())
    }

    /// Recordings in progress: id, seconds stored, and the last second's peak level (dBFS). No
    /// audio is read, so this is not a PHI access.
    pub fn live_recordings(&self) -> Result<Vec<(EncounterId, i64, Option<f32>)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.id, COALESCE(e.audio_ms, 0),
                    (SELECT peak_dbfs FROM audio_chunks c WHERE c.encounter_id = e.id ORDER BY seq DESC LIMIT 1)
             FROM encounters e WHERE e.state = 'recording' ORDER BY e.created_ms",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<f64>>(2)?.map(|v| v as f32)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Ends a live recording and queues it for transcription. Finishing one that is already
    /// finished is not an error (the source and the daemon's recovery may both try).
    pub fn finish_recording(&mut self, by: &Actor, id: &str, how: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        authorize(&tx, by, id, Use::Write, "finish the recording", "treatment")?;
        let state: String = tx.query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))?;
        if state != State::Recording.as_str() {
            return Ok(());
        }
        let chunks: i64 = tx.query_row("SELECT count(*) FROM audio_chunks WHERE encounter_id = ?1", [id], |r| {
            r.get(0)
        })?;
        if chunks == 0 {
            transition(
                &tx,
                id,
                &[State::Recording],
                State::Failed,
                Some("the recording has no audio"),
            )?;
        } else {
            transition(&tx, id, &[State::Recording], State::Transcribing, None)?;
        }
        audit::append(&tx, by, &format!("recording.finish:{how}"), Some(id), "treatment")?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a typed or imported transcript as a new encounter, queued for drafting.
    pub fn create_transcript_encounter(
        &mut self,
        by: &Actor,
        new: &NewEncounter,
        transcript: &Transcript,
    ) -> Result<EncounterId, StoreError> {
        may_handle_phi(by, "record a visit")?;
        let id = new_id();
        let tx = self.write_tx()?;
        insert_encounter(&tx, &id, by, new, State::Drafting, Source::Transcript, None)?;
        insert_segments(&tx, &id, transcript)?;
        audit::append(&tx, by, "encounter.create.transcript", Some(&id), "treatment")?;
        tx.commit()?;
        Ok(id)
    }

    pub fn encounter(&self, id: &str) -> Result<Encounter, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {ENCOUNTER_COLUMNS} FROM encounters WHERE id = ?1"),
                [id],
                encounter_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoEncounter(id.into()))?
    }

    /// Encounters in `state`, oldest first: the work queue for each pipeline stage.
    pub fn encounters_in(&self, state: State) -> Result<Vec<EncounterId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM encounters WHERE state = ?1 ORDER BY created_ms, id")?;
        let ids = stmt.query_map([state.as_str()], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// The whole recording, for transcription.
    pub fn audio(&mut self, by: &Actor, id: &str, purpose: &str) -> Result<Vec<i16>, StoreError> {
        self.audio_span(by, id, 0, u64::MAX, purpose)
    }

    /// Milliseconds `[start_ms, end_ms)` of a recording, for playback. Only the chunks that hold
    /// the span are read and decrypted (their lengths come from the row headers), so a click on
    /// one segment of a four-hour recording costs that segment, not the recording.
    pub fn audio_span(
        &mut self,
        by: &Actor,
        id: &str,
        start_ms: u64,
        end_ms: u64,
        purpose: &str,
    ) -> Result<Vec<i16>, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the audio", purpose)?;
        let purged: Option<i64> = tx.query_row("SELECT audio_purged_ms FROM encounters WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
        if let Some(at) = purged {
            return Err(StoreError::AudioPurged {
                id: id.into(),
                at: crate::rfc3339_utc(at),
            });
        }
        let (first, end) = (start_ms.saturating_mul(16), end_ms.saturating_mul(16));
        let mut pcm = Vec::new();
        {
            let mut lengths =
                tx.prepare("SELECT seq, length(pcm) / 2 FROM audio_chunks WHERE encounter_id = ?1 ORDER BY seq")?;
            let mut chunk = tx.prepare("SELECT pcm FROM audio_chunks WHERE encounter_id = ?1 AND seq = ?2")?;
            let mut rows = lengths.query([id])?;
            let mut at = 0u64;
            while let Some(row) = rows.next()?
                && at < end
            {
                let (seq, len): (i64, i64) = (row.get(0)?, row.get(1)?);
                let len = len as u64;
                if at + len > first {
                    let bytes: Vec<u8> = chunk.query_row(params![id, seq], |r| r.get(0))?;
                    let samples = protocol::frame::pcm_from_bytes(&bytes);
                    let from = first.saturating_sub(at).min(len) as usize;
                    let to = (end - at).min(len) as usize;
                    let from = from.min(to);
                    pcm.extend_from_slice(&samples[from..to]);
                }
                at += len;
            }
        }
        audit::append(&tx, by, "audio.read", Some(id), &purpose)?;
        tx.commit()?;
        Ok(pcm)
    }

    /// Stores the transcript and moves the encounter on to drafting.
    pub fn save_transcript(&mut self, by: &Actor, id: &str, transcript: &Transcript) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        authorize(&tx, by, id, Use::Write, "write the transcript", "treatment")?;
        transition(&tx, id, &[State::Transcribing], State::Drafting, None)?;
        // A retried job replaces what an interrupted one may have written.
        tx.execute("DELETE FROM segments WHERE encounter_id = ?1", [id])?;
        insert_segments(&tx, id, transcript)?;
        audit::append(&tx, by, "transcript.write", Some(id), "treatment")?;
        tx.commit()?;
        Ok(())
    }

    pub fn transcript(&mut self, by: &Actor, id: &str, purpose: &str) -> Result<Transcript, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the transcript", purpose)?;
        let segments = {
            let mut stmt = tx.prepare(
                "SELECT id, start_ms, end_ms, speaker, text, confidence, words FROM segments WHERE encounter_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, f64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            rows.map(|row| {
                let (sid, start, end, speaker, text, confidence, words) = row?;
                Ok(Segment {
                    id: sid,
                    start_ms: start as u64,
                    end_ms: end as u64,
                    speaker: Speaker::parse(&speaker).unwrap_or(Speaker::Unknown),
                    text,
                    confidence: confidence as f32,
                    words: serde_json::from_str(&words)
                        .map_err(|e| StoreError::Corrupt(format!("segment words: {e}")))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?
        };
        audit::append(&tx, by, "transcript.read", Some(id), &purpose)?;
        tx.commit()?;
        Ok(Transcript { segments })
    }

    /// Stores a validated draft and moves the encounter to review.
    pub fn save_draft(&mut self, by: &Actor, id: &str, draft: &Draft, model: &str) -> Result<u32, StoreError> {
        let tx = self.write_tx()?;
        authorize(&tx, by, id, Use::Write, "write the draft", "treatment")?;
        transition(&tx, id, &[State::Drafting], State::AwaitingReview, None)?;
        let version: u32 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM drafts WHERE encounter_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let body = serde_json::to_string(draft).expect("drafts serialize");
        tx.execute(
            "INSERT INTO drafts (encounter_id, version, body, model, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, version, body, model, crate::now_ms()],
        )?;
        audit::append(&tx, by, "draft.write", Some(id), "treatment")?;
        tx.commit()?;
        Ok(version)
    }

    /// Adds the patient instructions drafted for an encounter awaiting review, as a new version
    /// of its newest draft (whatever a reviewer has edited by then stays as they left it). Refused
    /// once the note is signed, or if the draft already has instructions.
    pub fn add_patient_instructions(
        &mut self,
        by: &Actor,
        id: &str,
        instructions: &Draft,
        model: &str,
    ) -> Result<u32, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Write, "write the patient instructions", "treatment")?;
        require_state(&tx, id, &[State::AwaitingReview])?;
        let (current, body, previous_model): (u32, String, String) = tx
            .query_row(
                "SELECT version, body, model FROM drafts WHERE encounter_id = ?1 ORDER BY version DESC LIMIT 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NoDraft(id.into()))?;
        let mut draft: Draft =
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("draft of {id}: {e}")))?;
        if draft.patient_instructions.is_some() {
            return Err(StoreError::Invalid("the draft already has patient instructions".into()));
        }
        draft.patient_instructions = Some(Box::new(instructions.clone()));
        tx.execute(
            "INSERT INTO drafts (encounter_id, version, body, model, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                current + 1,
                serde_json::to_string(&draft).expect("drafts serialize"),
                format!("{previous_model}; patient instructions: {model}"),
                crate::now_ms()
            ],
        )?;
        audit::append(&tx, by, "draft.instructions.write", Some(id), &purpose)?;
        tx.commit()?;
        Ok(current + 1)
    }

    /// Whether the encounter's draft carries patient instructions (some version had them added;
    /// edits keep them). Not PHI: not audited.
    pub fn has_patient_instructions(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM drafts WHERE encounter_id = ?1 AND model LIKE '%; patient instructions: %')",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Which model versions produced the newest draft (or "edited by …"). Not PHI: not audited.
    pub fn draft_models(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT model FROM drafts WHERE encounter_id = ?1 ORDER BY version DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The newest draft and its version, if any.
    pub fn latest_draft(&mut self, by: &Actor, id: &str, purpose: &str) -> Result<Option<(u32, Draft)>, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the draft", purpose)?;
        let row: Option<(u32, String)> = tx
            .query_row(
                "SELECT version, body FROM drafts WHERE encounter_id = ?1 ORDER BY version DESC LIMIT 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let draft = match row {
            Some((v, body)) => Some((
                v,
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("draft of {id}: {e}")))?,
            )),
            None => None,
        };
        if draft.is_some() {
            audit::append(&tx, by, "draft.read", Some(id), &purpose)?;
        }
        tx.commit()?;
        Ok(draft)
    }

    /// One draft version (the signed one, for instance), if it exists.
    pub fn draft_version(
        &mut self,
        by: &Actor,
        id: &str,
        version: u32,
        purpose: &str,
    ) -> Result<Option<(u32, Draft)>, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the draft", purpose)?;
        let body: Option<String> = tx
            .query_row(
                "SELECT body FROM drafts WHERE encounter_id = ?1 AND version = ?2",
                params![id, version],
                |r| r.get(0),
            )
            .optional()?;
        let draft = match body {
            Some(body) => Some((
                version,
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("draft of {id}: {e}")))?,
            )),
            None => None,
        };
        if draft.is_some() {
            audit::append(&tx, by, "draft.read", Some(id), &purpose)?;
        }
        tx.commit()?;
        Ok(draft)
    }

    /// Marks an in-flight encounter failed with a reason a person can act on.
    pub fn fail(&mut self, by: &Actor, id: &str, reason: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        transition(
            &tx,
            id,
            &[State::Recording, State::Transcribing, State::Drafting],
            State::Failed,
            Some(reason),
        )?;
        audit::append(&tx, by, "encounter.fail", Some(id), "treatment")?;
        tx.commit()?;
        Ok(())
    }

    pub fn record_job(&mut self, id: &str, kind: &str, ok: bool, stats: &serde_json::Value) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO job_runs (encounter_id, kind, finished_ms, ok, stats) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, kind, crate::now_ms(), ok, stats.to_string()],
        )?;
        Ok(())
    }

    pub fn job_runs(&self, id: &str) -> Result<Vec<JobRun>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, ok, stats FROM job_runs WHERE encounter_id = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (kind, ok, stats) = row?;
            Ok(JobRun {
                kind,
                ok,
                stats: serde_json::from_str(&stats).unwrap_or(serde_json::Value::Null),
            })
        })
        .collect()
    }
}

pub(crate) const ENCOUNTER_COLUMNS: &str = "id, state, template, created_ms, updated_ms, audio_ms, failure_reason, created_by, assigned_to, label, audio_purged_ms";

/// Reads a row selected with [`ENCOUNTER_COLUMNS`].
pub(crate) fn encounter_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Encounter, StoreError>> {
    let id: String = r.get(0)?;
    let state: String = r.get(1)?;
    let Some(state) = State::parse(&state) else {
        return Ok(Err(StoreError::Corrupt(format!("encounter {id} has state {state}"))));
    };
    Ok(Ok(Encounter {
        id,
        state,
        template: r.get(2)?,
        created_ms: r.get(3)?,
        updated_ms: r.get(4)?,
        audio_ms: r.get(5)?,
        failure_reason: r.get(6)?,
        created_by: r.get(7)?,
        assigned_to: r.get(8)?,
        label: r.get(9)?,
        audio_purged_ms: r.get(10)?,
    }))
}

fn insert_encounter(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    by: &Actor,
    new: &NewEncounter,
    state: State,
    source: Source,
    audio_ms: Option<i64>,
) -> Result<(), StoreError> {
    let role_of = |name: &str| -> Result<String, StoreError> {
        tx.query_row("SELECT role FROM users WHERE name = ?1", [name], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NoUser(name.into()))
    };
    if let Some(signer) = &new.assigned_to
        && role_of(signer)? != "physician"
    {
        return Err(StoreError::NotAPhysician(signer.clone()));
    }
    let owner = match &new.clinician {
        Some(name) if by.role == Role::System => {
            if !matches!(role_of(name)?.as_str(), "clinician" | "physician") {
                return Err(StoreError::Invalid(format!("{name} is not a clinician or physician")));
            }
            name.clone()
        }
        Some(name) if *name != by.name => {
            return Err(StoreError::Invalid(format!(
                "{} cannot store a visit on behalf of {name}",
                by.name
            )));
        }
        _ => by.name.clone(),
    };
    let now = crate::now_ms();
    tx.execute(
        "INSERT INTO encounters (id, state, source, template, created_ms, updated_ms, audio_ms, created_by, assigned_to, label)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            state.as_str(),
            source.as_str(),
            new.template,
            now,
            audio_ms,
            owner,
            new.assigned_to,
            new.label
        ],
    )?;
    Ok(())
}

fn insert_segments(tx: &rusqlite::Transaction<'_>, id: &str, transcript: &Transcript) -> Result<(), StoreError> {
    let mut stmt = tx.prepare(
        "INSERT INTO segments (encounter_id, id, start_ms, end_ms, speaker, text, confidence, words) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for s in &transcript.segments {
        stmt.execute(params![
            id,
            s.id,
            s.start_ms as i64,
            s.end_ms as i64,
            s.speaker.as_str(),
            s.text,
            f64::from(s.confidence),
            serde_json::to_string(&s.words).expect("words serialize"),
        ])?;
    }
    Ok(())
}

/// Refuses unless the encounter is in one of the `from` states.
pub(crate) fn require_state(tx: &rusqlite::Transaction<'_>, id: &str, from: &[State]) -> Result<(), StoreError> {
    let state: Option<String> = tx
        .query_row("SELECT state FROM encounters WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let state = state.ok_or_else(|| StoreError::NoEncounter(id.into()))?;
    if !from.iter().any(|s| s.as_str() == state) {
        return Err(StoreError::WrongState {
            id: id.into(),
            state,
            expected: from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or "),
        });
    }
    Ok(())
}

pub(crate) fn transition(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    from: &[State],
    to: State,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    require_state(tx, id, from)?;
    tx.execute(
        "UPDATE encounters SET state = ?2, updated_ms = ?3, failure_reason = ?4 WHERE id = ?1",
        params![id, to.as_str(), crate::now_ms(), reason],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_playback_span_is_exactly_those_samples_whatever_the_chunk_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("s.db"), &dir.path().join("k")).unwrap();
        let system = Actor::system("test");
        let id = store.start_recording(&system, &NewEncounter::default()).unwrap();
        // A short chunk in the middle (a client that sent half a second), so chunk numbers are not
        // seconds.
        let whole: Vec<i16> = (0..37_000).map(|i| (i % 30_000) as i16).collect();
        for (seq, chunk) in [&whole[..16_000], &whole[16_000..24_000], &whole[24_000..]]
            .iter()
            .enumerate()
        {
            store.append_audio(&system, &id, seq as u32, chunk, None).unwrap();
        }
        assert_eq!(store.audio(&system, &id, "test").unwrap(), whole);
        for (start_ms, end_ms) in [
            (0, 1000),
            (500, 1500),
            (999, 1001),
            (1400, 2300),
            (2000, 5000),
            (9000, 20_000),
        ] {
            let at = |ms: u64| ((ms * 16) as usize).min(whole.len());
            assert_eq!(
                store.audio_span(&system, &id, start_ms, end_ms, "test").unwrap(),
                &whole[at(start_ms)..at(end_ms)],
                "{start_ms}..{end_ms}"
            );
        }
        assert!(
            store
                .audio_span(&system, &id, u64::MAX - 1, u64::MAX, "test")
                .unwrap()
                .is_empty()
        );
    }
}
