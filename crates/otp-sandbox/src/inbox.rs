//! The inbox as a live web page: `GET /__sandbox/` and its script and style, all embedded in
//! the binary and served under a Content-Security-Policy that allows nothing but the sandbox
//! itself; the magic numbers' table it shows; and its feed of changes, `GET /__sandbox/events`
//! (Server-Sent Events), fed by the state's bounded broadcast of sends, verifications, expiries
//! and resets.
//!
//! With an admin token, the page (no data in it) is served to anyone and asks for the token;
//! everything it reads needs it. A browser's `EventSource` cannot send a header, so the page
//! trades the token (`POST /__sandbox/ticket`, Bearer) for a ticket it puts in the events'
//! query string: signed by a key of this process, valid for [`TICKET_TTL`] to connect with,
//! good for nothing but the events. The token itself never travels in a URL.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::broadcast::error::RecvError;

use crate::app::App;
use crate::server::{admitted, method_not_allowed, INBOX_LIMIT};
use crate::state::Change;

const PAGE: &str = include_str!("inbox/index.html");
const SCRIPT: &str = include_str!("inbox/inbox.js");
const STYLE: &str = include_str!("inbox/inbox.css");
const ICON: &str = include_str!("inbox/favicon.svg");

/// Only the sandbox's own script, style and connections; no inline code, no frames, no form
/// that submits anywhere (the login form is read by the script, so a token never lands in a URL).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How long a ticket may be used to open the event stream (an open stream outlives it).
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// How soon a browser reconnects to a stream that ended (the `retry:` the stream sends first).
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// How often an idle stream sends a comment, so that proxies and browsers keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The longest the expiry announcer sleeps when nothing is due (a send that expires sooner
/// wakes it), and the least between two rounds: expiries due within it are announced
/// together, so a flood of short-lived OTPs wakes it five times a second, not once a send.
const ALARM_MAX: Duration = Duration::from_secs(60);
const ALARM_MIN: Duration = Duration::from_millis(200);

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/__sandbox", get(to_page).fallback(method_not_allowed))
        .route("/__sandbox/", get(page).fallback(method_not_allowed))
        .route("/__sandbox/inbox.js", get(script).fallback(method_not_allowed))
        .route("/__sandbox/inbox.css", get(style).fallback(method_not_allowed))
        .route("/__sandbox/favicon.svg", get(icon).fallback(method_not_allowed))
        .route("/__sandbox/magic", get(magic).fallback(method_not_allowed))
        .route("/__sandbox/events", get(events).fallback(method_not_allowed))
        .route("/__sandbox/ticket", post(ticket).fallback(method_not_allowed))
}

/// The headers every part of the page carries: its policy, no sniffing, no referrer (a
/// ticket in a URL goes nowhere else), and no stale copy after an upgrade.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

async fn to_page() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/__sandbox/")]).into_response()
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

/// The magic numbers' table, from the sandbox's own list and each gateway's answers.
async fn magic(AxumState(app): AxumState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admitted(&app, &headers) {
        return refused;
    }
    axum::Json(crate::gateways::magic_table()).into_response()
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The signature of a ticket that expires at `expires` (Unix milliseconds).
fn signature(key: &[u8; 32], expires: u64) -> Option<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(b"otp-sandbox events ticket ");
    mac.update(expires.to_string().as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

/// A ticket valid until `now` + [`TICKET_TTL`]: `EXPIRES.SIGNATURE`.
fn issue_ticket(app: &App, now: SystemTime) -> Option<String> {
    let expires = unix_millis(now + TICKET_TTL);
    let signature = signature(app.ticket_key.as_ref()?, expires)?;
    Some(format!("{expires}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)))
}

/// Whether `ticket` was issued by this process and has not expired.
fn ticket_admits(app: &App, ticket: &str, now: SystemTime) -> bool {
    let Some(key) = &app.ticket_key else { return false };
    let Some((expires, given)) = ticket.split_once('.') else { return false };
    let (Ok(expires), Ok(given)) =
        (expires.parse::<u64>(), base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given))
    else {
        return false;
    };
    if expires < unix_millis(now) {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return false };
    mac.update(b"otp-sandbox events ticket ");
    mac.update(expires.to_string().as_bytes());
    // Compared in constant time by the MAC itself.
    mac.verify_slice(&given).is_ok()
}

/// A ticket for the event stream, for the admin token; `null` when the sandbox has no token
/// (the stream needs none then).
async fn ticket(AxumState(app): AxumState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admitted(&app, &headers) {
        return refused;
    }
    if app.admin_digest.is_none() {
        return axum::Json(json!({"ticket": null, "expires_in": null})).into_response();
    }
    match issue_ticket(&app, SystemTime::now()) {
        Some(ticket) => axum::Json(json!({"ticket": ticket, "expires_in": TICKET_TTL.as_secs()})).into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "no randomness available to sign a ticket"})),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    ticket: Option<String>,
}

/// The inbox's changes as Server-Sent Events: `snapshot` first (and again after a stream fell
/// behind), then `otp`, `update` and `reset`. Admitted by a ticket or the Bearer token.
async fn events(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let ticket = query.ok().and_then(|Query(query)| query.ticket);
    let by_ticket = ticket.is_some_and(|ticket| ticket_admits(&app, &ticket, SystemTime::now()));
    if !by_ticket {
        if let Err(refused) = admitted(&app, &headers) {
            return refused;
        }
    }
    stream(app)
}

/// The stream's answer: its events, with a comment whenever it has been idle for [`KEEP_ALIVE`].
fn stream(app: Arc<App>) -> Response {
    let keep_alive = KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive");
    let mut response = Sse::new(feed(app)).keep_alive(keep_alive).into_response();
    // A buffering proxy (nginx) would hold the events back.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One stream's position: its subscription, taken before the first snapshot is read so that
/// nothing falls between them (a change in both is applied twice, harmlessly: by id).
struct Feed {
    app: Arc<App>,
    changes: tokio::sync::broadcast::Receiver<Change>,
    stopping: tokio::sync::watch::Receiver<bool>,
    started: bool,
}

fn feed(app: Arc<App>) -> impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let feed = Feed { changes: app.state.subscribe(), stopping: app.stopping.subscribe(), app, started: false };
    futures_util::stream::unfold(feed, |mut feed| async move {
        if !feed.started {
            feed.started = true;
            let first = snapshot(&feed.app).retry(RECONNECT_AFTER);
            return Some((Ok(first), feed));
        }
        if *feed.stopping.borrow() {
            return None;
        }
        let change = tokio::select! {
            change = feed.changes.recv() => change,
            // The sandbox stops (or is gone): end the stream, and the browser reconnects.
            _ = feed.stopping.changed() => return None,
        };
        let event = match change {
            Ok(Change::Sent(otp)) => data(Event::default().event("otp"), &otp),
            Ok(Change::Updated(otp)) => data(Event::default().event("update"), &otp),
            Ok(Change::Reset) => Event::default().event("reset").data("{}"),
            // A slow reader missed changes: it gets the whole inbox again, rather than a gap,
            // and the changes from then on (not the stale ones still queued).
            Err(RecvError::Lagged(_)) => {
                feed.changes = feed.changes.resubscribe();
                snapshot(&feed.app)
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), feed))
    })
}

/// The newest OTPs, as the inbox answers them.
fn snapshot(app: &App) -> Event {
    data(Event::default().event("snapshot"), &json!({"otps": app.state.otps(None, INBOX_LIMIT)}))
}

/// JSON on one line (serde_json escapes every newline), so that no value can end an event.
fn data(event: Event, value: &impl serde::Serialize) -> Event {
    match serde_json::to_string(value) {
        Ok(text) => event.data(text),
        Err(error) => Event::default().comment(format!("unserialisable event: {error}")),
    }
}

/// Announces each OTP's expiry as it passes, for as long as the sandbox serves (never ends).
pub(crate) async fn announce_expiries(app: Arc<App>) {
    loop {
        let now = Instant::now();
        let wait = app
            .state
            .announce_expired(now)
            .map_or(ALARM_MAX, |next| next.saturating_duration_since(now).clamp(ALARM_MIN, ALARM_MAX));
        // A wake-up in this pause is kept (Notify stores it) and taken right after.
        tokio::time::sleep(ALARM_MIN).await;
        tokio::select! {
            () = tokio::time::sleep(wait.saturating_sub(ALARM_MIN)) => {}
            () = app.state.earlier_expiry.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

    use futures_util::StreamExt as _;

    use super::*;
    use crate::app::SandboxConfig;
    use crate::state::Check;
    use otp_core::Gateway;

    fn app(token: Option<&str>) -> Arc<App> {
        let config = SandboxConfig::default();
        Arc::new(App::new(match token {
            Some(token) => config.admin_token(token),
            None => config,
        }))
    }

    #[test]
    fn a_ticket_admits_until_it_expires_and_only_in_the_process_that_signed_it() {
        let (one, other) = (app(Some("0123456789abcdef")), app(Some("0123456789abcdef")));
        let now = SystemTime::now();
        let ticket = issue_ticket(&one, now).unwrap();
        assert!(ticket_admits(&one, &ticket, now));
        assert!(ticket_admits(&one, &ticket, now + TICKET_TTL - Duration::from_secs(1)));
        assert!(!ticket_admits(&one, &ticket, now + TICKET_TTL + Duration::from_secs(1)), "expired");
        assert!(!ticket_admits(&other, &ticket, now), "another process (a restart) has another key");
        let (expires, signature) = ticket.split_once('.').unwrap();
        let later = format!("{}.{signature}", expires.parse::<u64>().unwrap() + 3_600_000);
        assert!(!ticket_admits(&one, &later, now), "an expiry moved later breaks the signature");
        for forged in ["", ".", "1.", "x.y", &format!("{expires}."), &format!("{expires}.{}", &signature[1..])] {
            assert!(!ticket_admits(&one, forged, now), "{forged:?}");
        }
    }

    async fn next_event(stream: &mut (impl futures_util::Stream<Item = Result<Event, Infallible>> + Unpin)) -> String {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
        // Event has no accessors: its wire form, through the response body.
        format!("{event:?}")
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_says_it_is_alive_every_fifteen_seconds() {
        let mut body = stream(app(None)).into_body().into_data_stream();
        let mut next = async || String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(next().await, "event: snapshot\ndata: {\"otps\":[]}\nretry: 1000\n\n");
        let idle = tokio::time::Instant::now();
        assert_eq!(next().await, ": keep-alive\n\n");
        assert_eq!(idle.elapsed(), KEEP_ALIVE);
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_gets_the_inbox_again_and_never_holds_a_send_back() {
        let app = app(None);
        let mut stream = Box::pin(feed(app.clone()));
        assert!(next_event(&mut stream).await.contains("snapshot"));
        let started = Instant::now();
        let sends = crate::state::EVENTS_CAPACITY * 4;
        for i in 0..sends {
            let mobile = format!("7{i:09}");
            app.state.record(Gateway::ALL[0], &mobile, None, None, "123456".into(), Check::default()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the sends waited for the stream");
        let event = next_event(&mut stream).await;
        assert!(event.contains("snapshot") && event.contains(&format!("7{:09}", sends - 1)), "{event}");
        app.state.reset();
        assert!(next_event(&mut stream).await.contains("reset"));
        app.stopping.send_replace(true);
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap();
        assert!(ended.is_none(), "the stream ends when the sandbox stops");
    }
}
