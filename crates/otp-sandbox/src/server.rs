//! The HTTP server: start and stop, the accept loop, the router (every gateway's routes from
//! [`crate::gateways`], then the sandbox's own), the inbox, reset, metrics and the admin token.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::{App, SandboxConfig, MAX_BODY_BYTES};
use crate::state::SentOtp;

/// A running sandbox. Stops when dropped ([`Sandbox::shutdown`] lets requests finish first).
pub struct Sandbox {
    addr: SocketAddr,
    app: Arc<App>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts on a free loopback port.
    pub async fn start(config: SandboxConfig) -> io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on this address.
    pub async fn bind(addr: SocketAddr, config: SandboxConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App::new(config));
        let shutting_down = app.stopping.subscribe();
        let task = tokio::spawn(serve(listener, app.clone(), shutting_down));
        tracing::info!(%addr, "sandbox listening");
        Ok(Self { addr, app, task })
    }

    /// Stops accepting, ends the inbox page's event streams, lets requests in flight finish
    /// (up to `grace`), then stops.
    pub async fn shutdown(mut self, grace: Duration) {
        self.app.stopping.send_replace(true);
        let _ = tokio::time::timeout(grace, &mut self.task).await;
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The inbox page's URL (`http://127.0.0.1:PORT/__sandbox/`): the OTPs as they arrive.
    pub fn inbox_url(&self) -> String {
        format!("{}/__sandbox/", self.base_url())
    }

    /// How many numbers and OTPs it keeps now (both bounded: see [`SandboxConfig::max_numbers`]).
    pub fn sizes(&self) -> (usize, usize) {
        self.app.state.sizes()
    }

    /// Forgets every OTP and counter.
    pub fn reset(&self) {
        self.app.state.reset();
    }

    /// How many TCP connections the sandbox has accepted since it started.
    pub fn connections_accepted(&self) -> u64 {
        self.app.connections.load(Ordering::Relaxed)
    }

    /// The OTPs sent to a number, newest first.
    pub fn otps(&self, mobile: &str) -> Vec<SentOtp> {
        self.app.state.otps(Some(mobile), crate::state::OTPS_PER_NUMBER)
    }

    /// Serves until the server stops (it does not by itself): for `otp sandbox`.
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The longest a client may take to send a request's headers, or to start the next request
/// on a kept-alive connection: a silent or trickling client is closed after it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection beyond `max_connections` has to send its request: a health check or a
/// real client does at once; an idle flood is closed within it.
pub const OVERFLOW_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts connections until told to stop. Each connection is served by hyper with a header
/// read timeout. Up to `max_connections` are served normally; as many again are served with a
/// one-second header timeout and no keep-alive (so a health check still gets through a flood of
/// idle clients, which are closed fast); beyond that a connection is closed as it arrives.
/// Expiries are announced to the inbox page alongside, for as long as it accepts.
async fn serve(listener: TcpListener, app: Arc<App>, mut shutting_down: tokio::sync::watch::Receiver<bool>) {
    let router = router(app.clone());
    let normal = Arc::new(tokio::sync::Semaphore::new(app.config.max_connections.max(1)));
    let overflow = Arc::new(tokio::sync::Semaphore::new(app.config.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    let expiries = crate::inbox::announce_expiries(app.clone());
    tokio::pin!(expiries);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutting_down.changed() => break,
            () = &mut expiries => continue,
        };
        while connections.try_join_next().is_some() {}
        let socket = match accepted {
            Ok((socket, _peer)) => socket,
            Err(error) => {
                // Out of file descriptors, most likely: back off briefly instead of spinning.
                tracing::warn!(%error, "the sandbox could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        app.connections.fetch_add(1, Ordering::Relaxed);
        let (permit, header_timeout, keep_alive) = match normal.clone().try_acquire_owned() {
            Ok(permit) => (permit, HEADER_READ_TIMEOUT, true),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(permit) => (permit, OVERFLOW_HEADER_READ_TIMEOUT, false),
                Err(_) => {
                    tracing::debug!("connection refused: twice max_connections are open");
                    drop(socket);
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut stop = shutting_down.clone();
        connections.spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(keep_alive)
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Requests in flight finish (their connections close after their answer).
    while connections.join_next().await.is_some() {}
}

fn router(app: Arc<App>) -> Router {
    crate::gateways::routes()
        .merge(crate::inbox::routes())
        .route("/__sandbox/otps", get(inbox).fallback(method_not_allowed))
        .route("/__sandbox/reset", post(reset).fallback(method_not_allowed))
        .route("/__sandbox/metrics", get(metrics_text).fallback(method_not_allowed))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), measure))
        .route("/__sandbox/health", get(health).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Sends one JSON request through the sandbox's real router, without a socket or the slow
/// number's delay, and returns the HTTP status: for property tests and fuzzing (feature
/// `test-util`).
#[cfg(feature = "test-util")]
pub async fn status_for_fuzzing(path: &str, query: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> Option<u16> {
    use tower::ServiceExt as _;
    let config = SandboxConfig::default().slow_answer_delay(std::time::Duration::ZERO);
    let uri = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut request = axum::http::Request::post(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_vec()))
        .ok()?;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), axum::http::HeaderValue::from_bytes(value.as_bytes()))
        {
            request.headers_mut().append(name, value);
        }
    }
    let response = router(Arc::new(App::new(config))).oneshot(request).await.ok()?;
    Some(response.status().as_u16())
}

/// The most OTPs one inbox query returns (and the default without `mobile`).
pub const INBOX_LIMIT: usize = 100;

#[derive(serde::Deserialize)]
struct InboxQuery {
    mobile: Option<String>,
    limit: Option<usize>,
}

/// With an admin token configured (a sandbox reachable from other machines), every
/// `/__sandbox/*` route needs `Authorization: Bearer <token>`.
pub(crate) fn admitted(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = &app.admin_digest else { return Ok(()) };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        // An empty token is no secret: it admits nobody, even where one was configured.
        .filter(|given| !given.is_empty());
    // Digests of fixed length, compared in constant time: the time an answer takes tells
    // nothing of the token's bytes or its length.
    let matches = given.is_some_and(|given| bool::from(Sha256::digest(given).as_slice().ct_eq(expected.as_slice())));
    if matches {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "unauthorized", "message": "this sandbox needs its admin token"})),
        )
            .into_response())
    }
}

async fn health(AxumState(app): AxumState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admitted(&app, &headers) {
        return refused;
    }
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn inbox(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Response {
    if let Err(refused) = admitted(&app, &headers) {
        return refused;
    }
    match query {
        // `?mobile` or `?mobile=` names no number: refused rather than read as "all".
        Ok(Query(InboxQuery { mobile: Some(mobile), .. })) if mobile.is_empty() => bad_query(),
        Ok(Query(query)) => {
            let limit = query.limit.unwrap_or(INBOX_LIMIT).min(INBOX_LIMIT);
            axum::Json(json!({ "otps": app.state.otps(query.mobile.as_deref(), limit) })).into_response()
        }
        Err(_) => bad_query(),
    }
}

fn bad_query() -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "bad query"}))).into_response()
}

/// Counts each request and its latency by route and status, in the sandbox's own recorder.
async fn measure(
    AxumState(app): AxumState<Arc<App>>,
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let (route, status) = (route.as_str().to_owned(), response.status().as_u16().to_string());
    metrics::with_local_recorder(&app.metrics, || {
        metrics::counter!("sandbox_requests_total", "route" => route.clone(), "status" => status).increment(1);
        metrics::histogram!("sandbox_request_duration_seconds", "route" => route)
            .record(started.elapsed().as_secs_f64());
    });
    response
}

/// The sandbox's figures in Prometheus' text format.
async fn metrics_text(AxumState(app): AxumState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admitted(&app, &headers) {
        return refused;
    }
    let numbers = app.state.sizes().0;
    let text = format!(
        "{}# TYPE sandbox_numbers_kept gauge\nsandbox_numbers_kept {numbers}\n\
         # TYPE sandbox_numbers_max gauge\nsandbox_numbers_max {}\n\
         # HELP sandbox_refused_full_total Sends to a new number refused (503): every number kept was live.\n\
         # TYPE sandbox_refused_full_total counter\nsandbox_refused_full_total {}\n\
         # TYPE sandbox_connections_accepted_total counter\nsandbox_connections_accepted_total {}\n",
        app.metrics.handle().render(),
        app.config.max_numbers.max(1),
        app.state.refused_full(),
        app.connections.load(Ordering::Relaxed),
    );
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

/// Forgets every OTP and counter: a test's clean start on a shared sandbox.
async fn reset(AxumState(app): AxumState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admitted(&app, &headers) {
        return refused;
    }
    app.state.reset();
    axum::Json(json!({"status": "reset"})).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not_found", "message": "no such sandbox route"})))
        .into_response()
}

pub(crate) async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({"error": "method_not_allowed"}))).into_response()
}
