//! The review app in real headless Chromium over TLS: a physician logs in, opens a real draft,
//! follows a sentence to its transcript segments, edits it, signs with their password and
//! exports FHIR; a clinician then finds signing refused. Screenshots are written to
//! `SCRIBE_SCREENSHOTS` (default: a temporary folder, printed).

use fantoccini::Locator;
use serde_json::json;
use tests::Appliance;
use tests::browser::{
    body_text, click, connect, log_in, screenshot_dir, shot, start_chromedriver, type_into, wait_for_text,
};
use tests::web::ReviewServer;

const EDITED: &str = "Cough and sore throat for two weeks, no fever.";

#[test]
fn physician_reviews_edits_signs_and_exports_in_a_real_browser() {
    let app = Appliance::new();
    app.add_user("drbob", "physician");
    app.add_user("nina", "clinician");
    let id = app.ingest_dialogue("Room 2, 10:30", "nina", "drbob");
    let server = ReviewServer::tls(&app);
    let base = server.url.replace("127.0.0.1", "localhost");
    let shots = screenshot_dir();
    let (_driver, port) = start_chromedriver();

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let browser = connect(port, &[]).await;

            // The physician's inbox lists the draft with its label.
            log_in(&browser, &base, "drbob").await;
            let inbox = wait_for_text(&browser, "Drafts awaiting review").await;
            let url = browser.current_url().await.unwrap();
            assert!(url.path().ends_with("/inbox"), "after login: {url}");
            assert!(
                inbox.contains("Room 2, 10:30") && inbox.contains("awaiting review"),
                "{inbox}"
            );
            shot(&browser, &shots, "inbox").await;

            // Open it: transcript beside the note; clicking a sentence highlights its sources.
            browser
                .find(Locator::LinkText("Room 2, 10:30"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
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
            assert_eq!(
                highlighted.as_str().unwrap(),
                cites,
                "highlighted segments differ from the citations"
            );
            shot(&browser, &shots, "encounter").await;

            // Edit the first sentence.
            first
                .find(Locator::Css("details.edit summary"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let area = first.find(Locator::Css("textarea")).await.unwrap();
            area.clear().await.unwrap();
            area.send_keys(EDITED).await.unwrap();
            first
                .find(Locator::Css("details.edit form button"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let page = wait_for_text(&browser, "Draft v2").await;
            assert!(page.contains(EDITED) && page.contains("edited by drbob"), "{page}");

            // Every open flag is looked at and acknowledged, one click each, before signing.
            let open = |browser: &fantoccini::Client| {
                let browser = browser.clone();
                async move {
                    // None while the next page loads.
                    let n = browser
                        .execute("return document.querySelectorAll('form.acknowledge').length", vec![])
                        .await;
                    n.ok().and_then(|n| n.as_u64())
                }
            };
            let mut left = open(&browser).await.unwrap();
            while left > 0 {
                click(&browser, "form.acknowledge button").await;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    match open(&browser).await {
                        Some(n) if n < left => {
                            left = n;
                            break;
                        }
                        _ => {
                            assert!(std::time::Instant::now() < deadline, "acknowledging a flag did nothing");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                }
            }

            // Sign: the page shows what will be signed and asks for the password again.
            browser
                .find(Locator::LinkText("Review and sign…"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            assert!(wait_for_text(&browser, "Sign this note").await.contains(EDITED));
            shot(&browser, &shots, "sign").await;
            type_into(&browser, "input[name=password]", "correct horse drbob").await;
            click(&browser, "form.card button").await;
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
            click(&browser, "form.logout button").await;
            wait_for_text(&browser, "User name").await;
            log_in(&browser, &base, "nina").await;
            wait_for_text(&browser, "nina (clinician)").await;
            browser.goto(&format!("{base}/encounters/{id}")).await.unwrap();
            let page = wait_for_text(&browser, "Signed note").await;
            assert!(page.contains(EDITED) && !page.contains("Review and sign"), "{page}");
            browser.goto(&format!("{base}/encounters/{id}/sign")).await.unwrap();
            let refused = body_text(&browser).await;
            assert!(
                refused.contains("Not allowed") && refused.contains("may not sign"),
                "{refused}"
            );
            shot(&browser, &shots, "clinician-refused").await;
            browser.close().await.unwrap();
        });
    assert_eq!(app.show(&id)["state"], "signed");
}
