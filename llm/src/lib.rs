//! The local LLM (llama.cpp via llama-cpp-2), behind the [`Generator`] trait.
//!
//! Linked only into `scribe-draft-worker`: llama-cpp-2 vendors its own ggml, which must never share
//! a binary with whisper.cpp's (see ARCHITECTURE.md). The worker knows nothing about notes: it
//! turns a prompt and a grammar into text. Prompts and grammars are built by the `drafting` crate.

mod llama;

pub use llama::{EngineSpeed, Llama};

use protocol::job::{GenerateJob, JobStats};

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Model(#[from] protocol::worker::ModelCheckError),
    #[error(
        "the prompt is {prompt} tokens and the answer may need {answer} more, but the model's context holds {context}"
    )]
    ContextFull {
        prompt: usize,
        answer: usize,
        context: usize,
    },
    #[error("the grammar was rejected by llama.cpp: {0}")]
    Grammar(String),
    #[error("llama.cpp failed: {0}")]
    Engine(String),
}

pub struct Generation {
    pub text: String,
    pub stats: JobStats,
}

/// Generates text from chat messages under a GBNF grammar.
pub trait Generator {
    fn generate(&mut self, job: &GenerateJob) -> Result<Generation, LlmError>;
}
