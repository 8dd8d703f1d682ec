//! Setting up an appliance: the model manifest, model installation and verification, the
//! importer that turns CTranslate2 Whisper models into whisper.cpp's format, and the egress
//! policy (the networks the appliance may talk to).
//!
//! Installing runs at provisioning time only, which is why it may reach the package registries and
//! the rest may not. The egress allow-list is also checked at run time, before anything binds or
//! connects.

mod ct2;
mod egress;
mod files;
mod install;
mod manifest;
mod mel;
mod tls;
mod update;

pub use ct2::{ImportError, import_ct2};
pub use egress::{AllowList, Cidr, CidrError, PRIVATE_NETWORKS};
pub use files::replace_in_folder;
pub use install::{Fetch, InstallError, PipFetcher, install, installed_path};
pub use manifest::{Format, Manifest, ManifestError, ModelKind, ModelSpec, Package, Profile};
pub use tls::{TlsError, TlsFiles, TlsOutcome, issue as issue_tls};
pub use update::{Applied, BINARIES, BundleManifest, Release, Releases, UpdateError, Verified, Version, keygen, pack};
