//! Recording a visit from a browser: the WebSocket protocol with a dropped connection (a Rust
//! client), and the real page in headless Chromium with a fake microphone playing a visit.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tests::browser::{click, type_into};
use tests::web::{Client, ReviewServer};
use tests::{Appliance, text, visit_wav};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn frame(seq: u32, pcm: &[i16]) -> Message {
    let mut bytes = seq.to_le_bytes().to_vec();
    for s in pcm {
        bytes.extend(s.to_le_bytes());
    }
    Message::Binary(bytes.into())
}

/// Opens the recording stream of `id` with the client's session.
async fn open_stream(
    server: &ReviewServer,
    client: &Client,
    id: &str,
    csrf: &str,
    origin: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let url = format!(
        "{}/encounters/{id}/stream?csrf={csrf}",
        server.url.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Cookie",
        format!("scribe_session={}", client.cookie.as_ref().unwrap())
            .parse()
            .unwrap(),
    );
    if let Some(o) = origin {
        headers.insert("Origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(ws, _)| ws)
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no reply from the appliance: {other:?}"),
        }
    }
}

#[test]
fn a_dropped_connection_loses_no_audio_and_resent_chunks_are_stored_once() {
    let app = Appliance::new();
    app.add_user("nina", "clinician");
    app.add_user("omar", "clinician");
    let server = ReviewServer::plain(&app, &[]);
    let mut nina = Client::new(&server.url);
    nina.login("nina", "correct horse nina");
    let csrf = nina.csrf();
    let r = nina.post(
        "/record",
        &[
            ("csrf", &csrf),
            ("label", "Tablet, room 4"),
            ("template", "soap"),
            ("physician", ""),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let id = r.location.unwrap().trim_start_matches("/record/").to_string();
    let page = nina.get(&format!("/record/{id}"));
    assert!(
        page.body.contains("data-encounter") && page.body.contains("recorder.js"),
        "{}",
        page.body
    );

    let pcm = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    let seconds: Vec<&[i16]> = pcm.chunks(16_000).take(10).collect();
    let mut omar = Client::new(&server.url);
    omar.login("omar", "correct horse omar");
    let omar_csrf = omar.csrf();

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            // Refused: a wrong CSRF token, a foreign page, and someone else's visit.
            assert!(open_stream(&server, &nina, &id, "0000", None).await.is_err());
            assert!(
                open_stream(&server, &nina, &id, &csrf, Some("https://evil.example"))
                    .await
                    .is_err()
            );
            assert!(open_stream(&server, &omar, &id, &omar_csrf, None).await.is_err());

            let mut ws = open_stream(&server, &nina, &id, &csrf, None).await.unwrap();
            for (seq, s) in seconds.iter().enumerate().take(6) {
                ws.send(frame(seq as u32, s)).await.unwrap();
            }
            // Only the first three acknowledgements arrive before the network drops.
            for seq in 0..3 {
                assert_eq!(next_json(&mut ws).await["ack"], seq);
            }
            drop(ws); // no close handshake: the TCP connection just goes away

            // The page reconnects and resends everything not acknowledged (3, 4, 5 — some of
            // which the appliance already committed), then carries on.
            let mut ws = open_stream(&server, &nina, &id, &csrf, None).await.unwrap();
            for (seq, s) in seconds.iter().enumerate().skip(3) {
                ws.send(frame(seq as u32, s)).await.unwrap();
                assert_eq!(next_json(&mut ws).await["ack"], seq as u64);
            }
            // A malformed chunk is an error, not a crash.
            ws.send(Message::Binary(vec![1u8, 2, 3].into())).await.unwrap();
            assert!(next_json(&mut ws).await["error"].is_string());
            let mut ws = open_stream(&server, &nina, &id, &csrf, None).await.unwrap();
            ws.send(Message::Text("stop".into())).await.unwrap();
            assert_eq!(next_json(&mut ws).await["done"], true);
        });

    let show = app.show(&id);
    assert_eq!(show["state"], "transcribing", "{show}");
    assert_eq!(show["audio_ms"], 10_000, "every second once, none lost: {show}");
    assert_eq!(show["label"], "Tablet, room 4");
    assert_eq!(show["created_by"], "nina");
}

#[test]
fn a_visit_recorded_in_chromium_with_a_fake_microphone_is_stored_and_transcribed() {
    let app = Appliance::new();
    app.add_user("nina", "clinician");
    let server = ReviewServer::daemon(&app, &[]);
    let base = server.url.replace("127.0.0.1", "localhost");
    let (_driver, port) = tests::browser::start_chromedriver();
    let wav = visit_wav();
    let id = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let browser = tests::browser::connect(
                port,
                &[
                    "--use-fake-ui-for-media-stream".into(),
                    "--use-fake-device-for-media-stream".into(),
                    format!("--use-file-for-fake-audio-capture={}", wav.display()),
                ],
            )
            .await;
            tests::browser::log_in(&browser, &base, "nina").await;
            tests::browser::wait_for_text(&browser, "nina (clinician)").await;
            browser.goto(&format!("{base}/record")).await.unwrap();
            use fantoccini::Locator;
            type_into(&browser, "input[name=label]", "Room 7").await;
            click(&browser, "form.card button").await;
            tests::browser::wait_for_text(&browser, "Recording: Room 7").await;
            let url = browser.current_url().await.unwrap();
            let id = url.path().trim_start_matches("/record/").to_string();
            browser
                .find(Locator::Id("rec-start"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            tests::browser::wait_for_text(&browser, "Recording…").await;
            tests::browser::shot(&browser, &tests::browser::screenshot_dir(), "recorder").await;
            // Longer than the app's 30 s request timeout: a stream is not a request.
            tokio::time::sleep(Duration::from_secs(35)).await;
            browser
                .find(Locator::Id("rec-stop"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            tests::browser::wait_for_text(&browser, "Transcript").await;
            browser.close().await.unwrap();
            id
        });
    let done = app.wait_until_settled(&id, Duration::from_secs(600));
    assert_eq!(done["state"], "awaiting_review", "{done}");
    let ms = done["audio_ms"].as_i64().unwrap();
    assert!((32_000..45_000).contains(&ms), "about 35 s recorded: {ms}");
    let transcript = tests::transcript_lowercase(&done);
    let heard = tests::VISIT_KEY_WORDS
        .iter()
        .filter(|w| transcript.contains(*w))
        .count();
    assert!(
        heard >= 2,
        "the browser's audio was not the visit: {transcript} ({})",
        text(&app.run(&["show", &id], None))
    );
}

/// A loopback address no one listens on now, for a daemon that must come back on the same one.
fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Starts a browser recording, streams `acked` seconds (each acknowledged) and then `unacked`
/// more without waiting, as a page does. Returns the encounter id.
fn record_until(
    rt: &tokio::runtime::Runtime,
    server: &ReviewServer,
    client: &mut Client,
    seconds: &[&[i16]],
    acked: usize,
    unacked: usize,
) -> String {
    let csrf = client.csrf();
    let r = client.post(
        "/record",
        &[
            ("csrf", &csrf),
            ("label", "Room 3"),
            ("template", "soap"),
            ("physician", ""),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let id = r.location.unwrap().trim_start_matches("/record/").to_string();
    rt.block_on(async {
        let mut ws = open_stream(server, client, &id, &csrf, None).await.unwrap();
        for (seq, s) in seconds.iter().enumerate().take(acked) {
            ws.send(frame(seq as u32, s)).await.unwrap();
            assert_eq!(next_json(&mut ws).await["ack"], seq as u64);
        }
        for (seq, s) in seconds.iter().enumerate().skip(acked).take(unacked) {
            ws.send(frame(seq as u32, s)).await.unwrap();
        }
        // The socket stays open: the daemon dies under it.
        std::mem::forget(ws);
    });
    id
}

#[test]
fn a_daemon_killed_mid_recording_keeps_every_acknowledged_second_and_the_page_resumes() {
    let app = Appliance::new();
    app.add_user("nina", "clinician");
    // Plain HTTP on loopback, so the WebSocket client needs no certificate; a fixed address, so
    // the page can reconnect to the restarted daemon.
    app.set_config("tls = true", "tls = false");
    let address = free_loopback_address();
    let pcm = audio::decode_wav_file(&visit_wav()).unwrap().samples;
    let seconds: Vec<&[i16]> = pcm.chunks(16_000).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The page comes back after the restart and resends what was not acknowledged.
    let server = ReviewServer::daemon(&app, &[("SCRIBE_WEB_LISTEN", &address)]);
    let mut nina = Client::new(&server.url);
    nina.login("nina", "correct horse nina");
    let id = record_until(&rt, &server, &mut nina, &seconds, 8, 2);
    drop(server); // SIGKILL, mid-stream
    let show = app.show(&id);
    assert_eq!(show["state"], "recording", "{show}");
    assert!(
        show["audio_ms"].as_u64().unwrap() >= 8_000,
        "every acknowledged second kept: {show}"
    );

    let server = ReviewServer::daemon(&app, &[("SCRIBE_WEB_LISTEN", &address)]);
    // Sessions live in the daemon's memory: after a restart the clinician logs in again.
    let mut nina = Client::new(&server.url);
    nina.login("nina", "correct horse nina");
    let csrf = nina.csrf();
    rt.block_on(async {
        let mut ws = open_stream(&server, &nina, &id, &csrf, None).await.unwrap();
        for (seq, s) in seconds.iter().enumerate().skip(8) {
            ws.send(frame(seq as u32, s)).await.unwrap();
            assert_eq!(next_json(&mut ws).await["ack"], seq as u64);
        }
        ws.send(Message::Text("stop".into())).await.unwrap();
        assert_eq!(next_json(&mut ws).await["done"], true);
    });
    let done = app.wait_until_settled(&id, Duration::from_secs(600));
    assert_eq!(done["state"], "awaiting_review", "{done}");
    let whole_ms = pcm.len() as u64 * 1000 / 16_000;
    assert_eq!(
        done["audio_ms"].as_u64().unwrap(),
        whole_ms,
        "nothing lost, nothing twice: {done}"
    );
    let transcript = tests::transcript_lowercase(&done);
    assert!(transcript.contains("cough"), "{transcript}");
    drop(server);

    // 2. The page never comes back: the restarted daemon finishes the visit with what it had.
    let server = ReviewServer::daemon(&app, &[("SCRIBE_WEB_LISTEN", &address)]);
    let mut nina = Client::new(&server.url);
    nina.login("nina", "correct horse nina");
    let sent = 6 + 1;
    let id = record_until(&rt, &server, &mut nina, &seconds, 6, 1);
    drop(server);
    let server = ReviewServer::daemon(
        &app,
        &[("SCRIBE_WEB_LISTEN", &address), ("SCRIBE_FINALIZE_AFTER", "2s")],
    );
    let done = app.wait_until_settled(&id, Duration::from_secs(600));
    drop(server);
    assert_eq!(done["state"], "awaiting_review", "{done}");
    let kept_ms = done["audio_ms"].as_u64().unwrap();
    let lost_ms = sent as u64 * 1000 - kept_ms;
    eprintln!("kill -9 with the page gone: {sent} s sent, {kept_ms} ms kept, {lost_ms} ms lost");
    assert!(lost_ms <= 1000, "at most the second in flight is lost: {lost_ms} ms");

    let out = app.run(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", tests::text(&out));
}
