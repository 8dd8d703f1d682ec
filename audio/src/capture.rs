//! The room microphone: list input devices, open one, and deliver 16 kHz mono in one-second
//! chunks with their level, whatever the device's own rate, format and channel count.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::{StreamResampler, TARGET_RATE};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no microphone found: {0}")]
    NoMicrophone(String),
    #[error("the microphone {name:?} cannot be opened: {why}")]
    Open { name: String, why: String },
    #[error("the microphone {name:?} stopped delivering audio ({why})")]
    Stopped { name: String, why: String },
}

/// An input device as `scribe devices` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputDevice {
    pub name: String,
    pub is_default: bool,
    /// What recording from it uses, e.g. "2 ch, 48000 Hz, f32".
    pub default_format: Option<String>,
    /// Every sample format with its channel counts and rates, e.g. "i16: 1–2 ch, 8000–96000 Hz".
    pub formats: Vec<String>,
}

/// Every input device the sound system offers.
pub fn input_devices() -> Result<Vec<InputDevice>, CaptureError> {
    let host = cpal::default_host();
    let default = host.default_input_device().and_then(|d| d.name().ok());
    let devices = host
        .input_devices()
        .map_err(|e| CaptureError::NoMicrophone(format!("the sound system lists no devices ({e})")))?;
    Ok(devices
        .filter_map(|d| {
            let name = d.name().ok()?;
            let formats = match d.supported_input_configs() {
                Ok(configs) => summarize_configs(configs.collect()),
                Err(e) => vec![format!("formats unknown: {e}")],
            };
            let default_format = d
                .default_input_config()
                .ok()
                .map(|c| format!("{} ch, {} Hz, {}", c.channels(), c.sample_rate().0, c.sample_format()));
            Some(InputDevice {
                default_format,
                is_default: default.as_deref() == Some(name.as_str()),
                name,
                formats,
            })
        })
        .collect())
}

/// One line per sample format: the channel counts and rates it comes in.
fn summarize_configs(configs: Vec<cpal::SupportedStreamConfigRange>) -> Vec<String> {
    let mut formats: Vec<cpal::SampleFormat> = configs.iter().map(|c| c.sample_format()).collect();
    formats.dedup();
    formats
        .into_iter()
        .map(|f| {
            let of: Vec<_> = configs.iter().filter(|c| c.sample_format() == f).collect();
            let ch = (
                of.iter().map(|c| c.channels()).min(),
                of.iter().map(|c| c.channels()).max(),
            );
            let hz = (
                of.iter().map(|c| c.min_sample_rate().0).min(),
                of.iter().map(|c| c.max_sample_rate().0).max(),
            );
            match (ch, hz) {
                ((Some(a), Some(b)), (Some(lo), Some(hi))) => {
                    let channels = if a == b {
                        format!("{a} ch")
                    } else {
                        format!("{a}–{b} ch")
                    };
                    format!("{f}: {channels}, {lo}–{hi} Hz")
                }
                _ => f.to_string(),
            }
        })
        .collect()
}

/// One second (or less, at the end) of 16 kHz mono audio and how loud it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub pcm: Vec<i16>,
    /// Peak level in dBFS (0 is full scale; silence is very negative).
    pub peak_dbfs: f32,
    /// RMS level in dBFS.
    pub rms_dbfs: f32,
    /// Samples at or near full scale.
    pub clipped: usize,
}

impl Chunk {
    fn from_pcm(pcm: Vec<i16>) -> Chunk {
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let sum_sq: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (sum_sq / pcm.len().max(1) as f64).sqrt();
        let db = |v: f64| (20.0 * (v.max(1.0) / 32768.0).log10()) as f32;
        Chunk {
            clipped: pcm.iter().filter(|s| s.unsigned_abs() >= 32_700).count(),
            peak_dbfs: db(f64::from(peak)),
            rms_dbfs: db(rms),
            pcm,
        }
    }
}

/// A running capture from one device.
pub struct Capture {
    pub device: String,
    _stream: cpal::Stream,
    rx: Receiver<Result<Vec<f32>, String>>,
    device_rate: u32,
    resampler: StreamResampler,
    pending: Vec<i16>,
}

/// Opens `name` (or the default input device) and starts capturing.
pub fn open(name: Option<&str>) -> Result<Capture, CaptureError> {
    let host = cpal::default_host();
    let device = match name.filter(|n| !n.is_empty()) {
        None => host.default_input_device().ok_or_else(|| {
            CaptureError::NoMicrophone(
                "the system has no default input device; `scribe devices` lists what there is".into(),
            )
        })?,
        Some(wanted) => host
            .input_devices()
            .map_err(|e| CaptureError::NoMicrophone(e.to_string()))?
            .find(|d| d.name().is_ok_and(|n| n == wanted))
            .ok_or_else(|| {
                CaptureError::NoMicrophone(format!("no input device named {wanted:?}; `scribe devices` lists them"))
            })?,
    };
    let device_name = device.name().unwrap_or_else(|_| "(unnamed)".into());
    let open_err = |why: String| CaptureError::Open {
        name: device_name.clone(),
        why,
    };
    let config = device.default_input_config().map_err(|e| open_err(e.to_string()))?;
    let (channels, rate, format) = (
        config.channels() as usize,
        config.sample_rate().0,
        config.sample_format(),
    );
    let (tx, rx) = channel::<Result<Vec<f32>, String>>();
    let err_tx: Sender<Result<Vec<f32>, String>> = tx.clone();
    // The callback runs on the sound system's thread: it only mixes to mono and hands over.
    let stream = device
        .build_input_stream_raw(
            &config.config(),
            format,
            move |data: &cpal::Data, _: &cpal::InputCallbackInfo| {
                let mono = to_mono(data, channels);
                let _ = tx.send(Ok(mono));
            },
            move |e| {
                let _ = err_tx.send(Err(e.to_string()));
            },
            None,
        )
        .map_err(|e| open_err(e.to_string()))?;
    stream.play().map_err(|e| open_err(e.to_string()))?;
    Ok(Capture {
        device: device_name,
        _stream: stream,
        rx,
        device_rate: rate,
        resampler: StreamResampler::new(rate, TARGET_RATE),
        pending: Vec::new(),
    })
}

fn to_mono(data: &cpal::Data, channels: usize) -> Vec<f32> {
    let samples: Vec<f32> = if let Some(s) = data.as_slice::<f32>() {
        s.to_vec()
    } else if let Some(s) = data.as_slice::<i16>() {
        s.iter().map(|&v| f32::from(v) / 32768.0).collect()
    } else if let Some(s) = data.as_slice::<i32>() {
        s.iter().map(|&v| v as f32 / 2_147_483_648.0).collect()
    } else if let Some(s) = data.as_slice::<u16>() {
        s.iter().map(|&v| (f32::from(v) - 32768.0) / 32768.0).collect()
    } else if let Some(s) = data.as_slice::<u8>() {
        s.iter().map(|&v| (f32::from(v) - 128.0) / 128.0).collect()
    } else {
        Vec::new()
    };
    samples
        .chunks(channels.max(1))
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect()
}

impl Capture {
    /// The device's native rate (before conversion to 16 kHz).
    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Blocks until the next full second of audio is ready.
    pub fn next_second(&mut self) -> Result<Chunk, CaptureError> {
        let second = TARGET_RATE as usize;
        while self.pending.len() < second {
            match self.rx.recv_timeout(Duration::from_secs(3)) {
                Ok(Ok(mono)) => self.pending.extend(
                    self.resampler
                        .push(&mono)
                        .into_iter()
                        .map(|v| (v.clamp(-1.0, 1.0) * 32767.0) as i16),
                ),
                Ok(Err(why)) => {
                    return Err(CaptureError::Stopped {
                        name: self.device.clone(),
                        why,
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(CaptureError::Stopped {
                        name: self.device.clone(),
                        why: "no audio for 3 seconds".into(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(CaptureError::Stopped {
                        name: self.device.clone(),
                        why: "the stream closed".into(),
                    });
                }
            }
        }
        let rest = self.pending.split_off(second);
        Ok(Chunk::from_pcm(std::mem::replace(&mut self.pending, rest)))
    }

    /// Whatever is left (less than a second), when the recording stops.
    pub fn finish(mut self) -> Option<Chunk> {
        (!self.pending.is_empty()).then(|| Chunk::from_pcm(std::mem::take(&mut self.pending)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_clipping() {
        let silence = Chunk::from_pcm(vec![0; 16_000]);
        assert!(silence.peak_dbfs < -80.0 && silence.clipped == 0);
        let loud: Vec<i16> = (0..16_000).map(|i| if i % 2 == 0 { 32767 } else { -32768 }).collect();
        let loud = Chunk::from_pcm(loud);
        assert!(loud.peak_dbfs > -0.1 && loud.clipped == 16_000);
        let half = Chunk::from_pcm(vec![16_384; 100]);
        assert!((half.peak_dbfs + 6.02).abs() < 0.1, "{}", half.peak_dbfs);
    }
}
