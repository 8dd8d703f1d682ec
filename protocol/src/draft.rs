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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub kind: FlagKind,
    /// The term in the sentence that the flag is about.
    pub term: String,
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
}
