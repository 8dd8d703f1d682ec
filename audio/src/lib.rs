//! Recordings in, 16 kHz mono out.
//!
//! Whatever the source (a file today; the room microphone and the browser later), the engines see
//! one format: 16 kHz mono. This crate decodes, validates and converts; it never stores anything,
//! so a file that fails here leaves no trace.

pub mod capture;
mod decode;
mod resample;
pub mod speakers;
pub mod vad;
mod wav;

pub use decode::{
    BUDGET_SAMPLES_PER_SECOND, Container, Limits, MAX_CHANNELS, MAX_RATE, Recording, SUPPORTED, decode, decode_file,
    decode_owned, decode_source,
};
pub use resample::{StreamResampler, resample};
/// What [`decode_source`] reads: `Read + Seek` with a known length.
pub use symphonia::core::io::MediaSource;
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
    #[error("not a recording: {0}")]
    NotAudio(String),
    #[error("the recording is damaged or cut off ({0})")]
    Corrupt(String),
    #[error(
        "the {container} recording is incomplete: {decoded_ms} ms decoded{}; was the upload or copy cut off?",
        declared_ms.map(|d| format!(" of the {d} ms it declares")).unwrap_or_default()
    )]
    Incomplete {
        container: &'static str,
        decoded_ms: u64,
        declared_ms: Option<u64>,
    },
    #[error("the file is {bytes} bytes; the limit is {limit} bytes (capture.max_upload_mb)")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("the recording is {seconds} s long; the limit is {limit} s (capture.max_upload_minutes)")]
    TooLong { seconds: u64, limit: u64 },
    #[error(
        "the recording decodes to more than {limit_mb} MB of audio, what {limit_seconds} s of 48 kHz stereo make (capture.max_upload_minutes); record at a lower sample rate or with fewer channels"
    )]
    TooMuchAudio { limit_mb: u64, limit_seconds: u64 },
    #[error(
        "the recording declares {channels} channels at {rate} Hz; Scribe takes at most {} channels and {} Hz",
        decode::MAX_CHANNELS,
        decode::MAX_RATE
    )]
    BeyondCaps { rate: u32, channels: usize },
    #[error("the WAV file is truncated: its header promises {promised} bytes of audio but {present} are present")]
    Truncated { promised: u64, present: u64 },
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    #[error("cannot read the recording: {0}")]
    Io(#[from] std::io::Error),
}
