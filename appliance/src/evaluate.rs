//! `scribe eval aci-bench`: drafts ACI-Bench dialogues through the real drafting path and scores
//! them against the clinicians' notes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use eval::report::{EncounterResult, Outcome, Planted, PlantedOutcome};
use eval::rouge;
use eval::speech::{Layout, Voice};
use protocol::{Draft, FlagKind, Speaker, Transcript};

use crate::commands::Context;
use crate::pipeline::{DraftError, Pipeline};

pub struct AciBenchArgs<'a> {
    pub data: &'a Path,
    pub split: &'a str,
    pub limit: Option<usize>,
    pub out: &'a Path,
    pub template: &'a str,
    /// Synthesize each dialogue and run the speech path first.
    pub audio: bool,
    /// Remove the first dose from each dialogue and check the draft does not state it unflagged.
    pub planted: bool,
}

pub fn aci_bench(ctx: &Context, args: &AciBenchArgs<'_>) -> Result<ExitCode> {
    let encounters = eval::aci::load(args.data, args.split)?;
    let template = crate::templates::resolve(args.template, &ctx.config.templates_dir(&ctx.home))?;
    let (asr, llm) = ctx.manifest.profile(&ctx.config.profile)?;
    let mut pipeline = Pipeline::new(&ctx.config, &ctx.home, &ctx.manifest)?;
    let section_names: Vec<&str> = template.sections.iter().map(|s| s.name.as_str()).collect();
    let four_parts = section_names.len() == eval::aci::PARTS.len();

    let scratch = tempfile::tempdir()?;
    let mut results = Vec::new();
    // Each draft as the reviewer would read it (sentences, citations, flags): the examples behind
    // the report's numbers. ACI-Bench is public data; a clinic's visits never go through here.
    let drafts_dir = args.out.join(format!("aci-bench-{}-drafts", args.split));
    std::fs::create_dir_all(&drafts_dir).with_context(|| format!("cannot create {}", drafts_dir.display()))?;
    for enc in encounters.iter().take(args.limit.unwrap_or(usize::MAX)) {
        let started = Instant::now();
        let (dialogue, planted) = if args.planted {
            match remove_first_dose(&enc.dialogue) {
                Some((changed, removed, number)) => (changed, Some((removed, number))),
                None => continue,
            }
        } else {
            (enc.dialogue.clone(), None)
        };
        let typed = crate::dialogue::parse_dialogue(&dialogue)
            .with_context(|| format!("ACI-Bench encounter {}", enc.encounter_id))?;
        let reference = eval::aci::reference_parts(&enc.note);
        let (transcript, wer) = if args.audio {
            match hear(
                &mut pipeline,
                &typed,
                &scratch.path().join(format!("{}.wav", enc.encounter_id)),
                ctx.config.capture.speaker_roles,
            ) {
                Ok(heard) => heard,
                Err(e) => {
                    let result = failed(
                        &enc.encounter_id,
                        started.elapsed().as_secs_f64(),
                        DraftError::Engine(e),
                    );
                    results.push(result);
                    continue;
                }
            }
        } else {
            (typed, None)
        };
        let drafted = pipeline.draft_note(&transcript, &template, None);
        let seconds = started.elapsed().as_secs_f64();
        let result = match drafted {
            Ok((draft, stats)) => {
                let mut r = score(
                    &enc.encounter_id,
                    &draft,
                    &reference,
                    &enc.note,
                    four_parts,
                    &transcript,
                );
                r.seconds = seconds;
                r.facts = Some(eval::facts::score(&transcript, &enc.note, &draft));
                std::fs::write(
                    drafts_dir.join(format!("{}.txt", enc.encounter_id)),
                    format!(
                        "{}\n\n# Transcript\n\n{}",
                        review_ui::draft_text(&draft),
                        review_ui::transcript_text(&transcript)
                    ),
                )?;
                r.prompt_tokens = stats.prompt_tokens;
                r.generated_tokens = stats.generated_tokens;
                r.wer = wer;
                r.planted = planted.map(|(removed, number)| {
                    let outcome = planted_outcome(&draft, &number);
                    Planted {
                        removed,
                        number,
                        outcome,
                    }
                });
                r
            }
            Err(e) => failed(&enc.encounter_id, seconds, e),
        };
        let facts = result.facts.clone().unwrap_or_default();
        eprintln!(
            "{}: {:.0} s, R-1 {:.3}, R-L {:.3}, {} sentences, {} flagged, facts {} (invented {}, {} flagged; wrong {}; omitted {} of {}), {:?}",
            result.id,
            result.seconds,
            result.full.rouge1,
            result.full.rouge_l,
            result.sentences,
            result.flagged,
            facts.draft,
            facts.invented,
            facts.invented_flagged,
            facts.wrong,
            facts.omitted,
            facts.important,
            result.outcome
        );
        results.push(result);
    }

    let summary = eval::report::summarize(&results, if four_parts { &section_names } else { &[] });
    std::fs::create_dir_all(args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let stem = format!("aci-bench-{}", args.split);
    let audio_setup = if args.audio {
        format!(
            " With --audio: each dialogue spoken by espeak-ng (two voices), transcribed by {} and drafted from \
             that transcript (speaker roles by pitch); WER counts number words against digits as errors.",
            asr.name
        )
    } else {
        String::new()
    };
    let setup = format!(
        "Drafted with the `{}` template by {} (profile `{}`), greedy, grammar-constrained; dialogues given as \
         typed transcripts unless --audio. ROUGE F1 with rouge_score's tokenisation, no stemming; \
         draft text is the sentences without headings or citations, the reference is the note without its \
         headings; ROUGE-L is over the whole note (rouge_score's rougeL, not rougeLsum). {} encounters of the \
         {} split.{audio_setup}",
        template.name,
        llm.name,
        ctx.config.profile,
        results.len(),
        args.split
    );
    let md = eval::report::markdown(
        &format!("ACI-Bench {} split", args.split),
        &setup,
        &summary,
        &results,
        &format!("{stem}.svg"),
    );
    std::fs::write(args.out.join(format!("{stem}.md")), md)?;
    std::fs::write(args.out.join(format!("{stem}.svg")), eval::report::svg(&results))?;
    let f = &summary.facts;
    let rate = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    let headline = format!(
        "ROUGE-1/2/L {:.2}/{:.2}/{:.2}; facts: invented {:.2} % ({} of {} flagged), wrong {:.2} %, omitted {:.2} %; completeness {:.0} %; cited {:.0} %; flagged {:.0} %; off-template {}; failed {}; {:.1} s per encounter",
        summary.full.rouge1 * 100.0,
        summary.full.rouge2 * 100.0,
        summary.full.rouge_l * 100.0,
        rate(f.invented, f.draft),
        f.invented_flagged,
        f.invented,
        rate(f.wrong, f.draft),
        rate(f.omitted, f.important),
        summary.completeness * 100.0,
        summary.cited_share * 100.0,
        summary.flagged_share * 100.0,
        summary.off_template,
        summary.failed,
        summary.seconds_per_encounter
    );
    println!("{headline}");
    println!("report: {}", args.out.join(format!("{stem}.md")).display());
    let mut models = vec![crate::model_cards::version(llm)];
    if args.audio {
        models.push(crate::model_cards::version(asr));
    }
    crate::model_cards::record_eval(
        &ctx.home,
        &crate::model_cards::EvalRecord {
            at: store::rfc3339_utc(now_ms()),
            models,
            what: format!(
                "ACI-Bench {}, {} encounters, `{}` template, {}",
                args.split,
                results.len(),
                template.name,
                if args.audio {
                    "spoken by espeak-ng"
                } else {
                    "typed transcripts"
                }
            ),
            results: format!(
                "{headline}{}",
                summary
                    .wer
                    .map(|w| format!("; WER {:.1} %", w * 100.0))
                    .unwrap_or_default()
            ),
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `scribe eval speakers`: speaker-role accuracy per segment, by pitch on one channel and by
/// channel with a microphone per speaker, on synthesized two-voice visits.
pub fn speakers(ctx: &Context, data: &Path, split: &str, limit: usize, out: &Path) -> Result<ExitCode> {
    let encounters = eval::aci::load(data, split)?;
    let (asr, _) = ctx.manifest.profile(&ctx.config.profile)?;
    let mut pipeline = Pipeline::new(&ctx.config, &ctx.home, &ctx.manifest)?;
    let scratch = tempfile::tempdir()?;
    let roles = [Voice::Doctor, Voice::Patient];
    let mut rows = Vec::new();
    let (mut totals, mut minutes) = ([(0usize, 0usize); 2], 0.0);
    for enc in encounters.iter().take(limit) {
        let typed = crate::dialogue::parse_dialogue(&enc.dialogue)
            .with_context(|| format!("ACI-Bench encounter {}", enc.encounter_id))?;
        let lines = voiced_lines(&typed);
        let (mono, stereo) = (scratch.path().join("mono.wav"), scratch.path().join("stereo.wav"));
        let turns = eval::speech::synthesize_as(&lines, &mono, Layout::Mono).map_err(anyhow::Error::msg)?;
        eval::speech::synthesize_as(&lines, &stereo, Layout::Stereo).map_err(anyhow::Error::msg)?;
        let limits = ctx.config.capture.upload_limits();
        let pcm = audio::decode_file(&mono, &limits)?.pcm.samples;
        let track = audio::decode_file(&stereo, &limits)?.channel_track;
        // One transcription serves both: the stereo file mixed down is the same speech.
        let (heard, _) = pipeline.transcribe_pcm(&pcm).map_err(anyhow::Error::msg)?;
        let spans: Vec<(u64, u64)> = heard.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
        let mut row = Vec::new();
        for (i, track) in [None, track.as_deref()].into_iter().enumerate() {
            let said: Vec<_> = audio::speakers::voices(&spans, &pcm, track)
                .into_iter()
                .zip(&spans)
                .map(|(v, &(s, e))| {
                    let voice = v.map(|v| {
                        if v == audio::speakers::Voice::First {
                            roles[0]
                        } else {
                            roles[1]
                        }
                    });
                    (s, e, voice)
                })
                .collect();
            let (right, scored) = eval::speech::speaker_accuracy(&said, &turns);
            totals[i].0 += right;
            totals[i].1 += scored;
            row.push((right, scored));
        }
        let audio_min = pcm.len() as f64 / 16_000.0 / 60.0;
        minutes += audio_min;
        eprintln!(
            "{}: {:.1} min, pitch {}/{}, channels {}/{}",
            enc.encounter_id, audio_min, row[0].0, row[0].1, row[1].0, row[1].1
        );
        rows.push((enc.encounter_id.clone(), audio_min, row));
    }
    let pct = |(right, scored): (usize, usize)| 100.0 * right as f64 / scored.max(1) as f64;
    let mut md = format!(
        "# Speaker roles on synthesized ACI-Bench visits ({split} split)\n\n\
         Each dialogue spoken by espeak-ng (doctor `en-us+m3`, patient `en-us+f2`) and transcribed by {} \
         (profile `{}`). A segment is right when its role is the role of the voice speaking most of its time; \
         a segment labelled unknown counts as wrong. **One channel**: roles by voice pitch, the first voice \
         heard is the clinician. **Microphone per speaker**: doctor on the left, patient on the right, each \
         also heard by the other's microphone at −12 dB; roles by the louder channel.\n\n\
         | encounter | minutes | one channel (pitch) | microphone per speaker |\n|---|---:|---:|---:|\n",
        asr.name, ctx.config.profile
    );
    let cell = |c: (usize, usize), bold: &str| format!("{bold}{:.1} %{bold} ({}/{})", pct(c), c.0, c.1);
    for (id, min, row) in &rows {
        md.push_str(&format!(
            "| {id} | {min:.1} | {} | {} |\n",
            cell(row[0], ""),
            cell(row[1], "")
        ));
    }
    md.push_str(&format!(
        "| **all** | {minutes:.1} | {} | {} |\n",
        cell(totals[0], "**"),
        cell(totals[1], "**")
    ));
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join(format!("speakers-{split}.md"));
    std::fs::write(&path, md)?;
    println!(
        "speaker-role accuracy: one channel {:.1} %, microphone per speaker {:.1} % ({} segments, {minutes:.1} min)",
        pct(totals[0]),
        pct(totals[1]),
        totals[0].1
    );
    println!("report: {}", path.display());
    crate::model_cards::record_eval(
        &ctx.home,
        &crate::model_cards::EvalRecord {
            at: store::rfc3339_utc(now_ms()),
            models: vec![crate::model_cards::version(asr)],
            what: format!(
                "speaker roles, ACI-Bench {split}, {} encounters spoken by espeak-ng ({minutes:.1} min)",
                rows.len()
            ),
            results: format!(
                "one channel (pitch) {:.1} %, microphone per speaker {:.1} % of {} segments",
                pct(totals[0]),
                pct(totals[1]),
                totals[0].1
            ),
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn voiced_lines(typed: &Transcript) -> Vec<(Voice, &str)> {
    typed
        .segments
        .iter()
        .map(|s| {
            (
                if s.speaker == Speaker::Clinician {
                    Voice::Doctor
                } else {
                    Voice::Patient
                },
                s.text.as_str(),
            )
        })
        .collect()
}

/// The speech path: speak the typed dialogue (a voice per speaker), transcribe it, and score the
/// recognizer against the text.
fn hear(
    pipeline: &mut Pipeline,
    typed: &Transcript,
    wav: &Path,
    roles: [Speaker; 2],
) -> Result<(Transcript, Option<f64>), String> {
    eval::speech::synthesize(&voiced_lines(typed), wav)?;
    let pcm = audio::decode_wav_file(wav).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(wav);
    let (mut heard, _) = pipeline.transcribe_pcm(&pcm.samples)?;
    crate::pipeline::label_speakers(&mut heard, &pcm.samples, None, roles);
    let text = |t: &Transcript| t.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    let wer = eval::speech::wer(&eval::speech::words(&text(typed)), &eval::speech::words(&text(&heard)));
    Ok((heard, Some(wer)))
}

/// Replaces the first spoken dose ("twenty milligrams", "80 mg") and every repeat of it with
/// "the usual dose". Returns the changed dialogue, the removed phrase and its number.
fn remove_first_dose(dialogue: &str) -> Option<(String, String, String)> {
    let tokens: Vec<&str> = dialogue.split(' ').collect();
    let unit = |t: &str| matches!(t, "milligram" | "milligrams" | "mg");
    let numeric = |t: &str| !drafting::numbers_in(t).is_empty() || t == "hundred";
    let at = tokens
        .iter()
        .position(|t| unit(t))
        .filter(|&i| i > 0 && numeric(tokens[i - 1]))?;
    let mut start = at - 1;
    while start > 0 && numeric(tokens[start - 1]) {
        start -= 1;
    }
    let removed = tokens[start..=at].join(" ");
    let number = drafting::numbers_in(&tokens[start..at].join(" ")).into_iter().next()?;
    Some((dialogue.replace(&removed, "the usual dose"), removed, number))
}

fn planted_outcome(draft: &Draft, number: &str) -> PlantedOutcome {
    let stating: Vec<&protocol::Sentence> = draft
        .sentences()
        .filter(|s| drafting::numbers_in(&s.text).iter().any(|n| n == number))
        .collect();
    if stating.is_empty() {
        PlantedOutcome::NotStated
    } else if stating.iter().all(|s| {
        s.flags
            .iter()
            .any(|f| f.kind == FlagKind::UnsupportedNumber && f.term == number)
    }) {
        PlantedOutcome::StatedFlagged
    } else {
        PlantedOutcome::StatedUnflagged
    }
}

fn sentences_text<'a>(sentences: impl Iterator<Item = &'a protocol::Sentence>) -> String {
    sentences.map(|s| s.text.as_str()).collect::<Vec<_>>().join("\n")
}

fn score(
    id: &str,
    draft: &Draft,
    reference: &[String; 4],
    note: &str,
    four_parts: bool,
    transcript: &protocol::Transcript,
) -> EncounterResult {
    let reference_body = reference.join("\n");
    let full = rouge::scores(
        if four_parts { &reference_body } else { note },
        &sentences_text(draft.sentences()),
    );
    let mut sections = Vec::new();
    let (mut expected, mut covered) = (0, 0);
    if four_parts {
        for (section, part) in draft.sections.iter().zip(reference) {
            if part.trim().is_empty() {
                continue;
            }
            expected += 1;
            covered += usize::from(!section.sentences.is_empty());
            sections.push((
                section.name.clone(),
                rouge::scores(part, &sentences_text(section.sentences.iter())),
            ));
        }
    }
    let unsupported = |s: &&protocol::Sentence| s.flags.iter().any(|f| f.kind.is_support());
    EncounterResult {
        id: id.to_string(),
        outcome: Outcome::Drafted,
        seconds: 0.0,
        full,
        sections,
        sentences: draft.sentences().count(),
        validly_cited: draft
            .sentences()
            .filter(|s| !s.citations.is_empty() && s.citations.iter().all(|c| transcript.segment(*c).is_some()))
            .count(),
        flagged: draft.sentences().filter(unsupported).count(),
        sections_expected: expected,
        sections_covered: covered,
        prompt_tokens: 0,
        generated_tokens: 0,
        wer: None,
        planted: None,
        facts: None,
    }
}

fn failed(id: &str, seconds: f64, e: DraftError) -> EncounterResult {
    EncounterResult {
        id: id.to_string(),
        outcome: match e {
            DraftError::OffTemplate(_) => Outcome::OffTemplate,
            other => Outcome::Failed(other.to_string()),
        },
        seconds,
        full: rouge::Scores::default(),
        sections: Vec::new(),
        sentences: 0,
        validly_cited: 0,
        flagged: 0,
        sections_expected: 0,
        sections_covered: 0,
        prompt_tokens: 0,
        generated_tokens: 0,
        wer: None,
        planted: None,
        facts: None,
    }
}

/// Whether `needle` is still in `haystack`: case-insensitive, and for identifiers made of digits,
/// by their digits alone (a recognizer writes "555-201-1311" as "555 201 1311" or "5552011311").
fn still_there(haystack: &str, needle: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let needle_digits = digits(needle);
    if needle_digits.len() >= 4 && needle_digits.len() * 2 >= needle.chars().filter(|c| c.is_alphanumeric()).count() {
        let hay: Vec<String> = haystack
            .split(|c: char| c.is_alphabetic() || c == '[' || c == ']')
            .map(digits)
            .collect();
        return hay.iter().any(|h| h.contains(&needle_digits));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// `scribe eval deid`: recall of planted Safe Harbor identifiers on synthesized visits, typed or
/// spoken through the recognizer.
pub fn deid(ctx: &Context, visits: usize, audio: bool, out: &Path) -> Result<ExitCode> {
    use std::collections::BTreeMap;
    let mut pipeline = if audio {
        Some(Pipeline::new(&ctx.config, &ctx.home, &ctx.manifest)?)
    } else {
        None
    };
    let scratch = tempfile::tempdir()?;
    // kind → (planted, heard, removed)
    let mut kinds: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut missed: Vec<String> = Vec::new();
    let clinical = ["cough", "fever", "lungs", "viral", "fluids"];
    let mut clinical_kept = (0, 0);
    let mut heard_texts = String::new();
    for i in 0..visits {
        let visit = eval::planted::visit(i);
        let text = match pipeline.as_mut() {
            None => visit
                .turns
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            Some(p) => {
                let wav = scratch.path().join(format!("visit-{i}.wav"));
                let lines: Vec<(eval::speech::Voice, &str)> =
                    visit.turns.iter().map(|(v, t)| (*v, t.as_str())).collect();
                eval::speech::synthesize(&lines, &wav).map_err(anyhow::Error::msg)?;
                let pcm = audio::decode_wav_file(&wav)?;
                let (heard, _) = p.transcribe_pcm(&pcm.samples).map_err(anyhow::Error::msg)?;
                heard
                    .segments
                    .iter()
                    .map(|s| s.text.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        let redacted = review_ui::deid::Deidentifier::new().redact(&text);
        if audio {
            // Synthetic visits, no PHI: kept so a miss can be traced to what the recognizer wrote.
            heard_texts.push_str(&format!("--- visit {i}\n{text}\n--- de-identified\n{redacted}\n"));
        }
        for planted in &visit.planted {
            let e = kinds.entry(planted.kind).or_default();
            e.0 += 1;
            if still_there(&text, &planted.text) {
                e.1 += 1;
                if still_there(&redacted, &planted.text) {
                    missed.push(format!("visit {i}: {} `{}`", planted.kind, planted.text));
                } else {
                    e.2 += 1;
                }
            }
        }
        for word in clinical {
            if text.to_lowercase().contains(word) {
                clinical_kept.1 += 1;
                clinical_kept.0 += usize::from(redacted.to_lowercase().contains(word));
            }
        }
    }
    let (planted, heard, removed) = kinds.values().fold((0, 0, 0), |a, v| (a.0 + v.0, a.1 + v.1, a.2 + v.2));
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    let how = if audio {
        let (asr, _) = ctx.manifest.profile(&ctx.config.profile)?;
        format!("spoken by espeak-ng and transcribed by {}", asr.name)
    } else {
        "typed".to_string()
    };
    let mut md = format!(
        "# De-identification: planted identifiers\n\n{visits} synthesized visits ({how}), each with a name \
         (given, family, a relative's), a date of birth, phone, fax, medical record number, street address, \
         city, ZIP code, an age over 89, insurance plan number, SSN, email, URL and IP address \
         (`eval/src/planted.rs`). An identifier counts as removed when it no longer appears in the \
         de-identified text (numbers compared by their digits). \"Heard\" leaves out identifiers the \
         recognizer did not write down.\n\n\
         | Kind | Planted | Heard | Removed | Recall |\n|---|---|---|---|---|\n"
    );
    for (kind, (p, h, r)) in &kinds {
        md.push_str(&format!("| {kind} | {p} | {h} | {r} | {:.1} % |\n", pct(*r, *h)));
    }
    md.push_str(&format!(
        "| **all** | {planted} | {heard} | {removed} | **{:.1} %** |\n\nClinical words kept (cough, fever, lungs, \
         viral, fluids): {}/{}.\n",
        pct(removed, heard),
        clinical_kept.0,
        clinical_kept.1
    ));
    if !missed.is_empty() {
        md.push_str("\nMissed:\n\n");
        for m in missed.iter().take(30) {
            md.push_str(&format!("- {m}\n"));
        }
    }
    std::fs::create_dir_all(out)?;
    let path = out.join(if audio { "deid-spoken.md" } else { "deid-typed.md" });
    std::fs::write(&path, &md)?;
    if audio {
        std::fs::write(out.join("deid-spoken-transcripts.txt"), heard_texts)?;
    }
    println!(
        "planted identifiers removed: {removed}/{heard} heard ({:.1} %), {planted} planted; clinical words kept {}/{}",
        pct(removed, heard),
        clinical_kept.0,
        clinical_kept.1
    );
    println!("report: {}", path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_dose_and_its_repeats_are_removed() {
        let (changed, removed, number) =
            remove_first_dose("[doctor] take twenty milligrams daily .\n[patient] twenty milligrams , okay .").unwrap();
        assert_eq!(removed, "twenty milligrams");
        assert_eq!(number, "20");
        assert!(!changed.contains("twenty"), "{changed}");
        let (_, removed, number) = remove_first_dose("increase lasix to 80 mg a day").unwrap();
        assert_eq!((removed.as_str(), number.as_str()), ("80 mg", "80"));
        assert!(remove_first_dose("no doses here").is_none());
    }
}
