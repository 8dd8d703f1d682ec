//! Every upload format a phone, a dictation recorder or a browser makes decodes to the same 16 kHz
//! speech; every way a file can be broken gets its own clear error. Real files: espeak-ng speech
//! encoded by ffmpeg (installed by `cargo xtask test`).

use std::path::{Path, PathBuf};
use std::process::Command;

use audio::{AudioError, Limits, decode, decode_file};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// About four seconds of speech as a 22,050 Hz WAV (espeak-ng's rate), the reference.
fn speech(dir: &Path) -> PathBuf {
    let wav = dir.join("speech.wav");
    run(Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg("The patient takes metformin five hundred milligrams twice a day."));
    wav
}

fn encode(from: &Path, to: &Path, args: &[&str]) {
    run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(from)
        .args(args)
        .arg(to));
}

/// Energy per 100 ms, for comparing lossy decodes with the original by shape.
fn envelope(samples: &[i16]) -> Vec<f64> {
    samples
        .chunks(1600)
        .map(|c| (c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .collect()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let var = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>().sqrt();
    cov / (var(a, ma) * var(b, mb))
}

const FORMATS: &[(&str, &[&str])] = &[
    ("flac", &[]),
    ("mp3", &["-b:a", "64k"]),
    ("m4a", &["-c:a", "aac", "-b:a", "64k"]),
    ("ogg", &["-c:a", "libvorbis"]),
    ("opus", &["-c:a", "libopus", "-b:a", "32k"]),
    ("webm", &["-c:a", "libopus"]),
    // A stereo 48 kHz file, as a tablet records.
    ("stereo.wav", &["-ac", "2", "-ar", "48000"]),
];

#[test]
fn every_supported_format_decodes_to_the_same_speech() {
    let dir = tempfile::tempdir().unwrap();
    let reference = decode_file(&speech(dir.path()), &Limits::default()).unwrap().pcm;
    let seconds = reference.samples.len() as f64 / 16_000.0;
    assert!(seconds > 2.0, "{seconds}");
    for (ext, args) in FORMATS {
        let file = dir.path().join(format!("visit.{ext}"));
        encode(&dir.path().join("speech.wav"), &file, args);
        let pcm = decode_file(&file, &Limits::default())
            .unwrap_or_else(|e| panic!("{ext}: {e}"))
            .pcm;
        let got = pcm.samples.len() as f64 / 16_000.0;
        // Codecs add priming and padding of a few tens of milliseconds, never more.
        assert!(
            (got - seconds).abs() < 0.1,
            "{ext}: {got:.3} s decoded, {seconds:.3} s spoken"
        );
        // AAC's encoder delay (1024 samples) is not trimmed by every demuxer: allow up to 100 ms.
        let reference = envelope(&reference.samples);
        let r = (0..=1600)
            .step_by(160)
            .map(|lag| correlation(&reference, &envelope(&pcm.samples[lag..])))
            .fold(f64::MIN, f64::max);
        assert!(
            r > 0.9,
            "{ext}: loudness envelope correlates only {r:.3} with the original"
        );
    }
}

#[test]
fn broken_files_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path());
    for (ext, args) in FORMATS.iter().filter(|(ext, _)| !ext.contains('.')) {
        let file = dir.path().join(format!("visit.{ext}"));
        encode(&wav, &file, args);
        let bytes = std::fs::read(&file).unwrap();
        let half = &bytes[..bytes.len() / 2];
        let err = decode(half, &Limits::default()).expect_err(ext);
        assert!(
            matches!(err, AudioError::Incomplete { .. } | AudioError::Corrupt(_)),
            "{ext} cut in half: {err}"
        );
        let header_only = &bytes[..bytes.len().min(64)];
        let err = decode(header_only, &Limits::default()).expect_err(ext);
        assert!(
            !matches!(err, AudioError::Io(_)),
            "{ext} header only: {err} should name the problem"
        );
    }
    // An upload over the size or length limit is refused before it is decoded.
    let flac = dir.path().join("visit.flac");
    let too_short = Limits {
        max_bytes: u64::MAX,
        max_seconds: 2,
    };
    assert!(matches!(
        decode_file(&flac, &too_short),
        Err(AudioError::TooLong { limit: 2, .. })
    ));
    let too_small = Limits {
        max_bytes: 1000,
        max_seconds: 3600,
    };
    assert!(matches!(
        decode_file(&flac, &too_small),
        Err(AudioError::TooLarge { limit: 1000, .. })
    ));
}

/// Digital silence made by sox at `rate` Hz with `channels` channels, as FLAC: constant subframes,
/// a few bytes per block (no dither).
fn flac_of_silence(dir: &Path, rate: u32, channels: u8, seconds: &str) -> Vec<u8> {
    let path = dir.join(format!("silence-{rate}-{channels}-{seconds}.flac"));
    run(Command::new("sox")
        .args([
            "-D",
            "-n",
            "-r",
            &rate.to_string(),
            "-c",
            &channels.to_string(),
            "-b",
            "16",
        ])
        .arg(&path)
        .args(["trim", "0", seconds]));
    std::fs::read(&path).unwrap()
}

/// The attack: a 214 KB FLAC of 8 channels at 655,350 Hz of constant subframes made the server
/// try to allocate 8.6 GB and die. A recording is now refused on what it declares past 192 kHz or
/// 8 channels, before a decoder is made.
#[test]
fn a_file_declaring_an_absurd_rate_or_channel_count_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, channels) in [(655_350, 8), (384_000, 2)] {
        let flac = flac_of_silence(dir.path(), rate, channels, "0.1");
        let err = decode(&flac, &Limits::default()).expect_err("refused");
        assert!(
            matches!(err, AudioError::BeyondCaps { rate: r, .. } if r == rate),
            "{rate} Hz x {channels}: {err}"
        );
        assert!(err.to_string().contains("192000 Hz"), "{err}");
    }
    // WAV too (hound writes any rate and channel count).
    let mut wav = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 12,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut wav, spec).unwrap();
    for _ in 0..12 * 480 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let err = decode(&wav.into_inner(), &Limits::default()).expect_err("refused");
    assert!(matches!(err, AudioError::BeyondCaps { channels: 12, .. }), "{err}");
}

/// Within the caps, a small file can still decode to far more audio than a visit: 8 channels at
/// 192 kHz is 16 times 48 kHz stereo. The budget counts decoded samples, not seconds, and memory
/// holds only the 16 kHz mono result.
#[test]
fn a_small_file_that_decodes_to_too_much_audio_is_refused_part_way() {
    let dir = tempfile::tempdir().unwrap();
    // Ten seconds of digital silence, 8 channels at 192 kHz: small as FLAC.
    let bytes = flac_of_silence(dir.path(), 192_000, 8, "10");
    assert!(bytes.len() < 100_000, "{} bytes", bytes.len());
    // Shorter than the limit in seconds, but 10 s x 8 x 192 kHz is more than the budget of
    // 61 s of 48 kHz stereo.
    let limits = Limits {
        max_bytes: u64::MAX,
        max_seconds: 60,
    };
    let err = decode(&bytes, &limits).expect_err("refused");
    assert!(
        matches!(err, AudioError::TooMuchAudio { limit_seconds: 60, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lower sample rate"), "{err}");
    // The same audio in stereo at 48 kHz is a (silent) visit like any other.
    let fine = flac_of_silence(dir.path(), 48_000, 2, "10");
    let recording = decode(&fine, &limits).unwrap();
    assert_eq!(recording.pcm.samples.len(), 160_000);
}
