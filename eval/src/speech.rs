//! Turning dialogue text into speech (espeak-ng, one voice per speaker) and scoring recognized
//! speech against the text (word error rate).

use std::path::Path;
use std::process::Command;

/// Who speaks a line; each gets a distinct espeak-ng voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    Doctor,
    Patient,
}

/// ACI-Bench writes punctuation with spaces around it ("okay . so ,"); espeak-ng reads a free
/// " . " aloud as "dot". Attach punctuation to the word before it.
pub fn speakable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for token in text.split_whitespace() {
        let punct = token.chars().all(|c| ".,?!;:".contains(c));
        if !out.is_empty() && !punct {
            out.push(' ');
        }
        out.push_str(token);
    }
    out
}

/// Who spoke when in a synthesized recording: what speaker labels are scored against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub voice: Voice,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// How the voices are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One room microphone.
    Mono,
    /// A microphone per speaker: the doctor on the left channel, the patient on the right, each
    /// also heard by the other's microphone at a quarter of the level (−12 dB).
    Stereo,
}

/// Speaks `lines` into one mono WAV at `out` (needs espeak-ng and sox).
pub fn synthesize(lines: &[(Voice, &str)], out: &Path) -> Result<Vec<Turn>, String> {
    synthesize_as(lines, out, Layout::Mono)
}

/// Speaks `lines` into one WAV at `out` and says who spoke when.
pub fn synthesize_as(lines: &[(Voice, &str)], out: &Path, layout: Layout) -> Result<Vec<Turn>, String> {
    let dir = out.with_extension("parts");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = (|| {
        let (mut parts, mut turns, mut at_ms) = (Vec::new(), Vec::new(), 0);
        for (i, (voice, text)) in lines.iter().enumerate() {
            let part = dir.join(format!("{i:04}.wav"));
            let espeak_voice = match voice {
                Voice::Doctor => "en-us+m3",
                Voice::Patient => "en-us+f2",
            };
            run(Command::new("espeak-ng")
                .args(["-v", espeak_voice, "-s", "150", "-w"])
                .arg(&part)
                .arg(speakable(text)))?;
            let ms = duration_ms(&part)?;
            turns.push(Turn {
                voice: *voice,
                start_ms: at_ms,
                end_ms: at_ms + ms,
            });
            at_ms += ms;
            if layout == Layout::Stereo {
                let placed = dir.join(format!("{i:04}.stereo.wav"));
                let remix = match voice {
                    Voice::Doctor => ["1v1", "1v0.25"],
                    Voice::Patient => ["1v0.25", "1v1"],
                };
                run(Command::new("sox").arg(&part).arg(&placed).arg("remix").args(remix))?;
                parts.push(placed);
            } else {
                parts.push(part);
            }
        }
        run(Command::new("sox").args(&parts).arg(out))?;
        Ok(turns)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn duration_ms(wav: &Path) -> Result<u64, String> {
    let out = Command::new("soxi")
        .arg("-D")
        .arg(wav)
        .output()
        .map_err(|e| format!("cannot run soxi ({e}); install sox"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map(|s| (s * 1000.0).round() as u64)
        .map_err(|_| format!("soxi could not read {}", wav.display()))
}

/// The share of `segments` (start, end, voice) whose voice is the one speaking most of their
/// time in `turns`. Segments that fall in no turn are left out.
pub fn speaker_accuracy(segments: &[(u64, u64, Option<Voice>)], turns: &[Turn]) -> (usize, usize) {
    let (mut right, mut scored) = (0, 0);
    for &(start, end, said) in segments {
        let overlap = |t: &Turn| t.end_ms.min(end).saturating_sub(t.start_ms.max(start));
        let Some(truth) = turns.iter().filter(|t| overlap(t) > 0).max_by_key(|t| overlap(t)) else {
            continue;
        };
        scored += 1;
        right += usize::from(said == Some(truth.voice));
    }
    (right, scored)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {name} ({e}); install espeak-ng and sox"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Lowercased words without punctuation: what word error rate compares.
pub fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word error rate of `hypothesis` against `reference` (word-level Levenshtein / reference length).
pub fn wer(reference: &[String], hypothesis: &[String]) -> f64 {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_is_attached_before_speaking() {
        assert_eq!(speakable("okay . so , how are you ?"), "okay. so, how are you?");
    }

    #[test]
    fn word_error_rate_counts_edits() {
        assert_eq!(wer(&words("a b c d"), &words("A b, c d.")), 0.0);
        assert_eq!(wer(&words("a b c d"), &words("a x c")), 0.5);
    }
}
