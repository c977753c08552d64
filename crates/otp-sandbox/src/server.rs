//! The HTTP server: routes, the generic gateway handler, the inbox, start and stop.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::serve::ListenerExt as _;
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::credentials as default;
use crate::gateways::{AOPay, Emulated, IServeU, Paytm, PhonePe};
use crate::magic::{self, Magic};
use crate::state::{SentOtp, State};

/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Credentials the sandbox accepts, and how slow its slow magic number is.
#[derive(Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// PhonePe `merchantId`.
    pub phonepe_merchant_id: String,
    /// PhonePe salt key.
    pub phonepe_salt_key: String,
    /// PhonePe salt index.
    pub phonepe_salt_index: u32,
    /// Paytm client id.
    pub paytm_client_id: String,
    /// Paytm client secret.
    pub paytm_client_secret: String,
    /// iServeU `client_id`.
    pub iserveu_client_id: String,
    /// iServeU `client_secret`.
    pub iserveu_client_secret: String,
    /// iServeU `username`.
    pub iserveu_username: String,
    /// AOPay `RegistrationID`.
    pub aopay_registration_id: String,
    /// How long `9000000004` waits before answering (35 s: longer than the default timeout).
    pub slow_answer_delay: Duration,
    /// How long an AOPay OTP stays valid (90 s, as AOPay documents).
    pub aopay_otp_validity: Duration,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("phonepe_merchant_id", &self.phonepe_merchant_id)
            .field("paytm_client_id", &self.paytm_client_id)
            .field("iserveu_client_id", &self.iserveu_client_id)
            .field("aopay_registration_id", &self.aopay_registration_id)
            .field("slow_answer_delay", &self.slow_answer_delay)
            .field("aopay_otp_validity", &self.aopay_otp_validity)
            .finish_non_exhaustive()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            phonepe_merchant_id: default::PHONEPE_MERCHANT_ID.into(),
            phonepe_salt_key: default::PHONEPE_SALT_KEY.into(),
            phonepe_salt_index: default::PHONEPE_SALT_INDEX,
            paytm_client_id: default::PAYTM_CLIENT_ID.into(),
            paytm_client_secret: default::PAYTM_CLIENT_SECRET.into(),
            iserveu_client_id: default::ISERVEU_CLIENT_ID.into(),
            iserveu_client_secret: default::ISERVEU_CLIENT_SECRET.into(),
            iserveu_username: default::ISERVEU_USERNAME.into(),
            aopay_registration_id: default::AOPAY_REGISTRATION_ID.into(),
            slow_answer_delay: Duration::from_secs(35),
            aopay_otp_validity: crate::state::AOPAY_VALIDITY,
        }
    }
}

impl SandboxConfig {
    /// The slow magic number's delay (tests use a short one).
    pub fn slow_answer_delay(mut self, delay: Duration) -> Self {
        self.slow_answer_delay = delay;
        self
    }

    /// How long an AOPay OTP stays valid (tests use a short one).
    pub fn aopay_otp_validity(mut self, validity: Duration) -> Self {
        self.aopay_otp_validity = validity;
        self
    }
}

/// What every handler shares.
pub(crate) struct App {
    pub(crate) config: SandboxConfig,
    pub(crate) state: State,
    /// TCP connections accepted so far: lets tests and benchmarks see a client's pooling.
    connections: AtomicU64,
}

/// A running sandbox. Stops when dropped.
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
        let app = Arc::new(App { config, state: State::default(), connections: AtomicU64::new(0) });
        let counter = app.clone();
        let listener = listener.tap_io(move |_connection| {
            counter.connections.fetch_add(1, Ordering::Relaxed);
        });
        let router = router(app.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the sandbox server stopped");
            }
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Self { addr, app, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many TCP connections the sandbox has accepted since it started.
    pub fn connections_accepted(&self) -> u64 {
        self.app.connections.load(Ordering::Relaxed)
    }

    /// The OTPs sent to a number, newest first.
    pub fn otps(&self, mobile: &str) -> Vec<SentOtp> {
        self.app.state.otps(Some(mobile))
    }

    /// Serves until the server stops (it does not by itself): for `otp sandbox`.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v3/merchant/otp/send", gateway::<PhonePe>())
        .route("/v4/signin/otp/sv1/", gateway::<Paytm>())
        .route("/common/dmt-lite/unified/otp/send", gateway::<IServeU>())
        .route("/api/AOP/DMTV1/TransactionSendOtp", gateway::<AOPay>())
        .route("/__sandbox/otps", get(inbox).fallback(method_not_allowed))
        .route("/__sandbox/health", get(|| async { axum::Json(json!({"status": "ok"})) }).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

fn gateway<G: Emulated + 'static>() -> MethodRouter<Arc<App>> {
    post(handle::<G>).fallback(method_not_allowed)
}

async fn handle<G: Emulated>(
    AxumState(app): AxumState<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return G::malformed(rejection.status(), "the request body could not be read (over 64 KiB?)"),
    };
    let json_content = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_content {
        return G::malformed(StatusCode::BAD_REQUEST, "Content-Type must be application/json");
    }
    if G::mobile(&body).is_some_and(|mobile| magic::lookup(&mobile) == Some(Magic::Slow)) {
        tokio::time::sleep(app.config.slow_answer_delay).await;
    }
    respond::<G>(&app, &headers, query.as_deref(), &body)
}

/// The answer to a readable JSON request: a magic number's, or the gateway's after its checks.
fn respond<G: Emulated>(app: &App, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Response {
    if let Some(mobile) = G::mobile(body) {
        match magic::lookup(&mobile) {
            // The slow number answers normally once its delay has passed.
            Some(Magic::Slow) | None => {}
            Some(magic) => return G::magic(app, magic, &mobile),
        }
    }
    G::answer(app, headers, query, body)
}

/// Runs the request checks of the gateway at `path` on one request, without a server or the
/// slow number's delay, and returns the HTTP status: for fuzzing (feature `test-util`).
#[cfg(feature = "test-util")]
pub fn status_for_fuzzing(path: &str, query: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> Option<u16> {
    let app = App { config: SandboxConfig::default(), state: State::default(), connections: AtomicU64::new(0) };
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), axum::http::HeaderValue::from_bytes(value.as_bytes()))
        {
            map.append(name, value);
        }
    }
    let response = match path {
        "/v3/merchant/otp/send" => respond::<PhonePe>(&app, &map, query, body),
        "/v4/signin/otp/sv1/" => respond::<Paytm>(&app, &map, query, body),
        "/common/dmt-lite/unified/otp/send" => respond::<IServeU>(&app, &map, query, body),
        "/api/AOP/DMTV1/TransactionSendOtp" => respond::<AOPay>(&app, &map, query, body),
        _ => return None,
    };
    Some(response.status().as_u16())
}

#[derive(serde::Deserialize)]
struct InboxQuery {
    mobile: Option<String>,
}

async fn inbox(AxumState(app): AxumState<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let query: InboxQuery = match serde_urlencoded_lite(query.as_deref().unwrap_or("")) {
        Some(query) => query,
        None => return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "bad query"}))).into_response(),
    };
    axum::Json(json!({ "otps": app.state.otps(query.mobile.as_deref()) })).into_response()
}

/// `mobile=NNN` is the only parameter; anything fancier is refused rather than guessed.
fn serde_urlencoded_lite(query: &str) -> Option<InboxQuery> {
    let mut mobile = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        if key == "mobile" {
            mobile = Some(value.to_owned());
        }
    }
    Some(InboxQuery { mobile })
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not_found", "message": "no such sandbox route"})))
        .into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({"error": "method_not_allowed"}))).into_response()
}
