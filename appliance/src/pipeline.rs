//! The pipeline: an encounter's audio becomes a transcript, the transcript becomes a draft.
//!
//! Each stage reads its input from the store, sends exactly that to its worker, and commits the
//! result together with the state change. A stage that fails marks the encounter `failed` with a
//! reason; a process killed mid-stage leaves the encounter in its stage's state, and the next
//! pipeline run picks it up again (stages are idempotent).

use anyhow::{Context, Result, bail};
use drafting::{Prompt, Template};
use firmware::{Manifest, ModelSpec};
use protocol::Transcript;
use protocol::frame::pcm_to_bytes;
use protocol::job::{GenerateJob, JobStats, Request, Response};
use store::{Actor, State, Store};

use crate::config::{Config, Home, threads};
use crate::supervisor::{Worker, WorkerKind, WorkerSpec, model_ref, worker_exe};

pub struct Pipeline {
    asr: Worker,
    drafter: Worker,
    llm_name: String,
    templates_dir: std::path::PathBuf,
    actor: Actor,
}

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
            exe: worker_exe(WorkerKind::Asr),
            load: Request::Load {
                model: model_ref(firmware::installed_path(&dir, models.asr), &models.asr.sha256),
                threads: threads(config.asr.threads),
                language: models.asr.language.clone(),
                context_tokens: 0,
            },
        };
        let drafter = WorkerSpec {
            kind: WorkerKind::Drafting,
            exe: worker_exe(WorkerKind::Drafting),
            load: Request::Load {
                model: model_ref(firmware::installed_path(&dir, models.llm), &models.llm.sha256),
                threads: threads(config.drafting.threads),
                language: None,
                context_tokens: config.drafting.context_tokens,
            },
        };
        Ok(Pipeline {
            asr: Worker::new(asr),
            drafter: Worker::new(drafter),
            llm_name: models.llm.name.clone(),
            templates_dir: config.templates_dir(home),
            actor: Actor::system("pipeline"),
        })
    }

    /// Runs one stage of the oldest encounter waiting for any. Returns false when idle.
    pub fn step(&mut self, store: &mut Store) -> Result<bool> {
        if let Some(id) = store.encounters_in(State::Transcribing)?.into_iter().next() {
            self.transcribe(store, &id)?;
            return Ok(true);
        }
        if let Some(id) = store.encounters_in(State::Drafting)?.into_iter().next() {
            self.draft(store, &id)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Takes one encounter through every remaining stage.
    pub fn process(&mut self, store: &mut Store, id: &str) -> Result<State> {
        loop {
            match store.encounter(id)?.state {
                State::Transcribing => self.transcribe(store, id)?,
                State::Drafting => self.draft(store, id)?,
                settled => return Ok(settled),
            }
        }
    }

    fn transcribe(&mut self, store: &mut Store, id: &str) -> Result<()> {
        let span = tracing::info_span!("transcribe", encounter = id);
        let _enter = span.enter();
        let pcm = store.audio(&self.actor, id, "transcription")?;
        let answer = self.asr.call(&Request::Transcribe, &pcm_to_bytes(&pcm));
        match answer {
            Ok(Response::Transcript { segments, stats }) => {
                let transcript = Transcript { segments };
                tracing::info!(
                    segments = transcript.segments.len(),
                    audio_ms = stats.audio_ms,
                    wall_ms = stats.wall_ms,
                    peak_rss_kb = stats.peak_rss_kb,
                    "transcribed"
                );
                store.save_transcript(&self.actor, id, &transcript)?;
                record(store, id, "asr", true, &stats)
            }
            Ok(Response::Failed { reason }) => self.fail(store, id, "asr", &format!("transcription failed: {reason}")),
            Ok(other) => self.fail(
                store,
                id,
                "asr",
                &format!("transcription failed: unexpected answer {}", kind_of(&other)),
            ),
            Err(e) => self.fail(store, id, "asr", &format!("transcription failed: {e}")),
        }
    }

    fn draft(&mut self, store: &mut Store, id: &str) -> Result<()> {
        let span = tracing::info_span!("draft", encounter = id);
        let _enter = span.enter();
        let encounter = store.encounter(id)?;
        let transcript = store.transcript(&self.actor, id, "drafting")?;
        if transcript.segments.is_empty() {
            return self.fail(
                store,
                id,
                "draft",
                "no speech was recognized in the recording, so there is nothing to draft",
            );
        }
        let template = match crate::templates::resolve(&encounter.template, &self.templates_dir) {
            Ok(t) => t,
            Err(e) => return self.fail(store, id, "draft", &format!("template problem: {e:#}")),
        };
        let job = generate_job(&transcript, &template);
        match self.drafter.call(&Request::Generate(job), &[]) {
            Ok(Response::Generated { text, stats }) => {
                tracing::info!(
                    prompt_tokens = stats.prompt_tokens,
                    generated_tokens = stats.generated_tokens,
                    prompt_tok_s = stats.prompt_tokens_per_s(),
                    gen_tok_s = stats.generated_tokens_per_s(),
                    peak_rss_kb = stats.peak_rss_kb,
                    "generated"
                );
                let mut draft = match drafting::parse(&text, &template) {
                    Ok(d) => d,
                    Err(e) => {
                        return self.fail(
                            store,
                            id,
                            "draft",
                            &format!("the model's note did not follow the {} template: {e}", template.name),
                        );
                    }
                };
                if let Err(e) = drafting::validate(&mut draft, &transcript) {
                    return self.fail(store, id, "draft", &format!("the draft failed validation: {e}"));
                }
                tracing::info!(
                    sentences = draft.sentences().count(),
                    flags = draft.flag_count(),
                    "draft validated"
                );
                store.save_draft(&self.actor, id, &draft, &self.llm_name)?;
                record(store, id, "draft", true, &stats)
            }
            Ok(Response::Failed { reason }) => self.fail(store, id, "draft", &format!("drafting failed: {reason}")),
            Ok(other) => self.fail(
                store,
                id,
                "draft",
                &format!("drafting failed: unexpected answer {}", kind_of(&other)),
            ),
            Err(e) => self.fail(store, id, "draft", &format!("drafting failed: {e}")),
        }
    }

    fn fail(&mut self, store: &mut Store, id: &str, stage: &str, reason: &str) -> Result<()> {
        // The reason is ours (worker and validator messages), never transcript text.
        tracing::warn!(encounter = id, stage, reason, "encounter failed");
        store.fail(&self.actor, id, reason).context("recording the failure")?;
        record(store, id, stage, false, &JobStats::default())
    }
}

/// The one place a drafting job is assembled: from this encounter's transcript and template only.
fn generate_job(transcript: &Transcript, template: &Template) -> GenerateJob {
    let prompt = Prompt::for_encounter(transcript, template);
    GenerateJob {
        system: prompt.system,
        user: prompt.user,
        grammar: drafting::grammar(template, transcript),
        max_tokens: drafting::max_tokens(template),
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
        Response::Failed { .. } => "failed",
    }
}
