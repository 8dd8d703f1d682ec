//! Band-limited resampling (windowed sinc), good enough for speech recognition input.

/// Zero crossings of the sinc kernel on each side: 16 keeps aliasing far below whisper's concern.
const HALF_TAPS: f64 = 16.0;

pub fn resample(input: &[f32], from_rate: u32, to_rate: u32) -> Vec<f32> {
    if from_rate == to_rate || input.is_empty() {
        return input.to_vec();
    }
    let ratio = f64::from(to_rate) / f64::from(from_rate);
    // Downsampling must low-pass below the new Nyquist frequency; upsampling keeps the band.
    let cutoff = ratio.min(1.0) * 0.97;
    let half_width = HALF_TAPS / cutoff;
    let out_len = (input.len() as f64 * ratio).round() as usize;
    (0..out_len)
        .map(|n| {
            let t = n as f64 / ratio;
            let first = (t - half_width).ceil().max(0.0) as usize;
            let last = ((t + half_width).floor() as usize).min(input.len() - 1);
            let mut acc = 0.0;
            let mut norm = 0.0;
            for (k, &x) in input.iter().enumerate().take(last + 1).skip(first) {
                let d = t - k as f64;
                let w = cutoff * sinc(cutoff * d) * blackman(d / half_width);
                acc += f64::from(x) * w;
                norm += w;
            }
            // Normalising by the kernel's sum keeps unit gain at DC near the edges too.
            if norm.abs() > 1e-9 { (acc / norm) as f32 } else { 0.0 }
        })
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Blackman window over [-1, 1].
fn blackman(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let a = std::f64::consts::PI * (x + 1.0);
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}
