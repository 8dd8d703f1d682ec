//! The clinic's vocabulary (asr.vocabulary) reaches whisper as its initial prompt and makes it
//! spell uncommon drug names right. Measured on a synthesized visit full of them: recall of the
//! terms in the transcript without and with the vocabulary (printed; run with --nocapture).

use eval::speech::{Voice, synthesize};
use tests::{Appliance, text, transcript_lowercase};

/// Drug names whisper's small models rarely spell right unprompted.
const TERMS: &[&str] = &[
    "apixaban",
    "empagliflozin",
    "dulaglutide",
    "sacubitril",
    "levetiracetam",
    "ondansetron",
    "spironolactone",
    "tirzepatide",
    "rivaroxaban",
    "methotrexate",
];

const VISIT: &[(Voice, &str)] = &[
    (Voice::Doctor, "Which medicines are you taking at the moment?"),
    (
        Voice::Patient,
        "I take apixaban every morning and empagliflozin with breakfast.",
    ),
    (
        Voice::Doctor,
        "And the weekly injection, is that dulaglutide or tirzepatide?",
    ),
    (
        Voice::Patient,
        "It is dulaglutide. The cardiologist also started sacubitril last month.",
    ),
    (
        Voice::Doctor,
        "Any other tablets? Levetiracetam for the seizures, I think.",
    ),
    (Voice::Patient, "Yes, levetiracetam, and ondansetron when I feel sick."),
    (
        Voice::Doctor,
        "We will add spironolactone and stop the rivaroxaban you had before.",
    ),
    (Voice::Patient, "And the methotrexate for my joints stays the same?"),
    (Voice::Doctor, "Yes, keep the methotrexate once a week."),
];

fn recall(app: &Appliance, wav: &str) -> (usize, String) {
    let (out, id) = app.ingest(&[wav]);
    assert!(out.status.success(), "{}", text(&out));
    let transcript = transcript_lowercase(&app.show(&id.unwrap()));
    (TERMS.iter().filter(|t| transcript.contains(*t)).count(), transcript)
}

#[test]
fn the_clinic_vocabulary_raises_recall_of_its_terms() {
    let app = Appliance::new();
    let wav = app.home().join("drugs.wav");
    synthesize(VISIT, &wav).unwrap();
    let wav = wav.to_str().unwrap();

    let (before, plain) = recall(&app, wav);
    let list = TERMS.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
    app.set_config("vocabulary = []", &format!("vocabulary = [{list}]"));
    let (after, prompted) = recall(&app, wav);
    println!(
        "vocabulary recall: {before}/{n} without, {after}/{n} with ({} model)",
        tests::profile(),
        n = TERMS.len()
    );
    // On the tiny test model and espeak's voice: 0/10 without, 5/10 with when this was written.
    assert!(
        after >= before + 3,
        "recall {before} → {after}\nwithout: {plain}\nwith: {prompted}"
    );
}
