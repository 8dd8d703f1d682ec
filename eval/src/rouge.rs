//! ROUGE-1, ROUGE-2 and ROUGE-L (F1), with the tokenisation of Google's `rouge_score`: lowercase,
//! anything but letters and digits separates tokens. No stemming.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
}

pub fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn scores(reference: &str, candidate: &str) -> Scores {
    let (r, c) = (tokens(reference), tokens(candidate));
    Scores {
        rouge1: rouge_n(&r, &c, 1),
        rouge2: rouge_n(&r, &c, 2),
        rouge_l: rouge_l(&r, &c),
    }
}

fn f1(overlap: usize, reference: usize, candidate: usize) -> f64 {
    if overlap == 0 {
        return 0.0;
    }
    let p = overlap as f64 / candidate as f64;
    let r = overlap as f64 / reference as f64;
    2.0 * p * r / (p + r)
}

fn ngrams(t: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for g in t.windows(n) {
        *counts.entry(g).or_insert(0) += 1;
    }
    counts
}

fn rouge_n(reference: &[String], candidate: &[String], n: usize) -> f64 {
    let (r, c) = (ngrams(reference, n), ngrams(candidate, n));
    let overlap = c.iter().map(|(g, &k)| k.min(*r.get(g).unwrap_or(&0))).sum();
    f1(overlap, r.values().sum(), c.values().sum())
}

fn rouge_l(reference: &[String], candidate: &[String]) -> f64 {
    let mut prev = vec![0usize; candidate.len() + 1];
    for r in reference {
        let mut cur = vec![0usize; candidate.len() + 1];
        for (j, c) in candidate.iter().enumerate() {
            cur[j + 1] = if r == c { prev[j] + 1 } else { prev[j + 1].max(cur[j]) };
        }
        prev = cur;
    }
    f1(prev[candidate.len()], reference.len(), candidate.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rouge_score_on_small_cases() {
        // rouge_score: scorer.score("the cat sat on the mat", "the cat lay on the mat")
        let s = scores("The cat sat on the mat.", "the cat lay on the mat");
        assert!((s.rouge1 - 5.0 / 6.0).abs() < 1e-9, "{s:?}");
        assert!((s.rouge2 - 3.0 / 5.0).abs() < 1e-9, "{s:?}");
        assert!((s.rouge_l - 5.0 / 6.0).abs() < 1e-9, "{s:?}");
        assert_eq!(scores("a b", "c d"), Scores::default());
        assert_eq!(scores("", "a"), Scores::default());
    }
}
