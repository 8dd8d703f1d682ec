//! The daemon and its workers killed with SIGKILL in each phase of a visit — starting, recording,
//! drafting, signing — lose nothing: the database checks out, acknowledged audio is stored, the
//! visit goes on after the restart and is signed, and every earlier signed note is unchanged.
//! (`cargo bench -p tests --bench crash_campaign` runs the same cycle at random moments.)

use std::time::Duration;

use tests::crash::{Campaign, Kill, Outcome, Phase};
use tests::visit_wav;

#[test]
fn a_daemon_killed_in_any_phase_of_a_visit_loses_nothing() {
    let pcm = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    let mut campaign = Campaign::new(&pcm);
    let kills = [
        // Start-up can take under 30 ms on a quiet box: 5 ms still lands inside it.
        (Phase::Starting, Duration::from_millis(5)),
        (Phase::Recording, Duration::from_secs(1)),
        (Phase::Drafting, Duration::from_millis(300)),
        (Phase::Signing, Duration::ZERO),
    ];
    for (n, (phase, delay)) in kills.into_iter().enumerate() {
        let report = campaign.cycle(Kill(phase, delay));
        eprintln!("{phase:?}: {report:?}");
        assert_eq!(report.killed_in, phase, "the kill missed its phase: {report:?}");
        assert!(
            report.violations.is_empty(),
            "killed in {phase:?}: {:#?}",
            report.violations
        );
        assert_eq!(report.outcome, Outcome::Signed, "killed in {phase:?}: {report:?}");
        assert_eq!(campaign.signed_notes(), n + 1);
    }
}
