//! Review-app latency on loopback: the encounter page (decrypt, authorize, audit, render) under a
//! small concurrent load, against a static file from the same server in the same run (the peer
//! that has no store work), so the ratio holds on a noisy machine.
//!
//! `cargo bench -p tests --bench review_latency -- [--out DIR] [--clients N] [--requests N]`
//! writes DIR/review-latency.md (default DIR: docs/bench).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tests::web::{Client, ReviewServer};
use tests::{Appliance, text};

/// A visit of realistic length: 48 turns.
fn dialogue() -> String {
    let turns = [
        "[doctor] What brings you in today?",
        "[patient] I have had a cough and a sore throat for two weeks, worse at night.",
        "[doctor] Any fever, chills or shortness of breath?",
        "[patient] No fever. A little short of breath when I climb stairs.",
        "[doctor] Are you taking anything for it, and any regular medications?",
        "[patient] Lisinopril 10 mg daily for blood pressure, and honey tea for the cough.",
        "[doctor] Your lungs sound clear, your throat is a little red, oxygen is 97 percent.",
        "[doctor] This looks viral. Rest, fluids, and come back if it is not better in a week.",
    ];
    turns.iter().cycle().take(48).map(|t| format!("{t}\n")).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `clients` threads, each with its own session, each making `requests` GETs of `path`.
fn load(url: &str, path: &str, clients: usize, requests: usize) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (url, path) = (url.to_string(), path.to_string());
            std::thread::spawn(move || {
                let mut client = Client::new(&url);
                client.login("drbob", "correct horse drbob");
                (0..requests)
                    .map(|_| {
                        let t = Instant::now();
                        let r = client.get(&path);
                        assert_eq!(r.status, 200, "{path}: {}", r.status);
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    (all, started.elapsed())
}

fn main() {
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bench"));
    let (mut clients, mut requests) = (4usize, 100usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            "--clients" => clients = args.next().and_then(|n| n.parse().ok()).expect("--clients N"),
            "--requests" => requests = args.next().and_then(|n| n.parse().ok()).expect("--requests N"),
            _ => {} // cargo bench passes --bench
        }
    }
    let app = Appliance::new();
    app.add_user("drbob", "physician");
    let dir = tempfile::tempdir().unwrap();
    let visit = dir.path().join("visit.txt");
    std::fs::write(&visit, dialogue()).unwrap();
    let (ingested, id) = app.ingest(&["--transcript", visit.to_str().unwrap(), "--physician", "drbob"]);
    assert!(ingested.status.success(), "{}", text(&ingested));
    let id = id.unwrap();
    let server = ReviewServer::plain(&app, &[]);

    // Warm up (first page loads pay for key derivation caches and allocator growth).
    load(&server.url, &format!("/encounters/{id}"), 1, 10);
    let (page, page_wall) = load(&server.url, &format!("/encounters/{id}"), clients, requests);
    let (peer, peer_wall) = load(&server.url, "/static/app.css", clients, requests);

    let row = |name: &str, d: &[Duration], wall: Duration| {
        format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
            d.len(),
            percentile(d, 0.50),
            percentile(d, 0.95),
            percentile(d, 0.99),
            d.len() as f64 / wall.as_secs_f64()
        )
    };
    let segments = app.show(&id)["transcript"]["segments"].as_array().map_or(0, Vec::len);
    let report = format!(
        "# Review app latency on loopback\n\n\
         `cargo bench -p tests --bench review_latency` — {clients} concurrent clients (own sessions), \
         {requests} requests each, plain HTTP on 127.0.0.1, {cores} cores. The encounter has {segments} \
         transcript segments and a drafted note; every page view decrypts, authorizes and appends to the \
         audit trail (a durable commit).\n\n\
         | route | requests | p50 ms | p95 ms | p99 ms | req/s |\n|---|---|---|---|---|---|\n{}{}\n\
         Encounter page p50 / static file p50: **{:.1}×**; p99 ratio {:.1}×.\n",
        row("GET /encounters/{id}", &page, page_wall),
        row("GET /static/app.css (peer)", &peer, peer_wall),
        percentile(&page, 0.5) / percentile(&peer, 0.5),
        percentile(&page, 0.99) / percentile(&peer, 0.99),
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("review-latency.md");
    std::fs::write(&path, &report).unwrap();
    print!("{report}");
    eprintln!("wrote {}", path.display());
}
