//! The review web app: server-rendered pages over the encrypted store.
//!
//! Every PHI access goes through the store, which checks the actor's role and relation to the
//! encounter and audits the access in the same transaction; this layer adds sessions, CSRF
//! tokens and the pages. State changes are POSTs with a CSRF token; GETs change nothing but the
//! audit trail.

mod capture;
mod pages;
mod session;
mod throttle;

/// The query a page's automatic refresh carries (see `pages::layout`).
pub(crate) const AUTO_REFRESH: &str = "auto-refresh=1";

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use store::{Actor, Permission, Store, StoreError};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

pub use capture::{MAX_CHUNK_SAMPLES, STREAM_STORE_FAILED, StreamMessage, parse_chunk, recording_message};
pub use session::{COOKIE, NoSession, Session, Sessions};

/// Settings of the web app (the `[web]` table of scribe.toml).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The clinic's name, shown in pages and exports.
    pub clinic: String,
    /// Log a session off after this long without a request.
    pub idle_timeout: Duration,
    /// Log a session off this long after login, however busy.
    pub absolute_lifetime: Duration,
    /// Served over TLS (adds Strict-Transport-Security).
    pub tls: bool,
    /// Facts about the box for the admin page (models, version); no PHI.
    pub appliance_facts: Vec<(String, String)>,
    /// Where signed notes may be sent besides a download.
    pub export: ExportTargets,
    /// How big and how long an uploaded recording may be.
    pub upload_limits: audio::Limits,
    /// Uploads received and decoded at once.
    pub concurrent_uploads: usize,
    /// Where uploads are spooled, encrypted, while they arrive and decode.
    pub spool_dir: PathBuf,
    /// The compliance report for the admin page; the appliance generates it.
    pub compliance_report: Option<ComplianceReport>,
}

/// Generates the compliance report page (HTML) for the IT admin asking; errors are messages.
/// It reads what it needs from the store and returns the rest of the work (hashing every model,
/// rendering), which runs after the store is released: the second step cannot reach the store.
#[derive(Clone)]
#[allow(clippy::type_complexity)]
pub struct ComplianceReport(
    pub  Arc<
        dyn Fn(&mut Store, &Actor) -> Result<Box<dyn FnOnce() -> Result<String, String> + Send>, String> + Send + Sync,
    >,
);

impl std::fmt::Debug for ComplianceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ComplianceReport")
    }
}

/// The destinations IT configured for signed notes. Nothing else can be reached.
#[derive(Debug, Clone)]
pub struct ExportTargets {
    /// A folder (e.g. an EHR's import share mounted on the box).
    pub folder: Option<PathBuf>,
    /// FHIR base URLs of EHRs on the clinic network.
    pub ehr_endpoints: Vec<crate::export::EhrEndpoint>,
    /// The networks a note may be sent to (an endpoint's addresses are checked at send time) and
    /// the CA its certificate must come from.
    pub ehr_link: crate::export::EhrLink,
}

impl Default for ExportTargets {
    fn default() -> Self {
        ExportTargets {
            folder: None,
            ehr_endpoints: Vec::new(),
            ehr_link: crate::export::EhrLink {
                allow: firmware::AllowList::parse(firmware::PRIVATE_NETWORKS).expect("the private ranges parse"),
                roots: None,
            },
        }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            clinic: "Clinic".into(),
            idle_timeout: Duration::from_secs(15 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            tls: false,
            appliance_facts: Vec::new(),
            export: ExportTargets::default(),
            upload_limits: audio::Limits::default(),
            concurrent_uploads: 2,
            spool_dir: std::env::temp_dir(),
            compliance_report: None,
        }
    }
}

/// Shared state of the app.
pub struct App {
    store: Mutex<Store>,
    sessions: Sessions,
    login_throttle: throttle::LoginThrottle,
    /// Recording streams open per user (see `capture::StreamSlot`).
    streams: Mutex<std::collections::HashMap<String, usize>>,
    /// Password checks (argon2, ~19 MiB and tens of milliseconds each) run at most this many at
    /// once, outside the store's lock.
    password_checks: tokio::sync::Semaphore,
    /// Uploads being received and decoded (each may hold `max_upload_mb` in memory).
    uploads: tokio::sync::Semaphore,
    config: WebConfig,
}

impl App {
    pub fn new(store: Store, config: WebConfig) -> Arc<App> {
        Arc::new(App {
            store: Mutex::new(store),
            sessions: Sessions::new(config.idle_timeout, config.absolute_lifetime),
            login_throttle: throttle::LoginThrottle::default(),
            streams: Mutex::default(),
            password_checks: tokio::sync::Semaphore::new(2),
            uploads: tokio::sync::Semaphore::new(config.concurrent_uploads),
            config,
        })
    }

    /// Runs a store operation off the async threads (SQLCipher and argon2 block).
    async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WebError> {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut store = app.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| WebError::Internal(format!("store task failed: {e}")))?
        .map_err(WebError::from)
    }
}

/// The whole app with its middleware.
pub fn router(app: Arc<App>) -> Router {
    let tls = app.config.tls;
    // Forms are small and quick; an uploaded visit is neither, so it gets its own limits.
    let forms = pages::routes()
        .layer(RequestBodyLimitLayer::new(1024 * 1024))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ));
    let form_overhead = 64 * 1024;
    let upload_bytes =
        usize::try_from(app.config.upload_limits.max_bytes.saturating_add(form_overhead)).unwrap_or(usize::MAX);
    let uploads = Router::new()
        .route("/upload", axum::routing::post(capture::upload))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(upload_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(15 * 60),
        ));
    let mut router = forms
        .merge(uploads)
        .layer(middleware::from_fn(refuse_cross_site_posts))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(Counter::default()))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            // Not "no-referrer": under it browsers send `Origin: null` on same-origin form posts.
            HeaderValue::from_static("same-origin"),
        ))
        // Pages carry PHI: no browser or proxy cache keeps them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    if tls {
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    router.with_state(app)
}

/// Where TLS material lives.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves the app on an already-bound listener until the process ends.
pub async fn serve(listener: std::net::TcpListener, tls: Option<TlsFiles>, app: Arc<App>) -> std::io::Result<()> {
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    listener.set_nonblocking(true)?;
    match tls {
        Some(files) => {
            // One process-wide TLS provider: ring, which the store already uses.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "cannot load TLS certificate {} / key {}: {e}",
                            files.cert.display(),
                            files.key.display()
                        ),
                    )
                })?;
            axum_server::from_tcp_rustls(listener, config).serve(service).await
        }
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, service).await
        }
    }
}

/// Request ids: a counter is enough to correlate one request's log lines, and carries nothing.
#[derive(Clone, Default)]
struct Counter(Arc<std::sync::atomic::AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("req-{n}")).ok().map(RequestId::new)
    }
}

/// SameSite=Strict cookies already keep other sites' forms from riding a session; this also
/// refuses any state change a browser says came from elsewhere (login forms included).
async fn refuse_cross_site_posts(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let headers = req.headers();
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v != "same-origin" && v != "none");
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let foreign_origin = match (headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()), host) {
            (Some("null"), _) => true,
            (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
            _ => false,
        };
        if cross_site || foreign_origin {
            return WebError::Forbidden("cross-site request refused".into()).into_response();
        }
    }
    next.run(req).await
}

/// An error as the person sees it.
#[derive(Debug)]
pub enum WebError {
    /// Not logged in (or logged off): go to the login page.
    LoginRequired(NoSession),
    Forbidden(String),
    NotFound(String),
    /// A request that cannot be done in this state (edit conflict, wrong state).
    Conflict(String),
    BadRequest(String),
    /// An upload over the configured size or length.
    TooLarge(String),
    /// More of something at once than one user, or the box, may have (recording streams,
    /// uploads).
    TooMany(String),
    /// Deleted on purpose (the retention policy); it will not come back.
    Gone(String),
    /// An upload that is not a usable recording (not audio, damaged, cut off).
    Unprocessable(String),
    /// A destination outside the app (EHR, export folder) failed; nothing was lost.
    Upstream(String),
    /// The store cannot write now (full disk, read-only file, locked by another process); nothing
    /// was written, and the same request will work once IT has fixed the box.
    Unavailable(String),
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Forbidden { .. } => WebError::Forbidden(e.to_string()),
            StoreError::NoEncounter(_) | StoreError::NoDraft(_) | StoreError::NotSigned(_) => {
                WebError::NotFound(e.to_string())
            }
            StoreError::WrongState { .. }
            | StoreError::EditConflict { .. }
            | StoreError::UserExists(_)
            | StoreError::OpenFlags { .. } => WebError::Conflict(e.to_string()),
            StoreError::AudioPurged { .. } => WebError::Gone(e.to_string()),
            StoreError::Invalid(_) | StoreError::NotAPhysician(_) | StoreError::NoUser(_) => {
                WebError::BadRequest(e.to_string())
            }
            StoreError::DiskFull | StoreError::ReadOnly | StoreError::Busy => WebError::Unavailable(e.to_string()),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::LoginRequired(why) => {
                let to = if why == NoSession::Expired {
                    "/login?expired=1"
                } else {
                    "/login"
                };
                return Redirect::to(to).into_response();
            }
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            WebError::Conflict(m) => (StatusCode::CONFLICT, "Cannot do that now", m),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Cannot do that", m),
            WebError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "Recording too large", m),
            WebError::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, "Too many at once", m),
            WebError::Gone(m) => (StatusCode::GONE, "Deleted", m),
            WebError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, "Recording not usable", m),
            WebError::Upstream(m) => (StatusCode::BAD_GATEWAY, "Not sent", m),
            WebError::Unavailable(m) => {
                // IT has to act (free space, fix the mount); the message names no patient.
                tracing::error!(error = %m, "storage unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Storage unavailable",
                    format!("{m}. Tell IT; then try again."),
                )
            }
            WebError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The appliance could not complete this request; nothing was changed. IT can find the details in the logs."
                        .into(),
                )
            }
        };
        (status, pages::error_page(title, &message)).into_response()
    }
}

/// The logged-in user of a request. Extracting it fails with a redirect to the login page.
pub struct User {
    pub actor: Actor,
    pub csrf: String,
    pub token: String,
}

impl User {
    /// The role check every route makes first, from the same table the store consults.
    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if permission.allows(self.actor.role) {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!(
                "{} ({}) may not {}",
                self.actor.name,
                self.actor.role.as_str(),
                permission.describe()
            )))
        }
    }

    /// Every state change carries the session's CSRF token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), WebError> {
        if session::same_secret(presented, &self.csrf) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "the form was stale or not from this app (CSRF check failed); reload the page".into(),
            ))
        }
    }
}

pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The client's address, for the audit trail.
pub struct Source(pub Option<String>);

impl Source {
    fn of(parts: &Parts) -> Source {
        Source(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical().to_string()),
        )
    }
}

impl<S: Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source::of(parts))
    }
}

impl FromRequestParts<Arc<App>> for User {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let token = session_token(&parts.headers).ok_or(WebError::LoginRequired(NoSession::Missing))?;
        // A page refreshing itself (a visit being processed) is not the user at work: it must not
        // keep an unattended session from logging off.
        let automatic = parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == AUTO_REFRESH));
        let session = if automatic {
            app.sessions.peek(&token)
        } else {
            app.sessions.touch(&token)
        }
        .map_err(WebError::LoginRequired)?;
        // The address of this request, not of the login: a session used from elsewhere shows.
        let mut actor = session.actor;
        actor.source = Source::of(parts).0;
        Ok(User {
            actor,
            csrf: session.csrf,
            token,
        })
    }
}
