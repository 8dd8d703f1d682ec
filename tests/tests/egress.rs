//! Nothing leaves the device network: a whole visit — a fresh appliance, a recording ingested,
//! transcribed and drafted by the real workers and models, reviewed and signed over HTTPS, the
//! note exported to a folder — runs inside a network namespace that has nothing but loopback.
//! A step that reached for the network at run time would fail here.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use tests::web::{Client, ReviewServer};
use tests::{Appliance, text, visit_wav};

/// Moves the calling thread (and every process it starts from now on) into a new network
/// namespace with only loopback, up. Network namespaces are per thread.
fn enter_loopback_only_namespace() {
    // SAFETY: unshare(2) on the calling thread with a constant flag.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip (iproute2)");
    assert!(up.success());
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "only loopback: {links}");
    assert!(links.contains(": lo:"), "{links}");
}

#[test]
fn a_whole_visit_runs_with_nothing_but_loopback() {
    std::thread::spawn(|| {
        enter_loopback_only_namespace();
        // There is no way out from here.
        for to in ["1.1.1.1:443", "10.0.0.1:80"] {
            let to: SocketAddr = to.parse().unwrap();
            assert!(
                TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_err(),
                "{to} reachable"
            );
        }

        let app = Appliance::new();
        let folder = app.home().join("ehr-import");
        std::fs::create_dir(&folder).unwrap();
        app.set_config("folder = \"\"\n", &format!("folder = \"{}\"\n", folder.display()));
        let password = app.add_user("drbob", "physician");
        let (out, id) = app.ingest(&[visit_wav().to_str().unwrap(), "--physician", "drbob"]);
        assert!(out.status.success(), "{}", text(&out));
        let id = id.unwrap();
        assert_eq!(app.show(&id)["state"], "awaiting_review");

        let server = ReviewServer::tls(&app);
        let cert = std::fs::read(app.home().join("tls/ca.pem")).unwrap();
        let mut bob = Client::trusting(&server.url.replace("127.0.0.1", "localhost"), &cert);
        bob.login("drbob", &password);
        let csrf = bob.csrf();
        let (_, version) = bob.acknowledge_flags(&id);
        let r = bob.post(
            &format!("/encounters/{id}/sign"),
            &[("csrf", &csrf), ("version", &version), ("password", &password)],
        );
        assert_eq!(r.status, 303, "{r:?}");
        let r = bob.post(&format!("/encounters/{id}/send"), &[("csrf", &csrf), ("to", "folder")]);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(folder.join(format!("note-{id}.json")).exists());
        drop(server);

        let out = app.run(&["verify", &id], None);
        assert!(out.status.success() && text(&out).contains("OK"), "{}", text(&out));
        let out = app.run(&["audit", "verify"], None);
        assert!(out.status.success(), "{}", text(&out));
        eprintln!("egress: visit {id} recorded, drafted, signed and exported with only loopback");
    })
    .join()
    .unwrap();
}
