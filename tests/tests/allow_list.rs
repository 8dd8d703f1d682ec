//! The network allow-list (network.allow): the review app refuses to listen outside it, a note is
//! never sent to an EHR whose address is outside it, and `scribe firewall` turns it into an
//! nftables ruleset that nft accepts.

use std::io::Write;
use std::process::{Command, Stdio};

use tests::web::{Client, ReviewServer};
use tests::{Appliance, text};

#[test]
fn the_review_app_does_not_listen_outside_the_allow_list() {
    let app = Appliance::new();
    app.set_config(
        "allow = [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"fc00::/7\", \"fe80::/10\"]",
        "allow = [\"10.9.0.0/16\"]",
    );
    // A documentation address outside the list: refused by policy, before any bind.
    let out = app.run(&["serve", "--listen", "192.0.2.7:8443"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("outside network.allow"), "{}", text(&out));
    // A broken list is an error naming the setting.
    app.set_config("allow = [\"10.9.0.0/16\"]", "allow = [\"10.9.0.1/16\"]");
    let out = app.run(&["serve", "--listen", "127.0.0.1:0"], None);
    assert!(
        !out.status.success() && text(&out).contains("network.allow"),
        "{}",
        text(&out)
    );
}

/// A typed visit signed by physician drbob; its id and drbob's password.
fn signed_visit_for_drbob(app: &Appliance) -> (String, String) {
    let dialogue = app.home().join("d.txt");
    std::fs::write(
        &dialogue,
        "[doctor] what brings you in ?\n[patient] a sore throat since monday .\n",
    )
    .unwrap();
    let (out, id) = app.ingest(&["--transcript", dialogue.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();
    let password = app.add_user("drbob", "physician");
    let out = app.run(
        &["sign", &id, "--user", "drbob", "--acknowledge-flags"],
        Some(&format!("{password}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    (id, password)
}

#[test]
fn a_note_is_not_sent_to_an_ehr_outside_the_allow_list() {
    let app = Appliance::new();
    app.set_config(
        "allow = [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"fc00::/7\", \"fe80::/10\"]",
        "allow = [\"10.9.0.0/16\"]",
    );
    app.set_config(
        "ehr_endpoints = []",
        "ehr_endpoints = [\"https://192.168.77.1:9/fhir\"]",
    );
    let (id, password) = signed_visit_for_drbob(&app);

    let server = ReviewServer::plain(&app, &[]);
    let mut bob = Client::new(&server.url);
    bob.login("drbob", &password);
    let csrf = bob.csrf();
    let r = bob.post(&format!("/encounters/{id}/send"), &[("csrf", &csrf), ("to", "ehr:0")]);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("outside network.allow"), "{}", r.body);
}

/// Plain http EHR endpoints were accepted silently; now one in `ehr_endpoints` stops the review
/// app from starting, with what to do, and one listed as plain http on purpose is marked on the
/// send form.
#[test]
fn a_plain_http_ehr_must_be_named_as_such() {
    let app = Appliance::new();
    app.set_config("ehr_endpoints = []", "ehr_endpoints = [\"http://127.0.0.1:9/fhir\"]");
    let out = app.run(&["serve", "--listen", "127.0.0.1:0"], None);
    assert!(
        !out.status.success() && text(&out).contains("ehr_endpoints_plain_http"),
        "{}",
        text(&out)
    );
    app.set_config("ehr_endpoints = [\"http://127.0.0.1:9/fhir\"]", "ehr_endpoints = []");
    app.set_config(
        "ehr_endpoints_plain_http = []",
        "ehr_endpoints_plain_http = [\"http://127.0.0.1:9/fhir\"]",
    );
    let (id, password) = signed_visit_for_drbob(&app);
    let server = ReviewServer::plain(&app, &[]);
    let mut bob = Client::new(&server.url);
    bob.login("drbob", &password);
    let page = bob.get(&format!("/encounters/{id}"));
    assert!(
        page.body.contains("EHR: http://127.0.0.1:9/fhir (FHIR, unencrypted)"),
        "{}",
        page.body
    );
}

#[test]
fn the_firewall_rules_are_valid_nftables_for_the_allow_list() {
    let app = Appliance::new();
    app.set_config(
        "allow = [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"fc00::/7\", \"fe80::/10\"]",
        "allow = [\"10.9.0.0/16\", \"fd42::/48\"]",
    );
    let out = app
        .command(&["firewall"])
        .env("SCRIBE_WEB_LISTEN", "0.0.0.0:8443")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rules = String::from_utf8(out.stdout).unwrap();
    assert!(rules.contains("policy drop"), "{rules}");
    assert!(rules.contains("ip daddr { 10.9.0.0/16 } accept"), "{rules}");
    assert!(rules.contains("ip6 daddr { fd42::/48 } accept"), "{rules}");
    assert!(rules.contains("tcp dport 8443"), "{rules}");
    // nft's own parser and checker, without loading anything (nftables is a test package).
    let mut nft = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft (cargo xtask test installs nftables)");
    nft.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    let checked = nft.wait_with_output().unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
}
