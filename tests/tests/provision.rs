//! `scribe provision` on a blank box: everything a clinic appliance needs, each step reported;
//! run again, it changes nothing; models can come from a local folder (a USB stick).

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use tests::{Appliance, models_dir, text};

fn provision(app: &Appliance, clinic: &str, from: &std::path::Path, stdin: Option<&str>) -> std::process::Output {
    app.run(
        &[
            "provision",
            "--clinic",
            clinic,
            "--admin",
            "ivan",
            "--security-owner",
            "Dana Reyes",
            "--security-contact",
            "dana@riverside.example",
            "--allow",
            "10.20.0.0/16",
            "--allow",
            "fd20::/48",
            "--profile",
            "test",
            "--models-from",
            from.to_str().unwrap(),
        ],
        stdin,
    )
}

#[test]
fn provisioning_a_blank_box_twice_changes_nothing_the_second_time() {
    // A blank box: no `scribe init`, and an empty model store of its own.
    let models = tempfile::tempdir().unwrap();
    let app = Appliance {
        home: tempfile::tempdir().unwrap(),
        models: models.path().to_path_buf(),
    };
    // A USB stick without the models is refused by name, before anything else is trusted.
    let empty = tempfile::tempdir().unwrap();
    let out = provision(
        &app,
        "Riverside Family Practice",
        empty.path(),
        Some("correct horse ivan\n"),
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("nothing was changed"), "{}", text(&out));
    assert!(!app.home().join("scribe.db").exists(), "nothing was written");

    let started = Instant::now();
    let out = provision(
        &app,
        "Riverside Family Practice",
        &models_dir(),
        Some("correct horse ivan\n"),
    );
    let first = text(&out);
    assert!(out.status.success(), "{first}");
    eprintln!(
        "provisioned a blank box in {:.1} s:\n{first}",
        started.elapsed().as_secs_f64()
    );
    for said in [
        "written",
        "created",
        "clinic CA created",
        "localhost, 127.0.0.1 new, valid until",
        "ivan created",
        "Dana Reyes (dana@riverside.example) recorded, audited",
        "installed from",
    ] {
        assert!(first.contains(said), "{said:?} missing: {first}");
    }
    let config = std::fs::read_to_string(app.home().join("scribe.toml")).unwrap();
    assert!(config.contains("clinic = \"Riverside Family Practice\""), "{config}");
    assert!(config.contains("allow = [\"10.20.0.0/16\", \"fd20::/48\"]"), "{config}");
    for private in ["scribe.key", "scribe.toml", "tls/key.pem", "tls/ca.key"] {
        let mode = std::fs::metadata(app.home().join(private))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{private}");
    }

    // Again: nothing changes, nothing is asked.
    let out = provision(&app, "Riverside Family Practice", &models_dir(), None);
    let second = text(&out);
    assert!(out.status.success(), "{second}");
    for said in [
        "unchanged",
        "kept (opens with its key)",
        "kept (ivan)",
        "kept (Dana Reyes, dana@riverside.example)",
        "cert.pem: kept, valid until",
        "already installed",
    ] {
        assert!(second.contains(said), "{said:?} missing: {second}");
    }
    assert!(!second.contains("created") && !second.contains("issued"), "{second}");

    // Different settings are not applied without --force.
    let out = provision(&app, "Hillside Clinic", &models_dir(), None);
    assert!(
        out.status.success() && text(&out).contains("--force rewrites it"),
        "{}",
        text(&out)
    );
    let config = std::fs::read_to_string(app.home().join("scribe.toml")).unwrap();
    assert!(config.contains("Riverside Family Practice"));

    // The box works: the admin can log in to nothing but admin pages, the models verify.
    let out = app.run(&["models", "verify", "--profile", "test"], None);
    assert!(out.status.success(), "{}", text(&out));

    // The security owner changes hands: audited with both names, and named in audit exports.
    let out = app.run(&["security-owner", "Sam Ortiz", "--contact", "+1 555 0100"], None);
    assert!(out.status.success(), "{}", text(&out));
    let out = app.run(&["security-owner"], None);
    assert!(text(&out).contains("Sam Ortiz (+1 555 0100), since"), "{}", text(&out));
    let export = app.home().join("audit.json");
    let out = app.run(&["audit", "export", export.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    let export: serde_json::Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(export["security_owner"]["name"], "Sam Ortiz");
    let actions: Vec<&str> = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("security_owner"))
        .collect();
    assert_eq!(
        actions,
        [
            "security_owner.set:Dana Reyes",
            "security_owner.change:Dana Reyes -> Sam Ortiz"
        ]
    );
}

#[test]
fn provisioning_can_seal_the_key_with_an_operator_passphrase() {
    let app = Appliance {
        home: tempfile::tempdir().unwrap(),
        models: models_dir(),
    };
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("operator-passphrase");
    std::fs::write(&secret, "a long operator passphrase\n").unwrap();
    let run = || {
        let mut cmd = app.command(&[
            "provision",
            "--clinic",
            "Riverside",
            "--security-owner",
            "Dana Reyes",
            "--security-contact",
            "dana@riverside.example",
            "--allow",
            "10.20.0.0/16",
            "--profile",
            "test",
            "--models-from",
            models_dir().to_str().unwrap(),
            "--key-passphrase-file",
            secret.to_str().unwrap(),
        ]);
        cmd.env("SCRIBE_KEY_PASSPHRASE_FILE", &secret);
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"correct horse admin\n").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("sealed with the operator passphrase"),
        "{}",
        text(&out)
    );
    let key = std::fs::read_to_string(app.home().join("scribe.key")).unwrap();
    assert!(key.starts_with("scribe-key-sealed-v1"), "{key}");
    let out = run();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("sealed with an operator passphrase: kept"),
        "{}",
        text(&out)
    );
}
