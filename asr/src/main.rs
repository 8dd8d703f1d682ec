//! `scribe-asr-worker`: serves transcription jobs for the daemon over stdin/stdout frames.
//!
//! It links whisper.cpp and nothing else of the appliance: no database, no network, no other
//! encounter than the audio in the current frame.

use std::process::ExitCode;
use std::time::Instant;

use asr::{Transcriber, Whisper};
use protocol::frame::pcm_from_bytes;
use protocol::job::{JobStats, Request, Response};
use protocol::worker::{peak_rss_kb, serve};

fn main() -> ExitCode {
    let mut engine: Option<Whisper> = None;
    serve(|request, payload| match request {
        Request::Load {
            model,
            threads,
            language,
            initial_prompt,
            ..
        } => {
            let started = Instant::now();
            match Whisper::load(&model, language, threads, initial_prompt.as_deref()) {
                Ok(w) => {
                    engine = Some(w);
                    Response::Loaded {
                        engine: format!("whisper.cpp {}", whisper_rs::WHISPER_CPP_VERSION),
                        load_ms: started.elapsed().as_millis() as u64,
                    }
                }
                Err(e) => Response::Failed { reason: e.to_string() },
            }
        }
        Request::Transcribe => {
            let Some(engine) = engine.as_mut() else {
                return Response::Failed {
                    reason: "no model loaded".into(),
                };
            };
            let pcm: Vec<f32> = pcm_from_bytes(&payload)
                .iter()
                .map(|&s| f32::from(s) / 32768.0)
                .collect();
            let started = Instant::now();
            match engine.transcribe(&pcm) {
                Ok(segments) => Response::Transcript {
                    segments,
                    stats: JobStats {
                        wall_ms: started.elapsed().as_millis() as u64,
                        audio_ms: pcm.len() as u64 / 16,
                        peak_rss_kb: peak_rss_kb(),
                        ..JobStats::default()
                    },
                },
                Err(e) => Response::Failed { reason: e.to_string() },
            }
        }
        Request::Generate(_) | Request::Prefill(_) => Response::Failed {
            reason: "this is the speech-recognition worker; it does not generate text".into(),
        },
    })
}
