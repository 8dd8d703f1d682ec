//! Visits with planted identifiers, for measuring de-identification: each visit is a short
//! doctor–patient dialogue with one identifier of each Safe Harbor kind put where people say them,
//! and the list of what was planted. Deterministic: visit `i` is always the same.

use crate::speech::Voice;

/// One planted identifier: its kind (as the de-identifier names kinds) and the text that must not
/// survive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    pub kind: &'static str,
    pub text: String,
}

pub struct PlantedVisit {
    pub turns: Vec<(Voice, String)>,
    pub planted: Vec<Planted>,
}

// Names both from the common lists and from outside them (the hard case).
const GIVEN: &[&str] = &[
    "Maria",
    "Thaddeus",
    "Priya",
    "Oluwaseun",
    "Robert",
    "Ingrid",
    "Wei",
    "Siobhan",
    "James",
    "Esperanza",
];
const FAMILY: &[&str] = &[
    "Alvarez",
    "Wojcik",
    "Patel",
    "Adeyemi",
    "Johnson",
    "Lindqvist",
    "Chen",
    "Gallagher",
    "Smith",
    "Quintero",
];
const RELATIVES: &[&str] = &[
    "Tomas", "Beatrix", "Anil", "Chidi", "Susan", "Magnus", "Mei", "Declan", "Linda", "Rafael",
];
/// Named with no cue around them ("Is Ignatius picking you up?"): only a name list can know.
const UNCUED: &[&str] = &[
    "Ignatius",
    "Kevin",
    "Ottoline",
    "Sarah",
    "Bartholomew",
    "Jennifer",
    "Cosima",
    "David",
    "Evander",
    "Laura",
];
const STREETS: &[&str] = &[
    "Maple Street",
    "Birchwood Avenue",
    "Harbor Road",
    "Elm Lane",
    "Juniper Drive",
    "Cedar Court",
    "Oak Boulevard",
    "Willow Way",
    "Pine Place",
    "Aspen Terrace",
];
const CITIES: &[(&str, &str)] = &[
    ("Springfield", "Illinois"),
    ("Dayton", "Ohio"),
    ("Fresno", "California"),
    ("Tacoma", "Washington"),
    ("Albany", "New York"),
    ("Macon", "Georgia"),
    ("Provo", "Utah"),
    ("Boise", "Idaho"),
    ("Duluth", "Minnesota"),
    ("Tulsa", "Oklahoma"),
];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
];

/// Visit number `i` (any `usize`; ten distinct identities repeat with different numbers).
pub fn visit(i: usize) -> PlantedVisit {
    let k = i % GIVEN.len();
    let (given, family, relative) = (GIVEN[k], FAMILY[k], RELATIVES[(k + 3) % RELATIVES.len()]);
    let (city, state) = CITIES[(k + 5) % CITIES.len()];
    let uncued = UNCUED[(k + 7) % UNCUED.len()];
    let n = 1000 + i * 37;
    let phone = format!("555-{:03}-{:04}", 200 + (i * 7) % 700, 1000 + (i * 311) % 9000);
    let fax = format!("555-{:03}-{:04}", 300 + (i * 11) % 600, 2000 + (i * 137) % 7000);
    let mrn = format!("{}", 40_000_000 + i * 7919);
    let ssn = format!(
        "{:03}-{:02}-{:04}",
        100 + (i * 13) % 800,
        10 + (i * 3) % 89,
        1000 + (i * 97) % 9000
    );
    let email = format!("{}.{}@example.com", given.to_lowercase(), family.to_lowercase());
    let street = format!("{} {}", 10 + (i * 17) % 980, STREETS[(k + 2) % STREETS.len()]);
    let zip = format!("{:05}", 10_000 + (i * 4243) % 89_000);
    let date = format!("{} {}", MONTHS[(i * 3) % MONTHS.len()], 1 + (i * 5) % 27);
    let age = 90 + (i % 9);
    let url = format!("www.{}-family.org", family.to_lowercase());
    let ip = format!("10.{}.{}.{}", i % 250, (i * 7) % 250, 2 + (i * 13) % 250);
    let plan = format!("HX{}", 700_000 + i * 53);
    let _ = n;

    let d = Voice::Doctor;
    let p = Voice::Patient;
    let turns = vec![
        (
            d,
            format!("Good morning, Mrs. {family}. Can you confirm your name and date of birth?"),
        ),
        (p, format!("My name is {given} {family}, born {date}, 1958.")),
        (d, "And the best phone number to reach you?".to_string()),
        (
            p,
            format!("My cell is {phone}, and you can fax the forms to fax {fax}."),
        ),
        (d, "Thank you. What brings you in today?".to_string()),
        (p, "I have had a cough and a fever for three days.".to_string()),
        (
            d,
            format!("I see your medical record number is {mrn}. Do you still live at the same address?"),
        ),
        (p, format!("Yes, {street}, {city}, {state} {zip}.")),
        (
            p,
            format!(
                "My daughter {relative} drove me. She is worried because her grandmother is {age} years old and lives with us."
            ),
        ),
        (
            d,
            format!("Your insurance plan number is {plan}, and your social security number on file is {ssn}?"),
        ),
        (p, format!("That's right. You can also email me at {email}.")),
        (
            p,
            format!("The clinic portal at {url} was down, it said the server at {ip} was not responding."),
        ),
        (d, format!("Is {uncued} picking you up today?")),
        (
            d,
            "Your lungs sound clear. This looks viral. Rest, fluids, and come back if it is not better in a week."
                .to_string(),
        ),
    ];
    let planted = vec![
        Planted {
            kind: "name",
            text: family.to_string(),
        },
        Planted {
            kind: "name",
            text: given.to_string(),
        },
        Planted {
            kind: "name",
            text: relative.to_string(),
        },
        Planted {
            kind: "name, no cue",
            text: uncued.to_string(),
        },
        Planted {
            kind: "date",
            text: date.clone(),
        },
        Planted {
            kind: "phone",
            text: phone,
        },
        Planted { kind: "fax", text: fax },
        Planted {
            kind: "record number",
            text: mrn,
        },
        Planted {
            kind: "address",
            text: street,
        },
        Planted {
            kind: "city",
            text: city.to_string(),
        },
        Planted { kind: "zip", text: zip },
        Planted {
            kind: "age over 89",
            text: format!("{age} years"),
        },
        Planted {
            kind: "plan number",
            text: plan,
        },
        Planted { kind: "ssn", text: ssn },
        Planted {
            kind: "email",
            text: email,
        },
        Planted { kind: "url", text: url },
        Planted { kind: "ip", text: ip },
    ];
    PlantedVisit { turns, planted }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planted_identifier_is_in_its_visit() {
        for i in 0..25 {
            let v = visit(i);
            let text: String = v.turns.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" ");
            for p in &v.planted {
                assert!(
                    text.contains(&p.text),
                    "visit {i}: {} ({}) not in {text}",
                    p.text,
                    p.kind
                );
            }
        }
    }
}
