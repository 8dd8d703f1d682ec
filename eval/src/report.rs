//! Per-encounter results, their summary, and the Markdown report with an SVG plot.

use std::fmt::Write;

use crate::rouge::Scores;

/// What happened to one encounter.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Drafted,
    /// The model's output did not parse into the template (cannot happen under the grammar unless
    /// generation was cut off).
    OffTemplate,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct EncounterResult {
    pub id: String,
    pub outcome: Outcome,
    pub seconds: f64,
    pub full: Scores,
    /// Per template section: its name and scores, for sections the reference note has.
    pub sections: Vec<(String, Scores)>,
    pub sentences: usize,
    /// Sentences whose every citation names an existing segment.
    pub validly_cited: usize,
    /// Sentences carrying at least one unsupported-content flag.
    pub flagged: usize,
    /// Sections the reference note fills, and how many of those the draft filled too.
    pub sections_expected: usize,
    pub sections_covered: usize,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Word error rate of speech recognition on the synthesized dialogue (`--audio` only).
    pub wer: Option<f64>,
    /// The planted-fact check (`--planted` only).
    pub planted: Option<Planted>,
    /// Facts lost, invented and wrong (drafted encounters).
    pub facts: Option<crate::facts::FactScores>,
}

/// A dose removed from the dialogue before drafting, and what the draft did with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planted {
    /// The removed dose as it was spoken, e.g. "twenty milligrams".
    pub removed: String,
    /// Its number, normalised ("20").
    pub number: String,
    pub outcome: PlantedOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedOutcome {
    /// No sentence states the removed number.
    NotStated,
    /// A sentence states it, and the validator flagged it as unsupported.
    StatedFlagged,
    /// A sentence states it and it went unflagged (a cited segment has the same number elsewhere).
    StatedUnflagged,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub encounters: usize,
    pub drafted: usize,
    pub off_template: usize,
    pub failed: usize,
    pub full: Scores,
    pub sections: Vec<(String, Scores)>,
    pub completeness: f64,
    pub cited_share: f64,
    pub flagged_share: f64,
    pub seconds_per_encounter: f64,
    pub wer: Option<f64>,
    /// Planted-fact cases: (not stated, stated and flagged, stated unflagged).
    pub planted: Option<(usize, usize, usize)>,
    /// All encounters' fact counts added up.
    pub facts: crate::facts::FactScores,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn mean_scores<'a>(s: impl Iterator<Item = &'a Scores> + Clone) -> Scores {
    Scores {
        rouge1: mean(s.clone().map(|s| s.rouge1)),
        rouge2: mean(s.clone().map(|s| s.rouge2)),
        rouge_l: mean(s.map(|s| s.rouge_l)),
    }
}

/// Means over encounters. ROUGE of an encounter with no draft counts as zero: a failure is not
/// left out of the average.
pub fn summarize(results: &[EncounterResult], section_names: &[&str]) -> Summary {
    let drafted: Vec<&EncounterResult> = results.iter().filter(|r| r.outcome == Outcome::Drafted).collect();
    let sentences: usize = drafted.iter().map(|r| r.sentences).sum();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Summary {
        encounters: results.len(),
        drafted: drafted.len(),
        off_template: results.iter().filter(|r| r.outcome == Outcome::OffTemplate).count(),
        failed: results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count(),
        full: mean_scores(results.iter().map(|r| &r.full)),
        sections: section_names
            .iter()
            .map(|name| {
                let scores: Vec<&Scores> = results
                    .iter()
                    .flat_map(|r| r.sections.iter().filter(|(n, _)| n == name).map(|(_, s)| s))
                    .collect();
                (name.to_string(), mean_scores(scores.into_iter()))
            })
            .collect(),
        completeness: ratio(
            drafted.iter().map(|r| r.sections_covered).sum(),
            drafted.iter().map(|r| r.sections_expected).sum(),
        ),
        cited_share: ratio(drafted.iter().map(|r| r.validly_cited).sum(), sentences),
        flagged_share: ratio(drafted.iter().map(|r| r.flagged).sum(), sentences),
        seconds_per_encounter: mean(results.iter().map(|r| r.seconds)),
        wer: results
            .iter()
            .any(|r| r.wer.is_some())
            .then(|| mean(results.iter().filter_map(|r| r.wer))),
        planted: results.iter().any(|r| r.planted.is_some()).then(|| {
            let count = |o: PlantedOutcome| {
                results
                    .iter()
                    .filter(|r| r.planted.as_ref().is_some_and(|p| p.outcome == o))
                    .count()
            };
            (
                count(PlantedOutcome::NotStated),
                count(PlantedOutcome::StatedFlagged),
                count(PlantedOutcome::StatedUnflagged),
            )
        }),
        facts: results.iter().filter_map(|r| r.facts.as_ref()).fold(
            crate::facts::FactScores::default(),
            |mut sum, f| {
                sum.transcript += f.transcript;
                sum.important += f.important;
                sum.omitted += f.omitted;
                sum.draft += f.draft;
                sum.invented += f.invented;
                sum.invented_major += f.invented_major;
                sum.invented_flagged += f.invented_flagged;
                sum.wrong += f.wrong;
                sum.wrong_flagged += f.wrong_flagged;
                sum
            },
        ),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// The Markdown report; `plot` is the SVG file name written beside it.
pub fn markdown(title: &str, setup: &str, summary: &Summary, results: &[EncounterResult], plot: &str) -> String {
    let mut md = String::new();
    writeln!(md, "# {title}\n\n{setup}\n").unwrap();
    writeln!(md, "## Summary\n").unwrap();
    writeln!(md, "| metric | value |\n|---|---|").unwrap();
    writeln!(
        md,
        "| encounters | {} (drafted {}, off-template {}, failed {}) |",
        summary.encounters, summary.drafted, summary.off_template, summary.failed
    )
    .unwrap();
    writeln!(
        md,
        "| ROUGE-1 / ROUGE-2 / ROUGE-L (full note, F1 ×100) | {} / {} / {} |",
        pct(summary.full.rouge1),
        pct(summary.full.rouge2),
        pct(summary.full.rouge_l)
    )
    .unwrap();
    writeln!(
        md,
        "| section completeness (reference sections the draft also fills) | {} % |",
        pct(summary.completeness)
    )
    .unwrap();
    writeln!(
        md,
        "| sentences with valid citations | {} % |",
        pct(summary.cited_share)
    )
    .unwrap();
    writeln!(
        md,
        "| sentences flagged unsupported | {} % |",
        pct(summary.flagged_share)
    )
    .unwrap();
    writeln!(md, "| seconds per encounter | {:.1} |", summary.seconds_per_encounter).unwrap();
    if let Some(wer) = summary.wer {
        writeln!(
            md,
            "| speech recognition WER on the synthesized dialogues | {} % |",
            pct(wer)
        )
        .unwrap();
    }
    if let Some((not_stated, flagged, unflagged)) = summary.planted {
        writeln!(
            md,
            "| planted-fact check: dose removed from the dialogue | {} cases: not stated {not_stated}, stated but flagged {flagged}, stated unflagged {unflagged} |",
            not_stated + flagged + unflagged
        )
        .unwrap();
    }
    let f = &summary.facts;
    if f.draft > 0 {
        let share = |a: usize, b: usize| {
            if b == 0 {
                "—".to_string()
            } else {
                format!("{:.2} %", 100.0 * a as f64 / b as f64)
            }
        };
        writeln!(md, "\n## Facts\n\nFacts read by `drafting::facts` (the support check's lexicon, numbers and drug names) from the transcript, the reference note and each draft sentence; what the lexicon does not know is not counted. Major: drugs, doses, dosing, diagnoses, tests, referrals, vital readings, sides.\n").unwrap();
        writeln!(md, "| metric | value |\n|---|---|").unwrap();
        writeln!(
            md,
            "| facts in the transcripts / in the drafts | {} / {} |",
            f.transcript, f.draft
        )
        .unwrap();
        writeln!(
            md,
            "| omitted: facts the transcript states and the reference keeps, missing from the draft | {} of {} ({}) |",
            f.omitted,
            f.important,
            share(f.omitted, f.important)
        )
        .unwrap();
        writeln!(
            md,
            "| invented: draft facts the transcript never states | {} ({} of draft facts; {} major) |",
            f.invented,
            share(f.invented, f.draft),
            f.invented_major
        )
        .unwrap();
        writeln!(
            md,
            "| invented and flagged for the reviewer | {} of {} ({}) |",
            f.invented_flagged,
            f.invented,
            share(f.invented_flagged, f.invented)
        )
        .unwrap();
        writeln!(
            md,
            "| wrong value or polarity | {} ({} of draft facts); flagged {} |",
            f.wrong,
            share(f.wrong, f.draft),
            f.wrong_flagged
        )
        .unwrap();
        writeln!(md, "\n### Unflagged examples\n").unwrap();
        for r in results {
            if let Some(f) = &r.facts {
                for e in f.invented_examples.iter().chain(&f.wrong_examples) {
                    writeln!(md, "- {}: {}", r.id, e.replace('|', "/")).unwrap();
                }
            }
        }
        writeln!(md, "\n### Omitted examples\n").unwrap();
        for r in results {
            if let Some(f) = &r.facts
                && !f.omitted_examples.is_empty()
            {
                writeln!(md, "- {}: {}", r.id, f.omitted_examples.join("; ")).unwrap();
            }
        }
    }
    writeln!(
        md,
        "\n## Per section (F1 ×100)\n\n| section | ROUGE-1 | ROUGE-2 | ROUGE-L |\n|---|---|---|---|"
    )
    .unwrap();
    for (name, s) in &summary.sections {
        writeln!(
            md,
            "| {name} | {} | {} | {} |",
            pct(s.rouge1),
            pct(s.rouge2),
            pct(s.rouge_l)
        )
        .unwrap();
    }
    writeln!(md, "\n![ROUGE per encounter]({plot})\n").unwrap();
    writeln!(md, "## Per encounter\n\n| encounter | outcome | s | R-1 | R-2 | R-L | sentences | flagged | sections | prompt tok | generated tok | WER |\n|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
    for r in results {
        let outcome = match &r.outcome {
            Outcome::Drafted => "drafted".to_string(),
            Outcome::OffTemplate => "off-template".to_string(),
            Outcome::Failed(why) => format!("failed: {}", why.replace('|', "/")),
        };
        writeln!(
            md,
            "| {} | {outcome} | {:.1} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {} |",
            r.id,
            r.seconds,
            pct(r.full.rouge1),
            pct(r.full.rouge2),
            pct(r.full.rouge_l),
            r.sentences,
            r.flagged,
            r.sections_covered,
            r.sections_expected,
            r.prompt_tokens,
            r.generated_tokens,
            r.wer.map_or("—".to_string(), pct)
        )
        .unwrap();
    }
    if results.iter().any(|r| r.planted.is_some()) {
        writeln!(md, "\n## Planted-fact check\n\nThe first dose in each dialogue was replaced by \"the usual dose\" before drafting.\n\n| encounter | removed | outcome |\n|---|---|---|").unwrap();
        for r in results {
            if let Some(p) = &r.planted {
                writeln!(md, "| {} | {} | {:?} |", r.id, p.removed, p.outcome).unwrap();
            }
        }
    }
    md
}

/// Grouped bars of ROUGE-1/2/L per encounter, as a self-contained SVG.
pub fn svg(results: &[EncounterResult]) -> String {
    let (bar, gap, height, top, left) = (6.0, 8.0, 200.0, 20.0, 40.0);
    let group = 3.0 * bar + gap;
    let width = left + group * results.len().max(1) as f64 + 20.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"10\">\n",
        height + top + 70.0
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = top + height * (1.0 - tick);
        writeln!(s, "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"4\" y=\"{}\">{tick:.2}</text>", width - 10.0, y + 3.0).unwrap();
    }
    let colors = ["#4e79a7", "#f28e2b", "#59a14f"];
    for (i, r) in results.iter().enumerate() {
        let x0 = left + i as f64 * group;
        for (k, v) in [r.full.rouge1, r.full.rouge2, r.full.rouge_l].into_iter().enumerate() {
            let h = height * v.clamp(0.0, 1.0);
            writeln!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"{bar}\" height=\"{h}\" fill=\"{}\"/>",
                x0 + k as f64 * bar,
                top + height - h,
                colors[k]
            )
            .unwrap();
        }
        writeln!(
            s,
            "<text transform=\"translate({},{}) rotate(60)\">{}</text>",
            x0,
            top + height + 8.0,
            r.id
        )
        .unwrap();
    }
    for (k, name) in ["ROUGE-1", "ROUGE-2", "ROUGE-L"].iter().enumerate() {
        let x = left + 70.0 * k as f64;
        writeln!(
            s,
            "<rect x=\"{x}\" y=\"4\" width=\"8\" height=\"8\" fill=\"{}\"/><text x=\"{}\" y=\"12\">{name}</text>",
            colors[k],
            x + 11.0
        )
        .unwrap();
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, outcome: Outcome, r1: f64) -> EncounterResult {
        EncounterResult {
            id: id.into(),
            outcome,
            seconds: 10.0,
            planted: None,
            facts: None,
            full: Scores {
                rouge1: r1,
                rouge2: r1 / 2.0,
                rouge_l: r1,
            },
            sections: vec![(
                "Subjective".into(),
                Scores {
                    rouge1: r1,
                    rouge2: 0.0,
                    rouge_l: r1,
                },
            )],
            sentences: 10,
            validly_cited: 10,
            flagged: 2,
            sections_expected: 4,
            sections_covered: 3,
            prompt_tokens: 100,
            generated_tokens: 50,
            wer: None,
        }
    }

    #[test]
    fn failures_count_as_zero_and_shares_use_drafted_sentences() {
        let results = [
            result("a", Outcome::Drafted, 0.5),
            result("b", Outcome::Failed("x".into()), 0.0),
        ];
        let s = summarize(&results, &["Subjective"]);
        assert_eq!((s.drafted, s.failed), (1, 1));
        assert!((s.full.rouge1 - 0.25).abs() < 1e-9);
        assert!((s.flagged_share - 0.2).abs() < 1e-9);
        assert!((s.completeness - 0.75).abs() < 1e-9);
        let md = markdown("t", "setup", &s, &results, "p.svg");
        assert!(
            md.contains("| ROUGE-1 / ROUGE-2 / ROUGE-L (full note, F1 ×100) | 25.00 / 12.50 / 25.00 |"),
            "{md}"
        );
        assert!(svg(&results).starts_with("<svg"));
    }
}
