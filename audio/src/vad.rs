//! Voice activity: where a live recording may be cut for transcription.
//!
//! Live transcription sends whisper whole utterances: it waits for a pause after speech and cuts
//! in the middle of it, so no word is split between two windows and segment boundaries fall in
//! pauses. Audio with no speech at all is dropped without waking whisper (whisper also invents
//! text in silence). Energy-based, with the threshold set from the quietest frames of the audio
//! at hand, so a room's steady noise reads as silence.

use crate::TARGET_RATE;

/// Frames of 30 ms.
const FRAME: usize = TARGET_RATE as usize * 30 / 1000;
/// A pause is at least this many silent frames (300 ms).
const PAUSE_FRAMES: usize = 10;
/// Speech is this many dB above the noise floor…
const OVER_FLOOR_DB: f32 = 12.0;
/// …and never quieter than this, however quiet the room.
const MIN_SPEECH_DBFS: f32 = -50.0;

/// What to do with audio waiting to be transcribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Too little audio to tell: wait for more.
    Wait,
    /// Someone is speaking and has not paused yet: the utterance is not complete.
    Speaking,
    /// The first `n` samples hold no speech: drop them without transcribing.
    Silence(usize),
    /// Transcribe the first `n` samples: they end in a pause (or the window is full).
    At(usize),
}

/// Where to cut `pending` (16 kHz mono, not yet transcribed); `max` samples is the longest
/// window to wait for before cutting at the quietest moment.
pub fn next_cut(pending: &[i16], max: usize) -> Cut {
    let levels: Vec<f32> = pending.chunks_exact(FRAME).map(dbfs).collect();
    if levels.is_empty() {
        return Cut::Wait;
    }
    let threshold = speech_threshold(&levels);
    let speech: Vec<bool> = levels.iter().map(|&l| l > threshold).collect();
    let Some(first_speech) = speech.iter().position(|&s| s) else {
        // Keep the last pause's worth: it may be the start of a word still being spoken.
        let silent = levels.len().saturating_sub(PAUSE_FRAMES) * FRAME;
        return if silent > 0 { Cut::Silence(silent) } else { Cut::Wait };
    };
    // The last run of at least PAUSE_FRAMES silent frames after speech: cut in its middle.
    let mut cut = None;
    let mut run = 0;
    for (i, &s) in speech.iter().enumerate().skip(first_speech) {
        if s {
            if run >= PAUSE_FRAMES {
                cut = Some(i - run / 2);
            }
            run = 0;
        } else {
            run += 1;
        }
    }
    if run >= PAUSE_FRAMES {
        cut = Some(speech.len() - run / 2);
    }
    if let Some(frame) = cut {
        return Cut::At(frame * FRAME);
    }
    if pending.len() >= max {
        // One long stretch of speech: cut at its quietest frame in the last third.
        let from = levels.len() * 2 / 3;
        let quietest = (from..levels.len())
            .min_by(|&a, &b| levels[a].total_cmp(&levels[b]))
            .unwrap_or(levels.len());
        return Cut::At((quietest + 1) * FRAME);
    }
    Cut::Speaking
}

fn speech_threshold(levels: &[f32]) -> f32 {
    let mut sorted = levels.to_vec();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 10];
    (floor + OVER_FLOOR_DB).max(MIN_SPEECH_DBFS)
}

fn dbfs(frame: &[i16]) -> f32 {
    let mean_square = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
    (10.0 * (mean_square.max(1.0) / (32768.0f64 * 32768.0)).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(ms: usize) -> Vec<i16> {
        (0..16 * ms)
            .map(|i| ((i as f32 * 0.07).sin() * 8000.0 * (1.0 + (i as f32 * 0.001).sin()) / 2.0) as i16)
            .collect()
    }

    fn quiet(ms: usize) -> Vec<i16> {
        // Room noise around -60 dBFS.
        (0..16 * ms).map(|i| (i * 7919 % 61) as i16 - 30).collect()
    }

    const MAX: usize = 16_000 * 15;

    #[test]
    fn an_utterance_is_cut_in_the_pause_after_it() {
        let mut pcm = quiet(500);
        pcm.extend(speech(2000));
        pcm.extend(quiet(600));
        let Cut::At(n) = next_cut(&pcm, MAX) else {
            panic!("{:?}", next_cut(&pcm, MAX))
        };
        let cut_ms = n / 16;
        assert!((2500..=3100).contains(&cut_ms), "cut at {cut_ms} ms");
        // The same utterance still being spoken is waited for.
        assert_eq!(next_cut(&pcm[..16 * 2400], MAX), Cut::Speaking);
    }

    #[test]
    fn silence_is_dropped_without_transcribing_and_long_speech_is_cut_anyway() {
        let pcm = quiet(3000);
        let Cut::Silence(n) = next_cut(&pcm, MAX) else { panic!() };
        assert!(n >= 16 * 2600 && n < pcm.len(), "{n}");
        let long = speech(16_000);
        let Cut::At(n) = next_cut(&long, MAX) else { panic!() };
        assert!(n > long.len() * 2 / 3 && n <= long.len(), "{n}");
        assert_eq!(next_cut(&[], MAX), Cut::Wait);
    }
}
