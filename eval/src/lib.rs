//! Measuring drafts against clinicians' reference notes.
//!
//! Loading ACI-Bench, splitting reference notes into the four ACI parts, ROUGE, facts, word error rate,
//! speech synthesis for the audio path, and the report. Drafting itself happens in the appliance,
//! through the same path as a real visit.

pub mod aci;
pub mod facts;
pub mod planted;
pub mod report;
pub mod rouge;
pub mod speech;
