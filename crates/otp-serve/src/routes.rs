//! The routes: the verification API, health, metrics and the OpenAPI document.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State as AxumState};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use otp::verifier::{Check, Context, Started, State, Status, VerificationId};
use otp::{Gateway, OtpCode};

use crate::app::App;
use crate::auth::{Caller, Scope};
use crate::body::{CheckRequest, Health, ResendRequest, StatusName, VerificationBody};
use crate::gateways::{read_start, StartRequest};
use crate::observe::{self, Noted};
use crate::problem::{Code, MayHaveSent, Problem};

/// `Idempotency-Key`.
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed: true` on an answer replayed for an idempotency key.
static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The router of every route (`/metrics` only when it has no address of its own).
pub(crate) fn router(app: Arc<App>) -> Router {
    let not_allowed = |allow: &'static str| move || async move { Problem::method_not_allowed(allow) };
    let mut router = Router::new()
        .route("/v1/verifications", post(start).fallback(not_allowed("POST")))
        .route("/v1/verifications/{id}", get(status).fallback(not_allowed("GET")))
        .route("/v1/verifications/{id}/check", post(check).fallback(not_allowed("POST")))
        .route("/v1/verifications/{id}/resend", post(resend).fallback(not_allowed("POST")))
        .route("/v1/verifications/{id}/cancel", post(cancel).fallback(not_allowed("POST")))
        .route("/v1/events", get(crate::audit::events).fallback(not_allowed("GET")))
        .route("/livez", get(livez).fallback(not_allowed("GET")))
        .route("/readyz", get(readyz).fallback(not_allowed("GET")))
        .route("/openapi.json", get(openapi).fallback(not_allowed("GET")));
    if app.metrics_here {
        router = router.route("/metrics", get(metrics).fallback(not_allowed("GET")));
    }
    router.with_state(app)
}

/// The router of `/metrics` alone, for its own address.
pub(crate) fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics).fallback(|| async { Problem::method_not_allowed("GET") }))
        .with_state(app)
}

/// Unknown routes.
pub(crate) async fn no_route() -> Problem {
    Problem::new(Code::NotFound, "no such route")
}

/// A verification's id from the path. An id that is not UTF-8 (`%FF`) is no verification's:
/// it is read as `""`, which [`named`] answers `not_found` after the key's checks, as any
/// unknown id (axum's own rejection would be a plain-text 400 the document does not list).
pub(crate) struct VerificationPath(String);

impl<S: Send + Sync> FromRequestParts<S> for VerificationPath {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let id = Path::<String>::from_request_parts(parts, state).await.map(|Path(id)| id).unwrap_or_default();
        Ok(Self(id))
    }
}

/// Runs a send (a start or a resend, holding its slot) or a check in a task of its own: a client that
/// disconnects drops only the wait for the answer, never the send halfway — a code that may
/// have gone out still gets its session stored — and a shutdown waits for the slots.
async fn detached<T, F, Fut>(
    app: &Arc<App>,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    send: F,
) -> Result<T, Problem>
where
    F: FnOnce(Arc<App>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    use tracing::Instrument as _;
    let running = send(app.clone());
    // In the request's span still: the SDK's and the verifier's spans stay under its request id.
    tokio::spawn(
        async move {
            let _slot = slot;
            running.await
        }
        .instrument(tracing::Span::current()),
    )
    .await
    .map_err(|_| Problem::new(Code::Internal, "a send's task failed; the verification may have been sent"))
}

/// Runs a handler's body and notes what the log line may say of it.
fn answered(result: Result<Response, Problem>, noted: Noted) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    observe::note(&mut response, noted);
    response
}

/// A JSON body: the bytes (within 16 KiB) of a request that is JSON or says nothing of its type.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if kind != "application/json" && !kind.ends_with("+json") {
            return Err(Problem::malformed("the body must be JSON (Content-Type: application/json)"));
        }
    }
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::malformed(format!("the body is larger than {} bytes", crate::config::MAX_BODY_BYTES))
        } else {
            Problem::malformed("the body could not be read")
        }
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let message = otp::mask_digit_runs(&error.into_inner().to_string()).into_owned();
        Problem::malformed(if path == "." { message } else { format!("{path}: {message}") })
    })?;
    reader.end().map_err(|_| Problem::malformed("the body must be one JSON object"))?;
    Ok(value)
}

/// The guard's context: the end user's address, a caller key, and the idempotency key scoped
/// to the caller's tenant.
fn context(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    client_ip: &str,
    caller_key: Option<String>,
) -> Result<Context, Problem> {
    let invalid = |error: otp::Error| Problem::from_error(&error);
    let ip = client_ip.trim().parse().map_err(|_| {
        invalid(otp::Error::invalid_input(
            "client_ip must be an IPv4 or IPv6 address: the end user's, as the calling backend saw it",
        ))
    })?;
    // The tenant labels the verification's events (webhooks route by it).
    let mut context = Context::new(ip).tenant(caller.tenant.as_str()).map_err(invalid)?;
    if let Some(key) = caller_key {
        context = context.caller_key(key).map_err(invalid)?;
    }
    if let Some(key) = headers.get(&IDEMPOTENCY_KEY) {
        let key = key.to_str().map_err(|_| {
            invalid(otp::Error::invalid_input("an idempotency key must be 1 to 255 printable ASCII characters"))
        })?;
        // The caller's key by the verifier's own rules, then the tenant's scoped key in its place.
        Context::new(ip).idempotency_key(key).map_err(invalid)?;
        context = context.idempotency_key(app.tags.idempotency_key(&caller.tenant, key)).map_err(invalid)?;
    }
    Ok(context)
}

fn with_json(status: StatusCode, body: &VerificationBody) -> Response {
    (status, Json(body)).into_response()
}

/// A verification named by a caller's id, or `not_found`.
fn named(app: &App, caller: &Caller, id: &str, noted: &mut Noted) -> Result<(Gateway, VerificationId), Problem> {
    let (gateway, verification) = app.tags.read(&caller.tenant, id).ok_or_else(Problem::not_found)?;
    if !app.enabled.contains(&gateway) {
        return Err(Problem::not_found());
    }
    *noted = Noted::verification(gateway, id);
    Ok((gateway, verification))
}

/// Where a verification stands now, or `not_found`.
async fn current(app: &App, gateway: Gateway, id: &VerificationId) -> Result<Status, Problem> {
    match app.verifiers.status(gateway, id).await {
        Some(Ok(Some(status))) => Ok(status),
        Some(Ok(None)) | None => Err(Problem::not_found()),
        Some(Err(error)) => Err(Problem::from_error(&error)),
    }
}

/// A finished verification's answer to a check or a resend: its state, as a problem.
fn finished(state: State) -> Problem {
    let problem = match state {
        State::Approved => Problem::new(
            Code::AlreadyApproved,
            "this verification was approved already; its credential is not handed out again",
        ),
        State::Canceled => Problem::new(Code::Canceled, "this verification was cancelled: start a new one"),
        State::MaxAttemptsReached => {
            Problem::new(Code::MaxAttemptsReached, "every try of this verification was used: start a new one")
        }
        _ => Problem::new(Code::OtpExpired, "this verification's code expired: start a new one"),
    };
    problem.with_may_have_sent(MayHaveSent::No)
}

/// Start a verification: the guard admits the send, the gateway sends, the session is stored.
#[utoipa::path(
    post,
    path = "/v1/verifications",
    tag = "verifications",
    operation_id = "start",
    request_body(content = StartRequest, description = "The gateway, the number, the end user's address, and the gateway's own `params`."),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters: a retry with the same key and body answers the first call's answer (with `Idempotent-Replayed: true`), sending nothing; the same key with another body is `idempotency_key_reused`. Scoped to the caller's tenant; kept 24 h.")),
    responses((status = 201, description = "Sent (or a test number's): the verification.", body = VerificationBody,
        headers(("Location" = String, description = "`/v1/verifications/{id}`"), ("Idempotent-Replayed" = String, description = "`true` on a replayed answer")))),
    security(("api_key" = ["verifications:write"]))
)]
pub(crate) async fn start(
    AxumState(app): AxumState<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut noted = Noted::default();
    let result = start_inner(app, &caller, &headers, body, &mut noted).await;
    answered(result, noted)
}

async fn start_inner(
    app: Arc<App>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    noted: &mut Noted,
) -> Result<Response, Problem> {
    caller.require(Scope::VerificationsWrite)?;
    let body = json_body(headers, body)?;
    let start = read_start(&body, &app.enabled)?;
    noted.gateway = Some(start.gateway);
    let context = context(&app, caller, headers, &start.client_ip.to_string(), start.caller_key.clone())?;
    let slot = app.send_slot()?;
    let (gateway, verification) = (start.gateway, start.verification);
    let started =
        match detached(
            &app,
            Some(slot),
            |app| async move { app.verifiers.start(gateway, verification, &context).await },
        )
        .await?
        {
            Some(result) => result.map_err(|error| Problem::from_error(&error))?,
            None => return Err(Problem::malformed("gateway: not served")),
        };
    let id = app.tags.public_id(&caller.tenant, started.gateway, &started.id);
    *noted = Noted { outcome: Some(started.outcome.as_str()), ..Noted::verification(started.gateway, &id) };
    // A new session has every try, and this is its first send (a replay's too).
    let body = VerificationBody::started(
        id.clone(),
        &started,
        Some(&start.mobile),
        app.lifetime(started.gateway),
        app.cooldown,
        app.max_wrong_tries,
        1,
    );
    let mut response = with_json(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/verifications/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    replayed(&mut response, &started);
    Ok(response)
}

fn replayed(response: &mut Response, started: &Started) {
    if started.replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
    }
}

/// Where a verification stands.
#[utoipa::path(
    get,
    path = "/v1/verifications/{id}",
    tag = "verifications",
    operation_id = "status",
    params(("id" = String, Path, description = "The verification's id, as its start answered it.")),
    responses((status = 200, description = "The verification.", body = VerificationBody)),
    security(("api_key" = ["verifications:read"]))
)]
pub(crate) async fn status(
    AxumState(app): AxumState<Arc<App>>,
    caller: Caller,
    VerificationPath(id): VerificationPath,
) -> Response {
    let mut noted = Noted::default();
    let result = status_inner(&app, &caller, &id, &mut noted).await;
    answered(result, noted)
}

async fn status_inner(app: &App, caller: &Caller, id: &str, noted: &mut Noted) -> Result<Response, Problem> {
    caller.require(Scope::VerificationsRead)?;
    let (gateway, verification) = named(app, caller, id, noted)?;
    let status = current(app, gateway, &verification).await?;
    noted.outcome = Some(status.state.as_str());
    Ok(with_json(StatusCode::OK, &VerificationBody::status(id.to_owned(), &status)))
}

/// Check the code the customer typed.
#[utoipa::path(
    post,
    path = "/v1/verifications/{id}/check",
    tag = "verifications",
    operation_id = "check",
    params(("id" = String, Path, description = "The verification's id.")),
    request_body(content = CheckRequest),
    responses((status = 200, description = "Approved: the verification, with the gateway's credential to a key with `credentials:read` (else `credential_returned: true`).", body = VerificationBody)),
    security(("api_key" = ["verifications:write"]))
)]
pub(crate) async fn check(
    AxumState(app): AxumState<Arc<App>>,
    caller: Caller,
    VerificationPath(id): VerificationPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut noted = Noted::default();
    let result = check_inner(app, &caller, &id, &headers, body, &mut noted).await;
    answered(result, noted)
}

async fn check_inner(
    app: Arc<App>,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    noted: &mut Noted,
) -> Result<Response, Problem> {
    caller.require(Scope::VerificationsWrite)?;
    let body = json_body(headers, body)?;
    let request: CheckRequest = parse_json(&body)?;
    let (gateway, verification) = named(&app, caller, id, noted)?;
    let code = OtpCode::parse(request.code.trim()).map_err(|error| Problem::from_error(&error))?;
    // Read first: what an approved answer says besides the credential is the session's.
    let before = current(&app, gateway, &verification).await?;
    if before.state != State::Pending {
        return Err(finished(before.state));
    }
    // In its own task, as a send: a client gone mid-check leaves the gateway's judgement stored.
    let checking = verification.clone();
    let checked =
        match detached(&app, None, |app| async move { app.verifiers.check(gateway, &checking, code).await }).await? {
            Some(result) => result.map_err(|error| Problem::from_error(&error))?,
            None => return Err(Problem::not_found()),
        };
    noted.outcome = Some(checked.as_str());
    match checked {
        Check::Verified { mobile, credential } => {
            let mut body = VerificationBody::status(id.to_owned(), &before);
            body.status = StatusName::Approved;
            body.to = Some(mobile.masked());
            body.tries_left = 0;
            body.resend_available_at = None;
            match credential {
                Some(credential) if caller.may(Scope::CredentialsRead) => {
                    body.credential = Some(credential.expose_secret().to_owned());
                }
                Some(_) => body.credential_returned = Some(true),
                None => {}
            }
            Ok(with_json(StatusCode::OK, &body))
        }
        Check::WrongOtp { tries_left } => Err(Problem::wrong_otp(tries_left)),
        Check::Expired => Err(finished(State::Expired)),
        Check::AlreadyApproved => Err(finished(State::Approved)),
        Check::Canceled => Err(finished(State::Canceled)),
        Check::MaxAttemptsReached => Err(finished(State::MaxAttemptsReached)),
        Check::NotFound => Err(Problem::not_found()),
        // Check is non-exhaustive: an answer this service does not know yet is not an approval.
        _ => Err(finished(State::Expired)),
    }
}

/// Send a new code for a pending verification, after its cooldown (same id).
#[utoipa::path(
    post,
    path = "/v1/verifications/{id}/resend",
    tag = "verifications",
    operation_id = "resend",
    params(("id" = String, Path, description = "The verification's id."),
        ("Idempotency-Key" = Option<String>, Header, description = "As on start; scoped to this verification.")),
    request_body(content = ResendRequest),
    responses((status = 200, description = "Sent again: the verification.", body = VerificationBody,
        headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer")))),
    security(("api_key" = ["verifications:write"]))
)]
pub(crate) async fn resend(
    AxumState(app): AxumState<Arc<App>>,
    caller: Caller,
    VerificationPath(id): VerificationPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut noted = Noted::default();
    let result = resend_inner(app, &caller, &id, &headers, body, &mut noted).await;
    answered(result, noted)
}

async fn resend_inner(
    app: Arc<App>,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    noted: &mut Noted,
) -> Result<Response, Problem> {
    caller.require(Scope::VerificationsWrite)?;
    let body = json_body(headers, body)?;
    let request: ResendRequest = parse_json(&body)?;
    let (gateway, verification) = named(&app, caller, id, noted)?;
    let context = context(&app, caller, headers, &request.client_ip, request.caller_key)?;
    let before = current(&app, gateway, &verification).await?;
    let idempotent = headers.contains_key(&IDEMPOTENCY_KEY);
    // A finished one is answered at once, unless a key may replay an earlier answer.
    if before.state != State::Pending && !idempotent {
        return Err(finished(before.state));
    }
    let slot = app.send_slot()?;
    let resent = verification.clone();
    let started =
        match detached(&app, Some(slot), |app| async move { app.verifiers.resend(gateway, &resent, &context).await })
            .await?
        {
            Some(Ok(started)) => started,
            Some(Err(error))
                if error.kind() == otp::ErrorKind::OtpExpired && error.reached_provider() == otp::Reached::No =>
            {
                // Nothing sent: say why it is over as precisely as the state allows.
                return Err(match before.state {
                    State::Pending if before.tries_left == 0 => finished(State::MaxAttemptsReached),
                    State::Pending => finished(State::Expired),
                    state => finished(state),
                });
            }
            Some(Err(error)) => return Err(Problem::from_error(&error)),
            None => return Err(Problem::not_found()),
        };
    noted.outcome = Some(started.outcome.as_str());
    let sends = if started.replayed { before.sends } else { before.sends.saturating_add(1) };
    let body = VerificationBody::started(
        id.to_owned(),
        &started,
        before.mobile.as_ref(),
        app.lifetime(gateway),
        app.cooldown,
        before.tries_left,
        sends,
    );
    let mut response = with_json(StatusCode::OK, &body);
    replayed(&mut response, &started);
    Ok(response)
}

/// Cancel a verification (again: the same answer; an approved one stays approved).
#[utoipa::path(
    post,
    path = "/v1/verifications/{id}/cancel",
    tag = "verifications",
    operation_id = "cancel",
    params(("id" = String, Path, description = "The verification's id.")),
    responses((status = 200, description = "Cancelled now or before (or over in another way, which its `status` says).", body = VerificationBody)),
    security(("api_key" = ["verifications:write"]))
)]
pub(crate) async fn cancel(
    AxumState(app): AxumState<Arc<App>>,
    caller: Caller,
    VerificationPath(id): VerificationPath,
) -> Response {
    let mut noted = Noted::default();
    let result = cancel_inner(&app, &caller, &id, &mut noted).await;
    answered(result, noted)
}

async fn cancel_inner(app: &App, caller: &Caller, id: &str, noted: &mut Noted) -> Result<Response, Problem> {
    caller.require(Scope::VerificationsWrite)?;
    let (gateway, verification) = named(app, caller, id, noted)?;
    let state = match app.verifiers.cancel(gateway, &verification).await {
        Some(Ok(Some(state))) => state,
        Some(Ok(None)) | None => return Err(Problem::not_found()),
        Some(Err(error)) => return Err(Problem::from_error(&error)),
    };
    if state == State::Approved {
        return Err(finished(State::Approved));
    }
    noted.outcome = Some(state.as_str());
    let status = current(app, gateway, &verification).await?;
    Ok(with_json(StatusCode::OK, &VerificationBody::status(id.to_owned(), &status)))
}

/// The process is up.
#[utoipa::path(get, path = "/livez", tag = "operations", operation_id = "livez",
    responses((status = 200, description = "Up.", body = Health)))]
pub(crate) async fn livez() -> Json<Health> {
    Json(Health { status: "ok".to_owned() })
}

/// The configuration is loaded and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, description = "Ready.", body = Health)))]
pub(crate) async fn readyz(AxumState(app): AxumState<Arc<App>>) -> Response {
    match app.verifiers.probe().await {
        Ok(()) => Json(Health { status: "ready".to_owned() }).into_response(),
        Err(error) => {
            let detail = format!("the session store cannot be reached: {}", otp::mask_digit_runs(error.description()));
            Problem::store_unavailable(detail).into_response()
        }
    }
}

/// Prometheus' text format: the SDK's, the verifier's and the service's own metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text.", content_type = "text/plain; version=0.0.4", body = String)))]
pub(crate) async fn metrics(AxumState(app): AxumState<Arc<App>>) -> Response {
    match &app.metrics {
        Some(handle) => {
            handle.run_upkeep();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => Problem::new(Code::NotFound, "metrics go to the application's own recorder, not served here")
            .into_response(),
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document()).into_response()
}
