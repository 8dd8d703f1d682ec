//! Engine workers as child processes, and what happens when one dies.
//!
//! Each engine runs in its own process (`scribe-asr-worker`, `scribe-draft-worker`): the two
//! engines vendor different ggml builds that must not share a binary, and a C++ abort in an engine
//! must cost one job, not the daemon. A worker is started on first use, loads its model once, and
//! is started again after a crash.
//!
//! Where the service manager runs the workers itself (`SCRIBE_WORKER_SOCKETS`: socket-activated
//! units with a private network and no view of the database), "starting" a worker is connecting
//! to its socket: each connection is a fresh worker process, its stdin and stdout the connection.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

/// Where a worker comes from.
#[derive(Debug, Clone)]
pub enum WorkerPlace {
    /// An executable we start as a child process.
    Exe(PathBuf),
    /// A socket the service manager listens on, starting a worker per connection.
    Socket(PathBuf),
}

/// What a worker loads when it starts.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub kind: WorkerKind,
    pub place: WorkerPlace,
    pub load: Request,
}

enum Connection {
    Child(Child),
    Socket(UnixStream),
}

struct Running {
    connection: Connection,
    stdin: BufWriter<Box<dyn Write + Send>>,
    stdout: BufReader<Box<dyn Read + Send>>,
    /// The last lines the worker wrote to stderr, for the crash report (child processes only;
    /// a socket-activated worker's stderr goes to the service manager's journal).
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
        self.running = Some(match &self.spec.place {
            WorkerPlace::Exe(exe) => self.spawn(exe)?,
            WorkerPlace::Socket(path) => {
                let stream = UnixStream::connect(path).map_err(|source| WorkerError::Spawn {
                    what,
                    path: path.display().to_string(),
                    source,
                })?;
                let clone = |s: &UnixStream| {
                    s.try_clone().map_err(|source| WorkerError::Spawn {
                        what,
                        path: path.display().to_string(),
                        source,
                    })
                };
                let (reader, writer) = (clone(&stream)?, clone(&stream)?);
                tracing::info!(worker = self.spec.kind.binary(), "worker connected");
                Running {
                    connection: Connection::Socket(stream),
                    stdin: BufWriter::new(Box::new(writer)),
                    stdout: BufReader::new(Box::new(reader)),
                    stderr_tail: Arc::default(),
                }
            }
        });
        self.load()
    }

    fn spawn(&self, exe: &std::path::Path) -> Result<Running, WorkerError> {
        let what = self.spec.kind.describe();
        let mut child = Command::new(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Workers need no environment from us, and must not inherit anything that could
            // point them at a network resource.
            .env_clear()
            .spawn()
            .map_err(|source| WorkerError::Spawn {
                what,
                path: exe.display().to_string(),
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
        let stdin: Box<dyn Write + Send> = Box::new(child.stdin.take().expect("stdin is piped"));
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout is piped"));
        tracing::info!(worker = kind, pid = child.id(), "worker started");
        Ok(Running {
            connection: Connection::Child(child),
            stdin: BufWriter::new(stdin),
            stdout: BufReader::new(stdout),
            stderr_tail,
        })
    }

    /// Has the fresh worker load its model.
    fn load(&mut self) -> Result<(), WorkerError> {
        let (what, kind) = (self.spec.kind.describe(), self.spec.kind.binary());
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
            let status = match &mut running.connection {
                Connection::Child(child) => reap(child).map_or_else(|| "unknown status".to_string(), describe_status),
                Connection::Socket(stream) => {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    format!(
                        "its connection closed; the service's journal has its exit status (journalctl -u '{}@*')",
                        self.spec.kind.binary()
                    )
                }
            };
            let tail: Vec<String> = running
                .stderr_tail
                .lock()
                .expect("stderr tail lock")
                .iter()
                .cloned()
                .collect();
            self.last_exit = Some((status, tail));
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
        if let Some(running) = self.running.take() {
            drop(running.stdin); // EOF on a pipe: the worker's serve loop exits cleanly
            match running.connection {
                Connection::Child(mut child) => {
                    let _ = child.wait();
                }
                // The stream has other handles; shutting it down is what ends the worker.
                Connection::Socket(stream) => {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// After a pipe error the worker is gone or going: make sure, then collect its exit status.
fn reap(child: &mut Child) -> Option<std::process::ExitStatus> {
    match child.try_wait() {
        Ok(Some(status)) => Some(status),
        _ => {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            child.wait().ok()
        }
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

/// Where the workers come from: `SCRIBE_WORKER_SOCKETS` names the folder of the service
/// manager's worker sockets (`<binary>.sock`); otherwise they are executables we start.
pub fn worker_place(kind: WorkerKind) -> WorkerPlace {
    match std::env::var_os("SCRIBE_WORKER_SOCKETS") {
        Some(dir) if !dir.is_empty() => WorkerPlace::Socket(PathBuf::from(dir).join(format!("{}.sock", kind.binary()))),
        _ => WorkerPlace::Exe(worker_exe(kind)),
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
