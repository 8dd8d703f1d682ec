//! Finding the numbers in text, whether written as digits ("5", "2.5") or words ("five",
//! "twenty-five"), so a sentence and its cited transcript can be compared either way.

/// The numbers in `text`, normalised to their shortest decimal form ("05" → "5", "2.50" → "2.5").
pub fn numbers_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    let flush = |words: &mut Vec<u64>, out: &mut Vec<String>| {
        if let Some(v) = combine(words) {
            out.push(v.to_string());
        }
        words.clear();
    };
    for token in tokens(text) {
        if let Some(n) = digits(&token) {
            flush(&mut words, &mut out);
            out.push(n);
        } else if let Some(v) = word_value(&token) {
            words.push(v);
        } else if token != "and" || words.is_empty() {
            flush(&mut words, &mut out);
        }
    }
    flush(&mut words, &mut out);
    out
}

fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|t| t.trim_matches('.').to_ascii_lowercase())
        .filter(|t| !t.is_empty())
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

fn word_value(token: &str) -> Option<u64> {
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

/// "twenty five" → 25, "one hundred twenty" → 120, "hundred" → 100.
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
            _ => current += w,
        }
    }
    Some(total + current)
}

#[cfg(test)]
mod tests {
    use super::numbers_in;

    #[test]
    fn digits_and_words_normalise_alike() {
        assert_eq!(numbers_in("BP 120/80, 2.50 mg, 05 days"), ["120", "80", "2.5", "5"]);
        assert_eq!(numbers_in("about twenty-five years and five weeks"), ["25", "5"]);
        assert_eq!(numbers_in("one hundred and twenty over eighty"), ["120", "80"]);
        assert_eq!(numbers_in("lisinopril 20mg"), ["20"]);
        assert!(numbers_in("no numbers here.").is_empty());
    }
}
