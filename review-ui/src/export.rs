//! A signed note in the forms an EHR takes: plain text, FHIR R4 `DocumentReference` (with the
//! `Composition` inside), and HL7 v2 `MDM^T02`.
//!
//! Only signed notes are exported: the content is the draft version the signature covers, and
//! the addenda, each with its own signer and time.

use std::fmt::Write;
use std::sync::Arc;

use base64::Engine;
use protocol::Draft;
use serde_json::{Value, json};
use store::{Addendum, Encounter, SignedNote, rfc3339_utc};

/// Everything an export is made of.
pub struct SignedRecord<'a> {
    pub encounter: &'a Encounter,
    pub note: &'a SignedNote,
    /// The draft version that was signed.
    pub draft: &'a Draft,
    pub addenda: &'a [Addendum],
    /// The clinic's name, as provisioned.
    pub clinic: &'a str,
}

/// The LOINC document type for a template: H&P for history-and-physical templates, otherwise a
/// progress note (SOAP, APSO, ACI-style visit notes are all progress notes in LOINC's terms).
pub fn loinc_note_type(template: &str) -> (&'static str, &'static str) {
    match template {
        "hp" => ("34117-2", "History and physical note"),
        _ => ("11506-3", "Progress note"),
    }
}

/// The note as a person would paste it into an EHR: sections, sentences, signature, addenda.
pub fn plain_text(r: &SignedRecord<'_>) -> String {
    let mut t = crate::note_plain_text(r.draft);
    writeln!(
        t,
        "Electronically signed by {} at {} (sha256 {}).",
        r.note.signer,
        rfc3339_utc(r.note.signed_ms),
        r.note.sha256
    )
    .unwrap();
    for a in r.addenda {
        writeln!(
            t,
            "\nADDENDUM {} ({} at {}):\n{}",
            a.seq,
            a.signer,
            rfc3339_utc(a.signed_ms),
            a.text
        )
        .unwrap();
    }
    t
}

/// The signed patient instructions as a handout: the clinic, the visit, the instructions in
/// plain text (no citations), and who reviewed them. `None` when the note was signed without.
pub fn patient_instructions_text(r: &SignedRecord<'_>) -> Option<String> {
    let instructions = r.draft.patient_instructions.as_deref()?;
    let mut t = String::new();
    writeln!(t, "{}", r.clinic).unwrap();
    writeln!(
        t,
        "After your visit on {}\n",
        &rfc3339_utc(r.encounter.created_ms)[..10]
    )
    .unwrap();
    for section in &instructions.sections {
        if section.sentences.is_empty() {
            continue;
        }
        writeln!(t, "{}", section.name).unwrap();
        for s in &section.sentences {
            writeln!(t, "- {}", s.text).unwrap();
        }
        writeln!(t).unwrap();
    }
    writeln!(
        t,
        "Reviewed and signed by {} on {}.",
        r.note.signer,
        &rfc3339_utc(r.note.signed_ms)[..10]
    )
    .unwrap();
    Some(t)
}

fn xhtml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// FHIR R4: a `DocumentReference` whose attachment is the plain-text note, with the structured
/// `Composition` (one FHIR section per template section) contained and referenced from it.
pub fn fhir_document_reference(r: &SignedRecord<'_>) -> Value {
    let (code, display) = loinc_note_type(&r.encounter.template);
    let note_type = json!({
        "coding": [{"system": "http://loinc.org", "code": code, "display": display}],
        "text": display,
    });
    let amended = !r.addenda.is_empty();
    let signed_at = rfc3339_utc(r.note.signed_ms);
    let last_change = r.addenda.last().map_or(r.note.signed_ms, |a| a.signed_ms);
    let author = json!([{"display": r.note.signer}]);
    let mut sections: Vec<Value> = r
        .draft
        .sections
        .iter()
        .map(|s| {
            let body = if s.sentences.is_empty() {
                "<p>Not discussed.</p>".to_string()
            } else {
                s.sentences
                    .iter()
                    .map(|x| format!("<p>{}</p>", xhtml_escape(&x.text)))
                    .collect()
            };
            json!({
                "title": s.name,
                "text": {
                    "status": "generated",
                    "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{body}</div>"),
                },
            })
        })
        .collect();
    for a in r.addenda {
        sections.push(json!({
            "title": format!("Addendum {} ({}, {})", a.seq, a.signer, rfc3339_utc(a.signed_ms)),
            "author": [{"display": a.signer}],
            "text": {
                "status": "generated",
                "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p></div>", xhtml_escape(&a.text)),
            },
        }));
    }
    let composition = json!({
        "resourceType": "Composition",
        "id": "note",
        "identifier": {"system": "urn:scribe:encounter", "value": r.encounter.id},
        "status": if amended { "amended" } else { "final" },
        "type": note_type,
        "date": rfc3339_utc(last_change),
        "author": author,
        "title": format!("{display} ({})", r.encounter.template),
        "confidentiality": "R",
        "attester": [{"mode": "legal", "time": signed_at, "party": {"display": r.note.signer}}],
        "custodian": {"display": r.clinic},
        "section": sections,
    });
    let text = plain_text(r);
    json!({
        "resourceType": "DocumentReference",
        "contained": [composition],
        "masterIdentifier": {"system": "urn:scribe:signed-note-sha256", "value": r.note.sha256},
        "identifier": [{"system": "urn:scribe:encounter", "value": r.encounter.id}],
        "status": "current",
        "docStatus": if amended { "amended" } else { "final" },
        "type": note_type,
        "date": rfc3339_utc(last_change),
        "author": author,
        "authenticator": {"display": r.note.signer},
        "custodian": {"display": r.clinic},
        "description": r.encounter.label,
        "securityLabel": [{
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R", "display": "restricted"}]
        }],
        "content": [{
            "attachment": {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
                "title": display,
                "creation": signed_at,
            },
            "format": {"system": "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"},
        }],
        "context": {"related": [{"reference": "#note"}]},
    })
}

/// HL7 v2's escape sequences for its delimiter characters.
fn hl7_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\E\\"),
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '~' => out.push_str("\\R\\"),
            '&' => out.push_str("\\T\\"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `YYYYMMDDHHMMSS` in UTC, HL7's DTM form.
fn hl7_time(ms: i64) -> String {
    rfc3339_utc(ms)
        .replace(['-', ':', 'T'], "")
        .trim_end_matches('Z')
        .to_string()
        + "+0000"
}

/// HL7 v2.5.1 `MDM^T02` (original document notification and content): TXA says the document is
/// legally authenticated (LA), one OBX per line of the note.
pub fn hl7_mdm_t02(r: &SignedRecord<'_>, message_id: &str, now_ms: i64) -> String {
    let (code, display) = loinc_note_type(&r.encounter.template);
    let mut segments = vec![
        format!(
            "MSH|^~\\&|SCRIBE|{}|EHR|{}|{}||MDM^T02^MDM_T02|{}|P|2.5.1",
            hl7_escape(r.clinic),
            hl7_escape(r.clinic),
            hl7_time(now_ms),
            hl7_escape(message_id)
        ),
        format!("EVN|T02|{}", hl7_time(now_ms)),
        // The appliance knows visits, not patients: the EHR matches on the visit number.
        format!("PID|1||{}^^^SCRIBE^VN", r.encounter.id),
        format!("PV1|1|O|||||||||||||||||{}^^^SCRIBE^VN", r.encounter.id),
        // TXA-4/7 activity and transcription time, TXA-5/9/10 provider, originator and
        // authenticator, TXA-12 the unique document number (the signed text's hash), TXA-17 LA.
        format!(
            "TXA|1|{code}^{display}^LN|TX|{time}|{signer}||{time}||{signer}|{signer}||{}|||||LA|||||{signer}",
            r.note.sha256,
            time = hl7_time(r.note.signed_ms),
            signer = hl7_escape(&r.note.signer),
        ),
    ];
    for (i, line) in plain_text(r).lines().enumerate() {
        segments.push(format!(
            "OBX|{}|TX|{code}^{display}^LN||{}||||||F",
            i + 1,
            hl7_escape(line)
        ));
    }
    segments.join("\r") + "\r"
}

/// Writes `name` into the export folder, which the EHR (and whoever else the share lets in) can
/// write to as well: see [`firmware::replace_in_folder`] for why a planted file or symlink cannot
/// redirect it and a reader never sees half a note.
pub fn write_atomically(folder: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    firmware::replace_in_folder(folder, name, 0o644, |f| f.write_all(bytes))
}

/// Why a note could not be sent to an EHR.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0} is not an http(s) URL")]
    BadUrl(String),
    #[error(
        "{0} is plain http: the note would cross the network unencrypted. Use https, or list the endpoint in \
         export.ehr_endpoints_plain_http if that link is protected another way"
    )]
    PlainHttp(String),
    #[error("{host} resolves to {addr}, which is outside network.allow; notes never leave the clinic network")]
    NotLocal { host: String, addr: std::net::IpAddr },
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("the EHR answered {0}")]
    Status(u16),
    #[error("{0}")]
    Http(String),
}

/// An EHR that may receive signed notes.
#[derive(Debug, Clone, PartialEq)]
pub struct EhrEndpoint {
    /// The FHIR base URL.
    pub url: String,
    /// The configuration names this endpoint as plain http on purpose; otherwise `http://` is
    /// refused.
    pub plain_http: bool,
}

/// How notes reach EHRs: the networks they may go to, and the CA that signs the EHRs'
/// certificates (a clinic CA; `None`: the public roots).
#[derive(Debug, Clone)]
pub struct EhrLink {
    pub allow: firmware::AllowList,
    pub roots: Option<CaBundle>,
}

/// CA certificates an EHR's certificate must chain to.
pub type CaBundle = Arc<Vec<ureq::tls::Certificate<'static>>>;

/// The certificates in a PEM bundle (the clinic CA for EHR endpoints).
pub fn read_ca_bundle(pem: &[u8]) -> Result<CaBundle, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| e.to_string())? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(Arc::new(certs))
}

/// Answers ureq's lookup with the addresses already checked against the allow-list, so the
/// connection goes where the check looked (a second lookup could be answered differently: DNS
/// rebinding).
#[derive(Debug)]
struct Pinned(Vec<std::net::SocketAddr>);

impl ureq::unversioned::resolver::Resolver for Pinned {
    fn resolve(
        &self,
        _: &ureq::http::Uri,
        _: &ureq::config::Config,
        _: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        for a in self.0.iter().take(16) {
            addrs.push(*a);
        }
        Ok(addrs)
    }
}

/// POSTs a FHIR DocumentReference to `<base>/DocumentReference`. The endpoint's host is looked
/// up once, every address must be in the network allow-list, and the connection is made to those
/// addresses only: the config names the endpoint, and no DNS answer can send PHI anywhere else.
pub fn post_fhir(endpoint: &EhrEndpoint, body: &str, link: &EhrLink) -> Result<(), SendError> {
    post_fhir_resolving(endpoint, body, link, &|host, port| {
        use std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs()?.collect())
    })
}

type Lookup<'a> = &'a dyn Fn(&str, u16) -> std::io::Result<Vec<std::net::SocketAddr>>;

fn post_fhir_resolving(endpoint: &EhrEndpoint, body: &str, link: &EhrLink, lookup: Lookup) -> Result<(), SendError> {
    let base = endpoint.url.as_str();
    let rest = match (base.strip_prefix("https://"), base.strip_prefix("http://")) {
        (Some(r), _) => (r, 443),
        (None, Some(_)) if !endpoint.plain_http => return Err(SendError::PlainHttp(base.into())),
        (None, Some(r)) => (r, 80),
        (None, None) => return Err(SendError::BadUrl(base.into())),
    };
    let (rest, default_port) = rest;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p.parse().unwrap_or(default_port)),
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = lookup(host, port).map_err(|_| SendError::Resolve(host.into()))?;
    if addrs.is_empty() {
        return Err(SendError::Resolve(host.into()));
    }
    if let Some(bad) = addrs.iter().find(|a| !link.allow.permits(a.ip())) {
        return Err(SendError::NotLocal {
            host: host.into(),
            addr: bad.ip(),
        });
    }
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(roots) = &link.roots {
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(roots.clone()));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        // Straight to the checked address: no proxy from the environment in between.
        .proxy(None)
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .tls_config(tls.build())
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        Pinned(addrs),
    );
    let url = format!("{}/DocumentReference", base.trim_end_matches('/'));
    let resp = agent
        .post(&url)
        .header("Content-Type", "application/fhir+json")
        .send(body)
        .map_err(|e| SendError::Http(e.to_string()))?;
    match resp.status().as_u16() {
        200..=299 => Ok(()),
        other => Err(SendError::Status(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Section, Sentence};
    use store::State;

    fn record_parts() -> (Encounter, SignedNote, Draft) {
        let encounter = Encounter {
            id: "e1".into(),
            state: State::Signed,
            template: "soap".into(),
            created_ms: 0,
            updated_ms: 0,
            audio_ms: None,
            failure_reason: None,
            created_by: "nina".into(),
            assigned_to: None,
            label: "Room 2 | 10:30".into(),
            audio_purged_ms: None,
        };
        let note = SignedNote {
            encounter_id: "e1".into(),
            draft_version: 1,
            canonical_text: String::new(),
            sha256: "ab".into(),
            signature: String::new(),
            key_id: String::new(),
            signer: "drbob".into(),
            signed_ms: 1_795_651_200_000,
        };
        let draft = Draft {
            template: "soap".into(),
            patient_instructions: None,
            sections: vec![Section {
                name: "Plan".into(),
                sentences: vec![Sentence::new("Start lisinopril 10 mg <daily> & recheck.", vec![1])],
            }],
        };
        (encounter, note, draft)
    }

    fn link() -> EhrLink {
        EhrLink {
            allow: firmware::AllowList::parse(firmware::PRIVATE_NETWORKS).unwrap(),
            roots: None,
        }
    }

    fn endpoint(url: &str, plain_http: bool) -> EhrEndpoint {
        EhrEndpoint {
            url: url.into(),
            plain_http,
        }
    }

    #[test]
    fn only_clinic_network_addresses_may_receive_notes() {
        let err = post_fhir(&endpoint("https://8.8.8.8:9/fhir", false), "{}", &link()).unwrap_err();
        assert!(matches!(err, SendError::NotLocal { .. }), "{err}");
        assert!(matches!(
            post_fhir(&endpoint("ftp://ehr/", true), "{}", &link()).unwrap_err(),
            SendError::BadUrl(_)
        ));
    }

    /// Plain http was accepted silently; now only an endpoint the config names as plain http
    /// is sent to without TLS.
    #[test]
    fn plain_http_needs_the_endpoint_to_say_so() {
        let err = post_fhir(&endpoint("http://10.1.2.3:9/fhir", false), "{}", &link()).unwrap_err();
        assert!(matches!(err, SendError::PlainHttp(_)), "{err}");
        assert!(err.to_string().contains("ehr_endpoints_plain_http"), "{err}");
    }

    /// The attack: DNS rebinding. The name resolved to a clinic address when it was checked and
    /// to an outside one when the HTTP client looked it up again to connect. Now it is looked up
    /// once and the connection goes to the address that was checked.
    #[test]
    fn the_connection_goes_to_the_address_that_was_checked() {
        let ehr = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = ehr.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = ehr.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("\"resourceType\"") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        });
        let lookups = std::sync::atomic::AtomicUsize::new(0);
        let rebinding = |_: &str, port: u16| -> std::io::Result<Vec<std::net::SocketAddr>> {
            // The first answer is the clinic's; any later one points outside.
            let ip = match lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => "127.0.0.1",
                _ => "8.8.8.8",
            };
            Ok(vec![std::net::SocketAddr::new(ip.parse().unwrap(), port)])
        };
        let mut link = link();
        link.allow = firmware::AllowList::parse(&["127.0.0.0/8".to_string()]).unwrap();
        let ehr = endpoint(&format!("http://ehr.clinic.invalid:{port}/fhir"), true);
        post_fhir_resolving(&ehr, "{\"resourceType\": \"DocumentReference\"}", &link, &rebinding).unwrap();
        assert_eq!(lookups.load(std::sync::atomic::Ordering::SeqCst), 1, "looked up once");
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /fhir/DocumentReference "), "{request}");
        assert!(
            request.contains(&format!("ehr.clinic.invalid:{port}")),
            "the Host header names the EHR: {request}"
        );
    }

    /// An EHR on the clinic network serves a certificate from the clinic's own CA. Without the CA
    /// configured the note is refused (the public roots do not know it); with it, it is sent.
    #[test]
    fn an_ehr_with_a_clinic_ca_certificate_is_reached_only_with_that_ca() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        firmware::issue_tls(dir.path(), "Test clinic", &["localhost".to_string()], &[]).unwrap();
        let files = firmware::TlsFiles::new(dir.path());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cert, key) = (files.cert(), files.key());
        let (sent, received) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .unwrap();
                let app = axum::Router::new().route(
                    "/fhir/DocumentReference",
                    axum::routing::post(move |body: String| async move {
                        let _ = sent.send(body);
                        axum::http::StatusCode::CREATED
                    }),
                );
                listener.set_nonblocking(true).unwrap();
                axum_server::from_tcp_rustls(listener, config)
                    .serve(app.into_make_service())
                    .await
                    .unwrap();
            });
        });
        let ehr = endpoint(&format!("https://localhost:{port}/fhir"), false);
        let mut link = link();
        link.allow = firmware::AllowList::parse(&["127.0.0.0/8", "::1/128"]).unwrap();
        let err = post_fhir(&ehr, "{}", &link).unwrap_err();
        assert!(matches!(err, SendError::Http(_)), "{err}");
        let pem = std::fs::read(files.ca_cert()).unwrap();
        link.roots = Some(read_ca_bundle(&pem).unwrap());
        post_fhir(&ehr, "{\"resourceType\": \"DocumentReference\"}", &link).unwrap();
        let body = received.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert!(body.contains("DocumentReference"));
        assert!(read_ca_bundle(b"not a certificate").is_err());
    }

    #[test]
    fn hl7_escapes_delimiters_and_marks_the_note_legally_authenticated() {
        let (encounter, note, draft) = record_parts();
        let r = SignedRecord {
            encounter: &encounter,
            note: &note,
            draft: &draft,
            addenda: &[],
            clinic: "Main | St",
        };
        let msg = hl7_mdm_t02(&r, "m1", note.signed_ms);
        let segs: Vec<&str> = msg.split('\r').collect();
        assert!(segs[0].starts_with("MSH|^~\\&|SCRIBE|Main \\F\\ St|"), "{msg}");
        assert!(segs[0].contains("|MDM^T02^MDM_T02|m1|P|2.5.1"), "{msg}");
        let txa = segs.iter().find(|s| s.starts_with("TXA|")).unwrap();
        let fields: Vec<&str> = txa.split('|').collect();
        assert_eq!((fields[12], fields[17]), ("ab", "LA"), "{txa}");
        assert!(msg.contains("Start lisinopril 10 mg <daily> \\T\\ recheck."), "{msg}");
        assert!(msg.contains("20261126000000+0000"), "{msg}");
    }

    #[test]
    fn fhir_narrative_is_escaped_xhtml_and_status_follows_addenda() {
        let (encounter, note, draft) = record_parts();
        let mut r = SignedRecord {
            encounter: &encounter,
            note: &note,
            draft: &draft,
            addenda: &[],
            clinic: "Main St",
        };
        let doc = fhir_document_reference(&r);
        assert_eq!(doc["docStatus"], "final");
        let comp = &doc["contained"][0];
        assert_eq!(comp["attester"][0]["mode"], "legal");
        assert_eq!(comp["type"]["coding"][0]["code"], "11506-3");
        let div = comp["section"][0]["text"]["div"].as_str().unwrap();
        assert!(div.contains("10 mg &lt;daily&gt; &amp; recheck."), "{div}");
        let addenda = [Addendum {
            encounter_id: "e1".into(),
            seq: 1,
            text: "BP recheck moved to 2 weeks.".into(),
            canonical_text: String::new(),
            sha256: String::new(),
            signature: String::new(),
            key_id: String::new(),
            signer: "drbob".into(),
            signed_ms: note.signed_ms + 1000,
        }];
        r.addenda = &addenda;
        let doc = fhir_document_reference(&r);
        assert_eq!(doc["docStatus"], "amended");
        assert_eq!(doc["contained"][0]["status"], "amended");
    }
}
