//! ACI-Bench (Yim et al., Scientific Data 2023, CC BY 4.0): doctor–patient dialogues with the note a
//! clinician wrote for each. Files `{train,valid}.csv` with columns `dataset, encounter_id,
//! dialogue, note`.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Encounter {
    pub dataset: String,
    pub encounter_id: String,
    pub dialogue: String,
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read ACI-Bench split {path}: {why}")]
pub struct LoadError {
    pub path: String,
    pub why: String,
}

pub fn load(dir: &Path, split: &str) -> Result<Vec<Encounter>, LoadError> {
    let path = dir.join(format!("{split}.csv"));
    let error = |why: String| LoadError {
        path: path.display().to_string(),
        why,
    };
    let mut reader = csv::Reader::from_path(&path).map_err(|e| error(e.to_string()))?;
    reader
        .deserialize()
        .collect::<Result<Vec<Encounter>, _>>()
        .map_err(|e| error(e.to_string()))
}

/// The four parts of an ACI-Bench note, in the order of the `aci` template's sections.
pub const PARTS: [&str; 4] = [
    "Subjective",
    "Objective Exam",
    "Objective Results",
    "Assessment and Plan",
];

/// Which part a reference-note heading opens; `None` for headings inside a part (e.g. "HIV").
fn part_of(heading: &str) -> Option<usize> {
    let h = heading.trim_end_matches(':').trim();
    const SUBJECTIVE: &[&str] = &[
        "CHIEF COMPLAINT",
        "CC",
        "HISTORY OF PRESENT ILLNESS",
        "HPI",
        "REVIEW OF SYSTEMS",
        "ROS",
        "MEDICAL HISTORY",
        "PAST HISTORY",
        "PAST MEDICAL HISTORY",
        "SURGICAL HISTORY",
        "PAST SURGICAL HISTORY",
        "SOCIAL HISTORY",
        "FAMILY HISTORY",
        "MEDICATIONS",
        "CURRENT MEDICATIONS",
        "ALLERGIES",
        "BIRTH HISTORY",
    ];
    const EXAM: &[&str] = &[
        "PHYSICAL EXAM",
        "PHYSICAL EXAMINATION",
        "EXAM",
        "VITALS",
        "VITALS REVIEWED",
        "VITAL SIGNS",
    ];
    const RESULTS: &[&str] = &["RESULTS", "IMAGING", "LABS", "LABORATORY"];
    const PLAN: &[&str] = &[
        "ASSESSMENT AND PLAN",
        "ASSESSMENT",
        "PLAN",
        "IMPRESSION",
        "INSTRUCTIONS",
        "PROCEDURE",
    ];
    [SUBJECTIVE, EXAM, RESULTS, PLAN]
        .iter()
        .position(|names| names.contains(&h))
}

/// Splits a reference note into the four parts, dropping the headings themselves.
pub fn reference_parts(note: &str) -> [String; 4] {
    let mut parts: [String; 4] = Default::default();
    let mut current = 0;
    for line in note.lines() {
        let trimmed = line.trim();
        if let Some(p) = part_of(trimmed).filter(|_| trimmed.chars().all(|c| !c.is_lowercase())) {
            current = p;
            continue;
        }
        if !trimmed.is_empty() {
            parts[current].push_str(trimmed);
            parts[current].push('\n');
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_notes_split_into_the_four_parts() {
        let note = "CHIEF COMPLAINT\n\nKnee pain.\n\nREVIEW OF SYSTEMS\n\n• MSK: knee pain.\n\nPHYSICAL EXAM\n\nSwelling.\n\n\
                    RESULTS\n\nX-ray normal.\n\nASSESSMENT AND PLAN\n\nSprain.\n\nINSTRUCTIONS\n\nIce it.\n";
        let parts = reference_parts(note);
        assert_eq!(parts[0], "Knee pain.\n• MSK: knee pain.\n");
        assert_eq!(parts[1], "Swelling.\n");
        assert_eq!(parts[2], "X-ray normal.\n");
        assert_eq!(parts[3], "Sprain.\nIce it.\n");
    }
}
