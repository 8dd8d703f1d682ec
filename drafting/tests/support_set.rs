//! The support check against a labelled set (tests/data/support-set.jsonl, built by hand from
//! ACI-Bench dialogue turns, blind to the checker): note sentences that their cited segments
//! support, and planted ones that they do not (swapped laterality, flipped negation, wrong dose,
//! invented test, referral or follow-up…). A sentence counts as caught when it earns any flag that
//! says it may state what the visit did not.
//!
//! The set has two halves split by encounter: `dev`, which the checker was tuned on, and
//! `held_out`, which it was not (only its totals were looked at). The run prints the table:
//! `cargo test -p drafting --test support_set -- --nocapture`.

use std::collections::BTreeMap;

use protocol::{Segment, Sentence, Speaker, Transcript};
use serde::Deserialize;

#[derive(Deserialize)]
struct Item {
    id: String,
    split: String,
    segments: Vec<ItemSegment>,
    sentence: String,
    cites: Vec<u32>,
    supported: bool,
    kind: String,
}

#[derive(Deserialize)]
struct ItemSegment {
    id: u32,
    speaker: String,
    text: String,
}

fn items() -> Vec<Item> {
    include_str!("data/support-set.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect()
}

/// Whether the checker flags the item's sentence as (possibly) unsupported.
fn flagged(item: &Item) -> (bool, Vec<String>) {
    let transcript = Transcript {
        segments: item
            .segments
            .iter()
            .map(|s| Segment {
                id: s.id,
                start_ms: 0,
                end_ms: 1,
                speaker: if s.speaker == "clinician" {
                    Speaker::Clinician
                } else {
                    Speaker::Patient
                },
                text: s.text.clone(),
                confidence: 1.0,
                words: vec![],
            })
            .collect(),
    };
    let flags = drafting::check_sentence(&Sentence::new(item.sentence.clone(), item.cites.clone()), &transcript)
        .unwrap_or_else(|e| panic!("{}: {e}", item.id));
    let support: Vec<String> = flags
        .iter()
        .filter(|f| f.kind.is_support())
        .map(|f| format!("{:?} {}", f.kind, f.term))
        .collect();
    (!support.is_empty(), support)
}

#[derive(Default)]
struct Counts {
    true_pos: usize,
    false_pos: usize,
    false_neg: usize,
    true_neg: usize,
}

impl Counts {
    fn precision(&self) -> f64 {
        self.true_pos as f64 / (self.true_pos + self.false_pos).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.true_pos as f64 / (self.true_pos + self.false_neg).max(1) as f64
    }
}

#[test]
fn the_support_check_catches_planted_claims_and_spares_supported_ones() {
    let items = items();
    assert!(items.len() >= 200, "the labelled set has {} items", items.len());
    let mut by_split: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut mistakes = Vec::new();
    for item in &items {
        let (caught, why) = flagged(item);
        let c = by_split.entry(item.split.as_str()).or_default();
        let k = by_kind.entry(item.kind.as_str()).or_default();
        k.1 += 1;
        match (item.supported, caught) {
            (false, true) => {
                c.true_pos += 1;
                k.0 += 1;
            }
            (false, false) => {
                c.false_neg += 1;
                mistakes.push(format!(
                    "missed     {} {} [{}] {:?}",
                    item.split, item.id, item.kind, item.sentence
                ));
            }
            (true, true) => {
                c.false_pos += 1;
                mistakes.push(format!(
                    "false flag {} {} [{}] {:?}: {}",
                    item.split,
                    item.id,
                    item.kind,
                    item.sentence,
                    why.join("; ")
                ));
            }
            (true, false) => {
                c.true_neg += 1;
                k.0 += 1;
            }
        }
    }
    println!("| split | items | precision | recall | false flags | missed |");
    println!("|---|---|---|---|---|---|");
    for (split, c) in &by_split {
        println!(
            "| {split} | {} | {:.1} % | {:.1} % | {} | {} |",
            c.true_pos + c.false_pos + c.false_neg + c.true_neg,
            100.0 * c.precision(),
            100.0 * c.recall(),
            c.false_pos,
            c.false_neg
        );
    }
    println!("\n| kind | right | items |\n|---|---|---|");
    for (kind, (right, n)) in &by_kind {
        println!("| {kind} | {right} | {n} |");
    }
    println!("\n{}", mistakes.join("\n"));
    // The goal (recall ≥ 0.95 at precision ≥ 0.90) holds on the half the checker was tuned on. The
    // held-out half measures what tuning cannot see; it stays below the goal (0.847 / 0.813 when
    // this was written) and must not fall further.
    let floors = [("dev", 0.95, 0.90), ("held_out", 0.84, 0.80)];
    for (split, min_recall, min_precision) in floors {
        let c = &by_split[split];
        assert!(
            c.recall() >= min_recall && c.precision() >= min_precision,
            "{split}: recall {:.3}, precision {:.3} (floor: recall ≥ {min_recall} at precision ≥ {min_precision})",
            c.recall(),
            c.precision()
        );
    }
}
