//! Reads what the model wrote back into a [`Draft`], strictly in the template's shape.

use protocol::{Draft, Section, SegmentId, Sentence};

use crate::Template;

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
    Ok(Sentence {
        text: body[..open].trim().to_string(),
        citations,
        flags: vec![],
    })
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
