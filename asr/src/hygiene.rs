//! What whisper must not be trusted with: silence (it hallucinates text on it, and transcribing
//! it costs time for nothing) and decoder loops (the same line again and again).

use protocol::Segment;

/// Audio whose peak stays below this (dBFS) is silence: whisper is not run on it.
pub const SILENCE_PEAK_DBFS: f32 = -50.0;

pub fn is_silence(pcm: &[f32]) -> bool {
    let peak = pcm.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    20.0 * peak.max(1e-9).log10() < SILENCE_PEAK_DBFS
}

fn normalized(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Collapses a decoder loop: a run of consecutive segments with the same words (ignoring case and
/// punctuation) becomes its first segment, stretched over the run. People do repeat themselves,
/// but not three or more times in a row word for word; whisper does, on audio it cannot decode.
/// Segments are renumbered from 1. Returns how many were dropped.
/// Removes segments with no word in them: whisper marks music and noise it cannot read as "♪",
/// "[Music]"-like symbols or bare punctuation, which are not speech.
pub fn drop_wordless(segments: &mut Vec<Segment>) -> usize {
    let before = segments.len();
    segments.retain(|s| s.text.chars().any(char::is_alphanumeric));
    before - segments.len()
}

pub fn collapse_loops(segments: &mut Vec<Segment>) -> usize {
    const LOOP: usize = 3;
    let before = segments.len();
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len());
    let mut i = 0;
    while i < segments.len() {
        let key = normalized(&segments[i].text);
        let mut j = i + 1;
        while j < segments.len() && !key.is_empty() && normalized(&segments[j].text) == key {
            j += 1;
        }
        let mut first = segments[i].clone();
        if j - i >= LOOP {
            first.end_ms = segments[j - 1].end_ms;
            out.push(first);
        } else {
            out.extend(segments[i..j].iter().cloned());
        }
        i = j;
    }
    for (n, s) in out.iter_mut().enumerate() {
        s.id = n as u32 + 1;
    }
    *segments = out;
    before - segments.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Speaker;

    fn seg(text: &str, start: u64) -> Segment {
        Segment {
            id: 0,
            start_ms: start,
            end_ms: start + 2000,
            speaker: Speaker::Unknown,
            text: text.into(),
            confidence: 0.5,
            words: Vec::new(),
        }
    }

    #[test]
    fn a_loop_collapses_but_a_repeat_or_two_stays() {
        let mut s = vec![
            seg("Any fever?", 0),
            seg("I'm gonna go to the next one.", 2000),
            seg("I'm gonna go to the next one.", 4000),
            seg("i'm gonna go to the next one", 6000),
            seg("I'm gonna go to the next one.", 8000),
            seg("No. No.", 10_000),
            seg("No, no.", 12_000),
        ];
        assert_eq!(collapse_loops(&mut s), 3);
        let texts: Vec<&str> = s.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Any fever?", "I'm gonna go to the next one.", "No. No.", "No, no."]
        );
        assert_eq!((s[1].start_ms, s[1].end_ms), (2000, 10_000));
        assert_eq!(s.iter().map(|x| x.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn music_marks_and_punctuation_are_not_speech() {
        let mut segments = vec![seg("♪♪", 0), seg(" ... ", 1000), seg("Okay.", 2000)];
        assert_eq!(drop_wordless(&mut segments), 2);
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].text, "Okay.");
    }

    #[test]
    fn silence_is_below_minus_fifty_dbfs() {
        assert!(is_silence(&vec![0.0; 16_000]));
        assert!(is_silence(&vec![0.001; 16_000]));
        assert!(!is_silence(&[0.0, 0.01, 0.0]));
    }
}
