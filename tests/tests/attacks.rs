//! Attacks from the clinic network on the review app, each performed against a real server on
//! loopback: every bound on outside input (user names, login attempts, uploads, the recording
//! stream, playback ranges, form fields, audit pages) is a test that does what an attacker would.

use tests::web::{Client, Recorder, Reply, ReviewServer};
use tests::{Appliance, text};

const AUDITOR: &str = "alma";
const CLINICIAN: &str = "nina";

fn password(user: &str) -> String {
    format!("correct horse {user}")
}

fn chunks_stored(app: &Appliance, id: &str) -> i64 {
    app.open_raw()
        .query_row("SELECT COUNT(*) FROM audio_chunks WHERE encounter_id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
}

/// An appliance with a clinician logged in, and a visit of hers open for recording.
fn recording_visit() -> (Appliance, ReviewServer, Client, String, String) {
    recording_visit_with(&[])
}

/// [`recording_visit`], the review app run with `env`.
fn recording_visit_with(env: &[(&str, &str)]) -> (Appliance, ReviewServer, Client, String, String) {
    let app = Appliance::new();
    app.add_user(CLINICIAN, "clinician");
    let server = ReviewServer::plain(&app, env);
    let mut nina = Client::new(&server.url);
    nina.login(CLINICIAN, &password(CLINICIAN));
    let csrf = nina.csrf();
    let r = nina.post(
        "/record",
        &[
            ("csrf", &csrf),
            ("label", "Room 2"),
            ("template", "soap"),
            ("physician", ""),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let id = r.location.unwrap().trim_start_matches("/record/").to_string();
    (app, server, nina, csrf, id)
}

/// The attack from the clinic network: anonymous logins with megabyte user names. Each one was
/// kept whole in the audit trail for ever (200 grew a database from 139 KB to 217 MB, and /audit
/// served 208 MB). Now a name no account could have leaves a small event, and after ten failures
/// the address must wait, turned away before any password check or audit write.
#[test]
fn a_flood_of_anonymous_logins_is_slowed_and_leaves_a_bounded_trace() {
    let app = Appliance::new();
    app.add_user(AUDITOR, "auditor");
    let server = ReviewServer::plain(&app, &[]);
    // The auditor logged in before the flood; the flood comes from the same (loopback) address.
    let mut alma = Client::new(&server.url);
    alma.login(AUDITOR, &password(AUDITOR));
    let db_bytes = || -> u64 {
        let db = app.db();
        let wal = db.with_extension("db-wal");
        [db, wal]
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum()
    };
    let before = db_bytes();
    let huge = "x".repeat(1_000_000);
    let mut attacker = Client::new(&server.url);
    let replies: Vec<Reply> = (0..40)
        .map(|_| attacker.post("/login", &[("user", &huge), ("password", "guess")]))
        .collect();
    // Ten attempts are refused as any failed login; the eleventh comes within the second the
    // address must then wait, and is turned away, as is every attempt while it waits.
    for (i, r) in replies.iter().enumerate().take(11) {
        if i < 10 {
            assert_eq!(r.location.as_deref(), Some("/login?failed=1"), "attempt {i}: {r:?}");
        } else {
            assert_eq!(r.status, 429, "attempt {i}: {}", r.status);
        }
    }
    let turned_away: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(turned_away.len() >= 25, "only {} of 40 turned away", turned_away.len());
    for r in &turned_away {
        assert!(
            r.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()),
            "{:?}",
            r.headers
        );
        assert!(
            r.body.contains("Too many failed logins from this address"),
            "{}",
            r.body
        );
    }
    let grew = db_bytes().saturating_sub(before);
    assert!(
        grew < 400_000,
        "40 logins with 1 MB names grew the database by {grew} bytes"
    );
    let audit = alma.get("/audit");
    assert_eq!(audit.status, 200);
    assert!(audit.body.len() < 400_000, "/audit is {} bytes", audit.body.len());
    assert_eq!(
        audit.body.matches("<td>login.invalid_name</td>").count(),
        40 - turned_away.len(),
        "each attempt that reached the store is audited, the turned-away ones are not"
    );
    assert!(!audit.body.contains("xxxxxxxxxx"), "the name itself is not kept");
}

/// A recording stream took messages of up to 64 MiB, each buffered whole before it was refused.
/// Now a message over one second of audio ends the stream as it arrives.
#[test]
fn an_oversized_recording_message_ends_the_stream_without_being_buffered() {
    let (app, _server, nina, csrf, id) = recording_visit();
    let mut recorder = Recorder::open(&nina, &csrf, &id).unwrap();
    assert_eq!(recorder.send(0, &[100; 16_000]).unwrap()["ack"], 0);
    // Ten megabytes in one message: before, the appliance read it all and answered with a JSON
    // error; now the connection is closed at the limit.
    let reply = recorder.send(1, &vec![100i16; 5_000_000]);
    assert!(reply.is_err(), "the oversized message was read and answered: {reply:?}");
    assert_eq!(chunks_stored(&app, &id), 1);
    // The recorder reconnects and goes on, as after any network drop.
    let mut again = Recorder::open(&nina, &csrf, &id).unwrap();
    assert_eq!(again.send(1, &[100; 16_000]).unwrap()["ack"], 1);
    assert_eq!(chunks_stored(&app, &id), 2);
}

/// A recording stream lived on after its session ended: audio kept arriving after logout. Now
/// each message is taken under the session, and logging out ends the stream.
#[test]
fn a_recording_stream_ends_with_its_session() {
    let (app, _server, mut nina, csrf, id) = recording_visit();
    let mut recorder = Recorder::open(&nina, &csrf, &id).unwrap();
    assert_eq!(recorder.send(0, &[100; 16_000]).unwrap()["ack"], 0);
    let r = nina.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{r:?}");
    let reply = recorder.send(1, &[100; 16_000]).unwrap();
    assert!(
        reply["error"].as_str().is_some_and(|e| e.starts_with("logged off")),
        "{reply}"
    );
    assert_eq!(chunks_stored(&app, &id), 1, "nothing is stored after logout");
    // Logging out is itself in the audit trail.
    let logouts: i64 = app
        .open_raw()
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'logout' AND actor = ?1",
            [CLINICIAN],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logouts, 1);
}

/// A playback range far past the recording (start_ms near 2^60) overflowed `ms * 16` and
/// panicked the handler. Now it is an empty span, and the server goes on.
#[test]
fn a_playback_range_past_the_recording_does_not_break_the_server() {
    let (_app, server, nina, csrf, id) = recording_visit();
    let mut recorder = Recorder::open(&nina, &csrf, &id).unwrap();
    for seq in 0..2 {
        assert_eq!(recorder.send(seq, &[100; 16_000]).unwrap()["ack"], seq);
    }
    let mut nina = nina;
    let start = (1u64 << 60) - 1;
    let r = nina
        .try_get(&format!(
            "/encounters/{id}/audio?start_ms={start}&end_ms={}",
            start + 1000
        ))
        .expect("the server answers instead of dropping the connection");
    assert_eq!(r.status, 200, "{r:?}");
    let ok = nina.get(&format!("/encounters/{id}/audio?start_ms=0&end_ms=1000"));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("audio/wav"));
    drop(server);
}

/// A visit label or another text field of the upload form could be as large as the upload limit
/// (512 MiB), read whole into memory and stored. Now labels are short and form fields are read
/// only up to a kilobyte.
#[test]
fn oversized_form_fields_are_refused() {
    let (app, _server, mut nina, csrf, _id) = recording_visit();
    let before = app.encounter_count();
    let long_label = "Room 2 ".repeat(50_000);
    let r = nina.post(
        "/record",
        &[
            ("csrf", &csrf),
            ("label", &long_label),
            ("template", "soap"),
            ("physician", ""),
        ],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("a visit label is at most 120 characters"), "{}", r.body);
    // A text field over a kilobyte is refused as it is read. The answer may reach the client, or
    // the connection may close under it with the rest of the form unread.
    let long_field = "Room 2 ".repeat(300);
    let fields = [
        ("csrf", csrf.as_str()),
        ("label", &long_field),
        ("template", "soap"),
        ("physician", ""),
    ];
    match nina.try_post_file("/upload", &fields, ("recording", "visit.wav", b"RIFF")) {
        Ok(r) => {
            assert_eq!(r.status, 400, "{r:?}");
            assert!(r.body.contains("field is over 1024 bytes"), "{}", r.body);
        }
        Err(e) => {
            let e = e.to_string().to_lowercase();
            assert!(
                ["pipe", "reset", "closed", "aborted"].iter().any(|w| e.contains(w)),
                "{e}"
            );
        }
    }
    assert_eq!(app.encounter_count(), before, "nothing was stored");
}

/// Break-glass was a master key: any physician with a ten-character reason could edit, sign,
/// export and send another physician's visit, as often as they liked. Now a grant without the
/// password only reads, a reason comes from a list, and a physician gets five a day.
#[test]
fn break_glass_reads_only_without_the_password_and_is_limited() {
    let app = Appliance::new();
    for (user, role) in [
        (CLINICIAN, "clinician"),
        ("drbob", "physician"),
        ("drcat", "physician"),
        (AUDITOR, "auditor"),
    ] {
        app.add_user(user, role);
    }
    let id = app.ingest_dialogue("Room 5", CLINICIAN, "drbob");
    let server = ReviewServer::plain(&app, &[]);
    let mut cat = Client::new(&server.url);
    cat.login("drcat", &password("drcat"));
    let csrf = cat.csrf();
    let page = cat.get(&format!("/encounters/{id}"));
    assert_eq!(page.status, 403);
    let break_glass = |cat: &mut Client, kind: &str, password: &str| {
        cat.post(
            &format!("/encounters/{id}/break-glass"),
            &[
                ("csrf", &csrf),
                ("kind", kind),
                ("reason", "Patient called about results"),
                ("password", password),
            ],
        )
    };
    // A reason from the list is required.
    assert_eq!(break_glass(&mut cat, "curiosity", "").status, 400);

    // Without the password: the visit opens, read-only.
    assert_eq!(break_glass(&mut cat, "patient-request", "").status, 303);
    let page = cat.get(&format!("/encounters/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Read-only"), "{}", page.body);
    assert_eq!(cat.get(&format!("/encounters/{id}/sign")).status, 403);
    let r = cat.post(
        &format!("/encounters/{id}/sign"),
        &[("csrf", &csrf), ("version", "1"), ("password", &password("drcat"))],
    );
    assert_eq!(r.status, 403, "signed on a read-only grant: {r:?}");
    assert_eq!(cat.get(&format!("/encounters/{id}/export/text")).status, 403);

    // A wrong password grants nothing more; the right one grants writes.
    assert_eq!(break_glass(&mut cat, "covering", "not my password").status, 403);
    assert_eq!(cat.get(&format!("/encounters/{id}/sign")).status, 403);
    assert_eq!(break_glass(&mut cat, "covering", &password("drcat")).status, 303);
    assert_eq!(cat.get(&format!("/encounters/{id}/sign")).status, 200);
    let (_, version) = cat.acknowledge_flags(&id);
    let r = cat.post(
        &format!("/encounters/{id}/sign"),
        &[("csrf", &csrf), ("version", &version), ("password", &password("drcat"))],
    );
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(cat.get(&format!("/encounters/{id}/export/text")).status, 200);

    // Five grants a day (two so far, the wrong password granted none).
    for _ in 0..3 {
        assert_eq!(break_glass(&mut cat, "continuity", "").status, 303);
    }
    let r = break_glass(&mut cat, "continuity", "");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("more than 5 times in 24 hours"), "{}", r.body);

    // The security owner's view lists every grant, read-only or not.
    let mut alma = Client::new(&server.url);
    alma.login(AUDITOR, &password(AUDITOR));
    let audit = alma.get("/audit");
    assert_eq!(audit.body.matches("<td>read-only</td>").count(), 4, "{}", audit.body);
    assert_eq!(audit.body.matches("<td>read and write (password)</td>").count(), 1);
    assert!(audit.body.contains("patient-request: Patient called about results"));
}

/// An IT admin could create a physician account with a password of their choosing and use it to
/// open the clinic's visits. Now a new account has no password until its owner sets one with a
/// one-time enrolment code; IT can disable, enable and reset accounts, and each event names the
/// account.
#[test]
fn new_accounts_are_enrolled_by_their_owner_and_can_be_disabled_and_reset() {
    let app = Appliance::new();
    app.add_user("ivan", "it_admin");
    let server = ReviewServer::plain(&app, &[]);
    let mut ivan = Client::new(&server.url);
    ivan.login("ivan", &password("ivan"));
    let csrf = ivan.csrf();
    let code_in = |r: &Reply| {
        let at = r.body.find("id=\"enrolment-code\">").expect("the code is shown") + 20;
        r.body[at..at + r.body[at..].find('<').unwrap()].to_string()
    };
    // A password IT chooses is not taken; the account waits for its owner.
    let r = ivan.post(
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("name", "drnew"),
            ("role", "physician"),
            ("password", "chosen by it 123"),
        ],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let code = code_in(&r);
    assert_eq!(code.len(), 16);
    let login = |password: &str| {
        let mut c = Client::new(&server.url);
        let r = c.post("/login", &[("user", "drnew"), ("password", password)]);
        (r.location.as_deref() == Some("/"), c)
    };
    assert!(!login("chosen by it 123").0, "IT's password opened the account");
    let enrol = |code: &str, password: &str| {
        Client::new(&server.url).post("/enrol", &[("user", "drnew"), ("code", code), ("password", password)])
    };
    assert_eq!(enrol("wrongcodewrongco", "a password of my own").status, 403);
    assert_eq!(enrol(&code, "short").status, 400);
    let r = enrol(&code, "a password of my own");
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(
        enrol(&code, "another password of mine").status,
        403,
        "a code works once"
    );
    let (ok, mut drnew) = login("a password of my own");
    assert!(ok);
    assert_eq!(drnew.get("/inbox").status, 200);

    // Disabled: the session ends and the password no longer opens the account.
    let r = ivan.post("/admin/users/drnew/disable", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{r:?}");
    assert!(drnew.get("/inbox").to_login());
    assert!(!login("a password of my own").0);
    assert_eq!(ivan.post("/admin/users/drnew/enable", &[("csrf", &csrf)]).status, 303);
    assert!(login("a password of my own").0);

    // Reset: the old password stops working; a new code sets a new one.
    let r = ivan.post("/admin/users/drnew/reset", &[("csrf", &csrf)]);
    assert_eq!(r.status, 200, "{r:?}");
    let new_code = code_in(&r);
    assert!(!login("a password of my own").0);
    assert_eq!(enrol(&new_code, "a new password of mine").status, 303);
    assert!(login("a new password of mine").0);

    // The same at the box's console.
    let cli = |args: &[&str]| {
        let out = app.run(args, None);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    cli(&["user", "disable", "drnew"]);
    assert!(!login("a new password of mine").0);
    cli(&["user", "enable", "drnew"]);
    assert!(login("a new password of mine").0);
    let console_code = cli(&["user", "reset", "drnew"]);
    assert_eq!(console_code.len(), 16, "{console_code}");
    assert!(!login("a new password of mine").0);
    assert_eq!(enrol(&console_code, "set at the console's code").status, 303);
    // An account added at the console waits for its owner too; a password on stdin is not taken
    // unless the command is told to (scripted provisioning).
    let out = app.run(
        &["user", "add", "drcli", "--role", "physician"],
        Some("chosen at the console\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let cli_code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(cli_code.len(), 16, "{cli_code}");
    let mut c = Client::new(&server.url);
    let r = c.post("/login", &[("user", "drcli"), ("password", "chosen at the console")]);
    assert_ne!(
        r.location.as_deref(),
        Some("/"),
        "the console's password opened the account"
    );
    let r = Client::new(&server.url).post(
        "/enrol",
        &[
            ("user", "drcli"),
            ("code", &cli_code),
            ("password", "the owner's own choice"),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");

    let actions: Vec<String> = app
        .open_raw()
        .prepare("SELECT action FROM audit_events WHERE action LIKE 'user.%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for expected in [
        "user.add:physician:drnew",
        "user.enrol:drnew",
        "user.disable:drnew",
        "user.enable:drnew",
        "user.reset:drnew",
        "user.add:physician:drcli",
        "user.enrol:drcli",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not in {actions:?}");
    }
}

/// One user could open any number of recording streams at once. Now four; a closed one's place
/// comes back.
#[test]
fn a_user_has_at_most_four_recording_streams_open() {
    let (app, _server, mut nina, csrf, id) = recording_visit();
    // Opening the recorder page shows the visit's label: audited.
    assert_eq!(nina.get(&format!("/record/{id}")).status, 200);
    let opened: i64 = app
        .open_raw()
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'recorder.open' AND encounter_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(opened, 1);
    let mut open: Vec<Recorder> = (0..4).map(|_| Recorder::open(&nina, &csrf, &id).unwrap()).collect();
    let fifth = Recorder::open(&nina, &csrf, &id);
    let refused = fifth.as_ref().err();
    assert!(refused.is_some_and(|e| e.contains("429")), "{refused:?}");
    drop(open.pop());
    let reopened = (0..40).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        Recorder::open(&nina, &csrf, &id).ok()
    });
    assert!(reopened.is_some(), "the closed stream's place did not come back");
}

/// A page's own two-second refresh (a visit being processed) kept an unattended session alive
/// for ever. Now an automatic refresh is not activity, and the idle logoff comes.
#[test]
fn an_automatic_refresh_does_not_keep_an_idle_session_alive() {
    let (_app, server, mut nina, _, id) = recording_visit_with(&[("SCRIBE_WEB_IDLE_TIMEOUT", "2s")]);
    let replies: Vec<Reply> = (0..7)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            nina.get("/inbox?auto-refresh=1")
        })
        .collect();
    assert_eq!(replies[0].status, 200, "a refresh within the idle time is served");
    let last = replies.last().unwrap();
    assert!(
        last.to_login(),
        "3.5 s of refreshes kept the session alive: {}",
        last.status
    );
    // The page that refreshes itself carries the marker.
    let mut page = Client::new(&server.url);
    page.login(CLINICIAN, &password(CLINICIAN));
    let csrf = page.csrf();
    let mut recorder = Recorder::open(&page, &csrf, &id).unwrap();
    assert_eq!(recorder.send(0, &[100; 16_000]).unwrap()["ack"], 0);
    assert_eq!(recorder.stop().unwrap()["done"], true);
    let processing = page.get(&format!("/encounters/{id}"));
    assert!(processing.body.contains("url=?auto-refresh=1"), "{}", processing.body);
}

/// The first seq cell of each row of the events table on an audit page.
fn audit_page_seqs(body: &str) -> Vec<i64> {
    let table = &body[body.find("<table class=\"audit\">").expect("the events table")..];
    table
        .split("<tr")
        .skip(2) // before the header row, and the header row
        .filter_map(|row| row.split("<td>").nth(1)?.split("</td>").next()?.parse().ok())
        .collect()
}

/// The audit page and its CSV loaded the whole trail into memory for every view (a flood of
/// events made /audit 208 MB). Now a page holds 200 events, "Older events" walks the rest, and the
/// CSV is streamed a page at a time; together they still show every event exactly once.
#[test]
fn the_audit_trail_is_read_a_page_at_a_time_and_nothing_is_lost() {
    let app = Appliance::new();
    app.add_user(AUDITOR, "auditor");
    let server = ReviewServer::plain(&app, &[]);
    let mut alma = Client::new(&server.url);
    alma.login(AUDITOR, &password(AUDITOR));
    // Each view of the trail is an event of its own: 450 views make a trail of over two pages.
    for _ in 0..450 {
        assert_eq!(alma.get("/audit/export.csv?actor=nobody").status, 200);
    }
    let mut page = alma.get("/audit");
    let newest = audit_page_seqs(&page.body);
    assert_eq!(newest.len(), 200, "a page holds 200 events");
    let mut seen = newest.clone();
    let mut pages = 1;
    while let Some(at) = page.body.find("class=\"older\" href=\"") {
        let href = &page.body[at + "class=\"older\" href=\"".len()..];
        let href = href[..href.find('"').unwrap()].replace("&amp;", "&");
        page = alma.get(&href);
        assert_eq!(page.status, 200, "{href}");
        seen.extend(audit_page_seqs(&page.body));
        pages += 1;
        assert!(pages < 10, "the older-events links never end");
    }
    let expected: Vec<i64> = (1..=newest[0]).rev().collect();
    assert_eq!(
        seen, expected,
        "every event up to the first page's newest, once, newest first"
    );

    let csv = alma.get("/audit/export.csv");
    assert_eq!(csv.status, 200);
    let seqs: Vec<i64> = csv
        .body
        .lines()
        .skip(1)
        .map(|l| l.trim_start_matches('"').split('"').next().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.len() as i64 > newest[0], "{} rows", seqs.len());
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "every event once, oldest first"
    );
    // A filter is applied by the store, in the CSV as on the page.
    let only = alma.get(&format!("/audit/export.csv?actor={AUDITOR}"));
    assert!(only.body.lines().skip(1).all(|l| l.contains(&format!("\"{AUDITOR}\""))));
}

/// Starts an upload with `client`'s session and stops sending part-way, holding the connection
/// open: a slow (or hostile) client in the middle of a large upload.
fn stalled_upload(client: &Client, csrf: &str) -> std::net::TcpStream {
    use std::io::Write;
    let addr = client.base.trim_start_matches("http://");
    let boundary = "stalled-upload";
    let start = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"recording\"; filename=\"visit.wav\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nCookie: scribe_session={}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000000\r\n\r\n",
        client.cookie.as_deref().unwrap_or("")
    );
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(start.as_bytes()).unwrap();
    tcp.write_all(&[0u8; 64 * 1024]).unwrap();
    tcp
}

/// Uploads were unlimited in number: each held up to the size limit (512 MiB) in memory and took
/// a decoder, so a few slow clients could exhaust the box. Now two are taken at once; a third is
/// asked to come back (429), and a slot frees when an upload ends, even one that was abandoned.
#[test]
fn uploads_beyond_the_concurrent_limit_are_turned_away_until_one_ends() {
    let (_app, _server, mut nina, csrf, _) = recording_visit();
    let junk = ("recording", "junk.wav", &b"not a recording at all"[..]);
    let fields = [
        ("csrf", csrf.as_str()),
        ("label", "Dictation"),
        ("template", "soap"),
        ("physician", ""),
    ];
    let first = stalled_upload(&nina, &csrf);
    let _second = stalled_upload(&nina, &csrf);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let r = nina.post_file("/upload", &fields, junk);
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.body.contains("try again in a minute"), "{}", r.body);

    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = nina.post_file("/upload", &fields, junk);
        if r.status != 429 {
            assert_eq!(
                r.status, 422,
                "a freed slot takes the upload, which is then judged: {r:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned upload never gave its slot back"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// An upload was read into memory whole (up to the 512 MiB limit, the buffer doubling as it grew)
/// before decoding. Now it goes to an encrypted spool on disk as it arrives, and the server holds
/// the decoded 16 kHz audio, not the file: a 150 MB WAV (13 minutes of 48 kHz stereo) raises the
/// server's peak memory by far less than its size.
#[test]
fn a_large_upload_is_not_held_in_memory() {
    let (app, server, mut nina, csrf, _) = recording_visit();
    let seconds = 780u32;
    let data_bytes = seconds * 48_000 * 4;
    let mut wav = Vec::with_capacity(44 + data_bytes as usize);
    wav.extend(b"RIFF");
    wav.extend((36 + data_bytes).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(16u32.to_le_bytes());
    wav.extend(1u16.to_le_bytes()); // PCM
    wav.extend(2u16.to_le_bytes());
    wav.extend(48_000u32.to_le_bytes());
    wav.extend((48_000u32 * 4).to_le_bytes());
    wav.extend(4u16.to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(b"data");
    wav.extend(data_bytes.to_le_bytes());
    // A quiet tone, so the file is not all zeros.
    wav.extend((0..seconds * 48_000).flat_map(|i| {
        let s = ((i % 48) as i16 - 24) * 40;
        [s.to_le_bytes(), s.to_le_bytes()].concat()
    }));
    let before = server.peak_memory();
    let fields = [
        ("csrf", csrf.as_str()),
        ("label", "Long dictation"),
        ("template", "soap"),
        ("physician", ""),
    ];
    let r = nina.post_file("/upload", &fields, ("recording", "long.wav", &wav));
    assert_eq!(r.status, 303, "{r:?}");
    let grew = server.peak_memory().saturating_sub(before);
    assert!(
        grew < wav.len() as u64 / 2,
        "peak memory grew by {} MB for a {} MB upload",
        grew >> 20,
        wav.len() >> 20
    );
    let id = r.location.unwrap().trim_start_matches("/encounters/").to_string();
    let stored = chunks_stored(&app, &id);
    assert!(
        (i64::from(seconds)..=i64::from(seconds) + 1).contains(&stored),
        "the whole recording is stored: {stored} one-second chunks"
    );
}
