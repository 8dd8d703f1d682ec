//! Who is speaking when: from separate channels when the recording has them (two microphones, a
//! stereo recorder with one lapel microphone per person), otherwise from the pitch of the voices.
//!
//! The pitch method tells two voices apart when their pitch differs (typically a man and a woman,
//! or an adult and a child); two voices of similar pitch give `None` for every span rather than a
//! guess. Which voice is the clinician is decided by the caller (see `capture.speaker_roles`).

use crate::TARGET_RATE;

/// One of the two voices of a visit: the left channel or the voice heard first, and the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    First,
    Second,
}

/// A channel track has one entry per this many milliseconds.
pub const TRACK_FRAME_MS: u64 = 100;
/// Track entry for a frame where no channel is clearly louder (silence, or both talking).
pub const NEITHER: u8 = u8::MAX;

/// Per 100 ms of a stereo recording, which channel is clearly louder (0 = left, 1 = right, or
/// [`NEITHER`]), taken a buffer at a time as the recording decodes. `None` at the end for a mono
/// recording, or a "stereo" one whose channels carry the same signal.
#[derive(Debug, Clone)]
pub struct ChannelTracker {
    channels: usize,
    /// Frames per track entry.
    frame: usize,
    floor: f64,
    /// Squared samples of the first two channels, and frames, in the entry being filled.
    sums: [f64; 2],
    filled: usize,
    track: Vec<u8>,
    active: usize,
    dominant: usize,
}

impl ChannelTracker {
    /// `None` for fewer than two channels: a mono recording has no channel track.
    pub fn new(channels: usize, rate: u32) -> Option<ChannelTracker> {
        (channels >= 2).then(|| ChannelTracker {
            channels,
            frame: (rate as usize * TRACK_FRAME_MS as usize / 1000).max(1),
            floor: db_to_rms(-45.0),
            sums: [0.0; 2],
            filled: 0,
            track: Vec::new(),
            active: 0,
            dominant: 0,
        })
    }

    /// Adds whole interleaved frames.
    pub fn push(&mut self, interleaved: &[f32]) {
        for frame in interleaved.chunks_exact(self.channels) {
            self.sums[0] += f64::from(frame[0]).powi(2);
            self.sums[1] += f64::from(frame[1]).powi(2);
            self.filled += 1;
            if self.filled == self.frame {
                self.close_entry();
            }
        }
    }

    fn close_entry(&mut self) {
        let n = self.filled.max(1) as f64;
        let (left, right) = ((self.sums[0] / n).sqrt(), (self.sums[1] / n).sqrt());
        let entry = if left.max(right) < self.floor {
            NEITHER
        } else {
            self.active += 1;
            // 6 dB: the near microphone hears its speaker at least twice as loud as the far one.
            if left >= 2.0 * right {
                0
            } else if right >= 2.0 * left {
                1
            } else {
                NEITHER
            }
        };
        self.dominant += usize::from(entry != NEITHER);
        self.track.push(entry);
        self.sums = [0.0; 2];
        self.filled = 0;
    }

    pub fn finish(mut self) -> Option<Vec<u8>> {
        if self.filled > 0 {
            self.close_entry();
        }
        // A mono recording saved as stereo has no louder side anywhere.
        (self.active > 0 && self.dominant * 5 >= self.active).then_some(self.track)
    }
}

/// The voice speaking in each span (`start_ms`, `end_ms`) of 16 kHz mono `pcm`: by channel when
/// a track is given, else by pitch. `None` where the audio does not tell.
pub fn voices(spans: &[(u64, u64)], pcm: &[i16], track: Option<&[u8]>) -> Vec<Option<Voice>> {
    match track {
        Some(track) => voices_by_channel(spans, track),
        None => voices_by_pitch(&span_pitches(spans, pcm)),
    }
}

/// The voice speaking in each span, from a recording's channel track (see [`ChannelTracker`]).
pub fn voices_by_channel(spans: &[(u64, u64)], track: &[u8]) -> Vec<Option<Voice>> {
    spans.iter().map(|&(s, e)| by_channel(track, s, e)).collect()
}

fn by_channel(track: &[u8], start_ms: u64, end_ms: u64) -> Option<Voice> {
    let from = (start_ms / TRACK_FRAME_MS) as usize;
    let to = (end_ms.div_ceil(TRACK_FRAME_MS) as usize).min(track.len());
    let frames = track.get(from..to)?;
    let left = frames.iter().filter(|&&c| c == 0).count();
    let right = frames.iter().filter(|&&c| c == 1).count();
    // The side that dominates more of the span: a segment that runs over a turn change belongs
    // to whoever speaks most of it.
    match left.cmp(&right) {
        std::cmp::Ordering::Greater => Some(Voice::First),
        std::cmp::Ordering::Less => Some(Voice::Second),
        std::cmp::Ordering::Equal => None,
    }
}

/// Two voices whose typical pitch differs by less than this ratio are not told apart.
const MIN_PITCH_RATIO: f32 = 1.15;

/// The typical pitch (log of the median voiced frequency) of each span of 16 kHz mono `pcm`;
/// `None` for a span with too little voicing to say. A recording transcribed piece by piece keeps
/// these per segment, so the voices can be told apart later without the whole recording.
pub fn span_pitches(spans: &[(u64, u64)], pcm: &[i16]) -> Vec<Option<f32>> {
    let track = pitch_track(pcm);
    spans
        .iter()
        .map(|&(s, e)| {
            let from = (s / PITCH_HOP_MS) as usize;
            let to = (e.div_ceil(PITCH_HOP_MS) as usize).min(track.len());
            let mut voiced: Vec<f32> = track.get(from..to).unwrap_or(&[]).iter().flatten().copied().collect();
            // Fewer than a tenth of a second of voicing says nothing about who spoke.
            if voiced.len() < 5 {
                return None;
            }
            voiced.sort_by(f32::total_cmp);
            Some(voiced[voiced.len() / 2].ln())
        })
        .collect()
}

/// The voice of each span from its pitch (see [`span_pitches`]): two clusters, the first voice
/// being the one heard first. All `None` when the pitches do not form two distinct voices.
pub fn voices_by_pitch(medians: &[Option<f32>]) -> Vec<Option<Voice>> {
    let Some((low, high)) = two_means(&medians.iter().flatten().copied().collect::<Vec<_>>()) else {
        return vec![None; medians.len()];
    };
    if (high - low).exp() < MIN_PITCH_RATIO {
        return vec![None; medians.len()];
    }
    let is_high = |m: f32| (m - high).abs() < (m - low).abs();
    // The voice of the first span with a pitch is the first voice.
    let Some(first_high) = medians.iter().flatten().next().map(|&m| is_high(m)) else {
        return vec![None; medians.len()];
    };
    medians
        .iter()
        .map(|m| {
            m.map(|m| {
                if is_high(m) == first_high {
                    Voice::First
                } else {
                    Voice::Second
                }
            })
        })
        .collect()
}

/// The two centres of a one-dimensional 2-means clustering, lower first; `None` with fewer than
/// two distinct values.
fn two_means(values: &[f32]) -> Option<(f32, f32)> {
    let (mut low, mut high) = values
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if values.len() < 2 || high <= low {
        return None;
    }
    for _ in 0..50 {
        let (mut sums, mut counts) = ([0.0f32; 2], [0usize; 2]);
        for &v in values {
            let k = usize::from((v - high).abs() < (v - low).abs());
            sums[k] += v;
            counts[k] += 1;
        }
        if counts.contains(&0) {
            return None;
        }
        let next = (sums[0] / counts[0] as f32, sums[1] / counts[1] as f32);
        if next == (low, high) {
            break;
        }
        (low, high) = next;
    }
    Some((low, high))
}

/// Pitch frames are this far apart.
const PITCH_HOP_MS: u64 = 20;

/// Fundamental frequency (Hz) every 20 ms, `None` where the audio is unvoiced or quiet. Normalised
/// autocorrelation over 40 ms windows of the signal decimated to 8 kHz, between 70 and 400 Hz.
pub fn pitch_track(pcm: &[i16]) -> Vec<Option<f32>> {
    const RATE: usize = TARGET_RATE as usize / 2;
    let x: Vec<f32> = pcm
        .chunks_exact(2)
        .map(|p| (f32::from(p[0]) + f32::from(p[1])) / 65536.0)
        .collect();
    let window = RATE * 40 / 1000;
    let hop = RATE * PITCH_HOP_MS as usize / 1000;
    let (min_lag, max_lag) = (RATE / 400, RATE / 70);
    let floor = db_to_rms(-40.0) as f32;
    let mut track = Vec::with_capacity(x.len() / hop + 1);
    let mut start = 0;
    while start + window + max_lag <= x.len() {
        let frame = &x[start..start + window];
        let energy: f32 = frame.iter().map(|v| v * v).sum();
        if (energy / window as f32).sqrt() < floor {
            track.push(None);
            start += hop;
            continue;
        }
        let r: Vec<f32> = (min_lag..=max_lag)
            .map(|lag| {
                let shifted = &x[start + lag..start + lag + window];
                let dot: f32 = frame.iter().zip(shifted).map(|(a, b)| a * b).sum();
                let e2: f32 = shifted.iter().map(|v| v * v).sum();
                dot / (energy * e2).sqrt().max(f32::MIN_POSITIVE)
            })
            .collect();
        let best = r.iter().copied().fold(f32::MIN, f32::max);
        // The shortest lag nearly as good as the best: a multiple of the period correlates as
        // well as the period itself, and would halve the pitch.
        let lag = r.iter().position(|&v| v >= 0.9 * best).map(|i| i + min_lag);
        track.push(lag.filter(|_| best > 0.6).map(|lag| RATE as f32 / lag as f32));
        start += hop;
    }
    track
}

fn db_to_rms(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, ms: usize) -> Vec<i16> {
        // A buzz with harmonics, like a voice, rather than a pure sine.
        (0..16 * ms)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let s: f32 = (1..=5)
                    .map(|k| (t * hz * k as f32 * std::f32::consts::TAU).sin() / k as f32)
                    .sum();
                (s * 6000.0) as i16
            })
            .collect()
    }

    #[test]
    fn pitch_is_found_within_a_few_percent() {
        for hz in [100.0, 150.0, 220.0] {
            let track = pitch_track(&tone(hz, 500));
            let voiced: Vec<f32> = track.iter().flatten().copied().collect();
            assert!(voiced.len() > 15, "{hz}: {track:?}");
            let mean = voiced.iter().sum::<f32>() / voiced.len() as f32;
            assert!((mean / hz - 1.0).abs() < 0.05, "{hz} Hz measured as {mean}");
        }
        assert!(pitch_track(&vec![0; 8000]).iter().all(Option::is_none));
    }

    #[test]
    fn two_voices_are_told_apart_and_the_first_heard_is_first() {
        let mut pcm = tone(110.0, 1000);
        pcm.extend(tone(210.0, 1000));
        pcm.extend(tone(115.0, 1000));
        let spans = [(0, 1000), (1000, 2000), (2000, 2900)];
        assert_eq!(
            voices(&spans, &pcm, None),
            vec![Some(Voice::First), Some(Voice::Second), Some(Voice::First)]
        );
        // Two voices of the same pitch are not guessed at.
        let same: Vec<i16> = tone(120.0, 2000);
        assert_eq!(voices(&[(0, 1000), (1000, 1900)], &same, None), vec![None, None]);
    }

    #[test]
    fn channels_decide_when_one_side_is_louder() {
        let loud = tone(150.0, 1000);
        let mut samples = Vec::new();
        // One second on the left (right hears it at a quarter), then one on the right.
        for &s in &loud {
            samples.extend([f32::from(s) / 32768.0, f32::from(s) / 4.0 / 32768.0]);
        }
        for &s in &loud {
            samples.extend([f32::from(s) / 4.0 / 32768.0, f32::from(s) / 32768.0]);
        }
        let channel_track = |interleaved: &[f32]| {
            let mut tracker = ChannelTracker::new(2, 16_000).expect("two channels");
            tracker.push(interleaved);
            tracker.finish()
        };
        let track = channel_track(&samples).expect("a stereo track");
        assert_eq!(track.len(), 20);
        assert_eq!(
            voices(&[(0, 1000), (1000, 2000)], &[], Some(&track)),
            vec![Some(Voice::First), Some(Voice::Second)]
        );
        let mono_as_stereo: Vec<f32> = loud.iter().flat_map(|&s| [f32::from(s) / 32768.0; 2]).collect();
        assert_eq!(channel_track(&mono_as_stereo), None);
    }
}
