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

/// Speaks `lines` into one WAV at `out` (needs espeak-ng and sox).
pub fn synthesize(lines: &[(Voice, &str)], out: &Path) -> Result<(), String> {
    let dir = out.with_extension("parts");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut parts = Vec::new();
    for (i, (voice, text)) in lines.iter().enumerate() {
        let part = dir.join(format!("{i:04}.wav"));
        let voice = match voice {
            Voice::Doctor => "en-us+m3",
            Voice::Patient => "en-us+f2",
        };
        run(Command::new("espeak-ng")
            .args(["-v", voice, "-s", "150", "-w"])
            .arg(&part)
            .arg(speakable(text)))?;
        parts.push(part);
    }
    let result = run(Command::new("sox").args(&parts).arg(out));
    let _ = std::fs::remove_dir_all(&dir);
    result
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
