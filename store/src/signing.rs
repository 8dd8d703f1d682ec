//! Signing: a physician's sign-off turns a draft into an immutable, Ed25519-signed note.
//!
//! What is signed is the note's canonical text (a fixed, versioned rendering), so verification
//! needs nothing but that text, its stored hash, its signature and the appliance's public key.

use std::fmt::Write;

use protocol::Draft;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::encounter::transition;
use crate::review::{Use, authorize};
use crate::{Actor, State, Store, StoreError, audit};

#[derive(Debug, Clone, PartialEq)]
pub struct SignedNote {
    pub encounter_id: String,
    pub draft_version: u32,
    pub canonical_text: String,
    pub sha256: String,
    pub signature: String,
    pub key_id: String,
    pub signer: String,
    pub signed_ms: i64,
}

/// A signed change to a signed note: the note itself never changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Addendum {
    pub encounter_id: String,
    pub seq: u32,
    /// What the physician wrote.
    pub text: String,
    pub canonical_text: String,
    pub sha256: String,
    pub signature: String,
    pub key_id: String,
    pub signer: String,
    pub signed_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verification {
    Valid {
        signer: String,
        key_id: String,
        sha256: String,
    },
    /// The stored text no longer hashes to the value recorded at signing.
    HashMismatch { expected: String, actual: String },
    /// The signature does not verify with the appliance's key.
    BadSignature,
}

pub(crate) fn create_appliance_key(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| StoreError::Corrupt("cannot generate a signing key".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("fresh key parses");
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('signing_key_pkcs8', ?1)",
        [pkcs8.as_ref()],
    )?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('signing_public_key', ?1)",
        [pair.public_key().as_ref()],
    )?;
    Ok(())
}

fn key_id(public_key: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// The versioned text a signature covers. Changing this function breaks every old signature's
/// re-derivation, so it is versioned: add a v2, never edit v1.
fn canonical_text_v1(encounter_id: &str, draft_version: u32, draft: &Draft, signer: &str, signed_ms: i64) -> String {
    canonical_text(1, encounter_id, draft_version, draft, signer, signed_ms)
}

/// v2: a note signed with its patient instructions. v1's text, then a `# Patient instructions`
/// part naming their template, with their sections written as the note's are.
fn canonical_text_v2(encounter_id: &str, draft_version: u32, draft: &Draft, signer: &str, signed_ms: i64) -> String {
    let mut t = canonical_text(2, encounter_id, draft_version, draft, signer, signed_ms);
    write_instructions(&mut t, draft, 2);
    t
}

/// v3: v2, with what the review did under each sentence: who edited it, and each flag the
/// signer saw and let stand (`  edited-by: NAME`, `  flag: KIND "TERM" acknowledged-by: NAME`).
fn canonical_text_v3(encounter_id: &str, draft_version: u32, draft: &Draft, signer: &str, signed_ms: i64) -> String {
    let mut t = canonical_text(3, encounter_id, draft_version, draft, signer, signed_ms);
    write_instructions(&mut t, draft, 3);
    t
}

/// v4: v3 with every text written on one line: a backslash, line feed or carriage return in a
/// sentence, a section or template name or an editor's name is written `\\`, `\n`, `\r`. An
/// edited sentence with a line break can no longer pass for a line of the note's structure.
fn canonical_text_v4(encounter_id: &str, draft_version: u32, draft: &Draft, signer: &str, signed_ms: i64) -> String {
    let mut t = canonical_text(4, encounter_id, draft_version, draft, signer, signed_ms);
    write_instructions(&mut t, draft, 4);
    t
}

/// The signed text of `version`, derived again from the draft it was made from.
fn canonical_text_of_version(
    version: u32,
    encounter_id: &str,
    draft_version: u32,
    draft: &Draft,
    signer: &str,
    signed_ms: i64,
) -> Option<String> {
    let derive = match version {
        1 => canonical_text_v1,
        2 => canonical_text_v2,
        3 => canonical_text_v3,
        4 => canonical_text_v4,
        _ => return None,
    };
    Some(derive(encounter_id, draft_version, draft, signer, signed_ms))
}

/// Text as one line of a v4 signed text.
fn one_line(text: &str, version: u32) -> std::borrow::Cow<'_, str> {
    if version < 4 || !text.contains(['\\', '\n', '\r']) {
        return text.into();
    }
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .into()
}

fn write_instructions(t: &mut String, draft: &Draft, version: u32) {
    if let Some(instructions) = &draft.patient_instructions {
        writeln!(t, "\n# Patient instructions").unwrap();
        writeln!(t, "template: {}", one_line(&instructions.template, version)).unwrap();
        write_sections(t, instructions, version);
    }
}

/// Whether a review left marks (an edit, an acknowledged flag) that the signed text must carry.
fn has_review_marks(draft: &Draft) -> bool {
    let marked = |d: &Draft| {
        d.sentences()
            .any(|s| s.edited_by.is_some() || s.flags.iter().any(|f| f.acknowledged_by.is_some()))
    };
    marked(draft) || draft.patient_instructions.as_deref().is_some_and(marked)
}

/// Whether some text in the draft holds a line break, which only v4 writes unambiguously.
fn has_line_breaks(draft: &Draft) -> bool {
    let breaks = |t: &str| t.contains(['\n', '\r']);
    let broken = |d: &Draft| {
        breaks(&d.template)
            || d.sections.iter().any(|s| {
                breaks(&s.name)
                    || s.sentences
                        .iter()
                        .any(|s| breaks(&s.text) || s.edited_by.as_deref().is_some_and(breaks))
            })
    };
    broken(draft) || draft.patient_instructions.as_deref().is_some_and(broken)
}

/// The version a draft is signed under: the oldest whose text carries everything in the draft
/// (v4 if a text holds a line break, v3 once a person edited a sentence or acknowledged a flag,
/// v2 with patient instructions, else v1).
fn canonical_text_for(encounter_id: &str, draft_version: u32, draft: &Draft, signer: &str, signed_ms: i64) -> String {
    let version = if has_line_breaks(draft) {
        4
    } else if has_review_marks(draft) {
        3
    } else if draft.patient_instructions.is_some() {
        2
    } else {
        1
    };
    canonical_text_of_version(version, encounter_id, draft_version, draft, signer, signed_ms).expect("a known version")
}

fn canonical_text(
    version: u32,
    encounter_id: &str,
    draft_version: u32,
    draft: &Draft,
    signer: &str,
    signed_ms: i64,
) -> String {
    let signed_at = rfc3339_utc(signed_ms);
    let mut t = String::new();
    writeln!(t, "scribe-signed-note v{version}").unwrap();
    writeln!(t, "encounter: {encounter_id}").unwrap();
    writeln!(t, "draft-version: {draft_version}").unwrap();
    writeln!(t, "template: {}", one_line(&draft.template, version)).unwrap();
    writeln!(t, "signer: {signer}").unwrap();
    writeln!(t, "signed-at: {signed_at}").unwrap();
    write_sections(&mut t, draft, version);
    t
}

/// The sections, a sentence a line with its citations; from v3, under each sentence who edited
/// it and each of its flags with who acknowledged it.
fn write_sections(t: &mut String, draft: &Draft, version: u32) {
    for section in &draft.sections {
        writeln!(t, "\n## {}", one_line(&section.name, version)).unwrap();
        if section.sentences.is_empty() {
            writeln!(t, "- Not discussed.").unwrap();
        }
        for s in &section.sentences {
            let cites: Vec<String> = s.citations.iter().map(|c| format!("S{c}")).collect();
            writeln!(t, "- {} [{}]", one_line(&s.text, version), cites.join(", ")).unwrap();
            if version < 3 {
                continue;
            }
            if let Some(editor) = &s.edited_by {
                writeln!(t, "  edited-by: {}", one_line(editor, version)).unwrap();
            }
            for f in &s.flags {
                let kind = serde_json::to_value(f.kind).expect("flag kinds serialize");
                let kind = kind.as_str().unwrap_or_default();
                let by = f.acknowledged_by.as_deref().unwrap_or("-");
                writeln!(
                    t,
                    "  flag: {kind} {:?} acknowledged-by: {}",
                    f.term,
                    one_line(by, version)
                )
                .unwrap();
            }
        }
    }
}

/// The text an addendum's signature covers; it names the note it amends by the note's hash.
fn addendum_text_v1(
    encounter_id: &str,
    seq: u32,
    note_sha256: &str,
    text: &str,
    signer: &str,
    signed_ms: i64,
) -> String {
    format!(
        "scribe-addendum v1\nencounter: {encounter_id}\naddendum: {seq}\namends-note-sha256: {note_sha256}\nsigner: {signer}\nsigned-at: {}\n\n{text}\n",
        rfc3339_utc(signed_ms)
    )
}

/// The text of an addendum, recovered from its canonical form.
fn addendum_body(canonical: &str) -> String {
    canonical
        .split_once("\n\n")
        .map(|(_, body)| body.strip_suffix('\n').unwrap_or(body).to_string())
        .unwrap_or_default()
}

pub fn rfc3339_utc(ms: i64) -> String {
    // Seconds-resolution UTC, computed here so the canonical form depends on no locale or crate.
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn only_physicians_sign(signer: &Actor) -> Result<(), StoreError> {
    crate::Permission::SignNotes.check(signer)
}

/// The SHA-256 of a canonical text, the appliance's Ed25519 signature over it, and the key's id.
fn seal(pair: &Ed25519KeyPair, text: &str) -> (String, String, String) {
    (
        hex::encode(Sha256::digest(text.as_bytes())),
        hex::encode(pair.sign(text.as_bytes()).as_ref()),
        key_id(pair.public_key().as_ref()),
    )
}

fn signing_key(tx: &Transaction<'_>) -> Result<Ed25519KeyPair, StoreError> {
    let pkcs8: Vec<u8> = tx.query_row("SELECT value FROM meta WHERE key = 'signing_key_pkcs8'", [], |r| {
        r.get(0)
    })?;
    Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| StoreError::Corrupt("appliance signing key".into()))
}

impl Store {
    /// Signs the encounter's latest draft. Only an authenticated physician may sign; the result
    /// is immutable (the database refuses updates and deletes of signed notes).
    pub fn sign(&mut self, signer: &Actor, id: &str) -> Result<SignedNote, StoreError> {
        only_physicians_sign(signer)?;
        let (version, draft) = self
            .latest_draft(signer, id, "signing")?
            .ok_or_else(|| StoreError::NoDraft(id.into()))?;
        let open = draft.open_flag_count();
        if open > 0 {
            return Err(StoreError::OpenFlags { id: id.into(), open });
        }
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, signer, id, Use::Write, "sign the note", "treatment")?;
        transition(&tx, id, &[State::AwaitingReview], State::Signed, None)?;
        let pair = signing_key(&tx)?;
        let signed_ms = crate::now_ms();
        let text = canonical_text_for(id, version, &draft, &signer.name, signed_ms);
        let (sha256, signature, key_id) = seal(&pair, &text);
        let note = SignedNote {
            encounter_id: id.into(),
            draft_version: version,
            sha256,
            signature,
            key_id,
            canonical_text: text,
            signer: signer.name.clone(),
            signed_ms,
        };
        tx.execute(
            "INSERT INTO signed_notes (encounter_id, draft_version, canonical_text, sha256, signature, key_id, signer, signed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, version, note.canonical_text, note.sha256, note.signature, note.key_id, note.signer, signed_ms],
        )?;
        audit::append(&tx, signer, "note.sign", Some(id), &purpose)?;
        tx.commit()?;
        Ok(note)
    }

    pub fn signed_note(&mut self, by: &Actor, id: &str, purpose: &str) -> Result<Option<SignedNote>, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the signed note", purpose)?;
        let note = tx
            .query_row(
                "SELECT encounter_id, draft_version, canonical_text, sha256, signature, key_id, signer, signed_ms
                 FROM signed_notes WHERE encounter_id = ?1",
                [id],
                |r| {
                    Ok(SignedNote {
                        encounter_id: r.get(0)?,
                        draft_version: r.get(1)?,
                        canonical_text: r.get(2)?,
                        sha256: r.get(3)?,
                        signature: r.get(4)?,
                        key_id: r.get(5)?,
                        signer: r.get(6)?,
                        signed_ms: r.get(7)?,
                    })
                },
            )
            .optional()?;
        if note.is_some() {
            audit::append(&tx, by, "note.read", Some(id), &purpose)?;
        }
        tx.commit()?;
        Ok(note)
    }

    /// Adds a signed addendum to a signed note; the note moves to `amended`.
    pub fn add_addendum(&mut self, signer: &Actor, id: &str, text: &str) -> Result<Addendum, StoreError> {
        only_physicians_sign(signer)?;
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, signer, id, Use::Write, "amend the note", "treatment")?;
        let text = text.trim();
        if text.is_empty() {
            return Err(StoreError::Invalid("an addendum needs text".into()));
        }
        transition(&tx, id, &[State::Signed, State::Amended], State::Amended, None)?;
        let note_sha: String = tx.query_row("SELECT sha256 FROM signed_notes WHERE encounter_id = ?1", [id], |r| {
            r.get(0)
        })?;
        let seq: u32 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM addenda WHERE encounter_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let pair = signing_key(&tx)?;
        let signed_ms = crate::now_ms();
        let canonical = addendum_text_v1(id, seq, &note_sha, text, &signer.name, signed_ms);
        let (sha256, signature, key_id) = seal(&pair, &canonical);
        let addendum = Addendum {
            encounter_id: id.into(),
            seq,
            text: text.into(),
            sha256,
            signature,
            key_id,
            canonical_text: canonical,
            signer: signer.name.clone(),
            signed_ms,
        };
        tx.execute(
            "INSERT INTO addenda (encounter_id, seq, canonical_text, sha256, signature, key_id, signer, signed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                seq,
                addendum.canonical_text,
                addendum.sha256,
                addendum.signature,
                addendum.key_id,
                addendum.signer,
                signed_ms
            ],
        )?;
        audit::append(&tx, signer, "note.amend", Some(id), &purpose)?;
        tx.commit()?;
        Ok(addendum)
    }

    /// A signed note's addenda, oldest first.
    pub fn addenda(&mut self, by: &Actor, id: &str, purpose: &str) -> Result<Vec<Addendum>, StoreError> {
        let tx = self.write_tx()?;
        let purpose = authorize(&tx, by, id, Use::Read, "read the addenda", purpose)?;
        let addenda = {
            let mut stmt = tx.prepare(
                "SELECT seq, canonical_text, sha256, signature, key_id, signer, signed_ms
                 FROM addenda WHERE encounter_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([id], |r| {
                let canonical_text: String = r.get(1)?;
                Ok(Addendum {
                    encounter_id: id.into(),
                    seq: r.get(0)?,
                    text: addendum_body(&canonical_text),
                    canonical_text,
                    sha256: r.get(2)?,
                    signature: r.get(3)?,
                    key_id: r.get(4)?,
                    signer: r.get(5)?,
                    signed_ms: r.get(6)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        if !addenda.is_empty() {
            audit::append(&tx, by, "addenda.read", Some(id), &purpose)?;
        }
        tx.commit()?;
        Ok(addenda)
    }

    /// The signed note and the draft it was made from, checked to be the same: the signature must
    /// verify and the draft must derive the signed text again exactly. Pages and exports show this draft, so what they show
    /// is what was signed; a draft changed in the database after signing is refused, not shown.
    pub fn signed_draft(
        &mut self,
        by: &Actor,
        id: &str,
        purpose: &str,
    ) -> Result<Option<(SignedNote, Draft)>, StoreError> {
        let Some(note) = self.signed_note(by, id, purpose)? else {
            return Ok(None);
        };
        let (_, draft) = self
            .draft_version(by, id, note.draft_version, purpose)?
            .ok_or_else(|| StoreError::NoDraft(id.into()))?;
        let version = note
            .canonical_text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("scribe-signed-note v"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let derived = canonical_text_of_version(
            version,
            &note.encounter_id,
            note.draft_version,
            &draft,
            &note.signer,
            note.signed_ms,
        );
        let verified = matches!(self.check_signatures(&note, &[])?, Verification::Valid { .. });
        if !verified || derived.as_deref() != Some(note.canonical_text.as_str()) {
            return Err(StoreError::Corrupt(format!(
                "the stored draft of {id} no longer matches the note that was signed; it is not shown (see `scribe verify {id}`)"
            )));
        }
        Ok(Some((note, draft)))
    }

    /// Re-hashes the stored signed note and its addenda and checks their signatures with the
    /// appliance's key.
    pub fn verify(&mut self, by: &Actor, id: &str) -> Result<Verification, StoreError> {
        self.encounter(id)?;
        let note = self
            .signed_note(by, id, "verification")?
            .ok_or_else(|| StoreError::NotSigned(id.into()))?;
        let addenda = self.addenda(by, id, "verification")?;
        self.check_signatures(&note, &addenda)
    }

    /// Verifies a signed note and its addenda already read (and audited) by the caller: each
    /// text must hash to its stored SHA-256 and carry a valid signature by the appliance's key.
    pub fn check_signatures(&self, note: &SignedNote, addenda: &[Addendum]) -> Result<Verification, StoreError> {
        let public: Vec<u8> =
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'signing_public_key'", [], |r| {
                    r.get(0)
                })?;
        let key = signature::UnparsedPublicKey::new(&signature::ED25519, &public);
        let sealed = std::iter::once((&note.canonical_text, &note.sha256, &note.signature, &note.key_id)).chain(
            addenda
                .iter()
                .map(|a| (&a.canonical_text, &a.sha256, &a.signature, &a.key_id)),
        );
        for (text, sha256, sig, kid) in sealed {
            let actual = hex::encode(Sha256::digest(text.as_bytes()));
            if actual != *sha256 {
                return Ok(Verification::HashMismatch {
                    expected: sha256.clone(),
                    actual,
                });
            }
            let sig = hex::decode(sig).unwrap_or_default();
            if *kid != key_id(&public) || key.verify(text.as_bytes(), &sig).is_err() {
                return Ok(Verification::BadSignature);
            }
        }
        Ok(Verification::Valid {
            signer: note.signer.clone(),
            key_id: note.key_id.clone(),
            sha256: note.sha256.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_651_200_000), "2026-11-26T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    /// A store in `dir` with physician drbob and one typed visit of one clinician segment.
    fn visit_for_drbob(dir: &std::path::Path, said: &str) -> (Store, Actor, String) {
        let mut store = Store::create(&dir.join("scribe.db"), &dir.join("scribe.key")).unwrap();
        store
            .add_user(
                &Actor::system("test"),
                "drbob",
                crate::Role::Physician,
                "correct horse drbob",
            )
            .unwrap();
        let doctor = Actor {
            name: "drbob".into(),
            role: crate::Role::Physician,
            source: None,
        };
        let transcript = protocol::Transcript {
            segments: vec![protocol::Segment {
                id: 1,
                start_ms: 0,
                end_ms: 1000,
                speaker: protocol::Speaker::Clinician,
                text: said.into(),
                confidence: 0.9,
                words: Vec::new(),
            }],
        };
        let id = store
            .create_transcript_encounter(&doctor, &crate::NewEncounter::default(), &transcript)
            .unwrap();
        (store, doctor, id)
    }

    fn one_sentence(template: &str, section: &str, text: &str) -> Draft {
        Draft::new(
            template,
            vec![protocol::Section {
                name: section.into(),
                sentences: vec![protocol::Sentence::new(text, vec![1])],
            }],
        )
    }

    #[test]
    fn patient_instructions_join_the_draft_and_are_signed_with_the_note() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, doctor, id) = visit_for_drbob(dir.path(), "Take ibuprofen 400 milligrams twice a day.");
        let pipeline = Actor::system("pipeline");
        let note = one_sentence("soap", "Plan", "Ibuprofen 400 mg twice daily.");
        store.save_draft(&pipeline, &id, &note, "llm").unwrap();
        // A reviewer's edit made before the instructions arrive is kept under them.
        let mut edited = one_sentence("soap", "Plan", "Ibuprofen 400 mg BID.");
        edited.sections[0].sentences[0].edited_by = Some("drbob".into());
        store.save_edited_draft(&doctor, &id, 1, &edited).unwrap();
        let instructions = one_sentence(
            "patient-instructions",
            "Your medicines",
            "Take ibuprofen 400 milligrams twice a day.",
        );
        assert_eq!(
            store
                .add_patient_instructions(&pipeline, &id, &instructions, "llm")
                .unwrap(),
            3
        );
        let (_, latest) = store.latest_draft(&doctor, &id, "test").unwrap().unwrap();
        assert_eq!(latest.sections, edited.sections);
        assert_eq!(latest.patient_instructions.as_deref(), Some(&instructions));
        assert!(
            store
                .add_patient_instructions(&pipeline, &id, &instructions, "llm")
                .is_err(),
            "only once"
        );
        // An edit may change their words, not drop them.
        let mut dropped = latest.clone();
        dropped.patient_instructions = None;
        assert!(matches!(
            store.save_edited_draft(&doctor, &id, 3, &dropped),
            Err(StoreError::Invalid(_))
        ));

        let signed = store.sign(&doctor, &id).unwrap();
        let text = &signed.canonical_text;
        assert!(text.starts_with("scribe-signed-note v3\n"), "{text}");
        assert!(
            text.contains("- Ibuprofen 400 mg BID. [S1]\n  edited-by: drbob\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "\n# Patient instructions\ntemplate: patient-instructions\n\n## Your medicines\n\
                 - Take ibuprofen 400 milligrams twice a day. [S1]\n"
            ),
            "{text}"
        );
        assert!(matches!(
            store.verify(&doctor, &id).unwrap(),
            Verification::Valid { .. }
        ));
        assert!(matches!(
            store.add_patient_instructions(&pipeline, &id, &instructions, "llm"),
            Err(StoreError::WrongState { .. })
        ));
    }

    #[test]
    fn open_flags_block_signing_until_acknowledged_and_the_signed_text_records_the_review() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, doctor, id) = visit_for_drbob(dir.path(), "Take ibuprofen twice a day.");
        let mut note = one_sentence("soap", "Plan", "Ibuprofen 800 mg twice daily.");
        note.sections[0].sentences[0].flags =
            vec![protocol::Flag::new(protocol::FlagKind::UnsupportedNumber, "800".into())];
        store.save_draft(&Actor::system("pipeline"), &id, &note, "llm").unwrap();
        let refused = store.sign(&doctor, &id).unwrap_err();
        assert!(matches!(refused, StoreError::OpenFlags { open: 1, .. }), "{refused}");
        assert_eq!(store.encounter(&id).unwrap().state, State::AwaitingReview);

        // Nobody may clear a flag of a sentence they left as it was, or acknowledge in another's name.
        let mut cleared = note.clone();
        cleared.sections[0].sentences[0].flags.clear();
        assert!(matches!(
            store.save_edited_draft(&doctor, &id, 1, &cleared),
            Err(StoreError::Invalid(_))
        ));
        let mut forged = note.clone();
        forged.sections[0].sentences[0].flags[0].acknowledged_by = Some("drjane".into());
        assert!(matches!(
            store.save_edited_draft(&doctor, &id, 1, &forged),
            Err(StoreError::Invalid(_))
        ));
        let mut pre_acknowledged = note.clone();
        pre_acknowledged.sections[0].sentences[0].flags.push(protocol::Flag {
            acknowledged_by: Some("drbob".into()),
            ..protocol::Flag::new(protocol::FlagKind::UnsupportedClaim, "made up".into())
        });
        assert!(matches!(
            store.save_edited_draft(&doctor, &id, 1, &pre_acknowledged),
            Err(StoreError::Invalid(_))
        ));
        let mut unmarked = note.clone();
        unmarked.sections[0].sentences[0].text = "Ibuprofen twice daily.".into();
        assert!(matches!(
            store.save_edited_draft(&doctor, &id, 1, &unmarked),
            Err(StoreError::Invalid(_))
        ));

        note.sections[0].sentences[0].flags[0].acknowledged_by = Some("drbob".into());
        store.save_edited_draft(&doctor, &id, 1, &note).unwrap();

        let signed = store.sign(&doctor, &id).unwrap();
        assert!(
            signed.canonical_text.starts_with("scribe-signed-note v3\n"),
            "{}",
            signed.canonical_text
        );
        assert!(
            signed.canonical_text.ends_with(
                "## Plan\n- Ibuprofen 800 mg twice daily. [S1]\n  \
                 flag: unsupported_number \"800\" acknowledged-by: drbob\n"
            ),
            "{}",
            signed.canonical_text
        );
        assert!(matches!(
            store.verify(&doctor, &id).unwrap(),
            Verification::Valid { .. }
        ));
    }

    /// An edited sentence holding line breaks wrote lines into the signed text that looked like
    /// the note's own structure (a section of its own, a sentence that was never there). v4
    /// writes every text on one line, and the draft still derives the signed text again.
    #[test]
    fn a_line_break_in_a_sentence_cannot_forge_the_signed_texts_structure() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, doctor, id) = visit_for_drbob(dir.path(), "Rest at home.");
        let note = one_sentence("soap", "Plan", "Rest at home.");
        store.save_draft(&Actor::system("pipeline"), &id, &note, "llm").unwrap();
        let mut edited = note.clone();
        let forged = "Rest.\n\n## Plan\n- Oxycodone 80 mg every 4 hours. [S1]\r\\";
        edited.sections[0].sentences[0].text = forged.into();
        edited.sections[0].sentences[0].edited_by = Some("drbob".into());
        store.save_edited_draft(&doctor, &id, 1, &edited).unwrap();

        let signed = store.sign(&doctor, &id).unwrap();
        let text = &signed.canonical_text;
        assert!(text.starts_with("scribe-signed-note v4\n"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("## ")).count(), 1, "{text}");
        assert!(
            text.contains(
                "- Rest.\\n\\n## Plan\\n- Oxycodone 80 mg every 4 hours. [S1]\\r\\\\ [S1]\n  edited-by: drbob\n"
            ),
            "{text}"
        );
        let (_, shown) = store.signed_draft(&doctor, &id, "review").unwrap().unwrap();
        assert_eq!(shown.sections[0].sentences[0].text, forged);
        assert!(matches!(
            store.verify(&doctor, &id).unwrap(),
            Verification::Valid { .. }
        ));
    }

    #[test]
    fn a_note_without_instructions_keeps_the_v1_text() {
        let note = one_sentence("soap", "Plan", "Rest.");
        let text = canonical_text_for("e1", 1, &note, "drbob", 0);
        assert_eq!(
            text,
            "scribe-signed-note v1\nencounter: e1\ndraft-version: 1\ntemplate: soap\nsigner: drbob\n\
             signed-at: 1970-01-01T00:00:00Z\n\n## Plan\n- Rest. [S1]\n"
        );
    }
}
