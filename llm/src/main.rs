//! `scribe-draft-worker`: serves generation jobs for the daemon over stdin/stdout frames.
//!
//! It links llama.cpp and nothing else of the appliance: no database, no network. Each job carries
//! one encounter's prompt; nothing is kept between jobs but the loaded model.

use std::process::ExitCode;
use std::time::Instant;

use llm::{Generator, Llama};
use protocol::job::{Request, Response};
use protocol::worker::serve;

fn main() -> ExitCode {
    let mut engine: Option<Llama> = None;
    serve(|request, _payload| match request {
        Request::Load {
            model,
            threads,
            context_tokens,
            ..
        } => {
            let started = Instant::now();
            match Llama::load(&model, context_tokens, threads) {
                Ok(l) => {
                    engine = Some(l);
                    Response::Loaded {
                        engine: "llama.cpp".into(),
                        load_ms: started.elapsed().as_millis() as u64,
                    }
                }
                Err(e) => Response::Failed { reason: e.to_string() },
            }
        }
        Request::Generate(job) => {
            let Some(engine) = engine.as_mut() else {
                return Response::Failed {
                    reason: "no model loaded".into(),
                };
            };
            match engine.generate(&job) {
                Ok(g) => Response::Generated {
                    text: g.text,
                    stats: g.stats,
                },
                Err(llm::LlmError::ContextFull {
                    prompt,
                    answer,
                    context,
                }) => Response::ContextFull {
                    prompt_tokens: prompt as u64,
                    answer_tokens: answer as u64,
                    context_tokens: context as u64,
                },
                Err(e) => Response::Failed { reason: e.to_string() },
            }
        }
        Request::Transcribe => Response::Failed {
            reason: "this is the drafting worker; it does not transcribe".into(),
        },
    })
}
