//! Recordings in, 16 kHz mono out.
//!
//! Whatever the source (a file today; the room microphone and the browser later), the engines see
//! one format: 16 kHz mono. This crate decodes, validates and converts; it never stores anything,
//! so a file that fails here leaves no trace.

pub mod capture;
mod resample;
mod wav;

pub use resample::{StreamResampler, resample};
pub use wav::{decode_wav, decode_wav_file};

/// The sample rate every engine consumes.
pub const TARGET_RATE: u32 = 16_000;

/// Decoded audio: 16 kHz mono, 16-bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm16k {
    pub samples: Vec<i16>,
}

impl Pcm16k {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / TARGET_RATE as u64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("the file is empty")]
    Empty,
    #[error("the recording contains no audio samples")]
    NoSamples,
    #[error("not a WAV recording ({0}); supported: RIFF/WAVE PCM or float")]
    NotAudio(String),
    #[error("the WAV file is truncated: its header promises {promised} bytes of audio but {present} are present")]
    Truncated { promised: u64, present: u64 },
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    #[error("cannot read the recording: {0}")]
    Io(#[from] std::io::Error),
}
