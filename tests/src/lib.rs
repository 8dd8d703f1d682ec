//! The end-to-end harness: a temporary appliance home, the built `scribe` binaries, the shared
//! verified model store, and visits synthesized with espeak-ng.
//!
//! The tests drive the real command line, as an IT admin or a script would. `cargo xtask test`
//! builds the binaries and installs the test models first; run alone, the harness says what is
//! missing instead of skipping.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod browser;
pub mod crash;
pub mod llama_sources;
pub mod web;

pub use eval::speech::{Voice, synthesize};

/// A short primary-care visit used by the demo and the end-to-end tests.
pub const VISIT: &[(Voice, &str)] = &[
    (Voice::Doctor, "Good morning. What brings you in today?"),
    (
        Voice::Patient,
        "I have had a cough and a fever for three days. My chest hurts when I cough.",
    ),
    (Voice::Doctor, "Are you taking any medications right now?"),
    (
        Voice::Patient,
        "Just lisinopril, ten milligrams a day, for my blood pressure.",
    ),
    (
        Voice::Doctor,
        "Your temperature is one hundred and one degrees, and your lungs sound clear.",
    ),
    (
        Voice::Doctor,
        "I think this is viral bronchitis. Drink plenty of fluids and take acetaminophen for the fever. Come back if you are not better in one week.",
    ),
];

/// A short typed visit in ACI-Bench form, for tests that start from a transcript.
pub const DIALOGUE: &str = "\
[doctor] Good morning. What brings you in today?
[patient] I have had a cough and a sore throat for two weeks.
[doctor] Any fever or shortness of breath?
[patient] No fever. I take lisinopril 10 mg every day for my blood pressure.
[doctor] Your lungs sound clear and your throat is a little red.
[doctor] This looks like a viral infection. Rest, drink fluids, and come back if it is not better in a week.
";

/// Words of [`VISIT`] that a recognizer as small as tiny.en reliably gets, and that must never
/// appear in a log or in the database file's bytes.
pub const VISIT_KEY_WORDS: &[&str] = &["cough", "fever", "chest", "blood pressure", "temperature", "fluids"];

/// Where the built binaries are: `SCRIBE_BIN_DIR`, else beside this test executable's `deps/`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCRIBE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    for bin in ["scribe", "scribe-asr-worker", "scribe-draft-worker"] {
        assert!(
            dir.join(bin).exists(),
            "{bin} is not built in {}; run `cargo xtask test` (or `cargo build --release --bins` first)",
            dir.display()
        );
    }
    dir
}

/// The model profile the tests run: `SCRIBE_TEST_PROFILE`, else "test" (the small, fast pair).
/// `SCRIBE_TEST_PROFILE=default` runs the same tests on the shipped models.
pub fn profile() -> String {
    std::env::var("SCRIBE_TEST_PROFILE").unwrap_or_else(|_| "test".into())
}

/// The shared model store with the test profile installed (installed now if it is not).
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("SCRIBE_MODELS").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        home.join(".cache/scribe/models")
    });
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let out = Command::new(bin_dir().join("scribe"))
            .args(["models", "install", "--profile", &profile(), "--models"])
            .arg(&dir)
            .output()
            .expect("run scribe models install");
        assert!(
            out.status.success(),
            "installing the test models failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir
}

/// A fresh appliance home in a temporary directory, initialised with the test profile.
pub struct Appliance {
    pub home: tempfile::TempDir,
    pub models: PathBuf,
}

impl Appliance {
    pub fn new() -> Appliance {
        Appliance::init(tempfile::tempdir().expect("temp home"))
    }

    /// An appliance whose home is a new folder inside `parent` (a [`SmallDisk`], say).
    pub fn new_in(parent: &Path) -> Appliance {
        Appliance::init(tempfile::tempdir_in(parent).expect("temp home"))
    }

    fn init(home: tempfile::TempDir) -> Appliance {
        let app = Appliance {
            home,
            models: models_dir(),
        };
        let out = app.run(&["init", "--profile", &profile()], None);
        assert!(
            out.status.success(),
            "scribe init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Drafting patient instructions after every note would slow every test that drafts one;
        // the tests of the instructions (and the end-to-end visit) switch them back on.
        app.set_config("patient_instructions = true", "patient_instructions = false");
        app
    }

    /// Switches the patient instructions (off in test homes) back on, as a real box has them.
    pub fn with_patient_instructions(self) -> Appliance {
        self.set_config("patient_instructions = false", "patient_instructions = true");
        self
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("scribe"));
        cmd.arg("--home")
            .arg(self.home())
            .arg("--models")
            .arg(&self.models)
            .args(args);
        // Tests share two cores with each other: one thread per engine keeps them from starving.
        // Tests run side by side: each daemon's review app gets a free loopback port.
        cmd.env("SCRIBE_THREADS", "1")
            .env("SCRIBE_WEB_LISTEN", "127.0.0.1:0")
            .env_remove("SCRIBE_HOME")
            .env_remove("SCRIBE_PROFILE");
        cmd
    }

    /// Runs `scribe ARGS`, feeding `stdin` if given.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn scribe");
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        drop(pipe);
        child.wait_with_output().expect("wait for scribe")
    }

    /// `scribe ingest ARGS`; returns the output and the id on stdout's last line, if any.
    pub fn ingest(&self, args: &[&str]) -> (Output, Option<String>) {
        let mut full = vec!["ingest"];
        full.extend_from_slice(args);
        let out = self.run(&full, None);
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty());
        (out, id)
    }

    /// Ingests [`DIALOGUE`] as a visit `clinician` recorded for `physician` to sign, labelled
    /// `label`, and returns its encounter id.
    pub fn ingest_dialogue(&self, label: &str, clinician: &str, physician: &str) -> String {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("visit.txt");
        std::fs::write(&path, DIALOGUE).expect("write the dialogue");
        let (out, id) = self.ingest(&[
            "--transcript",
            path.to_str().expect("a UTF-8 path"),
            "--label",
            label,
            "--clinician",
            clinician,
            "--physician",
            physician,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        id.expect("ingest prints the encounter id")
    }

    pub fn show(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["show", id, "--json"], None);
        assert!(
            out.status.success(),
            "scribe show failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("show --json prints JSON")
    }

    /// Polls `scribe show` until the encounter has left recording, transcribing and drafting (a
    /// daemon is doing the work), and returns what `show --json` says then.
    pub fn wait_until_settled(&self, id: &str, timeout: std::time::Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let show = self.show(id);
            if !matches!(show["state"].as_str(), Some("recording" | "transcribing" | "drafting")) {
                return show;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "encounter {id} never settled: {show}"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    /// Starts `scribe daemon` with no review app (the pipeline only), its output discarded.
    pub fn spawn_pipeline_daemon(&self, env: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = self.command(&["daemon"]);
        cmd.env("SCRIBE_WEB_LISTEN", "")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn scribe daemon")
    }

    /// Ingests a typed `dialogue` and has physician `dr_house` (added here) sign its draft.
    /// Returns the encounter id and dr_house's password.
    pub fn signed_typed_visit(&self, dialogue: &str) -> (String, String) {
        let path = self.home().join("dialogue.txt");
        std::fs::write(&path, dialogue).expect("write the dialogue");
        let (out, id) = self.ingest(&["--transcript", path.to_str().expect("UTF-8 path")]);
        assert!(out.status.success(), "{}", text(&out));
        let id = id.expect("an encounter id");
        let password = self.add_user("dr_house", "physician");
        let out = self.run(
            &["sign", &id, "--user", "dr_house", "--acknowledge-flags"],
            Some(&format!("{password}\n")),
        );
        assert!(out.status.success(), "{}", text(&out));
        (id, password)
    }

    /// Adds a user; the password is `correct horse <name>`.
    pub fn add_user(&self, name: &str, role: &str) -> String {
        let password = format!("correct horse {name}");
        let out = self.run(
            &["user", "add", name, "--role", role, "--password-stdin"],
            Some(&format!("{password}\n")),
        );
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        password
    }

    /// Replaces `from` with `to` in scribe.toml (the commented defaults `scribe init` wrote).
    pub fn set_config(&self, from: &str, to: &str) {
        let path = self.home().join("scribe.toml");
        let text = std::fs::read_to_string(&path).expect("read scribe.toml");
        assert!(text.contains(from), "scribe.toml has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write scribe.toml");
    }

    pub fn db(&self) -> PathBuf {
        self.home().join("scribe.db")
    }

    pub fn key(&self) -> PathBuf {
        self.home().join("scribe.key")
    }

    /// Opens the database as an attacker holding the key would: raw SQL, no Scribe API.
    pub fn open_raw(&self) -> rusqlite::Connection {
        open_raw(&self.db(), &self.key())
    }

    /// How many encounters the store holds, whatever their state.
    pub fn encounter_count(&self) -> i64 {
        self.open_raw()
            .query_row("SELECT count(*) FROM encounters", [], |r| r.get(0))
            .expect("count encounters")
    }
}

/// A small tmpfs mounted on a temporary folder, unmounted on drop: a disk that fills up or goes
/// read-only when a test says. Mounting needs root (CAP_SYS_ADMIN), as the egress tests' network
/// namespaces do.
pub struct SmallDisk {
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk to the last byte with a filler file.
    pub fn fill(&self) {
        let mut filler = std::fs::File::create(self.path().join("filler")).expect("create the filler");
        let block = vec![0u8; 64 * 1024];
        loop {
            match filler.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // The last partial block: byte by byte until nothing more fits.
        while filler.write(&[0]).is_ok_and(|n| n == 1) {}
    }

    /// Deletes the filler: the disk has room again.
    pub fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).expect("remove the filler");
    }

    /// Remounts the disk read-only (`true`) or read-write.
    pub fn read_only(&self, read_only: bool) {
        let how = if read_only { "remount,ro" } else { "remount,rw" };
        let out = Command::new("mount")
            .args(["-o", how])
            .arg(self.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -o {how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a daemon the test is still tearing down may hold a file open.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A bench's command line: `--name value` options, and `--out DIR` for its report.
pub struct BenchArgs(Vec<String>);

impl BenchArgs {
    pub fn from_env() -> BenchArgs {
        BenchArgs(std::env::args().collect())
    }

    /// The value after `name`, if it was given.
    pub fn get(&self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|a| a == name)?;
        Some(
            self.0
                .get(at + 1)
                .unwrap_or_else(|| panic!("{name} needs a value"))
                .clone(),
        )
    }

    /// Where the report goes: `--out DIR`, default `docs/bench`.
    pub fn out(&self) -> PathBuf {
        self.get("--out").map_or_else(
            || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench")),
            PathBuf::from,
        )
    }
}

/// Opens the database at `db` with the key in `key`: raw SQL, no Scribe API (for threads that
/// cannot share an [`Appliance`]).
pub fn open_raw(db: &Path, key: &Path) -> rusqlite::Connection {
    let key = std::fs::read_to_string(key).expect("read the key");
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.pragma_update(None, "key", format!("x'{}'", key.trim()))
        .expect("key the database");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

impl Default for Appliance {
    fn default() -> Self {
        Appliance::new()
    }
}

/// Text of stdout and stderr together, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The transcript's text, lowercased, segments joined by spaces, from `scribe show --json`.
pub fn transcript_lowercase(show: &serde_json::Value) -> String {
    show["transcript"]["segments"]
        .as_array()
        .map(|segments| {
            segments
                .iter()
                .map(|s| s["text"].as_str().unwrap_or("").to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The draft's section names, in order, from `scribe show --json`.
pub fn section_names(show: &serde_json::Value) -> Vec<String> {
    show["draft"]["sections"]
        .as_array()
        .map(|sections| {
            sections
                .iter()
                .filter_map(|s| s["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// One bar of a benchmark plot; Scribe's own are drawn in blue, the peers' in grey.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub ours: bool,
}

impl Bar {
    pub fn new(label: &str, value: f64, ours: bool) -> Bar {
        Bar {
            label: label.into(),
            value,
            ours,
        }
    }
}

/// Panels of labelled horizontal bars, each panel scaled to its own largest value: `(title,
/// unit after each value, bars)`. Plain SVG, for docs/bench.
pub fn bars_svg(panels: &[(&str, &str, Vec<Bar>)]) -> String {
    let (label_w, bar_w, row_h) = (260.0, 380.0, 22.0);
    let mut body = String::new();
    let mut y = 30.0;
    for (title, unit, bars) in panels {
        body += &format!("<text x=\"10\" y=\"{y}\" font-weight=\"bold\">{title}</text>\n");
        y += 10.0;
        let max = bars.iter().map(|b| b.value).fold(f64::MIN, f64::max).max(1e-9);
        for bar in bars {
            let w = bar_w * bar.value / max;
            let colour = if bar.ours { "#2b6cb0" } else { "#a0aec0" };
            body += &format!(
                "<text x=\"10\" y=\"{ty}\">{label}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{colour}\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty}\">{value:.1}{unit}</text>\n",
                label = bar.label,
                value = bar.value,
                ty = y + 12.0,
                tx = label_w + w + 6.0
            );
            y += row_h;
        }
        y += 24.0;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{y}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}

/// `~/.cache/scribe`: what tests and benches download or build once and keep.
pub fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/scribe")
}

/// pip-installs `requirement` (with or without its dependencies) into a cached folder.
pub fn pip_target(requirement: &str, deps: bool, dir: &Path) -> PathBuf {
    if !dir.join(".complete").exists() {
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(dir);
        if !deps {
            cmd.arg("--no-deps");
        }
        let out = cmd.arg(requirement).output().expect("run pip");
        assert!(
            out.status.success(),
            "pip install {requirement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join(".complete"), "").unwrap();
    }
    dir.to_path_buf()
}

/// `scribe-asr-worker` started and loaded with `model` (English, `threads`), over its frame
/// protocol: the child, and its request and answer pipes.
pub fn asr_worker(
    model: &Path,
    threads: u32,
) -> (std::process::Child, std::process::ChildStdin, std::process::ChildStdout) {
    use protocol::frame::{read_frame, write_frame};
    use protocol::job::{ModelRef, Request, Response};
    let mut worker = Command::new(bin_dir().join("scribe-asr-worker"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start scribe-asr-worker");
    let mut input = worker.stdin.take().expect("stdin");
    let mut output = worker.stdout.take().expect("stdout");
    let load = Request::Load {
        model: ModelRef {
            path: model.display().to_string(),
            sha256: protocol::worker::sha256_file(model).expect("hash the model"),
        },
        threads,
        language: Some("en".into()),
        context_tokens: 0,
        initial_prompt: None,
    };
    write_frame(&mut input, &load, &[]).expect("send Load");
    let (loaded, _): (Response, _) = read_frame(&mut output).expect("read Loaded");
    assert!(matches!(loaded, Response::Loaded { .. }), "{loaded:?}");
    (worker, input, output)
}

/// A synthesized copy of [`VISIT`], made once per test binary.
pub fn visit_wav() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let path = dir.join("visit.wav");
        synthesize(VISIT, &path).expect("synthesize the visit");
        path
    })
    .clone()
}

/// The FHIR model library the export tests validate against (PyPI `fhir.resources`, whose
/// `R4B` package models FHIR R4's DocumentReference and Composition).
const FHIR_RESOURCES: &str = "fhir.resources==7.1.0";

/// `python3` with `fhir.resources` importable: installed once (pip `--target`) into
/// `SCRIBE_PYTHON_DEPS`, else `~/.cache/scribe/python`.
pub fn python_with_fhir() -> Command {
    let dir = std::env::var_os("SCRIBE_PYTHON_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
            home.join(".cache/scribe/python")
        });
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        pip_target(FHIR_RESOURCES, true, &dir);
    });
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", &dir);
    cmd
}

/// One visit's problems, each a short exchange with the facts a note must carry.
const PROBLEMS: &[&[(Voice, &str)]] = &[
    &[
        (
            Voice::Doctor,
            "Let's start with your blood pressure. How have the readings been at home?",
        ),
        (
            Voice::Patient,
            "Mostly around one forty over ninety in the mornings, a bit lower at night.",
        ),
        (
            Voice::Doctor,
            "You're on lisinopril ten milligrams once a day. Any cough or dizziness with it?",
        ),
        (
            Voice::Patient,
            "No cough. I get a little lightheaded if I stand up too fast.",
        ),
        (
            Voice::Doctor,
            "I'd like to raise it to twenty milligrams and check your kidney function in two weeks.",
        ),
    ],
    &[
        (
            Voice::Doctor,
            "You mentioned your left knee on the phone. Tell me about that.",
        ),
        (
            Voice::Patient,
            "It's been swollen for about three weeks, worse going down stairs.",
        ),
        (Voice::Doctor, "Any injury, a fall, or a twist?"),
        (Voice::Patient, "No fall. I did start walking more for my weight."),
        (
            Voice::Doctor,
            "On exam there's a small effusion of the left knee, no redness, and the ligaments feel stable. We'll get an x-ray of the left knee.",
        ),
    ],
    &[
        (Voice::Doctor, "How is your blood sugar doing on the metformin?"),
        (
            Voice::Patient,
            "I take five hundred milligrams twice a day. My last A1C was seven point eight.",
        ),
        (
            Voice::Doctor,
            "That's higher than we want. Any stomach upset with the metformin?",
        ),
        (Voice::Patient, "Some loose stools the first month, but that settled."),
        (
            Voice::Doctor,
            "Let's go up to one thousand milligrams twice a day and recheck the A1C in three months.",
        ),
    ],
    &[
        (Voice::Doctor, "Any trouble sleeping lately?"),
        (
            Voice::Patient,
            "Yes, I wake up at three in the morning most nights and can't get back to sleep.",
        ),
        (
            Voice::Doctor,
            "Do you snore, or has anyone noticed you stop breathing at night?",
        ),
        (
            Voice::Patient,
            "My wife says I snore loudly, and I'm tired during the day.",
        ),
        (
            Voice::Doctor,
            "I'd like to order a sleep study to look for sleep apnea.",
        ),
    ],
    &[
        (Voice::Doctor, "You had some heartburn last time. How is that?"),
        (
            Voice::Patient,
            "Better on the omeprazole twenty milligrams, but it comes back after big meals.",
        ),
        (Voice::Doctor, "Any trouble swallowing, vomiting, or black stools?"),
        (Voice::Patient, "No, none of that."),
        (
            Voice::Doctor,
            "Keep the omeprazole, avoid eating within three hours of bed, and we'll review in two months.",
        ),
    ],
    &[
        (
            Voice::Doctor,
            "Let me listen to your chest. Take a deep breath in and out.",
        ),
        (Voice::Patient, "I've had a dry cough for about ten days, no fever."),
        (
            Voice::Doctor,
            "Your lungs are clear on both sides and your oxygen level is ninety seven percent.",
        ),
        (Voice::Patient, "Is it an infection?"),
        (
            Voice::Doctor,
            "It sounds like a viral cough. Honey and fluids, and call us if you get a fever or short of breath.",
        ),
    ],
    &[
        (Voice::Doctor, "How is your mood been over the last couple of weeks?"),
        (
            Voice::Patient,
            "A bit down since I stopped working, but I still enjoy seeing my grandchildren.",
        ),
        (Voice::Doctor, "Any thoughts of harming yourself?"),
        (Voice::Patient, "No, never."),
        (
            Voice::Doctor,
            "Good. Let's keep an eye on it, and I can refer you to counseling if you'd like.",
        ),
    ],
    &[
        (
            Voice::Doctor,
            "Your cholesterol came back. The LDL is one hundred sixty.",
        ),
        (Voice::Patient, "Is that bad? I don't eat much fried food."),
        (
            Voice::Doctor,
            "With your diabetes, I'd recommend starting atorvastatin twenty milligrams at night.",
        ),
        (Voice::Patient, "Are there side effects?"),
        (
            Voice::Doctor,
            "Some people get muscle aches. Tell me if you do, and we'll check your liver tests in six weeks.",
        ),
    ],
    &[
        (Voice::Doctor, "Let me look at that rash on your right forearm."),
        (Voice::Patient, "It started a week ago, it itches, especially at night."),
        (
            Voice::Doctor,
            "It's a dry, scaly patch about three centimeters across, no blisters.",
        ),
        (Voice::Patient, "I did start a new laundry soap."),
        (
            Voice::Doctor,
            "Likely contact dermatitis. Use hydrocortisone one percent cream twice a day for one week and go back to the old soap.",
        ),
    ],
    &[
        (Voice::Doctor, "Are you up to date on your vaccines?"),
        (
            Voice::Patient,
            "I had the flu shot in October, not sure about the others.",
        ),
        (
            Voice::Doctor,
            "You're due for the shingles vaccine and a pneumonia vaccine at your age.",
        ),
        (Voice::Patient, "Can I get them today?"),
        (
            Voice::Doctor,
            "We'll give the pneumonia vaccine today and the shingles vaccine at the pharmacy.",
        ),
    ],
    &[
        (Voice::Doctor, "Any chest pain or pressure when you walk uphill?"),
        (
            Voice::Patient,
            "No chest pain, but I get short of breath after two flights of stairs.",
        ),
        (
            Voice::Doctor,
            "Your heart sounds regular with no murmur, and there's no swelling in your ankles.",
        ),
        (Voice::Patient, "Should I be worried?"),
        (
            Voice::Doctor,
            "Let's get an EKG today and a stress test if anything shows up.",
        ),
    ],
    &[
        (Voice::Doctor, "How is your lower back?"),
        (
            Voice::Patient,
            "It aches after gardening, maybe four out of ten, no pain down the legs.",
        ),
        (Voice::Doctor, "Any numbness, weakness, or trouble with your bladder?"),
        (Voice::Patient, "No, nothing like that."),
        (
            Voice::Doctor,
            "Physical therapy twice a week for six weeks, and acetaminophen five hundred milligrams as needed.",
        ),
    ],
];

/// Lines for a visit of about `minutes` minutes (espeak-ng's voices, with the pauses between
/// turns, come to about 150 words a minute): the problems in turn, coming back to them for a
/// longer visit.
pub fn long_visit_lines(minutes: f64) -> Vec<(Voice, String)> {
    let target_words = (minutes * 150.0) as usize;
    let mut lines = vec![(Voice::Doctor, "Good morning, come on in and have a seat.".to_string())];
    let mut words = 0;
    for (round, problem) in PROBLEMS.iter().cycle().enumerate() {
        if words >= target_words {
            break;
        }
        for (i, (voice, text)) in problem.iter().enumerate() {
            let text = if i == 0 && round >= PROBLEMS.len() {
                format!("Coming back to something from earlier. {text}")
            } else {
                text.to_string()
            };
            words += text.split_whitespace().count();
            lines.push((*voice, text));
        }
    }
    lines.push((
        Voice::Doctor,
        "That's everything for today. We'll see you in three months.".into(),
    ));
    lines.push((Voice::Patient, "Thank you, doctor.".into()));
    lines
}

/// Today's date from `date`, so a bench report says when it was measured.
pub fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
