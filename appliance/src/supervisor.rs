//! Engine workers as child processes, and what happens when one dies.
//!
//! Each engine runs in its own process (`scribe-asr-worker`, `scribe-draft-worker`): the two
//! engines vendor different ggml builds that must not share a binary, and a C++ abort in an engine
//! must cost one job, not the daemon. A worker is started on first use, loads its model once, and
//! is started again after a crash.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use protocol::frame::{FrameError, read_frame, write_frame};
use protocol::job::{ModelRef, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerKind {
    Asr,
    Drafting,
}

impl WorkerKind {
    pub fn binary(self) -> &'static str {
        match self {
            WorkerKind::Asr => "scribe-asr-worker",
            WorkerKind::Drafting => "scribe-draft-worker",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            WorkerKind::Asr => "speech-recognition worker",
            WorkerKind::Drafting => "drafting worker",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start the {what} ({path}): {source}")]
    Spawn {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("the {what} crashed ({status}){detail}; it will be restarted for the next job")]
    Crashed {
        what: &'static str,
        status: String,
        detail: String,
    },
    #[error("the {what} could not load its model: {reason}")]
    Load { what: &'static str, reason: String },
    #[error("the {what} sent a malformed answer: {0}", what = .1)]
    Protocol(String, &'static str),
}

/// What a worker loads when it starts.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub kind: WorkerKind,
    pub exe: PathBuf,
    pub load: Request,
}

struct Running {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The last lines the worker wrote to stderr, for the crash report.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

pub struct Worker {
    spec: WorkerSpec,
    running: Option<Running>,
    /// How the last worker process ended, and its last stderr lines.
    last_exit: Option<(String, Vec<String>)>,
}

impl Worker {
    pub fn new(spec: WorkerSpec) -> Worker {
        Worker {
            spec,
            running: None,
            last_exit: None,
        }
    }

    /// Sends one job and waits for its answer, starting the worker (and loading its model) first
    /// if it is not running. A crash fails this call; the next call starts a fresh worker.
    pub fn call(&mut self, request: &Request, payload: &[u8]) -> Result<Response, WorkerError> {
        if self.running.is_none() {
            self.start()?;
        }
        let result = self.exchange(request, payload);
        if result.is_err() {
            self.reap_after_failure();
        }
        result.map_err(|e| self.explain(e))
    }

    fn start(&mut self) -> Result<(), WorkerError> {
        let what = self.spec.kind.describe();
        let mut child = Command::new(&self.spec.exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Workers need no environment from us, and must not inherit anything that could
            // point them at a network resource.
            .env_clear()
            .spawn()
            .map_err(|source| WorkerError::Spawn {
                what,
                path: self.spec.exe.display().to_string(),
                source,
            })?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Arc::clone(&stderr_tail);
        let kind = self.spec.kind.binary();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Engines' own logging is switched off in the workers; what remains is
                // diagnostics (asserts, our own messages), which carry no transcript text.
                tracing::warn!(worker = kind, "worker stderr: {line}");
                let mut t = tail.lock().expect("stderr tail lock");
                if t.len() == 5 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let stdin = BufWriter::new(child.stdin.take().expect("stdin is piped"));
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        tracing::info!(worker = kind, pid = child.id(), "worker started");
        self.running = Some(Running {
            child,
            stdin,
            stdout,
            stderr_tail,
        });
        match self.exchange(&self.spec.load.clone(), &[]) {
            Ok(Response::Loaded { engine, load_ms }) => {
                tracing::info!(worker = kind, engine, load_ms, "model loaded");
                Ok(())
            }
            Ok(Response::Failed { reason }) => {
                self.stop();
                Err(WorkerError::Load { what, reason })
            }
            Ok(other) => {
                self.stop();
                Err(WorkerError::Protocol(
                    format!("unexpected answer to load: {other:?}"),
                    what,
                ))
            }
            Err(e) => {
                self.reap_after_failure();
                Err(self.explain(e))
            }
        }
    }

    fn exchange(&mut self, request: &Request, payload: &[u8]) -> Result<Response, FrameError> {
        let running = self.running.as_mut().expect("worker is running");
        write_frame(&mut running.stdin, request, payload)?;
        let (response, _payload) = read_frame::<Response>(&mut running.stdout)?;
        Ok(response)
    }

    /// After a pipe error: collect the exit status so the error can say what happened.
    fn reap_after_failure(&mut self) {
        if let Some(running) = self.running.as_mut() {
            // The pipe broke, so the worker is gone or going; make sure, then reap it.
            let status = match running.child.try_wait() {
                Ok(Some(status)) => Some(status),
                _ => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    if running.child.try_wait().ok().flatten().is_none() {
                        let _ = running.child.kill();
                    }
                    running.child.wait().ok()
                }
            };
            let tail: Vec<String> = running
                .stderr_tail
                .lock()
                .expect("stderr tail lock")
                .iter()
                .cloned()
                .collect();
            self.last_exit = Some((
                status.map_or_else(|| "unknown status".to_string(), describe_status),
                tail,
            ));
        }
        self.running = None;
    }

    fn explain(&mut self, e: FrameError) -> WorkerError {
        let what = self.spec.kind.describe();
        match (e, self.last_exit.take()) {
            (FrameError::Closed | FrameError::Io(_), Some((status, tail))) => {
                let detail = tail.last().map(|l| format!(": {l}")).unwrap_or_default();
                tracing::error!(worker = self.spec.kind.binary(), status, "worker crashed");
                WorkerError::Crashed { what, status, detail }
            }
            (e, _) => WorkerError::Protocol(e.to_string(), what),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            drop(running.stdin); // EOF: the worker's serve loop exits cleanly
            let _ = running.child.wait();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGABRT => " SIGABRT, an engine abort",
            libc::SIGKILL => " SIGKILL",
            libc::SIGSEGV => " SIGSEGV",
            libc::SIGTERM => " SIGTERM",
            libc::SIGBUS => " SIGBUS",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        format!("exited with code {}", status.code().unwrap_or(-1))
    }
}

/// The worker executables live beside `scribe` unless `SCRIBE_WORKER_DIR` says otherwise.
pub fn worker_exe(kind: WorkerKind) -> PathBuf {
    let dir = std::env::var_os("SCRIBE_WORKER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from))
                .unwrap_or_default()
        });
    dir.join(kind.binary())
}

pub fn model_ref(path: PathBuf, sha256: &str) -> ModelRef {
    ModelRef {
        path: path.display().to_string(),
        sha256: sha256.to_string(),
    }
}
