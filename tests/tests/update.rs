//! Signed updates with the real binaries: a bundle is packed and signed, checked, installed beside
//! the running release and switched to; the installed `scribe` runs from its release; rollback
//! returns; and every kind of bad bundle — a byte changed in a binary, an edited list, no
//! signature, another signer, a file added, a cut-off download — is refused with its reason while
//! the running release and the model store stay exactly as they were.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::{Appliance, bin_dir, text};

/// Model files: new weights come under a new name, so an older release keeps its own.
const FIRST: (&str, &[u8]) = ("tiny-test.gguf", b"model weights, first cut");
const SECOND: (&str, &[u8]) = ("tiny-test-2.gguf", b"model weights, second cut");

#[derive(Debug, PartialEq)]
struct Snapshot {
    current: Option<PathBuf>,
    releases: Vec<String>,
    models: Vec<(String, Vec<u8>)>,
}

struct Vendor {
    dir: tempfile::TempDir,
    app: Appliance,
}

impl Vendor {
    fn new() -> Vendor {
        let vendor = Vendor {
            dir: tempfile::tempdir().unwrap(),
            app: Appliance::new(),
        };
        let out = vendor.update(&[
            "keygen",
            "--out",
            vendor.path("keys").to_str().unwrap(),
            "--name",
            "vendor",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let public = vendor.path("keys/vendor.pub");
        let out = vendor.update(&["trust", public.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        vendor
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn root(&self) -> PathBuf {
        self.path("opt-scribe")
    }

    /// `scribe update --root <root> ARGS`, with the appliance's home and a model store of its own.
    fn update(&self, args: &[&str]) -> std::process::Output {
        let mut full = vec!["update", "--root"];
        let root = self.root();
        full.push(root.to_str().unwrap());
        full.extend_from_slice(args);
        Command::new(bin_dir().join("scribe"))
            .arg("--home")
            .arg(self.app.home())
            .arg("--models")
            .arg(self.path("models"))
            .args(&full)
            .env_remove("SCRIBE_RELEASES")
            .output()
            .unwrap()
    }

    /// Packs the built binaries and one small model as VERSION, signed with KEY.
    fn bundle(&self, version: &str, key: &str, (model_name, model): (&str, &[u8])) -> PathBuf {
        let model_file = self.path(&format!("src-{version}/{model_name}"));
        std::fs::create_dir_all(model_file.parent().unwrap()).unwrap();
        std::fs::write(&model_file, model).unwrap();
        let out_file = self.path(&format!("scribe-{version}-{key}.bundle"));
        let out = self.update(&[
            "pack",
            "--key",
            self.path(&format!("keys/{key}.key")).to_str().unwrap(),
            "--version",
            version,
            "--bin",
            bin_dir().to_str().unwrap(),
            "--model",
            model_file.to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        out_file
    }

    /// Everything an update could change: where `current` points, the release folders, and the
    /// model store's files with their bytes.
    fn snapshot(&self) -> Snapshot {
        let current = std::fs::read_link(self.root().join("current")).ok();
        let list = |dir: PathBuf| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        let models = list(self.path("models"))
            .into_iter()
            .map(|n| {
                let bytes = std::fs::read(self.path("models").join(&n)).unwrap();
                (n, bytes)
            })
            .collect();
        Snapshot {
            current,
            releases: list(self.root().join("releases")),
            models,
        }
    }

    fn running_version(&self) -> String {
        let out = Command::new(self.root().join("current/bin/scribe"))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// The tar's bytes with the first occurrence of `from` replaced by `to` (same length).
fn patched(bundle: &Path, from: &[u8], to: &[u8], out: &Path) -> PathBuf {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(bundle).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in bundle");
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(out, bytes).unwrap();
    out.to_path_buf()
}

/// The bundle's members re-packed by GNU tar in the given order (e.g. leaving one out).
fn repacked(bundle: &Path, members: &[&str], extra: Option<(&str, &[u8])>, out: &Path) -> PathBuf {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xf")
        .arg(bundle)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    if let Some((name, bytes)) = extra {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        names.push(name.to_string());
    }
    let status = Command::new("tar")
        .arg("cf")
        .arg(out)
        .arg("-C")
        .arg(dir.path())
        .args(&names)
        .status()
        .unwrap();
    assert!(status.success());
    out.to_path_buf()
}

#[test]
fn a_signed_bundle_installs_switches_and_rolls_back() {
    let vendor = Vendor::new();
    let v1 = vendor.bundle("1.0.0", "vendor", FIRST);
    let out = vendor.update(&["verify", v1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("version 1.0.0, signed by vendor.pub"),
        "{}",
        text(&out)
    );

    let out = vendor.update(&["apply", v1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("model added: tiny-test.gguf"), "{}", text(&out));
    // The binary installed from the bundle runs, from its release folder.
    assert!(
        vendor.running_version().starts_with("scribe "),
        "{}",
        vendor.running_version()
    );
    assert_eq!(
        std::fs::read(vendor.path("models/tiny-test.gguf")).unwrap(),
        b"model weights, first cut"
    );

    let v2 = vendor.bundle("1.1.0", "vendor", FIRST);
    let out = vendor.update(&["apply", v2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("beside 1.0.0"), "{}", text(&out));
    assert!(
        text(&out).contains("already installed, unchanged: tiny-test.gguf"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_link(vendor.root().join("current")).unwrap(),
        Path::new("releases/1.1.0")
    );

    let out = vendor.update(&["rollback"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("from 1.1.0 back to 1.0.0"), "{}", text(&out));
    assert_eq!(
        std::fs::read_link(vendor.root().join("current")).unwrap(),
        Path::new("releases/1.0.0")
    );
    vendor.running_version();
    let out = vendor.update(&["status"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "* 1.0.0\n  1.1.0 (installed over 1.0.0)\n"
    );

    // Nothing before 1.0.0: a second rollback says so and changes nothing.
    let out = vendor.update(&["rollback"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no earlier release"), "{}", text(&out));

    // A rolled-back-to release whose binary was changed on disk is not switched to.
    let out = vendor.update(&["apply", v2.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let damaged = vendor.root().join("releases/1.0.0/bin/scribe-asr-worker");
    std::fs::write(&damaged, b"#!/bin/sh\necho not the worker\n").unwrap();
    let before = vendor.snapshot();
    let out = vendor.update(&["rollback"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("release 1.0.0 is damaged: bin/scribe-asr-worker does not match"),
        "{}",
        text(&out)
    );
    assert_eq!(vendor.snapshot(), before);
}

#[test]
fn bad_bundles_are_refused_and_change_nothing() {
    let vendor = Vendor::new();
    let v1 = vendor.bundle("1.0.0", "vendor", FIRST);
    assert!(vendor.update(&["apply", v1.to_str().unwrap()]).status.success());
    let good = vendor.bundle("1.2.0", "vendor", SECOND);
    let before = vendor.snapshot();

    // Another signer: a key made elsewhere, never trusted here.
    let out = vendor.update(&[
        "keygen",
        "--out",
        vendor.path("keys").to_str().unwrap(),
        "--name",
        "mallory",
    ]);
    assert!(out.status.success());
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "a byte changed in a binary",
            patched(
                &good,
                b"\x7fELF\x02\x01\x01",
                b"\x7fELF\x02\x01\x02",
                &vendor.path("elf.bundle"),
            ),
            "bin/scribe in the bundle has SHA-256",
        ),
        (
            "a byte changed in a model",
            patched(&good, b"second cut", b"secund cut", &vendor.path("model.bundle")),
            "models/tiny-test-2.gguf in the bundle has SHA-256",
        ),
        (
            "the signed list edited",
            patched(
                &good,
                b"version = \"1.2.0\"",
                b"version = \"1.3.0\"",
                &vendor.path("list.bundle"),
            ),
            "signature does not verify with any trusted key (vendor.pub)",
        ),
        (
            "no signature",
            repacked(
                &good,
                &[
                    "bundle.toml",
                    "bin/scribe",
                    "bin/scribe-asr-worker",
                    "bin/scribe-draft-worker",
                    "models/tiny-test-2.gguf",
                ],
                None,
                &vendor.path("unsigned.bundle"),
            ),
            "the bundle is not signed",
        ),
        (
            "signed by an untrusted key",
            vendor.bundle("1.2.0", "mallory", SECOND),
            "signature does not verify",
        ),
        (
            "a file added",
            repacked(
                &good,
                &[
                    "bundle.toml",
                    "bundle.sig",
                    "bin/scribe",
                    "bin/scribe-asr-worker",
                    "bin/scribe-draft-worker",
                    "models/tiny-test-2.gguf",
                ],
                Some(("extra.sh", b"#!/bin/sh\ncurl example.com\n")),
                &vendor.path("added.bundle"),
            ),
            "the bundle holds extra.sh, which its signed list does not name",
        ),
        (
            "a file left out",
            repacked(
                &good,
                &[
                    "bundle.toml",
                    "bundle.sig",
                    "bin/scribe",
                    "bin/scribe-asr-worker",
                    "bin/scribe-draft-worker",
                ],
                None,
                &vendor.path("short.bundle"),
            ),
            "the bundle lacks models/tiny-test-2.gguf",
        ),
        (
            "a download cut off",
            {
                let bytes = std::fs::read(&good).unwrap();
                let cut = vendor.path("cut.bundle");
                std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
                cut
            },
            "the bundle is cut off: bin/scribe has",
        ),
        (
            "not a bundle at all",
            {
                let file = vendor.path("notes.txt");
                std::fs::write(&file, "just some text\n".repeat(100)).unwrap();
                file
            },
            "is not an update bundle",
        ),
        ("an older signed version", v1.clone(), "already running"),
    ];
    for (what, bundle, reason) in cases {
        for action in ["verify", "apply"] {
            if what == "an older signed version" && action == "verify" {
                continue; // a genuine bundle verifies; only installing it again is refused
            }
            let out = vendor.update(&[action, bundle.to_str().unwrap()]);
            assert!(!out.status.success(), "{what}: {action} succeeded: {}", text(&out));
            assert!(text(&out).contains(reason), "{what}: {action}: {}", text(&out));
            eprintln!("{what}, {action}: {}", String::from_utf8_lossy(&out.stderr).trim());
            assert_eq!(vendor.snapshot(), before, "{what}: {action} changed something");
        }
    }

    // The untouched bundle still goes in, so the refusals above were about the changes.
    let out = vendor.update(&["apply", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    // Once 1.2.0 runs, the old signed 1.0.0 is a downgrade, refused unless asked for.
    let out = vendor.update(&["apply", v1.to_str().unwrap()]);
    assert!(text(&out).contains("refusing a downgrade"), "{}", text(&out));
}
