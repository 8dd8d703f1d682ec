//! Recording a visit from a browser or tablet on the clinic LAN.
//!
//! The page (`/record/{id}`) captures the microphone as 16 kHz mono PCM in an AudioWorklet and
//! sends one-second chunks over a WebSocket, each numbered from 0. The appliance commits each chunk
//! to the encrypted store before acknowledging it; the browser keeps every unacknowledged chunk and
//! resends them after a reconnect, and the store ignores a chunk it already has. So a network blip
//! loses nothing, and a crash of either side loses at most the unacknowledged second.

use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use store::{Actor, NewEncounter, Permission, State as EncounterState, StoreError};

use super::pages::layout;
use super::{App, User, WebError};

type Page = Result<Response, WebError>;

/// At most one second of 16 kHz audio per chunk.
pub const MAX_CHUNK_SAMPLES: usize = 16_000;
/// The largest WebSocket message a recorder sends (a sequence number and a second of samples):
/// anything bigger is refused as it arrives, not buffered first.
const MAX_CHUNK_BYTES: usize = 4 + 2 * MAX_CHUNK_SAMPLES;
/// Recording streams one user may have open at once (a room's tablet, a phone, a retry or two).
pub const MAX_STREAMS_PER_USER: usize = 4;

/// One of a user's open recording streams, counted while it lives.
struct StreamSlot {
    app: Arc<App>,
    user: String,
}

impl StreamSlot {
    fn take(app: &Arc<App>, user: &str) -> Result<StreamSlot, WebError> {
        let mut open = app.streams.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user.to_string()).or_insert(0);
        if *n >= MAX_STREAMS_PER_USER {
            return Err(WebError::TooMany(format!(
                "{user} already has {MAX_STREAMS_PER_USER} recording streams open; close a recorder page first"
            )));
        }
        *n += 1;
        Ok(StreamSlot {
            app: Arc::clone(app),
            user: user.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.app.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// A visit label names a room and a time; it is shown in every list, so it stays short.
pub const MAX_LABEL_CHARS: usize = 120;
/// The most a text field of the upload form (label, template, physician, token) may hold.
const MAX_FIELD_BYTES: usize = 1024;

pub(super) async fn record_page(user: User) -> Page {
    user.require(Permission::RecordVisits)?;
    Ok(layout(
        "Record a visit",
        Some(&user),
        false,
        html! {
            h1 { "Record a visit" }
            form.card method="post" action="/record" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Visit label (e.g. room and time)" input name="label" required; }
                label { "Note template" input name="template" value="soap" required; }
                label { "Physician to sign (optional)" input name="physician"; }
                button type="submit" { "Create and open the recorder" }
            }
            h2 { "Or upload a recording" }
            // The CSRF token comes first: it is checked before the file is read.
            form.card #upload method="post" action="/upload" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(user.csrf);
                label { "Visit label (e.g. room and time)" input name="label" required; }
                label { "Note template" input name="template" value="soap" required; }
                label { "Physician to sign (optional)" input name="physician"; }
                label {
                    "Recording (" (audio::SUPPORTED) ")"
                    input type="file" name="recording" required
                        accept="audio/*,video/webm,.wav,.flac,.mp3,.m4a,.aac,.ogg,.opus,.webm";
                }
                button type="submit" { "Upload and draft" }
            }
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct NewRecording {
    csrf: String,
    label: String,
    template: String,
    #[serde(default)]
    physician: String,
}

pub(super) async fn create_recording(State(app): State<Arc<App>>, user: User, Form(form): Form<NewRecording>) -> Page {
    user.check_csrf(&form.csrf)?;
    user.require(Permission::RecordVisits)?;
    let new = new_encounter(&form.label, &form.template, &form.physician)?;
    let actor = user.actor.clone();
    let id = app.db(move |s| s.start_recording(&actor, &new)).await?;
    Ok(Redirect::to(&format!("/record/{id}")).into_response())
}

fn new_encounter(label: &str, template: &str, physician: &str) -> Result<NewEncounter, WebError> {
    if label.trim().chars().count() > MAX_LABEL_CHARS {
        return Err(WebError::BadRequest(format!(
            "a visit label is at most {MAX_LABEL_CHARS} characters (a room and a time)"
        )));
    }
    let template = template.trim().to_string();
    if template.is_empty() || !template.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
        return Err(WebError::BadRequest(format!("{template:?} is not a template name")));
    }
    Ok(NewEncounter {
        template,
        label: label.trim().to_string(),
        assigned_to: Some(physician.trim().to_string()).filter(|p| !p.is_empty()),
        clinician: None,
    })
}

/// An uploaded recording: read within the size limit, decoded and checked in full, and only then
/// stored as a new encounter, so a bad file leaves nothing behind.
pub(super) async fn upload(State(app): State<Arc<App>>, user: User, mut form: Multipart) -> Page {
    user.require(Permission::UploadRecordings)?;
    // Held until the upload is stored or refused: memory and decoding are bounded by this many.
    let Ok(_slot) = app.uploads.try_acquire() else {
        return Err(WebError::TooMany(format!(
            "{} recordings are being uploaded now, the most this appliance takes at once; try again in a minute",
            app.config.concurrent_uploads
        )));
    };
    let limits = app.config.upload_limits;
    let too_large = |bytes: u64| {
        WebError::TooLarge(
            audio::AudioError::TooLarge {
                bytes,
                limit: limits.max_bytes,
            }
            .to_string(),
        )
    };
    let (mut csrf_checked, mut recording) = (false, None);
    let (mut label, mut template, mut physician) = (String::new(), String::new(), String::new());
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "recording" {
            if !csrf_checked {
                return Err(WebError::BadRequest(
                    "the form's security token must come before the recording".into(),
                ));
            }
            // To disk as it arrives, encrypted: memory holds a block of it, not the file.
            let spooled = |e: std::io::Error| WebError::Unavailable(format!("the upload could not be received: {e}"));
            let mut spool = crate::spool::Spool::new(&app.config.spool_dir).map_err(spooled)?;
            while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                if spool.len() + chunk.len() as u64 > limits.max_bytes {
                    return Err(too_large(spool.len() + chunk.len() as u64));
                }
                spool.write(&chunk).map_err(spooled)?;
            }
            recording = Some(spool);
            continue;
        }
        let value = small_field(field).await?;
        match name.as_str() {
            "csrf" => {
                user.check_csrf(&value)?;
                csrf_checked = true;
            }
            "label" => label = value,
            "template" => template = value,
            "physician" => physician = value,
            _ => {}
        }
    }
    if !csrf_checked {
        return Err(WebError::Forbidden("the form's security token is missing".into()));
    }
    let new = new_encounter(&label, &template, &physician)?;
    let spool = recording.ok_or_else(|| WebError::BadRequest("no recording was attached".into()))?;
    let decoded = tokio::task::spawn_blocking(move || -> Result<_, std::io::Error> {
        Ok(audio::decode_source(Box::new(spool.into_reader()?), &limits))
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?
    .map_err(|e| WebError::Unavailable(format!("the upload could not be read back: {e}")))?;
    let recording = match decoded {
        Ok(recording) => recording,
        Err(
            e @ (audio::AudioError::TooLarge { .. }
            | audio::AudioError::TooLong { .. }
            | audio::AudioError::TooMuchAudio { .. }),
        ) => {
            return Err(WebError::TooLarge(e.to_string()));
        }
        Err(e) => return Err(WebError::Unprocessable(format!("Nothing was stored: {e}."))),
    };
    tracing::info!(audio_ms = recording.pcm.duration_ms(), "upload decoded");
    let actor = user.actor.clone();
    let id = app
        .db(move |s| s.create_audio_encounter(&actor, &new, &recording.pcm.samples, recording.channel_track.as_deref()))
        .await?;
    Ok(Redirect::to(&format!("/encounters/{id}")).into_response())
}

/// A text field of the upload form, read only up to [`MAX_FIELD_BYTES`]: the form may be as large
/// as a recording, and none of its text fields needs to be.
async fn small_field(mut field: axum::extract::multipart::Field<'_>) -> Result<String, WebError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if bytes.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(WebError::BadRequest(format!(
                "the form's {} field is over {MAX_FIELD_BYTES} bytes",
                field.name().unwrap_or("unnamed")
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| WebError::BadRequest("a form field is not UTF-8 text".into()))
}

fn form_error(e: MultipartError) -> WebError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge("the upload is over the size limit (capture.max_upload_mb)".into())
    } else {
        WebError::BadRequest(format!("the upload could not be read: {}", e.body_text()))
    }
}

pub(super) async fn recorder(State(app): State<Arc<App>>, user: User, Path(id): Path<String>) -> Page {
    user.require(Permission::RecordVisits)?;
    let actor = user.actor.clone();
    let target = id.clone();
    let encounter = app
        .db(move |s| {
            if !s.access(&actor, &target)?.allows() {
                return Err(StoreError::Forbidden {
                    actor: actor.name.clone(),
                    role: actor.role.as_str().into(),
                    action: format!("record into encounter {target}"),
                });
            }
            // The page shows the visit's label, which may identify the patient.
            let encounter = s.encounter(&target)?;
            s.audit(&actor, "recorder.open", Some(&target), "treatment")?;
            Ok(encounter)
        })
        .await?;
    if encounter.state != EncounterState::Recording {
        return Ok(Redirect::to(&format!("/encounters/{id}")).into_response());
    }
    Ok(layout(
        "Recording",
        Some(&user),
        false,
        html! {
            h1 { "Recording: " (encounter.label) }
            div #recorder data-encounter=(id) data-csrf=(user.csrf) {
                p { "Audio is stored on the appliance, encrypted, one second at a time. If the network drops, keep going: it is sent when the connection is back." }
                p {
                    button #rec-start type="button" { "Start" } " "
                    button #rec-stop.danger type="button" disabled { "Stop and draft" }
                }
                p { "Level " meter #rec-level min="0" max="1" value="0" {} }
                p #rec-status.notice { "Ready." }
            }
            script src="/static/recorder.js" defer {}
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    csrf: String,
}

/// The WebSocket a recorder page streams into. Same checks as a form post: the session's CSRF
/// token and a same-origin request (browsers send Origin on WebSocket handshakes).
pub(super) async fn stream(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    // Last, and as a Result: who may stream is decided before whether this is a WebSocket.
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Page {
    user.check_csrf(&q.csrf)?;
    user.require(Permission::RecordVisits)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && origin.split_once("://").map(|(_, h)| h) != host
    {
        return Err(WebError::Forbidden("cross-site recording stream refused".into()));
    }
    let actor = user.actor.clone();
    let target = id.clone();
    app.db(move |s| {
        if !s.access(&actor, &target)?.allows() {
            return Err(StoreError::Forbidden {
                actor: actor.name.clone(),
                role: actor.role.as_str().into(),
                action: format!("record into encounter {target}"),
            });
        }
        let e = s.encounter(&target)?;
        if e.state != EncounterState::Recording {
            return Err(StoreError::WrongState {
                id: target.clone(),
                state: e.state.as_str().into(),
                expected: "recording".into(),
            });
        }
        Ok(())
    })
    .await?;
    let ws = ws.map_err(|_| WebError::BadRequest("this address takes a WebSocket from the recorder page".into()))?;
    let slot = StreamSlot::take(&app, &user.actor.name)?;
    let (actor, token) = (user.actor.clone(), user.token.clone());
    Ok(ws
        .max_message_size(MAX_CHUNK_BYTES)
        .max_frame_size(MAX_CHUNK_BYTES)
        .on_upgrade(move |socket| async move {
            stream_session(app, actor, token, id, socket).await;
            drop(slot);
        }))
}

/// Commits each chunk, then acknowledges it; "stop" finishes the recording. Each message is taken
/// under the session that opened the stream: once it ends (logout, idle or absolute timeout), the
/// stream ends too. A message over [`MAX_CHUNK_BYTES`] ends the stream as it arrives.
async fn stream_session(app: Arc<App>, actor: Actor, token: String, id: String, mut socket: WebSocket) {
    tracing::info!(encounter = %id, "recording stream opened");
    while let Some(Ok(message)) = socket.recv().await {
        if app.sessions.touch(&token).is_err() {
            let reply = serde_json::json!({ "error": error_text(WebError::LoginRequired(super::NoSession::Missing)) });
            let _ = socket.send(Message::Text(reply.to_string().into())).await;
            break;
        }
        let reply = match message {
            Message::Binary(bytes) => recording_message(&app, &actor, &id, StreamMessage::Chunk(&bytes)).await,
            Message::Text(text) if text.as_str() == "stop" => {
                recording_message(&app, &actor, &id, StreamMessage::Stop).await
            }
            Message::Close(_) => break,
            _ => continue,
        };
        let last = reply.get("done").is_some() || reply.get("error").is_some();
        if socket.send(Message::Text(reply.to_string().into())).await.is_err() || last {
            break;
        }
    }
    tracing::info!(encounter = %id, "recording stream closed");
}

/// A message of the recording stream that asks for something.
pub enum StreamMessage<'a> {
    /// `[seq: u32 LE][samples: i16 LE …]`, at most a second.
    Chunk(&'a [u8]),
    /// The recording is over: finish it and start transcription.
    Stop,
}

/// What the appliance answers one message of a recording stream with, after doing what it asks:
/// `{"ack": seq}` once the chunk is committed, `{"done": true}` once the recording is finished,
/// or `{"error": why}`. The session was checked by the caller.
pub async fn recording_message(
    app: &Arc<App>,
    actor: &Actor,
    id: &str,
    message: StreamMessage<'_>,
) -> serde_json::Value {
    let (actor, id) = (actor.clone(), id.to_string());
    match message {
        StreamMessage::Chunk(bytes) => match parse_chunk(bytes) {
            Ok((seq, pcm)) => {
                let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
                let peak_dbfs = (20.0 * (f64::from(peak).max(1.0) / 32768.0).log10()) as f32;
                match app
                    .db(move |s| s.append_audio(&actor, &id, seq, &pcm, Some(peak_dbfs)))
                    .await
                {
                    Ok(_) => serde_json::json!({ "ack": seq }),
                    Err(e) => serde_json::json!({ "error": error_text(e) }),
                }
            }
            Err(why) => serde_json::json!({ "error": why }),
        },
        StreamMessage::Stop => match app.db(move |s| s.finish_recording(&actor, &id, "stopped")).await {
            Ok(()) => serde_json::json!({ "done": true }),
            Err(e) => serde_json::json!({ "error": error_text(e) }),
        },
    }
}

/// The answer for a stream failure that is the appliance's, not the recorder's.
pub const STREAM_STORE_FAILED: &str = "the appliance could not store the audio; keep the page open, it will retry";

fn error_text(e: WebError) -> String {
    match e {
        WebError::Forbidden(m)
        | WebError::NotFound(m)
        | WebError::Conflict(m)
        | WebError::BadRequest(m)
        | WebError::TooLarge(m)
        | WebError::TooMany(m)
        | WebError::Gone(m)
        | WebError::Unprocessable(m) => m,
        WebError::Upstream(m) | WebError::Internal(m) => {
            tracing::error!(error = %m, "recording stream failed");
            STREAM_STORE_FAILED.into()
        }
        WebError::LoginRequired(_) => {
            "logged off: log in again and reopen the recorder; what was sent so far is kept".into()
        }
        WebError::Unavailable(m) => {
            tracing::error!(error = %m, "recording stream cannot store audio");
            format!("{m}. Keep this page open: the recording is kept here and sent once the appliance can store it")
        }
    }
}

/// One binary message of the recorder's WebSocket protocol: `[seq: u32 LE][samples: i16 LE …]`,
/// at most one second.
pub fn parse_chunk(bytes: &[u8]) -> Result<(u32, Vec<i16>), String> {
    if bytes.len() < 6 || !(bytes.len() - 4).is_multiple_of(2) || (bytes.len() - 4) / 2 > MAX_CHUNK_SAMPLES {
        return Err(format!(
            "a chunk is a 4-byte sequence number and up to {MAX_CHUNK_SAMPLES} 16-bit samples"
        ));
    }
    let seq = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let pcm = bytes[4..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok((seq, pcm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_a_sequence_number_and_at_most_a_second_of_samples() {
        let mut frame = 7u32.to_le_bytes().to_vec();
        frame.extend([1u8, 0, 0xff, 0xff]);
        assert_eq!(parse_chunk(&frame).unwrap(), (7, vec![1, -1]));
        assert!(parse_chunk(&[0, 0, 0]).is_err());
        assert!(parse_chunk(&[0, 0, 0, 0, 1]).is_err());
        let too_long = vec![0u8; 4 + 2 * (MAX_CHUNK_SAMPLES + 1)];
        assert!(parse_chunk(&too_long).is_err());
    }
}
