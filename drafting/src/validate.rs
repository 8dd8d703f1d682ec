//! Checks a parsed draft against the transcript it came from.
//!
//! Structural problems (a citation of a segment that does not exist, a sentence without one) reject
//! the draft. Content the cited segments do not support is flagged for the reviewer, never dropped:
//! the physician decides.

use std::collections::HashSet;

use protocol::{Draft, Flag, FlagKind, SegmentId, Sentence, Transcript};

use crate::numbers::numbers_in;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("section {section}, sentence {sentence} cites segment S{segment}, which does not exist")]
    UnknownSegment {
        section: String,
        sentence: usize,
        segment: SegmentId,
    },
    #[error("section {section}, sentence {sentence} cites no transcript segment")]
    Uncited { section: String, sentence: usize },
}

/// A word the recognizer gave less than this probability is "low confidence".
const LOW_CONFIDENCE: f32 = 0.5;

pub fn validate(draft: &mut Draft, transcript: &Transcript) -> Result<(), ValidationError> {
    let steering = crate::steering::spoken_instructions(transcript);
    for section in &mut draft.sections {
        for (i, sentence) in section.sentences.iter_mut().enumerate() {
            if sentence.citations.is_empty() {
                return Err(ValidationError::Uncited {
                    section: section.name.clone(),
                    sentence: i + 1,
                });
            }
            let mut cited = Vec::with_capacity(sentence.citations.len());
            for &id in &sentence.citations {
                let segment = transcript.segment(id).ok_or_else(|| ValidationError::UnknownSegment {
                    section: section.name.clone(),
                    sentence: i + 1,
                    segment: id,
                })?;
                cited.push(segment);
            }
            sentence.flags = flags_for(sentence, &cited);
            if let Some(phrase) = steered_by(sentence, &steering) {
                sentence.flags.push(Flag {
                    kind: FlagKind::SpokenInstruction,
                    term: phrase,
                });
            }
        }
    }
    Ok(())
}

/// Whether a sentence cites speech addressed to the scribe, or repeats a word or number that only
/// such speech said.
fn steered_by(sentence: &Sentence, steering: &[crate::SpokenInstruction]) -> Option<String> {
    let words: HashSet<String> = crate::steering::content_words(&sentence.text).into_iter().collect();
    steering
        .iter()
        .find(|s| sentence.citations.contains(&s.segment) || s.payload.iter().any(|w| words.contains(w)))
        .map(|s| format!("S{}: \"{}\"", s.segment, s.phrase))
}

fn flags_for(sentence: &Sentence, cited: &[&protocol::Segment]) -> Vec<Flag> {
    let source: String = cited.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    let source_numbers: HashSet<String> = numbers_in(&source).into_iter().collect();
    let source_words: HashSet<String> = words(&source).collect();
    let mut flags = Vec::new();
    let mut seen = HashSet::new();
    for n in numbers_in(&sentence.text) {
        if !source_numbers.contains(&n) && seen.insert(n.clone()) {
            flags.push(Flag {
                kind: FlagKind::UnsupportedNumber,
                term: n,
            });
        }
    }
    for w in words(&sentence.text) {
        if is_medication(&w) && !source_words.contains(&w) && seen.insert(w.clone()) {
            flags.push(Flag {
                kind: FlagKind::UnsupportedMedication,
                term: w,
            });
        }
    }
    let sentence_words: HashSet<String> = words(&sentence.text).collect();
    for side in ["left", "right", "bilateral"] {
        if sentence_words.contains(side) && !source_words.contains(side) && seen.insert(side.to_string()) {
            flags.push(Flag {
                kind: FlagKind::UnsupportedLaterality,
                term: side.into(),
            });
        }
    }
    // (affirmed somewhere, negated somewhere) for each finding of the cited text.
    let mut source_findings: std::collections::HashMap<String, (bool, bool)> = std::collections::HashMap::new();
    for (term, negated) in findings(&source) {
        let e = source_findings.entry(term).or_default();
        if negated { e.1 = true } else { e.0 = true }
    }
    for (term, negated) in findings(&sentence.text) {
        let Some(&(affirmed, denied)) = source_findings.get(&term) else {
            continue;
        };
        if !(if negated { denied } else { affirmed }) && seen.insert(term.clone()) {
            flags.push(Flag {
                kind: FlagKind::NegationMismatch,
                term,
            });
        }
    }
    for word in cited.iter().flat_map(|s| &s.words) {
        let w = word.text.trim().to_lowercase();
        let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_string();
        if word.confidence < LOW_CONFIDENCE && w.len() > 2 && sentence_words.contains(&w) && seen.insert(w.clone()) {
            flags.push(Flag {
                kind: FlagKind::LowConfidence,
                term: w,
            });
        }
    }
    flags
}

/// Findings (pairs of adjacent content words: "chest pain") in order, each with whether it is
/// negated ("no chest pain", "denies chest pain", "doesn't smoke cigarettes"). Questions are skipped:
/// "any chest pain?" asserts nothing. Pairs rather than single words, because "no chest pain, but my
/// knee pain…" negates the chest, not every pain.
fn findings(text: &str) -> Vec<(String, bool)> {
    const CUES: &[&str] = &[
        "no", "not", "denies", "denied", "deny", "without", "never", "negative", "none", "nor",
    ];
    const WINDOW: usize = 3;
    let content =
        |t: &str| t.len() >= 3 && !CUES.contains(&t) && !is_stopword(t) && !t.chars().all(|c| c.is_ascii_digit());
    let lower = text.to_lowercase().replace("n't", " not");
    let mut out = Vec::new();
    for clause in lower.split_inclusive(['.', '!', '?', ';', ',']) {
        if clause.trim_end().ends_with('?') {
            continue;
        }
        let tokens: Vec<&str> = clause
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        for (i, pair) in tokens.windows(2).enumerate() {
            if content(pair[0]) && content(pair[1]) {
                let negated = tokens[i.saturating_sub(WINDOW)..i].iter().any(|w| CUES.contains(w));
                out.push((format!("{} {}", pair[0], pair[1]), negated));
            }
        }
    }
    out
}

fn is_stopword(w: &str) -> bool {
    const STOP: &[&str] = &[
        "that", "this", "with", "have", "has", "been", "were", "your", "they", "them", "there", "their", "about",
        "what", "when", "which", "would", "could", "should", "some", "also", "does", "just", "like", "from", "into",
        "will", "then", "than", "very", "much", "more", "okay", "yeah", "well", "know", "think", "patient", "reports",
        "states", "said", "says", "feel", "feels", "feeling", "today", "since", "because", "other", "after", "before",
    ];
    STOP.contains(&w)
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Common medications by name, and the stems that most generic drug names end in.
fn is_medication(word: &str) -> bool {
    const NAMES: &[&str] = &[
        "acetaminophen",
        "tylenol",
        "ibuprofen",
        "advil",
        "motrin",
        "aspirin",
        "naproxen",
        "aleve",
        "insulin",
        "metformin",
        "warfarin",
        "coumadin",
        "heparin",
        "eliquis",
        "apixaban",
        "xarelto",
        "rivaroxaban",
        "plavix",
        "clopidogrel",
        "lasix",
        "furosemide",
        "prednisone",
        "albuterol",
        "gabapentin",
        "tramadol",
        "oxycodone",
        "morphine",
        "hydrocodone",
        "codeine",
        "lipitor",
        "zocor",
        "crestor",
        "synthroid",
        "levothyroxine",
        "amoxicillin",
        "penicillin",
        "augmentin",
        "keflex",
        "cephalexin",
        "bactrim",
        "zithromax",
        "azithromycin",
        "doxycycline",
        "cipro",
        "flonase",
        "zyrtec",
        "claritin",
        "benadryl",
        "singulair",
        "montelukast",
        "nexium",
        "omeprazole",
        "prilosec",
        "pepcid",
        "famotidine",
        "zoloft",
        "sertraline",
        "prozac",
        "fluoxetine",
        "lexapro",
        "escitalopram",
        "wellbutrin",
        "bupropion",
        "xanax",
        "ativan",
        "hydrochlorothiazide",
        "spironolactone",
        "digoxin",
        "nitroglycerin",
        "jardiance",
        "ozempic",
        "trulicity",
        "januvia",
        "glipizide",
        "meloxicam",
        "celebrex",
        "flexeril",
        "cyclobenzaprine",
        "norco",
        "narcan",
        "epinephrine",
        "toradol",
        "steroid",
        "steroids",
    ];
    const STEMS: &[&str] = &[
        "pril",
        "sartan",
        "olol",
        "statin",
        "dipine",
        "cillin",
        "mycin",
        "cycline",
        "floxacin",
        "azole",
        "prazole",
        "tidine",
        "formin",
        "gliptin",
        "gliflozin",
        "glutide",
        "parin",
        "xaban",
        "triptan",
        "azepam",
        "zolam",
        "oxetine",
        "afil",
        "terol",
        "sone",
        "olone",
        "mab",
        "vir",
    ];
    word.len() >= 5 && (NAMES.contains(&word) || STEMS.iter().any(|s| word.ends_with(s) && word.len() > s.len() + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Section, Segment, Speaker, Word};

    fn seg(id: SegmentId, text: &str) -> Segment {
        Segment {
            id,
            start_ms: 0,
            end_ms: 1000,
            speaker: Speaker::Patient,
            text: text.into(),
            confidence: 0.9,
            words: text
                .split_whitespace()
                .map(|w| Word {
                    text: w.into(),
                    start_ms: 0,
                    end_ms: 1,
                    confidence: if w == "metoprolol" { 0.2 } else { 0.9 },
                })
                .collect(),
        }
    }

    fn draft(text: &str, citations: Vec<SegmentId>) -> Draft {
        Draft {
            template: "soap".into(),
            patient_instructions: None,
            sections: vec![Section {
                name: "Plan".into(),
                sentences: vec![Sentence {
                    text: text.into(),
                    citations,
                    flags: vec![],
                }],
            }],
        }
    }

    fn kinds(d: &Draft) -> Vec<(FlagKind, String)> {
        d.sentences()
            .flat_map(|s| s.flags.iter().map(|f| (f.kind, f.term.clone())))
            .collect()
    }

    #[test]
    fn supported_sentence_has_no_flags() {
        let t = Transcript {
            segments: vec![seg(1, "take lisinopril ten milligrams daily for five days")],
        };
        let mut d = draft("Lisinopril 10 mg daily for 5 days.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert!(kinds(&d).is_empty(), "{:?}", kinds(&d));
    }

    #[test]
    fn unsupported_numbers_and_medications_are_flagged() {
        let t = Transcript {
            segments: vec![seg(1, "take lisinopril ten milligrams daily"), seg(2, "hello")],
        };
        let mut d = draft("Lisinopril 20 mg and atorvastatin daily.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert_eq!(
            kinds(&d),
            [
                (FlagKind::UnsupportedNumber, "20".to_string()),
                (FlagKind::UnsupportedMedication, "atorvastatin".to_string())
            ]
        );
        // Support must come from the *cited* segment, not from anywhere in the transcript.
        let mut d = draft("Lisinopril daily.", vec![2]);
        validate(&mut d, &t).unwrap();
        assert_eq!(kinds(&d), [(FlagKind::UnsupportedMedication, "lisinopril".to_string())]);
    }

    #[test]
    fn low_confidence_words_flow_through() {
        let t = Transcript {
            segments: vec![seg(1, "continue metoprolol daily")],
        };
        let mut d = draft("Continue metoprolol.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert_eq!(kinds(&d), [(FlagKind::LowConfidence, "metoprolol".to_string())]);
    }

    #[test]
    fn laterality_and_negation_must_match_the_cited_segments() {
        let t = Transcript {
            segments: vec![
                seg(1, "any chest pain?"),
                seg(2, "no chest pain. my left knee hurts and i don't smoke cigarettes."),
            ],
        };
        let mut ok = draft(
            "Denies chest pain; left knee pain; does not smoke cigarettes.",
            vec![1, 2],
        );
        validate(&mut ok, &t).unwrap();
        assert!(kinds(&ok).is_empty(), "{:?}", kinds(&ok));

        let mut wrong = draft("Right knee pain with chest pain.", vec![1, 2]);
        validate(&mut wrong, &t).unwrap();
        assert_eq!(
            kinds(&wrong),
            [
                (FlagKind::UnsupportedLaterality, "right".to_string()),
                (FlagKind::NegationMismatch, "chest pain".to_string()),
            ]
        );
    }

    #[test]
    fn citations_of_missing_segments_are_rejected() {
        let t = Transcript {
            segments: vec![seg(1, "hello")],
        };
        let mut d = draft("Hello.", vec![1, 7]);
        assert_eq!(
            validate(&mut d, &t),
            Err(ValidationError::UnknownSegment {
                section: "Plan".into(),
                sentence: 1,
                segment: 7
            })
        );
        let mut d = draft("Hello.", vec![]);
        assert!(matches!(validate(&mut d, &t), Err(ValidationError::Uncited { .. })));
    }
}
