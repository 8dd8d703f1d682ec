//! The vocabulary shared by the daemon and its engine workers.
//!
//! Everything here crosses a process boundary (daemon ⇄ worker over a pipe) or a storage boundary
//! (daemon ⇄ encrypted store), so the types are plain data with serde derives and no behaviour
//! that needs an engine, a database or a network.

pub mod draft;
pub mod frame;
pub mod job;
pub mod transcript;
pub mod worker;

pub use draft::{Draft, Flag, FlagKind, Section, Sentence};
pub use transcript::{Segment, SegmentId, Speaker, Transcript, Word};
