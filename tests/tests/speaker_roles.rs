//! Segments of a recorded visit are labelled clinician or patient: from the channels of a
//! recording with a microphone per speaker, otherwise from the pitch of the two voices. Scored
//! against who really spoke when in a synthesized two-voice visit.

use eval::speech::{Layout, Turn, Voice, speaker_accuracy, synthesize_as};
use tests::{Appliance, VISIT, text};

/// Ingests the visit recorded as `layout` and returns (right, scored) segments and how many of
/// each role were given.
fn ingest_and_score(layout: Layout) -> ((usize, usize), [usize; 3]) {
    let app = Appliance::new();
    let wav = app.home().join("visit.wav");
    let turns: Vec<Turn> = synthesize_as(VISIT, &wav, layout).unwrap();
    let (out, id) = app.ingest(&[wav.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let show = app.show(&id.unwrap());
    let segments: Vec<(u64, u64, Option<Voice>)> = show["transcript"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let voice = match s["speaker"].as_str().unwrap() {
                "clinician" => Some(Voice::Doctor),
                "patient" => Some(Voice::Patient),
                _ => None,
            };
            (s["start_ms"].as_u64().unwrap(), s["end_ms"].as_u64().unwrap(), voice)
        })
        .collect();
    let count = |v: Option<Voice>| segments.iter().filter(|s| s.2 == v).count();
    let counts = [count(Some(Voice::Doctor)), count(Some(Voice::Patient)), count(None)];
    (speaker_accuracy(&segments, &turns), counts)
}

#[test]
fn one_room_microphone_gives_roles_by_voice() {
    let ((right, scored), [clinician, patient, _]) = ingest_and_score(Layout::Mono);
    assert!(
        clinician > 0 && patient > 0,
        "both roles given: {clinician} / {patient}"
    );
    assert!(scored >= 5, "{scored} segments");
    assert!(
        right * 10 >= scored * 8,
        "{right} of {scored} segments have the right role"
    );
}

#[test]
fn a_microphone_per_speaker_gives_roles_by_channel() {
    let ((right, scored), [clinician, patient, _]) = ingest_and_score(Layout::Stereo);
    assert!(
        clinician > 0 && patient > 0,
        "both roles given: {clinician} / {patient}"
    );
    assert!(
        right * 10 >= scored * 9,
        "{right} of {scored} segments have the right role"
    );
}
