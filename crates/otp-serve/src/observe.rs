//! What every request leaves behind: its request id (taken from `X-Request-Id` or made, and
//! echoed back), one log line, and its HTTP metrics labelled by route template.
//!
//! The log line carries the request id, method, route template, status, duration, and what
//! the handler noted — gateway, outcome or problem code, and at most the first 4 characters of
//! a verification id. Never a number, a code, a reference, a credential or an address: the
//! handlers hand this module only those closed-set values.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use otp::Gateway;

use crate::problem::Code;

/// `X-Request-Id`.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `X-Request-Id` taken from a caller; a longer or odd one is replaced.
const MAX_REQUEST_ID: usize = 64;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being answered (problems carry it), or `""` outside one.
pub(crate) fn current_request_id() -> String {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}

/// What a handler tells the log line about its request (response extensions).
#[derive(Debug, Clone, Default)]
pub(crate) struct Noted {
    pub(crate) gateway: Option<Gateway>,
    pub(crate) outcome: Option<&'static str>,
    pub(crate) code: Option<Code>,
    /// The first 4 characters of the verification's id: enough to correlate, not to look up.
    pub(crate) id_prefix: Option<String>,
}

impl Noted {
    pub(crate) fn verification(gateway: Gateway, id: &str) -> Self {
        Self { gateway: Some(gateway), id_prefix: Some(id.chars().take(4).collect()), ..Self::default() }
    }
}

/// Adds to the response's note (a problem's code joins what the handler knew).
pub(crate) fn note(response: &mut Response, noted: Noted) {
    let merged = match response.extensions_mut().remove::<Noted>() {
        Some(earlier) => Noted {
            gateway: noted.gateway.or(earlier.gateway),
            outcome: noted.outcome.or(earlier.outcome),
            code: noted.code.or(earlier.code),
            id_prefix: noted.id_prefix.or(earlier.id_prefix),
        },
        None => noted,
    };
    response.extensions_mut().insert(merged);
}

/// The route template a request matched, carried out to [`observe`] (which wraps the router
/// and so runs before the match is known).
#[derive(Debug, Clone)]
struct Route(String);

/// Inside the router: notes the matched template on the response.
pub(crate) async fn route_template(path: MatchedPath, request: Request, next: Next) -> Response {
    let template = path.as_str().to_owned();
    let mut response = next.run(request).await;
    response.extensions_mut().insert(Route(template));
    response
}

/// A caller's request id, if it is short and of plain characters; otherwise a new one.
fn request_id(request: &Request) -> String {
    let given = request.headers().get(&REQUEST_ID).and_then(|value| value.to_str().ok()).filter(|id| {
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    match given {
        Some(id) => id.to_owned(),
        None => new_request_id(),
    }
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 12];
    // A request id is a correlation handle, not a secret: should the OS's source fail, the
    // time is unique enough.
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Around the whole router: the request id (echoed back), the log line and the metrics.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().as_str().to_owned();
    let mut response = CURRENT.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let route = response.extensions_mut().remove::<Route>().map_or_else(|| "unmatched".to_owned(), |r| r.0);
    let noted = response.extensions_mut().remove::<Noted>().unwrap_or_default();
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let code = noted.code.map(Code::as_str);
    let gateway = noted.gateway.map(Gateway::as_str);
    metrics::histogram!(
        "http.server.request.duration",
        "http.request.method" => method.clone(),
        "http.route" => route.clone(),
        "http.response.status_code" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    if let Some(code) = code {
        metrics::counter!("otp.serve.problems", "code" => code, "http.route" => route.clone()).increment(1);
    }
    // The request id is echoed as given; in the log its digit runs are masked, so that a
    // caller who puts a mobile number in it does not put one in the log.
    tracing::info!(
        target: "otp_serve::request",
        request_id = %otp::mask_digit_runs(&id),
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        gateway,
        outcome = noted.outcome,
        code,
        id = noted.id_prefix.as_deref(),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_header(value: &str) -> Request {
        axum::http::Request::builder().header("x-request-id", value).body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_plain_request_id_is_kept_and_anything_else_is_replaced() {
        assert_eq!(request_id(&with_header("req-42.a:b_c")), "req-42.a:b_c");
        for odd in ["", "has space", "ü", &"x".repeat(65)] {
            let made = request_id(&with_header(odd));
            assert_eq!(made.len(), 24, "{odd:?}");
            assert_ne!(made, odd);
        }
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn a_note_keeps_what_was_known_and_adds_the_new() {
        let mut response = Response::new(axum::body::Body::empty());
        note(&mut response, Noted::verification(Gateway::ALL[0], "abcdefgh"));
        note(&mut response, Noted { code: Some(Code::NotFound), ..Noted::default() });
        let noted = response.extensions().get::<Noted>().unwrap();
        assert_eq!(noted.id_prefix.as_deref(), Some("abcd"));
        assert_eq!((noted.gateway, noted.code), (Some(Gateway::ALL[0]), Some(Code::NotFound)));
    }
}
