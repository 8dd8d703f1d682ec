//! How people see and act on encounters: the web review app ([`web`]), exports of signed notes
//! ([`export`]), and the plain-text renderings `scribe show` and the console use.

pub mod console;
pub mod deid;
pub mod export;
mod spool;
pub mod web;

use std::fmt::Write;

use protocol::{Draft, Transcript};

/// Words the recognizer was less sure of than this are marked `~like this~`.
pub(crate) const LOW_CONFIDENCE: f32 = 0.5;

pub fn transcript_text(t: &Transcript) -> String {
    let mut out = String::new();
    for s in &t.segments {
        let text = if s.words.iter().any(|w| w.confidence < LOW_CONFIDENCE) {
            s.words
                .iter()
                .map(|w| {
                    if w.confidence < LOW_CONFIDENCE {
                        format!("~{}~", w.text)
                    } else {
                        w.text.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            s.text.clone()
        };
        writeln!(
            out,
            "S{:<3} {} {:>9} {}",
            s.id,
            clock(s.start_ms),
            s.speaker.as_str(),
            text
        )
        .unwrap();
    }
    out
}

pub fn draft_text(d: &Draft) -> String {
    let mut out = sections_text(d);
    if let Some(instructions) = &d.patient_instructions {
        writeln!(out, "\n# Patient instructions").unwrap();
        out.push_str(&sections_text(instructions));
    }
    out
}

fn sections_text(d: &Draft) -> String {
    let mut out = String::new();
    for section in &d.sections {
        writeln!(out, "## {}", section.name).unwrap();
        if section.sentences.is_empty() {
            writeln!(out, "- Not discussed.").unwrap();
        }
        for s in &section.sentences {
            let cites: Vec<String> = s.citations.iter().map(|c| format!("S{c}")).collect();
            writeln!(out, "- {} [{}]", s.text, cites.join(", ")).unwrap();
            if let Some(editor) = &s.edited_by {
                writeln!(out, "    (edited by {editor})").unwrap();
            }
            for f in &s.flags {
                let what = f.kind.describe();
                match &f.acknowledged_by {
                    None => writeln!(out, "    ⚑ {:?}: {what}", f.term).unwrap(),
                    Some(by) => writeln!(out, "    ⚑ {:?}: {what} (acknowledged by {by})", f.term).unwrap(),
                }
            }
        }
    }
    out
}

/// A note's sections and sentences as plain text, without citations or flags (for pasting).
pub fn note_plain_text(d: &Draft) -> String {
    let mut out = String::new();
    for section in &d.sections {
        writeln!(out, "{}", section.name.to_uppercase()).unwrap();
        if section.sentences.is_empty() {
            writeln!(out, "Not discussed.").unwrap();
        }
        for s in &section.sentences {
            writeln!(out, "{}", s.text).unwrap();
        }
        writeln!(out).unwrap();
    }
    out
}

/// 16-bit mono PCM as a WAV file.
pub fn wav_bytes(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn clock(ms: u64) -> String {
    format!("{:02}:{:02}", ms / 60_000, ms / 1000 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Flag, FlagKind, Section, Sentence};

    #[test]
    fn flags_are_shown_beside_their_sentence() {
        let d = Draft {
            template: "soap".into(),
            patient_instructions: None,
            sections: vec![
                Section {
                    name: "Plan".into(),
                    sentences: vec![Sentence {
                        flags: vec![Flag::new(FlagKind::UnsupportedNumber, "20".into())],
                        ..Sentence::new("Start lisinopril 20 mg.", vec![3, 4])
                    }],
                },
                Section {
                    name: "Objective".into(),
                    sentences: vec![],
                },
            ],
        };
        let text = draft_text(&d);
        assert!(
            text.contains("- Start lisinopril 20 mg. [S3, S4]\n    ⚑ \"20\": number not in the cited segments"),
            "{text}"
        );
        assert!(text.contains("## Objective\n- Not discussed."), "{text}");
    }
}
