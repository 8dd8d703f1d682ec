//! Whisper's mel filterbank, computed rather than downloaded.
//!
//! whisper.cpp's model file carries the filterbank that OpenAI's `mel_filters.npz` holds, which is
//! `librosa.filters.mel(sr=16000, n_fft=400, n_mels=N)` (Slaney mel scale, Slaney area
//! normalisation) stored as float32. This reproduces librosa's float64 arithmetic step by step,
//! including its rounding to float32 before normalisation, so no extra package is needed.

const SAMPLE_RATE: f64 = 16_000.0;
pub const N_FFT: usize = 400;

// Slaney's mel scale: linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

/// numpy.linspace(start, stop, num) with endpoint=True.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// `n_mels × (N_FFT/2 + 1)` weights, row-major.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let n_bins = N_FFT / 2 + 1;
    let d = 1.0 / SAMPLE_RATE;
    let val = 1.0 / (N_FFT as f64 * d);
    let fftfreqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * val).collect();
    let mels = linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0), n_mels + 2);
    let mel_f: Vec<f64> = mels.into_iter().map(mel_to_hz).collect();
    let fdiff: Vec<f64> = mel_f.windows(2).map(|w| w[1] - w[0]).collect();
    let mut weights = vec![0f32; n_mels * n_bins];
    for i in 0..n_mels {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (k, &freq) in fftfreqs.iter().enumerate() {
            let lower = -(mel_f[i] - freq) / fdiff[i];
            let upper = (mel_f[i + 2] - freq) / fdiff[i + 1];
            let tri = 0f64.max(lower.min(upper)) as f32;
            weights[i * n_bins + k] = (f64::from(tri) * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filterbank_has_librosa_shape_and_values() {
        let w = mel_filters(80);
        assert_eq!(w.len(), 80 * 201);
        // By hand: bin 1 is 40 Hz on the first triangle (0, 37.24, 74.48 Hz), whose falling edge
        // gives (74.48 - 40) / 37.24 = 0.9258, times the area norm 2 / 74.48.
        assert!((w[1] - 0.02486).abs() < 2e-5, "{}", w[1]);
        assert_eq!(w[0], 0.0);
        let row_sum: f32 = w[79 * 201..].iter().sum();
        assert!(row_sum > 0.0);
        // Each filter is a triangle: nonzero on a contiguous run of bins.
        for row in w.chunks(201) {
            let nz: Vec<usize> = row
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, _)| i)
                .collect();
            assert!(!nz.is_empty() && nz.windows(2).all(|p| p[1] == p[0] + 1));
        }
    }
}
