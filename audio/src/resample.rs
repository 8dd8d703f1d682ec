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

/// The same band-limited resampler over a stream that arrives in pieces (a microphone): output
/// sample `n` is produced once the input it depends on has arrived, so pieces join seamlessly and
/// the result equals [`resample`] over the whole stream, but for the very end.
pub struct StreamResampler {
    ratio: f64,
    cutoff: f64,
    half_width: f64,
    /// Input not yet needed by any future output, starting at absolute index `start`.
    buf: Vec<f32>,
    start: u64,
    next_out: u64,
}

impl StreamResampler {
    pub fn new(from_rate: u32, to_rate: u32) -> StreamResampler {
        let ratio = f64::from(to_rate) / f64::from(from_rate);
        let cutoff = ratio.min(1.0) * 0.97;
        StreamResampler {
            ratio,
            cutoff,
            half_width: HALF_TAPS / cutoff,
            buf: Vec::new(),
            start: 0,
            next_out: 0,
        }
    }

    /// Adds input and returns every output sample that can now be computed.
    pub fn push(&mut self, input: &[f32]) -> Vec<f32> {
        self.buf.extend_from_slice(input);
        let end = self.start + self.buf.len() as u64;
        let mut out = Vec::new();
        loop {
            let t = self.next_out as f64 / self.ratio;
            if t + self.half_width >= end as f64 {
                break;
            }
            out.push(self.sample_at(t));
            self.next_out += 1;
        }
        let keep_from = ((self.next_out as f64 / self.ratio) - self.half_width).floor().max(0.0) as u64;
        if keep_from > self.start {
            let drop = ((keep_from - self.start) as usize).min(self.buf.len());
            self.buf.drain(..drop);
            self.start += drop as u64;
        }
        out
    }

    /// The outputs that were waiting for input that will not come, once the stream has ended:
    /// with them, the whole output equals [`resample`] over the whole input.
    pub fn finish(&mut self) -> Vec<f32> {
        let total_in = self.start + self.buf.len() as u64;
        let out_len = (total_in as f64 * self.ratio).round() as u64;
        let mut out = Vec::new();
        while self.next_out < out_len && !self.buf.is_empty() {
            out.push(self.sample_at(self.next_out as f64 / self.ratio));
            self.next_out += 1;
        }
        out
    }

    fn sample_at(&self, t: f64) -> f32 {
        let end = self.start + self.buf.len() as u64;
        let first = ((t - self.half_width).ceil().max(0.0) as u64).max(self.start);
        let last = ((t + self.half_width).floor() as u64).min(end.saturating_sub(1));
        let (mut acc, mut norm) = (0.0, 0.0);
        for k in first..=last {
            let d = t - k as f64;
            let w = self.cutoff * sinc(self.cutoff * d) * blackman(d / self.half_width);
            acc += f64::from(self.buf[(k - self.start) as usize]) * w;
            norm += w;
        }
        if norm.abs() > 1e-9 { (acc / norm) as f32 } else { 0.0 }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn streaming_in_pieces_matches_resampling_the_whole() {
        let input: Vec<f32> = (0..48_000)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5)
            .collect();
        let whole = resample(&input, 48_000, 16_000);
        let mut stream = StreamResampler::new(48_000, 16_000);
        let mut pieces = Vec::new();
        for chunk in input.chunks(1_023) {
            pieces.extend(stream.push(chunk));
        }
        // All but the last few outputs (which wait for input that never comes) are produced...
        assert!(pieces.len() > whole.len() - 40, "{} of {}", pieces.len(), whole.len());
        // ...and once the stream ends, the rest: the same samples as resampling the whole.
        pieces.extend(stream.finish());
        assert_eq!(pieces.len(), whole.len());
        for (i, (a, b)) in pieces.iter().zip(&whole).enumerate() {
            assert!((a - b).abs() < 1e-5, "sample {i}: {a} vs {b}");
        }
    }
}
