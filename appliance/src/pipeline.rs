//! The pipeline: an encounter's audio becomes a transcript, the transcript becomes a draft.
//!
//! Each stage reads its input from the store, sends exactly that to its worker, and commits the
//! result together with the state change. A stage that fails marks the encounter `failed` with a
//! reason; a process killed mid-stage leaves the encounter in its stage's state, and the next
//! pipeline run picks it up again (stages are idempotent).

use anyhow::{Context, Result, bail};
use audio::speakers::Voice;
use audio::vad::Cut;
use drafting::{Prompt, Template};
use firmware::{Manifest, ModelSpec};
use protocol::frame::pcm_to_bytes;
use protocol::job::{GenerateJob, JobStats, Request, Response};
use protocol::{Draft, Segment, Speaker, Transcript};
use store::{Actor, State, Store};

use crate::config::{Config, Home, threads};
use crate::supervisor::{Worker, WorkerKind, WorkerSpec, model_ref, worker_place};

pub struct Pipeline {
    asr: Worker,
    drafter: Worker,
    /// Which model versions a draft came from, recorded with it: "name sha256:…" each.
    llm_version: String,
    asr_version: String,
    templates_dir: std::path::PathBuf,
    actor: Actor,
    /// A recording whose source has sent nothing for this long is finished as it stands.
    finalize_after: std::time::Duration,
    /// Each recording in progress: how much audio it had when this process last saw it grow, and
    /// when (monotonic), so a wall-clock step (NTP, a fixed RTC) never makes a live recording
    /// look abandoned, nor an abandoned one look live.
    last_growth: std::collections::HashMap<String, (i64, std::time::Instant)>,
    /// The roles of the left channel / first voice, and of the right / other voice.
    speaker_roles: [Speaker; 2],
    /// Recordings being transcribed live: how far, and the transcript so far. Kept until the
    /// final transcript is made from it.
    live: std::collections::HashMap<String, LiveTranscript>,
    prefill_while_recording: bool,
    patient_instructions: bool,
    /// Encounters awaiting review whose patient instructions are still to be drafted; filled
    /// from the store once (`None` until then), then as notes are drafted.
    instructions_due: Option<std::collections::VecDeque<String>>,
}

/// The live transcript of one recording in progress.
#[derive(Default)]
struct LiveTranscript {
    /// Whole seconds of audio read from the store so far.
    read_s: u32,
    /// Audio read but not yet transcribed (an utterance still being spoken), and where it starts.
    pending: Vec<i16>,
    pending_from_ms: u64,
    /// The transcript so far; its last `partial` segments are a first hearing of the utterance
    /// still being spoken, replaced when it ends.
    transcript: Transcript,
    partial: usize,
    /// How much of `pending` the partial segments heard.
    partial_heard: usize,
    /// The pitch of each segment heard for good (see `audio::speakers::span_pitches`), so the
    /// voices can be told apart without hearing the whole recording again.
    pitches: Pitches,
    /// An utterance could not be transcribed: the live transcript misses speech, so the final
    /// transcription hears the whole recording again.
    gap: bool,
    /// How many segments heard for good are in the drafting worker's cache.
    prefilled: usize,
    /// Prefilling stopped for this visit (too long for one context, or the worker failed).
    prefill_stopped: bool,
}

impl LiveTranscript {
    /// The segments heard for good: the transcript without the utterance still being spoken.
    fn settled(&self) -> &[Segment] {
        &self.transcript.segments[..self.transcript.segments.len() - self.partial]
    }
}

/// Each segment's voice pitch, as `audio::speakers::span_pitches` gives it.
type Pitches = Vec<Option<f32>>;

/// Live transcription sends whisper whole utterances (see `audio::vad`), but no more than this
/// many seconds of uninterrupted speech at once.
const LIVE_MAX_WINDOW_S: usize = 15;

/// The profile's models, checked to be installed (their hashes are checked by the workers).
pub struct Models<'m> {
    pub asr: &'m ModelSpec,
    pub llm: &'m ModelSpec,
}

pub fn installed_models<'m>(manifest: &'m Manifest, config: &Config, home: &Home) -> Result<Models<'m>> {
    let (asr, llm) = manifest.profile(&config.profile)?;
    let dir = config.models_dir(home);
    for m in [asr, llm] {
        let path = firmware::installed_path(&dir, m);
        if !path.exists() {
            bail!(
                "model {} is not installed in {}; run `scribe models install --profile {}`",
                m.name,
                dir.display(),
                config.profile
            );
        }
    }
    Ok(Models { asr, llm })
}

impl Pipeline {
    pub fn new(config: &Config, home: &Home, manifest: &Manifest) -> Result<Pipeline> {
        let models = installed_models(manifest, config, home)?;
        let dir = config.models_dir(home);
        let asr = WorkerSpec {
            kind: WorkerKind::Asr,
            place: worker_place(WorkerKind::Asr),
            load: Request::Load {
                model: model_ref(firmware::installed_path(&dir, models.asr), &models.asr.sha256),
                threads: threads(config.asr.threads),
                language: models.asr.language.clone(),
                context_tokens: 0,
                initial_prompt: config.asr.initial_prompt(),
            },
        };
        let drafter = WorkerSpec {
            kind: WorkerKind::Drafting,
            place: worker_place(WorkerKind::Drafting),
            load: Request::Load {
                model: model_ref(firmware::installed_path(&dir, models.llm), &models.llm.sha256),
                threads: threads(config.drafting.threads),
                language: None,
                context_tokens: config.drafting.context_tokens,
                initial_prompt: None,
            },
        };
        Ok(Pipeline {
            asr: Worker::new(asr),
            drafter: Worker::new(drafter),
            llm_version: crate::model_cards::version(models.llm),
            asr_version: crate::model_cards::version(models.asr),
            templates_dir: config.templates_dir(home),
            actor: Actor::system("pipeline"),
            finalize_after: config.capture.finalize_after,
            last_growth: std::collections::HashMap::new(),
            speaker_roles: config.capture.speaker_roles,
            live: std::collections::HashMap::new(),
            prefill_while_recording: config.drafting.prefill_while_recording,
            patient_instructions: config.drafting.patient_instructions,
            instructions_due: None,
        })
    }

    /// Runs one stage of the oldest encounter waiting for any. Returns false when idle.
    pub fn step(&mut self, store: &mut Store) -> Result<bool> {
        self.finish_abandoned_recordings(store)?;
        if self.transcribe_live(store, false)? {
            return Ok(true);
        }
        if let Some(id) = store.encounters_in(State::Transcribing)?.into_iter().next() {
            self.transcribe(store, &id)?;
            return Ok(true);
        }
        if let Some(id) = store.encounters_in(State::Drafting)?.into_iter().next() {
            self.draft(store, &id)?;
            return Ok(true);
        }
        if let Some(id) = self.next_instructions_due(store)? {
            self.draft_instructions(store, &id)?;
            return Ok(true);
        }
        // Reading the transcript into the model goes before hearing an utterance ahead: the first
        // is what makes the note quick after "stop", the second only shows words a little sooner.
        if self.prefill_live(store)? {
            return Ok(true);
        }
        self.transcribe_live(store, true)
    }

    /// The next encounter whose note awaits review without patient instructions. The first call
    /// looks through the store (a daemon restarted between a note and its instructions, or
    /// notes drafted before they existed); later ones take what `draft` queued.
    fn next_instructions_due(&mut self, store: &mut Store) -> Result<Option<String>> {
        if !self.patient_instructions {
            return Ok(None);
        }
        let due = match &mut self.instructions_due {
            Some(due) => due,
            None => {
                let mut found = std::collections::VecDeque::new();
                for id in store.encounters_in(State::AwaitingReview)? {
                    if !store.has_patient_instructions(&id)? {
                        found.push_back(id);
                    }
                }
                self.instructions_due.insert(found)
            }
        };
        Ok(due.pop_front())
    }

    /// Drafts the after-visit instructions for the patient from the encounter's transcript, as
    /// the note was drafted (template, grammar, citations, validation), and adds them to its
    /// draft. A failure here leaves the note as it is; the reviewer sees no instructions.
    fn draft_instructions(&mut self, store: &mut Store, id: &str) -> Result<()> {
        let span = tracing::info_span!("patient_instructions", encounter = id);
        let _enter = span.enter();
        if store.encounter(id)?.state != State::AwaitingReview {
            return Ok(());
        }
        let template = match crate::templates::resolve(drafting::PATIENT_INSTRUCTIONS, &self.templates_dir) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("patient instructions template problem: {e:#}");
                return record(store, id, "instructions", false, &JobStats::default());
            }
        };
        let transcript = store.transcript(&self.actor, id, "patient instructions")?;
        match self.draft_note(&transcript, &template, Some(id)) {
            Ok((instructions, stats)) => {
                match store.add_patient_instructions(&self.actor, id, &instructions, &self.llm_version) {
                    Ok(_) => {}
                    // Signed (or discarded) while they were drafted: the signed note stands as signed.
                    Err(store::StoreError::WrongState { state, .. }) => {
                        tracing::warn!(state, "the note was {state} before its patient instructions were ready");
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
                record(store, id, "instructions", true, &stats)
            }
            Err(e) => {
                tracing::warn!(reason = %e, "patient instructions not drafted");
                record(store, id, "instructions", false, &JobStats::default())
            }
        }
    }

    /// A recording whose source went away (the recorder was killed, the browser never came back)
    /// keeps every committed second and goes on to transcription; one whose source is still
    /// sending is left alone, so a recorder that outlives a daemon restart simply continues.
    /// "Went away" is measured on this process's monotonic clock from when it last saw the
    /// recording grow (after a restart: from the start), never on the wall clock.
    fn finish_abandoned_recordings(&mut self, store: &mut Store) -> Result<()> {
        let now = std::time::Instant::now();
        let recording = store.encounters_in(State::Recording)?;
        self.last_growth.retain(|id, _| recording.contains(id));
        for id in recording {
            let audio_ms = store.encounter(&id)?.audio_ms.unwrap_or(0);
            let seen = self.last_growth.entry(id.clone()).or_insert((audio_ms, now));
            if seen.0 != audio_ms {
                *seen = (audio_ms, now);
            } else if now.duration_since(seen.1) > self.finalize_after {
                tracing::warn!(encounter = %id, audio_ms, "recording source gone; finishing it");
                store.finish_recording(&self.actor, &id, "source-lost")?;
                self.last_growth.remove(&id);
            }
        }
        Ok(())
    }

    /// Transcribes the next complete utterance of one recording in progress (or, with
    /// `ahead`, hears the utterance still being spoken), so the review app shows the visit as it
    /// happens. Returns whether it did any work. The utterances heard for good become the final
    /// transcript when the recording ends.
    fn transcribe_live(&mut self, store: &mut Store, ahead: bool) -> Result<bool> {
        let recording = store.encounters_in(State::Recording)?;
        let transcribing = store.encounters_in(State::Transcribing)?;
        self.live
            .retain(|id, _| recording.contains(id) || transcribing.contains(id));
        for id in recording {
            let stored_s = (store.encounter(&id)?.audio_ms.unwrap_or(0) / 1000) as u32;
            let live = self.live.entry(id.clone()).or_default();
            if stored_s > live.read_s {
                let pcm = store.audio_seconds(&self.actor, &id, live.read_s, stored_s, "live transcription")?;
                live.pending.extend(pcm);
                live.read_s = stored_s;
            }
            // A complete utterance is transcribed for good; one still being spoken is heard
            // ahead (a partial hearing, at most once per new second) so its words show early.
            let (window, is_final) = match audio::vad::next_cut(&live.pending, LIVE_MAX_WINDOW_S * 16_000) {
                Cut::Wait => continue,
                Cut::Speaking if !ahead || live.pending.len() < live.partial_heard + 16_000 => continue,
                Cut::Speaking => {
                    live.partial_heard = live.pending.len();
                    (live.pending.clone(), false)
                }
                Cut::Silence(n) => {
                    // Nothing was said: whisper is not woken.
                    live.pending.drain(..n);
                    live.pending_from_ms += n as u64 / 16;
                    continue;
                }
                Cut::At(n) => (live.pending.drain(..n).collect::<Vec<i16>>(), true),
            };
            let offset_ms = live.pending_from_ms;
            if is_final {
                live.pending_from_ms += window.len() as u64 / 16;
                live.partial_heard = 0;
            }
            let heard = match self.transcribe_pcm(&window) {
                Ok((heard, _)) => heard,
                Err(reason) => {
                    tracing::warn!(encounter = %id, "live transcription failed: {reason}");
                    // The final transcription will hear this utterance with the whole recording.
                    if is_final && let Some(live) = self.live.get_mut(&id) {
                        live.gap = true;
                    }
                    return Ok(false);
                }
            };
            let live = self.live.get_mut(&id).expect("inserted above");
            if is_final {
                let spans: Vec<(u64, u64)> = heard.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
                live.pitches.extend(audio::speakers::span_pitches(&spans, &window));
            }
            // Whatever was heard of this utterance before is replaced, so the outcome does not
            // depend on how often it was heard ahead.
            let kept = live.transcript.segments.len() - live.partial;
            live.transcript.segments.truncate(kept);
            live.partial = if is_final { 0 } else { heard.segments.len() };
            append_at(&mut live.transcript, heard.segments, offset_ms);
            store.save_live_transcript(&self.actor, &id, &live.transcript)?;
            tracing::info!(encounter = %id, up_to_ms = live.pending_from_ms, "live transcript updated");
            return Ok(true);
        }
        Ok(false)
    }

    /// Takes one encounter through every remaining stage.
    /// A note drafted here is followed by its patient instructions.
    pub fn process(&mut self, store: &mut Store, id: &str) -> Result<State> {
        loop {
            match store.encounter(id)?.state {
                State::Transcribing => self.transcribe(store, id)?,
                State::Drafting => {
                    self.draft(store, id)?;
                    if self.patient_instructions && !store.has_patient_instructions(id)? {
                        self.draft_instructions(store, id)?;
                    }
                }
                settled => return Ok(settled),
            }
        }
    }

    /// The final transcript. A visit transcribed live while it was recorded keeps the utterances
    /// heard for good and only the rest (the tail after the last pause) is transcribed now; any
    /// other recording (an upload, a daemon restarted mid-visit, a live gap) is heard whole.
    fn transcribe(&mut self, store: &mut Store, id: &str) -> Result<()> {
        let span = tracing::info_span!("transcribe", encounter = id);
        let _enter = span.enter();
        let pcm = store.audio(&self.actor, id, "transcription")?;
        let heard = match self.live.remove(id) {
            Some(live) if !live.gap && !live.settled().is_empty() => self.finish_live(live, &pcm),
            _ => self
                .transcribe_pcm(&pcm)
                .map(|(transcript, stats)| (transcript, None, stats)),
        };
        match heard {
            Ok((mut transcript, pitches, stats)) => {
                let track = store.channel_track(id)?;
                let spans: Vec<(u64, u64)> = transcript.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
                let voices = match (&track, pitches) {
                    (Some(track), _) => audio::speakers::voices_by_channel(&spans, track),
                    (None, Some(pitches)) => audio::speakers::voices_by_pitch(&pitches),
                    (None, None) => audio::speakers::voices(&spans, &pcm, None),
                };
                assign_roles(&mut transcript, &voices, track.is_some(), self.speaker_roles);
                store.save_transcript(&self.actor, id, &transcript)?;
                record(store, id, "asr", true, &stats)
            }
            Err(reason) => self.fail(store, id, "asr", &format!("transcription failed: {reason}")),
        }
    }

    /// The live transcript's settled segments plus the transcription of the audio after them,
    /// with every segment's pitch.
    fn finish_live(
        &mut self,
        mut live: LiveTranscript,
        pcm: &[i16],
    ) -> Result<(Transcript, Option<Pitches>, JobStats), String> {
        let settled = live.transcript.segments.len() - live.partial;
        live.transcript.segments.truncate(settled);
        let from_ms = live.pending_from_ms;
        let tail = pcm.get((from_ms * 16) as usize..).unwrap_or(&[]);
        let mut stats = JobStats::default();
        // Less than a tenth of a second is not an utterance (and whisper wants more).
        if tail.len() >= 1_600 {
            let (heard, tail_stats) = self.transcribe_pcm(tail)?;
            let spans: Vec<(u64, u64)> = heard.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
            live.pitches.extend(audio::speakers::span_pitches(&spans, tail));
            append_at(&mut live.transcript, heard.segments, from_ms);
            stats = tail_stats;
        }
        tracing::info!(
            settled,
            tail_ms = tail.len() as u64 / 16,
            "final transcript from the live one and the tail"
        );
        Ok((live.transcript, Some(live.pitches), stats))
    }

    /// While a visit is being recorded, evaluates its transcript so far into the drafting
    /// worker's cache (under the encounter's id), so that after "stop" only the last utterances
    /// and the note itself are left. Runs only when there is nothing else to do. Returns whether
    /// it did any work.
    fn prefill_live(&mut self, store: &mut Store) -> Result<bool> {
        if !self.prefill_while_recording {
            return Ok(false);
        }
        let Some((id, transcript)) = self.live.iter().find_map(|(id, live)| {
            let settled = live.settled();
            let due = live.prefilled < settled.len() && !live.prefill_stopped && !live.gap;
            due.then(|| {
                (
                    id.clone(),
                    Transcript {
                        segments: settled.to_vec(),
                    },
                )
            })
        }) else {
            return Ok(false);
        };
        let encounter = store.encounter(&id)?;
        if encounter.state != State::Recording {
            return Ok(false);
        }
        let Ok(template) = crate::templates::resolve(&encounter.template, &self.templates_dir) else {
            // Drafting will report the template problem; there is nothing to prefill for.
            self.live.get_mut(&id).expect("found above").prefill_stopped = true;
            return Ok(false);
        };
        // Labelled as the final transcript will be, so the prompts agree token for token.
        let mut transcript = transcript;
        let spans: Vec<(u64, u64)> = transcript.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
        let track = store.channel_track(&id)?;
        let voices = match &track {
            Some(track) => audio::speakers::voices_by_channel(&spans, track),
            None => audio::speakers::voices_by_pitch(&self.live[&id].pitches),
        };
        assign_roles(&mut transcript, &voices, track.is_some(), self.speaker_roles);
        let segments = transcript.segments.len();
        let job = generate_job(&transcript, &template, Some(&id));
        let outcome = self.drafter.call(&Request::Prefill(job), &[]);
        let live = self.live.get_mut(&id).expect("found above");
        match outcome {
            Ok(Response::Prefilled { stats }) => {
                live.prefilled = segments;
                tracing::info!(
                    encounter = %id,
                    segments,
                    prompt_tokens = stats.prompt_tokens,
                    cached_tokens = stats.cached_tokens,
                    prompt_ms = stats.prompt_ms,
                    "prefilled"
                );
            }
            Ok(Response::ContextFull { prompt_tokens, .. }) => {
                // The visit will be drafted in parts; the cache cannot hold it whole.
                live.prefill_stopped = true;
                tracing::info!(encounter = %id, prompt_tokens, "too long to prefill whole; stopped prefilling");
            }
            Ok(other) => {
                live.prefill_stopped = true;
                tracing::warn!(encounter = %id, answer = kind_of(&other), "prefill failed; stopped prefilling");
            }
            Err(e) => {
                live.prefill_stopped = true;
                tracing::warn!(encounter = %id, "prefill failed; stopped prefilling: {e}");
            }
        }
        Ok(true)
    }

    /// Transcribes 16 kHz mono audio with the ASR worker. The pipeline stage and `scribe eval`
    /// both transcribe through here.
    pub fn transcribe_pcm(&mut self, pcm: &[i16]) -> Result<(Transcript, JobStats), String> {
        match self.asr.call(&Request::Transcribe, &pcm_to_bytes(pcm)) {
            Ok(Response::Transcript { segments, stats }) => {
                tracing::info!(
                    segments = segments.len(),
                    audio_ms = stats.audio_ms,
                    wall_ms = stats.wall_ms,
                    peak_rss_kb = stats.peak_rss_kb,
                    "transcribed"
                );
                Ok((Transcript { segments }, stats))
            }
            Ok(Response::Failed { reason }) => Err(reason),
            Ok(other) => Err(format!("unexpected answer {}", kind_of(&other))),
            Err(e) => Err(e.to_string()),
        }
    }

    fn draft(&mut self, store: &mut Store, id: &str) -> Result<()> {
        let span = tracing::info_span!("draft", encounter = id);
        let _enter = span.enter();
        let encounter = store.encounter(id)?;
        let transcript = store.transcript(&self.actor, id, "drafting")?;
        let template = match crate::templates::resolve(&encounter.template, &self.templates_dir) {
            Ok(t) => t,
            Err(e) => return self.fail(store, id, "draft", &format!("template problem: {e:#}")),
        };
        match self.draft_note(&transcript, &template, Some(id)) {
            Ok((draft, stats)) => {
                // A recorded visit's draft also depends on the recognizer that made its transcript.
                let models = match encounter.audio_ms {
                    Some(_) => format!("{}; speech: {}", self.llm_version, self.asr_version),
                    None => self.llm_version.clone(),
                };
                store.save_draft(&self.actor, id, &draft, &models)?;
                if let Some(due) = &mut self.instructions_due {
                    due.push_back(id.to_string());
                }
                record(store, id, "draft", true, &stats)
            }
            Err(e) => self.fail(store, id, "draft", &e.to_string()),
        }
    }

    /// Drafts a note from one transcript: prompt and grammar, the drafting worker, then the parser
    /// and the validator. The pipeline stage and `scribe eval` both draft through here.
    ///
    /// A visit too long for the model's context is drafted in parts (halving the transcript until
    /// each part fits) and the parts' sentences are merged section by section, so no part of the
    /// transcript is dropped and every citation still names the original segment.
    ///
    /// `cache_key` (the encounter's id) lets the worker reuse what it evaluated of this visit's
    /// prompt while it was recorded.
    pub fn draft_note(
        &mut self,
        transcript: &Transcript,
        template: &Template,
        cache_key: Option<&str>,
    ) -> Result<(Draft, JobStats), DraftError> {
        if transcript.segments.is_empty() {
            return Err(DraftError::NoSpeech);
        }
        let (mut draft, stats, parts) = self.draft_part(&transcript.segments, template, cache_key)?;
        let repeats = drafting::drop_repeated_sentences(&mut draft);
        let filler = drafting::drop_filler(&mut draft, template);
        drafting::validate(&mut draft, transcript).map_err(|e| DraftError::Invalid(e.to_string()))?;
        let unstated = drafting::drop_unstated_readings(&mut draft, transcript);
        tracing::info!(
            sentences = draft.sentences().count(),
            flags = draft.flag_count(),
            parts,
            repeats,
            filler,
            unstated,
            "draft validated"
        );
        Ok((draft, stats))
    }

    fn draft_part(
        &mut self,
        segments: &[Segment],
        template: &Template,
        cache_key: Option<&str>,
    ) -> Result<(Draft, JobStats, usize), DraftError> {
        let part = Transcript {
            segments: segments.to_vec(),
        };
        let job = generate_job(&part, template, cache_key);
        let (text, stats) = match self.drafter.call(&Request::Generate(job), &[]) {
            Ok(Response::Generated { text, stats }) => (text, stats),
            Ok(Response::ContextFull {
                prompt_tokens,
                answer_tokens,
                context_tokens,
            }) => {
                if segments.len() < 2 {
                    return Err(DraftError::Engine(format!(
                        "one transcript segment ({prompt_tokens} prompt tokens + {answer_tokens} for the answer) \
                         does not fit the model's context of {context_tokens} tokens"
                    )));
                }
                tracing::info!(
                    prompt_tokens,
                    context_tokens,
                    segments = segments.len(),
                    "transcript too long: drafting in parts"
                );
                let (first, second) = segments.split_at(split_point(segments));
                let (a, stats_a, parts_a) = self.draft_part(first, template, cache_key)?;
                let (b, stats_b, parts_b) = self.draft_part(second, template, cache_key)?;
                return Ok((merge(a, b), add_stats(stats_a, stats_b), parts_a + parts_b));
            }
            Ok(Response::Failed { reason }) => return Err(DraftError::Engine(reason)),
            Ok(other) => return Err(DraftError::Engine(format!("unexpected answer {}", kind_of(&other)))),
            Err(e) => return Err(DraftError::Engine(e.to_string())),
        };
        tracing::info!(
            prompt_tokens = stats.prompt_tokens,
            cached_tokens = stats.cached_tokens,
            generated_tokens = stats.generated_tokens,
            prompt_tok_s = stats.prompt_tokens_per_s(),
            gen_tok_s = stats.generated_tokens_per_s(),
            peak_rss_kb = stats.peak_rss_kb,
            "generated"
        );
        let draft = match drafting::parse(&text, template) {
            Ok(draft) => draft,
            // Generation ran out of tokens before the template was complete (a small model
            // rambling up to every sentence limit): ask again for fewer sentences per section.
            Err(_)
                if stats.generated_tokens >= u64::from(drafting::max_tokens(template)) && !template.is_shortened() =>
            {
                tracing::warn!(
                    generated_tokens = stats.generated_tokens,
                    "token limit reached; drafting again with fewer sentences"
                );
                return self.draft_part(segments, &template.shortened(), cache_key);
            }
            Err(e) => {
                return Err(DraftError::OffTemplate(format!(
                    "the model's note did not follow the {} template: {e}",
                    template.name
                )));
            }
        };
        Ok((draft, stats, 1))
    }

    fn fail(&mut self, store: &mut Store, id: &str, stage: &str, reason: &str) -> Result<()> {
        // The reason is ours (worker and validator messages), never transcript text.
        tracing::warn!(encounter = id, stage, reason, "encounter failed");
        store.fail(&self.actor, id, reason).context("recording the failure")?;
        record(store, id, stage, false, &JobStats::default())
    }
}

/// Appends segments heard in a piece of audio that starts `offset_ms` into the recording:
/// numbered on from the transcript's last segment, their times made the recording's.
fn append_at(transcript: &mut Transcript, heard: Vec<Segment>, offset_ms: u64) {
    let first_id = transcript.segments.len() as u32 + 1;
    for (i, mut s) in heard.into_iter().enumerate() {
        s.id = first_id + i as u32;
        s.start_ms += offset_ms;
        s.end_ms += offset_ms;
        for w in &mut s.words {
            w.start_ms += offset_ms;
            w.end_ms += offset_ms;
        }
        transcript.segments.push(s);
    }
}

/// Gives each segment its speaker's role: by channel when the recording had a microphone per
/// speaker (`track`), otherwise by voice pitch; `Unknown` where the audio does not tell.
pub fn label_speakers(transcript: &mut Transcript, pcm: &[i16], track: Option<&[u8]>, roles: [Speaker; 2]) {
    let spans: Vec<(u64, u64)> = transcript.segments.iter().map(|s| (s.start_ms, s.end_ms)).collect();
    let voices = audio::speakers::voices(&spans, pcm, track);
    assign_roles(transcript, &voices, track.is_some(), roles);
}

/// Gives each segment the role of the voice found speaking it.
fn assign_roles(transcript: &mut Transcript, voices: &[Option<Voice>], by_channel: bool, roles: [Speaker; 2]) {
    for (segment, voice) in transcript.segments.iter_mut().zip(voices) {
        segment.speaker = match voice {
            Some(Voice::First) => roles[0],
            Some(Voice::Second) => roles[1],
            None => Speaker::Unknown,
        };
    }
    let count = |r: Speaker| transcript.segments.iter().filter(|s| s.speaker == r).count();
    tracing::info!(
        method = if by_channel { "channels" } else { "pitch" },
        clinician = count(Speaker::Clinician),
        patient = count(Speaker::Patient),
        unknown = count(Speaker::Unknown),
        "speaker roles"
    );
}

/// Where to halve a transcript: the segment boundary nearest half of its text.
fn split_point(segments: &[Segment]) -> usize {
    let total: usize = segments.iter().map(|s| s.text.len()).sum();
    let mut acc = 0;
    for (i, s) in segments.iter().enumerate() {
        acc += s.text.len();
        if acc * 2 >= total {
            return (i + 1).clamp(1, segments.len() - 1);
        }
    }
    segments.len() / 2
}

/// Section by section, the first part's sentences then the second's. (Repeats across parts are
/// dropped with all other repeats by `drop_repeated_sentences` in `draft_note`.)
fn merge(mut a: Draft, b: Draft) -> Draft {
    for (section, more) in a.sections.iter_mut().zip(b.sections) {
        section.sentences.extend(more.sentences);
    }
    a
}

fn add_stats(a: JobStats, b: JobStats) -> JobStats {
    JobStats {
        wall_ms: a.wall_ms + b.wall_ms,
        audio_ms: a.audio_ms + b.audio_ms,
        prompt_tokens: a.prompt_tokens + b.prompt_tokens,
        prompt_ms: a.prompt_ms + b.prompt_ms,
        cached_tokens: a.cached_tokens + b.cached_tokens,
        generated_tokens: a.generated_tokens + b.generated_tokens,
        generate_ms: a.generate_ms + b.generate_ms,
        peak_rss_kb: a.peak_rss_kb.max(b.peak_rss_kb),
    }
}

/// Why no draft was made, in words for the person who sees the failed encounter.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("no speech was recognized in the recording, so there is nothing to draft")]
    NoSpeech,
    #[error("{0}")]
    OffTemplate(String),
    #[error("the draft failed validation: {0}")]
    Invalid(String),
    #[error("drafting failed: {0}")]
    Engine(String),
}

/// The one place a drafting job is assembled: from this encounter's transcript and template only.
/// `cache_key` is the encounter's id when the worker may keep (and reuse) this prompt's cache.
fn generate_job(transcript: &Transcript, template: &Template, cache_key: Option<&str>) -> GenerateJob {
    let prompt = Prompt::for_encounter(transcript, template);
    GenerateJob {
        system: prompt.system,
        user: prompt.user,
        grammar: drafting::grammar(template, transcript),
        max_tokens: drafting::max_tokens(template),
        cache_key: cache_key.map(str::to_string),
    }
}

fn record(store: &mut Store, id: &str, kind: &str, ok: bool, stats: &JobStats) -> Result<()> {
    store.record_job(id, kind, ok, &serde_json::to_value(stats).expect("stats serialize"))?;
    Ok(())
}

fn kind_of(r: &Response) -> &'static str {
    match r {
        Response::Loaded { .. } => "loaded",
        Response::Transcript { .. } => "transcript",
        Response::Generated { .. } => "generated",
        Response::Prefilled { .. } => "prefilled",
        Response::Failed { .. } => "failed",
        Response::ContextFull { .. } => "context full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Segment, Speaker};

    fn transcript(texts: &[&str]) -> Transcript {
        Transcript {
            segments: texts
                .iter()
                .enumerate()
                .map(|(i, t)| Segment {
                    id: i as u32 + 1,
                    start_ms: 0,
                    end_ms: 1,
                    speaker: Speaker::Patient,
                    text: t.to_string(),
                    confidence: 1.0,
                    words: vec![],
                })
                .collect(),
        }
    }

    /// Minimum necessary: a drafting job is the template's text plus this transcript's lines.
    #[test]
    fn a_drafting_job_carries_the_template_and_one_transcript_and_nothing_else() {
        let soap = Template::builtin("soap").unwrap();
        let visit = transcript(&["my knee hurts", "since tuesday"]);
        let job = generate_job(&visit, &soap, None);
        let bare = generate_job(&Transcript::default(), &soap, None);
        assert_eq!(job.system, bare.system, "the system prompt holds no encounter data");
        let added: Vec<&str> = job
            .user
            .lines()
            .filter(|l| !bare.user.lines().any(|b| b == *l))
            .collect();
        assert_eq!(added, ["S1 patient: my knee hurts", "S2 patient: since tuesday"]);
        assert!(job.grammar.contains("seg ::= \"S1\" | \"S2\"\n"), "{}", job.grammar);
    }
}
