//! The review app as a browser-less client sees it: a `scribe serve` process on loopback, and an
//! HTTP client that keeps one session cookie and never follows redirects (tests look at them).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;

use crate::Appliance;

/// A running `scribe serve`; killed on drop.
pub struct ReviewServer {
    child: Child,
    pub url: String,
}

impl ReviewServer {
    /// The most memory the server process has held so far (VmHWM), in bytes.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the server runs");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kb * 1024
    }

    /// Serves `app` on a free loopback port over plain HTTP (allowed on loopback only).
    pub fn plain(app: &Appliance, env: &[(&str, &str)]) -> ReviewServer {
        let config = std::fs::read_to_string(app.home().join("scribe.toml")).expect("read scribe.toml");
        if config.contains("\ntls = true") {
            app.set_config("\ntls = true", "\ntls = false");
        }
        ReviewServer::start(app, env)
    }

    /// Serves `app` over TLS with the certificate `scribe init` issued.
    pub fn tls(app: &Appliance) -> ReviewServer {
        ReviewServer::start(app, &[])
    }

    /// A whole `scribe daemon` (pipeline and review app over TLS), on a free loopback port.
    pub fn daemon(app: &Appliance, env: &[(&str, &str)]) -> ReviewServer {
        let mut cmd = app.command(&["daemon"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn scribe daemon");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut url = None;
        for _ in 0..2 {
            let mut line = String::new();
            out.read_line(&mut line).expect("read the daemon's output");
            if let Some(u) = line.trim().strip_prefix("review app listening on ") {
                url = Some(u.to_string());
            }
        }
        let url = url.expect("the daemon did not announce its review app");
        ReviewServer { child, url }
    }

    fn start(app: &Appliance, env: &[(&str, &str)]) -> ReviewServer {
        let mut cmd = app.command(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn scribe serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("review app listening on ")
            .unwrap_or_else(|| panic!("scribe serve did not start: {line:?}"))
            .to_string();
        ReviewServer { child, url }
    }
}

impl Drop for ReviewServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a request came back with.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sent to the login page (not logged in, or logged off).
    pub fn to_login(&self) -> bool {
        self.status == 303 && self.location.as_deref().is_some_and(|l| l.starts_with("/login"))
    }

    /// The value of `<input name=NAME value=...>` in the page (the first one).
    pub fn input(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.body[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].to_string())
    }
}

/// One browser: a session cookie, if logged in, and the page's CSRF token.
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client::with_agent(base, ureq::Agent::config_builder())
    }

    /// A client that trusts exactly the PEM certificate given.
    pub fn trusting(base: &str, cert_pem: &[u8]) -> Client {
        let cert = ureq::tls::Certificate::from_pem(cert_pem)
            .expect("PEM certificate")
            .to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
            .build();
        Client::with_agent(base, ureq::Agent::config_builder().tls_config(tls))
    }

    fn with_agent(base: &str, builder: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>) -> Client {
        let agent: ureq::Agent = builder.max_redirects(0).http_status_as_error(false).build().into();
        Client {
            agent,
            base: base.to_string(),
            cookie: None,
        }
    }

    pub fn get(&mut self, path: &str) -> Reply {
        self.try_get(path).expect("HTTP request")
    }

    /// [`Client::get`], with the transport error if there is no server to answer.
    pub fn try_get(&mut self, path: &str) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", format!("scribe_session={c}"));
        }
        req.call().map(|resp| self.reply(resp))
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.try_post(path, form).expect("HTTP request")
    }

    /// [`Client::post`], with the transport error if there is no server to answer.
    pub fn try_post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", format!("scribe_session={c}"));
        }
        req.send_form(form.iter().copied()).map(|resp| self.reply(resp))
    }

    /// A POST with extra headers (Origin, Sec-Fetch-Site), as another site's page would send.
    pub fn post_with(&mut self, path: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", format!("scribe_session={c}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req.send_form(form.iter().copied()))
    }

    /// A `multipart/form-data` POST, as a browser's file-upload form sends it: the fields in order,
    /// then the file.
    pub fn post_file(&mut self, path: &str, fields: &[(&str, &str)], file: (&str, &str, &[u8])) -> Reply {
        self.try_post_file(path, fields, file).expect("HTTP request")
    }

    /// [`Client::post_file`], with the transport error if the server closed the connection before
    /// the body was sent (as it may when it refuses an oversized upload from its headers).
    pub fn try_post_file(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> Result<Reply, ureq::Error> {
        let boundary = "----scribe-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
            );
        }
        let (name, filename, bytes) = file;
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(format!("\r\n--{boundary}--\r\n").bytes());
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", format!("multipart/form-data; boundary={boundary}"));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", format!("scribe_session={c}"));
        }
        req.send(&body[..]).map(|resp| self.reply(resp))
    }

    fn finish(&mut self, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        self.reply(result.expect("HTTP request"))
    }

    fn reply(&mut self, mut resp: ureq::http::Response<ureq::Body>) -> Reply {
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie"
                && let Some(value) = v.strip_prefix("scribe_session=")
            {
                let token = value.split(';').next().unwrap_or("");
                self.cookie = (!token.is_empty()).then(|| token.to_string());
            }
        }
        Reply {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: resp.body_mut().read_to_string().unwrap_or_default(),
            headers,
        }
    }

    /// Logs in; panics unless it worked.
    pub fn login(&mut self, user: &str, password: &str) -> &mut Client {
        let r = self.post("/login", &[("user", user), ("password", password)]);
        assert!(
            r.status == 303 && r.location.as_deref() == Some("/") && self.cookie.is_some(),
            "login as {user} failed: {r:?}"
        );
        self
    }

    /// Acknowledges every open flag of the encounter's draft, one click each, as a physician does
    /// after checking them; returns how many, and the draft version to sign.
    pub fn acknowledge_flags(&mut self, id: &str) -> (usize, String) {
        self.try_acknowledge_flags(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Client::acknowledge_flags`], with what went wrong instead of a panic.
    pub fn try_acknowledge_flags(&mut self, id: &str) -> Result<(usize, String), String> {
        let mut acknowledged = 0;
        loop {
            let page = self
                .try_get(&format!("/encounters/{id}"))
                .map_err(|e| format!("opening the draft: {e}"))?;
            if page.status != 200 {
                return Err(format!("opening the draft: {page:?}"));
            }
            let Some(at) = page.body.find("<form class=\"acknowledge\"") else {
                break;
            };
            let form = Reply {
                body: page.body[at..page.body[at..].find("</form>").map_or(page.body.len(), |e| at + e)].to_string(),
                ..page
            };
            let fields = ["csrf", "base_version", "document", "section", "sentence", "flag"].map(|n| {
                form.input(n)
                    .map(|v| (n, v))
                    .ok_or_else(|| format!("no {n} in {}", form.body))
            });
            let fields = fields.into_iter().collect::<Result<Vec<_>, _>>()?;
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let r = self
                .try_post(&format!("/encounters/{id}/acknowledge"), &pairs)
                .map_err(|e| format!("acknowledging a flag: {e}"))?;
            if r.status != 303 {
                return Err(format!("acknowledging a flag: {r:?}"));
            }
            acknowledged += 1;
            if acknowledged >= 500 {
                return Err("flags keep coming back".into());
            }
        }
        let sign = self
            .try_get(&format!("/encounters/{id}/sign"))
            .map_err(|e| format!("opening the sign page: {e}"))?;
        let version = sign
            .input("version")
            .ok_or_else(|| format!("no sign form: {}", sign.body))?;
        Ok((acknowledged, version))
    }

    /// The CSRF token of this session, read from a page that has forms.
    pub fn csrf(&mut self) -> String {
        self.try_csrf().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Client::csrf`], with what went wrong instead of a panic.
    pub fn try_csrf(&mut self) -> Result<String, String> {
        for page in ["/inbox", "/admin", "/audit"] {
            let reply = self.try_get(page).map_err(|e| format!("GET {page}: {e}"))?;
            if let Some(t) = reply.input("csrf") {
                return Ok(t);
            }
        }
        Err("no page with a CSRF token for this session".into())
    }
}

/// The browser recorder's side of the WebSocket protocol (what `recorder.js` does), blocking:
/// `[seq u32 LE][i16 LE samples]` chunks, each answered `{"ack": seq}` once committed or
/// `{"error": …}` (after which the appliance closes the stream), and "stop".
pub struct Recorder {
    ws: tungstenite::WebSocket<std::net::TcpStream>,
}

impl Recorder {
    /// Opens the recording stream of visit `id` with `client`'s session (plain HTTP loopback).
    pub fn open(client: &Client, csrf: &str, id: &str) -> Result<Recorder, String> {
        use tungstenite::client::IntoClientRequest;
        let url = format!(
            "{}/encounters/{id}/stream?csrf={csrf}",
            client.base.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let cookie = format!("scribe_session={}", client.cookie.as_deref().unwrap_or(""));
        request
            .headers_mut()
            .insert("Cookie", cookie.parse().map_err(|e| format!("{e}"))?);
        let tcp = std::net::TcpStream::connect(client.base.trim_start_matches("http://"))
            .map_err(|e| format!("connecting the recorder: {e}"))?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let (ws, _) = tungstenite::client(request, tcp).map_err(|e| format!("opening the recording stream: {e}"))?;
        Ok(Recorder { ws })
    }

    /// Sends one chunk and returns the appliance's answer.
    pub fn send(&mut self, seq: u32, pcm: &[i16]) -> Result<serde_json::Value, String> {
        let mut frame = seq.to_le_bytes().to_vec();
        for s in pcm {
            frame.extend(s.to_le_bytes());
        }
        self.ws
            .send(tungstenite::Message::Binary(frame.into()))
            .map_err(|e| format!("sending chunk {seq}: {e}"))?;
        self.reply()
    }

    /// Ends the recording; the answer is `{"done": true}` once it is committed.
    pub fn stop(&mut self) -> Result<serde_json::Value, String> {
        self.ws
            .send(tungstenite::Message::Text("stop".into()))
            .map_err(|e| format!("stopping: {e}"))?;
        self.reply()
    }

    fn reply(&mut self) -> Result<serde_json::Value, String> {
        loop {
            match self.ws.read().map_err(|e| format!("recording stream: {e}"))? {
                tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).map_err(|e| e.to_string()),
                tungstenite::Message::Close(_) => return Err("recording stream closed".into()),
                _ => {}
            }
        }
    }
}
