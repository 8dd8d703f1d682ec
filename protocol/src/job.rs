//! Messages between the daemon and its engine workers.
//!
//! A worker serves one engine. The daemon sends `Load` once, then one job at a time; a job carries
//! one encounter's audio or prompt and nothing else. The drafting worker may keep the last prompt's
//! KV cache between jobs, but only under that job's `cache_key` (the encounter's id): a job with
//! any other key, or none, starts from an empty cache, so one visit's words never shape another's.

use serde::{Deserialize, Serialize};

use crate::transcript::Segment;

/// A model file and the SHA-256 it must have; workers re-verify it before loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Load {
        model: ModelRef,
        threads: u32,
        /// ASR: force this language (e.g. "en"); None lets whisper detect it.
        #[serde(default)]
        language: Option<String>,
        /// Drafting: the context window to allocate, in tokens (0 = the model's training context).
        #[serde(default)]
        context_tokens: u32,
        /// ASR: text given to whisper as if it preceded the audio (the clinic's vocabulary), which
        /// biases recognition towards its spellings. Never encounter content.
        #[serde(default)]
        initial_prompt: Option<String>,
    },
    /// Transcribe the frame's payload: 16 kHz mono PCM, signed 16-bit little-endian.
    Transcribe,
    /// Generate under a grammar from chat messages.
    Generate(GenerateJob),
    /// Evaluate the prompt into the KV cache kept under the job's `cache_key`, generating
    /// nothing: sent while a visit is still being recorded, so that when it ends only the prompt's
    /// new tail is left to evaluate. Answered with `Prefilled` (or `ContextFull`).
    Prefill(GenerateJob),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateJob {
    pub system: String,
    pub user: String,
    /// GBNF grammar (root rule `root`) the output must match.
    pub grammar: String,
    pub max_tokens: u32,
    /// The encounter this prompt belongs to (its opaque id, never text). When set, the worker
    /// keeps the prompt's KV cache afterwards and reuses the part of it that the next job with
    /// the same key shares token for token; when unset, nothing outlives the job.
    #[serde(default)]
    pub cache_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Loaded {
        engine: String,
        load_ms: u64,
    },
    Transcript {
        segments: Vec<Segment>,
        stats: JobStats,
    },
    Generated {
        text: String,
        stats: JobStats,
    },
    /// The prompt of a `Prefill` is in the KV cache.
    Prefilled {
        stats: JobStats,
    },
    /// The prompt plus the longest possible answer do not fit the model's context: the daemon
    /// drafts from parts of the transcript instead. Nothing was generated.
    ContextFull {
        prompt_tokens: u64,
        answer_tokens: u64,
        context_tokens: u64,
    },
    /// The job failed inside the worker; the worker is still usable.
    Failed {
        reason: String,
    },
}

/// What a job cost. Counts and durations only: never text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStats {
    pub wall_ms: u64,
    /// ASR: audio length processed.
    #[serde(default)]
    pub audio_ms: u64,
    /// Drafting: prompt tokens and time to evaluate them.
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub prompt_ms: u64,
    /// Drafting: prompt tokens found already evaluated in the KV cache (a prefill while the
    /// visit was recorded), included in `prompt_tokens` but not in `prompt_ms`.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Drafting: generated tokens and time to generate them.
    #[serde(default)]
    pub generated_tokens: u64,
    #[serde(default)]
    pub generate_ms: u64,
    /// The worker process's peak resident set size so far.
    #[serde(default)]
    pub peak_rss_kb: u64,
}

impl JobStats {
    pub fn prompt_tokens_per_s(&self) -> f64 {
        per_second(
            self.prompt_tokens - self.cached_tokens.min(self.prompt_tokens),
            self.prompt_ms,
        )
    }

    pub fn generated_tokens_per_s(&self) -> f64 {
        per_second(self.generated_tokens, self.generate_ms)
    }
}

fn per_second(count: u64, ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        count as f64 * 1000.0 / ms as f64
    }
}
