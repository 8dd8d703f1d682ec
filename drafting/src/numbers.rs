//! Finding the numbers in text, whether written as digits ("5", "2.5") or words ("five",
//! "twenty-five"), so a sentence and its cited transcript can be compared either way.

/// The numbers in `text`, normalised to their shortest decimal form ("05" → "5", "2.50" → "2.5").
/// Spoken forms count too: "one twenty over eighty" (120, 80), "one hundred point four" (100.4),
/// "a week" (1); "the last one" is a pronoun, not a number.
pub fn numbers_in(text: &str) -> Vec<String> {
    let tokens: Vec<String> = tokens(text).collect();
    let mut out = Vec::new();
    let mut words: Vec<u64> = Vec::new();
    let mut decimals: Option<String> = None;
    let flush = |words: &mut Vec<u64>, decimals: &mut Option<String>, out: &mut Vec<String>| {
        match (combine(words), decimals.take()) {
            (whole, Some(d)) if !d.is_empty() => out.push(format!("{}.{d}", whole.unwrap_or(0))),
            (Some(v), _) => out.push(v.to_string()),
            (None, _) => {}
        }
        words.clear();
    };
    for (i, token) in tokens.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| tokens[p].as_str());
        let next = tokens.get(i + 1).map(String::as_str);
        if let Some(d) = decimals.as_mut() {
            // After "point", each spoken digit is one decimal place: "point zero five" → .05.
            match word_value(token).filter(|v| *v < 10) {
                Some(v) => {
                    d.push_str(&v.to_string());
                    continue;
                }
                None => flush(&mut words, &mut decimals, &mut out),
            }
        }
        if let Some(n) = digits(token) {
            flush(&mut words, &mut decimals, &mut out);
            out.push(n);
        } else if token == "point" && (!words.is_empty() || next.and_then(word_value).is_some_and(|v| v < 10)) {
            decimals = Some(String::new());
        } else if token == "one" && words.is_empty() && previous.is_some_and(|p| PRONOUN_ONE.contains(&p)) {
            // "the last one was minor": not a count.
        } else if let Some(v) = word_value(token) {
            words.push(v);
        } else if matches!(token.as_str(), "a" | "an") && words.is_empty() && a_unit_follows(&tokens[i + 1..]) {
            flush(&mut words, &mut decimals, &mut out);
            out.push("1".into());
        } else if token != "and" || words.is_empty() {
            flush(&mut words, &mut decimals, &mut out);
        }
    }
    flush(&mut words, &mut decimals, &mut out);
    out
}

/// Words before which "one" stands for a thing, not a count.
const PRONOUN_ONE: &[&str] = &[
    "the", "last", "this", "that", "which", "no", "any", "each", "every", "another", "other",
];

/// "a week", "a full week", "an hour": a unit of time after "a".
fn a_unit_follows(rest: &[String]) -> bool {
    let time = |word: &String| TIME_UNITS.iter().any(|(u, _)| u == word);
    match rest {
        [unit, ..] if time(unit) => true,
        [adjective, unit, ..] => matches!(adjective.as_str(), "full" | "whole" | "single") && time(unit),
        _ => false,
    }
}

/// The units of time that durations in `text` are counted in: "four days", "several years",
/// "a few months", "weeks ago".
pub(crate) fn duration_units(text: &str) -> Vec<&'static str> {
    let tokens: Vec<String> = tokens(text).collect();
    let mut out: Vec<&'static str> = quantities(text).into_iter().map(|(_, u)| u).collect();
    for (i, token) in tokens.iter().enumerate() {
        let Some(&(_, unit)) = TIME_UNITS.iter().find(|(u, _)| u == token) else {
            continue;
        };
        let vague = i > 0 && matches!(tokens[i - 1].as_str(), "several" | "few" | "couple" | "many" | "some");
        let ago = tokens.get(i + 1).is_some_and(|n| n == "ago");
        if (vague || ago) && !out.contains(&unit) {
            out.push(unit);
        }
    }
    out
}

const TIME_UNITS: &[(&str, &str)] = &[
    ("minute", "minute"),
    ("minutes", "minute"),
    ("min", "minute"),
    ("hour", "hour"),
    ("hours", "hour"),
    ("day", "day"),
    ("days", "day"),
    ("week", "week"),
    ("weeks", "week"),
    ("wk", "week"),
    ("wks", "week"),
    ("month", "month"),
    ("months", "month"),
    ("mo", "month"),
    ("year", "year"),
    ("years", "year"),
    ("yr", "year"),
    ("yrs", "year"),
];

/// Amounts of a drug: each number directly followed by a unit of mass, volume or dose
/// ("20 mg", "six hundred milligrams").
pub(crate) fn amounts(text: &str) -> Vec<String> {
    const UNITS: &[&str] = &[
        "mg",
        "mgs",
        "milligram",
        "milligrams",
        "mcg",
        "microgram",
        "micrograms",
        "g",
        "gram",
        "grams",
        "ml",
        "milliliter",
        "milliliters",
        "cc",
        "unit",
        "units",
        "iu",
        "meq",
    ];
    let tokens: Vec<String> = tokens(text).collect();
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        // "20mg" written as one word.
        if let Some(n) = digits(token).filter(|_| UNITS.iter().any(|u| token.ends_with(u) && token.len() > u.len())) {
            out.push(n);
            continue;
        }
        if i == 0 || !UNITS.contains(&token.as_str()) {
            continue;
        }
        let mut first = i;
        while first > 0 && (word_value(&tokens[first - 1]).is_some() || digits(&tokens[first - 1]).is_some()) {
            first -= 1;
        }
        if first < i
            && let Some(n) = numbers_in(&tokens[first..i].join(" ")).pop()
        {
            out.push(n);
        }
    }
    out
}

/// Durations: each number directly followed by a unit of time ("4 weeks", "four days", "a week"),
/// with the unit in the singular.
pub(crate) fn quantities(text: &str) -> Vec<(String, &'static str)> {
    let tokens: Vec<String> = tokens(text).collect();
    let numeric = |t: &str| digits(t).is_some() || word_value(t).is_some() || matches!(t, "a" | "an");
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Some(&(_, unit)) = TIME_UNITS.iter().find(|(u, _)| u == token) else {
            continue;
        };
        // "once a day" is how often, not how long.
        let how_often = |at: usize| {
            matches!(tokens[at].as_str(), "a" | "an")
                && at > 0
                && matches!(tokens[at - 1].as_str(), "once" | "twice" | "times" | "per" | "every")
        };
        let start = match i {
            0 => continue,
            _ if how_often(i - 1) => continue,
            _ if numeric(&tokens[i - 1]) => i - 1,
            _ if i >= 2 && matches!(tokens[i - 1].as_str(), "full" | "whole") && numeric(&tokens[i - 2]) => i - 2,
            _ => continue,
        };
        // The whole spoken number before the unit: walk back over number words.
        let mut first = start;
        while first > 0 && (word_value(&tokens[first - 1]).is_some() || tokens[first - 1] == "point") {
            first -= 1;
        }
        if let Some(n) = numbers_in(&tokens[first..=i].join(" ")).pop() {
            out.push((n, unit));
        }
    }
    out
}

fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    // "1,000" is one number: drop commas between digits first.
    let chars: Vec<char> = text.chars().collect();
    let joined: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            !(c == ','
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
        })
        // Punctuation between words ends a spoken number: "sixty, one thirty" is 60 and 130.
        .map(|(_, &c)| {
            if matches!(c, ',' | ';' | ':' | '/' | '(' | ')') {
                '~'
            } else {
                c
            }
        })
        .collect();
    joined
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '~'))
        .flat_map(|t| t.split_inclusive('~').map(|p| p.to_string()).collect::<Vec<_>>())
        .flat_map(|t| match t.strip_suffix('~') {
            Some(word) => vec![word.to_string(), "~".to_string()],
            None => vec![t],
        })
        .map(|t| t.trim_matches('.').to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

fn digits(token: &str) -> Option<String> {
    if !token.chars().next()?.is_ascii_digit() {
        return None;
    }
    // "120mg" → "120": the unit is not part of the number.
    let end = token
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(token.len());
    let n: f64 = token[..end].parse().ok()?;
    Some(if n.fract() == 0.0 {
        format!("{}", n as u64)
    } else {
        format!("{n}")
    })
}

pub(crate) fn word_value(token: &str) -> Option<u64> {
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = SMALL.iter().position(|w| *w == token) {
        return Some(i as u64);
    }
    if let Some(i) = TENS.iter().position(|w| *w == token) {
        return Some(20 + 10 * i as u64);
    }
    match token {
        "hundred" => Some(100),
        "thousand" => Some(1000),
        _ => None,
    }
}

/// "twenty five" → 25, "one hundred twenty" → 120, "hundred" → 100, and the way readings are
/// spoken: "one twenty" → 120, "one thirty five" → 135.
fn combine(words: &[u64]) -> Option<u64> {
    if words.is_empty() {
        return None;
    }
    let (mut total, mut current) = (0u64, 0u64);
    for &w in words {
        match w {
            100 => current = current.max(1) * 100,
            1000 => {
                total += current.max(1) * 1000;
                current = 0;
            }
            10..=90 if (1..=9).contains(&current) => current = current * 100 + w,
            _ => current += w,
        }
    }
    Some(total + current)
}

#[cfg(test)]
mod tests {
    use super::{numbers_in, quantities};

    #[test]
    fn digits_and_words_normalise_alike() {
        assert_eq!(numbers_in("BP 120/80, 2.50 mg, 05 days"), ["120", "80", "2.5", "5"]);
        assert_eq!(numbers_in("about twenty-five years and five weeks"), ["25", "5"]);
        assert_eq!(numbers_in("one hundred and twenty over eighty"), ["120", "80"]);
        assert_eq!(numbers_in("lisinopril 20mg"), ["20"]);
        assert!(numbers_in("no numbers here.").is_empty());
        assert_eq!(
            numbers_in("one twenty over sixty, one thirty five"),
            ["120", "60", "135"]
        );
        assert_eq!(
            numbers_in("one hundred point four and point five centimeters"),
            ["100.4", "0.5"]
        );
        assert_eq!(numbers_in("ninety eight point six"), ["98.6"]);
        assert_eq!(numbers_in("1,000 mg for a full week, then an hour"), ["1000", "1", "1"]);
        assert_eq!(numbers_in("the last one was minor"), Vec::<String>::new());
        assert_eq!(numbers_in("a lot of pain"), Vec::<String>::new());
        assert_eq!(
            quantities("the last four days, 4 weeks, a full week, twenty five years"),
            [
                ("4".into(), "day"),
                ("4".into(), "week"),
                ("1".into(), "week"),
                ("25".into(), "year")
            ]
        );
    }
}
