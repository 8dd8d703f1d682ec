//! The review app in real headless Chromium over TLS: a physician logs in, opens a real draft,
//! follows a sentence to its transcript segments, edits it, signs with their password and
//! exports FHIR; a clinician then finds signing refused. Screenshots are written to
//! `SCRIBE_SCREENSHOTS` (default: a temporary folder, printed).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tests::web::ReviewServer;
use tests::{Appliance, DIALOGUE, text};

const EDITED: &str = "Cough and sore throat for two weeks, no fever.";

/// chromedriver in a process group of its own, with the browsers it starts: dropping it (also
/// when an assertion fails mid-test) kills them all.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) of the group this child leads.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_chromedriver() -> (Driver, u16) {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install Debian's chromium and chromium-driver (`cargo xtask test` does)"
        );
    }
    let port = free_port();
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Driver(child), port)
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("SCRIBE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tempfile::tempdir().unwrap().keep());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn log_in(browser: &Client, base: &str, user: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    browser
        .find(Locator::Css("input[name=user]"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(&format!("correct horse {user}"))
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.card button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn body_text(browser: &Client) -> String {
    browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
}

/// Waits (up to 20 s) until the page shows `text`, e.g. after a click that navigates, and returns
/// the page's text. WebDriver's click can return before the next page has loaded.
async fn wait_for_text(browser: &Client, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = match browser.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains(text) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {text:?}; it shows:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn physician_reviews_edits_signs_and_exports_in_a_real_browser() {
    let app = Appliance::new();
    app.add_user("drbob", "physician");
    app.add_user("nina", "clinician");
    let dir = tempfile::tempdir().unwrap();
    let dialogue = dir.path().join("visit.txt");
    std::fs::write(&dialogue, DIALOGUE).unwrap();
    let (out, id) = app.ingest(&[
        "--transcript",
        dialogue.to_str().unwrap(),
        "--label",
        "Room 2, 10:30",
        "--clinician",
        "nina",
        "--physician",
        "drbob",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id = id.unwrap();
    let server = ReviewServer::tls(&app);
    let base = server.url.replace("127.0.0.1", "localhost");
    let shots = screenshot_dir();
    let (_driver, port) = start_chromedriver();

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut caps = serde_json::Map::new();
            caps.insert("acceptInsecureCerts".into(), json!(true));
            caps.insert(
                "goog:chromeOptions".into(),
                json!({
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"],
                }),
            );
            let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
                .expect("connect to chromedriver");

            // The physician's inbox lists the draft with its label.
            log_in(&browser, &base, "drbob").await;
            let inbox = wait_for_text(&browser, "Drafts awaiting review").await;
            let url = browser.current_url().await.unwrap();
            assert!(url.path().ends_with("/inbox"), "after login: {url}");
            assert!(inbox.contains("Room 2, 10:30") && inbox.contains("awaiting review"), "{inbox}");
            shot(&browser, &shots, "inbox").await;

            // Open it: transcript beside the note; clicking a sentence highlights its sources.
            browser.find(Locator::LinkText("Room 2, 10:30")).await.unwrap().click().await.unwrap();
            wait_for_text(&browser, "Transcript").await;
            let first = browser.find(Locator::Css(".sentence")).await.unwrap();
            let cites = first.attr("data-cites").await.unwrap().unwrap_or_default();
            assert!(!cites.is_empty(), "the first sentence cites nothing");
            first.find(Locator::Css(".text")).await.unwrap().click().await.unwrap();
            let highlighted = browser
                .execute(
                    "return [...document.querySelectorAll('.segment.cited')].map(e => e.id.slice(4)).join(' ')",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(highlighted.as_str().unwrap(), cites, "highlighted segments differ from the citations");
            shot(&browser, &shots, "encounter").await;

            // Edit the first sentence.
            first.find(Locator::Css("details.edit summary")).await.unwrap().click().await.unwrap();
            let area = first.find(Locator::Css("textarea")).await.unwrap();
            area.clear().await.unwrap();
            area.send_keys(EDITED).await.unwrap();
            first.find(Locator::Css("form button")).await.unwrap().click().await.unwrap();
            let page = wait_for_text(&browser, "Draft v2").await;
            assert!(page.contains(EDITED), "{page}");

            // Sign: the page shows what will be signed and asks for the password again.
            browser.find(Locator::LinkText("Review and sign…")).await.unwrap().click().await.unwrap();
            assert!(wait_for_text(&browser, "Sign this note").await.contains(EDITED));
            shot(&browser, &shots, "sign").await;
            browser
                .find(Locator::Css("input[name=password]"))
                .await
                .unwrap()
                .send_keys("correct horse drbob")
                .await
                .unwrap();
            browser.find(Locator::Css("form.card button")).await.unwrap().click().await.unwrap();
            let signed = wait_for_text(&browser, "Signature verified.").await;
            assert!(signed.contains("Signed by drbob"), "{signed}");
            shot(&browser, &shots, "signed").await;

            // Export FHIR from the page's session.
            let fhir = browser
                .execute_async(
                    "const done = arguments[arguments.length - 1];\
                     fetch(arguments[0]).then(r => r.text()).then(done);",
                    vec![json!(format!("/encounters/{id}/export/fhir"))],
                )
                .await
                .unwrap();
            let doc: serde_json::Value = serde_json::from_str(fhir.as_str().unwrap()).unwrap();
            assert_eq!(doc["resourceType"], "DocumentReference");
            assert_eq!(doc["docStatus"], "final");
            assert!(doc.to_string().contains(EDITED));

            // Log out; the clinician who recorded the visit can read it but not sign it.
            browser.find(Locator::Css("form.logout button")).await.unwrap().click().await.unwrap();
            wait_for_text(&browser, "User name").await;
            log_in(&browser, &base, "nina").await;
            wait_for_text(&browser, "nina (clinician)").await;
            browser.goto(&format!("{base}/encounters/{id}")).await.unwrap();
            let page = wait_for_text(&browser, "Signed note").await;
            assert!(page.contains(EDITED) && !page.contains("Review and sign"), "{page}");
            browser.goto(&format!("{base}/encounters/{id}/sign")).await.unwrap();
            let refused = body_text(&browser).await;
            assert!(refused.contains("Not allowed") && refused.contains("may not sign"), "{refused}");
            shot(&browser, &shots, "clinician-refused").await;
            browser.close().await.unwrap();
        });
    assert_eq!(app.show(&id)["state"], "signed");
}
