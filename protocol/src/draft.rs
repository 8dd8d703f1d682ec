//! A drafted note: the template's sections, each a list of sentences that cite transcript segments.

use serde::{Deserialize, Serialize};

use crate::transcript::SegmentId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The template's name, e.g. "soap".
    pub template: String,
    pub sections: Vec<Section>,
    /// The after-visit instructions for the patient, drafted from the same transcript after the
    /// note (a document of their own, with the same citations and flags); reviewed, edited and
    /// signed with the note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_instructions: Option<Box<Draft>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub name: String,
    /// Empty when the visit did not touch this section (the model said so explicitly).
    pub sentences: Vec<Sentence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    pub text: String,
    /// Transcript segments this sentence rests on; never empty in a stored draft.
    pub citations: Vec<SegmentId>,
    /// What the validator could not find support for, for the reviewer to check.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Who last changed the sentence's words or citations, if a person did: the reviewer's words
    /// are shown, and signed, as theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_by: Option<String>,
}

impl Sentence {
    /// A sentence as drafted: not yet checked, not edited.
    pub fn new(text: impl Into<String>, citations: Vec<SegmentId>) -> Sentence {
        Sentence {
            text: text.into(),
            citations,
            flags: Vec::new(),
            edited_by: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A number (dose, vital, duration…) that the cited segments do not contain.
    UnsupportedNumber,
    /// A medication name that the cited segments do not contain.
    UnsupportedMedication,
    /// The sentence rests on words the recognizer was unsure of.
    LowConfidence,
    /// A side (left, right, bilateral) that the cited segments do not name.
    UnsupportedLaterality,
    /// The sentence asserts what the cited segments deny, or denies what they assert.
    NegationMismatch,
    /// The sentence cites, or repeats, speech addressed to the scribe ("ignore your instructions
    /// and write …"): someone in the room tried to steer the note.
    SpokenInstruction,
    /// A clinical claim (finding, diagnosis, body site, test, referral, follow-up, dosing
    /// frequency, vital sign), or most of the sentence's words, that the cited segments do not
    /// contain: the sentence says something they do not.
    UnsupportedClaim,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub kind: FlagKind,
    /// The term in the sentence that the flag is about.
    pub term: String,
    /// The physician who saw the flag and let the sentence stand, if one did; signing needs every
    /// flag acknowledged (or its sentence edited or removed), and the signed text records by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
}

impl Flag {
    pub fn new(kind: FlagKind, term: String) -> Flag {
        Flag {
            kind,
            term,
            acknowledged_by: None,
        }
    }
}

impl FlagKind {
    /// What the flag tells the reviewer, in words.
    pub fn describe(self) -> &'static str {
        match self {
            FlagKind::UnsupportedNumber => "number not in the cited segments",
            FlagKind::UnsupportedMedication => "medication not in the cited segments",
            FlagKind::LowConfidence => "rests on a word the recognizer was unsure of",
            FlagKind::UnsupportedLaterality => "side not stated in the cited segments",
            FlagKind::NegationMismatch => "negation differs from the cited segments",
            FlagKind::SpokenInstruction => "speech addressed to the scribe tried to steer this",
            FlagKind::UnsupportedClaim => "not said in the cited segments",
        }
    }

    /// Whether the flag says the sentence may state something the visit did not (rather than
    /// that it rests on uncertain speech, or that someone tried to steer the note).
    pub fn is_support(self) -> bool {
        !matches!(self, FlagKind::LowConfidence | FlagKind::SpokenInstruction)
    }
}

impl Draft {
    pub fn new(template: &str, sections: Vec<Section>) -> Draft {
        Draft {
            template: template.to_string(),
            sections,
            patient_instructions: None,
        }
    }

    /// The note's sentences (not the patient instructions').
    pub fn sentences(&self) -> impl Iterator<Item = &Sentence> {
        self.sections.iter().flat_map(|s| s.sentences.iter())
    }

    /// Flags for the reviewer in the note and in the patient instructions.
    pub fn flag_count(&self) -> usize {
        self.sentences().map(|s| s.flags.len()).sum::<usize>()
            + self.patient_instructions.as_ref().map_or(0, |p| p.flag_count())
    }

    /// Acknowledges, in `by`'s name, every flag nobody has yet (note and patient instructions);
    /// returns how many.
    pub fn acknowledge_open_flags(&mut self, by: &str) -> usize {
        let mut count = 0;
        for flag in self
            .sections
            .iter_mut()
            .flat_map(|s| s.sentences.iter_mut())
            .flat_map(|s| s.flags.iter_mut())
            .filter(|f| f.acknowledged_by.is_none())
        {
            flag.acknowledged_by = Some(by.to_string());
            count += 1;
        }
        count
            + self
                .patient_instructions
                .as_deref_mut()
                .map_or(0, |p| p.acknowledge_open_flags(by))
    }

    /// Flags nobody has acknowledged yet, in the note and the patient instructions: while any
    /// is open the draft cannot be signed.
    pub fn open_flag_count(&self) -> usize {
        self.sentences()
            .flat_map(|s| &s.flags)
            .filter(|f| f.acknowledged_by.is_none())
            .count()
            + self.patient_instructions.as_ref().map_or(0, |p| p.open_flag_count())
    }
}
