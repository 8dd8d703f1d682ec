//! Medication names and which of them name the same drug (`lexicon/medications.txt`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Each drug's first (generic) name, by index.
fn generic_names() -> &'static Vec<String> {
    static GENERIC: OnceLock<Vec<String>> = OnceLock::new();
    GENERIC.get_or_init(|| {
        include_str!("../lexicon/medications.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split([':', '|']).next().unwrap_or(l).trim().to_lowercase())
            .collect()
    })
}

/// The drug's generic name ("zoloft" → "sertraline"); an unknown name stays as it is.
pub(crate) fn canonical(name: &str) -> String {
    names()
        .get(name)
        .map_or_else(|| name.to_string(), |&drug| generic_names()[drug].clone())
}

/// Each single-word name → the index of its drug.
fn names() -> &'static HashMap<String, usize> {
    static NAMES: OnceLock<HashMap<String, usize>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut out = HashMap::new();
        let lines = include_str!("../lexicon/medications.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        for (drug, line) in lines.enumerate() {
            for name in line.split([':', '|']) {
                for word in name.split_whitespace() {
                    out.entry(word.to_lowercase()).or_insert(drug);
                }
            }
        }
        out
    })
}

pub(crate) fn is_known(word: &str) -> bool {
    names().contains_key(word)
}

/// Whether `words` (lower case) name the drug `name` names, under any of its names.
pub(crate) fn named_in(name: &str, words: &HashSet<String>) -> bool {
    if words.contains(name) {
        return true;
    }
    let Some(drug) = names().get(name) else {
        return false;
    };
    words.iter().any(|w| names().get(w) == Some(drug))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_and_generic_names_are_one_drug() {
        let said: HashSet<String> = ["start", "zoloft", "25", "mg"].map(String::from).into();
        assert!(named_in("sertraline", &said));
        assert!(!named_in("fluoxetine", &said));
        assert!(is_known("keppra") && is_known("lamotrigine"));
    }
}
