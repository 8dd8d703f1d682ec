//! Any supported recording (WAV, FLAC, MP3, M4A/AAC, OGG Vorbis/Opus, WebM/Opus) in, 16 kHz mono
//! out — or a clear reason why not, before anything is stored.
//!
//! WAV keeps its own decoder (hound) because it can say exactly how many bytes a cut-off file is
//! missing; everything else goes through symphonia, with libopus for Opus, which symphonia lacks.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::LazyLock;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::speakers::ChannelTracker;
use crate::{AudioError, Pcm16k, StreamResampler, TARGET_RATE};

/// What an upload may be, from the config: a bigger or longer file is refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_seconds: u64,
}

impl Default for Limits {
    /// Two hours of visit in any format a phone or recorder makes.
    fn default() -> Limits {
        Limits {
            max_bytes: 512 * 1024 * 1024,
            max_seconds: 2 * 60 * 60,
        }
    }
}

/// The highest sample rate a recording may declare (what studio recorders make); a file claiming
/// more is refused before decoding.
pub const MAX_RATE: u32 = 192_000;
/// The most channels a recording may have (a microphone array).
pub const MAX_CHANNELS: usize = 8;
/// Decoded samples (all channels, at the file's own rate) a recording may yield per second of
/// `max_seconds`: what 48 kHz stereo has. Memory holds the visit at 16 kHz mono whatever the file
/// is, but decoding costs time per sample, and a small file can claim many: one that decodes to
/// more than this budget is refused once it passes it, however short it says it is.
pub const BUDGET_SAMPLES_PER_SECOND: u64 = 48_000 * 2;

/// The container, recognised by its first bytes rather than by a file name a browser made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    Flac,
    Mp3,
    Mp4,
    Ogg,
    WebM,
    Adts,
}

impl Container {
    pub fn sniff(bytes: &[u8]) -> Option<Container> {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        if starts(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
            Some(Container::Wav)
        } else if starts(b"fLaC") {
            Some(Container::Flac)
        } else if starts(b"OggS") {
            Some(Container::Ogg)
        } else if bytes.get(4..8) == Some(b"ftyp") {
            Some(Container::Mp4)
        } else if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
            Some(Container::WebM)
        } else if starts(b"ID3") {
            Some(Container::Mp3)
        } else {
            match mpeg_layer(bytes)? {
                0 => Some(Container::Adts),
                _ => Some(Container::Mp3),
            }
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Container::Wav => "wav",
            Container::Flac => "flac",
            Container::Mp3 => "mp3",
            Container::Mp4 => "m4a",
            Container::Ogg => "ogg",
            Container::WebM => "webm",
            Container::Adts => "aac",
        }
    }
}

/// The layer bits of an MPEG audio frame header (after 11 sync bits): 0 is AAC's ADTS, 1–3 are
/// MPEG-1/2 layers III–I.
fn mpeg_layer(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [0xff, b, ..] if b & 0xe0 == 0xe0 => Some((b >> 1) & 0b11),
        _ => None,
    }
}

pub const SUPPORTED: &str = "WAV, FLAC, MP3, M4A/AAC, OGG (Vorbis or Opus) or WebM/Opus";

pub fn decode_file(path: &Path, limits: &Limits) -> Result<Recording, AudioError> {
    let size = std::fs::metadata(path)?.len();
    if size > limits.max_bytes {
        return Err(AudioError::TooLarge {
            bytes: size,
            limit: limits.max_bytes,
        });
    }
    decode_owned(std::fs::read(path)?, limits)
}

/// A decoded upload: what the engines hear, and for a recording with a microphone per speaker,
/// which channel was louder when (see [`crate::speakers`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub pcm: Pcm16k,
    pub channel_track: Option<Vec<u8>>,
}

/// Decodes a whole recording to 16 kHz mono, refusing anything over `limits`. Decoded audio is
/// mixed down and resampled a buffer at a time ([`Mixdown`]): memory holds the 16 kHz mono
/// result, whatever rate and channels the file declares.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Recording, AudioError> {
    decode_owned(bytes.to_vec(), limits)
}

/// [`decode`] of bytes the caller gives up: the decoder reads them in place instead of a copy.
pub fn decode_owned(bytes: Vec<u8>, limits: &Limits) -> Result<Recording, AudioError> {
    decode_source(Box::new(Cursor::new(bytes)), limits)
}

/// Decodes a recording from any seekable source of known length: bytes in memory, or an upload
/// spooled to disk, so that it need not be held in memory whole.
pub fn decode_source(mut source: Box<dyn MediaSource>, limits: &Limits) -> Result<Recording, AudioError> {
    let len = source.byte_len().unwrap_or(0);
    if len == 0 {
        return Err(AudioError::Empty);
    }
    if len > limits.max_bytes {
        return Err(AudioError::TooLarge {
            bytes: len,
            limit: limits.max_bytes,
        });
    }
    // What the file is, from its first bytes (describing a file that is no recording reads 512).
    let mut head = Vec::with_capacity(512);
    source.by_ref().take(512).read_to_end(&mut head)?;
    source.seek(SeekFrom::Start(0))?;
    let container = Container::sniff(&head).ok_or_else(|| AudioError::NotAudio(describe(&head)))?;
    match container {
        Container::Wav => crate::wav::decode_wav_limited(source, len, limits),
        other => decode_compressed(source, other, limits),
    }
}

/// Where decoded audio goes, a buffer at a time: checked against the caps and budgets, mixed to
/// mono, resampled to 16 kHz and kept as 16-bit samples, with the channel track of a recording
/// that has a microphone per speaker.
pub(crate) struct Mixdown {
    rate: u32,
    channels: usize,
    /// None when the file is already at 16 kHz.
    resampler: Option<StreamResampler>,
    tracker: Option<ChannelTracker>,
    mono: Vec<f32>,
    out: Vec<i16>,
    frames: u64,
    samples: u64,
    budget: u64,
    max_seconds: u64,
}

impl Mixdown {
    pub(crate) fn new(rate: u32, channels: usize, limits: &Limits) -> Result<Mixdown, AudioError> {
        if rate == 0 || channels == 0 {
            return Err(AudioError::Unsupported(format!("{channels} channels at {rate} Hz")));
        }
        if rate > MAX_RATE || channels > MAX_CHANNELS {
            return Err(AudioError::BeyondCaps { rate, channels });
        }
        Ok(Mixdown {
            rate,
            channels,
            resampler: (rate != TARGET_RATE).then(|| StreamResampler::new(rate, TARGET_RATE)),
            tracker: ChannelTracker::new(channels, rate),
            mono: Vec::new(),
            out: Vec::new(),
            frames: 0,
            samples: 0,
            budget: limits
                .max_seconds
                .saturating_add(1)
                .saturating_mul(BUDGET_SAMPLES_PER_SECOND),
            max_seconds: limits.max_seconds,
        })
    }

    /// Whether a buffer of `rate` and `channels` belongs to this stream.
    pub(crate) fn takes(&self, rate: u32, channels: usize) -> bool {
        (self.rate, self.channels) == (rate, channels)
    }

    /// Adds whole interleaved frames at this stream's rate and channel count.
    pub(crate) fn push(&mut self, interleaved: &[f32]) -> Result<(), AudioError> {
        // Too long first: a long recording at an ordinary rate is told it is too long, not that
        // it has too many samples.
        self.frames += (interleaved.len() / self.channels) as u64;
        let seconds = self.frames / u64::from(self.rate);
        if seconds > self.max_seconds {
            return Err(AudioError::TooLong {
                seconds,
                limit: self.max_seconds,
            });
        }
        self.samples += interleaved.len() as u64;
        if self.samples > self.budget {
            return Err(AudioError::TooMuchAudio {
                limit_mb: self.budget * 4 / 1_000_000,
                limit_seconds: self.max_seconds,
            });
        }
        if let Some(tracker) = &mut self.tracker {
            tracker.push(interleaved);
        }
        self.mono.clear();
        self.mono.extend(
            interleaved
                .chunks_exact(self.channels)
                .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32),
        );
        match &mut self.resampler {
            Some(r) => {
                let resampled = r.push(&self.mono);
                self.out.extend(resampled.iter().copied().map(to_i16));
            }
            None => self.out.extend(self.mono.iter().copied().map(to_i16)),
        }
        Ok(())
    }

    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    pub(crate) fn finish(mut self) -> Result<Recording, AudioError> {
        if self.frames == 0 {
            return Err(AudioError::NoSamples);
        }
        if let Some(r) = &mut self.resampler {
            let tail = r.finish();
            self.out.extend(tail.into_iter().map(to_i16));
        }
        Ok(Recording {
            pcm: Pcm16k { samples: self.out },
            channel_track: self.tracker.and_then(ChannelTracker::finish),
        })
    }
}

fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// What a file that is not a recording looks like, for the error message (never its content).
fn describe(bytes: &[u8]) -> String {
    let text = bytes
        .iter()
        .take(512)
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let kind = if bytes.starts_with(b"%PDF") {
        "a PDF document"
    } else if text {
        "text"
    } else {
        "unrecognised data"
    };
    format!("{kind}; supported: {SUPPORTED}")
}

static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
    registry
});

/// Decodes with symphonia, whose demuxers and codecs can panic on crafted or damaged data (an
/// arithmetic overflow in a WAV header found by fuzzing, say): a panic there is a damaged file,
/// told as such, not a failed request or a dead worker thread.
fn decode_compressed(
    source: Box<dyn MediaSource>,
    container: Container,
    limits: &Limits,
) -> Result<Recording, AudioError> {
    // The source moves into the decoder and is dropped with it, whatever happens there.
    let decode = std::panic::AssertUnwindSafe(move || decode_compressed_unguarded(source, container, limits));
    std::panic::catch_unwind(decode).unwrap_or_else(|_| {
        Err(AudioError::Corrupt(format!(
            "{} whose data the decoder could not make sense of",
            container.extension()
        )))
    })
}

fn decode_compressed_unguarded(
    source: Box<dyn MediaSource>,
    container: Container,
    limits: &Limits,
) -> Result<Recording, AudioError> {
    let corrupt = |e: SymphoniaError| AudioError::Corrupt(format!("{}: {e}", container.extension()));
    let source = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    hint.with_extension(container.extension());
    let mut format = symphonia::default::get_probe()
        .probe(&hint, source, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| match e {
            // A container whose index (an MP4's moov box, say) was cut off cannot even be opened.
            SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                AudioError::Corrupt(format!("{} that ends before its header does", container.extension()))
            }
            other => corrupt(other),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Unsupported(format!("a {} file with no audio track", container.extension())))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::Unsupported("an audio track without codec parameters".into()))?
        .clone();
    let track_id = track.id;
    // A rate of 0 (a crafted header, found by fuzzing) would divide by zero below.
    let rate = params
        .sample_rate
        .filter(|&r| r > 0)
        .ok_or_else(|| AudioError::Unsupported("a track without a sample rate".into()))?;
    let declared_frames = track.num_frames;
    if let Some(frames) = declared_frames {
        let seconds = frames / u64::from(rate.max(1));
        if seconds > limits.max_seconds {
            return Err(AudioError::TooLong {
                seconds,
                limit: limits.max_seconds,
            });
        }
    }
    // Refused on what the header declares, before a decoder is even made.
    let declared_channels = params.channels.as_ref().map_or(0, |c| c.count());
    if rate > MAX_RATE || declared_channels > MAX_CHANNELS {
        return Err(AudioError::BeyondCaps {
            rate,
            channels: declared_channels,
        });
    }
    let mut decoder = CODECS
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::Unsupported(format!("{} codec: {e}", container.extension())))?;

    let mut mixdown: Option<Mixdown> = None;
    let mut scratch: Vec<f32> = Vec::new();
    let (mut packets, mut bad_packets) = (0u64, 0u64);
    let mut cut_short = false;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                cut_short = true;
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(corrupt(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        packets += 1;
        match decoder.decode(&packet) {
            Ok(buf) => {
                let channels = buf.spec().channels().count();
                let buf_rate = buf.spec().rate();
                let sink = match &mut mixdown {
                    Some(m) => m,
                    None => mixdown.insert(Mixdown::new(buf_rate, channels, limits)?),
                };
                if !sink.takes(buf_rate, channels) {
                    return Err(AudioError::Unsupported(format!(
                        "a {} stream whose sample rate or channels change part-way",
                        container.extension()
                    )));
                }
                buf.copy_to_vec_interleaved(&mut scratch);
                sink.push(&scratch)?;
            }
            // One damaged frame in an otherwise good file is a click, not a lost visit; many are
            // a broken file, checked below.
            Err(SymphoniaError::DecodeError(_)) => bad_packets += 1,
            Err(e) => return Err(corrupt(e)),
        }
    }
    if bad_packets > 0 && bad_packets * 100 > packets {
        return Err(AudioError::Corrupt(format!(
            "{} with {bad_packets} of {packets} frames undecodable",
            container.extension()
        )));
    }
    let mixdown = mixdown.ok_or(AudioError::NoSamples)?;
    let frames = mixdown.frames();
    let rate = u64::from(mixdown.rate());
    // A container that states its length lets a cut-off upload be told from a short visit. Codecs
    // drop their priming and padding (Opus pre-skip, AAC's ~2 000 samples), which in a clip of a
    // second or two is more than 2 %: a cut needs to be more than a tenth of a second too.
    let short_of_declared = declared_frames.is_some_and(|d| frames * 100 < d * 98 && d - frames > rate / 10);
    if cut_short || short_of_declared {
        let ms = |f: u64| f * 1000 / rate;
        return Err(AudioError::Incomplete {
            container: container.extension(),
            decoded_ms: ms(frames),
            declared_ms: declared_frames.map(ms),
        });
    }
    mixdown.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_recognised_by_their_first_bytes() {
        assert_eq!(Container::sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(Container::Wav));
        assert_eq!(Container::sniff(b"fLaC\0\0"), Some(Container::Flac));
        assert_eq!(Container::sniff(b"OggS\0\x02"), Some(Container::Ogg));
        assert_eq!(Container::sniff(b"\0\0\0\x20ftypM4A "), Some(Container::Mp4));
        assert_eq!(Container::sniff(b"ID3\x04\0"), Some(Container::Mp3));
        assert_eq!(Container::sniff(&[0xff, 0xfb, 0x90, 0x64]), Some(Container::Mp3));
        assert_eq!(Container::sniff(&[0xff, 0xf1, 0x50, 0x80]), Some(Container::Adts));
        assert_eq!(Container::sniff(&[0x1a, 0x45, 0xdf, 0xa3, 0x9f]), Some(Container::WebM));
        assert_eq!(Container::sniff(b"%PDF-1.4"), None);
        assert_eq!(Container::sniff(b""), None);
    }

    #[test]
    fn what_is_not_audio_is_refused_by_name_and_limits_hold() {
        let limits = Limits::default();
        match decode(b"%PDF-1.4 not audio at all", &limits) {
            Err(AudioError::NotAudio(why)) => assert!(why.starts_with("a PDF document"), "{why}"),
            other => panic!("{other:?}"),
        }
        match decode(b"Subjective: the patient reports", &limits) {
            Err(AudioError::NotAudio(why)) => assert!(why.starts_with("text;"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(decode(b"", &limits), Err(AudioError::Empty)));
        let tight = Limits {
            max_bytes: 10,
            max_seconds: 1,
        };
        assert!(matches!(
            decode(b"fLaC and then some more bytes", &tight),
            Err(AudioError::TooLarge { bytes: 29, limit: 10 })
        ));
        // Three seconds of WAV against a one-second limit.
        let mut wav = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut wav, spec).unwrap();
        for _ in 0..48_000 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        let long = Limits {
            max_bytes: u64::MAX,
            max_seconds: 1,
        };
        assert!(matches!(
            decode(&wav.into_inner(), &long),
            Err(AudioError::TooLong { seconds: 3, limit: 1 })
        ));
    }

    #[test]
    fn a_damaged_flac_is_refused() {
        assert!(matches!(
            decode(b"fLaC\0\0\0\x22garbage that is no stream info", &Limits::default()),
            Err(AudioError::Corrupt(_) | AudioError::Unsupported(_))
        ));
    }
}
