//! `scribe-draft-worker`: serves generation jobs for the daemon over stdin/stdout frames.
//!
//! It links llama.cpp and nothing else of the appliance: no database, no network. Each job carries
//! one encounter's prompt; between jobs the worker keeps the loaded model and, for a job with a
//! `cache_key`, that one prompt's KV cache, dropped as soon as a job for anything else arrives.

use std::process::ExitCode;
use std::time::Instant;

use llm::{Generator, Llama};
use protocol::job::{Request, Response};
use protocol::worker::serve;

fn main() -> ExitCode {
    let mut engine: Option<Llama> = None;
    serve(|request, _payload| {
        let prefill = matches!(request, Request::Prefill(_));
        match request {
            Request::Load {
                model,
                threads,
                context_tokens,
                ..
            } => {
                let started = Instant::now();
                match Llama::load(&model, context_tokens, threads) {
                    Ok(l) => {
                        let description = l.description();
                        engine = Some(l);
                        Response::Loaded {
                            engine: description,
                            load_ms: started.elapsed().as_millis() as u64,
                        }
                    }
                    Err(e) => Response::Failed { reason: e.to_string() },
                }
            }
            Request::Generate(job) | Request::Prefill(job) => {
                let Some(engine) = engine.as_mut() else {
                    return Response::Failed {
                        reason: "no model loaded".into(),
                    };
                };
                let done = if prefill {
                    engine.prefill(&job).map(|stats| Response::Prefilled { stats })
                } else {
                    engine.generate(&job).map(|g| Response::Generated {
                        text: g.text,
                        stats: g.stats,
                    })
                };
                done.unwrap_or_else(|e| match e {
                    llm::LlmError::ContextFull {
                        prompt,
                        answer,
                        context,
                    } => Response::ContextFull {
                        prompt_tokens: prompt as u64,
                        answer_tokens: answer as u64,
                        context_tokens: context as u64,
                    },
                    e => Response::Failed { reason: e.to_string() },
                })
            }
            Request::Transcribe => Response::Failed {
                reason: "this is the drafting worker; it does not transcribe".into(),
            },
        }
    })
}
