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

/// Checks every sentence of a drafted document against the segments it cites, after giving each
/// sentence the neighbouring segments that hold what it says (see [`recited`]).
pub fn validate(draft: &mut Draft, transcript: &Transcript) -> Result<(), ValidationError> {
    let steering = crate::steering::spoken_instructions(transcript);
    for section in &mut draft.sections {
        for (i, sentence) in section.sentences.iter_mut().enumerate() {
            let flags = checked(sentence, transcript, &steering).map_err(|e| match e {
                CitationError::Uncited => ValidationError::Uncited {
                    section: section.name.clone(),
                    sentence: i + 1,
                },
                CitationError::UnknownSegment(segment) => ValidationError::UnknownSegment {
                    section: section.name.clone(),
                    sentence: i + 1,
                    segment,
                },
            })?;
            sentence.flags = flags;
            recited(sentence, transcript, &steering);
        }
    }
    Ok(())
}

/// A small model cites the segment next to the one that says a thing as often as the right one
/// ("…it started monday" [S4] where S5 says "monday"). Where a support flag would go away by also
/// citing a segment at most three away from a cited one, the sentence cites it too (the one that
/// removes most flags first, while each addition removes one, up to six citations). The sentence
/// then rests on segments that say what it says; what no nearby segment says stays flagged.
fn recited(sentence: &mut Sentence, transcript: &Transcript, steering: &[crate::SpokenInstruction]) {
    const REACH: u32 = 3;
    const MOST: usize = 6;
    let support_flags = |flags: &[Flag]| flags.iter().filter(|f| f.kind.is_support()).count();
    while support_flags(&sentence.flags) > 0 && sentence.citations.len() < MOST {
        let mut candidates: Vec<SegmentId> = sentence
            .citations
            .iter()
            .flat_map(|&c| (1..=REACH).flat_map(move |d| [c.saturating_sub(d), c.saturating_add(d)]))
            .filter(|id| *id > 0 && !sentence.citations.contains(id) && transcript.segment(*id).is_some())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let best = candidates
            .into_iter()
            .filter_map(|id| {
                let mut trial = sentence.clone();
                trial.citations.push(id);
                trial.citations.sort_unstable();
                let flags = checked(&trial, transcript, steering).ok()?;
                (support_flags(&flags) < support_flags(&sentence.flags)).then_some((
                    support_flags(&flags),
                    trial.citations,
                    flags,
                ))
            })
            .min_by_key(|(n, _, _)| *n);
        let Some((_, citations, flags)) = best else {
            break;
        };
        sentence.citations = citations;
        sentence.flags = flags;
    }
}

/// What is wrong with a sentence's citations, so that it cannot be checked at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CitationError {
    #[error("the sentence cites no transcript segment")]
    Uncited,
    #[error("the sentence cites segment S{0}, which does not exist")]
    UnknownSegment(SegmentId),
}

/// The flags one sentence earns against the segments it cites: the same check a drafted sentence
/// gets, for a sentence a person wrote or changed.
pub fn check_sentence(sentence: &Sentence, transcript: &Transcript) -> Result<Vec<Flag>, CitationError> {
    checked(sentence, transcript, &crate::steering::spoken_instructions(transcript))
}

fn checked(
    sentence: &Sentence,
    transcript: &Transcript,
    steering: &[crate::SpokenInstruction],
) -> Result<Vec<Flag>, CitationError> {
    if sentence.citations.is_empty() {
        return Err(CitationError::Uncited);
    }
    let cited = sentence
        .citations
        .iter()
        .map(|&id| transcript.segment(id).ok_or(CitationError::UnknownSegment(id)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut flags = flags_for(sentence, &cited);
    if let Some(phrase) = steered_by(sentence, steering) {
        flags.push(Flag::new(FlagKind::SpokenInstruction, phrase));
    }
    Ok(flags)
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
            flags.push(Flag::new(FlagKind::UnsupportedNumber, n));
        }
    }
    let source_quantities = crate::numbers::quantities(&source);
    for (n, unit) in crate::numbers::quantities(&sentence.text) {
        let source_units: Vec<&str> = source_quantities
            .iter()
            .filter(|(m, _)| *m == n)
            .map(|(_, u)| *u)
            .collect();
        // "4 weeks" where the segments said "four days".
        if !source_units.is_empty() && !source_units.contains(&unit) && seen.insert(format!("{n} {unit}")) {
            flags.push(Flag::new(FlagKind::UnsupportedNumber, format!("{n} {unit}s")));
        }
    }
    // "several years" where the segments only spoke of months.
    let source_units = crate::numbers::duration_units(&source);
    if !source_units.is_empty() {
        for unit in crate::numbers::duration_units(&sentence.text) {
            if !source_units.contains(&unit) && seen.insert(format!("{unit}s")) {
                flags.push(Flag::new(FlagKind::UnsupportedNumber, format!("{unit}s")));
            }
        }
    }
    // A dose that the segments gave, but for another drug: "lisinopril 20 mg" where 20 mg was
    // the Lasix.
    let source_doses = doses(&source);
    for (drug, numbers) in doses(&sentence.text) {
        let said: Vec<&String> = source_doses
            .iter()
            .filter(|(d, _)| crate::medications::named_in(&drug, &HashSet::from([d.clone()])))
            .flat_map(|(_, n)| n)
            .collect();
        for n in numbers {
            if !said.is_empty() && !said.contains(&&n) && seen.insert(format!("{drug} {n}")) {
                flags.push(Flag::new(FlagKind::UnsupportedNumber, format!("{drug} {n}")));
            }
        }
    }
    for w in words(&sentence.text) {
        if is_medication(&w) && !crate::medications::named_in(&w, &source_words) && seen.insert(w.clone()) {
            flags.push(Flag::new(FlagKind::UnsupportedMedication, w));
        }
    }
    let sentence_words: HashSet<String> = words(&sentence.text).collect();
    let both_sides = ["both", "bilateral", "bilaterally"]
        .iter()
        .any(|w| source_words.contains(*w))
        || (source_words.contains("left") && source_words.contains("right"));
    // "right away", "all right", "that's right" name no side.
    let sides_named: HashSet<String> = sides(&sentence.text);
    for side in ["left", "right", "bilateral", "bilaterally"] {
        let said = source_words.contains(side) || (side.starts_with("bilateral") && both_sides);
        if sides_named.contains(side) && !said && seen.insert(side.to_string()) {
            flags.push(Flag::new(FlagKind::UnsupportedLaterality, side.into()));
        }
    }
    // Which part of a structure: "medial epicondyle" where the segments said "lateral".
    for direction in [
        "medial",
        "lateral",
        "anterior",
        "posterior",
        "proximal",
        "distal",
        "superior",
        "inferior",
        "dorsal",
        "volar",
        "plantar",
        "palmar",
    ] {
        if sentence_words.contains(direction) && !source_words.contains(direction) && seen.insert(direction.to_string())
        {
            flags.push(Flag::new(FlagKind::UnsupportedLaterality, direction.into()));
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
            flags.push(Flag::new(FlagKind::NegationMismatch, term));
        }
    }
    for flag in crate::support::unsupported(&sentence.text, cited) {
        if seen.insert(flag.term.clone()) {
            flags.push(flag);
        }
    }
    for word in cited.iter().flat_map(|s| &s.words) {
        let w = word.text.trim().to_lowercase();
        let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_string();
        if word.confidence < LOW_CONFIDENCE && w.len() > 2 && sentence_words.contains(&w) && seen.insert(w.clone()) {
            flags.push(Flag::new(FlagKind::LowConfidence, w));
        }
    }
    flags
}

/// Removes sentences that only state vital-sign readings, one of which the visit never gave ("BP
/// 120/80, HR 65." where no reading was spoken): a flag is not enough for a value nobody stated.
/// Returns how many. A reading the transcript gives (in digits or words) stays, flagged if its
/// citations miss it; a sentence that also says something else ("Temp 102, cough for 5 days")
/// stays, flagged, so nothing else is lost.
pub fn drop_unstated_readings(draft: &mut Draft, transcript: &Transcript) -> usize {
    let text: String = transcript.segments.iter().map(|s| format!("{}. ", s.text)).collect();
    let stated = crate::support::vital_readings(&text);
    let mut dropped = 0;
    let mut documents: Vec<&mut Draft> = vec![draft];
    while let Some(doc) = documents.pop() {
        for section in &mut doc.sections {
            section.sentences.retain(|s| {
                let invented = s.flags.iter().any(|f| f.kind == FlagKind::UnsupportedNumber)
                    && crate::support::vital_readings(&s.text)
                        .iter()
                        .any(|reading| !stated.contains(reading))
                    && crate::facts(&s.text)
                        .iter()
                        .all(|f| f.kind == crate::FactKind::Concept(crate::ConceptKind::Vital));
                dropped += usize::from(invented);
                !invented
            });
        }
        if let Some(p) = doc.patient_instructions.as_deref_mut() {
            documents.push(p);
        }
    }
    dropped
}

/// The sides a text names: "left", "right", "bilateral(ly)", but not the "right" of "right away",
/// "all right", "that's right", "right now".
fn sides(text: &str) -> HashSet<String> {
    let tokens: Vec<String> = words(text).collect();
    let mut out = HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        if !matches!(t.as_str(), "left" | "right" | "bilateral" | "bilaterally") {
            continue;
        }
        let next = tokens.get(i + 1).map(String::as_str);
        let previous = i.checked_sub(1).map(|p| tokens[p].as_str());
        let idiom = t == "right"
            && (matches!(
                next,
                Some("away" | "now" | "here" | "there" | "after" | "before" | "then" | "back")
            ) || matches!(previous, Some("all" | "s" | "is" | "that" | "you" | "re" | "exactly")));
        if !idiom {
            out.insert(t.clone());
        }
    }
    out
}

/// Each medication named in `text` with the amounts (in mg, mcg, units…) said in the few words
/// after it, before the next medication: its dose.
pub(crate) fn doses(text: &str) -> Vec<(String, Vec<String>)> {
    const REACH: usize = 6;
    let tokens: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == ','))
        .map(|t| t.trim_matches(['.', ',']).to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !is_medication(t) {
            continue;
        }
        let end = tokens[i + 1..]
            .iter()
            .position(|w| is_medication(w))
            .map_or(tokens.len(), |p| i + 1 + p)
            .min(i + 1 + REACH);
        let numbers = crate::numbers::amounts(&tokens[i + 1..end].join(" "));
        if !numbers.is_empty() {
            out.push((t.clone(), numbers));
        }
    }
    out
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

pub(crate) fn is_stopword(w: &str) -> bool {
    const STOP: &[&str] = &[
        "that", "this", "with", "have", "has", "been", "were", "your", "they", "them", "there", "their", "about",
        "what", "when", "which", "would", "could", "should", "some", "also", "does", "just", "like", "from", "into",
        "will", "then", "than", "very", "much", "more", "okay", "yeah", "well", "know", "think", "patient", "reports",
        "states", "said", "says", "feel", "feels", "feeling", "today", "since", "because", "other", "after", "before",
        "and", "but", "the", "for", "nor", "any", "are", "was", "had",
    ];
    STOP.contains(&w)
}

pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Medications by name (`lexicon/medications.txt`, and a few more below), and the stems that most
/// generic drug names end in.
pub(crate) fn is_medication(word: &str) -> bool {
    if crate::medications::is_known(word) {
        return true;
    }
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
        "platin",
        "taxel",
        "rubicin",
        "tinib",
        "trigine",
        "racetam",
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
                sentences: vec![Sentence::new(text, citations)],
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
            segments: vec![seg(1, "take lisinopril ten milligrams daily"), seg(5, "hello")],
        };
        let mut d = draft("Lisinopril 20 mg and atorvastatin daily.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert_eq!(
            kinds(&d),
            [
                (FlagKind::UnsupportedNumber, "20".to_string()),
                (FlagKind::UnsupportedNumber, "lisinopril 20".to_string()),
                (FlagKind::UnsupportedMedication, "atorvastatin".to_string())
            ]
        );
        // Support must come from the *cited* segment (or one next to it), not from anywhere in the
        // transcript.
        let mut d = draft("Lisinopril daily.", vec![5]);
        validate(&mut d, &t).unwrap();
        assert_eq!(
            kinds(&d),
            [
                (FlagKind::UnsupportedMedication, "lisinopril".to_string()),
                (FlagKind::UnsupportedClaim, "daily".to_string())
            ]
        );
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
    fn a_neighbouring_segment_that_says_it_is_cited_too() {
        let t = Transcript {
            segments: vec![
                seg(1, "how long has the knee hurt?"),
                seg(2, "since monday. it's swollen too."),
                seg(3, "take ibuprofen 400 milligrams."),
                seg(4, "good morning."),
            ],
        };
        let mut d = draft("Knee pain since Monday with swelling.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert_eq!(d.sections[0].sentences[0].citations, vec![1, 2]);
        assert!(kinds(&d).is_empty(), "{:?}", kinds(&d));
        // What no nearby segment says stays flagged, and the citations stay as they were.
        let mut d = draft("Referral to cardiology.", vec![4]);
        validate(&mut d, &t).unwrap();
        assert_eq!(d.sections[0].sentences[0].citations, vec![4]);
        assert!(!kinds(&d).is_empty());
    }

    #[test]
    fn right_away_names_no_side() {
        let t = Transcript {
            segments: vec![seg(1, "call us if the chest pain comes back")],
        };
        let mut d = draft("If the chest pain comes back, call right away.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert!(
            !kinds(&d).iter().any(|(k, _)| *k == FlagKind::UnsupportedLaterality),
            "{:?}",
            kinds(&d)
        );
        let mut d = draft("Right chest pain.", vec![1]);
        validate(&mut d, &t).unwrap();
        assert!(kinds(&d).contains(&(FlagKind::UnsupportedLaterality, "right".into())));
    }

    #[test]
    fn a_reading_nobody_gave_is_not_written() {
        let t = Transcript {
            segments: vec![
                seg(
                    1,
                    "your vital signs look really good, blood pressure and heart rate are fine",
                ),
                seg(2, "your temperature was ninety eight point six"),
            ],
        };
        let mut d = draft("Blood pressure 120/80, heart rate 65.", vec![1]);
        d.sections[0]
            .sentences
            .push(Sentence::new("Temperature 98.6.", vec![2]));
        d.sections[0]
            .sentences
            .push(Sentence::new("Temperature 102 with a cough.", vec![2]));
        validate(&mut d, &t).unwrap();
        assert_eq!(drop_unstated_readings(&mut d, &t), 1);
        let texts: Vec<&str> = d.sentences().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["Temperature 98.6.", "Temperature 102 with a cough."]);
        assert!(
            !d.sections[0].sentences[1].flags.is_empty(),
            "the other reading stays flagged"
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
