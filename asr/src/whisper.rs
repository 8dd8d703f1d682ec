use protocol::job::ModelRef;
use protocol::{Segment, Speaker};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::words::{Token, words};
use crate::{AsrError, Transcriber};

pub struct Whisper {
    ctx: WhisperContext,
    language: Option<String>,
    threads: u32,
    /// The clinic's vocabulary, tokenized once: the text whisper takes as preceding each window.
    prompt: Vec<i32>,
}

/// Whisper conditions on at most half its 448-token text context; more would be cut anyway.
const MAX_PROMPT_TOKENS: usize = 220;

impl Whisper {
    /// Verifies the model file's SHA-256, then loads it.
    pub fn load(
        model: &ModelRef,
        language: Option<String>,
        threads: u32,
        initial_prompt: Option<&str>,
    ) -> Result<Whisper, AsrError> {
        model.verify()?;
        // Route whisper.cpp's and ggml's own logging through whisper-rs, which drops it: the
        // worker's stderr carries only our id-and-count messages.
        whisper_rs::install_logging_hooks();
        let ctx = WhisperContext::new_with_params(&model.path, WhisperContextParameters::default())
            .map_err(|e| AsrError::Engine(format!("cannot load {}: {e}", model.path)))?;
        let prompt = match initial_prompt {
            Some(text) => {
                // Tokenizing into a buffer too small fails; tokenize generously and keep the
                // start, which names the most important terms first.
                let mut tokens = ctx
                    .tokenize(text, text.len() + 16)
                    .map_err(|e| AsrError::Engine(format!("cannot tokenize the vocabulary: {e}")))?;
                if tokens.len() > MAX_PROMPT_TOKENS {
                    eprintln!(
                        "scribe-asr-worker: the vocabulary is {} tokens; whisper reads the first {MAX_PROMPT_TOKENS}",
                        tokens.len()
                    );
                    tokens.truncate(MAX_PROMPT_TOKENS);
                }
                tokens
            }
            None => Vec::new(),
        };
        Ok(Whisper {
            ctx,
            language,
            threads: threads.max(1),
            prompt,
        })
    }
}

impl Transcriber for Whisper {
    fn transcribe(&mut self, pcm: &[f32]) -> Result<Vec<Segment>, AsrError> {
        if crate::hygiene::is_silence(pcm) {
            return Ok(Vec::new());
        }
        let engine = |e: whisper_rs::WhisperError| AsrError::Engine(e.to_string());
        let mut state = self.ctx.create_state().map_err(engine)?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(self.language.as_deref());
        params.set_translate(false);
        params.set_token_timestamps(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        if !self.prompt.is_empty() {
            params.set_tokens(&self.prompt);
        }
        // whisper's encoder always works on 30 s of audio; a short window (a live utterance) is
        // padded with silence to that. Sizing the encoder to the audio plus a margin makes a
        // 4-second utterance several times cheaper, which is what keeps live lag low.
        let seconds = pcm.len() / 16_000;
        if seconds < 25 {
            params.set_audio_ctx(((seconds + 3) * 50) as i32);
        }
        // whisper.cpp prints transcript text with these; text must never reach a log.
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        state.full(params, pcm).map_err(engine)?;

        let eot = self.ctx.token_eot();
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let text = seg.to_str_lossy().map_err(engine)?.trim().to_string();
            if text.is_empty() {
                continue;
            }
            let tokens: Vec<Token> = (0..seg.n_tokens())
                .filter_map(|j| seg.get_token(j))
                .filter(|t| t.token_id() < eot)
                .filter_map(|t| {
                    let data = t.token_data();
                    Some(Token {
                        text: t.to_str_lossy().ok()?.into_owned(),
                        start_ms: data.t0.max(0) as u64 * 10,
                        end_ms: data.t1.max(0) as u64 * 10,
                        p: data.p,
                    })
                })
                .collect();
            let words = words(&tokens);
            let confidence = if words.is_empty() {
                0.0
            } else {
                words.iter().map(|w| w.confidence).sum::<f32>() / words.len() as f32
            };
            segments.push(Segment {
                id: segments.len() as u32 + 1,
                start_ms: seg.start_timestamp().max(0) as u64 * 10,
                end_ms: seg.end_timestamp().max(0) as u64 * 10,
                speaker: Speaker::Unknown,
                text,
                confidence,
                words,
            });
        }
        crate::hygiene::drop_wordless(&mut segments);
        crate::hygiene::collapse_loops(&mut segments);
        Ok(segments)
    }
}
