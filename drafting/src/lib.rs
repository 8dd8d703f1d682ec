//! Drafting without an engine: templates, the grammar a draft must follow, the prompt, and the
//! parsing and validation of what the model wrote.
//!
//! The model itself runs in the drafting worker (crate `llm`); everything here is plain code so the
//! daemon can build prompts and check drafts without linking llama.cpp.

mod facts;
mod grammar;
mod medications;
mod numbers;
mod parse;
mod prompt;
mod steering;
mod support;
mod template;
mod validate;

pub use facts::{Fact, FactKind, facts, transcript_facts};
pub use grammar::{grammar, max_tokens};
pub use numbers::numbers_in;
pub use parse::{ParseError, drop_filler, drop_repeated_sentences, parse};
pub use prompt::Prompt;
pub use steering::{SpokenInstruction, spoken_instructions};
pub use support::{ConceptKind, has_clinical_content};
pub use template::{Audience, PATIENT_INSTRUCTIONS, SectionSpec, Template, TemplateError};
pub use validate::{CitationError, ValidationError, check_sentence, drop_unstated_readings, validate};
