//! xtask is the README's set-up tool: on a blank Debian box it installs the system packages the
//! workspace needs. So it must itself build with none of them, and when it cannot install them it
//! must say which and how, instead of failing in somebody's build script.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use serde_json::Value;

/// Crates that exist to build or find native code: a build script that uses one of these compiles
/// C/C++ or looks for a system library, which on a blank box is not there yet.
const NATIVE_BUILD_TOOLS: &[&str] = &[
    "cc",
    "cmake",
    "pkg-config",
    "bindgen",
    "system-deps",
    "vcpkg",
    "autotools",
    "openssl-src",
    "nasm-rs",
];

/// The workspace's dependency graph as built on this machine (other platforms' dependencies, such
/// as macOS's CoreAudio, left out).
fn metadata() -> Value {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let rustc = String::from_utf8_lossy(&rustc.stdout);
    let host = rustc
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            host,
        ])
        .current_dir(workspace)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every crate `root` needs in order to be built and run (normal and build dependencies, not dev),
/// each with a path from `root` that pulled it in, and the reason it needs a system package
/// (a native `links` key, or a build dependency on a C build tool), if it does.
fn native_crates(meta: &Value, root: &str) -> Vec<String> {
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let name = |id: &str| packages[id]["name"].as_str().expect("name").to_string();
    let start = packages
        .values()
        .find(|p| p["name"] == root && p["source"].is_null())
        .unwrap_or_else(|| panic!("{root} is not a workspace package"))["id"]
        .as_str()
        .unwrap();

    let mut path_to: HashMap<&str, String> = HashMap::from([(start, root.to_string())]);
    let mut queue = VecDeque::from([start]);
    let mut found = BTreeSet::new();
    while let Some(id) = queue.pop_front() {
        let package = packages[id];
        if let Some(links) = package["links"].as_str() {
            found.insert(format!("{} (links = \"{links}\")", path_to[id]));
        }
        for dep in nodes[id]["deps"].as_array().expect("deps") {
            let dep_id = dep["pkg"].as_str().expect("pkg");
            // A dev-dependency is built for tests only, never for `cargo xtask`.
            let needed = dep["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|k| k["kind"] != "dev");
            if !needed || path_to.contains_key(dep_id) {
                continue;
            }
            let dep_name = name(dep_id);
            let path = format!("{} → {dep_name}", path_to[id]);
            if NATIVE_BUILD_TOOLS.contains(&dep_name.as_str()) {
                found.insert(format!(
                    "{} (its build script compiles native code with {dep_name})",
                    path_to[id]
                ));
            }
            path_to.insert(dep_id, path);
            queue.push_back(dep_id);
        }
    }
    found.into_iter().collect()
}

#[test]
fn xtask_builds_on_a_box_with_no_system_packages() {
    let native = native_crates(&metadata(), "xtask");
    assert!(
        native.is_empty(),
        "xtask installs the system packages, so it must build without them, but these crates in its \
         dependency tree need them:\n  {}\nMove what needs them into a workspace binary that xtask \
         runs after ensure_system_packages (as demo-visit and bench-gpu are).",
        native.join("\n  ")
    );
}

/// The check above would see the regression the README's first command once hit: xtask depending
/// on the tests crate, which pulls ALSA (cpal) and SQLCipher with OpenSSL (rusqlite).
#[test]
fn the_check_sees_the_native_crates_of_the_workspace() {
    let native = native_crates(&metadata(), "tests").join("\n");
    for expected in ["alsa-sys (links = \"alsa\")", "libsqlite3-sys", "openssl-src"] {
        assert!(native.contains(expected), "{expected} not reported in:\n{native}");
    }
    assert!(native.contains("tests → audio → cpal → alsa → alsa-sys"), "{native}");
}

/// Fake `id`, `dpkg-query`, `apt-get` and `sudo` on an otherwise empty PATH: xtask sees a blank
/// box (nothing installed, no python3) as root or not, with apt and sudo working or failing.
struct FakeBox {
    dir: tempfile::TempDir,
}

impl FakeBox {
    fn new(uid: u32) -> FakeBox {
        let dir = tempfile::tempdir().unwrap();
        let b = FakeBox { dir };
        b.tool("id", &format!("echo {uid}"));
        // Nothing is installed until the fake apt-get has run `install`.
        b.tool(
            "dpkg-query",
            &format!(
                "[ -e {} ] && printf 'install ok installed'; exit 0",
                b.path("installed").display()
            ),
        );
        b
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn tool(&self, name: &str, body: &str) {
        let path = self.path(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// An apt-get that logs its arguments and fails with `status` (0: installs everything).
    fn apt_get(&self, status: i32) {
        let log = self.path("apt.log");
        let installed = self.path("installed");
        self.tool(
            "apt-get",
            &format!(
                "echo \"$@\" >> {log}\n\
                 if [ {status} -ne 0 ]; then echo 'E: Failed to fetch http://deb.debian.org/debian' >&2; exit {status}; fi\n\
                 [ \"$1\" = install ] && : > {installed}\nexit 0",
                log = log.display(),
                installed = installed.display(),
            ),
        );
    }

    /// `cargo xtask demo` on this box. Building anything fails at once (CARGO is `false`), so a
    /// run that gets past the packages says so by naming the cargo command it ran.
    fn xtask_demo(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("demo")
            .env_clear()
            .env("PATH", self.dir.path())
            .env("HOME", self.dir.path())
            .env("CARGO", "/bin/false")
            .output()
            .expect("run xtask")
    }

    fn apt_log(&self) -> String {
        std::fs::read_to_string(self.path("apt.log")).unwrap_or_default()
    }
}

/// What a user must be told when xtask cannot install the packages: every package, and the
/// command that installs them — as an error, not a panic, and before any build starts.
fn assert_told_what_to_install(out: &Output, command_prefix: &str, why: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(why), "expected {why:?} in:\n{err}");
    let command = err
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(command_prefix))
        .unwrap_or_else(|| panic!("no line starting {command_prefix:?} in:\n{err}"));
    for package in [
        "cmake",
        "clang",
        "libasound2-dev",
        "pkg-config",
        "perl",
        "espeak-ng",
        "python3-pip",
    ] {
        assert!(
            command.split_whitespace().any(|w| w == package),
            "{package} missing from {command:?}"
        );
    }
    assert!(!err.contains("/bin/false"), "a build started:\n{err}");
}

#[test]
fn not_root_and_no_sudo_names_the_packages_and_the_command() {
    let fake = FakeBox::new(1000);
    let out = fake.xtask_demo();
    assert_told_what_to_install(
        &out,
        "sudo apt-get update && sudo apt-get install -y",
        "not run as root",
    );
    assert!(fake.apt_log().is_empty());
}

#[test]
fn unreachable_package_sources_name_the_packages_and_the_command() {
    let fake = FakeBox::new(0);
    fake.apt_get(100);
    let out = fake.xtask_demo();
    assert_told_what_to_install(
        &out,
        "apt-get update && apt-get install -y",
        "package sources reachable",
    );
    assert_eq!(fake.apt_log().lines().count(), 1, "stops after the failed update");
}

#[test]
fn sudo_that_fails_names_the_packages_and_the_command() {
    let fake = FakeBox::new(1000);
    fake.tool(
        "sudo",
        "[ \"$1\" = --version ] && exit 0; echo 'sudo: a password is required' >&2; exit 1",
    );
    let out = fake.xtask_demo();
    assert_told_what_to_install(
        &out,
        "sudo apt-get update && sudo apt-get install -y",
        "`sudo apt-get update` failed",
    );
}

#[test]
fn as_root_it_installs_the_packages_then_builds() {
    let fake = FakeBox::new(0);
    fake.apt_get(0);
    let out = fake.xtask_demo();
    let err = String::from_utf8_lossy(&out.stderr);
    let log = fake.apt_log();
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(calls.len(), 2, "{log}");
    assert!(calls[0].starts_with("update"), "{log}");
    assert!(calls[1].starts_with("install -y"), "{log}");
    for package in ["cmake", "libasound2-dev", "espeak-ng", "python3", "python3-pip"] {
        assert!(calls[1].split_whitespace().any(|w| w == package), "{package}: {log}");
    }
    // Then it goes on to build the workspace (which fails here: CARGO is `false`).
    assert!(err.contains("/bin/false") && err.contains("build"), "{err}");
    assert!(!err.contains("Scribe needs"), "{err}");
}
