//! Fact-level scoring of a draft: which facts of the visit it lost, which it invented, which it
//! got wrong, and whether the reviewer was warned about the invented ones.
//!
//! Facts come from `drafting::facts` (the support check's lexicon, numbers and medication names),
//! read from the transcript, the reference note and each draft sentence:
//! - a draft fact is *supported* when the transcript states the same fact (same kind and key, the
//!   same value and polarity where both have one), *wrong* when the transcript has the fact with
//!   another value or the opposite polarity, and *invented* when the transcript never names it;
//! - the facts that matter are those the transcript states and the reference note keeps; the draft
//!   *omits* one when it does not name it at all.

use drafting::{Fact, facts, transcript_facts};
use protocol::{Draft, Transcript};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FactScores {
    pub transcript: usize,
    /// Facts the transcript states and the reference note keeps.
    pub important: usize,
    pub omitted: usize,
    pub draft: usize,
    pub invented: usize,
    pub invented_major: usize,
    /// Invented facts whose sentence carries a support flag.
    pub invented_flagged: usize,
    pub wrong: usize,
    pub wrong_flagged: usize,
    /// A few of each, for the report: "fact — sentence".
    pub invented_examples: Vec<String>,
    pub wrong_examples: Vec<String>,
    pub omitted_examples: Vec<String>,
}

const EXAMPLES: usize = 3;

fn same(a: &Fact, b: &Fact) -> bool {
    a.kind == b.kind && a.key == b.key
}

fn agrees(a: &Fact, b: &Fact) -> bool {
    same(a, b)
        && (a.value.is_none() || b.value.is_none() || a.value == b.value)
        && (a.negated.is_none() || b.negated.is_none() || a.negated == b.negated)
}

pub fn score(transcript: &Transcript, reference_note: &str, draft: &Draft) -> FactScores {
    let said = transcript_facts(transcript);
    let kept = facts(reference_note);
    let mut s = FactScores {
        transcript: said.len(),
        ..FactScores::default()
    };
    let mut drafted: Vec<Fact> = Vec::new();
    for sentence in draft.sentences() {
        let flagged = sentence.flags.iter().any(|f| f.kind.is_support());
        for fact in facts(&sentence.text) {
            if drafted.contains(&fact) {
                continue;
            }
            drafted.push(fact.clone());
            s.draft += 1;
            if said.iter().any(|t| agrees(t, &fact)) {
                continue;
            }
            let example = format!("{fact} — {:?}", sentence.text);
            if said.iter().any(|t| same(t, &fact)) {
                s.wrong += 1;
                s.wrong_flagged += usize::from(flagged);
                if s.wrong_examples.len() < EXAMPLES && !flagged {
                    s.wrong_examples.push(example);
                }
            } else {
                s.invented += 1;
                s.invented_major += usize::from(fact.kind.is_major());
                s.invented_flagged += usize::from(flagged);
                if s.invented_examples.len() < EXAMPLES && !flagged {
                    s.invented_examples.push(example);
                }
            }
        }
    }
    for fact in kept.iter().filter(|k| said.iter().any(|t| agrees(t, k))) {
        s.important += 1;
        if !drafted.iter().any(|d| same(d, fact)) {
            s.omitted += 1;
            if s.omitted_examples.len() < EXAMPLES {
                s.omitted_examples.push(fact.to_string());
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Flag, FlagKind, Section, Segment, Sentence, Speaker};

    #[test]
    fn invented_wrong_and_omitted_facts_are_counted() {
        let transcript = Transcript {
            segments: vec![Segment {
                id: 1,
                start_ms: 0,
                end_ms: 1,
                speaker: Speaker::Clinician,
                text: "your left knee is swollen. take ibuprofen 400 milligrams. no fever.".into(),
                confidence: 1.0,
                words: vec![],
            }],
        };
        let reference = "Left knee swelling. Ibuprofen 400 mg. Denies fever.";
        let mut invented = Sentence::new("Referral to cardiology.", vec![1]);
        invented
            .flags
            .push(Flag::new(FlagKind::UnsupportedClaim, "cardiology".into()));
        let draft = Draft::new(
            "soap",
            vec![Section {
                name: "Plan".into(),
                sentences: vec![Sentence::new("Ibuprofen 800 mg for the right knee.", vec![1]), invented],
            }],
        );
        let s = score(&transcript, reference, &draft);
        assert_eq!(s.invented, 3, "{s:?}"); // right, cardiology, the referral itself
        assert_eq!(s.invented_flagged, 2, "{s:?}");
        assert_eq!(s.wrong, 1, "{s:?}"); // ibuprofen 800
        assert!(s.omitted >= 2, "{s:?}"); // swelling, fever, left
        assert!(s.omitted_examples.iter().any(|e| e.contains("fever")), "{s:?}");
    }
}
