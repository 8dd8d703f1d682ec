//! De-identification for quality review: the HIPAA Safe Harbor identifiers in a transcript and
//! its note replaced by consistent placeholders (`[NAME-1]` is the same person everywhere in one
//! export), keeping the years of dates, turning ages over 89 into "90 or older".
//!
//! Rule-based and deliberately eager: it finds structured identifiers (emails, URLs, IP addresses,
//! phone and fax numbers, SSNs, record/account/plan/licence/device numbers, dates, ZIP codes,
//! street addresses, ages over 89) by their shape and context, and names by context (titles,
//! "my name is", family words) and by a list of common given names and surnames. Names it has no
//! clue for can slip through: `scribe eval deid` measures how many, and a person still reviews an
//! export before it leaves the clinic.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What kind of identifier a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Kind {
    Name,
    Address,
    Zip,
    Date,
    Age,
    Phone,
    Fax,
    Email,
    Ssn,
    Id,
    Url,
    Ip,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Name => "NAME",
            Kind::Address => "ADDRESS",
            Kind::Zip => "ZIP",
            Kind::Date => "DATE",
            Kind::Age => "AGE",
            Kind::Phone => "PHONE",
            Kind::Fax => "FAX",
            Kind::Email => "EMAIL",
            Kind::Ssn => "SSN",
            Kind::Id => "ID",
            Kind::Url => "URL",
            Kind::Ip => "IP",
        }
    }
}

/// Placeholders given so far, so one export uses one placeholder per identifier. The map back
/// (the re-identification key) is only ever kept inside the encrypted database.
#[derive(Debug, Default)]
pub struct Deidentifier {
    by_value: HashMap<(Kind, String), String>,
    counts: HashMap<Kind, usize>,
}

macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pattern).expect("a valid pattern"));
    };
}

re!(EMAIL, r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b");
// As a recognizer writes a spoken address: "maria alvarez at example.com", "… at example dot com".
re!(
    SPOKEN_EMAIL,
    r"(?i)\b(?:[a-z0-9._-]+\s){0,2}[a-z0-9._-]+\s+at\s+[a-z0-9-]+(?:\.|\s+dot\s+)(?:com|org|net|edu|gov)\b"
);
re!(
    URL,
    r"(?i)\b(?:https?://|www\.)[^\s,;]+|\b[a-z0-9-]+\.(?:com|org|net|edu|gov|io|info|health)(?:/[^\s,;]*)?\b"
);
re!(IP, r"\b(?:\d{1,3}\.){3}\d{1,3}\b");
re!(SSN, r"\b\d{3,4}-\d{2}-\d{4}\b");
re!(
    FAX,
    r"(?i)\bfax(?:\s+(?:number|no\.?|is|at|to))*[:\s]+(\+?1?[\s.-]?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}|\d{3}[\s.-]\d{4})"
);
re!(
    PHONE,
    r"(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b|\b\d{3}[\s.-]\d{4}\b"
);
re!(
    KEYED_ID,
    r"(?i)\b(?:mrn|medical record(?: number)?|record number|chart number|account(?: number)?|member(?: id| number)?|policy(?: number)?|insurance(?: id| number)?|plan(?: id| number)?|licen[sc]e(?: number| plate)?|plate(?: number)?|serial(?: number)?|device(?: id| number)?|certificate(?: number)?|vin|id number|patient id|social security(?: number)?|security number|ssn)(?:\s+(?:is|number|no\.?|#|on file))*[:#\s]+([a-z]*\d[a-z0-9-]*(?:[,.\s]\d[\d-]*)*(?:\s+(?:million|thousand)(?:\s+\d[\d,]*)?)?)"
);
re!(LONG_NUMBER, r"\b\d{6,}\b");
// A recognizer's "40,007,990" or "40,7,990": three or more groups are an identifier, not a dose.
re!(GROUPED_NUMBER, r"\b\d{1,3}(?:,\d{1,3}){2,}\b");
re!(
    DATE_WORDS,
    r"(?i)\b(?:(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|may|june|july|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?:,?\s+(\d{4}))?)\b"
);
re!(
    DATE_NUMERIC,
    r"\b(?:\d{1,2}[/-]\d{1,2}[/-](\d{4}|\d{2})|(\d{4})-\d{2}-\d{2}|\d{1,2}/\d{1,2})\b"
);
re!(
    AGE_OVER_89,
    r"(?i)\b(?:(9\d|1[0-2]\d)(?:[\s-]+(?:years?|yrs?)(?:[\s-]+old)?|[\s-]year[\s-]old)|(?:age[d]?|aged)\s+(9\d|1[0-2]\d))\b"
);
re!(
    STREET,
    r"(?i)\b\d{1,6}\s+(?:[a-z0-9.']+\s+){1,4}(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl|terrace|circle|highway|hwy|parkway|pkwy)\b\.?(?:,?\s+(?:apt|apartment|unit|suite|#)\s*[a-z0-9]+)?"
);
re!(ZIP, r"(?i)\b(?:zip(?: code)?(?:\s+is)?\s*:?\s*)?(\d{5}(?:-\d{4})?)\b");
// After a state, whatever the recognizer made of it: "Utah 14,243", "Georgia 10,000".
re!(
    ZIP_AFTER_STATE,
    r"\b(?:Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|[A-Z]{2}),?\s+(\d{2},?\d{3}(?:-\d{4})?)\b"
);
re!(
    CITY_STATE,
    r"\b([A-Za-z][a-z]+(?:\s[A-Z][a-z]+)?),\s+(?:Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|[A-Z]{2})\b"
);
re!(
    LIVES_IN,
    r"\b(?i:live|lives|living|moved|from|born|grew up|stay|staying)\s+(?i:in|to|at)\s+([A-Z][a-z]+(?:\s[A-Z][a-z]+)?)"
);
re!(
    TITLED,
    r"(?i:\b(?:mr|mrs|ms|miss|mister|missus|dr|doctor|nurse|prof|professor)\.?)\s+([A-Za-z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"
);
re!(
    INTRODUCED,
    r"(?i:\b(?:my name is|name's|this is|i am|i'm|call me|named|called|patient is|patient's name is))\s+([A-Za-z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"
);
re!(
    FAMILY,
    r"(?i:\b(?:my|his|her|their)\s+(?:wife|husband|son|daughter|mother|mom|father|dad|brother|sister|partner|friend|neighbor|neighbour|caregiver|grandson|granddaughter))\s*,?\s+([A-Z][a-z'-]+)"
);
re!(WORD, r"\b[A-Za-z][a-z'-]+\b");

/// Common US given names and surnames (SSA and Census lists), lowercase.
const NAMES: &[&str] = &[
    "james",
    "john",
    "robert",
    "michael",
    "william",
    "david",
    "richard",
    "joseph",
    "thomas",
    "charles",
    "christopher",
    "daniel",
    "matthew",
    "anthony",
    "mark",
    "donald",
    "steven",
    "paul",
    "andrew",
    "joshua",
    "kenneth",
    "kevin",
    "brian",
    "george",
    "timothy",
    "ronald",
    "edward",
    "jason",
    "jeffrey",
    "ryan",
    "jacob",
    "gary",
    "nicholas",
    "eric",
    "jonathan",
    "stephen",
    "larry",
    "justin",
    "scott",
    "brandon",
    "benjamin",
    "samuel",
    "gregory",
    "alexander",
    "frank",
    "patrick",
    "raymond",
    "jack",
    "dennis",
    "jerry",
    "tyler",
    "aaron",
    "jose",
    "adam",
    "nathan",
    "henry",
    "douglas",
    "zachary",
    "peter",
    "kyle",
    "walter",
    "ethan",
    "jeremy",
    "harold",
    "keith",
    "christian",
    "roger",
    "noah",
    "gerald",
    "carl",
    "terry",
    "sean",
    "austin",
    "arthur",
    "lawrence",
    "jesse",
    "dylan",
    "bryan",
    "joe",
    "jordan",
    "billy",
    "bruce",
    "albert",
    "willie",
    "gabriel",
    "logan",
    "alan",
    "juan",
    "wayne",
    "roy",
    "ralph",
    "randy",
    "eugene",
    "vincent",
    "russell",
    "elijah",
    "louis",
    "bobby",
    "philip",
    "johnny",
    "mary",
    "patricia",
    "jennifer",
    "linda",
    "elizabeth",
    "barbara",
    "susan",
    "jessica",
    "sarah",
    "karen",
    "lisa",
    "nancy",
    "betty",
    "margaret",
    "sandra",
    "ashley",
    "kimberly",
    "emily",
    "donna",
    "michelle",
    "carol",
    "amanda",
    "dorothy",
    "melissa",
    "deborah",
    "stephanie",
    "rebecca",
    "sharon",
    "laura",
    "cynthia",
    "kathleen",
    "amy",
    "angela",
    "shirley",
    "anna",
    "brenda",
    "pamela",
    "emma",
    "nicole",
    "helen",
    "samantha",
    "katherine",
    "christine",
    "debra",
    "rachel",
    "carolyn",
    "janet",
    "catherine",
    "maria",
    "heather",
    "diane",
    "ruth",
    "julie",
    "olivia",
    "joyce",
    "virginia",
    "victoria",
    "kelly",
    "lauren",
    "christina",
    "joan",
    "evelyn",
    "judith",
    "megan",
    "andrea",
    "cheryl",
    "hannah",
    "jacqueline",
    "martha",
    "gloria",
    "teresa",
    "ann",
    "sara",
    "madison",
    "frances",
    "kathryn",
    "janice",
    "jean",
    "abigail",
    "alice",
    "judy",
    "sophia",
    "grace",
    "denise",
    "amber",
    "doris",
    "marilyn",
    "danielle",
    "beverly",
    "isabella",
    "theresa",
    "diana",
    "natalie",
    "brittany",
    "charlotte",
    "marie",
    "kayla",
    "alexis",
    "lori",
    "dana",
    "maya",
    "priya",
    "wei",
    "mohammed",
    "fatima",
    "carlos",
    "luis",
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "carter",
    "roberts",
    "gomez",
    "phillips",
    "evans",
    "turner",
    "diaz",
    "parker",
    "cruz",
    "edwards",
    "collins",
    "reyes",
    "stewart",
    "morris",
    "morales",
    "murphy",
    "cook",
    "rogers",
    "gutierrez",
    "ortiz",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "reed",
    "kelly",
    "howard",
    "ramos",
    "kim",
    "cox",
    "ward",
    "richardson",
    "watson",
    "brooks",
    "chavez",
    "wood",
    "james",
    "bennett",
    "gray",
    "mendoza",
    "ruiz",
    "hughes",
    "price",
    "alvarez",
    "castillo",
    "sanders",
    "patel",
    "myers",
    "long",
    "ross",
    "foster",
    "jimenez",
    "chen",
    "wang",
    "singh",
    "kowalski",
    "obrien",
    "o'brien",
    "murray",
    "sullivan",
    "fischer",
    "schmidt",
    "weber",
    "novak",
    "cohen",
    "shapiro",
    "okafor",
];

/// Words the name list shares with ordinary speech: only replaced when capitalised mid-sentence.
const NAME_ALSO_WORD: &[&str] = &[
    "mark", "will", "grace", "hill", "green", "long", "king", "young", "white", "brown", "gray", "wood", "price",
    "cook", "reed", "ward", "rose", "may", "june", "joy", "hall", "baker", "parker", "carter", "turner", "brooks",
    "frank", "bill", "jack", "dean", "hope", "faith", "amber", "bailey", "cooper", "foster", "ross", "lee", "martin",
    "morgan", "nelson", "john", "dana", "kelly", "adams", "evans", "moore", "stewart", "bennett", "murphy", "jordan",
    "austin", "roger", "ray", "ann", "jean", "cruz", "diaz", "wright",
];

impl Deidentifier {
    pub fn new() -> Deidentifier {
        Deidentifier::default()
    }

    /// The placeholder for one identifier, the same each time it recurs in this export.
    fn placeholder(&mut self, kind: Kind, value: &str) -> String {
        let key = (kind, value.trim().to_lowercase());
        if let Some(p) = self.by_value.get(&key) {
            return p.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let p = format!("[{}-{n}]", kind.tag());
        self.by_value.insert(key, p.clone());
        p
    }

    /// The map back from placeholders to what they replaced: the re-identification key.
    pub fn key(&self) -> Vec<(String, Kind, String)> {
        let mut key: Vec<(String, Kind, String)> = self
            .by_value
            .iter()
            .map(|((kind, value), p)| (p.clone(), *kind, value.clone()))
            .collect();
        key.sort();
        key
    }

    /// `text` with every identifier found replaced.
    pub fn redact(&mut self, text: &str) -> String {
        let mut t = text.to_string();
        // Most specific shapes first, so a part of one is not taken for another.
        t = self.replace(&EMAIL, &t, Kind::Email, 0);
        t = self.replace(&SPOKEN_EMAIL, &t, Kind::Email, 0);
        t = self.replace(&URL, &t, Kind::Url, 0);
        t = self.replace(&IP, &t, Kind::Ip, 0);
        t = self.replace(&SSN, &t, Kind::Ssn, 0);
        t = self.replace_group(&FAX, &t, Kind::Fax, 1);
        t = self.replace(&PHONE, &t, Kind::Phone, 0);
        t = self.replace_group(&KEYED_ID, &t, Kind::Id, 1);
        t = self.replace(&STREET, &t, Kind::Address, 0);
        t = self.dates(&t);
        t = self.ages(&t);
        t = self.replace_group(&ZIP_AFTER_STATE, &t, Kind::Zip, 1);
        t = self.replace_group(&ZIP, &t, Kind::Zip, 1);
        t = self.replace(&LONG_NUMBER, &t, Kind::Id, 0);
        t = self.replace(&GROUPED_NUMBER, &t, Kind::Id, 0);
        t = self.replace_group(&CITY_STATE, &t, Kind::Address, 1);
        t = self.replace_group(&LIVES_IN, &t, Kind::Address, 1);
        t = self.names(&t);
        t
    }

    fn replace(&mut self, re: &Regex, text: &str, kind: Kind, _group: usize) -> String {
        re.replace_all(text, |c: &Captures| self.placeholder(kind, &c[0]))
            .into_owned()
    }

    /// Replaces only capture group `group` of each match, keeping the words around it.
    fn replace_group(&mut self, re: &Regex, text: &str, kind: Kind, group: usize) -> String {
        re.replace_all(text, |c: &Captures| {
            let whole = c.get(0).expect("a match");
            match c.get(group) {
                Some(g) => {
                    let (before, after) = (&text[whole.start()..g.start()], &text[g.end()..whole.end()]);
                    format!("{before}{}{after}", self.placeholder(kind, g.as_str()))
                }
                None => whole.as_str().to_string(),
            }
        })
        .into_owned()
    }

    /// Dates lose everything but their year.
    fn dates(&mut self, text: &str) -> String {
        let mut out = String::new();
        for re in [&*DATE_WORDS, &*DATE_NUMERIC] {
            out = re
                .replace_all(if out.is_empty() { text } else { &out }, |c: &Captures| {
                    let year = (1..c.len())
                        .filter_map(|i| c.get(i))
                        .map(|m| m.as_str())
                        .find(|y| y.len() == 4);
                    let p = self.placeholder(Kind::Date, &c[0]);
                    match year {
                        Some(y) => format!("{p} {y}"),
                        None => p,
                    }
                })
                .into_owned();
        }
        out
    }

    /// Ages over 89 are identifying: they become "90 or older".
    fn ages(&mut self, text: &str) -> String {
        AGE_OVER_89
            .replace_all(text, |c: &Captures| {
                self.placeholder(Kind::Age, &c[0]);
                "90 or older".to_string()
            })
            .into_owned()
    }

    fn names(&mut self, text: &str) -> String {
        let mut t = text.to_string();
        for re in [&*TITLED, &*INTRODUCED, &*FAMILY] {
            t = re
                .replace_all(&t, |c: &Captures| {
                    let whole = c.get(0).expect("a match");
                    let name = c.get(1).expect("a name group");
                    let candidate = name.as_str();
                    // "I'm fine", "this is painful": introductions only take a capitalised word or
                    // a known name.
                    let first = candidate.split_whitespace().next().unwrap_or("");
                    let known = NAMES.contains(&first.to_lowercase().as_str());
                    let capitalised = first.chars().next().is_some_and(char::is_uppercase);
                    let titled = std::ptr::eq(re, &*TITLED);
                    if !(titled || known || (capitalised && !is_common_word(first))) {
                        return whole.as_str().to_string();
                    }
                    let before = &t[whole.start()..name.start()];
                    // Word by word, so "Maria Alvarez" and a later "Mrs. Alvarez" share a placeholder.
                    let replaced: Vec<String> = candidate
                        .split_whitespace()
                        .map(|w| self.placeholder(Kind::Name, w))
                        .collect();
                    format!("{before}{}", replaced.join(" "))
                })
                .into_owned();
        }
        // Known names anywhere, except those that are also ordinary words unless capitalised in
        // the middle of a sentence.
        let snapshot = t.clone();
        WORD.replace_all(&snapshot, |c: &Captures| {
            let m = c.get(0).expect("a match");
            let word = m.as_str();
            let lower = word.to_lowercase();
            if !NAMES.contains(&lower.as_str()) {
                return word.to_string();
            }
            let capitalised = word.chars().next().is_some_and(char::is_uppercase);
            let sentence_start = snapshot[..m.start()]
                .trim_end()
                .chars()
                .last()
                .is_none_or(|ch| matches!(ch, '.' | '?' | '!' | ':' | ']'));
            if NAME_ALSO_WORD.contains(&lower.as_str()) && (!capitalised || sentence_start) {
                return word.to_string();
            }
            self.placeholder(Kind::Name, word)
        })
        .into_owned()
    }
}

/// Capitalised words that introductions ("this is …", "I'm …") are followed by and are not names.
fn is_common_word(word: &str) -> bool {
    const COMMON: &[&str] = &[
        "I", "It", "This", "That", "The", "A", "An", "Not", "So", "Just", "Here", "There", "Doctor", "Dr", "Sorry",
        "Fine", "Good", "Okay", "Ok", "Yes", "No", "Well", "Really", "Very", "Going", "Feeling", "Worried", "Tired",
        "Allergic", "Taking", "On", "In", "At", "From", "With",
    ];
    COMMON.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_identifiers_are_replaced_and_years_kept() {
        let mut d = Deidentifier::new();
        let out = d.redact(
            "Email me at jane.doe@example.com or call 555-867-5309, fax 555-123-4567. My MRN is 48213377 and \
             my SSN 123-45-6789. I was seen on March 3rd, 2024 and on 04/12/2023. I live at 42 Maple Street, \
             Springfield, Illinois 62704. See www.example.org from 192.168.1.20. My father is 93 years old.",
        );
        for gone in [
            "jane.doe",
            "867-5309",
            "123-4567",
            "48213377",
            "123-45-6789",
            "March 3rd",
            "04/12",
            "42 Maple",
            "Springfield",
            "62704",
            "example.org",
            "192.168",
            "93",
        ] {
            assert!(!out.contains(gone), "{gone} left in: {out}");
        }
        assert!(out.contains("2024") && out.contains("2023"), "years stay: {out}");
        assert!(out.contains("90 or older"), "{out}");
        assert!(out.contains("[FAX-1]") && out.contains("[PHONE-1]"), "{out}");
    }

    #[test]
    fn numbers_as_a_recognizer_writes_them_are_replaced() {
        let mut d = Deidentifier::new();
        let out = d.redact(
            "I see your medical record number is 40,7,990. Yes, 27 Harbor Road, provo, Utah 14,243. Your social \
             security number on file is 100,000,000? You can also email me at agnes wajsik at example.com.",
        );
        for gone in ["40,7,990", "provo", "14,243", "100,000,000", "wajsik"] {
            assert!(!out.contains(gone), "{gone} left in: {out}");
        }
        // Doses and counts are not identifiers.
        assert_eq!(
            d.redact("Take 500 mg twice a day; walk 10,000 steps."),
            "Take 500 mg twice a day; walk 10,000 steps."
        );
    }

    #[test]
    fn names_get_one_placeholder_each_and_words_stay() {
        let mut d = Deidentifier::new();
        let a = d.redact("Hi Mrs. Alvarez, I'm Dr. Okafor. My daughter Priya drove me. Mark the date.");
        let b = d.redact("Mrs. Alvarez says Priya helps her; she will walk in the park and feels fine.");
        assert!(
            !a.contains("Alvarez") && !a.contains("Okafor") && !a.contains("Priya"),
            "{a}"
        );
        let alvarez = d.placeholder(Kind::Name, "Alvarez");
        assert!(a.contains(&alvarez) && b.contains(&alvarez), "{a} / {b}");
        assert!(
            a.contains("Mark the date"),
            "a name that is also a word stays at a sentence start: {a}"
        );
        assert!(b.contains("walk in the park and feels fine"), "{b}");
        assert_eq!(
            d.redact("I have had a cough for two weeks and take lisinopril 10 mg."),
            "I have had a cough for two weeks and take lisinopril 10 mg."
        );
    }
}
