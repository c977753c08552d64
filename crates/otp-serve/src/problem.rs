//! Every refusal as `application/problem+json` (RFC 9457), one stable `code` each, and the one
//! mapping from the SDK's errors and the verifier's answers onto them.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use otp::{Error, ErrorKind, Reached};
use serde::Serialize;
use utoipa::ToSchema;

use crate::observe::{self, Noted};

/// A problem's stable code: the `code` member and the tail of its `type`
/// (`urn:otp:problem:<code>`). Clients branch on it; titles and details are for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// Not JSON, a wrong type, an unknown field or gateway, a body over 16 KiB.
    MalformedRequest,
    /// A field the SDK refuses (a number, a device id, an amount …), with the SDK's words.
    InvalidRequest,
    /// No API key, or one the service does not know.
    Unauthenticated,
    /// The key lacks the scope this route needs.
    Forbidden,
    /// No such verification for this tenant: unknown, another tenant's, or past retention.
    NotFound,
    /// The code did not match; `tries_left` more will be checked.
    WrongOtp,
    /// The code expired before the right one came: start a new verification.
    OtpExpired,
    /// Every try was used on wrong codes.
    MaxAttemptsReached,
    /// The verification was cancelled.
    Canceled,
    /// The verification was approved already; its credential is never handed out twice.
    AlreadyApproved,
    /// The `Idempotency-Key` was used before with another request.
    IdempotencyKeyReused,
    /// The first call with this `Idempotency-Key` is still running: retry after `Retry-After`.
    IdempotencyInProgress,
    /// The send guard (`rule`) or the gateway's own limit (`provider`) refused; nothing sent
    /// when the guard refused.
    RateLimited,
    /// The gateway refused this number (blocked or blacklisted).
    Blocked,
    /// The gateway declined the request for another reason.
    Rejected,
    /// The gateway refused the service's own credentials: an operator's problem.
    GatewayAuthentication,
    /// The gateway failed (5xx, its own "internal error" codes).
    ProviderUnavailable,
    /// The connection to the gateway failed or broke.
    Transport,
    /// The gateway answered something that cannot be understood.
    UnexpectedResponse,
    /// No complete answer from the gateway in time: the OTP may or may not have gone out.
    Timeout,
    /// The session store (Redis) cannot be reached: retry after `Retry-After`.
    StoreUnavailable,
    /// This replica already has as many sends in flight as it takes: nothing was counted or
    /// sent; retry after `Retry-After` (another replica may have room).
    Overloaded,
    /// The route exists, the method does not (HTTP's own answer; `Allow` lists the methods).
    MethodNotAllowed,
    /// Something that should never happen did (the OS's random source failed): a bug to report.
    Internal,
}

impl Code {
    /// Every code, in a stable order.
    pub const ALL: [Code; 24] = [
        Code::MalformedRequest,
        Code::InvalidRequest,
        Code::Unauthenticated,
        Code::Forbidden,
        Code::NotFound,
        Code::WrongOtp,
        Code::OtpExpired,
        Code::MaxAttemptsReached,
        Code::Canceled,
        Code::AlreadyApproved,
        Code::IdempotencyKeyReused,
        Code::IdempotencyInProgress,
        Code::RateLimited,
        Code::Blocked,
        Code::Rejected,
        Code::GatewayAuthentication,
        Code::ProviderUnavailable,
        Code::Transport,
        Code::UnexpectedResponse,
        Code::Timeout,
        Code::StoreUnavailable,
        Code::Overloaded,
        Code::MethodNotAllowed,
        Code::Internal,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::MalformedRequest => "malformed_request",
            Code::InvalidRequest => "invalid_request",
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::WrongOtp => "wrong_otp",
            Code::OtpExpired => "otp_expired",
            Code::MaxAttemptsReached => "max_attempts_reached",
            Code::Canceled => "canceled",
            Code::AlreadyApproved => "already_approved",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyInProgress => "idempotency_in_progress",
            Code::RateLimited => "rate_limited",
            Code::Blocked => "blocked",
            Code::Rejected => "rejected",
            Code::GatewayAuthentication => "gateway_authentication",
            Code::ProviderUnavailable => "provider_unavailable",
            Code::Transport => "transport",
            Code::UnexpectedResponse => "unexpected_response",
            Code::Timeout => "timeout",
            Code::StoreUnavailable => "store_unavailable",
            Code::Overloaded => "overloaded",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Internal => "internal",
        }
    }

    /// The HTTP status it is answered with.
    pub const fn status(self) -> u16 {
        match self {
            Code::MalformedRequest => 400,
            Code::Unauthenticated => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::AlreadyApproved | Code::IdempotencyKeyReused | Code::IdempotencyInProgress => 409,
            Code::OtpExpired | Code::MaxAttemptsReached | Code::Canceled => 410,
            Code::InvalidRequest | Code::WrongOtp | Code::Blocked | Code::Rejected => 422,
            Code::RateLimited => 429,
            Code::Internal => 500,
            Code::GatewayAuthentication | Code::ProviderUnavailable | Code::Transport | Code::UnexpectedResponse => 502,
            Code::StoreUnavailable | Code::Overloaded => 503,
            Code::Timeout => 504,
        }
    }

    /// A short, fixed title.
    pub const fn title(self) -> &'static str {
        match self {
            Code::MalformedRequest => "The request is malformed",
            Code::InvalidRequest => "A field was refused",
            Code::Unauthenticated => "An API key is needed",
            Code::Forbidden => "The API key lacks the scope",
            Code::NotFound => "No such verification",
            Code::WrongOtp => "The code did not match",
            Code::OtpExpired => "The code expired",
            Code::MaxAttemptsReached => "Every try was used",
            Code::Canceled => "The verification was cancelled",
            Code::AlreadyApproved => "The verification was approved already",
            Code::IdempotencyKeyReused => "The idempotency key was used for another request",
            Code::IdempotencyInProgress => "The first call with this idempotency key is still running",
            Code::RateLimited => "Too many OTPs",
            Code::Blocked => "The gateway blocked this number",
            Code::Rejected => "The gateway declined",
            Code::GatewayAuthentication => "The gateway refused the service's credentials",
            Code::ProviderUnavailable => "The gateway is unavailable",
            Code::Transport => "The connection to the gateway failed",
            Code::UnexpectedResponse => "The gateway's answer could not be understood",
            Code::Timeout => "The gateway did not answer in time",
            Code::StoreUnavailable => "The session store cannot be reached",
            Code::Overloaded => "The service is at capacity",
            Code::MethodNotAllowed => "Method not allowed",
            Code::Internal => "Internal error",
        }
    }

    /// `urn:otp:problem:<code>`.
    pub fn type_uri(self) -> String {
        format!("urn:otp:problem:{}", self.as_str())
    }
}

/// Whether an OTP may have gone out before the failure: the SDK's `Reached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MayHaveSent {
    /// Nothing left the service: trying again sends at most one OTP.
    No,
    /// The request may have been written: an OTP may have gone out.
    Maybe,
    /// The gateway answered: an OTP went out, or the gateway said why not.
    Yes,
}

impl From<Reached> for MayHaveSent {
    fn from(reached: Reached) -> Self {
        match reached {
            Reached::No => MayHaveSent::No,
            Reached::Yes => MayHaveSent::Yes,
            // Reached is non-exhaustive: anything new is as uncertain as "maybe".
            _ => MayHaveSent::Maybe,
        }
    }
}

/// What the gateway answered, when it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProviderBody {
    /// The gateway's own code, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The gateway's message (digit runs of 10 or more masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status of the gateway's answer.
    pub http_status: u16,
}

/// An RFC 9457 problem, as every refusal of the service is answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// `urn:otp:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:otp:problem:rate_limited")]
    pub type_uri: String,
    /// A short, fixed summary of the code.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened here, in the SDK's words.
    pub detail: String,
    /// The stable code.
    #[schema(example = "rate_limited")]
    pub code: String,
    /// The request's id (from `X-Request-Id`, or made by the service): quote it to an operator.
    pub request_id: String,
    /// `rate_limited` by the send guard: the rule that refused (`cooldown`,
    /// `number_short_window`, `number_long_window`, `client_ip`, `caller_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// When to try again, in seconds (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// `wrong_otp`: how many more codes will be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u32>,
    /// Whether an OTP may have gone out before the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub may_have_sent: Option<MayHaveSent>,
    /// What the gateway answered, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderBody>,
}

/// A refusal on its way to becoming a problem response (boxed: it travels in `Result`s).
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) code: Code,
    more: Box<More>,
}

#[derive(Debug, Clone, Default)]
struct More {
    detail: String,
    rule: Option<String>,
    retry_after: Option<Duration>,
    tries_left: Option<u32>,
    may_have_sent: Option<MayHaveSent>,
    provider: Option<ProviderBody>,
    allow: Option<&'static str>,
}

/// How long a client should wait when nothing more precise is known: the store's reconnect
/// and an idempotent call in flight are a second away; a gateway's limit without its own
/// `Retry-After` is a minute.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long an overloaded replica asks a send to wait.
const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);
const PROVIDER_LIMIT_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Problem {
    pub(crate) fn new(code: Code, detail: impl Into<String>) -> Self {
        Self { code, more: Box::new(More { detail: detail.into(), ..More::default() }) }
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::new(Code::MalformedRequest, detail)
    }

    pub(crate) fn not_found() -> Self {
        Self::new(Code::NotFound, "no such verification (never started, another tenant's, or past its retention)")
    }

    pub(crate) fn wrong_otp(tries_left: u32) -> Self {
        let detail = match tries_left {
            0 => "the code did not match, and that was the last try: start a new verification".to_owned(),
            n => format!("the code did not match; {n} more will be checked"),
        };
        let mut problem = Self::new(Code::WrongOtp, detail);
        problem.more.tries_left = Some(tries_left);
        problem
    }

    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        let mut problem = Self::new(Code::MethodNotAllowed, format!("this route answers {allow}"));
        problem.more.allow = Some(allow);
        problem
    }

    pub(crate) fn store_unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(Code::StoreUnavailable, detail);
        problem.more.retry_after = Some(STORE_RETRY_AFTER);
        problem
    }

    /// A send refused before anything was counted or sent: this replica is at its cap.
    pub(crate) fn overloaded(in_flight: usize) -> Self {
        let detail = format!("{in_flight} sends are in flight here, as many as this replica takes: nothing was sent");
        let mut problem = Self::new(Code::Overloaded, detail).with_may_have_sent(MayHaveSent::No);
        problem.more.retry_after = Some(OVERLOADED_RETRY_AFTER);
        problem
    }

    pub(crate) fn with_may_have_sent(mut self, may_have_sent: MayHaveSent) -> Self {
        self.more.may_have_sent = Some(may_have_sent);
        self
    }

    /// The problem an SDK or verifier error is answered as.
    pub(crate) fn from_error(error: &Error) -> Self {
        let code = code_of(error);
        let mut problem = Self::new(code, otp::mask_digit_runs(error.description()).into_owned());
        problem.more.may_have_sent = Some(error.reached_provider().into());
        problem.more.provider = error.provider_response().map(|response| ProviderBody {
            code: response.code.clone(),
            message: response.message.as_deref().map(|m| otp::mask_digit_runs(m).into_owned()),
            http_status: response.http_status,
        });
        match code {
            Code::RateLimited => {
                problem.more.rule = error.guard_rule().map(str::to_owned);
                problem.more.retry_after = Some(error.retry_after().unwrap_or(PROVIDER_LIMIT_RETRY_AFTER));
            }
            Code::IdempotencyInProgress => {
                problem.more.retry_after = Some(error.retry_after().unwrap_or(STORE_RETRY_AFTER));
            }
            Code::StoreUnavailable => problem.more.retry_after = Some(STORE_RETRY_AFTER),
            _ => {}
        }
        problem
    }

    pub(crate) fn body(&self, request_id: String) -> ProblemBody {
        ProblemBody {
            type_uri: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.code.status(),
            detail: self.more.detail.clone(),
            code: self.code.as_str().to_owned(),
            request_id,
            rule: self.more.rule.clone(),
            retry_after_s: self.more.retry_after.map(retry_after_secs),
            tries_left: self.more.tries_left,
            may_have_sent: self.more.may_have_sent,
            provider: self.more.provider.clone(),
        }
    }
}

/// Whole seconds, rounded up and at least 1: `Retry-After: 0` would invite a tight loop.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The code of an SDK or verifier error.
fn code_of(error: &Error) -> Code {
    match error.kind() {
        // A configuration error at request time is the service's own fault (its random
        // source failed, a session could not be sealed): never the caller's.
        ErrorKind::InvalidRequest if error.is_configuration() => Code::Internal,
        // The verifier's words for a reused key (docs/verifier.md): it has no kind of its own.
        ErrorKind::InvalidRequest if error.description().contains("idempotency key reused") => {
            Code::IdempotencyKeyReused
        }
        ErrorKind::InvalidRequest => Code::InvalidRequest,
        ErrorKind::Authentication => Code::GatewayAuthentication,
        ErrorKind::RateLimited if error.guard_rule() == Some("idempotency_in_progress") => Code::IdempotencyInProgress,
        ErrorKind::RateLimited => Code::RateLimited,
        ErrorKind::Blocked => Code::Blocked,
        ErrorKind::Rejected => Code::Rejected,
        ErrorKind::ProviderUnavailable => Code::ProviderUnavailable,
        ErrorKind::Timeout => Code::Timeout,
        ErrorKind::Transport if is_store_failure(error) => Code::StoreUnavailable,
        ErrorKind::Transport => Code::Transport,
        ErrorKind::UnexpectedResponse => Code::UnexpectedResponse,
        ErrorKind::WrongOtp => Code::WrongOtp,
        ErrorKind::OtpExpired => Code::OtpExpired,
        // ErrorKind is non-exhaustive: a kind this service does not know yet is a gateway
        // answer it cannot interpret.
        _ => Code::UnexpectedResponse,
    }
}

/// Whether a `transport` error is the session store's rather than a gateway's. The SDK has no
/// kind of its own for it: every failure of a gateway's connection carries the HTTP client's
/// error as its source, and no failure of the store does (a Redis error, or none at all).
fn is_store_failure(error: &Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.downcast_ref::<otp_core::reqwest::Error>().is_some() {
            return false;
        }
        source = cause.source();
    }
    true
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let request_id = observe::current_request_id();
        let body = self.body(request_id);
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = body.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == Code::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"otp\""));
        }
        if let Some(allow) = self.more.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response.extensions_mut().insert(Noted { code: Some(self.code), ..Noted::default() });
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_code_has_its_own_name_and_a_status_of_its_family() {
        let names: std::collections::BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for code in Code::ALL {
            assert!((400..600).contains(&code.status()), "{}", code.as_str());
            assert_eq!(code.type_uri(), format!("urn:otp:problem:{}", code.as_str()));
        }
    }

    #[test]
    fn the_verifier_s_answers_map_onto_their_codes() {
        let guard = Error::guard_refused("cooldown", Duration::from_millis(1500));
        let problem = Problem::from_error(&guard);
        assert_eq!((problem.code, problem.more.rule.as_deref()), (Code::RateLimited, Some("cooldown")));
        assert_eq!(problem.body(String::new()).retry_after_s, Some(2), "rounded up");
        assert_eq!(problem.more.may_have_sent, Some(MayHaveSent::No));
        let in_flight = Error::guard_refused("idempotency_in_progress", Duration::from_secs(1));
        assert_eq!(Problem::from_error(&in_flight).code, Code::IdempotencyInProgress);
        let reused = Error::invalid_input("idempotency key reused with another request: a new request needs a new key");
        assert_eq!(Problem::from_error(&reused).code, Code::IdempotencyKeyReused);
        let store = Error::store_unavailable(Reached::No, "the verification store (Redis) failed");
        let problem = Problem::from_error(&store);
        assert_eq!((problem.code, problem.more.retry_after), (Code::StoreUnavailable, Some(STORE_RETRY_AFTER)));
        let sent_unstored = Error::store_unavailable(Reached::Yes, "sent but not stored")
            .with_source(Error::store_unavailable(Reached::No, "redis"));
        let problem = Problem::from_error(&sent_unstored);
        assert_eq!((problem.code, problem.more.may_have_sent), (Code::StoreUnavailable, Some(MayHaveSent::Yes)));
        assert_eq!(Problem::from_error(&Error::transport("broke")).code, Code::StoreUnavailable, "no HTTP source");
        assert_eq!(Problem::from_error(&Error::configuration("random source")).code, Code::Internal);
        assert_eq!(Problem::from_error(&Error::timeout(Duration::from_secs(1))).code, Code::Timeout);
        assert_eq!(Problem::from_error(&Error::unexpected("html")).code, Code::UnexpectedResponse);
        assert_eq!(Problem::from_error(&Error::session_expired(Reached::No, "over")).code, Code::OtpExpired);
    }

    #[tokio::test]
    async fn a_gateway_s_connection_failure_is_transport_not_the_store() {
        // A real connect failure of the HTTP client: its error is the source.
        let refused = otp_core::reqwest::Client::new().get("http://127.0.0.1:9/").send().await.unwrap_err();
        let error = Error::connect(refused);
        let problem = Problem::from_error(&error);
        assert_eq!((problem.code, problem.more.may_have_sent), (Code::Transport, Some(MayHaveSent::No)));
    }

    #[test]
    fn a_response_carries_its_headers() {
        let response = Problem::from_error(&Error::guard_refused("cooldown", Duration::from_secs(7))).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let response = Problem::new(Code::Unauthenticated, "no key").into_response();
        assert!(response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
        let response = Problem::store_unavailable("down").into_response();
        assert_eq!((response.status().as_u16(), response.headers()[header::RETRY_AFTER].to_str().unwrap()), (503, "1"));
    }
}
