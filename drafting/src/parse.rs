//! Reads what the model wrote back into a [`Draft`], strictly in the template's shape.

use std::collections::HashSet;

use protocol::{Draft, Section, SegmentId, Sentence};

use crate::Template;
use crate::validate::words;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("expected section heading \"## {expected}\" at line {line}")]
    MissingSection { expected: String, line: usize },
    #[error("line {line} is neither a section heading nor a cited sentence")]
    BadLine { line: usize },
    #[error("line {line}: a sentence must end with citations like [S3, S5]")]
    NoCitations { line: usize },
    #[error("unexpected text after the last section at line {line}")]
    Trailing { line: usize },
}

const NOT_DISCUSSED: &str = "- Not discussed.";

pub fn parse(raw: &str, template: &Template) -> Result<Draft, ParseError> {
    let lines: Vec<(usize, &str)> = raw
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut pos = 0;
    let mut sections = Vec::with_capacity(template.sections.len());
    for spec in &template.sections {
        let heading = format!("## {}", spec.name);
        match lines.get(pos) {
            Some((_, l)) if *l == heading => pos += 1,
            other => {
                return Err(ParseError::MissingSection {
                    expected: spec.name.clone(),
                    line: other.map_or(lines.len() + 1, |(n, _)| *n),
                });
            }
        }
        let mut sentences = Vec::new();
        while let Some(&(n, line)) = lines.get(pos) {
            if line.starts_with("## ") {
                break;
            }
            pos += 1;
            if line == NOT_DISCUSSED {
                continue;
            }
            sentences.push(parse_sentence(line, n)?);
        }
        sections.push(Section {
            name: spec.name.clone(),
            sentences,
        });
    }
    if let Some((n, _)) = lines.get(pos) {
        return Err(ParseError::Trailing { line: *n });
    }
    Ok(Draft {
        template: template.name.clone(),
        patient_instructions: None,
        sections,
    })
}

/// Removes sentences that say again, word for word, what an earlier sentence of the draft said
/// (small models loop across sections). Returns how many were removed. No transcript content is
/// lost: the first occurrence, with its citations, stays.
pub fn drop_repeated_sentences(draft: &mut Draft) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut dropped = 0;
    for section in &mut draft.sections {
        section.sentences.retain(|s| {
            let key: String = s.text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
            let first = seen.insert(key);
            dropped += usize::from(!first);
            first
        });
    }
    dropped
}

/// Removes sentences that say nothing about this visit, and the section guide where a small model
/// copied it in front of a sentence. Returns how many sentences were removed. Three kinds:
/// - "Medications with doses are not discussed.", "Relevant history: none relevant." — the
///   section is shown empty instead, once, in the template's words;
/// - courtesies: "Good to see you.", "Thank you for your cooperation.", "Bye.";
/// - the guide itself: "History of present illness with onset, duration, and course: …" keeps
///   only what follows the colon (and goes if that is filler too).
///
/// None of these carries a fact, so no transcript content is lost.
pub fn drop_filler(draft: &mut Draft, template: &Template) -> usize {
    // The prompt shows every section's guide; a model copies any of them, anywhere.
    let guide: HashSet<String> = template
        .sections
        .iter()
        .flat_map(|s| words(&s.name).chain(words(&s.instruction)).collect::<Vec<_>>())
        .chain(["covers".to_string(), "section".to_string()])
        .collect();
    // (mostly the guide's words, all of them, how many words)
    let from_guide = |text: &str| {
        let total = words(text).count();
        let copied = words(text).filter(|w| guide.contains(w)).count();
        (copied * 10 >= total * 6, copied == total, total)
    };
    let mut dropped = 0;
    for section in &mut draft.sections {
        section.sentences.retain_mut(|s| {
            // A copied guide is a long phrase ("Patient education and follow-up: …"); a short
            // heading ("Family history: colon cancer.", "Allergies: none.") is part of the fact.
            if let Some((before, after)) = s.text.split_once(':')
                && let (true, _, total) = from_guide(before)
                && total >= 3
                && words(after).count() >= 2
            {
                s.text = capitalised(after.trim());
            }
            // Only a long run of guide words is a copy: "Follow up for test results." is a plan.
            let copied_whole = matches!(from_guide(&s.text), (_, true, total) if total >= 6);
            let keep = !s.text.is_empty() && !copied_whole && !is_filler(&s.text) && !is_courtesy(&s.text);
            dropped += usize::from(!keep);
            keep
        });
    }
    dropped
}

fn capitalised(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// "X not discussed", "none relevant", "N/A": a statement about the conversation or the note,
/// not about the patient. Only that shape counts: the negation right before a word about the talk
/// at the end of the sentence ("… were not discussed", "no … mentioned"), or one of a few whole
/// sentences. "Discussed risks; does not want surgery." and "Vital signs not obtained." are facts.
fn is_filler(text: &str) -> bool {
    const ABOUT_THE_TALK: &[&str] = &["discussed", "mentioned", "documented", "addressed", "specified"];
    const NOTHING: &[&str] = &["no", "not", "none", "nothing", "neither", "nor"];
    const TRAILING: &[&str] = &[
        "today",
        "during",
        "the",
        "this",
        "at",
        "in",
        "visit",
        "transcript",
        "conversation",
    ];
    const WHOLE: &[&[&str]] = &[
        &["n", "a"],
        &["na"],
        &["not", "applicable"],
        &["none", "relevant"],
        &["none", "reported"],
        &["not", "reported"],
        &["nothing", "relevant"],
        &["not", "discussed"],
        &["not", "mentioned"],
    ];
    let w: Vec<String> = words(text).collect();
    if WHOLE.iter().any(|whole| w == *whole) {
        return true;
    }
    // The last word that is not "today", "during the visit"…
    let Some(last) = w.iter().rposition(|x| !TRAILING.contains(&x.as_str())) else {
        return false;
    };
    if !ABOUT_THE_TALK.contains(&w[last].as_str()) {
        return false;
    }
    let negated_just_before = w[last.saturating_sub(3)..last]
        .iter()
        .any(|x| NOTHING.contains(&x.as_str()));
    let opens_with_nothing = w.first().is_some_and(|x| NOTHING.contains(&x.as_str()));
    negated_just_before || opens_with_nothing
}

/// Greetings, thanks and goodbyes.
fn is_courtesy(text: &str) -> bool {
    const COURTESY: &[&str] = &[
        "good",
        "great",
        "nice",
        "see",
        "you",
        "your",
        "to",
        "thank",
        "thanks",
        "for",
        "cooperation",
        "time",
        "bye",
        "goodbye",
        "have",
        "a",
        "day",
        "meet",
        "care",
        "take",
        "pleasure",
        "welcome",
        "morning",
        "afternoon",
        "evening",
        "hello",
        "hi",
        "final",
        "note",
        "okay",
        "ok",
        "all",
        "right",
        "alright",
        "again",
        "soon",
        "the",
        "and",
        "it",
        "was",
        "is",
        "be",
        "well",
        "visit",
        "coming",
        "in",
        "today",
    ];
    let w: Vec<String> = words(text).collect();
    !w.is_empty() && w.iter().all(|x| COURTESY.contains(&x.as_str()))
}

fn parse_sentence(line: &str, n: usize) -> Result<Sentence, ParseError> {
    let body = line.strip_prefix("- ").ok_or(ParseError::BadLine { line: n })?;
    let open = body.rfind(" [").ok_or(ParseError::NoCitations { line: n })?;
    let list = body[open + 2..]
        .strip_suffix(']')
        .ok_or(ParseError::NoCitations { line: n })?;
    let citations = list
        .split(',')
        .map(|c| c.trim().strip_prefix('S').and_then(|id| id.parse::<SegmentId>().ok()))
        .collect::<Option<Vec<_>>>()
        .filter(|c| !c.is_empty())
        .ok_or(ParseError::NoCitations { line: n })?;
    Ok(Sentence::new(body[..open].trim().to_string(), citations))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_sentences_and_not_discussed() {
        let raw = "## Subjective\n- Cough for 3 days. [S1, S2]\n## Objective\n- Not discussed.\n## Assessment\n- Viral bronchitis. [S4]\n## Plan\n- Rest and fluids. [S5]\n";
        let d = parse(raw, &Template::builtin("soap").unwrap()).unwrap();
        assert_eq!(d.sections.len(), 4);
        assert_eq!(d.sections[0].sentences[0].text, "Cough for 3 days.");
        assert_eq!(d.sections[0].sentences[0].citations, vec![1, 2]);
        assert!(d.sections[1].sentences.is_empty());
    }

    #[test]
    fn repeated_sentences_are_dropped_across_sections() {
        let raw = "## Subjective\n- Knee pain. [S1]\n- Knee  pain. [S2]\n## Objective\n- Knee pain. [S1]\n- Swollen. [S3]\n## Assessment\n- Not discussed.\n## Plan\n- Rest. [S4]\n";
        let mut d = parse(raw, &Template::builtin("soap").unwrap()).unwrap();
        assert_eq!(drop_repeated_sentences(&mut d), 2);
        let texts: Vec<&str> = d.sentences().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["Knee pain.", "Swollen.", "Rest."]);
    }

    #[test]
    fn filler_courtesies_and_the_copied_guide_are_dropped() {
        let aci = Template::builtin("aci").unwrap();
        let raw = "## Subjective\n\
                   - History of present illness with onset, duration and course: knee pain for 3 days. [S1]\n\
                   - Relevant medical, surgical, social and family history: None relevant. [S1]\n\
                   - Denies fever. [S2]\n\
                   - Current medications and allergies: none. [S2]\n\
                   - Family history: colon cancer. [S2]\n\
                   - Discussed risks; patient does not want surgery. [S2]\n\
                   - Vital signs not obtained. [S2]\n\
                   - Follow up for test results. [S2]\n\
                   - None. [S2]\n\
                   ## Objective Exam\n- No vital signs were discussed. [S3]\n\
                   - No swelling noted. [S3]\n\
                   ## Objective Results\n- Tests ordered are not discussed. [S3]\n\
                   - Objective Exam covers vital signs and physical examination findings stated during the visit. [S1]\n\
                   ## Assessment and Plan\n- Medications with doses are not discussed. [S5, S6]\n\
                   - Patient education and follow-up: return in a week. [S6]\n\
                   - Ibuprofen 400 mg. [S4]\n- Good to see you. [S7]\n- Thank you for your cooperation. [S7]\n- Bye. [S7]\n";
        let mut d = parse(raw, &aci).unwrap();
        assert_eq!(drop_filler(&mut d, &aci), 8);
        let texts: Vec<&str> = d.sentences().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Knee pain for 3 days.",
                "Denies fever.",
                "Current medications and allergies: none.",
                "Family history: colon cancer.",
                "Discussed risks; patient does not want surgery.",
                "Vital signs not obtained.",
                "Follow up for test results.",
                "None.",
                "No swelling noted.",
                "Return in a week.",
                "Ibuprofen 400 mg."
            ]
        );
        assert!(
            d.sections[2].sentences.is_empty(),
            "an empty section shows as not discussed"
        );
    }

    #[test]
    fn off_template_output_is_rejected() {
        let soap = Template::builtin("soap").unwrap();
        let missing = "## Subjective\n- A. [S1]\n## Plan\n- B. [S2]\n";
        assert_eq!(
            parse(missing, &soap),
            Err(ParseError::MissingSection {
                expected: "Objective".into(),
                line: 3
            })
        );
        let uncited = "## Subjective\n- A without citation.\n";
        assert_eq!(parse(uncited, &soap), Err(ParseError::NoCitations { line: 2 }));
    }
}
