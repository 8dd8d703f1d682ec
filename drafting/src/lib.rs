//! Drafting without an engine: templates, the grammar a draft must follow, the prompt, and the
//! parsing and validation of what the model wrote.
//!
//! The model itself runs in the drafting worker (crate `llm`); everything here is plain code so the
//! daemon can build prompts and check drafts without linking llama.cpp.

mod grammar;
mod numbers;
mod parse;
mod prompt;
mod steering;
mod template;
mod validate;

pub use grammar::{grammar, max_tokens};
pub use numbers::numbers_in;
pub use parse::{ParseError, drop_repeated_sentences, parse};
pub use prompt::Prompt;
pub use steering::{SpokenInstruction, spoken_instructions};
pub use template::{Audience, PATIENT_INSTRUCTIONS, SectionSpec, Template, TemplateError};
pub use validate::{ValidationError, validate};
