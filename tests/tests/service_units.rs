//! The package's systemd units: their sandbox, scored by `systemd-analyze security`, and the
//! socket-activated workers they describe, run for real through `systemd-socket-activate` (the
//! same accept-one-process-per-connection protocol, without booting systemd).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{Appliance, VISIT_KEY_WORDS, bin_dir, text, transcript_lowercase, visit_wav};

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/package/systemd")
}

/// `systemd-analyze security`'s overall exposure for a unit file (0 = locked down, 10 = none).
fn exposure(unit: &str) -> (f64, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(units_dir().join(unit))
        .output()
        .expect("systemd-analyze (package systemd)");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level for {unit}: {}", text(&out)));
    let score = line
        .rsplit(": ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unparsable: {line}"));
    (score, line.trim_start_matches("→ ").to_string())
}

#[test]
fn units_are_locked_down() {
    // The daemon serves the clinic's LAN, so it keeps AF_INET and an IP allow-list; the workers
    // have no network at all.
    for (unit, at_most) in [
        ("scribe.service", 1.5),
        ("scribe-asr-worker@.service", 0.5),
        ("scribe-draft-worker@.service", 0.5),
    ] {
        let (score, line) = exposure(unit);
        eprintln!("{line}");
        assert!(score <= at_most, "{unit}: {line}, expected at most {at_most}");
    }
    for worker in ["scribe-asr-worker@.service", "scribe-draft-worker@.service"] {
        let text = std::fs::read_to_string(units_dir().join(worker)).unwrap();
        for line in [
            "PrivateNetwork=yes",
            "RestrictAddressFamilies=none",
            "TemporaryFileSystem=/var/lib:ro",
        ] {
            assert!(text.lines().any(|l| l == line), "{worker} lacks {line}");
        }
    }
    let daemon = std::fs::read_to_string(units_dir().join("scribe.service")).unwrap();
    for line in [
        "IPAddressDeny=any",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(daemon.lines().any(|l| l == line), "scribe.service lacks {line}");
    }
}

/// A listener that starts a fresh worker for each connection, its stdin and stdout the socket.
struct SocketActivated(Child);

impl SocketActivated {
    fn start(dir: &Path, binary: &str) -> SocketActivated {
        let socket = dir.join(format!("{binary}.sock"));
        let child = Command::new("systemd-socket-activate")
            .args(["--accept", "--inetd", "--listen"])
            .arg(&socket)
            .arg(bin_dir().join(binary))
            .stdout(Stdio::null())
            .spawn()
            .expect("systemd-socket-activate (package systemd)");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} never appeared",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SocketActivated(child)
    }
}

impl Drop for SocketActivated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_visit_is_transcribed_and_drafted_by_socket_activated_workers() {
    let app = Appliance::new();
    let sockets = tempfile::tempdir().unwrap();
    let wav = visit_wav();
    // The workers cannot be started as child processes here: whatever runs, came through a socket.
    let no_workers = tempfile::tempdir().unwrap();
    let ingest = || {
        let mut cmd = app.command(&["ingest", wav.to_str().unwrap()]);
        cmd.env("SCRIBE_WORKER_SOCKETS", sockets.path())
            .env("SCRIBE_WORKER_DIR", no_workers.path());
        cmd.output().unwrap()
    };

    // No unit listening: the visit is kept and the reason names the socket.
    let out = ingest();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cannot start the speech-recognition worker")
            && text(&out).contains("scribe-asr-worker.sock"),
        "{}",
        text(&out)
    );
    assert_eq!(
        app.encounter_count(),
        1,
        "the recording was stored before transcription failed"
    );

    let _asr = SocketActivated::start(sockets.path(), "scribe-asr-worker");
    let _draft = SocketActivated::start(sockets.path(), "scribe-draft-worker");
    let out = ingest();
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().to_string();
    let show = app.show(&id);
    assert_eq!(show["state"], "awaiting_review", "{show}");
    let transcript = transcript_lowercase(&show);
    let heard = VISIT_KEY_WORDS.iter().filter(|w| transcript.contains(*w)).count();
    assert!(heard >= 3, "only {heard} key words in {transcript}");
    assert!(!show["draft"]["sections"].as_array().unwrap().is_empty(), "{show}");
}

#[test]
fn the_package_carries_the_binaries_units_and_an_installable_release() {
    let out_dir = tempfile::tempdir().unwrap();
    let built = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/package/build-deb.sh"))
        .arg(bin_dir())
        .arg("9.8.7")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));
    let deb = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim());
    let info = Command::new("dpkg-deb").arg("--info").arg(&deb).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(
        info.contains("Package: scribe") && info.contains("Version: 9.8.7"),
        "{info}"
    );

    // Unpacked as dpkg would: every binary byte for byte, the units, the wrapper.
    let root = tempfile::tempdir().unwrap();
    for (flag, dest) in [("-x", root.path().to_path_buf()), ("-e", root.path().join("DEBIAN"))] {
        let status = Command::new("dpkg-deb")
            .arg(flag)
            .arg(&deb)
            .arg(&dest)
            .status()
            .unwrap();
        assert!(status.success());
    }
    for bin in ["scribe", "scribe-asr-worker", "scribe-draft-worker"] {
        assert_eq!(
            std::fs::read(root.path().join("usr/lib/scribe/bin").join(bin)).unwrap(),
            std::fs::read(bin_dir().join(bin)).unwrap(),
            "{bin}"
        );
    }
    for unit in [
        "scribe.service",
        "scribe-asr-worker.socket",
        "scribe-asr-worker@.service",
        "scribe-draft-worker.socket",
        "scribe-draft-worker@.service",
    ] {
        assert_eq!(
            std::fs::read(root.path().join("lib/systemd/system").join(unit)).unwrap(),
            std::fs::read(units_dir().join(unit)).unwrap(),
            "{unit}"
        );
    }
    for script in ["DEBIAN/postinst", "DEBIAN/prerm", "usr/bin/scribe"] {
        let status = Command::new("sh")
            .arg("-n")
            .arg(root.path().join(script))
            .status()
            .unwrap();
        assert!(status.success(), "{script} is not valid sh");
    }
    let postinst = std::fs::read_to_string(root.path().join("DEBIAN/postinst")).unwrap();
    assert!(postinst.contains("VERSION=\"9.8.7\""), "{postinst}");

    // What the postinst does with them: the packaged binaries become a release under the
    // releases root, and the `current` link runs them.
    let releases = tempfile::tempdir().unwrap();
    let packaged = root.path().join("usr/lib/scribe/bin");
    let out = Command::new(packaged.join("scribe"))
        .arg("update")
        .arg("--root")
        .arg(releases.path())
        .args(["adopt", "--version", "9.8.7", "--bin"])
        .arg(&packaged)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let version = Command::new(releases.path().join("current/bin/scribe"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
    let out = Command::new(packaged.join("scribe"))
        .arg("update")
        .arg("--root")
        .arg(releases.path())
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "* 9.8.7\n");
}

/// Run by root against the service's home, a command would leave root-owned files there (logs,
/// the database's WAL) that the service could no longer open: it is refused, and says how.
#[test]
fn another_users_home_is_refused_before_anything_is_written() {
    use std::os::unix::fs::MetadataExt;
    let app = Appliance::new();
    let me = std::fs::metadata(app.home()).unwrap().uid();
    let other = if me == 0 { 65534 } else { me + 1 };
    let chown = |uid: u32| std::os::unix::fs::chown(app.home(), Some(uid), None);
    if chown(other).is_err() {
        eprintln!("skipped: cannot give the home to another user here (not root)");
        return;
    }
    let logs = std::fs::read_dir(app.home().join("logs"))
        .map(|d| d.count())
        .unwrap_or(0);
    let out = app.run(&["show", "0000000000000000"], None);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("belongs to user id {other}")),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("sudo -u scribe"), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(app.home().join("logs"))
            .map(|d| d.count())
            .unwrap_or(0),
        logs
    );
    // Commands that do not touch the home still run.
    let out = app.run(&["firewall", "--systemd"], None);
    assert!(out.status.success(), "{}", text(&out));
    chown(me).unwrap();
}
