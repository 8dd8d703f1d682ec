use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use crate::decode::Mixdown;
use crate::{AudioError, Limits, Pcm16k, Recording, SUPPORTED};

pub fn decode_wav_file(path: &Path) -> Result<Pcm16k, AudioError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    decode_wav(&bytes)
}

/// Decodes a WAV file of any rate, channel count and sample format to 16 kHz mono.
pub fn decode_wav(bytes: &[u8]) -> Result<Pcm16k, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let unlimited = Limits {
        max_bytes: u64::MAX,
        max_seconds: u64::MAX,
    };
    Ok(decode_wav_limited(Cursor::new(bytes), bytes.len() as u64, &unlimited)?.pcm)
}

/// Frames handed to the mixdown at a time.
const CHUNK_FRAMES: usize = 4096;

/// Decodes a WAV file of `len` bytes from `source` (at its start) within `limits`.
pub(crate) fn decode_wav_limited<R: Read + Seek>(
    mut source: R,
    len: u64,
    limits: &Limits,
) -> Result<Recording, AudioError> {
    let not_wav = |why: String| AudioError::NotAudio(format!("not a WAV recording ({why}); supported: {SUPPORTED}"));
    // hound trusts the header's data length: what is really there is read from the chunk headers
    // first, so a cut-off upload is reported as truncated rather than as a decoder error.
    let present = data_chunk_bytes_present(&mut source, len)?;
    source.seek(SeekFrom::Start(0))?;
    let mut reader = hound::WavReader::new(std::io::BufReader::new(source)).map_err(|e| match e {
        hound::Error::IoError(e) => not_wav(e.to_string()),
        hound::Error::FormatError(m) => not_wav(m.to_string()),
        hound::Error::Unsupported => AudioError::Unsupported("this WAV sample encoding".into()),
        other => not_wav(other.to_string()),
    })?;
    let spec = reader.spec();
    let mut mixdown = Mixdown::new(spec.sample_rate, usize::from(spec.channels), limits)?;
    let bytes_per_sample = u64::from(spec.bits_per_sample).div_ceil(8);
    let promised = u64::from(reader.len()) * bytes_per_sample;
    let present = present.unwrap_or(promised);
    if present < promised {
        return Err(AudioError::Truncated { promised, present });
    }
    let seconds = u64::from(reader.duration()) / u64::from(spec.sample_rate);
    if seconds > limits.max_seconds {
        return Err(AudioError::TooLong {
            seconds,
            limit: limits.max_seconds,
        });
    }

    let truncated = |e: hound::Error| AudioError::Corrupt(format!("WAV: {e}"));
    let chunk = CHUNK_FRAMES * usize::from(spec.channels);
    let mut buf: Vec<f32> = Vec::with_capacity(chunk);
    let flush = |buf: &mut Vec<f32>, mixdown: &mut Mixdown| -> Result<(), AudioError> {
        mixdown.push(buf)?;
        buf.clear();
        Ok(())
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.samples::<f32>() {
                buf.push(s.map_err(truncated)?);
                if buf.len() == chunk {
                    flush(&mut buf, &mut mixdown)?;
                }
            }
        }
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            for s in reader.samples::<i32>() {
                buf.push(s.map_err(truncated)? as f32 / scale);
                if buf.len() == chunk {
                    flush(&mut buf, &mut mixdown)?;
                }
            }
        }
    }
    // A last frame cut mid-way is dropped, as before.
    buf.truncate(buf.len() - buf.len() % usize::from(spec.channels));
    flush(&mut buf, &mut mixdown)?;
    mixdown.finish()
}

/// Bytes of the `data` chunk actually present in the file (the header may promise more).
/// How many bytes of the `data` chunk a RIFF file of `len` bytes really holds, walking the chunk
/// headers; `None` when there is no such chunk (hound will say what is wrong).
fn data_chunk_bytes_present<R: Read + Seek>(source: &mut R, len: u64) -> std::io::Result<Option<u64>> {
    let mut pos = 12; // "RIFF" size "WAVE"
    while pos + 8 <= len {
        source.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        source.read_exact(&mut header)?;
        let size = u64::from(u32::from_le_bytes(header[4..].try_into().expect("4 bytes")));
        let body = pos + 8;
        if &header[..4] == b"data" {
            return Ok(Some(len.saturating_sub(body).min(size)));
        }
        pos = body + size + (size & 1);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    #[test]
    fn stereo_44k1_becomes_16k_mono() {
        let tone: Vec<i16> = (0..44_100)
            .flat_map(|i| {
                let s = ((i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 16000.0) as i16;
                [s, s]
            })
            .collect();
        let pcm = decode_wav(&wav(44_100, 2, &tone)).unwrap();
        assert!((pcm.samples.len() as i64 - 16_000).abs() <= 1, "{}", pcm.samples.len());
        let peak = pcm.samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((15_000..17_000).contains(&peak), "tone level kept, got {peak}");
    }

    #[test]
    fn bad_inputs_get_clear_errors() {
        assert!(matches!(decode_wav(b""), Err(AudioError::Empty)));
        assert!(matches!(
            decode_wav(b"%PDF-1.4 not audio at all"),
            Err(AudioError::NotAudio(_))
        ));
        let full = wav(16_000, 1, &[100; 16_000]);
        let cut = &full[..full.len() / 2];
        assert!(matches!(decode_wav(cut), Err(AudioError::Truncated { .. })));
        assert!(matches!(decode_wav(&wav(16_000, 1, &[])), Err(AudioError::NoSamples)));
    }
}
