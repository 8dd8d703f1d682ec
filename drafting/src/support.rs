//! Does what a note sentence claims appear in the segments it cites?
//!
//! A sentence's clinical content is read as *concepts* (findings, diagnoses, body sites, tests,
//! referrals, follow-up, dosing frequency, vital signs: `lexicon/concepts.txt`), each affirmed or
//! denied, plus the remaining content words. Every concept must be named by a cited segment, in
//! any of its forms ("shortness of breath" is supported by "I can't catch my breath"), with the
//! same polarity where the segments make it clear; and most of the other content words must be
//! there too. Segments with no clinical content (greetings, small talk) therefore support nothing.
//!
//! Numbers, medications and laterality are checked beside this, in `validate`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use protocol::{Flag, FlagKind, Segment};

/// What kind of clinical content a concept is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConceptKind {
    Finding,
    Diagnosis,
    Site,
    Test,
    Referral,
    FollowUp,
    Frequency,
    Vital,
}

impl ConceptKind {
    const ALL: [ConceptKind; 8] = [
        ConceptKind::Finding,
        ConceptKind::Diagnosis,
        ConceptKind::Site,
        ConceptKind::Test,
        ConceptKind::Referral,
        ConceptKind::FollowUp,
        ConceptKind::Frequency,
        ConceptKind::Vital,
    ];

    /// The kind's name, as the lexicon file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConceptKind::Finding => "finding",
            ConceptKind::Diagnosis => "diagnosis",
            ConceptKind::Site => "site",
            ConceptKind::Test => "test",
            ConceptKind::Referral => "referral",
            ConceptKind::FollowUp => "followup",
            ConceptKind::Frequency => "frequency",
            ConceptKind::Vital => "vital",
        }
    }
}

#[derive(Debug)]
pub struct Concept {
    pub kind: ConceptKind,
    pub name: String,
    /// Surface forms, each as normalised tokens.
    forms: Vec<Vec<String>>,
}

/// Whether a mention is asserted, denied, or (a question nobody clearly answered) neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Polarity {
    Affirmed,
    Negated,
    Unknown,
}

/// One concept named in a text: which, how, and where (clause, first token, tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub concept: usize,
    pub polarity: Polarity,
    clause: usize,
    start: usize,
    len: usize,
}

pub fn lexicon() -> &'static [Concept] {
    static LEXICON: OnceLock<Vec<Concept>> = OnceLock::new();
    LEXICON.get_or_init(|| parse_lexicon(include_str!("../lexicon/concepts.txt")).expect("the shipped lexicon parses"))
}

fn parse_lexicon(text: &str) -> Result<Vec<Concept>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("lexicon line {}: {why}: {line}", n + 1);
        let (head, forms) = line.split_once(':').ok_or_else(|| bad("no ':'"))?;
        let (kind, name) = head.split_once(' ').ok_or_else(|| bad("no kind"))?;
        let kind = *ConceptKind::ALL
            .iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| bad("unknown kind"))?;
        let forms: Vec<Vec<String>> = forms
            .split('|')
            .map(|f| clauses(f).into_iter().flat_map(|c| c.tokens).collect::<Vec<_>>())
            .filter(|f| !f.is_empty())
            .collect();
        if forms.is_empty() {
            return Err(bad("no surface forms"));
        }
        out.push(Concept {
            kind,
            name: name.trim().to_string(),
            forms,
        });
    }
    Ok(out)
}

/// A clause of a text: its normalised tokens, and whether it asks rather than states.
#[derive(Debug, Clone)]
struct Clause {
    tokens: Vec<String>,
    question: bool,
}

/// Splits at sentence ends and semicolons (a period between digits is a decimal point) and
/// normalises each token: lower case, contractions opened ("don't" → "do not"), light stemming.
fn clauses(text: &str) -> Vec<Clause> {
    let lower = text
        .to_lowercase()
        .replace('\u{2019}', "'")
        .replace("can't", "can not")
        .replace("ca n't", "can not")
        .replace("won't", "will not")
        .replace("wo n't", "will not")
        .replace("n't", " not")
        .replace("f/u", "follow up")
        .replace("w/", "with ");
    let chars: Vec<char> = lower.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let decimal =
            c == '.' && i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if matches!(c, '.' | '!' | '?' | ';') && !decimal {
            push_clause(&mut out, &current, c == '?');
            current.clear();
        } else {
            current.push(c);
        }
    }
    push_clause(&mut out, &current, false);
    out
}

fn push_clause(out: &mut Vec<Clause>, text: &str, question: bool) {
    // Commas stay, as tokens of their own: they end a negation unless a list goes on.
    let text = text.replace(',', " , ");
    let tokens: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == ','))
        .map(|t| t.trim_matches('.'))
        .filter(|t| !t.is_empty())
        .map(stem)
        .collect();
    if !tokens.is_empty() {
        out.push(Clause { tokens, question });
    }
}

/// Strips the commonest English inflections so "hurts"/"hurt" and "knees"/"knee" meet. Both sides
/// of every comparison go through it, so its mistakes cancel out.
pub(crate) fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s").trim_end_matches('\'');
    if w.len() <= 3 || w.chars().any(|c| c.is_ascii_digit()) {
        return w.to_string();
    }
    for (suffix, keep) in [
        ("ness", ""),
        ("ity", ""),
        ("ive", "iv"),
        ("ies", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ] {
        if let Some(base) = w.strip_suffix(suffix) {
            let ok = match suffix {
                "s" => !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is"),
                "es" => base.ends_with(['s', 'x', 'z']) || base.ends_with("ch") || base.ends_with("sh"),
                _ => base.len() >= 3,
            };
            if ok && base.len() >= 3 {
                return format!("{base}{keep}");
            }
        }
    }
    w.to_string()
}

const NEGATION_CUES: &[&str] = &[
    "no", "not", "deni", "deny", "denies", "without", "never", "negative", "none", "nor", "neither",
];
/// These always end what a negation covers: "no fever but a cough".
const HARD_BREAKERS: &[&str] = &["but", "however", "although", "though", "except", "yet", "whereas"];
/// Once a negated list has named something, these start a new assertion: "no fever, my knee hurts".
const SOFT_BREAKERS: &[&str] = &[
    "my", "i", "it", "he", "she", "we", "they", "report", "endors", "admit", "has", "is", "was", "positive",
];
/// How many words a negation reaches past the cue, or past the last thing it named ("denies
/// fever, chills, night sweats or weight loss"); "without" reaches only its object.
const NEGATION_REACH: usize = 6;
const WITHOUT_REACH: usize = 2;
/// Words that open an answer without saying yes or no.
const FILLERS: &[&str] = &[
    "um", "uh", "uhm", "er", "oh", "well", "so", "hmm", "okay", "ok", "you", "know", "like", ",",
];
const YES: &[&[&str]] = &[
    &["yes"],
    &["yeah"],
    &["yep"],
    &["yup"],
    &["mhm"],
    &["mm", "hmm"],
    &["uh", "huh"],
    &["sure"],
    &["definitely"],
    &["correct"],
    &["sometim"],
    &["i", "do"],
    &["i", "did"],
    &["i", "have"],
    &["it", "doe"],
    &["it", "did"],
    &["a", "little"],
    &["a", "bit"],
];
const NO: &[&str] = &["no", "nope", "nah", "never", "not", "none", "neither", "nothing"];

/// Whether an answer clause says yes or no, from its first few words.
fn answer_polarity(answer: &[String]) -> Polarity {
    let start = answer
        .iter()
        .position(|w| !FILLERS.contains(&w.as_str()))
        .unwrap_or(answer.len());
    for i in start..answer.len().min(start + 6) {
        if NO.contains(&answer[i].as_str()) {
            return Polarity::Negated;
        }
        if YES
            .iter()
            .any(|yes| answer[i..].starts_with(&yes.iter().map(|w| w.to_string()).collect::<Vec<_>>()))
        {
            return Polarity::Affirmed;
        }
    }
    Polarity::Unknown
}

/// The concepts named in each clause, with their polarity. For a question the answer decides: the
/// first clause after it that is not a question, if it opens with yes or no.
fn mentions(clauses: &[Clause]) -> Vec<Mention> {
    let mut out = Vec::new();
    for (ci, clause) in clauses.iter().enumerate() {
        let answer = if clause.question {
            // The answer may start with a false start ("um, uh, it... i think i do."): a first
            // clause that names nothing is read together with the next.
            let mut answer = clauses[ci + 1..].iter().take_while(|c| !c.question);
            match answer.next() {
                None => Polarity::Unknown,
                Some(first) => match answer_polarity(&first.tokens) {
                    Polarity::Unknown if mentions(std::slice::from_ref(first)).is_empty() => {
                        let mut both = first.tokens.clone();
                        both.extend(answer.next().map(|c| c.tokens.clone()).unwrap_or_default());
                        answer_polarity(&both)
                    }
                    polarity => polarity,
                },
            }
        } else {
            Polarity::Unknown
        };
        let t = &clause.tokens;
        // The negation in force: up to which token it reaches, and whether it has named a concept.
        let (mut negated_until, mut named_since_cue, mut just_named) = (0usize, false, false);
        let mut i = 0;
        while i < t.len() {
            if let Some((concept, len)) = concept_at(&t[i..]) {
                let negating = i < negated_until;
                let polarity = if clause.question {
                    answer
                } else if negating {
                    Polarity::Negated
                } else {
                    Polarity::Affirmed
                };
                out.push(Mention {
                    concept,
                    polarity,
                    clause: ci,
                    start: i,
                    len,
                });
                if negating {
                    named_since_cue = true;
                    negated_until = negated_until.max(i + len + NEGATION_REACH / 2);
                }
                just_named = true;
                i += len;
                continue;
            }
            let w = t[i].as_str();
            let list_goes_on = std::mem::replace(&mut just_named, false);
            if w == "," {
                // "no fever, chills or cough" goes on; "if it's not better, come back" does not.
                if !list_goes_on {
                    negated_until = 0;
                }
            } else if NEGATION_CUES.contains(&w) {
                let reach = if w == "without" { WITHOUT_REACH } else { NEGATION_REACH };
                negated_until = i + 1 + reach;
                named_since_cue = false;
            } else if HARD_BREAKERS.contains(&w) || (named_since_cue && SOFT_BREAKERS.contains(&w)) {
                negated_until = 0;
            }
            i += 1;
        }
    }
    out
}

/// The concept named at the start of `tokens`, by its longest surface form ("chest pain" before
/// "pain"), and how many tokens that form takes.
fn concept_at(tokens: &[String]) -> Option<(usize, usize)> {
    /// (concept, surface form) pairs.
    type Forms = Vec<(usize, Vec<String>)>;
    // Surface forms by their first word, each list longest first: looked up once per token.
    static BY_FIRST_WORD: OnceLock<HashMap<String, Forms>> = OnceLock::new();
    let by_first_word = BY_FIRST_WORD.get_or_init(|| {
        let mut map: HashMap<String, Forms> = HashMap::new();
        for (i, concept) in lexicon().iter().enumerate() {
            for form in &concept.forms {
                map.entry(form[0].clone()).or_default().push((i, form.clone()));
            }
        }
        for forms in map.values_mut() {
            forms.sort_by_key(|(_, f)| std::cmp::Reverse(f.len()));
        }
        map
    });
    by_first_word
        .get(tokens.first()?)?
        .iter()
        .find(|(_, f)| tokens.starts_with(f))
        .map(|(concept, f)| (*concept, f.len()))
}

/// Words a note uses to frame a fact rather than state one ("patient reports", "plan to
/// continue"): they need no support of their own.
const FRAMING: &[&str] = &[
    "patient",
    "pt",
    "report",
    "reports",
    "state",
    "note",
    "present",
    "complain",
    "describ",
    "describe",
    "endors",
    "endorse",
    "deni",
    "deny",
    "history",
    "hx",
    "today",
    "current",
    "currently",
    "visit",
    "discuss",
    "advis",
    "advise",
    "recommend",
    "plan",
    "continue",
    "start",
    "will",
    "also",
    "with",
    "without",
    "given",
    "prescrib",
    "prescribe",
    "instruct",
    "experienc",
    "experience",
    "having",
    "associat",
    "associate",
    "ongoing",
    "recent",
    "recently",
    "the",
    "and",
    "for",
    "has",
    "had",
    "have",
    "was",
    "were",
    "are",
    "his",
    "her",
    "their",
    "she",
    "him",
    "who",
    "which",
    "that",
    "this",
    "these",
    "those",
    "from",
    "about",
    "after",
    "before",
    "since",
    "due",
    "any",
    "all",
    "other",
    "well",
    "per",
    "into",
    "onto",
    "over",
    "under",
    "some",
    "such",
    "been",
    "being",
    "not",
    "but",
    "can",
    "may",
    "should",
    "would",
    "could",
    "further",
    "additional",
    "regard",
    "regarding",
    "include",
    "includ",
    "based",
    "clinician",
    "doctor",
    "physician",
    "provider",
    "mr",
    "mrs",
    "ms",
    "male",
    "female",
    "man",
    "woman",
    "year",
    "old",
    "presents",
    "presenting",
    "status",
    "time",
    "then",
    "again",
    "within",
    "daily",
    "noted",
    "need",
    "take",
    "taking",
    "taken",
    "use",
    "using",
    "used",
    "medication",
    "medic",
    "dose",
    "also",
    "both",
    "each",
    "mg",
    "milligram",
    "mcg",
    "unit",
    "ml",
    "day",
    "week",
    "month",
    "hour",
    "minute",
    "time",
    "per",
    "now",
    "if",
    "as",
    "to",
    "of",
    "in",
    "on",
    "at",
    "by",
    "or",
    "is",
    "be",
    "it",
    "an",
    "a",
    "on",
    "up",
    "out",
    "off",
    "there",
    "what",
    "when",
    "how",
    "while",
    "last",
    "past",
    "initial",
    "initially",
    "new",
    "mild",
    "moderate",
    "evaluation",
    "evaluate",
    "assess",
    "assessment",
    "manage",
    "management",
    "treatment",
    "treat",
    "therapy",
    "order",
    "ordered",
    "obtain",
    "check",
    "monitor",
    "review",
    "reviewed",
    "result",
    "finding",
    "exam",
    "examination",
    "consistent",
    "likely",
    "possible",
    "suspect",
    "suspected",
    "concern",
    "concerning",
    "symptom",
    "sign",
    "condition",
    "problem",
    "issue",
    "episode",
    "episod",
    "occasional",
    "occasionally",
    "intermittent",
    "intermittently",
    "persistent",
    "chronic",
    "acute",
    "bilateral",
    "left",
    "right",
    "side",
    "area",
    "region",
    "decide",
    "whether",
    "determine",
    "appropriate",
    "necessary",
    "needed",
    "ne",
    "possibly",
    "likely",
    "again",
    "return",
    "assessment",
    "plan",
    "subjective",
    "objective",
    "impression",
    "diagnosi",
    "follow",
    "agent",
];

/// Same-meaning words for the coverage check, each mapped to one representative: a note says
/// "worsening" where the patient said "getting worse".
fn canonical_word(w: &str) -> &str {
    match w {
        "worsen" | "wors" | "worse" | "progress" | "progressive" | "increas" | "increase" | "escalat" => "worse",
        "improv" | "improve" | "better" | "resolv" | "resolve" | "decreas" | "decrease" | "eas" | "ease" => "better",
        "began" | "begin" | "start" | "onset" | "started" | "stard" => "start",
        "sever" | "severe" | "bad" | "terrible" | "awful" | "significant" | "worst" | "excruciat" => "severe",
        "prior" | "previou" | "previous" | "previously" | "before" | "ago" => "before",
        "stop" | "discontinu" | "discontinue" | "quit" | "hold" => "stop",
        "medicine" | "medic" | "medication" | "pill" | "drug" | "prescription" => "medication",
        "sent" => "send",
        "took" => "take",
        "gave" => "give",
        "felt" => "feel",
        "went" => "go",
        "yourself" | "himself" | "herself" | "myself" | "themselv" => "self",
        "daytime" | "day" => "day",
        "nighttime" | "night" | "overnight" => "night",
        "record" | "reading" | "log" => "record",
        _ => w,
    }
}

/// Why a sentence is not supported by the segments it cites: one flag per unsupported concept or
/// negation, and one for content words the segments lack, if most of them are missing.
pub fn unsupported(sentence: &str, cited: &[&Segment]) -> Vec<Flag> {
    let lexicon = lexicon();
    let source_clauses: Vec<Clause> = cited.iter().flat_map(|s| clauses(&s.text)).collect();
    let mut source: HashMap<usize, HashSet<Polarity>> = HashMap::new();
    for m in mentions(&source_clauses) {
        source.entry(m.concept).or_default().insert(m.polarity);
    }
    let sentence_clauses = clauses(sentence);
    let mut flags = Vec::new();
    let mut seen = HashSet::new();
    for m in mentions(&sentence_clauses) {
        let concept = &lexicon[m.concept];
        let polarities = supporting_polarities(m.concept, &source);
        if polarities.is_empty() {
            if seen.insert(concept.name.clone()) {
                flags.push(Flag::new(FlagKind::UnsupportedClaim, concept.name.clone()));
            }
            continue;
        }
        // An unanswered question says nothing either way; any clear statement decides.
        let clear: HashSet<Polarity> = polarities.into_iter().filter(|p| *p != Polarity::Unknown).collect();
        if !clear.is_empty()
            && m.polarity != Polarity::Unknown
            && !clear.contains(&m.polarity)
            && seen.insert(concept.name.clone())
        {
            flags.push(Flag::new(FlagKind::NegationMismatch, concept.name.clone()));
        }
    }
    for words in uncovered_words(&sentence_clauses, &source_clauses) {
        flags.push(Flag::new(FlagKind::UnsupportedClaim, words));
    }
    let source_words: HashSet<String> = source_clauses.iter().flat_map(|c| c.tokens.iter().cloned()).collect();
    for abbreviation in unexplained_abbreviations(sentence, &source_words) {
        if seen.insert(abbreviation.clone()) {
            flags.push(Flag::new(FlagKind::UnsupportedClaim, abbreviation));
        }
    }
    flags
}

/// The polarities with which the cited segments name `concept`, or a narrower concept of the same
/// name ("pain" is supported by "chest pain"; a generic "referral" by any named specialty).
fn supporting_polarities(concept: usize, source: &HashMap<usize, HashSet<Polarity>>) -> HashSet<Polarity> {
    let lexicon = lexicon();
    let wanted = &lexicon[concept];
    let mut out = HashSet::new();
    for (&c, polarities) in source {
        let have = &lexicon[c];
        // Only for things that come in kinds: "daily" is not supported by "twice daily".
        let has_kinds = matches!(
            wanted.kind,
            ConceptKind::Finding | ConceptKind::Diagnosis | ConceptKind::Site | ConceptKind::Test
        );
        let narrower = (has_kinds && have.name.split(' ').any(|w| w == wanted.name))
            || (wanted.kind == ConceptKind::Referral
                && wanted.name == "referral"
                && have.kind == ConceptKind::Referral);
        if c == concept || narrower {
            out.extend(polarities);
        }
    }
    out
}

/// For each clause of the sentence: its content words (outside named concepts, numbers and framing
/// words) that no cited segment has, joined for a flag, if they are at least two and more than
/// half of the clause's.
fn uncovered_words(sentence: &[Clause], source: &[Clause]) -> Vec<String> {
    let have: HashSet<&str> = source
        .iter()
        .flat_map(|c| c.tokens.iter())
        .map(|w| canonical_word(w))
        .collect();
    let mut out = Vec::new();
    for clause in sentence {
        let (mut content, mut missing) = (0usize, Vec::<String>::new());
        let t = &clause.tokens;
        let mut i = 0;
        while i < t.len() {
            if let Some((_, len)) = concept_at(&t[i..]) {
                i += len;
                continue;
            }
            let w = t[i].as_str();
            i += 1;
            if w.len() < 3
                || w.chars().any(|c| c.is_ascii_digit())
                || FRAMING.contains(&w)
                || NEGATION_CUES.contains(&w)
                || crate::validate::is_stopword(w)
            {
                continue;
            }
            content += 1;
            if !have.contains(canonical_word(w)) && !missing.contains(&w.to_string()) {
                missing.push(w.to_string());
            }
        }
        if missing.len() >= 2 && missing.len() * 2 > content {
            out.push(missing.into_iter().take(4).collect::<Vec<_>>().join(", "));
        }
    }
    out
}

/// Abbreviations notes use for framing, not for facts of this visit.
const NOTE_ABBREVIATIONS: &[&str] = &[
    "PT", "PTS", "HPI", "ROS", "PMH", "PSH", "FH", "SH", "CC", "AP", "A/P", "PE", "PO", "IV", "IM", "SQ", "SC", "MG",
    "MCG", "ML", "KG", "LB", "LBS", "CM", "MM", "MMHG", "BPM", "DR", "MD", "DO", "NP", "PA", "RN", "MA", "US", "OK",
    "AM", "PM", "NKDA", "NAD", "WNL", "HEENT", "AND", "OR", "THE", "NO", "PRN", "BID", "TID", "QID", "QD", "QHS",
    "QAM", "QPM", "RTC", "F/U", "FU", "II", "III", "IV", "S/P", "SP", "R/O", "RO", "C/O", "H/O", "HX", "DX", "TX",
    "RX", "SX", "FX", "ER", "ED", "ICU", "OTC",
];

/// Clinical abbreviations and what they stand for: one is supported by a segment that says any
/// distinctive word of its expansion ("SLR" by "straight leg raise").
const EXPANSIONS: &[(&str, &str)] = &[
    ("SLR", "straight leg raise"),
    ("LE", "lower extremity extremities leg legs"),
    ("LES", "lower extremity extremities leg legs"),
    ("UE", "upper extremity extremities arm arms"),
    ("SEM", "systolic ejection murmur"),
    ("AC", "acromioclavicular"),
    ("SC", "sternoclavicular"),
    ("RA", "room air rheumatoid"),
    ("ROM", "range motion"),
    ("TTP", "tender tenderness palpation"),
    ("SOB", "breath breathing"),
    ("DOE", "exertion breath"),
    ("CP", "chest"),
    ("HA", "headache headaches"),
    ("N/V", "nausea vomiting"),
    ("LBP", "back"),
    ("DM", "diabetes sugar sugars"),
    ("DM2", "diabetes sugar sugars"),
    ("T2DM", "diabetes sugar sugars"),
    ("HTN", "blood pressure hypertension"),
    ("HLD", "cholesterol lipids"),
    ("CHF", "heart failure"),
    ("CAD", "coronary heart"),
    ("AFIB", "fibrillation"),
    ("COPD", "copd lung lungs emphysema"),
    ("URI", "cold respiratory"),
    ("UTI", "urinary infection bladder"),
    ("GERD", "reflux heartburn"),
    ("BPH", "prostate"),
    ("OSA", "apnea"),
    ("CKD", "kidney kidneys"),
    ("MVA", "accident crash collision"),
    ("JVD", "jugular"),
    ("RRR", "regular rhythm"),
    ("CTAB", "clear lungs"),
    ("CTA", "clear lungs"),
    ("PERRLA", "pupils"),
    ("EOMI", "eye movements"),
    (
        "NSAID",
        "nsaid nsaids ibuprofen naproxen motrin advil aleve anti-inflammatory inflammatory",
    ),
    (
        "NSAIDS",
        "nsaid nsaids ibuprofen naproxen motrin advil aleve anti-inflammatory inflammatory",
    ),
    ("PCP", "primary doctor"),
    ("OTC", "counter"),
    ("BMI", "bmi weight"),
    ("SPO2", "oxygen saturation sat"),
    ("HCV", "hepatitis"),
    ("HIV", "hiv"),
    ("PFT", "pulmonary function breathing"),
    ("PFTS", "pulmonary function breathing"),
];

/// Upper-case abbreviations in the sentence ("CEA", "PSA", "JVD") that the cited segments do not
/// say and that name no concept of the lexicon (those are checked as concepts): a small model
/// pads a list of tests or findings with them.
fn unexplained_abbreviations(sentence: &str, source_words: &HashSet<String>) -> Vec<String> {
    let lexicon_words: &HashSet<String> = lexicon_words();
    sentence
        .split(|c: char| !(c.is_alphanumeric() || c == '/'))
        .filter(|w| {
            (2..=6).contains(&w.len())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '/')
                && w.chars().filter(|c| c.is_ascii_uppercase()).count() >= 2
        })
        .filter(|w| !NOTE_ABBREVIATIONS.contains(w))
        .filter(|w| {
            let expansion = EXPANSIONS.iter().find(|(a, _)| a == w).map(|(_, e)| *e);
            !expansion.is_some_and(|e| e.split(' ').any(|word| source_words.contains(&stem(word))))
        })
        .filter(|w| {
            let lower = w.to_lowercase();
            let parts: Vec<&str> = lower.split('/').filter(|p| !p.is_empty()).collect();
            !parts
                .iter()
                .all(|p| source_words.contains(*p) || lexicon_words.contains(*p))
        })
        .map(str::to_string)
        .collect()
}

/// Every single word that is a surface form of some concept ("ct", "mri", "bp").
fn lexicon_words() -> &'static HashSet<String> {
    static WORDS: OnceLock<HashSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        lexicon()
            .iter()
            .flat_map(|c| c.forms.iter())
            .filter(|f| f.len() == 1)
            .map(|f| f[0].clone())
            .collect()
    })
}

/// The concepts a text names, with their polarity.
pub(crate) fn text_mentions(text: &str) -> Vec<Mention> {
    mentions(&clauses(text))
}

/// Whether a word names a body site ("knees").
pub(crate) fn is_site_word(word: &str) -> bool {
    let w = stem(&word.to_lowercase());
    lexicon()
        .iter()
        .filter(|c| c.kind == ConceptKind::Site)
        .any(|c| c.forms.iter().any(|f| f.len() == 1 && f[0] == w))
}

/// Vital signs with the reading said right after them: ("blood pressure", "130/80"),
/// ("heart rate", "58"); spoken readings too ("one twenty over sixty").
pub(crate) fn vital_readings(text: &str) -> Vec<(String, String)> {
    const REACH: usize = 6;
    let lexicon = lexicon();
    let clauses = clauses(text);
    let all = mentions(&clauses);
    let mut out = Vec::new();
    for (n, m) in all.iter().enumerate() {
        let concept = &lexicon[m.concept];
        if concept.kind != ConceptKind::Vital {
            continue;
        }
        let tokens = &clauses[m.clause].tokens;
        let after = m.start + m.len;
        // Up to the next concept in the clause, or a few words.
        let next = all[n + 1..]
            .iter()
            .find(|o| o.clause == m.clause)
            .map_or(tokens.len(), |o| o.start);
        let end = next.min(after + REACH).min(tokens.len());
        if after >= end {
            continue;
        }
        let words: Vec<&str> = tokens[after..end]
            .iter()
            .map(String::as_str)
            .take_while(|w| *w != ",")
            .collect();
        let numbers = crate::numbers_in(&words.join(" "));
        let reading = match (concept.name.as_str(), numbers.as_slice()) {
            ("blood pressure", [high, low, ..]) => format!("{high}/{low}"),
            (_, [first, ..]) => first.clone(),
            _ => continue,
        };
        out.push((concept.name.clone(), reading));
    }
    out
}

/// Whether a text names any clinical concept: a segment that does not (a greeting, small talk)
/// supports no clinical sentence.
pub fn has_clinical_content(text: &str) -> bool {
    !mentions(&clauses(text)).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Speaker;

    fn seg(id: u32, text: &str) -> Segment {
        Segment {
            id,
            start_ms: 0,
            end_ms: 1,
            speaker: Speaker::Patient,
            text: text.into(),
            confidence: 1.0,
            words: vec![],
        }
    }

    fn check(sentence: &str, segments: &[&str]) -> Vec<String> {
        let segs: Vec<Segment> = segments.iter().enumerate().map(|(i, t)| seg(i as u32 + 1, t)).collect();
        let cited: Vec<&Segment> = segs.iter().collect();
        unsupported(sentence, &cited).into_iter().map(|f| f.term).collect()
    }

    #[test]
    fn the_lexicon_parses_and_every_line_has_forms() {
        assert!(lexicon().len() > 150);
        assert!(parse_lexicon("finding x:").is_err());
        assert!(parse_lexicon("colour red: red").is_err());
    }

    #[test]
    fn paraphrases_are_supported() {
        assert!(check("Reports shortness of breath.", &["i just can't catch my breath lately"]).is_empty());
        assert!(check("History of hypertension.", &["i've had high blood pressure for years"]).is_empty());
        assert!(check("Left knee pain.", &["my left knee really hurts"]).is_empty());
        assert!(
            check(
                "Denies fever or chills.",
                &["any fevers or chills?", "no, nothing like that."]
            )
            .is_empty()
        );
        assert!(
            check(
                "Referral to physical therapy.",
                &["i'm going to send you to physical therapy"]
            )
            .is_empty()
        );
        assert!(check("Follow up in 2 weeks.", &["come back and see me in two weeks"]).is_empty());
    }

    #[test]
    fn invented_claims_are_flagged() {
        assert_eq!(
            check(
                "Referral may be necessary if the condition persists or worsens.",
                &["Good morning. What brings you in today?"]
            ),
            ["referral", "persist, worsen"]
        );
        assert_eq!(
            check(
                "Your blood pressure is higher than we want it to be.",
                &["these headaches are bad"]
            )[0],
            "blood pressure"
        );
        assert_eq!(
            check("Neurologist appointment scheduled.", &["the headaches started monday"]),
            ["neurology", "follow-up"]
        );
        assert_eq!(
            check("Ordered chest x-ray.", &["let's listen to your chest"]),
            ["x-ray"]
        );
    }

    #[test]
    fn negation_must_agree() {
        assert_eq!(check("Reports fever.", &["any fever?", "no."]), ["fever"]);
        assert_eq!(
            check("Denies chest pain.", &["yeah my chest hurts when i walk"]),
            ["chest pain"]
        );
        assert!(check("No fever; knee pain.", &["no fever, my knee hurts"]).is_empty());
    }

    #[test]
    fn small_talk_supports_nothing() {
        assert!(!has_clinical_content("Good morning. How was the drive in?"));
        assert!(has_clinical_content("my knee has been swollen"));
        assert!(
            !check(
                "Patient has worsening joint swelling.",
                &["good morning, how was the drive?"]
            )
            .is_empty()
        );
    }
}
