//! The `scribe` binary's library part: what other tools (the fuzz targets) need to reach without
//! running the binary. Everything else lives in the binary's own modules.

pub mod config;
