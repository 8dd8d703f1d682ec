//! Routes and the HTML they render.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use protocol::{Draft, Transcript};
use serde::Deserialize;
use store::{
    Access, Actor, BreakGlassReason, Encounter, Permission, Role, State as EncounterState, StoreError, Verification,
    rfc3339_utc,
};

use super::{App, COOKIE, User, WebError, session_token};
use crate::export::{self, SignedRecord};

type Page = Result<Response, WebError>;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/inbox", get(inbox))
        .route("/encounters/{id}", get(encounter_page))
        .route("/encounters/{id}/break-glass", post(break_glass))
        .route("/encounters/{id}/edit", post(edit_sentence))
        .route("/encounters/{id}/acknowledge", post(acknowledge_flag))
        .route("/encounters/{id}/sign", get(sign_page).post(sign))
        .route("/encounters/{id}/addenda", post(add_addendum))
        .route("/encounters/{id}/audio", get(audio))
        .route("/encounters/{id}/export/{format}", get(export))
        .route("/encounters/{id}/send", post(send))
        .route(
            "/record",
            get(super::capture::record_page).post(super::capture::create_recording),
        )
        .route("/record/{id}", get(super::capture::recorder))
        .route("/encounters/{id}/stream", get(super::capture::stream))
        .route("/admin", get(admin))
        .route("/admin/compliance", get(compliance_report))
        .route("/admin/users", post(add_user))
        .route("/admin/users/{name}/unlock", post(unlock_user))
        .route("/admin/users/{name}/disable", post(disable_user))
        .route("/admin/users/{name}/enable", post(enable_user))
        .route("/admin/users/{name}/reset", post(reset_password))
        .route("/enrol", get(enrol_page).post(enrol))
        .route("/audit", get(audit_page))
        .route("/audit/export.csv", get(audit_csv))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/static/recorder.js", get(recorder_js))
        .route("/static/recorder-worklet.js", get(recorder_worklet_js))
}

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS)
}

async fn recorder_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/recorder.js"),
    )
}

async fn recorder_worklet_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/recorder-worklet.js"),
    )
}

/// The frame of every page: who is logged in, what they can reach, and a logout button.
pub(super) fn layout(title: &str, user: Option<&User>, refresh: bool, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content={ "2; url=?" (super::AUTO_REFRESH) }; }
                title { (title) " · Scribe" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Scribe" }
                    @if let Some(u) = user {
                        nav {
                            @if matches!(u.actor.role, Role::Clinician | Role::Physician) {
                                a href="/inbox" { "Inbox" }
                                a href="/record" { "Record" }
                            }
                            @if u.actor.role == Role::ItAdmin { a href="/admin" { "Admin" } }
                            @if matches!(u.actor.role, Role::ItAdmin | Role::Auditor) { a href="/audit" { "Audit trail" } }
                        }
                        span.who { (u.actor.name) " (" (u.actor.role.as_str()) ")" }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(u.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    markup.into_response()
}

pub(super) fn error_page(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · Scribe" } link rel="stylesheet" href="/static/app.css"; }
            body { main { h1 { (title) } p.error { (message) } p { a href="/" { "Back" } } } }
        }
    }
}

fn when(ms: i64) -> String {
    rfc3339_utc(ms).replace('T', " ").replace('Z', " UTC")
}

fn age(ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mins = (now - ms).max(0) / 60_000;
    match mins {
        0 => "just now".into(),
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

async fn home(user: Result<User, WebError>) -> Redirect {
    match user {
        Ok(u) => match u.actor.role {
            Role::Clinician | Role::Physician => Redirect::to("/inbox"),
            Role::ItAdmin => Redirect::to("/admin"),
            Role::Auditor | Role::System => Redirect::to("/audit"),
        },
        Err(_) => Redirect::to("/login"),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    expired: Option<u8>,
    failed: Option<u8>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    login_form(html! {
        @if q.expired.is_some() { p.notice { "You were logged off after a period of inactivity. Log in again." } }
        @if q.failed.is_some() { p.error { "Wrong user name or password, or the account is locked. After 5 failed attempts an account is locked for 15 minutes." } }
    })
}

fn login_form(notice: Markup) -> Response {
    layout(
        "Log in",
        None,
        false,
        html! {
            h1 { "Log in" }
            (notice)
            form.card method="post" action="/login" {
                label { "User name" input name="user" autocomplete="username" maxlength=(store::MAX_USER_NAME) required autofocus; }
                label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
            p { a href="/enrol" { "New account, or a password reset? Set your password with your enrolment code." } }
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

fn session_cookie(token: &str, max_age_s: u64) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}")
}

async fn login(
    State(app): State<Arc<App>>,
    super::Source(source): super::Source,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Page {
    // Whatever session the browser had ends here: a new login always gets a new token.
    if let Some(old) = session_token(&headers) {
        app.sessions.end(&old);
    }
    if let Err(wait) = app.login_throttle.begin(source.as_deref(), Instant::now()) {
        return Ok(turned_away(login_form, "logins", wait));
    }
    let LoginForm { user, password } = form;
    match check_login(&app, user, password, source.clone()).await {
        Ok(actor) => {
            app.login_throttle.give_back(source.as_deref(), Instant::now());
            Ok(logged_in(&app, actor))
        }
        // One answer for unknown users, wrong passwords and locked accounts: no user enumeration.
        Err(WebError::BadRequest(_) | WebError::Internal(_) | WebError::Forbidden(_)) => {
            Ok(Redirect::to("/login?failed=1").into_response())
        }
        Err(e) => {
            app.login_throttle.give_back(source.as_deref(), Instant::now());
            Err(e)
        }
    }
}

/// The answer to an address that must wait before trying again (`web/throttle.rs`): `form` again,
/// with how long, as 429 with Retry-After.
fn turned_away(form: fn(Markup) -> Response, what: &str, wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil() as u64;
    let mut page = form(html! {
        p.error { "Too many failed " (what) " from this address. Try again in " (seconds) " s." }
    });
    *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    page.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    page
}

/// A new session for `actor`, and the way to the start page.
fn logged_in(app: &App, actor: Actor) -> Response {
    tracing::info!(user = %actor.name, "login");
    let token = app.sessions.start(actor);
    let max_age = app.config.absolute_lifetime.as_secs();
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, session_cookie(&token, max_age)),
        ],
    )
        .into_response()
}

/// A login in three steps, so that the password check (argon2) holds neither the store nor an
/// async thread: the account is looked up, the password checked on a blocking thread (at most
/// two at once), and the outcome recorded.
async fn check_login(
    app: &Arc<App>,
    user: String,
    password: String,
    source: Option<String>,
) -> Result<Actor, WebError> {
    let attempt = app.db(move |s| s.begin_login(&user, source.as_deref())).await?;
    let permit = app
        .password_checks
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let (attempt, ok) = tokio::task::spawn_blocking(move || {
        let ok = attempt.check_password(&password);
        (attempt, ok)
    })
    .await
    .map_err(|e| WebError::Internal(format!("password check failed: {e}")))?;
    drop(permit);
    let ok = ok?;
    app.db(move |s| s.finish_login(attempt, ok)).await
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, user: User, Form(form): Form<CsrfForm>) -> Page {
    user.check_csrf(&form.csrf)?;
    app.sessions.end(&user.token);
    // The session is over either way; a store that cannot write now (full disk) is logged.
    let actor = user.actor.clone();
    if let Err(e) = app.db(move |s| s.audit(&actor, "logout", None, "authentication")).await {
        tracing::warn!(error = ?e, "logout not audited");
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_string()),
            (header::SET_COOKIE, session_cookie("", 0)),
        ],
    )
        .into_response())
}

async fn inbox(State(app): State<Arc<App>>, user: User) -> Page {
    user.require(Permission::OpenInbox)?;
    let actor = user.actor.clone();
    let items = app.db(move |s| s.inbox(&actor)).await?;
    let (to_review, other): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|i| i.encounter.state == EncounterState::AwaitingReview);
    let table = |items: &[store::InboxItem]| {
        html! {
            table.inbox {
                thead { tr { th { "Visit" } th { "State" } th { "Age" } th { "Template" } th { "Flags" } th { "Recorded by" } } }
                tbody {
                    @for i in items {
                        tr data-encounter=(i.encounter.id) {
                            td { a href={ "/encounters/" (i.encounter.id) } {
                                @if i.encounter.label.is_empty() { "Visit " (i.encounter.id) } @else { (i.encounter.label) }
                            } }
                            td { span class={ "state " (i.encounter.state.as_str()) } { (i.encounter.state.as_str().replace('_', " ")) } }
                            td { (age(i.encounter.created_ms)) }
                            td { (i.encounter.template) }
                            td.flags { @if i.flags > 0 { span.flag { "⚑ " (i.flags) } } @else { "–" } }
                            td { (i.encounter.created_by) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(
        "Inbox",
        Some(&user),
        false,
        html! {
            h1 { "Drafts awaiting review" }
            @if to_review.is_empty() { p.empty { "Nothing to review." } } @else { (table(&to_review)) }
            h2 { "Other visits" }
            @if other.is_empty() { p.empty { "None." } } @else { (table(&other)) }
        },
    ))
}

/// Everything the encounter page shows, read in one go (each read audited by the store).
struct EncounterView {
    encounter: Encounter,
    access: Access,
    transcript: Transcript,
    draft: Option<(u32, Draft)>,
    signed: Option<store::SignedNote>,
    addenda: Vec<store::Addendum>,
    verification: Option<Verification>,
    has_audio: bool,
}

async fn load_encounter(app: &Arc<App>, user: &User, id: String) -> Result<EncounterView, WebError> {
    let actor = user.actor.clone();
    app.db(move |s| {
        let access = s.access(&actor, &id)?;
        let encounter = s.encounter(&id)?;
        if !access.allows() {
            return Ok(EncounterView {
                encounter,
                access,
                transcript: Transcript::default(),
                draft: None,
                signed: None,
                addenda: Vec::new(),
                verification: None,
                has_audio: false,
            });
        }
        let transcript = s.transcript(&actor, &id, "review")?;
        // A signed note is shown from the draft that derives its signed text again, or not at all.
        let (signed, draft) = match s.signed_draft(&actor, &id, "review")? {
            Some((note, draft)) => {
                let version = note.draft_version;
                (Some(note), Some((version, draft)))
            }
            None => (None, s.latest_draft(&actor, &id, "review")?),
        };
        let addenda = s.addenda(&actor, &id, "review")?;
        // What was just read is what is checked: no second read of the note and addenda.
        let verification = match &signed {
            Some(note) => Some(s.check_signatures(note, &addenda)?),
            None => None,
        };
        Ok(EncounterView {
            has_audio: encounter.audio_ms.is_some() && encounter.audio_purged_ms.is_none(),
            encounter,
            access,
            transcript,
            draft,
            signed,
            addenda,
            verification,
        })
    })
    .await
}

async fn encounter_page(State(app): State<Arc<App>>, user: User, Path(id): Path<String>) -> Page {
    user.require(Permission::OpenVisits)?;
    let view = load_encounter(&app, &user, id).await?;
    let e = &view.encounter;
    let title = if e.label.is_empty() {
        format!("Visit {}", e.id)
    } else {
        e.label.clone()
    };
    match view.access {
        Access::Denied => {
            return Err(WebError::Forbidden(format!(
                "{} may not open encounter {}",
                user.actor.name, e.id
            )));
        }
        Access::NeedsBreakGlass => {
            return Ok((
                StatusCode::FORBIDDEN,
                layout(
                    "Break-glass access",
                    Some(&user),
                    false,
                    html! {
                        h1 { "This visit is assigned to another physician" }
                        p { "You can open it when you need to. Your access is recorded with your reason, listed on the security owner's pages, and lasts one hour. Without your password it opens read-only; with it you can also edit, sign and export." }
                        form.card.breakglass method="post" action={ "/encounters/" (e.id) "/break-glass" } {
                            input type="hidden" name="csrf" value=(user.csrf);
                            label { "Why (required)"
                                select name="kind" required {
                                    option value="" { "Choose…" }
                                    @for r in BreakGlassReason::ALL { option value=(r.as_str()) { (r.describe()) } }
                                }
                            }
                            label { "In your own words (required)" textarea name="reason" required minlength="10" maxlength="500" {} }
                            label { "Your password (only to edit, sign or export)" input name="password" type="password" autocomplete="current-password"; }
                            button.danger type="submit" { "Break glass and open" }
                        }
                    },
                ),
            )
                .into_response());
        }
        Access::Granted | Access::BreakGlass { .. } => {}
    }
    let in_progress = matches!(
        e.state,
        EncounterState::Recording | EncounterState::Transcribing | EncounterState::Drafting
    );
    let editable = e.state == EncounterState::AwaitingReview && view.access.writes();
    let may_sign = user.actor.role == Role::Physician && view.access.writes();
    let low = |w: &protocol::Word| w.confidence < crate::LOW_CONFIDENCE;
    let body = html! {
        @if let Access::BreakGlass { writes } = view.access {
            p.breakglass-banner {
                "Break-glass access: every view of this visit is recorded with your reason."
                @if !writes { " Read-only: to edit, sign or export, break glass again with your password." }
            }
        }
        h1 { (title) }
        p.meta {
            span class={ "state " (e.state.as_str()) } { (e.state.as_str().replace('_', " ")) }
            " · " (e.template) " · recorded by " (e.created_by) " · " (when(e.created_ms))
            @if let Some(p) = &e.assigned_to { " · to be signed by " (p) }
        }
        @if let Some(reason) = &e.failure_reason { p.error { "Failed: " (reason) } }
        @if let Some(at) = e.audio_purged_ms {
            p.notice { "The recording was deleted under the clinic's retention policy on " (when(at)) ". The transcript and note remain." }
        }
        @if e.state == EncounterState::Recording {
            p.notice { "Recording in progress: " (e.audio_ms.unwrap_or(0) / 1000) " s captured and stored so far. The page updates itself." }
        } @else if in_progress { p.notice { "This visit is still being processed; the page updates itself." } }
        div.columns {
            section.transcript {
                h2 { "Transcript" }
                @if view.transcript.segments.is_empty() { p.empty { "No transcript yet." } }
                ol.segments {
                    @for s in &view.transcript.segments {
                        li.segment id={ "seg-" (s.id) } data-start=(s.start_ms) data-end=(s.end_ms) {
                            span.sid { "S" (s.id) }
                            span.time { (clock(s.start_ms)) }
                            span class={ "speaker " (s.speaker.as_str()) } { (s.speaker.as_str()) }
                            @if view.has_audio {
                                button.play type="button" data-src={ "/encounters/" (e.id) "/audio?start_ms=" (s.start_ms) "&end_ms=" (s.end_ms) } title="Play this segment" { "▶" }
                            }
                            span.text {
                                @if s.words.iter().any(low) {
                                    @for w in &s.words {
                                        @if low(w) { mark.low title="The recognizer was unsure of this word" { (w.text) } " " } @else { (w.text) " " }
                                    }
                                } @else { (s.text) }
                            }
                        }
                    }
                }
                @if view.has_audio { audio #player controls preload="none" {} }
            }
            section.note {
                @if let Some(signed) = &view.signed {
                    h2 { "Signed note" }
                    p.signed {
                        "Signed by " (signed.signer) " at " (when(signed.signed_ms)) ". "
                        @match &view.verification {
                            Some(Verification::Valid { .. }) => span.ok { "Signature verified." },
                            Some(_) => span.error { "Signature does NOT verify: the stored note was altered." },
                            None => "",
                        }
                    }
                }
                @match &view.draft {
                    None => p.empty { "No draft yet." },
                    Some((version, draft)) => {
                        @if view.signed.is_none() { h2 { "Draft " span.version { "v" (version) } } }
                        @let steering = drafting::spoken_instructions(&view.transcript);
                        @if !steering.is_empty() {
                            p.warning.steering {
                                "Someone in the room spoke to the scribe ("
                                @for (i, s) in steering.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    a href={ "#seg-" (s.segment) } { "S" (s.segment) } " “" (s.phrase) "…”"
                                }
                                "). The note follows only the template, but check that no sentence says what they asked for."
                            }
                        }
                        (document(draft, Document::Note, editable.then_some((*version, &user.csrf, &e.id))))
                        @if let Some(instructions) = &draft.patient_instructions {
                            h2 #patient-instructions { "Patient instructions" }
                            p.meta { "For the patient, in everyday words; drafted from the same transcript and signed with the note." }
                            (document(instructions, Document::PatientInstructions, editable.then_some((*version, &user.csrf, &e.id))))
                        }
                    }
                }
                @if !view.addenda.is_empty() {
                    h2 { "Addenda" }
                    @for a in &view.addenda {
                        div.addendum { p { (a.text) } p.meta { "Addendum " (a.seq) " signed by " (a.signer) " at " (when(a.signed_ms)) } }
                    }
                }
                @if editable && may_sign {
                    p.actions { a.button href={ "/encounters/" (e.id) "/sign" } { "Review and sign…" } }
                }
                @if let (Some(_), Some((_, draft))) = (&view.signed, &view.draft) {
                    // The note as plain text for pasting into an EHR; app.js copies it.
                    textarea #note-text hidden readonly { (crate::note_plain_text(draft)) }
                    p.actions { button #copy-note type="button" { "Copy note text" } span #copied {} }
                }
                @if view.signed.is_some() && may_sign {
                    div.actions {
                        "Export: "
                        a href={ "/encounters/" (e.id) "/export/text" } { "Plain text" } " · "
                        a href={ "/encounters/" (e.id) "/export/fhir" } { "FHIR R4" } " · "
                        a href={ "/encounters/" (e.id) "/export/hl7" } { "HL7 v2 MDM" }
                        @if view.draft.as_ref().is_some_and(|(_, d)| d.patient_instructions.is_some()) {
                            " · " a href={ "/encounters/" (e.id) "/export/instructions" } { "Patient instructions (to print)" }
                        }
                    }
                    @if app.config.export.folder.is_some() || !app.config.export.ehr_endpoints.is_empty() {
                        form.card.send method="post" action={ "/encounters/" (e.id) "/send" } {
                            input type="hidden" name="csrf" value=(user.csrf);
                            label { "Send to" select name="to" {
                                @for (n, ehr) in app.config.export.ehr_endpoints.iter().enumerate() {
                                    option value={ "ehr:" (n) } {
                                        "EHR: " (ehr.url) " (FHIR" (if ehr.plain_http { ", unencrypted" } else { "" }) ")"
                                    }
                                }
                                @if app.config.export.folder.is_some() { option value="folder" { "Export folder (FHIR)" } }
                            } }
                            button type="submit" { "Send" }
                        }
                    }
                    form.card method="post" action={ "/encounters/" (e.id) "/addenda" } {
                        h3 { "Add an addendum" }
                        input type="hidden" name="csrf" value=(user.csrf);
                        textarea name="text" rows="3" required {}
                        label { "Your password (signing)" input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { "Sign addendum" }
                    }
                }
            }
        }
    };
    Ok(layout(&title, Some(&user), in_progress, body))
}

fn clock(ms: u64) -> String {
    format!("{:02}:{:02}", ms / 60_000, ms / 1000 % 60)
}

#[derive(Deserialize)]
struct BreakGlassForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    reason: String,
    /// Given, the grant may change the visit too; empty, it opens read-only.
    #[serde(default)]
    password: String,
}

async fn break_glass(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Form(form): Form<BreakGlassForm>,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::UseBreakGlass)?;
    let kind = BreakGlassReason::parse(&form.kind)
        .ok_or_else(|| WebError::BadRequest("choose the reason for break-glass access from the list".into()))?;
    let actor = user.actor.clone();
    let target = id.clone();
    app.db(move |s| {
        let writes = !form.password.is_empty();
        if writes {
            reauthenticate(s, &actor, &form.password, "break glass with write access")?;
        }
        s.break_glass(&actor, &target, kind, &form.reason, writes)
    })
    .await?;
    Ok(Redirect::to(&format!("/encounters/{id}")).into_response())
}

/// Which document of a draft a sentence belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Document {
    #[default]
    Note,
    PatientInstructions,
}

impl Document {
    fn as_str(self) -> &'static str {
        match self {
            Document::Note => "note",
            Document::PatientInstructions => "patient_instructions",
        }
    }
}

/// A document's sections and sentences, each with its citations and flags, and (when `edit` is
/// given: draft version, CSRF token, encounter id) a form to change or remove it and a button to
/// acknowledge each open flag.
fn document(doc: &Draft, which: Document, edit: Option<(u32, &str, &str)>) -> Markup {
    html! {
        @for (si, section) in doc.sections.iter().enumerate() {
            h3 { (section.name) }
            @if section.sentences.is_empty() { p.empty { "Not discussed." } }
            @for (i, s) in section.sentences.iter().enumerate() {
                div.sentence data-cites=(s.citations.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" ")) {
                    span.text { (s.text) }
                    " "
                    span.cites { @for c in &s.citations { a href={ "#seg-" (c) } { "S" (c) } " " } }
                    @if let Some(editor) = &s.edited_by { span.edited { "edited by " (editor) } }
                    @for (fi, f) in s.flags.iter().enumerate() {
                        span.flag.acknowledged[f.acknowledged_by.is_some()] title=(f.kind.describe()) {
                            "⚑ " (f.kind.describe()) ": " (f.term)
                            @if let Some(by) = &f.acknowledged_by { " (acknowledged by " (by) ")" }
                        }
                        @if let (Some((version, csrf, id)), None) = (edit, &f.acknowledged_by) {
                            form.acknowledge method="post" action={ "/encounters/" (id) "/acknowledge" } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="base_version" value=(version);
                                input type="hidden" name="document" value=(which.as_str());
                                input type="hidden" name="section" value=(si);
                                input type="hidden" name="sentence" value=(i);
                                input type="hidden" name="flag" value=(fi);
                                button type="submit" title="I checked this against the transcript and let the sentence stand" { "Acknowledge" }
                            }
                        }
                    }
                    @if let Some((version, csrf, id)) = edit {
                        details.edit {
                            summary { "Edit" }
                            form method="post" action={ "/encounters/" (id) "/edit" } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="base_version" value=(version);
                                input type="hidden" name="document" value=(which.as_str());
                                input type="hidden" name="section" value=(si);
                                input type="hidden" name="sentence" value=(i);
                                textarea name="text" rows="3" { (s.text) }
                                label { "Cites " input type="text" name="cites" value=(citation_list(&s.citations)); }
                                button type="submit" { "Save" }
                                " (empty text removes the sentence)"
                            }
                        }
                    }
                }
            }
        }
    }
}

fn citation_list(citations: &[protocol::SegmentId]) -> String {
    citations.iter().map(|c| format!("S{c}")).collect::<Vec<_>>().join(", ")
}

/// A sentence rests on a few segments; citing half the visit would hide what it rests on.
const MOST_CITATIONS: usize = 6;

/// "S3, S5" (or "3 5") → [3, 5].
fn parse_citations(list: &str) -> Result<Vec<protocol::SegmentId>, StoreError> {
    let cites: Vec<&str> = list.split([',', ' ']).filter(|c| !c.trim().is_empty()).collect();
    if cites.len() > MOST_CITATIONS {
        return Err(StoreError::Invalid(format!(
            "a sentence cites at most {MOST_CITATIONS} segments"
        )));
    }
    cites
        .into_iter()
        .map(|c| {
            let c = c.trim();
            c.strip_prefix(['S', 's'])
                .unwrap_or(c)
                .parse()
                .map_err(|_| StoreError::Invalid(format!("{c:?} is not a segment like S3")))
        })
        .collect()
}

#[derive(Deserialize)]
struct EditForm {
    csrf: String,
    base_version: u32,
    #[serde(default)]
    document: Document,
    section: usize,
    sentence: usize,
    text: String,
    /// The citations after the edit ("S3, S5"); absent, they stay as they were.
    #[serde(default)]
    cites: Option<String>,
}

/// The latest draft of an encounter, to change and save as the next version.
fn latest_draft(s: &mut store::Store, actor: &store::Actor, id: &str, purpose: &str) -> Result<Draft, StoreError> {
    s.latest_draft(actor, id, purpose)?
        .map(|(_, draft)| draft)
        .ok_or_else(|| StoreError::NoDraft(id.into()))
}

/// The sentences of one section of the document a form names (the note or the instructions).
fn sentences_mut(
    draft: &mut Draft,
    which: Document,
    section: usize,
) -> Result<&mut Vec<protocol::Sentence>, StoreError> {
    let document = match which {
        Document::Note => draft,
        Document::PatientInstructions => draft
            .patient_instructions
            .as_deref_mut()
            .ok_or_else(|| StoreError::Invalid("this draft has no patient instructions".into()))?,
    };
    document
        .sections
        .get_mut(section)
        .map(|sec| &mut sec.sentences)
        .ok_or_else(|| StoreError::Invalid("no such section in the draft".into()))
}

/// Replaces one sentence's words and citations (or removes it, if the new text is empty). The
/// changed sentence is checked against the segments it now cites exactly as a drafted one is, its
/// flags are the check's, and it is marked as edited by the reviewer.
async fn edit_sentence(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::EditDrafts)?;
    let actor = user.actor.clone();
    let target = id.clone();
    app.db(move |s| {
        let mut draft = latest_draft(s, &actor, &target, "editing")?;
        let sentences = sentences_mut(&mut draft, form.document, form.section)?;
        if form.sentence >= sentences.len() {
            return Err(StoreError::Invalid("no such sentence in the draft".into()));
        }
        // One sentence is one line: a line break in it could pass for a line of the signed text.
        let text = form.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = text.as_str();
        if text.is_empty() {
            sentences.remove(form.sentence);
        } else {
            let sentence = &mut sentences[form.sentence];
            let citations = match &form.cites {
                Some(list) => parse_citations(list)?,
                None => sentence.citations.clone(),
            };
            if text == sentence.text && citations == sentence.citations {
                return Ok(0);
            }
            let mut changed = protocol::Sentence::new(text, citations);
            let transcript = s.transcript(&actor, &target, "editing")?;
            changed.flags = drafting::check_sentence(&changed, &transcript)
                .map_err(|e| StoreError::Invalid(format!("edit refused: {e}")))?;
            changed.edited_by = Some(actor.name.clone());
            *sentence = changed;
        }
        s.save_edited_draft(&actor, &target, form.base_version, &draft)
    })
    .await?;
    Ok(Redirect::to(&format!("/encounters/{id}")).into_response())
}

#[derive(Deserialize)]
struct AcknowledgeForm {
    csrf: String,
    base_version: u32,
    #[serde(default)]
    document: Document,
    section: usize,
    sentence: usize,
    flag: usize,
}

/// A physician saw a flag, checked the sentence against the transcript, and lets it stand: the
/// flag stays, marked with their name, and goes into the signed text that way.
async fn acknowledge_flag(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Form(form): Form<AcknowledgeForm>,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::SignNotes)?;
    let actor = user.actor.clone();
    let target = id.clone();
    app.db(move |s| {
        let mut draft = latest_draft(s, &actor, &target, "acknowledging a flag")?;
        let flag = sentences_mut(&mut draft, form.document, form.section)?
            .get_mut(form.sentence)
            .and_then(|sentence| sentence.flags.get_mut(form.flag))
            .ok_or_else(|| StoreError::Invalid("no such flag in the draft".into()))?;
        if flag.acknowledged_by.is_some() {
            return Ok(0);
        }
        flag.acknowledged_by = Some(actor.name.clone());
        s.save_edited_draft(&actor, &target, form.base_version, &draft)
    })
    .await?;
    Ok(Redirect::to(&format!("/encounters/{id}")).into_response())
}

async fn sign_page(State(app): State<Arc<App>>, user: User, Path(id): Path<String>) -> Page {
    user.require(Permission::SignNotes)?;
    let view = load_encounter(&app, &user, id).await?;
    if !view.access.writes() {
        return Err(WebError::Forbidden(
            "not your encounter to sign (on break-glass access, break glass again with your password)".into(),
        ));
    }
    let Some((version, draft)) = view
        .draft
        .filter(|_| view.encounter.state == EncounterState::AwaitingReview)
    else {
        return Err(WebError::Conflict("there is no draft awaiting signature".into()));
    };
    let e = &view.encounter;
    Ok(layout(
        "Sign",
        Some(&user),
        false,
        html! {
            h1 { "Sign this note" }
            p { "You are signing draft v" (version) " of " @if e.label.is_empty() { "visit " (e.id) } @else { (e.label) } " exactly as shown. After signing it cannot be changed; corrections are signed addenda." }
            @let open = draft.open_flag_count();
            @let acknowledged = draft.flag_count() - open;
            @if open > 0 {
                p.error.open-flags { "⚑ " (open) " flag(s) are still open. On the draft, edit or remove each flagged sentence, or acknowledge its flag, then sign." }
                p { a href={ "/encounters/" (e.id) } { "Back to the draft" } }
            }
            @if acknowledged > 0 {
                p { "⚑ " (acknowledged) " flag(s) were acknowledged; the signed note records each, and by whom." }
            }
            pre.preview { (crate::draft_text(&draft)) }
            @if open == 0 {
                form.card method="post" action={ "/encounters/" (e.id) "/sign" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="version" value=(version);
                    label { "Your password" input type="password" name="password" autocomplete="current-password" required autofocus; }
                    button type="submit" { "Sign" }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct SignForm {
    csrf: String,
    version: u32,
    password: String,
}

/// Re-authenticates the session's user with their password, then signs.
async fn sign(State(app): State<Arc<App>>, user: User, Path(id): Path<String>, Form(form): Form<SignForm>) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::SignNotes)?;
    let actor = user.actor.clone();
    let target = id.clone();
    app.db(move |s| {
        let signer = reauthenticate(s, &actor, &form.password, "sign")?;
        if !s.access(&signer, &target)?.writes() {
            return Err(StoreError::Forbidden {
                actor: signer.name.clone(),
                role: signer.role.as_str().into(),
                action: format!(
                    "sign encounter {target} (on break-glass access, break glass again with your password)"
                ),
            });
        }
        match s.latest_draft(&signer, &target, "signing")? {
            Some((v, _)) if v == form.version => {}
            Some((v, _)) => {
                return Err(StoreError::EditConflict {
                    id: target.clone(),
                    base: form.version,
                    current: v,
                });
            }
            None => return Err(StoreError::NoDraft(target.clone())),
        }
        s.sign(&signer, &target)
    })
    .await?;
    Ok(Redirect::to(&format!("/encounters/{id}")).into_response())
}

/// The password must be the logged-in user's own; a wrong one counts towards lockout.
fn reauthenticate(
    s: &mut store::Store,
    actor: &store::Actor,
    password: &str,
    to: &str,
) -> Result<store::Actor, StoreError> {
    match s.authenticate(&actor.name, password, actor.source.as_deref()) {
        Ok(a) if a == *actor => Ok(a),
        Ok(_) | Err(StoreError::WrongPassword(_) | StoreError::LockedOut { .. }) => Err(StoreError::Forbidden {
            actor: actor.name.clone(),
            role: actor.role.as_str().into(),
            action: format!("{to} without re-entering the right password"),
        }),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct AddendumForm {
    csrf: String,
    text: String,
    password: String,
}

async fn add_addendum(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Form(form): Form<AddendumForm>,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::AmendNotes)?;
    let actor = user.actor.clone();
    let target = id.clone();
    app.db(move |s| {
        let signer = reauthenticate(s, &actor, &form.password, "sign an addendum")?;
        s.add_addendum(&signer, &target, &form.text)
    })
    .await?;
    Ok(Redirect::to(&format!("/encounters/{id}")).into_response())
}

#[derive(Deserialize)]
struct AudioQuery {
    start_ms: u64,
    end_ms: u64,
}

/// A span of the recording as WAV, decrypted for this request only.
async fn audio(State(app): State<Arc<App>>, user: User, Path(id): Path<String>, Query(q): Query<AudioQuery>) -> Page {
    user.require(Permission::PlayRecordings)?;
    if q.end_ms <= q.start_ms || q.end_ms - q.start_ms > 10 * 60 * 1000 {
        return Err(WebError::BadRequest("a playable span is up to 10 minutes".into()));
    }
    let actor = user.actor.clone();
    let span = app
        .db(move |s| s.audio_span(&actor, &id, q.start_ms, q.end_ms, "review: playback"))
        .await?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], crate::wav_bytes(&span, 16_000)).into_response())
}

/// The export formats, with their media type and file extension.
fn export_format(name: &str) -> Result<(&'static str, &'static str), WebError> {
    match name {
        "text" => Ok(("text/plain; charset=utf-8", "txt")),
        "fhir" => Ok(("application/fhir+json", "json")),
        "hl7" => Ok(("x-application/hl7-v2+er7", "hl7")),
        "instructions" => Ok(("text/plain; charset=utf-8", "txt")),
        other => Err(WebError::NotFound(format!("no export format {other}"))),
    }
}

/// Renders a signed note in `format` and records the export, with its destination, in the
/// audit trail.
async fn render_export(
    app: &Arc<App>,
    user: &User,
    id: String,
    format: &str,
    destination: &str,
) -> Result<String, WebError> {
    user.require(Permission::ExportNotes)?;
    export_format(format)?;
    let actor = user.actor.clone();
    let clinic = app.config.clinic.clone();
    let action = format!("note.export:{format}:{destination}");
    let format = format.to_string();
    app.db(move |s| {
        // A disclosure, not a read: not on read-only break-glass access.
        if let Access::BreakGlass { writes: false } = s.access(&actor, &id)? {
            return Err(StoreError::Forbidden {
                actor: actor.name.clone(),
                role: actor.role.as_str().into(),
                action: format!("export encounter {id} on read-only break-glass access"),
            });
        }
        let encounter = s.encounter(&id)?;
        let (note, draft) = s
            .signed_draft(&actor, &id, "export")?
            .ok_or_else(|| StoreError::NotSigned(id.clone()))?;
        let addenda = s.addenda(&actor, &id, "export")?;
        let record = SignedRecord {
            encounter: &encounter,
            note: &note,
            draft: &draft,
            addenda: &addenda,
            clinic: &clinic,
        };
        let body = match format.as_str() {
            "text" => export::plain_text(&record),
            "instructions" => export::patient_instructions_text(&record)
                .ok_or_else(|| StoreError::Invalid("this note was signed without patient instructions".into()))?,
            "fhir" => serde_json::to_string_pretty(&export::fhir_document_reference(&record)).expect("json"),
            _ => export::hl7_mdm_t02(&record, &format!("{}-{}", id, store_now_ms()), store_now_ms()),
        };
        s.audit(&actor, &action, Some(&id), "treatment: export")?;
        Ok(body)
    })
    .await
}

async fn export(State(app): State<Arc<App>>, user: User, Path((id, format)): Path<(String, String)>) -> Page {
    let body = render_export(&app, &user, id.clone(), &format, "download").await?;
    let (mime, ext) = export_format(&format)?;
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"note-{id}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
struct SendForm {
    csrf: String,
    /// "folder", or "ehr:N" for the N-th allow-listed endpoint.
    to: String,
    #[serde(default = "fhir")]
    format: String,
}

fn fhir() -> String {
    "fhir".into()
}

/// Sends a signed note to the configured export folder or to an allow-listed EHR endpoint.
async fn send(State(app): State<Arc<App>>, user: User, Path(id): Path<String>, Form(form): Form<SendForm>) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::ExportNotes)?;
    // Whose note it is comes before where it is going.
    let (actor, target) = (user.actor.clone(), id.clone());
    if !app.db(move |s| s.access(&actor, &target)).await?.allows() {
        return Err(WebError::Forbidden(format!(
            "{} may not export encounter {id}",
            user.actor.name
        )));
    }
    let targets = &app.config.export;
    let sent = if form.to == "folder" {
        let folder = targets
            .folder
            .clone()
            .ok_or_else(|| WebError::BadRequest("no export folder is configured (export.folder)".into()))?;
        let (_, ext) = export_format(&form.format)?;
        let body = render_export(&app, &user, id.clone(), &form.format, "folder").await?;
        let name = format!("note-{id}.{ext}");
        tokio::task::spawn_blocking(move || crate::export::write_atomically(&folder, &name, body.as_bytes()))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(|e| WebError::Upstream(format!("could not write to the export folder: {e}")))?;
        "the export folder".to_string()
    } else if let Some(n) = form.to.strip_prefix("ehr:").and_then(|n| n.parse::<usize>().ok()) {
        let endpoint = targets
            .ehr_endpoints
            .get(n)
            .cloned()
            .ok_or_else(|| WebError::BadRequest("no such EHR endpoint".into()))?;
        let body = render_export(&app, &user, id.clone(), "fhir", &format!("ehr{n}")).await?;
        let (target, link) = (endpoint.clone(), targets.ehr_link.clone());
        tokio::task::spawn_blocking(move || crate::export::post_fhir(&target, &body, &link))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(|e| WebError::Upstream(format!("the note was not sent to {}: {e}", endpoint.url)))?;
        endpoint.url
    } else {
        return Err(WebError::BadRequest(format!("unknown destination {}", form.to)));
    };
    Ok(layout(
        "Sent",
        Some(&user),
        false,
        html! {
            h1 { "Note sent" }
            p.ok { "The signed note was sent to " (sent) "." }
            p { a href={ "/encounters/" (id) } { "Back to the visit" } }
        },
    ))
}

fn store_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The compliance report, generated now from the live configuration (signing the audit head,
/// which is itself audited).
async fn compliance_report(State(app): State<Arc<App>>, user: User) -> Page {
    user.require(Permission::Administer)?;
    let Some(report) = app.config.compliance_report.clone() else {
        return Err(WebError::NotFound("no compliance report on this server".into()));
    };
    let actor = user.actor.clone();
    let render = app
        .db(move |s| (report.0)(s, &actor).map_err(StoreError::Invalid))
        .await?;
    let html = tokio::task::spawn_blocking(render)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(WebError::Internal)?;
    Ok(axum::response::Html(html).into_response())
}

async fn admin(State(app): State<Arc<App>>, user: User) -> Page {
    user.require(Permission::Administer)?;
    let actor = user.actor.clone();
    let (users, queue, chain, owner) = app
        .db(move |s| {
            let users = s.users(&actor)?;
            let mut queue = Vec::new();
            for state in [
                EncounterState::Recording,
                EncounterState::Transcribing,
                EncounterState::Drafting,
                EncounterState::AwaitingReview,
                EncounterState::Failed,
            ] {
                queue.push((state, s.encounters_in(state)?.len()));
            }
            Ok((users, queue, s.verify_audit_chain()?, s.security_owner()?))
        })
        .await?;
    Ok(layout(
        "Admin",
        Some(&user),
        false,
        html! {
            h1 { "Appliance" }
            p { a href="/admin/compliance" { "Compliance report" } " — where PHI travels, who can see it, what the box talks to and keeps, its models, the signed audit head." }
            table.facts {
                @for (k, v) in &app.config.appliance_facts { tr { th { (k) } td { (v) } } }
                tr { th { "Audit trail" } td { (chain_status(&chain)) } }
                tr {
                    th { "Security owner" }
                    td {
                        @match &owner {
                            Some(o) => { (o.name) " (" (o.contact) ")" }
                            None => { "not named: scribe security-owner NAME --contact C" }
                        }
                    }
                }
            }
            h2 { "Queue" }
            table.queue { tr { @for (state, _) in &queue { th { (state.as_str().replace('_', " ")) } } } tr { @for (_, n) in &queue { td { (n) } } } }
            h2 { "Users" }
            table.users {
                thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "Status" } } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.name) } td { (u.role.as_str()) } td { (when(u.created_ms)) }
                            td {
                                @if u.disabled { "disabled " }
                                @else if u.enrolling { "waiting for enrolment " }
                                @else if u.locked { "locked from an address " }
                                @else { "active " }
                                @let action = |what: &str| format!("/admin/users/{}/{what}", u.name);
                                @if u.locked {
                                    form.inline method="post" action=(action("unlock")) {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button type="submit" { "Unlock" }
                                    }
                                }
                                @if u.disabled {
                                    form.inline method="post" action=(action("enable")) {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button type="submit" { "Enable" }
                                    }
                                } @else if u.name != user.actor.name {
                                    form.inline method="post" action=(action("disable")) {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button.danger type="submit" { "Disable" }
                                    }
                                }
                                form.inline method="post" action=(action("reset")) {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button type="submit" { "Reset password" }
                                }
                            }
                        }
                    }
                }
            }
            form.card method="post" action="/admin/users" {
                h3 { "Add a user" }
                input type="hidden" name="csrf" value=(user.csrf);
                label { "User name" input name="name" required maxlength=(store::MAX_USER_NAME) pattern="[A-Za-z0-9._@-]+"; }
                label { "Role" select name="role" {
                    option value="clinician" { "clinician" } option value="physician" { "physician" }
                    option value="it_admin" { "IT admin" } option value="auditor" { "auditor" }
                } }
                p { "The new user sets their own password with a one-time enrolment code, shown once when you add them: give it to them in person." }
                button type="submit" { "Add user" }
            }
        },
    ))
}

fn chain_status(chain: &store::ChainReport) -> String {
    match &chain.broken_at {
        None => format!("{} events, chain intact", chain.events),
        Some((seq, why)) => format!("BROKEN at event {seq}: {why}"),
    }
}

#[derive(Deserialize)]
struct AddUserForm {
    csrf: String,
    name: String,
    role: String,
}

async fn add_user(State(app): State<Arc<App>>, user: User, Form(form): Form<AddUserForm>) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::ManageUsers)?;
    let role = Role::parse(&form.role).ok_or_else(|| WebError::BadRequest(format!("no role {}", form.role)))?;
    let actor = user.actor.clone();
    let name = form.name.clone();
    let code = app.db(move |s| s.add_user_enrolling(&actor, &name, role)).await?;
    Ok(enrolment_code_page(&user, &form.name, &code, "added"))
}

/// The one time an enrolment code is shown: to the IT admin who made it, to hand on in person.
fn enrolment_code_page(user: &User, name: &str, code: &str, what: &str) -> Response {
    let hours = store::ENROLMENT_MS / 3_600_000;
    layout(
        "Enrolment code",
        Some(user),
        false,
        html! {
            h1 { (name) " " (what) }
            p { "Give this one-time code to " (name) " in person. With it they set their own password at " code { "/enrol" } " within " (hours) " hours. It is shown only now; if it is lost, reset the password again." }
            p.code { code #enrolment-code { (code) } }
            p { a href="/admin" { "Back to the users" } }
        },
    )
}

async fn disable_user(user: User, state: State<Arc<App>>, name: Path<String>, form: Form<CsrfForm>) -> Page {
    set_disabled(user, state, name, form, true).await
}

async fn enable_user(user: User, state: State<Arc<App>>, name: Path<String>, form: Form<CsrfForm>) -> Page {
    set_disabled(user, state, name, form, false).await
}

async fn set_disabled(
    user: User,
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
    disabled: bool,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::ManageUsers)?;
    let actor = user.actor.clone();
    let target = name.clone();
    app.db(move |s| s.set_user_disabled(&actor, &target, disabled)).await?;
    if disabled {
        app.sessions.end_user(&name);
    }
    Ok(Redirect::to("/admin").into_response())
}

async fn reset_password(
    State(app): State<Arc<App>>,
    user: User,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::ManageUsers)?;
    let actor = user.actor.clone();
    let target = name.clone();
    let code = app.db(move |s| s.reset_password(&actor, &target)).await?;
    app.sessions.end_user(&name);
    Ok(enrolment_code_page(&user, &name, &code, "must set a new password"))
}

async fn enrol_page() -> Response {
    enrol_form(html! {})
}

fn enrol_form(notice: Markup) -> Response {
    layout(
        "Set your password",
        None,
        false,
        html! {
            h1 { "Set your password" }
            (notice)
            form.card method="post" action="/enrol" {
                label { "User name" input name="user" autocomplete="username" maxlength=(store::MAX_USER_NAME) required autofocus; }
                label { "Enrolment code (from IT)" input name="code" autocomplete="one-time-code" required; }
                label { "New password (at least " (store::MIN_PASSWORD_CHARS) " characters)" input name="password" type="password" autocomplete="new-password" required minlength=(store::MIN_PASSWORD_CHARS); }
                button type="submit" { "Set password and log in" }
            }
        },
    )
}

#[derive(Deserialize)]
struct EnrolForm {
    user: String,
    code: String,
    password: String,
}

/// A new user (or one whose password IT reset) sets their password with their enrolment code and
/// is logged in. Wrong codes count as failed logins, and slow down like them.
async fn enrol(
    State(app): State<Arc<App>>,
    super::Source(source): super::Source,
    headers: HeaderMap,
    Form(form): Form<EnrolForm>,
) -> Page {
    if let Some(old) = session_token(&headers) {
        app.sessions.end(&old);
    }
    if let Err(wait) = app.login_throttle.begin(source.as_deref(), Instant::now()) {
        return Ok(turned_away(enrol_form, "attempts", wait));
    }
    let from = source.clone();
    let EnrolForm { user, code, password } = form;
    let permit = app
        .password_checks
        .acquire()
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let result = app
        .db(move |s| s.enrol(&user, code.trim(), &password, from.as_deref()))
        .await;
    drop(permit);
    match result {
        Ok(actor) => {
            app.login_throttle.give_back(source.as_deref(), Instant::now());
            Ok(logged_in(&app, actor))
        }
        Err(WebError::BadRequest(m)) if m.starts_with("a password has") => {
            app.login_throttle.give_back(source.as_deref(), Instant::now());
            let mut page = enrol_form(html! { p.error { (m) } });
            *page.status_mut() = StatusCode::BAD_REQUEST;
            Ok(page)
        }
        // One answer for unknown users, wrong or used codes and locked accounts.
        Err(WebError::BadRequest(_) | WebError::Internal(_) | WebError::Forbidden(_)) => {
            let mut page = enrol_form(html! {
                p.error { "That user name and enrolment code do not match, or the code was used or has expired. Ask IT for a new one." }
            });
            *page.status_mut() = StatusCode::FORBIDDEN;
            Ok(page)
        }
        Err(e) => {
            app.login_throttle.give_back(source.as_deref(), Instant::now());
            Err(e)
        }
    }
}

async fn unlock_user(
    State(app): State<Arc<App>>,
    user: User,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::ManageUsers)?;
    let actor = user.actor.clone();
    app.db(move |s| s.unlock_user(&actor, &name)).await?;
    Ok(Redirect::to("/admin").into_response())
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    encounter: Option<String>,
    actor: Option<String>,
    /// The page of events before this event number (the "older events" link).
    before: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> store::AuditFilter {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        store::AuditFilter {
            encounter: given(&self.encounter),
            actor: given(&self.actor),
        }
    }
}

/// Events on one page of the audit trail, and in one read of its CSV export.
const AUDIT_PAGE: usize = 200;

/// Reading the trail is itself audited, once per page or export, before anything is shown.
async fn audit_read(app: &Arc<App>, user: &User) -> Result<(), WebError> {
    user.require(Permission::ReadAuditTrail)?;
    let actor = user.actor.clone();
    app.db(move |s| s.audit(&actor, "audit.read", None, "oversight")).await
}

async fn audit_page(State(app): State<Arc<App>>, user: User, Query(q): Query<AuditQuery>) -> Page {
    audit_read(&app, &user).await?;
    let filter = q.filter();
    let before = q.before.unwrap_or(i64::MAX);
    let (events, chain, grants) = {
        let (actor, filter) = (user.actor.clone(), filter.clone());
        app.db(move |s| {
            let events = s.audit_events_page(&filter, store::AuditPage::NewestBefore(before), AUDIT_PAGE)?;
            Ok((events, s.verify_audit_chain()?, s.break_glass_grants(&actor, 50)?))
        })
        .await?
    };
    let query = |before: Option<i64>| {
        let mut pairs = vec![
            ("encounter", filter.encounter.clone().unwrap_or_default()),
            ("actor", filter.actor.clone().unwrap_or_default()),
        ];
        pairs.extend(before.map(|b| ("before", b.to_string())));
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let older = (events.len() == AUDIT_PAGE)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(layout(
        "Audit trail",
        Some(&user),
        false,
        html! {
            h1 { "Audit trail" }
            p class=(if chain.broken_at.is_some() { "error" } else { "ok" }) { (chain_status(&chain)) }
            h2 { "Break-glass grants" }
            @if grants.is_empty() {
                p { "None." }
            } @else {
                table.breakglass-grants {
                    thead { tr { th { "When" } th { "Who" } th { "Encounter" } th { "Access" } th { "Reason" } } }
                    tbody {
                        @for g in &grants {
                            tr {
                                td { (when(g.granted_ms)) } td { (g.actor) } td { (g.encounter_id) }
                                td { (if g.writes { "read and write (password)" } else { "read-only" }) }
                                td { (g.reason) }
                            }
                        }
                    }
                }
            }
            h2 { "Events" }
            form.filters method="get" action="/audit" {
                label { "Encounter" input name="encounter" value=(filter.encounter.as_deref().unwrap_or("")); }
                label { "Actor" input name="actor" value=(filter.actor.as_deref().unwrap_or("")); }
                button type="submit" { "Filter" }
                " "
                a href={ "/audit/export.csv?" (query(None)) } { "Export CSV" }
            }
            table.audit {
                thead { tr { th { "#" } th { "When" } th { "Who" } th { "Role" } th { "Action" } th { "Encounter" } th { "Purpose" } th { "From" } } }
                tbody {
                    @for e in &events {
                        tr class=(if e.purpose.starts_with("break-glass") { "breakglass" } else { "" }) {
                            td { (e.seq) } td { (when(e.at_ms)) } td { (e.actor) } td { (e.role) } td { (e.action) }
                            td { (e.encounter_id.as_deref().unwrap_or("")) } td { (e.purpose) }
                            td { (e.source.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if let Some(seq) = older {
                p { a.older href={ "/audit?" (query(Some(seq))) } { "Older events" } }
            }
        },
    ))
}

/// A query-string value, percent-encoded (names and ids may hold `&`, `=`, `#` or spaces).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    // Quote everything; neutralise spreadsheet formulas (a leading tab or carriage return is
    // read as one too).
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The trail as CSV, oldest first, streamed a page at a time: the store is held for one page
/// (a short read) at a time and the server never holds the trail whole.
async fn audit_csv(State(app): State<Arc<App>>, user: User, Query(q): Query<AuditQuery>) -> Page {
    audit_read(&app, &user).await?;
    let start = (app, q.filter(), 0i64, true);
    let pages = futures_util::stream::unfold(Some(start), |state| async move {
        let (app, filter, after, first) = state?;
        let page_filter = filter.clone();
        let read = app
            .db(move |s| s.audit_events_page(&page_filter, store::AuditPage::OldestAfter(after), AUDIT_PAGE * 5))
            .await;
        let events = match read {
            Ok(events) => events,
            Err(_) => return Some((Err(std::io::Error::other("the audit trail could not be read")), None)),
        };
        if events.is_empty() && !first {
            return None;
        }
        let mut out = String::new();
        if first {
            out.push_str("seq,at,actor,role,action,encounter,purpose,source,prev_hash,hash\n");
        }
        for e in &events {
            let row = [
                &e.seq.to_string(),
                &rfc3339_utc(e.at_ms),
                &e.actor,
                &e.role,
                &e.action,
                e.encounter_id.as_deref().unwrap_or(""),
                &e.purpose,
                e.source.as_deref().unwrap_or(""),
                &e.prev_hash,
                &e.hash,
            ];
            out.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        let next = events.last().map(|e| (app, filter, e.seq, false));
        Some((Ok::<_, std::io::Error>(out), next))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.csv\""),
        ],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    /// A spreadsheet opening the audit CSV runs a cell that starts like a formula; a leading tab
    /// or carriage return is skipped and the formula after it runs all the same.
    #[test]
    fn audit_csv_cells_never_start_a_formula() {
        for attack in ["=HYPERLINK(\"x\")", "+1", "-1", "@SUM(A1)", "\t=1+1", "\r=1+1"] {
            let cell = csv_field(attack);
            assert!(cell.starts_with("\"'"), "{attack:?} became {cell:?}");
        }
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("nina"), "\"nina\"");
    }
}
