//! Whisper thinks in sub-word tokens; clinicians and validators think in words.

use protocol::Word;

/// One decoded token: its text, its time span (ms) and its probability.
pub(crate) struct Token {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub p: f32,
}

/// Groups tokens into words: a token that starts with a space starts a new word. A word's
/// confidence is the product of its tokens' probabilities, i.e. the probability of the whole word.
pub(crate) fn words(tokens: &[Token]) -> Vec<Word> {
    let mut words: Vec<Word> = Vec::new();
    for t in tokens {
        let starts_word = t.text.starts_with(' ') || words.is_empty();
        let is_punctuation = t.text.trim().chars().all(|c| c.is_ascii_punctuation());
        match words.last_mut() {
            Some(w) if !starts_word || (is_punctuation && !t.text.starts_with(' ')) => {
                w.text.push_str(&t.text);
                w.end_ms = w.end_ms.max(t.end_ms);
                if !is_punctuation {
                    w.confidence *= t.p;
                }
            }
            _ => words.push(Word {
                text: t.text.trim_start().to_string(),
                start_ms: t.start_ms,
                end_ms: t.end_ms,
                confidence: t.p,
            }),
        }
    }
    words.retain(|w| !w.text.trim().is_empty());
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, start_ms: u64, p: f32) -> Token {
        Token {
            text: text.into(),
            start_ms,
            end_ms: start_ms + 100,
            p,
        }
    }

    #[test]
    fn subword_tokens_become_words_with_joint_confidence() {
        let w = words(&[
            tok(" Lis", 0, 0.9),
            tok("in", 100, 0.5),
            tok("opril", 200, 0.8),
            tok(".", 300, 0.1),
            tok(" daily", 400, 0.99),
        ]);
        let texts: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["Lisinopril.", "daily"]);
        assert!(
            (w[0].confidence - 0.36).abs() < 1e-6,
            "punctuation does not lower confidence"
        );
        assert_eq!((w[0].start_ms, w[0].end_ms), (0, 400));
    }
}
