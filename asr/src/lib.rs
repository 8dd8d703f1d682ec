//! Speech recognition with whisper.cpp (via whisper-rs), behind the [`Transcriber`] trait.
//!
//! This crate is linked only into `scribe-asr-worker`: whisper-rs vendors its own ggml, which must
//! never share a binary with llama.cpp's (see ARCHITECTURE.md).

pub mod hygiene;
mod whisper;
mod words;

pub use whisper::Whisper;

use protocol::Segment;

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error(transparent)]
    Model(#[from] protocol::worker::ModelCheckError),
    #[error("whisper failed: {0}")]
    Engine(String),
}

/// Turns 16 kHz mono audio into timed segments with per-word confidence.
pub trait Transcriber {
    fn transcribe(&mut self, pcm: &[f32]) -> Result<Vec<Segment>, AsrError>;
}
