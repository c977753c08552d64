//! What every emulated gateway's answers share: the reply shapes that are not a gateway's own,
//! the readers of a request's fields, and the send's steps (admit, issue, record), each ending
//! in the gateway's own answer through its [`Profile`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::app::{random_text, App};
use crate::gateways::Profile;
use crate::magic::{Magic, BAD_GATEWAY_HTML};
use crate::state::{Admission, Check, Full};

/// A gateway's answer, or the refusal that ends its request early: both are the answer given.
pub(crate) type Answer = Result<Response, Response>;

pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

pub(crate) fn bad_gateway() -> Response {
    (StatusCode::BAD_GATEWAY, [("content-type", "text/html")], BAD_GATEWAY_HTML).into_response()
}

/// A bare 500, not in the gateway's JSON shape: what iServeU and AOPay answer when they fail.
pub(crate) fn internal_error_text() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], "Internal Server Error").into_response()
}

/// For gateways that refuse a bad request with HTTP 200 and a code: a 400 becomes a 200, a
/// status that says more (413, a body that could not be read) stays.
pub(crate) fn bad_request_as_ok(status: StatusCode) -> StatusCode {
    if status == StatusCode::BAD_REQUEST {
        StatusCode::OK
    } else {
        status
    }
}

/// The answer when the OS gives no randomness: nothing is issued.
pub(crate) fn unavailable() -> Response {
    reply(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "no randomness available to issue an OTP"}))
}

/// A 10-digit Indian number exactly as the wire must carry it.
pub(crate) fn is_wire_mobile(value: &str) -> bool {
    value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()) && matches!(value.as_bytes()[0], b'6'..=b'9')
}

/// A field's text, trimmed; `None` when absent, empty or not a string.
pub(crate) fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty())
}

/// A field's text as sent (for a magic number, read leniently).
pub(crate) fn string_field(body: &Map<String, Value>, name: &str) -> Option<String> {
    body.get(name)?.as_str().map(str::to_owned)
}

/// A fresh reference shaped like a UUID, from the OS's generator.
pub(crate) fn uuid() -> Option<String> {
    let hex = random_text(30, b"0123456789abcdef")?;
    Some(format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[12..15], &hex[15..18], &hex[18..]))
}

/// A fresh credential for a verified code (PhonePe's userAuthToken, Paytm's tokens).
pub(crate) fn credential() -> Result<String, Response> {
    random_text(32, b"0123456789abcdef").ok_or_else(unavailable)
}

/// A fresh value from the OS's generator, or the answer that there is none.
pub(crate) fn fresh(value: Option<String>) -> Result<String, Response> {
    value.ok_or_else(unavailable)
}

/// Counts a send to `mobile`. Over the number's limit the gateway answers as for its limit's
/// magic number (`9000000001`); a new number with no place left gets the 503 of [`full`].
pub(crate) fn admit<G: Profile>(app: &App, mobile: &str) -> Result<(), Response> {
    match app.state.admit(G::GATEWAY, mobile) {
        Admission::Admitted => Ok(()),
        Admission::OverLimit => Err(G::magic(app, Magic::OtpLimit, mobile)),
        Admission::Full(refused) => Err(full::<G>(refused)),
    }
}

/// Issues an OTP to `mobile` and records it with `reference`, valid for the gateway's
/// validity. The refusal is the answer to give: no randomness, or no place for a new number.
pub(crate) fn record<G: Profile>(
    app: &App,
    mobile: &str,
    reference: Option<String>,
    check: Check,
) -> Result<(), Response> {
    let otp = fresh(app.issue_otp())?;
    let validity = Some(G::validity(&app.config));
    app.state.record(G::GATEWAY, mobile, reference, validity, otp, check).map(drop).map_err(full::<G>)
}

/// The answer to a send for a new number when every place is held by a live number: HTTP 503
/// with `Retry-After`, the body in the gateway's shape ([`Profile::full`]) but with none of its
/// documented codes, so that each client's rule (a documented code decides, else the HTTP
/// status) reads it as provider_unavailable, retryable. Every shape also carries
/// `"error": "sandbox_full"` and the [`full_message`] as `message`, for scripts.
pub(crate) fn full<G: Profile>(refused: Full) -> Response {
    let body = G::full(&full_message(refused));
    let headers = [("content-type", "application/json".to_owned()), ("retry-after", retry_after(refused).to_string())];
    (StatusCode::SERVICE_UNAVAILABLE, headers, body.to_string()).into_response()
}

/// Whole seconds until the first place may free, rounded up (at least 1).
fn retry_after(refused: Full) -> u64 {
    (refused.retry_after.as_secs() + u64::from(refused.retry_after.subsec_nanos() > 0)).max(1)
}

/// What a refused send is told: why, and what to do.
fn full_message(refused: Full) -> String {
    format!(
        "the sandbox is full of live numbers: each of the {} numbers it keeps has an unexpired OTP \
         or a send inside the limit window, and a live number is never evicted, so no new number \
         is admitted now (numbers already kept still are); try again in {} s, when the first may \
         free, or restart the sandbox with a larger --max-numbers",
        refused.max_numbers,
        retry_after(refused)
    )
}
