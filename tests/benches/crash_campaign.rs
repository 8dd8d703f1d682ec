//! The crash campaign: `--cycles` visits (default 200), each driven through a real daemon — the
//! recorder streaming over the WebSocket protocol, the pipeline transcribing and drafting, the
//! physician signing in the review app — with the daemon and its workers killed by SIGKILL at a
//! random moment of the cycle, restarted, and the invariants checked (see `tests::crash`).
//! Each cycle picks a phase of the visit at random, then a moment uniformly within it (phase
//! lengths: the median of three undisturbed visits first), so short phases such as signing are hit as
//! often as long ones.
//!
//! `cargo bench -p tests --bench crash_campaign -- [--cycles 200] [--seed 1] [--threads 2]
//! [--out DIR]` writes DIR/crash-campaign.md (default DIR: docs/bench), rewritten every 10 cycles
//! so a long run leaves its counts so far. Exits non-zero if any invariant broke.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use tests::crash::{Campaign, CycleReport, Kill, Outcome, Phase};

/// xorshift64*: reproducible kill moments from `--seed` with no extra dependency.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct PhaseCounts {
    kills: usize,
    signed: usize,
    failed: usize,
    violations: usize,
    acked: u64,
}

fn main() {
    let args = tests::BenchArgs::from_env();
    let arg = |name: &str| args.get(name);
    let out = args.out();
    let cycles: usize = arg("--cycles").map_or(200, |n| n.parse().expect("--cycles N"));
    let seed: u64 = arg("--seed").map_or(1, |n| n.parse().expect("--seed N"));
    let threads: usize = arg("--threads").map_or(2, |n| n.parse().expect("--threads N"));

    let pcm = audio::decode_wav_file(&tests::visit_wav()).expect("the visit").samples;
    let mut campaign = Campaign::new(&pcm);
    campaign.threads = threads;
    // Each phase's length, the median of three undisturbed visits: one visit measured while the
    // box was busy once put every drafting aim after the draft.
    let visits: Vec<BTreeMap<Phase, Duration>> = (0..3)
        .map(|_| campaign.undisturbed_visit().expect("an undisturbed visit"))
        .collect();
    let lasted: BTreeMap<Phase, Duration> = Phase::ALL
        .iter()
        .map(|&phase| {
            let mut lengths: Vec<Duration> = visits
                .iter()
                .map(|v| v.get(&phase).copied().unwrap_or_default())
                .collect();
            lengths.sort();
            (phase, lengths[lengths.len() / 2])
        })
        .collect();
    eprintln!("phase lengths, median of 3 undisturbed visits: {lasted:.2?}");
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);

    let started = Instant::now();
    let mut counts: BTreeMap<Phase, PhaseCounts> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut violations: Vec<(usize, String)> = Vec::new();
    for n in 1..=cycles {
        let aim = Phase::ALL[((rng.unit() * Phase::ALL.len() as f64) as usize).min(Phase::ALL.len() - 1)];
        let at = lasted.get(&aim).copied().unwrap_or_default().mul_f64(rng.unit());
        let r: CycleReport = campaign.cycle(Kill(aim, at));
        // A phase the visit passed before the moment came: the kill lands in a later one.
        let phase = r.killed_in;
        eprintln!(
            "cycle {n}/{cycles}: aimed {at:.2?} into {}, killed in {} → {:?}, {} chunks acknowledged before, {} violations ({:.1?})",
            aim.name(),
            phase.name(),
            r.outcome,
            r.acked_before_kill,
            r.violations.len(),
            r.duration
        );
        let c = counts.entry(phase).or_default();
        c.kills += 1;
        c.acked += u64::from(r.acked_before_kill);
        match &r.outcome {
            Outcome::Signed => c.signed += 1,
            Outcome::Failed(reason) => {
                c.failed += 1;
                *failures.entry(reason.clone()).or_default() += 1;
            }
        }
        c.violations += r.violations.len();
        violations.extend(r.violations.into_iter().map(|v| (n, v)));
        if n % 10 == 0 || n == cycles {
            let report = report(&Summary {
                audio_s: pcm.len().div_ceil(16_000),
                done: n,
                cycles,
                seed,
                threads,
                lasted: &lasted,
                elapsed: started.elapsed(),
                signed: campaign.signed_notes(),
                counts: &counts,
                failures: &failures,
                violations: &violations,
            });
            write(&out, &report, &chart(&counts));
        }
    }
    eprintln!(
        "{}",
        std::fs::read_to_string(out.join("crash-campaign.md")).unwrap_or_default()
    );
    if !violations.is_empty() {
        std::process::exit(1);
    }
}

struct Summary<'a> {
    audio_s: usize,
    done: usize,
    cycles: usize,
    seed: u64,
    threads: usize,
    lasted: &'a BTreeMap<Phase, Duration>,
    elapsed: Duration,
    signed: usize,
    counts: &'a BTreeMap<Phase, PhaseCounts>,
    failures: &'a BTreeMap<String, usize>,
    violations: &'a [(usize, String)],
}

fn report(s: &Summary) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Crash campaign\n");
    let _ = writeln!(
        md,
        "`cargo bench -p tests --bench crash_campaign -- --cycles {} --seed {} --threads {}` on {} \
         (profile `{}`).\n",
        s.cycles,
        s.seed,
        s.threads,
        tests::today(),
        tests::profile()
    );
    let _ = writeln!(
        md,
        "Each cycle starts `scribe daemon` (review app on loopback), records a {}-second visit \
         through the browser recorder's WebSocket protocol (a one-second chunk every 100 ms, each \
         acknowledged only once committed), lets the pipeline transcribe and draft it, and signs \
         it in the review app as the physician. At a random moment — a phase of the visit picked \
         at random, then a moment uniformly within that phase's length (median of three undisturbed visits) \
         ({}) — the daemon's process group (daemon and engine workers) gets SIGKILL. With everything down the campaign checks the database (`scribe db check`: \
         SQLite integrity, the audit chain, every signature), that every note signed so far is \
         unchanged (SHA-256 as first signed), and that every acknowledged audio chunk is stored. \
         Then it restarts the daemon: the recorder reconnects and resends what was not \
         acknowledged, the physician signs, and no encounter may stay in recording, transcribing \
         or drafting (5 min limit) or fail without a reason. Then the daemon is stopped (SIGTERM) \
         and the next cycle starts it again.\n",
        s.audio_s,
        s.lasted
            .iter()
            .map(|(p, d)| format!("{} {:.2} s", p.name(), d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        md,
        "**{} of {} cycles run** in {:.0} min; {} notes signed and re-checked after every kill; \
         **{} invariant violations**.\n",
        s.done,
        s.cycles,
        s.elapsed.as_secs_f64() / 60.0,
        s.signed,
        s.violations.len()
    );
    let _ = writeln!(md, "![kills per phase](crash-campaign.svg)\n");
    let _ = writeln!(
        md,
        "| killed while | kills | visit signed after restart | visit failed (with reason) | chunks acknowledged before the kill (mean) | violations |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let mut total = PhaseCounts::default();
    for phase in Phase::ALL {
        let Some(c) = s.counts.get(&phase) else { continue };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {} |",
            phase.name(),
            c.kills,
            c.signed,
            c.failed,
            c.acked as f64 / c.kills as f64,
            c.violations
        );
        total.kills += c.kills;
        total.signed += c.signed;
        total.failed += c.failed;
        total.violations += c.violations;
        total.acked += c.acked;
    }
    let _ = writeln!(
        md,
        "| **all** | **{}** | **{}** | **{}** | {:.1} | **{}** |\n",
        total.kills,
        total.signed,
        total.failed,
        total.acked as f64 / total.kills.max(1) as f64,
        total.violations
    );
    if !s.failures.is_empty() {
        let _ = writeln!(md, "Visits that ended `failed`, by reason:\n");
        for (reason, n) in s.failures {
            let _ = writeln!(md, "- {n} × {reason}");
        }
        let _ = writeln!(md);
    }
    if !s.violations.is_empty() {
        let _ = writeln!(md, "Violations:\n");
        for (n, v) in s.violations {
            let _ = writeln!(md, "- cycle {n}: {v}");
        }
    }
    md
}

fn write(out: &Path, report: &str, chart: &str) {
    std::fs::create_dir_all(out).expect("create the report folder");
    std::fs::write(out.join("crash-campaign.md"), report).expect("write the report");
    std::fs::write(out.join("crash-campaign.svg"), chart).expect("write the chart");
}

/// Kills per phase as horizontal bars: the visit signed after the restart (green), failed with a
/// reason (amber), and the cycles that broke an invariant (red, beside the bar).
fn chart(counts: &BTreeMap<Phase, PhaseCounts>) -> String {
    let most = counts.values().map(|c| c.kills).max().unwrap_or(1).max(1) as f64;
    let (left, width, row) = (150.0, 420.0, 26.0);
    let height = 40.0 + row * Phase::ALL.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"4\" y=\"16\" font-weight=\"bold\">Kills per phase: visit signed after restart (green), failed with a reason (amber), invariant broken (red)</text>\n",
        left + width + 120.0
    );
    for (i, phase) in Phase::ALL.iter().enumerate() {
        let y = 30.0 + row * i as f64;
        let c = counts.get(phase);
        let (kills, signed, failed, broken) = c.map_or((0, 0, 0, 0), |c| (c.kills, c.signed, c.failed, c.violations));
        let w = |n: usize| n as f64 / most * width;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 15.0,
            phase.name()
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"20\" fill=\"#2e7d32\"/>",
            w(signed)
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"20\" fill=\"#f9a825\"/>",
            left + w(signed),
            w(failed)
        );
        let label = if broken > 0 {
            format!("{kills} ({broken} broken)")
        } else {
            kills.to_string()
        };
        let colour = if broken > 0 { "#c62828" } else { "#000" };
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" fill=\"{colour}\">{label}</text>",
            left + w(kills) + 6.0,
            y + 15.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
