use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use protocol::job::{GenerateJob, JobStats, ModelRef};

use crate::{Generation, Generator, LlmError};

const BATCH: usize = 512;

pub struct Llama {
    // Declared first so it is dropped before the backend it was made with.
    session: Option<Session>,
    backend: LlamaBackend,
    model: &'static LlamaModel,
    context_tokens: u32,
    threads: u32,
}

/// A context and what its KV cache holds: the tokens of one encounter's prompt (and of the answer
/// generated after it), kept between jobs only for the same `cache_key`.
struct Session {
    ctx: LlamaContext<'static>,
    key: Option<String>,
    n_ctx: usize,
    tokens: Vec<LlamaToken>,
}

/// What evaluating a prompt into the session cost.
struct Prefill {
    prompt_tokens: usize,
    cached_tokens: usize,
    prompt_time: std::time::Duration,
    /// Where in the last decoded batch the last prompt token's logits are.
    last_logits: i32,
}

impl Llama {
    /// Verifies the model file's SHA-256, then loads it.
    pub fn load(model_ref: &ModelRef, context_tokens: u32, threads: u32) -> Result<Llama, LlmError> {
        model_ref.verify()?;
        #[cfg(feature = "cuda")]
        load_backend_modules();
        let mut backend = LlamaBackend::init().map_err(|e| LlmError::Engine(e.to_string()))?;
        // llama.cpp's logs can echo prompt pieces at debug level; silence them entirely.
        backend.void_logs();
        let model = LlamaModel::load_from_file(&backend, &model_ref.path, &LlamaModelParams::default())
            .map_err(|e| LlmError::Engine(format!("cannot load {}: {e}", model_ref.path)))?;
        // A worker serves one model for its whole life; leaking it gives the kept context the
        // 'static borrow it needs, instead of a self-referential struct.
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let train = model.n_ctx_train();
        let context_tokens = if context_tokens == 0 {
            train
        } else {
            context_tokens.min(train)
        };
        Ok(Llama {
            session: None,
            backend,
            model,
            context_tokens,
            threads: threads.max(1),
        })
    }

    /// Where the model runs, for the daemon's log and the benchmarks: "llama.cpp on CPU", or the
    /// GPU a `cuda` build found ("llama.cpp on CUDA0 (NVIDIA H200)"). Every layer goes to the
    /// GPU when there is one (llama.cpp's default); the rest stays on the CPU.
    pub fn description(&self) -> String {
        let gpus: Vec<String> = llama_cpp_2::list_llama_ggml_backend_devices()
            .into_iter()
            .filter(|d| d.device_type != llama_cpp_2::LlamaBackendDeviceType::Cpu)
            .map(|d| format!("{} ({})", d.name, d.description))
            .collect();
        if gpus.is_empty() {
            "llama.cpp on CPU".into()
        } else {
            format!("llama.cpp on {}", gpus.join(", "))
        }
    }

    fn prompt_text(&self, job: &GenerateJob) -> Result<String, LlmError> {
        let messages = [("system", &job.system), ("user", &job.user)]
            .into_iter()
            .map(|(role, content)| LlamaChatMessage::new(role.into(), content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LlmError::Engine(e.to_string()))?;
        match self.model.chat_template(None) {
            Ok(template) => self
                .model
                .apply_chat_template(&template, &messages, true)
                .map_err(|e| LlmError::Engine(e.to_string())),
            // A GGUF without a chat template: ChatML is what most instruct models understand.
            Err(_) => Ok(format!(
                "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
                job.system, job.user
            )),
        }
    }

    /// Brings the job's prompt into the KV cache: reuses the cached tokens it shares with the
    /// session's (same `cache_key` only), evaluates the rest, and leaves the logits of the last
    /// prompt token ready. Any other session is dropped first, cache and all.
    fn evaluate_prompt(&mut self, job: &GenerateJob) -> Result<Prefill, LlmError> {
        let prompt = self.prompt_text(job)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        self.evaluate_tokens(&tokens, job.cache_key.as_ref(), job.max_tokens as usize)
    }

    fn evaluate_tokens(
        &mut self,
        tokens: &[LlamaToken],
        cache_key: Option<&String>,
        answer: usize,
    ) -> Result<Prefill, LlmError> {
        let engine = |e: &dyn std::fmt::Display| LlmError::Engine(e.to_string());
        let needed = tokens.len() + answer + 8;
        if needed > self.context_tokens as usize {
            self.session = None;
            return Err(LlmError::ContextFull {
                prompt: tokens.len(),
                answer,
                context: self.context_tokens as usize,
            });
        }
        let reusable =
            matches!(&self.session, Some(s) if s.key.is_some() && s.key.as_ref() == cache_key && s.n_ctx >= needed);
        if !reusable {
            self.session = None;
            // A kept session gets the whole window, so the prompt can grow as the visit goes on;
            // a one-off job gets just what it needs.
            let n_ctx = if cache_key.is_some() {
                self.context_tokens as usize
            } else {
                needed
            };
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(n_ctx as u32))
                .with_n_batch(BATCH as u32)
                .with_n_threads(self.threads as i32)
                .with_n_threads_batch(self.threads as i32);
            let ctx = self.model.new_context(&self.backend, params).map_err(|e| engine(&e))?;
            self.session = Some(Session {
                ctx,
                key: cache_key.cloned(),
                n_ctx,
                tokens: Vec::new(),
            });
        }
        let session = self.session.as_mut().expect("made above");

        // The last prompt token is always evaluated again: its logits start the answer.
        let mut cached = session
            .tokens
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        if !session
            .ctx
            .clear_kv_cache_seq(Some(0), Some(cached as u32), None)
            .map_err(|e| engine(&e))?
        {
            // The model's cache cannot drop a tail (recurrent models): start over.
            session.ctx.clear_kv_cache();
            cached = 0;
        }
        session.tokens.truncate(cached);

        let started = Instant::now();
        let mut batch = LlamaBatch::new(BATCH, 1);
        let mut last_logits = 0;
        for (chunk_index, chunk) in tokens[cached..].chunks(BATCH).enumerate() {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = cached + chunk_index * BATCH + i;
                batch
                    .add(t, pos as i32, &[0], pos == tokens.len() - 1)
                    .map_err(|e| engine(&e))?;
            }
            if let Err(e) = session.ctx.decode(&mut batch) {
                // What the cache holds is unknown now: it must not be reused.
                self.session = None;
                return Err(engine(&e));
            }
            last_logits = chunk.len() as i32 - 1;
        }
        // On a GPU, decode returns once the work is queued: wait for it, so the prompt's time
        // is the time it took (on the CPU this returns at once).
        session.ctx.synchronize();
        session.tokens.extend_from_slice(&tokens[cached..]);
        Ok(Prefill {
            prompt_tokens: tokens.len(),
            cached_tokens: cached,
            prompt_time: started.elapsed(),
            last_logits,
        })
    }

    /// Evaluates a prompt into the cache kept under its `cache_key`, generating nothing.
    pub fn prefill(&mut self, job: &GenerateJob) -> Result<JobStats, LlmError> {
        let started = Instant::now();
        let prefill = self.evaluate_prompt(job)?;
        if job.cache_key.is_none() {
            self.session = None;
        }
        Ok(JobStats {
            wall_ms: started.elapsed().as_millis() as u64,
            prompt_tokens: prefill.prompt_tokens as u64,
            cached_tokens: prefill.cached_tokens as u64,
            prompt_ms: prefill.prompt_time.as_millis() as u64,
            peak_rss_kb: protocol::worker::peak_rss_kb(),
            ..JobStats::default()
        })
    }
}

/// One run of [`Llama::bench`]: the work llama.cpp's own `llama-bench` times, done through this
/// engine's context set-up (batch size, threads, cache handling, offload).
#[derive(Debug, Clone, Copy)]
pub struct EngineSpeed {
    pub prompt_tokens: usize,
    pub prompt_ms: f64,
    pub generated_tokens: usize,
    pub generate_ms: f64,
}

impl Llama {
    /// Evaluates `prompt_tokens` pseudo-random tokens as one prompt (as `llama-bench -p` does),
    /// then generates `generate_tokens` more one at a time after it, each the greedy choice from
    /// the previous logits (as `-n` does, but at the prompt's depth, where a note is written). No
    /// grammar and no stop token: the drafting loop's own cost is in the note-ready benchmark.
    pub fn bench(&mut self, prompt_tokens: usize, generate_tokens: usize, seed: u64) -> Result<EngineSpeed, LlmError> {
        let engine = |e: &dyn std::fmt::Display| LlmError::Engine(e.to_string());
        let n_vocab = self.model.n_vocab().max(1) as u64;
        let mut state = seed | 1;
        let tokens: Vec<LlamaToken> = (0..prompt_tokens.max(1))
            .map(|_| {
                // xorshift64: deterministic, and no dependency for a benchmark's filler.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                LlamaToken::new((state % n_vocab) as i32)
            })
            .collect();
        self.session = None;
        let prefill = self.evaluate_tokens(&tokens, None, generate_tokens)?;
        let session = self.session.as_mut().expect("evaluate_tokens keeps a session");
        let started = Instant::now();
        let mut batch = LlamaBatch::new(1, 1);
        let mut last_logits = prefill.last_logits;
        for pos in tokens.len()..tokens.len() + generate_tokens {
            let logits = session.ctx.get_logits_ith(last_logits);
            let token = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| LlamaToken::new(i as i32))
                .expect("the vocabulary is not empty");
            batch.clear();
            batch.add(token, pos as i32, &[0], true).map_err(|e| engine(&e))?;
            session.ctx.decode(&mut batch).map_err(|e| engine(&e))?;
            last_logits = 0;
        }
        let generate_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.session = None;
        Ok(EngineSpeed {
            prompt_tokens: prefill.prompt_tokens,
            prompt_ms: prefill.prompt_time.as_secs_f64() * 1000.0,
            generated_tokens: generate_tokens,
            generate_ms,
        })
    }
}

impl Generator for Llama {
    fn generate(&mut self, job: &GenerateJob) -> Result<Generation, LlmError> {
        let engine = |e: &dyn std::fmt::Display| LlmError::Engine(e.to_string());
        let started = Instant::now();
        let mut grammar =
            LlamaSampler::grammar(self.model, &job.grammar, "root").map_err(|e| LlmError::Grammar(e.to_string()))?;
        let prefill = self.evaluate_prompt(job)?;
        let vocab = self.model.vocab();
        let answer = job.max_tokens as usize;
        let session = self.session.as_mut().expect("evaluate_prompt keeps a session");

        let generate_started = Instant::now();
        let mut out = Vec::new();
        let mut out_tokens: Vec<LlamaToken> = Vec::new();
        let mut pos = prefill.prompt_tokens;
        let mut generated = 0u64;
        let mut last_logits = prefill.last_logits;
        let mut batch = LlamaBatch::new(BATCH, 1);
        let result = loop {
            if generated as usize >= answer {
                break Ok(());
            }
            let mut logits = session.ctx.get_logits_ith(last_logits).to_vec();
            penalize_repeats(&mut logits, &out_tokens);
            let token = pick_token(&logits, &mut grammar);
            grammar.accept(token);
            generated += 1;
            if vocab.is_eog(token) {
                break Ok(());
            }
            out.extend(vocab.token_to_piece(token, false, None));
            out_tokens.push(token);
            batch.clear();
            if let Err(e) = batch.add(token, pos as i32, &[0], true) {
                break Err(engine(&e));
            }
            if let Err(e) = session.ctx.decode(&mut batch) {
                break Err(engine(&e));
            }
            session.tokens.push(token);
            pos += 1;
            last_logits = 0;
        };
        if result.is_err() || job.cache_key.is_none() {
            self.session = None;
        }
        result?;
        let generate_ms = generate_started.elapsed().as_millis() as u64;
        Ok(Generation {
            text: String::from_utf8_lossy(&out).into_owned(),
            stats: JobStats {
                wall_ms: started.elapsed().as_millis() as u64,
                prompt_tokens: prefill.prompt_tokens as u64,
                cached_tokens: prefill.cached_tokens as u64,
                prompt_ms: prefill.prompt_time.as_millis() as u64,
                generated_tokens: generated,
                generate_ms,
                peak_rss_kb: protocol::worker::peak_rss_kb(),
                ..JobStats::default()
            },
        })
    }
}

/// Small models fall into loops ("I will take 10 pills every day. I will take…"). A classic
/// repetition penalty on the recently *generated* tokens breaks them; the prompt is exempt, since
/// copying the transcript's words is exactly what a grounded note should do.
fn penalize_repeats(logits: &mut [f32], generated: &[LlamaToken]) {
    const WINDOW: usize = 64;
    const PENALTY: f32 = 1.1;
    let recent = &generated[generated.len().saturating_sub(WINDOW)..];
    let mut seen = std::collections::HashSet::with_capacity(recent.len());
    for t in recent {
        if seen.insert(t.0)
            && let Some(l) = logits.get_mut(t.0 as usize)
        {
            *l = if *l > 0.0 { *l / PENALTY } else { *l * PENALTY };
        }
    }
}

/// Greedy choice under the grammar. Checking the grammar against the whole vocabulary every step
/// is costly, so the unconstrained best token is tried first; only if the grammar rejects it is
/// the grammar applied to every candidate.
fn pick_token(logits: &[f32], grammar: &mut LlamaSampler) -> LlamaToken {
    let best = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, &l)| (LlamaToken::new(i as i32), l))
        .expect("the vocabulary is not empty");
    let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(best.0, best.1, 0.0)], false);
    grammar.apply(&mut single);
    if single.data[0].logit().is_finite() {
        return best.0;
    }
    let mut candidates = LlamaTokenDataArray::from_iter(
        logits
            .iter()
            .enumerate()
            .map(|(i, &l)| LlamaTokenData::new(LlamaToken::new(i as i32), l, 0.0)),
        false,
    );
    grammar.apply(&mut candidates);
    candidates.sample_token_greedy()
}

/// A `cuda` build has no backend linked in: ggml loads them as modules, from the worker's own
/// folder where they are installed (the best CPU variant for this processor, and CUDA where the
/// GPU box built it), else from the folder cargo built them in (a development checkout).
#[cfg(feature = "cuda")]
fn load_backend_modules() {
    use std::sync::Once;
    static LOADED: Once = Once::new();
    LOADED.call_once(|| {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
        {
            llama_cpp_2::llama_backend::load_backends_from_path(&dir);
        }
        if llama_cpp_2::list_llama_ggml_backend_devices().is_empty() {
            llama_cpp_2::llama_backend::load_backends();
        }
    });
}
