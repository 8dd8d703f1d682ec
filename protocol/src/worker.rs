//! The skeleton every engine worker runs: frames in on stdin, frames out on stdout.
//!
//! C++ engines log with printf and friends. A stray byte on stdout would corrupt the frame
//! stream, so the real stdout is kept privately for frames and fd 1 is pointed at stderr before any
//! engine code runs.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::process::ExitCode;

use sha2::{Digest, Sha256};

use crate::frame::{FrameError, read_frame, write_frame};
use crate::job::{ModelRef, Request, Response};

/// Serves requests until the daemon closes the pipe. `handle` gets each request and its payload.
pub fn serve(mut handle: impl FnMut(Request, Vec<u8>) -> Response) -> ExitCode {
    if let Err(e) = isolate_network() {
        // Not fatal: some kernels forbid namespaces to unprivileged users. The service unit's
        // PrivateNetwork=yes isolates the worker there; say so, so it shows in the daemon's log.
        eprintln!("worker: cannot leave the host network namespace ({e}); relying on the service's network isolation");
    }
    let frames_out = match private_stdout() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("worker: cannot set up the frame pipe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = BufWriter::new(frames_out);
    let mut input = BufReader::new(std::io::stdin().lock());
    loop {
        let (request, payload) = match read_frame::<Request>(&mut input) {
            Ok(r) => r,
            Err(FrameError::Closed) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker: bad request frame: {e}");
                return ExitCode::FAILURE;
            }
        };
        let response = handle(request, payload);
        if let Err(e) = write_frame(&mut out, &response, &[]) {
            eprintln!("worker: cannot answer: {e}");
            return ExitCode::FAILURE;
        }
    }
}

/// Moves this process into a new, empty network namespace: its only interface is a loopback that
/// is down, so no engine code can reach any network, whatever it tries. Must run while the
/// process is still single-threaded (unshare(CLONE_NEWUSER) refuses otherwise).
fn isolate_network() -> std::io::Result<()> {
    // SAFETY: unshare only changes this process's namespace membership.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) == 0 {
            return Ok(());
        }
        // Without CAP_SYS_ADMIN, a new user namespace grants it for the network namespace.
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0 {
            return Ok(());
        }
    }
    Err(std::io::Error::last_os_error())
}

/// Duplicates stdout for frames and points fd 1 at stderr.
fn private_stdout() -> std::io::Result<File> {
    // SAFETY: dup/dup2 on the process's own standard descriptors; the new fd is owned by the File.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

/// This process's peak resident set size, in KiB.
pub fn peak_rss_kb() -> u64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0 {
            usage.ru_maxrss as u64
        } else {
            0
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelCheckError {
    #[error("model file {0} cannot be read: {1}")]
    Unreadable(String, std::io::Error),
    #[error(
        "model file {path} has SHA-256 {actual}, expected {expected}: refusing to load it (reinstall with `scribe models install`)"
    )]
    HashMismatch {
        path: String,
        expected: String,
        actual: String,
    },
}

impl ModelRef {
    /// Re-hashes the file; engines call this immediately before loading it.
    pub fn verify(&self) -> Result<(), ModelCheckError> {
        let actual =
            sha256_file(Path::new(&self.path)).map_err(|e| ModelCheckError::Unreadable(self.path.clone(), e))?;
        if actual == self.sha256 {
            Ok(())
        } else {
            Err(ModelCheckError::HashMismatch {
                path: self.path.clone(),
                expected: self.sha256.clone(),
                actual,
            })
        }
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut r = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}
