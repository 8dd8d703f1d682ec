//! Any supported recording (WAV, FLAC, MP3, M4A/AAC, OGG Vorbis/Opus, WebM/Opus) in, 16 kHz mono
//! out — or a clear reason why not, before anything is stored.
//!
//! WAV keeps its own decoder (hound) because it can say exactly how many bytes a cut-off file is
//! missing; everything else goes through symphonia, with libopus for Opus, which symphonia lacks.

use std::io::Cursor;
use std::path::Path;
use std::sync::LazyLock;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::{AudioError, Interleaved, Pcm16k};

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
    decode(&std::fs::read(path)?, limits)
}

/// A decoded upload: what the engines hear, and for a recording with a microphone per speaker,
/// which channel was louder when (see [`crate::speakers`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub pcm: Pcm16k,
    pub channel_track: Option<Vec<u8>>,
}

/// Decodes a whole recording to 16 kHz mono, refusing anything over `limits`.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Recording, AudioError> {
    let audio = decode_interleaved(bytes, limits)?;
    let channel_track = crate::speakers::channel_track(&audio);
    Ok(Recording {
        pcm: audio.into_16k_mono()?,
        channel_track,
    })
}

/// Decodes a whole recording, keeping its channels apart.
pub fn decode_interleaved(bytes: &[u8], limits: &Limits) -> Result<Interleaved, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(AudioError::TooLarge {
            bytes: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    let container = Container::sniff(bytes).ok_or_else(|| AudioError::NotAudio(describe(bytes)))?;
    let audio = match container {
        Container::Wav => crate::wav::decode_wav_interleaved(bytes)?,
        other => decode_compressed(bytes, other, limits)?,
    };
    let seconds = audio.frames() as u64 / u64::from(audio.rate.max(1));
    if seconds > limits.max_seconds {
        return Err(AudioError::TooLong {
            seconds,
            limit: limits.max_seconds,
        });
    }
    Ok(audio)
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
fn decode_compressed(bytes: &[u8], container: Container, limits: &Limits) -> Result<Interleaved, AudioError> {
    std::panic::catch_unwind(|| decode_compressed_unguarded(bytes, container, limits)).unwrap_or_else(|_| {
        Err(AudioError::Corrupt(format!(
            "{} whose data the decoder could not make sense of",
            container.extension()
        )))
    })
}

fn decode_compressed_unguarded(bytes: &[u8], container: Container, limits: &Limits) -> Result<Interleaved, AudioError> {
    let corrupt = |e: SymphoniaError| AudioError::Corrupt(format!("{}: {e}", container.extension()));
    // The bytes are copied into the stream because symphonia's sources must be 'static.
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
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
    let mut decoder = CODECS
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::Unsupported(format!("{} codec: {e}", container.extension())))?;
    let max_frames = limits.max_seconds.saturating_add(1) * u64::from(rate);

    let mut samples: Vec<f32> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
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
                channels = buf.spec().channels().count();
                buf.copy_to_vec_interleaved(&mut scratch);
                samples.extend_from_slice(&scratch);
            }
            // One damaged frame in an otherwise good file is a click, not a lost visit; many are
            // a broken file, checked below.
            Err(SymphoniaError::DecodeError(_)) => bad_packets += 1,
            Err(e) => return Err(corrupt(e)),
        }
        if channels > 0 && samples.len() as u64 / channels as u64 > max_frames {
            return Err(AudioError::TooLong {
                seconds: samples.len() as u64 / channels as u64 / u64::from(rate),
                limit: limits.max_seconds,
            });
        }
    }
    if bad_packets > 0 && bad_packets * 100 > packets {
        return Err(AudioError::Corrupt(format!(
            "{} with {bad_packets} of {packets} frames undecodable",
            container.extension()
        )));
    }
    if channels == 0 || samples.is_empty() {
        return Err(AudioError::NoSamples);
    }
    let frames = samples.len() as u64 / channels as u64;
    // A container that states its length lets a cut-off upload be told from a short visit. Codecs
    // drop their priming and padding (Opus pre-skip, AAC's ~2 000 samples), which in a clip of a
    // second or two is more than 2 %: a cut needs to be more than a tenth of a second too.
    let short_of_declared = declared_frames.is_some_and(|d| frames * 100 < d * 98 && d - frames > u64::from(rate) / 10);
    if cut_short || short_of_declared {
        let ms = |f: u64| f * 1000 / u64::from(rate);
        return Err(AudioError::Incomplete {
            container: container.extension(),
            decoded_ms: ms(frames),
            declared_ms: declared_frames.map(ms),
        });
    }
    Ok(Interleaved {
        samples,
        channels,
        rate,
    })
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
