//! One pipeline per home: whoever holds `pipeline.lock` (flock) processes encounters.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

pub struct PipelineLock {
    _file: File,
}

impl PipelineLock {
    /// Takes the lock if nobody holds it; `None` means another process (the daemon) does.
    pub fn try_acquire(path: &Path) -> Result<Option<PipelineLock>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            Ok(Some(PipelineLock { _file: file }))
        } else {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(err).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}
