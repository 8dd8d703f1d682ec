//! The review web app over real HTTP on loopback: who may do what, sessions, CSRF, lockout,
//! signing, immutability and exports. The drafts are real (test-profile models).

use std::sync::OnceLock;

use tests::web::{Client, Reply, ReviewServer};
use tests::{Appliance, text};

/// Users of the clinic, by what they are to an encounter recorded by nina for drbob.
const OWNER_CLINICIAN: &str = "nina";
const OTHER_CLINICIAN: &str = "omar";
const ASSIGNED_PHYSICIAN: &str = "drbob";
const OTHER_PHYSICIAN: &str = "drcat";
const IT_ADMIN: &str = "ivan";
const AUDITOR: &str = "alma";

/// The clinic's appliance, shared by the tests in this file (drafting is the slow part). Tests
/// that change an encounter use their own; each test serves the app in its own process.
struct Clinic {
    app: Appliance,
    /// A draft awaiting review and an already signed note, both nina's visits for drbob.
    draft: String,
    signed: String,
}

fn password(user: &str) -> String {
    format!("correct horse {user}")
}

fn ingest_for_nina(app: &Appliance, label: &str) -> String {
    app.ingest_dialogue(label, OWNER_CLINICIAN, ASSIGNED_PHYSICIAN)
}

fn clinic() -> &'static Clinic {
    static CLINIC: OnceLock<Clinic> = OnceLock::new();
    CLINIC.get_or_init(|| {
        let app = Appliance::new();
        for (user, role) in [
            (OWNER_CLINICIAN, "clinician"),
            (OTHER_CLINICIAN, "clinician"),
            (ASSIGNED_PHYSICIAN, "physician"),
            (OTHER_PHYSICIAN, "physician"),
            (IT_ADMIN, "it_admin"),
            (AUDITOR, "auditor"),
            ("lockme", "physician"),
        ] {
            app.add_user(user, role);
        }
        let draft = ingest_for_nina(&app, "Room 2, 10:30");
        let signed = ingest_for_nina(&app, "Room 3, 11:00");
        let out = app.run(
            &["sign", &signed, "--user", ASSIGNED_PHYSICIAN, "--acknowledge-flags"],
            Some(&format!("{}\n", password(ASSIGNED_PHYSICIAN))),
        );
        assert!(out.status.success(), "{}", text(&out));
        Clinic { app, draft, signed }
    })
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    User(&'static str),
    /// A physician logged in at another clinic's appliance, presenting that session here.
    OtherClinic,
}

fn client_for(server: &ReviewServer, who: Who) -> Client {
    let mut client = Client::new(&server.url);
    match who {
        Who::Anonymous => {}
        Who::User(u) => {
            client.login(u, &password(u));
        }
        Who::OtherClinic => {
            let other = Appliance::new();
            other.add_user("drzed", "physician");
            let there_server = ReviewServer::plain(&other, &[]);
            let mut there = Client::new(&there_server.url);
            there.login("drzed", &password("drzed"));
            client.cookie = there.cookie.clone();
        }
    }
    client
}

/// What a logged-in client sends with state changes.
struct Session {
    csrf: String,
    password: String,
}

/// What a cell of the matrix expects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Allowed: the request reached its handler and got this status (409/400 for requests that
    /// are deliberately stale or incomplete, so that allowed cells change nothing).
    Allow(u16),
    /// Refused with 403.
    Deny,
    /// Sent to the login page.
    Login,
}

fn outcome(r: &Reply) -> Expect {
    if r.to_login() {
        Expect::Login
    } else if r.status == 403 {
        Expect::Deny
    } else {
        Expect::Allow(r.status)
    }
}

#[test]
fn authorization_matrix_every_route_by_every_role() {
    use Expect::{Allow, Deny, Login};
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    let (d, s) = (c.draft.clone(), c.signed.clone());
    let who = [
        Who::Anonymous,
        Who::User(OWNER_CLINICIAN),
        Who::User(OTHER_CLINICIAN),
        Who::User(ASSIGNED_PHYSICIAN),
        Who::User(OTHER_PHYSICIAN),
        Who::User(IT_ADMIN),
        Who::User(AUDITOR),
        Who::OtherClinic,
    ];
    type Request = Box<dyn Fn(&mut Client, &Session) -> Reply>;
    let get = |path: String| -> Request { Box::new(move |cl: &mut Client, _: &Session| cl.get(&path)) };
    // Columns: anonymous, owner clinician, other clinician, assigned physician, other physician,
    // IT admin, auditor, another clinic's physician.
    let rows: Vec<(&str, Request, [Expect; 8])> = vec![
        (
            "GET /inbox",
            get("/inbox".into()),
            [Login, Allow(200), Allow(200), Allow(200), Allow(200), Deny, Deny, Login],
        ),
        (
            "GET /encounters/D",
            get(format!("/encounters/{d}")),
            [Login, Allow(200), Deny, Allow(200), Deny, Deny, Deny, Login],
        ),
        (
            "GET /encounters/D/audio",
            get(format!("/encounters/{d}/audio?start_ms=0&end_ms=1000")),
            [Login, Allow(200), Deny, Allow(200), Deny, Deny, Deny, Login],
        ),
        (
            "POST /encounters/D/edit (stale version)",
            Box::new({
                let d = d.clone();
                move |cl: &mut Client, me: &Session| {
                    cl.post(
                        &format!("/encounters/{d}/edit"),
                        &[
                            ("csrf", &me.csrf),
                            ("base_version", "0"),
                            ("section", "0"),
                            ("sentence", "0"),
                            ("text", "x"),
                        ],
                    )
                }
            }),
            [Login, Allow(409), Deny, Allow(409), Deny, Deny, Deny, Login],
        ),
        (
            "GET /encounters/D/sign",
            get(format!("/encounters/{d}/sign")),
            [Login, Deny, Deny, Allow(200), Deny, Deny, Deny, Login],
        ),
        (
            "POST /encounters/D/sign (stale version)",
            Box::new({
                let d = d.clone();
                move |cl: &mut Client, me: &Session| {
                    // Each user re-enters their own password; only the version is stale.
                    cl.post(
                        &format!("/encounters/{d}/sign"),
                        &[("csrf", &me.csrf), ("version", "0"), ("password", &me.password)],
                    )
                }
            }),
            [Login, Deny, Deny, Allow(409), Deny, Deny, Deny, Login],
        ),
        (
            "POST /encounters/D/break-glass (no reason)",
            Box::new({
                let d = d.clone();
                move |cl: &mut Client, me: &Session| {
                    cl.post(
                        &format!("/encounters/{d}/break-glass"),
                        &[("csrf", &me.csrf), ("reason", "")],
                    )
                }
            }),
            [Login, Deny, Deny, Allow(400), Allow(400), Deny, Deny, Login],
        ),
        (
            "GET /encounters/S/export/fhir",
            get(format!("/encounters/{s}/export/fhir")),
            [Login, Deny, Deny, Allow(200), Deny, Deny, Deny, Login],
        ),
        (
            "GET /encounters/S/export/hl7",
            get(format!("/encounters/{s}/export/hl7")),
            [Login, Deny, Deny, Allow(200), Deny, Deny, Deny, Login],
        ),
        (
            "POST /encounters/S/addenda (empty)",
            Box::new({
                let s = s.clone();
                move |cl: &mut Client, me: &Session| {
                    cl.post(
                        &format!("/encounters/{s}/addenda"),
                        &[("csrf", &me.csrf), ("text", " "), ("password", &me.password)],
                    )
                }
            }),
            [Login, Deny, Deny, Allow(400), Deny, Deny, Deny, Login],
        ),
        (
            "POST /encounters/S/send (no such destination)",
            Box::new({
                let s = s.clone();
                move |cl: &mut Client, me: &Session| {
                    cl.post(
                        &format!("/encounters/{s}/send"),
                        &[("csrf", &me.csrf), ("to", "nowhere")],
                    )
                }
            }),
            [Login, Deny, Deny, Allow(400), Deny, Deny, Deny, Login],
        ),
        (
            "GET /record",
            get("/record".into()),
            [Login, Allow(200), Allow(200), Allow(200), Allow(200), Deny, Deny, Login],
        ),
        (
            "POST /record (bad template name)",
            Box::new(|cl: &mut Client, me: &Session| {
                cl.post(
                    "/record",
                    &[
                        ("csrf", &me.csrf),
                        ("label", "x"),
                        ("template", "../x"),
                        ("physician", ""),
                    ],
                )
            }),
            [Login, Allow(400), Allow(400), Allow(400), Allow(400), Deny, Deny, Login],
        ),
        (
            "GET /record/D (not recording: to the visit)",
            get(format!("/record/{d}")),
            [Login, Allow(303), Deny, Allow(303), Deny, Deny, Deny, Login],
        ),
        (
            "GET /encounters/D/stream (not a WebSocket)",
            Box::new({
                let d = d.clone();
                move |cl: &mut Client, me: &Session| cl.get(&format!("/encounters/{d}/stream?csrf={}", me.csrf))
            }),
            // The draft is no longer recording: its owner and signer get 409, others 403.
            [Login, Allow(409), Deny, Allow(409), Deny, Deny, Deny, Login],
        ),
        (
            "GET /admin",
            get("/admin".into()),
            [Login, Deny, Deny, Deny, Deny, Allow(200), Deny, Login],
        ),
        (
            "POST /admin/users (invalid name)",
            Box::new(|cl: &mut Client, me: &Session| {
                cl.post(
                    "/admin/users",
                    &[
                        ("csrf", &me.csrf),
                        ("name", "X!"),
                        ("role", "clinician"),
                        ("password", "long enough password"),
                    ],
                )
            }),
            [Login, Deny, Deny, Deny, Deny, Allow(400), Deny, Login],
        ),
        (
            "GET /admin/compliance",
            get("/admin/compliance".into()),
            [Login, Deny, Deny, Deny, Deny, Allow(200), Deny, Login],
        ),
        (
            "GET /audit",
            get("/audit".into()),
            [Login, Deny, Deny, Deny, Deny, Allow(200), Allow(200), Login],
        ),
        (
            "GET /audit/export.csv",
            get("/audit/export.csv".into()),
            [Login, Deny, Deny, Deny, Deny, Allow(200), Allow(200), Login],
        ),
    ];

    let mut clients: Vec<(Who, Client, Session)> = who
        .iter()
        .map(|&w| {
            let mut cl = client_for(&server, w);
            let me = match w {
                Who::User(u) => Session {
                    csrf: cl.csrf(),
                    password: password(u),
                },
                _ => Session {
                    csrf: "no-session".into(),
                    password: "none".into(),
                },
            };
            (w, cl, me)
        })
        .collect();
    let mut failures = Vec::new();
    for (name, request, expected) in &rows {
        for ((w, cl, me), want) in clients.iter_mut().zip(expected) {
            let reply = request(cl, me);
            let got = outcome(&reply);
            if got != *want {
                failures.push(format!(
                    "{name} as {w:?}: expected {want:?}, got {got:?} ({})",
                    reply.status
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );

    // Nothing in the matrix changed the draft or the signed note.
    let show = c.app.show(&d);
    assert_eq!(show["state"], "awaiting_review", "{show}");
    assert_eq!(c.app.show(&s)["state"], "signed");
}

#[test]
fn state_changes_need_the_session_csrf_token_and_a_same_origin_request() {
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    let mut bob = client_for(&server, Who::User(ASSIGNED_PHYSICIAN));
    let csrf = bob.csrf();
    let edit = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("base_version", "1".to_string()),
            ("section", "0".to_string()),
            ("sentence", "0".to_string()),
            ("text", "Edited by an attacker.".to_string()),
        ]
    };
    let path = format!("/encounters/{}/edit", c.draft);
    let as_refs = |v: &[(&'static str, String)]| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    for bad in ["", "0000", &"f".repeat(64)] {
        let form = as_refs(&edit(bad));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = bob.post(&path, &form);
        assert_eq!(r.status, 403, "csrf {bad:?} was accepted: {r:?}");
    }
    let good = as_refs(&edit(&csrf));
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = bob.post_with(&path, &[("Origin", "https://evil.example")], &good);
    assert_eq!(r.status, 403, "a cross-origin POST was accepted: {r:?}");
    let r = bob.post_with(&path, &[("Sec-Fetch-Site", "cross-site")], &good);
    assert_eq!(r.status, 403, "a cross-site POST was accepted: {r:?}");
    let r = bob.get(&format!("/encounters/{}", c.draft));
    assert!(!r.body.contains("Edited by an attacker."), "the draft changed");
    assert_eq!(c.app.show(&c.draft)["draft_version"], 1);
}

#[test]
fn login_issues_a_fresh_session_token_and_logout_ends_it() {
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    let mut cl = Client::new(&server.url);
    // An attacker-planted token is not adopted at login.
    cl.cookie = Some("a".repeat(64));
    cl.login(OWNER_CLINICIAN, &password(OWNER_CLINICIAN));
    let first = cl.cookie.clone().unwrap();
    assert_ne!(first, "a".repeat(64));
    assert_eq!(first.len(), 64);
    // Logging in again rotates the token and retires the old one.
    cl.login(OWNER_CLINICIAN, &password(OWNER_CLINICIAN));
    let second = cl.cookie.clone().unwrap();
    assert_ne!(first, second);
    let mut stale = Client::new(&server.url);
    stale.cookie = Some(first);
    assert!(stale.get("/inbox").to_login());
    // The cookie is out of reach of scripts and other sites.
    let mut fresh = Client::new(&server.url);
    let r = fresh.post(
        "/login",
        &[("user", OWNER_CLINICIAN), ("password", &password(OWNER_CLINICIAN))],
    );
    let cookie = r.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let csrf = cl.csrf();
    let r = cl.post("/logout", &[("csrf", &csrf)]);
    assert!(r.to_login(), "{r:?}");
    let mut after = Client::new(&server.url);
    after.cookie = Some(second);
    assert!(after.get("/inbox").to_login());
}

#[test]
fn an_idle_session_is_logged_off() {
    let app = Appliance::new();
    app.add_user("nina", "clinician");
    let server = ReviewServer::plain(&app, &[("SCRIBE_WEB_IDLE_TIMEOUT", "2s")]);
    let mut cl = Client::new(&server.url);
    cl.login("nina", &password("nina"));
    assert_eq!(cl.get("/inbox").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(cl.get("/inbox").status, 200, "activity keeps the session alive");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let r = cl.get("/inbox");
    assert!(
        r.to_login() && r.location.as_deref() == Some("/login?expired=1"),
        "{r:?}"
    );
}

#[test]
fn repeated_wrong_passwords_lock_the_account_until_it_admin_unlocks_it() {
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    let mut cl = Client::new(&server.url);
    for _ in 0..5 {
        let r = cl.post("/login", &[("user", "lockme"), ("password", "wrong password")]);
        assert_eq!(r.location.as_deref(), Some("/login?failed=1"), "{r:?}");
    }
    let r = cl.post("/login", &[("user", "lockme"), ("password", &password("lockme"))]);
    assert_eq!(
        r.location.as_deref(),
        Some("/login?failed=1"),
        "the right password got in while locked: {r:?}"
    );
    let mut ivan = client_for(&server, Who::User(IT_ADMIN));
    let admin = ivan.get("/admin");
    assert!(admin.body.contains("/admin/users/lockme/unlock"), "{}", admin.body);
    let csrf = ivan.csrf();
    let r = ivan.post("/admin/users/lockme/unlock", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{r:?}");
    cl.login("lockme", &password("lockme"));
    let audit = ivan.get("/audit?actor=lockme");
    assert!(
        audit.body.contains("user.lockout") && audit.body.contains("login.locked"),
        "{}",
        audit.body
    );
    // Each attempt names the address it came from.
    assert!(audit.body.contains("<td>127.0.0.1</td>"), "{}", audit.body);
}

#[test]
fn an_edit_is_rechecked_and_every_open_flag_is_seen_before_signing() {
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    let id = ingest_for_nina(&c.app, "Room 4, 11:30");
    let mut bob = client_for(&server, Who::User(ASSIGNED_PHYSICIAN));
    let csrf = bob.csrf();
    let sign = format!("/encounters/{id}/sign");

    // The edit that used to pass unflagged: a new drug and dose behind the old citations.
    let show = c.app.show(&id);
    let cites = show["draft"]["sections"][0]["sentences"][0]["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("S{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let r = bob.post(
        &format!("/encounters/{id}/edit"),
        &[
            ("csrf", &csrf),
            ("base_version", "1"),
            ("section", "0"),
            ("sentence", "0"),
            ("text", "Oxycodone 80 mg every 4 hours."),
            ("cites", &cites),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let edited = &c.app.show(&id)["draft"]["sections"][0]["sentences"][0];
    assert_eq!(edited["edited_by"], ASSIGNED_PHYSICIAN, "{edited}");
    let flags: Vec<String> = edited["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["kind"].as_str().unwrap(), f["term"].as_str().unwrap()))
        .collect();
    for expected in ["unsupported_medication oxycodone", "unsupported_number 80"] {
        assert!(flags.iter().any(|f| f == expected), "{expected} missing from {flags:?}");
    }
    let page = bob.get(&format!("/encounters/{id}"));
    assert!(page.body.contains("edited by"), "the page hides the edit");
    // A citation that does not exist is refused, and nothing changes.
    let r = bob.post(
        &format!("/encounters/{id}/edit"),
        &[
            ("csrf", &csrf),
            ("base_version", "2"),
            ("section", "0"),
            ("sentence", "0"),
            ("text", "Oxycodone 80 mg every 4 hours."),
            ("cites", "S9999"),
        ],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(c.app.show(&id)["draft_version"], 2);

    // While a flag is open there is no sign form, and a signature is refused.
    let page = bob.get(&sign);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("still open") && page.input("version").is_none(),
        "{}",
        page.body
    );
    let r = bob.post(
        &sign,
        &[
            ("csrf", &csrf),
            ("version", "2"),
            ("password", &password(ASSIGNED_PHYSICIAN)),
        ],
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.body.contains("open flag"), "{}", r.body);
    assert_eq!(c.app.show(&id)["state"], "awaiting_review");

    // A clinician may edit but not acknowledge: that is the signer's call.
    let mut nina = client_for(&server, Who::User(OWNER_CLINICIAN));
    let nina_csrf = nina.csrf();
    let r = nina.post(
        &format!("/encounters/{id}/acknowledge"),
        &[
            ("csrf", &nina_csrf),
            ("base_version", "2"),
            ("section", "0"),
            ("sentence", "0"),
            ("flag", "0"),
        ],
    );
    assert_eq!(r.status, 403, "{r:?}");

    let (acknowledged, version) = bob.acknowledge_flags(&id);
    assert!(acknowledged >= 2, "{acknowledged}");
    let page = bob.get(&sign);
    assert!(page.body.contains("were acknowledged"), "{}", page.body);
    let r = bob.post(
        &sign,
        &[("csrf", &csrf), ("version", &version), ("password", "not my password")],
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(c.app.show(&id)["state"], "awaiting_review");
    let r = bob.post(
        &sign,
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("password", &password(ASSIGNED_PHYSICIAN)),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let signed = c.app.show(&id);
    assert_eq!(signed["state"], "signed");
    let out = c.app.run(&["show", &id], None);
    let shown = text(&out);
    assert!(
        shown.contains(&format!(
            "- Oxycodone 80 mg every 4 hours. [{cites}]\n  edited-by: {ASSIGNED_PHYSICIAN}\n"
        )) && shown.contains(&format!(
            "flag: unsupported_medication \"oxycodone\" acknowledged-by: {ASSIGNED_PHYSICIAN}"
        )),
        "the signed text does not record the review: {shown}"
    );

    // Signed means read-only: no edits, no second signature.
    let edit = bob.post(
        &format!("/encounters/{id}/edit"),
        &[
            ("csrf", &csrf),
            ("base_version", &version),
            ("section", "0"),
            ("sentence", "0"),
            ("text", "Changed."),
        ],
    );
    assert_eq!(edit.status, 409, "{edit:?}");
    let again = bob.post(
        &sign,
        &[
            ("csrf", &csrf),
            ("version", &version),
            ("password", &password(ASSIGNED_PHYSICIAN)),
        ],
    );
    assert_eq!(again.status, 409, "{again:?}");
    let page = bob.get(&format!("/encounters/{id}"));
    assert!(
        !page.body.contains("name=\"base_version\""),
        "a signed note offers edits"
    );
    assert!(page.body.contains("Signature verified."), "{}", page.body);

    // A correction is a signed addendum; the note itself still verifies.
    let r = bob.post(
        &format!("/encounters/{id}/addenda"),
        &[
            ("csrf", &csrf),
            ("text", "Patient called: fever started today."),
            ("password", &password(ASSIGNED_PHYSICIAN)),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let show = c.app.show(&id);
    assert_eq!(show["state"], "amended", "{show}");
    let out = c.app.run(&["verify", &id], None);
    assert!(out.status.success(), "{}", text(&out));
    let text_export = bob.get(&format!("/encounters/{id}/export/text"));
    assert!(text_export.body.contains("ADDENDUM 1") && text_export.body.contains("fever started today"));
    let fhir: serde_json::Value =
        serde_json::from_str(&bob.get(&format!("/encounters/{id}/export/fhir")).body).unwrap();
    assert_eq!(fhir["docStatus"], "amended");

    // A clinician cannot sign, even with their own password.
    let mut nina = client_for(&server, Who::User(OWNER_CLINICIAN));
    let ncsrf = nina.csrf();
    let r = nina.post(
        &sign,
        &[
            ("csrf", &ncsrf),
            ("version", "1"),
            ("password", &password(OWNER_CLINICIAN)),
        ],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn break_glass_needs_a_reason_and_is_marked_in_the_audit_trail() {
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    // Its own visit: a grant on the shared draft would change the authorization matrix.
    let id = ingest_for_nina(&c.app, "Room 5, 12:00");
    let mut cat = client_for(&server, Who::User(OTHER_PHYSICIAN));
    let page = cat.get(&format!("/encounters/{id}"));
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Break glass"), "{}", page.body);
    let csrf = cat.csrf();
    let r = cat.post(
        &format!("/encounters/{id}/break-glass"),
        &[
            ("csrf", &csrf),
            ("kind", "covering"),
            ("reason", "Covering for drbob: patient in ED"),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let page = cat.get(&format!("/encounters/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Break-glass access"), "{}", page.body);
    let mut alma = client_for(&server, Who::User(AUDITOR));
    let audit = alma.get(&format!("/audit?encounter={id}&actor={OTHER_PHYSICIAN}"));
    assert!(
        audit.body.contains("break-glass: covering: Covering for drbob") && audit.body.contains("break-glass: review"),
        "{}",
        audit.body
    );
}

#[test]
fn plain_http_is_refused_off_loopback_and_tls_serves_the_provisioned_certificate() {
    let app = Appliance::new();
    app.add_user("drbob", "physician");
    app.set_config("tls = true", "tls = false");
    let out = app.run(&["serve", "--listen", "0.0.0.0:0"], None);
    assert!(
        !out.status.success() && text(&out).contains("only allowed on a loopback"),
        "{}",
        text(&out)
    );
    app.set_config("tls = false", "tls = true");

    let server = ReviewServer::tls(&app);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let cert = std::fs::read(app.home().join("tls/ca.pem")).unwrap();
    let mut cl = Client::trusting(&server.url.replace("127.0.0.1", "localhost"), &cert);
    cl.login("drbob", &password("drbob"));
    let r = cl.get("/inbox");
    assert_eq!(r.status, 200);
    assert!(r.header("strict-transport-security").is_some(), "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[test]
fn fhir_export_is_a_valid_r4_document_reference() {
    let c = clinic();
    let server = ReviewServer::plain(&c.app, &[]);
    let mut bob = client_for(&server, Who::User(ASSIGNED_PHYSICIAN));
    let r = bob.get(&format!("/encounters/{}/export/fhir", c.signed));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.json");
    std::fs::write(&file, &r.body).unwrap();
    let out = tests::python_with_fhir()
        .arg("-c")
        .arg(
            "import sys, json\n\
             from fhir.resources.R4B.documentreference import DocumentReference\n\
             doc = DocumentReference.parse_raw(open(sys.argv[1]).read())\n\
             comp = doc.contained[0]\n\
             assert comp.resource_type == 'Composition', comp.resource_type\n\
             assert comp.status == 'final' and comp.attester[0].mode == 'legal'\n\
             assert comp.type.coding[0].system == 'http://loinc.org'\n\
             print('valid', doc.docStatus, len(comp.section))\n",
        )
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "fhir.resources rejected the export: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("valid final"),
        "{}",
        text(&out)
    );
}

/// A stand-in EHR on loopback: answers each request with `status` and hands the request over.
fn fake_ehr(status: u16) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/fhir", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 65536];
            // Read headers, then as much body as Content-Length says.
            loop {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tx.send(String::from_utf8_lossy(&request).to_string());
        }
    });
    (url, rx)
}

#[test]
fn signed_notes_go_to_the_export_folder_and_allow_listed_ehrs_only() {
    let app = Appliance::new();
    app.add_user(ASSIGNED_PHYSICIAN, "physician");
    app.add_user(OWNER_CLINICIAN, "clinician");
    app.add_user(AUDITOR, "auditor");
    let id = ingest_for_nina(&app, "Room 6, 14:00");
    let out = app.run(
        &["sign", &id, "--user", ASSIGNED_PHYSICIAN, "--acknowledge-flags"],
        Some(&format!("{}\n", password(ASSIGNED_PHYSICIAN))),
    );
    assert!(out.status.success(), "{}", text(&out));
    let folder = tempfile::tempdir().unwrap();
    let (ok_ehr, received) = fake_ehr(201);
    let (failing_ehr, _) = fake_ehr(500);
    app.set_config(
        "folder = \"\"\n",
        &format!("folder = \"{}\"\n", folder.path().display()),
    );
    app.set_config(
        "ehr_endpoints_plain_http = []",
        &format!("ehr_endpoints_plain_http = [\"{ok_ehr}\", \"{failing_ehr}\"]"),
    );
    let server = ReviewServer::plain(&app, &[]);
    let mut bob = Client::new(&server.url);
    bob.login(ASSIGNED_PHYSICIAN, &password(ASSIGNED_PHYSICIAN));
    let page = bob.get(&format!("/encounters/{id}"));
    assert!(page.body.contains(&ok_ehr), "the allow-listed EHR is not offered");
    let csrf = bob.csrf();
    let send = format!("/encounters/{id}/send");

    // Whoever else can write to the share plants a symlink where the export used to write first;
    // the note must not go through it.
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, folder.path().join(format!(".note-{id}.json.partial"))).unwrap();
    let r = bob.post(&send, &[("csrf", &csrf), ("to", "folder")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let file = folder.path().join(format!("note-{id}.json"));
    assert!(file.symlink_metadata().unwrap().is_file());
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["resourceType"], "DocumentReference");

    let r = bob.post(&send, &[("csrf", &csrf), ("to", "ehr:0")]);
    assert_eq!(r.status, 200, "{r:?}");
    let request = received.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(request.starts_with("POST /fhir/DocumentReference "), "{request}");
    assert!(
        request.contains("application/fhir+json") && request.contains("\"docStatus\""),
        "{request}"
    );

    // A failing EHR is reported; no destination outside the allow-list can be named.
    let r = bob.post(&send, &[("csrf", &csrf), ("to", "ehr:1")]);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("answered 500"), "{}", r.body);
    let r = bob.post(&send, &[("csrf", &csrf), ("to", "ehr:2")]);
    assert_eq!(r.status, 400);
    let r = bob.post(&send, &[("csrf", &csrf), ("to", "https://example.com/fhir")]);
    assert_eq!(r.status, 400);

    // Each send is in the audit trail with its destination.
    let mut alma = Client::new(&server.url);
    alma.login(AUDITOR, &password(AUDITOR));
    let audit = alma.get(&format!("/audit?encounter={id}"));
    for action in [
        "note.export:fhir:folder",
        "note.export:fhir:ehr0",
        "note.export:fhir:ehr1",
    ] {
        assert!(audit.body.contains(action), "{action} not audited");
    }
}

/// Someone with write access to the database changes the draft a signed note was made from.
/// The database refuses; and with its guard dropped, pages and exports refuse to show a draft
/// that no longer derives the signed text, rather than showing what was never signed.
#[test]
fn a_signed_notes_draft_cannot_be_changed_and_a_changed_one_is_never_shown() {
    let app = Appliance::new();
    app.add_user(ASSIGNED_PHYSICIAN, "physician");
    app.add_user(OWNER_CLINICIAN, "clinician");
    let id = ingest_for_nina(&app, "Room 7, 15:00");
    let out = app.run(
        &["sign", &id, "--user", ASSIGNED_PHYSICIAN, "--acknowledge-flags"],
        Some(&format!("{}\n", password(ASSIGNED_PHYSICIAN))),
    );
    assert!(out.status.success(), "{}", text(&out));
    let db = app.open_raw();
    let tamper =
        "UPDATE drafts SET body = replace(body, '\"text\":\"', '\"text\":\"TAMPERED ') WHERE encounter_id = ?1";
    for attempt in [
        tamper,
        "DELETE FROM drafts WHERE encounter_id = ?1",
        "INSERT INTO drafts (encounter_id, version, body, model, created_ms) SELECT encounter_id, version + 1, body, model, created_ms FROM drafts WHERE encounter_id = ?1",
    ] {
        let err = db.execute(attempt, [&id]).unwrap_err();
        assert!(err.to_string().contains("immutable"), "{attempt}: {err}");
    }

    db.execute_batch("DROP TRIGGER signed_drafts_are_immutable").unwrap();
    assert!(db.execute(tamper, [&id]).unwrap() >= 1);
    drop(db);
    let server = ReviewServer::plain(&app, &[]);
    let mut bob = Client::new(&server.url);
    bob.login(ASSIGNED_PHYSICIAN, &password(ASSIGNED_PHYSICIAN));
    for page in [format!("/encounters/{id}"), format!("/encounters/{id}/export/text")] {
        let r = bob.get(&page);
        assert_eq!(r.status, 500, "{page}: {r:?}");
        assert!(!r.body.contains("TAMPERED"), "{page} shows a draft that was not signed");
    }
}

#[test]
fn a_recorded_visit_plays_back_segment_by_segment_and_each_play_is_audited() {
    let c = clinic();
    let (out, id) = c.app.ingest(&[
        tests::visit_wav().to_str().unwrap(),
        "--clinician",
        OWNER_CLINICIAN,
        "--physician",
        ASSIGNED_PHYSICIAN,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();
    let server = ReviewServer::plain(&c.app, &[]);
    let mut bob = client_for(&server, Who::User(ASSIGNED_PHYSICIAN));
    let page = bob.get(&format!("/encounters/{id}"));
    let src = page
        .body
        .split("data-src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a play button per segment")
        .replace("&amp;", "&");
    let r = bob.get(&src);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("audio/wav"));
    let q = |k: &str| -> u64 {
        src.split(&format!("{k}="))
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let expected_bytes = (q("end_ms") - q("start_ms")) * 32;
    let declared = r.header("content-length").unwrap().parse::<u64>().unwrap();
    assert_eq!(
        declared,
        44 + expected_bytes,
        "WAV of the segment's span at 16 kHz, 16-bit"
    );
    let mut alma = client_for(&server, Who::User(AUDITOR));
    let audit = alma.get(&format!("/audit?encounter={id}"));
    assert!(audit.body.contains("audio.read") && audit.body.contains("review: playback"));
    // A clinician who did not record it cannot play it.
    let mut omar = client_for(&server, Who::User(OTHER_CLINICIAN));
    assert_eq!(omar.get(&src).status, 403);
}
