//! The clinical facts a text states, read with the same lexicon, number reading and medication
//! names as the support check: what `scribe eval` compares between a visit's transcript, its
//! reference note and the draft.
//!
//! A fact is a kind, a key and (for the kinds that have one) a value: the concept "chest pain",
//! denied; the medication "lisinopril"; the dose of lisinopril, "20"; a vital sign with its
//! reading; a duration in weeks, "4"; a side, "left". What the lexicon does not know is invisible
//! here, so these counts bound, not measure, what a clinician reviewer would find.

use protocol::Transcript;

use crate::support::{ConceptKind, Polarity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FactKind {
    /// A concept of the lexicon: a finding, diagnosis, site, test, referral…
    Concept(ConceptKind),
    Medication,
    Dose,
    Duration,
    Laterality,
}

impl FactKind {
    /// Whether a wrong or invented fact of this kind could change treatment (Asgari et al. 2025
    /// call such errors major): drugs, doses, dosing, diagnoses, tests, referrals, readings, sides.
    pub fn is_major(self) -> bool {
        !matches!(
            self,
            FactKind::Concept(ConceptKind::Finding | ConceptKind::Site | ConceptKind::FollowUp) | FactKind::Duration
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::Concept(kind) => kind.as_str(),
            FactKind::Medication => "medication",
            FactKind::Dose => "dose",
            FactKind::Duration => "duration",
            FactKind::Laterality => "laterality",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fact {
    pub kind: FactKind,
    pub key: String,
    /// A dose's amount, a vital sign's reading, a duration's count.
    pub value: Option<String>,
    /// Some(true) when denied, Some(false) when affirmed, None when unclear or not applicable.
    pub negated: Option<bool>,
}

impl std::fmt::Display for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.key)?;
        if let Some(v) = &self.value {
            write!(f, " = {v}")?;
        }
        if self.negated == Some(true) {
            write!(f, " (denied)")?;
        }
        Ok(())
    }
}

/// The facts a note or a sentence states.
pub fn facts(text: &str) -> Vec<Fact> {
    let mut out = concept_facts(text);
    out.extend(number_facts(text));
    out.sort();
    out.dedup();
    out
}

/// The facts a transcript states, reading questions with their answers across segments.
pub fn transcript_facts(transcript: &Transcript) -> Vec<Fact> {
    let text: String = transcript
        .segments
        .iter()
        .map(|s| {
            let t = s.text.trim();
            // Each segment ends a clause, so one turn's words do not run into the next's.
            if t.ends_with(['.', '?', '!']) {
                format!("{t} ")
            } else {
                format!("{t}. ")
            }
        })
        .collect();
    facts(&text)
}

fn concept_facts(text: &str) -> Vec<Fact> {
    let lexicon = crate::support::lexicon();
    crate::support::text_mentions(text)
        .into_iter()
        .map(|m| {
            let concept = &lexicon[m.concept];
            Fact {
                kind: FactKind::Concept(concept.kind),
                key: concept.name.clone(),
                value: None,
                negated: match m.polarity {
                    Polarity::Affirmed => Some(false),
                    Polarity::Negated => Some(true),
                    Polarity::Unknown => None,
                },
            }
        })
        .collect()
}

fn number_facts(text: &str) -> Vec<Fact> {
    let mut out = Vec::new();
    let tokens: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .map(|t| t.trim_matches('.').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        if crate::validate::is_medication(t) {
            out.push(Fact {
                kind: FactKind::Medication,
                key: crate::medications::canonical(t),
                value: None,
                negated: None,
            });
        }
        if matches!(t.as_str(), "left" | "right" | "bilateral" | "bilaterally" | "both") {
            let side = if t.starts_with("bilateral") || t == "both" {
                "bilateral"
            } else {
                t.as_str()
            };
            // "both" is a side only before a body site ("both knees").
            let site_follows = tokens.get(i + 1).is_some_and(|n| crate::support::is_site_word(n));
            if t != "both" || site_follows {
                out.push(Fact {
                    kind: FactKind::Laterality,
                    key: side.to_string(),
                    value: None,
                    negated: None,
                });
            }
        }
    }
    for (drug, amounts) in crate::validate::doses(text) {
        for amount in amounts {
            out.push(Fact {
                kind: FactKind::Dose,
                key: crate::medications::canonical(&drug),
                value: Some(amount),
                negated: None,
            });
        }
    }
    for (n, unit) in crate::numbers::quantities(text) {
        out.push(Fact {
            kind: FactKind::Duration,
            key: unit.to_string(),
            value: Some(n),
            negated: None,
        });
    }
    for (vital, reading) in crate::support::vital_readings(text) {
        out.push(Fact {
            kind: FactKind::Concept(ConceptKind::Vital),
            key: vital,
            value: Some(reading),
            negated: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> Vec<String> {
        facts(text).iter().map(Fact::to_string).collect()
    }

    #[test]
    fn a_note_sentence_reads_as_facts() {
        let f = shown("Denies chest pain. Left knee swelling for 3 weeks. Start Zoloft 25 mg daily. BP 130/80.");
        for expected in [
            "finding chest pain (denied)",
            "finding swelling",
            "site knee",
            "laterality left",
            "duration week = 3",
            "medication sertraline",
            "dose sertraline = 25",
            "frequency daily",
            "vital blood pressure = 130/80",
        ] {
            assert!(f.contains(&expected.to_string()), "{expected} missing from {f:?}");
        }
    }
}
