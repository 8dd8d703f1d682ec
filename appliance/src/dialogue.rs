//! Typed dialogues in ACI-Bench form (`[doctor] …` / `[patient] …` lines) as transcripts.
//!
//! This is how drafting is evaluated on text, skipping speech recognition. Typed text has no
//! timing, so segments get times from a steady speaking rate (150 words a minute); confidence is 1.

use anyhow::{Result, bail};
use protocol::{Segment, Speaker, Transcript, Word};

const MS_PER_WORD: u64 = 400;

pub fn parse_dialogue(text: &str) -> Result<Transcript> {
    let mut turns: Vec<(Speaker, String)> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            Some((tag, rest)) => turns.push((speaker_of(tag), rest.trim().to_string())),
            // An untagged line continues the previous turn.
            None => match turns.last_mut() {
                Some((_, t)) => {
                    t.push(' ');
                    t.push_str(line);
                }
                None => bail!("the dialogue must start with a speaker tag such as [doctor] or [patient]"),
            },
        }
    }
    turns.retain(|(_, t)| !t.is_empty());
    if turns.is_empty() {
        bail!("the dialogue has no lines; expected lines like \"[doctor] how are you?\"");
    }
    let mut clock = 0;
    let segments = turns
        .into_iter()
        .enumerate()
        .map(|(i, (speaker, text))| {
            let start_ms = clock;
            let words: Vec<Word> = text
                .split_whitespace()
                .map(|w| {
                    let word = Word {
                        text: w.to_string(),
                        start_ms: clock,
                        end_ms: clock + MS_PER_WORD,
                        confidence: 1.0,
                    };
                    clock += MS_PER_WORD;
                    word
                })
                .collect();
            Segment {
                id: i as u32 + 1,
                start_ms,
                end_ms: clock,
                speaker,
                text,
                confidence: 1.0,
                words,
            }
        })
        .collect();
    Ok(Transcript { segments })
}

fn speaker_of(tag: &str) -> Speaker {
    let tag = tag.trim().to_ascii_lowercase();
    if ["doctor", "clinician", "physician", "nurse", "provider"]
        .iter()
        .any(|r| tag.starts_with(r))
    {
        Speaker::Clinician
    } else if tag.starts_with("patient") {
        Speaker::Patient
    } else {
        Speaker::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aci_bench_lines_become_timed_segments_with_roles() {
        let t = parse_dialogue(
            "[doctor] hi , brian . how are you ?\n[patient] hi , good\nto see you .\n[patient_guest] hello\n",
        )
        .unwrap();
        assert_eq!(t.segments.len(), 3);
        assert_eq!(t.segments[0].speaker, Speaker::Clinician);
        assert_eq!(t.segments[1].speaker, Speaker::Patient);
        assert_eq!(t.segments[1].text, "hi , good to see you .");
        assert_eq!(t.segments[2].speaker, Speaker::Patient);
        assert_eq!(t.segments[1].start_ms, t.segments[0].end_ms);
        assert_eq!(t.segments[0].end_ms, 8 * MS_PER_WORD);
    }

    #[test]
    fn text_that_is_not_a_dialogue_is_refused() {
        assert!(parse_dialogue("").is_err());
        assert!(parse_dialogue("just some prose\nwithout tags").is_err());
    }
}
