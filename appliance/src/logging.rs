//! Logs go to `<home>/logs/scribe.log` (and warnings to stderr). Events carry encounter ids,
//! counts and durations: never transcript or note text.

use std::path::Path;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

pub fn init(logs_dir: Option<&Path>) {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(LevelFilter::WARN);
    let file = logs_dir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("scribe.log"))
            .ok()?;
        Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .with_filter(LevelFilter::INFO),
        )
    });
    let _ = tracing_subscriber::registry().with(stderr).with(file).try_init();
}
