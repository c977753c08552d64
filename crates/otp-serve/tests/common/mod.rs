//! What the service's tests share: a sandbox behind a switchable proxy (to make any gateway
//! fail on demand), a service over real TCP with one client per gateway pointed at the proxy,
//! API keys of two tenants, each gateway's fixture (`tests/fixtures/<gateway>.json`, read by
//! iterating `Gateway::ALL`: a gateway without one fails every test), and a record of the
//! problem codes each route answered.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test file uses what it needs; a failed unwrap is a failed test.

pub mod python;
pub mod receiver;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{GuardRules, Limit};
use otp::{ClientOptions, Environment, Gateway, HttpOptions, MobileNumber, OtpCode, SecretString};
use otp_serve::{ApiKey, NewApiKey, Scope, ServeConfig, Server, StoreSecret};
use serde_json::{json, Value};

/// The test number every service here knows, and its fixed code.
pub const TEST_NUMBER: &str = "9999999999";
pub const TEST_CODE: &str = "123456";
/// The HTTP client timeout of the services' gateway clients: a `Delay` past it is a timeout.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_millis(1500);

/// A fresh valid number for each call (never a sandbox magic number, never the test number).
pub fn number() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = u64::from(std::process::id() % 1000) * 1_000_000;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("8{:09}", base + n)
}

/// A gateway's fixture.
pub fn fixture(gateway: Gateway) -> Value {
    let path = format!("{}/tests/fixtures/{}.json", env!("CARGO_MANIFEST_DIR"), gateway.as_str());
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}: every gateway needs its fixture"));
    serde_json::from_str(&text).unwrap()
}

/// A gateway's valid start body to `to` (its fixture's params and customer name).
pub fn start_body(gateway: Gateway, to: &str) -> Value {
    let fixture = fixture(gateway);
    let mut body =
        json!({ "gateway": gateway.as_str(), "to": to, "client_ip": "203.0.113.7", "params": fixture["params"] });
    if let Some(name) = fixture.get("customer_name") {
        body["customer_name"] = name.clone();
    }
    body
}

/// The number a gateway's OTP can be checked for: its fixture's, or a fresh one.
pub fn checkable_number(gateway: Gateway) -> String {
    fixture(gateway).get("checkable_mobile").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(number)
}

/// What the proxy in front of the sandbox does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards to the sandbox.
    Pass,
    /// Forwards after a wait.
    Delay(Duration),
    /// Answers this status with `{}`.
    Status(u16),
    /// Answers 200 with an HTML page.
    Html,
    /// Answers 200 and breaks the connection in the middle of the body.
    Broken,
}

/// A proxy in front of the sandbox: every gateway's client goes through it.
pub struct Proxy {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let client = reqwest::Client::new();
        let shared = mode.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let (mode, client, upstream) = (*shared.lock().unwrap(), client.clone(), upstream.clone());
            async move { answer(mode, client, &upstream, request).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

async fn answer(mode: Mode, client: reqwest::Client, upstream: &str, request: Request) -> Response {
    match mode {
        Mode::Status(status) => {
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap()
        }
        Mode::Html => {
            return Response::builder()
                .status(200)
                .header("content-type", "text/html")
                .body(Body::from("<html><body>maintenance</body></html>"))
                .unwrap()
        }
        Mode::Broken => {
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::new(Cut { sent: false }))
                .unwrap();
        }
        Mode::Delay(wait) => tokio::time::sleep(wait).await,
        Mode::Pass => {}
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forward = client.request(parts.method.clone(), format!("{upstream}{path}")).body(body.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await.unwrap();
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(answer.bytes().await.unwrap())).unwrap()
}

/// A body that sends its first bytes and then breaks: the connection is cut mid-answer.
struct Cut {
    sent: bool,
}

impl axum::body::HttpBody for Cut {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.sent {
            return std::task::Poll::Ready(Some(Err(std::io::Error::other("cut"))));
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(axum::body::Bytes::from_static(b"{\"code\":")))))
    }
}

/// The services' API keys (tenant `alpha` but `other`, which is `beta`'s).
pub struct Keys {
    /// verifications:write and :read.
    pub writer: String,
    /// …and credentials:read.
    pub credentials: String,
    /// verifications:read only.
    pub reader: String,
    /// verifications:write only.
    pub write_only: String,
    /// Another tenant's key with every scope.
    pub other: String,
    api_keys: Vec<ApiKey>,
}

impl Keys {
    pub fn new() -> Self {
        let mut api_keys = Vec::new();
        let mut key = |name: &str, tenant: &str, scopes: &[Scope]| {
            let new = NewApiKey::generate().unwrap();
            api_keys.push(ApiKey::from_digest(name, tenant, &new.sha256, scopes).unwrap());
            new.key.expose_secret().to_owned()
        };
        let writer = key("writer", "alpha", &[Scope::VerificationsWrite, Scope::VerificationsRead]);
        let credentials = key("credentials", "alpha", &Scope::ALL);
        let reader = key("reader", "alpha", &[Scope::VerificationsRead]);
        let write_only = key("write-only", "alpha", &[Scope::VerificationsWrite]);
        let other = key("other", "beta", &Scope::ALL);
        Self { writer, credentials, reader, write_only, other, api_keys }
    }
}

/// The guard of the tests: no cooldown (a test of it sets one), generous number and address
/// limits, and one send per caller key an hour (the tests' way to make the guard refuse).
pub fn rules() -> GuardRules {
    let hour = Duration::from_secs(3600);
    GuardRules::default()
        .cooldown(Duration::ZERO)
        .number_short_window(Limit::new(1000, hour))
        .number_long_window(Limit::new(1000, 24 * hour))
        .per_client_ip(Limit::new(10_000, hour))
        .per_caller_key(Limit::new(1, hour))
}

/// Where a harness keeps its verifications.
#[derive(Clone)]
pub enum Store {
    Memory,
    Redis(String),
}

/// A sandbox, the proxy before it, and a service whose every gateway goes through the proxy.
pub struct Harness {
    pub sandbox: Sandbox,
    pub proxy: Proxy,
    pub server: Server,
    pub keys: Keys,
    pub api: Api,
}

/// The store key of every Redis harness: replicas share it.
pub fn store_key() -> StoreSecret {
    StoreSecret::from_bytes(&[42u8; 32]).unwrap()
}

impl Harness {
    pub async fn start(store: Store) -> Self {
        Self::start_with(store, |config| config).await
    }

    pub async fn start_with(store: Store, adjust: impl FnOnce(ServeConfig) -> ServeConfig) -> Self {
        Self::start_with_sandbox(store, |sandbox| sandbox, adjust).await
    }

    /// …with the sandbox's config adjusted too (a fixed code, say).
    pub async fn start_with_sandbox(
        store: Store,
        adjust_sandbox: impl FnOnce(SandboxConfig) -> SandboxConfig,
        adjust: impl FnOnce(ServeConfig) -> ServeConfig,
    ) -> Self {
        let sandbox_config = adjust_sandbox(SandboxConfig::default().slow_answer_delay(Duration::from_secs(3)));
        let sandbox = Sandbox::start(sandbox_config).await.unwrap();
        let proxy = Proxy::start(sandbox.base_url()).await;
        let keys = Keys::new();
        let server = Server::start(adjust(config(&proxy.url, &keys, &store))).await.unwrap();
        let api = Api::new(server.base_url());
        Self { sandbox, proxy, server, keys, api }
    }

    /// The last code the sandbox issued to `mobile`.
    pub fn code(&self, mobile: &str) -> String {
        self.sandbox
            .otps(mobile)
            .first()
            .map(|otp| otp.otp.clone())
            .unwrap_or_else(|| panic!("no OTP sent to {mobile}"))
    }

    /// A code other than `mobile`'s last.
    pub fn wrong_code(&self, mobile: &str) -> String {
        if self.code(mobile) == "111111" { "222222" } else { "111111" }.to_owned()
    }
}

/// A service config for `keys` whose gateways are the sandbox's clients pointed at `url`.
pub fn config(url: &str, keys: &Keys, store: &Store) -> ServeConfig {
    let http = HttpOptions::default().timeout(GATEWAY_TIMEOUT).connect_timeout(Duration::from_secs(1));
    let options = ClientOptions::new().environment(Environment::Custom(url.to_owned())).http(http);
    let mut config = ServeConfig::new().listen("127.0.0.1:0".parse().unwrap()).guard_rules(rules());
    for gateway in Gateway::ALL {
        config = config.gateway(otp::sandbox::client(gateway, options.clone()).unwrap());
    }
    for key in &keys.api_keys {
        config = config.api_key(key.clone());
    }
    config = config.test_number(MobileNumber::parse(TEST_NUMBER).unwrap(), OtpCode::parse(TEST_CODE).unwrap());
    match store {
        Store::Memory => config,
        Store::Redis(url) => config.redis_store(url.clone(), store_key()),
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", self.text)).to_owned()
    }
}

/// The service's API over real TCP.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A request's body.
pub enum Payload {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

impl Api {
    pub fn new(base: String) -> Self {
        Self { base, http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap() }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        payload: Payload,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = match payload {
            Payload::None => request,
            Payload::Json(value) => request.header("content-type", "application/json").body(value.to_string()),
            Payload::Raw(kind, bytes) => request.header("content-type", kind).body(bytes),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, headers, text, body }
    }

    pub async fn start(&self, key: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        self.call("POST", "/v1/verifications", Some(key), Payload::Json(body), headers).await
    }

    pub async fn status(&self, key: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/verifications/{id}"), Some(key), Payload::None, &[]).await
    }

    pub async fn check(&self, key: &str, id: &str, code: &str) -> Answer {
        let body = Payload::Json(json!({ "code": code }));
        self.call("POST", &format!("/v1/verifications/{id}/check"), Some(key), body, &[]).await
    }

    pub async fn resend(&self, key: &str, id: &str, headers: &[(&str, &str)]) -> Answer {
        let body = Payload::Json(json!({ "client_ip": "203.0.113.7" }));
        self.call("POST", &format!("/v1/verifications/{id}/resend"), Some(key), body, headers).await
    }

    pub async fn cancel(&self, key: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/verifications/{id}/cancel"), Some(key), Payload::None, &[]).await
    }
}

/// The problem codes each route answered: what the walk must cover.
#[derive(Default)]
pub struct Walk {
    seen: Mutex<BTreeSet<(String, String, String)>>,
}

impl Walk {
    /// Asserts `answer` is the problem `code` (with the status the document gives it, and
    /// RFC 9457's members), and records it for `method route`.
    pub fn problem(&self, answer: &Answer, method: &str, route: &str, code: &str) {
        assert_eq!(answer.code(), Some(code), "{method} {route}: {}", answer.text);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"), "{method} {route}");
        assert_eq!(answer.body["type"], format!("urn:otp:problem:{code}"));
        assert_eq!(answer.body["status"], answer.status);
        for member in ["title", "detail", "request_id"] {
            assert!(answer.body[member].is_string(), "{member}: {}", answer.text);
        }
        assert_eq!(answer.body["request_id"].as_str(), answer.header("x-request-id"));
        if answer.status == 429 || answer.status == 503 || code == "idempotency_in_progress" {
            let wait: u64 = answer.header("retry-after").expect("Retry-After").parse().unwrap();
            assert!(wait >= 1);
            assert_eq!(answer.body["retry_after_s"], wait);
        }
        if answer.status == 401 {
            assert!(answer.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
        self.seen.lock().unwrap().insert((method.to_owned(), route.to_owned(), code.to_owned()));
    }

    /// The codes seen for `method route`.
    pub fn seen(&self, method: &str, route: &str) -> BTreeSet<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, r, _)| m == method && r == route)
            .map(|(_, _, code)| code.clone())
            .collect()
    }

    /// Every code the document lists for every route was seen, but those in `unwalked`
    /// (`(method, route, code, why)`), and every code seen is listed.
    pub fn covers(&self, document: &Value, unwalked: &[(&str, &str, &str, &str)]) {
        let mut missing = Vec::new();
        for (route, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(codes) = operation.get("x-problem-codes") else { continue };
                let method = method.to_uppercase();
                let seen = self.seen(&method, route);
                for code in codes.as_array().unwrap().iter().map(|c| c.as_str().unwrap()) {
                    let skipped = unwalked.iter().any(|(m, r, c, _)| *m == method && r == route && *c == code);
                    if !seen.contains(code) && !skipped {
                        missing.push(format!("{method} {route} {code}"));
                    }
                    if seen.contains(code) && skipped {
                        missing.push(format!("{method} {route} {code} is walked now: take it off the unwalked list"));
                    }
                }
            }
        }
        // …and every code walked is one the document lists for its route.
        for (method, route, code) in self.seen.lock().unwrap().iter() {
            let operation = &document["paths"][route][method.to_lowercase()];
            let listed = operation["x-problem-codes"].as_array().is_some_and(|codes| codes.iter().any(|c| c == code));
            if !listed {
                missing.push(format!("{method} {route} {code} is answered but not in the document's x-problem-codes"));
            }
        }
        assert!(missing.is_empty(), "the walk and the document disagree:\n  {}", missing.join("\n  "));
    }
}

/// A secret-looking value for assertions that it never shows.
pub fn secret(text: &str) -> SecretString {
    SecretString::new(text)
}
