//! The GBNF grammar a draft must match, derived from the template and the transcript.
//!
//! Shape of a draft (one block per template section, in order):
//!
//! ```text
//! ## Subjective
//! - Patient reports two days of chest pain. [S2, S4]
//! ## Objective
//! - Not discussed.
//! ```
//!
//! Citations are an alternation of the transcript's real segment ids, so the model cannot cite a
//! segment that does not exist; sentence length and count are bounded, so generation always ends.

use std::fmt::Write;

use protocol::Transcript;

use crate::Template;

/// Longest sentence, in characters.
const MAX_SENTENCE_CHARS: u32 = 200;
/// Most citations on one sentence.
const MAX_CITATIONS: u32 = 4;

/// The token budget for a draft under `template`: the grammar's bounds at two characters per token
/// (clinical prose averages nearer four; a rambling small model writing digits and symbols can
/// go below two, and is then asked again for fewer sentences).
pub fn max_tokens(template: &Template) -> u32 {
    let per_sentence = MAX_SENTENCE_CHARS / 2 + 8 * MAX_CITATIONS;
    template
        .sections
        .iter()
        .map(|s| s.max_sentences * per_sentence + 16)
        .sum::<u32>()
        + 16
}

pub fn grammar(template: &Template, transcript: &Transcript) -> String {
    let mut g = String::new();
    let sections: Vec<String> = (0..template.sections.len()).map(|i| format!("sec{i}")).collect();
    writeln!(g, "root ::= {}", sections.join(" ")).unwrap();
    let citable = !transcript.segments.is_empty();
    for (i, s) in template.sections.iter().enumerate() {
        let body = if citable {
            format!("( none | sentence{{1,{}}} )", s.max_sentences)
        } else {
            // Nothing to cite: every section can only say so.
            "none".to_string()
        };
        writeln!(g, "sec{i} ::= \"## {}\\n\" {body}", s.name).unwrap();
    }
    writeln!(g, "none ::= \"- Not discussed.\\n\"").unwrap();
    if !citable {
        return g;
    }
    writeln!(
        g,
        "sentence ::= \"- \" text \" [\" seg (\", \" seg){{0,{}}} \"]\\n\"",
        MAX_CITATIONS - 1
    )
    .unwrap();
    // One sentence per line, so each sentence carries its own citations: a period may appear only
    // inside a number ("2.5") or at the very end. A sentence starts with a letter or a number, but
    // not with a segment id ("S3"), and never contains brackets or newlines, so the citation list
    // is the only bracketed part of a line.
    //
    // Digits come only as the numbers the visit said (in digits or in words: "one twenty" lets
    // the model write 120): a vital sign, lab value or dose nobody stated cannot be written.
    let said = said_numbers(transcript);
    // A number is always followed by something that is not a digit (or ends the sentence), so two
    // numbers said cannot be run together into one nobody said ("1" "5" "0" → 150).
    if said.is_empty() {
        writeln!(g, "text ::= start body{{0,{}}} \".\"?", MAX_SENTENCE_CHARS - 2).unwrap();
        writeln!(g, "start ::= [A-RT-Za-z] | \"S\" [a-zA-Z ]").unwrap();
        writeln!(g, "body ::= [^\\n\\[\\].0-9]").unwrap();
    } else {
        writeln!(g, "text ::= start body{{0,{}}} num? \".\"?", MAX_SENTENCE_CHARS - 2).unwrap();
        writeln!(g, "start ::= [A-RT-Za-z] | \"S\" [a-zA-Z ] | num [^\\n\\[\\].0-9]").unwrap();
        writeln!(g, "body ::= [^\\n\\[\\].0-9] | num [^\\n\\[\\].0-9]").unwrap();
        let alternatives: Vec<String> = said.iter().map(|n| format!("\"{n}\"")).collect();
        writeln!(g, "num ::= {}", alternatives.join(" | ")).unwrap();
    }
    let ids: Vec<String> = transcript.segments.iter().map(|s| format!("\"S{}\"", s.id)).collect();
    writeln!(g, "seg ::= {}", ids.join(" | ")).unwrap();
    g
}

/// The numbers a transcript states, as a note may write them: their normal form, longest first
/// (so "120" is offered before "12"), each with its leading-zero form for decimals ("0.5" and ".5"
/// are both "0.5").
fn said_numbers(transcript: &Transcript) -> Vec<String> {
    let mut said: Vec<String> = transcript
        .segments
        .iter()
        .flat_map(|s| crate::numbers_in(&s.text))
        .filter(|n| n.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .collect();
    said.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    said.dedup();
    said
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Segment, Speaker};

    #[test]
    fn grammar_lists_sections_in_order_and_real_segment_ids() {
        let t = Transcript {
            segments: (1..=3)
                .map(|id| Segment {
                    id,
                    start_ms: 0,
                    end_ms: 1,
                    speaker: Speaker::Unknown,
                    text: "x".into(),
                    confidence: 1.0,
                    words: vec![],
                })
                .collect(),
        };
        let g = grammar(&Template::builtin("soap").unwrap(), &t);
        assert!(g.starts_with("root ::= sec0 sec1 sec2 sec3\n"), "{g}");
        assert!(g.contains("sec3 ::= \"## Plan\\n\" ( none | sentence{1,5} )"), "{g}");
        assert!(g.contains("seg ::= \"S1\" | \"S2\" | \"S3\"\n"), "{g}");
    }

    #[test]
    fn digits_are_only_the_numbers_the_visit_said() {
        let segment = |id, text: &str| Segment {
            id,
            start_ms: 0,
            end_ms: 1,
            speaker: Speaker::Clinician,
            text: text.into(),
            confidence: 1.0,
            words: vec![],
        };
        let t = Transcript {
            segments: vec![
                segment(1, "pressure is one twenty over eighty"),
                segment(2, "take 2.5 mg"),
            ],
        };
        let g = grammar(&Template::builtin("soap").unwrap(), &t);
        assert!(g.contains("num ::= \"120\" | \"2.5\" | \"80\"\n"), "{g}");
        assert!(g.contains("body ::= [^\\n\\[\\].0-9] | num [^\\n\\[\\].0-9]\n"), "{g}");
        assert!(g.contains("text ::= start body{0,198} num? \".\"?\n"), "{g}");
        let quiet = Transcript {
            segments: vec![segment(1, "good morning")],
        };
        let g = grammar(&Template::builtin("soap").unwrap(), &quiet);
        assert!(!g.contains("num") && g.contains("start ::= [A-RT-Za-z] |"), "{g}");
    }
}
