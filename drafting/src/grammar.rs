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
    // inside a number ("2.5") or at the very end. A sentence starts with a letter or digit, but not
    // with a segment id ("S3"), and never contains brackets or newlines, so the citation list is
    // the only bracketed part of a line.
    writeln!(g, "text ::= start body{{0,{}}} \".\"?", MAX_SENTENCE_CHARS - 2).unwrap();
    writeln!(g, "start ::= [A-RT-Za-z0-9] | \"S\" [a-zA-Z ]").unwrap();
    writeln!(g, "body ::= [^\\n\\[\\].] | \".\" [0-9]").unwrap();
    let ids: Vec<String> = transcript.segments.iter().map(|s| format!("\"S{}\"", s.id)).collect();
    writeln!(g, "seg ::= {}", ids.join(" | ")).unwrap();
    g
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
}
