//! A transcript: timed segments of speech, each with its speaker role and per-word confidence.

use serde::{Deserialize, Serialize};

/// A segment's id within its encounter's transcript. Ids start at 1 and are what note sentences
/// cite (`[S3]`).
pub type SegmentId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Clinician,
    Patient,
    Unknown,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Clinician => "clinician",
            Speaker::Patient => "patient",
            Speaker::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Speaker> {
        match s {
            "clinician" => Some(Speaker::Clinician),
            "patient" => Some(Speaker::Patient),
            "unknown" => Some(Speaker::Unknown),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The recognizer's probability for this word, 0..=1 (1 for typed transcripts).
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub id: SegmentId,
    pub start_ms: u64,
    pub end_ms: u64,
    pub speaker: Speaker,
    pub text: String,
    /// Mean word confidence.
    pub confidence: f32,
    #[serde(default)]
    pub words: Vec<Word>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub segments: Vec<Segment>,
}

impl Transcript {
    pub fn segment(&self, id: SegmentId) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id == id)
    }

    pub fn word_count(&self) -> usize {
        self.segments.iter().map(|s| s.text.split_whitespace().count()).sum()
    }
}
