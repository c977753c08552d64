//! The one HTTP execution path every gateway uses.
//!
//! Gateway crates describe a request ([`WireRequest`]) and how to read an answer; this module
//! does everything else, once: deadlines, the response size cap, no redirects, the https rule
//! (in [`BaseUrl`]), retries that cannot send a second OTP, tracing with masked numbers, and
//! the mapping of transport failures to error kinds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::SemaphorePermit;
use tokio::time::Instant;

use tracing::{field, Instrument};
use zeroize::Zeroizing;

use crate::{BaseUrl, Error, Gateway, RetryPolicy};

/// How requests are sent: shared by every gateway client's builder.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    allow_insecure_http: bool,
    client: Option<reqwest::Client>,
    retry: RetryPolicy,
    max_concurrent_requests: usize,
    max_queue_wait: Duration,
    min_answer_time: Duration,
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    root_certificates: Vec<RootCertificate>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            timeout: Self::DEFAULT_TIMEOUT,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            allow_insecure_http: false,
            client: None,
            retry: RetryPolicy::none(),
            max_concurrent_requests: Self::DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_queue_wait: Self::DEFAULT_MAX_QUEUE_WAIT,
            min_answer_time: Self::DEFAULT_MIN_ANSWER_TIME,
            #[cfg(any(feature = "rustls", feature = "native-tls"))]
            root_certificates: Vec::new(),
        }
    }
}

impl HttpOptions {
    /// The default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default whole-request deadline (connect, send, and the whole answer).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default cap on an answer's body.
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
    /// The default number of requests one client has in flight at once (and so of open
    /// connections): at a gateway's usual 100–300 ms, about 3,400–10,000 sends a second.
    ///
    /// Each request in flight holds one pooled connection (a socket and, over TLS, about 40–70 KiB
    /// of buffers) and a few KiB of request state; 1,024 of them cost some 50–80 MB and as many
    /// file descriptors. Lower it where a provider limits connections per merchant.
    pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;
    /// The default longest wait for a turn when every request of the client is in flight.
    pub const DEFAULT_MAX_QUEUE_WAIT: Duration = Duration::from_secs(5);
    /// The default least time a send must still have for its answer when its turn comes: enough
    /// for a slow but normal gateway answer (they take 100–300 ms, rarely seconds).
    pub const DEFAULT_MIN_ANSWER_TIME: Duration = Duration::from_secs(10);

    /// The time allowed to open a connection (default 5 s). An injected client keeps its own:
    /// give it a connect timeout when you build it.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline for one whole request, answer included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer body read (default 64 KiB); a larger one is an unexpected response.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Allows a plain-http base URL to a host that is not loopback. Never do this in production.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sends through this client, sharing its connection pool.
    ///
    /// What still applies to every send: the deadline ([`timeout`](Self::timeout)), the answer
    /// cap, the https rule, the in-flight limit and its queue, the retry policy, and the refusal
    /// of redirects (one the injected client followed is reported as an unexpected response).
    /// What the injected client must carry itself, because only its builder can set it: a
    /// connect timeout (reqwest has none by default; use 5 s like ours), extra root
    /// certificates, proxies, `redirect::Policy::none()`, and a user agent. Root certificates
    /// given here too are refused when the client is built, rather than silently unused.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The retry policy (default: no retry).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many requests one client (and its clones) has in flight at once (default
    /// [`Self::DEFAULT_MAX_CONCURRENT_REQUESTS`], 1,024), and so how many connections it opens to a
    /// provider. More wait for a turn, within [`max_queue_wait`](Self::max_queue_wait).
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_concurrent_requests = requests;
        self
    }

    /// The longest a send waits for a turn when every request is in flight (default 5 s). A send
    /// that gets none in time fails at once with [`Reached::No`](crate::Reached::No): under
    /// overload the excess is refused early, unsent, instead of queueing without bound.
    pub fn max_queue_wait(mut self, wait: Duration) -> Self {
        self.max_queue_wait = wait;
        self
    }

    /// The least time a send must have left for its answer when its turn comes (default 10 s,
    /// at most half the [`timeout`](Self::timeout)). A send never waits for a turn past the
    /// moment that leaves it less: it fails with [`Reached::No`](crate::Reached::No), nothing
    /// sent, rather than being written to the gateway and abandoned before the answer — which
    /// would text the customer an OTP that the caller is told may not have gone out.
    pub fn min_answer_time(mut self, time: Duration) -> Self {
        self.min_answer_time = time;
        self
    }

    /// Trusts this root certificate as well as the built-in ones: a UAT host behind a corporate
    /// CA, or a local TLS test server.
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    pub fn add_root_certificate(mut self, certificate: RootCertificate) -> Self {
        self.root_certificates.push(certificate);
        self
    }

    /// Whether plain http to a remote host is allowed.
    pub fn insecure_http_allowed(&self) -> bool {
        self.allow_insecure_http
    }
}

/// Root certificates to trust for TLS, on top of the built-in ones.
#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[derive(Clone)]
pub struct RootCertificate(Vec<reqwest::Certificate>);

#[cfg(any(feature = "rustls", feature = "native-tls"))]
impl RootCertificate {
    /// One or more certificates in PEM form (`-----BEGIN CERTIFICATE-----`, a CA bundle).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        match reqwest::Certificate::from_pem_bundle(pem) {
            Ok(certificates) if !certificates.is_empty() => Ok(Self(certificates)),
            Ok(_) => Err(Error::configuration("the root certificate PEM holds no certificate")),
            Err(e) => Err(Error::configuration("the root certificate is not valid PEM").with_source(e)),
        }
    }

    /// One certificate in DER form. It is parsed when the client is built, which refuses an
    /// invalid one as a configuration error.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        reqwest::Certificate::from_der(der)
            .map(|certificate| Self(vec![certificate]))
            .map_err(|e| Error::configuration("the root certificate is not valid DER").with_source(e))
    }
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
impl std::fmt::Debug for RootCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootCertificate")
    }
}

/// A request as a gateway describes it: a POST of a JSON body to an API path.
///
/// The body is wiped when the request is dropped (a verify's holds the customer's code), and
/// so is each copy of it handed to the HTTP client; so are secret header values. What the HTTP
/// stack copies on its own (hyper's write buffer, TLS records) is beyond our reach.
#[derive(Clone)]
pub struct WireRequest {
    api_path: &'static str,
    query: Vec<(&'static str, String)>,
    headers: HeaderMap,
    body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for WireRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values print as "Sensitive" when marked; the body is never printed.
        f.debug_struct("WireRequest")
            .field("api_path", &self.api_path)
            .field("query", &self.query)
            .field("headers", &self.headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

impl WireRequest {
    /// A JSON POST to `api_path` (appended to the base URL), usually of
    /// [`json_body`](crate::operation::json_body)'s bytes.
    pub fn post_json(api_path: &'static str, body: impl Into<Zeroizing<Vec<u8>>>) -> Self {
        Self { api_path, query: Vec::new(), headers: HeaderMap::new(), body: body.into() }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    /// Adds a header whose value is not secret. An invalid name or value is refused as input.
    pub fn header(self, name: &'static str, value: &str) -> Result<Self, Error> {
        self.insert(name, value, false)
    }

    /// Adds a header whose value is secret: marked sensitive, so it never shows in `Debug`, and
    /// held in a buffer wiped when the last copy of the request lets go of it.
    pub fn secret_header(self, name: &'static str, value: &str) -> Result<Self, Error> {
        self.insert(name, value, true)
    }

    fn insert(mut self, name: &'static str, value: &str, sensitive: bool) -> Result<Self, Error> {
        // A gateway crate's own constant, but checked rather than trusted: a typo is an error
        // here, never a panic in the middle of a send.
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::invalid_input(format!("{name:?} is not a valid HTTP header name")).with_source(e))?;
        let refused = |e: reqwest::header::InvalidHeaderValue| {
            // The message names the header, never its value.
            Error::invalid_input(format!("the value of header {name} contains characters HTTP does not allow"))
                .with_source(e)
        };
        let mut value = if sensitive {
            // Shared, not copied, by every clone of the header map; wiped when the last goes.
            let wiped = Bytes::from_owner(Zeroizing::new(value.as_bytes().to_vec()));
            HeaderValue::from_maybe_shared(wiped).map_err(refused)?
        } else {
            HeaderValue::from_str(value).map_err(refused)?
        };
        value.set_sensitive(sensitive);
        self.headers.insert(header_name, value);
        Ok(self)
    }

    /// The API path.
    pub fn api_path(&self) -> &'static str {
        self.api_path
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The headers, sensitive ones marked.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// An answer as received: status, headers and the body (at most the size cap).
///
/// The body is wiped when dropped: a verify's answer carries the gateway's credential, a
/// send's its reference. (The chunks it was read from are hyper's buffers, which are not ours
/// to wipe.)
#[derive(Clone)]
#[non_exhaustive]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish_non_exhaustive()
    }
}

impl RawResponse {
    /// An answer with these parts.
    pub fn new(status: u16, headers: HeaderMap, body: Zeroizing<Vec<u8>>) -> Self {
        Self { status, headers, body }
    }

    /// Decodes the body as JSON into the gateway's answer shape. (A field that holds a secret
    /// is read as a [`SecretText`](crate::SecretText), wiped too; serde_json's scratch buffer,
    /// used only for a string with escapes, is its own and is not.)
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as shared bytes that are wiped when the last of them is dropped: what an
    /// error keeps of the answer.
    pub(crate) fn shared_body(&self) -> Bytes {
        Bytes::from_owner(self.body.clone())
    }

    /// `Retry-After` in its seconds form.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?;
        value.trim().parse::<u64>().ok().map(Duration::from_secs)
    }
}

/// A buffer that never leaves a copy of its bytes behind: when it must grow, it moves to a
/// larger one and wipes the old (a `Vec` would free it as it was).
pub(crate) struct WipingWriter(Zeroizing<Vec<u8>>);

impl WipingWriter {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut larger = Zeroizing::new(Vec::with_capacity(needed.max(self.0.capacity().saturating_mul(2))));
            larger.extend_from_slice(&self.0);
            // The old buffer is dropped here, and wiped.
            self.0 = larger;
        }
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl std::io::Write for WipingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.extend(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends a gateway's requests. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<TransportInner>,
}

struct TransportInner {
    gateway: Gateway,
    base_url: BaseUrl,
    client: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
    retry: RetryPolicy,
    in_flight: tokio::sync::Semaphore,
    max_queue_wait: Duration,
    /// `http.client.request.duration`'s labels that never change for this client.
    attempt_labels: [metrics::Label; 4],
    /// The configured minimum, at most half the timeout.
    min_answer_time: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("gateway", &self.inner.gateway)
            .field("base_url", &self.inner.base_url)
            .field("timeout", &self.inner.timeout)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for a gateway at a checked base URL.
    pub fn new(gateway: Gateway, base_url: BaseUrl, options: &HttpOptions) -> Result<Self, Error> {
        if !base_url.is_loopback() && base_url.as_str().starts_with("http:") && !options.allow_insecure_http {
            return Err(Error::configuration("refusing plain http to a non-loopback host"));
        }
        if options.timeout.is_zero() {
            return Err(Error::configuration("the request timeout must be greater than zero"));
        }
        if options.max_concurrent_requests == 0 || options.max_concurrent_requests > tokio::sync::Semaphore::MAX_PERMITS
        {
            return Err(Error::configuration(format!(
                "max_concurrent_requests must be between 1 and {}",
                tokio::sync::Semaphore::MAX_PERMITS
            )));
        }
        #[cfg(any(feature = "rustls", feature = "native-tls"))]
        if options.client.is_some() && !options.root_certificates.is_empty() {
            return Err(Error::configuration(
                "root certificates cannot be added to an injected HTTP client: add them to its builder",
            ));
        }
        let client = match &options.client {
            Some(client) => client.clone(),
            None => {
                let builder = reqwest::Client::builder()
                    .connect_timeout(options.connect_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("otp-rs/", env!("CARGO_PKG_VERSION")));
                #[cfg(any(feature = "rustls", feature = "native-tls"))]
                let builder = options
                    .root_certificates
                    .iter()
                    .flat_map(|root| &root.0)
                    .fold(builder, |builder, certificate| builder.add_root_certificate(certificate.clone()));
                // HTTP(S)_PROXY names the way out of this machine; a loopback base (the sandbox,
                // a local mock) is this machine, and a proxy would only fail to reach it.
                let builder = if base_url.is_loopback() { builder.no_proxy() } else { builder };
                builder.build().map_err(|e| {
                    Error::configuration("could not build the HTTP client (is every root certificate valid?)")
                        .with_source(e)
                })?
            }
        };
        let attempt_labels = attempt_labels(gateway, &base_url);
        Ok(Self {
            inner: Arc::new(TransportInner {
                gateway,
                base_url,
                client,
                timeout: options.timeout,
                max_response_bytes: options.max_response_bytes,
                retry: options.retry.clone(),
                in_flight: tokio::sync::Semaphore::new(options.max_concurrent_requests),
                max_queue_wait: options.max_queue_wait,
                attempt_labels,
                min_answer_time: options.min_answer_time.min(options.timeout / 2),
            }),
        })
    }

    /// A transport for a gateway in an environment (its documented hosts, or a custom base URL).
    pub fn for_environment(
        gateway: Gateway,
        environment: &crate::Environment,
        hosts: &crate::KnownHosts,
        options: &HttpOptions,
    ) -> Result<Self, Error> {
        let base_url = environment.base_url(gateway, hosts, options.allow_insecure_http)?;
        Self::new(gateway, base_url, options).map_err(|e| e.with_gateway(gateway))
    }

    /// The gateway this transport sends for.
    pub fn gateway(&self) -> Gateway {
        self.inner.gateway
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base_url
    }

    /// Sends a request and decodes the answer, retrying only when `retries` is set and the
    /// [`RetryPolicy`] allows. The span is the caller's ([`crate::operation::execute`]).
    pub(crate) async fn exchange<T>(
        &self,
        request: &WireRequest,
        retries: bool,
        decode: impl Fn(&RawResponse) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let policy = &self.inner.retry;
        let max_attempts = if retries { policy.max_attempts() } else { 1 };
        let deadline = after(started, if max_attempts > 1 { policy.deadline() } else { self.inner.timeout });
        let mut attempt = 1;
        let mut attempt_started = started;
        loop {
            tracing::Span::current().record("attempts", attempt);
            let budget = self.inner.timeout.min(deadline.saturating_duration_since(attempt_started));
            let result = match self.attempt(request, attempt, attempt_started, budget).await {
                Ok(response) => decode(&response),
                Err(error) => Err(error),
            };
            let error = match result {
                Err(error) if attempt < max_attempts && policy.may_retry(&error) => error,
                other => return other,
            };
            attempt += 1;
            let delay = policy.delay(attempt, &error);
            if after(Instant::now(), delay) >= deadline {
                tracing::debug!(kind = error.kind().as_str(), "no time left for another attempt");
                return Err(error);
            }
            tracing::info!(
                kind = error.kind().as_str(),
                delay_ms = delay.as_millis() as u64,
                attempt,
                "retrying: the provider cannot have sent an OTP"
            );
            tokio::time::sleep(delay).await;
            attempt_started = Instant::now();
        }
    }

    /// One request, answered within `budget` from `started`: one `http.client.request` span
    /// and one `http.client.request.duration` measurement, with OpenTelemetry's attribute names.
    async fn attempt(
        &self,
        request: &WireRequest,
        attempt: u32,
        started: Instant,
        budget: Duration,
    ) -> Result<RawResponse, Error> {
        let deadline = after(started, budget);
        // A send that gets no turn made no request: no HTTP span or duration for it.
        let _permit = self.turn(deadline).await?;
        let requested = Instant::now();
        let base = self.inner.base_url.url();
        let (address, port) = (base.host_str().unwrap_or(""), base.port_or_known_default().unwrap_or(0));
        let span = tracing::info_span!(
            "http.client.request",
            http.request.method = "POST",
            server.address = address,
            server.port = port,
            url.template = request.api_path,
            http.request.resend_count = attempt.saturating_sub(1),
            http.response.status_code = field::Empty,
            error.type = field::Empty,
        );
        let result = self.exchange_once(request, deadline, budget).instrument(span.clone()).await;
        let status = match &result {
            Ok(response) => Some(response.status),
            Err(error) => error.http_status(),
        };
        let error_type = match &result {
            Err(error) => Some(error.kind().as_str()),
            Ok(_) => None,
        };
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        if let Some(kind) = error_type {
            span.record("error.type", kind);
        }
        // The labels every attempt of this client shares are built once, at construction.
        let mut labels = self.inner.attempt_labels.to_vec();
        if let Some(status) = status {
            labels.push(metrics::Label::new("http.response.status_code", status.to_string()));
        }
        if let Some(kind) = error_type {
            labels.push(metrics::Label::new("error.type", kind));
        }
        metrics::histogram!("http.client.request.duration", labels).record(requested.elapsed().as_secs_f64());
        result
    }

    /// A turn among the client's requests in flight: at once when one is free, else after a
    /// bounded wait (measured), or refused as shed.
    async fn turn(&self, deadline: Instant) -> Result<SemaphorePermit<'_>, Error> {
        let gateway = self.inner.gateway.as_str();
        match self.inner.in_flight.try_acquire() {
            Ok(permit) => Ok(permit),
            Err(tokio::sync::TryAcquireError::Closed) => Err(Error::transport("the client is shutting down")),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let queued = Counted::new(metrics::gauge!("otp.client.requests.queued", "otp.gateway" => gateway));
                let waited = Instant::now();
                let turn = self.wait_for_turn(deadline).await;
                drop(queued);
                metrics::histogram!("otp.client.queue.wait.duration", "otp.gateway" => gateway)
                    .record(waited.elapsed().as_secs_f64());
                if turn.is_err() {
                    metrics::counter!("otp.requests.shed", "otp.gateway" => gateway).increment(1);
                }
                turn
            }
        }
    }

    /// The request itself, once it has its turn.
    async fn exchange_once(
        &self,
        request: &WireRequest,
        deadline: Instant,
        budget: Duration,
    ) -> Result<RawResponse, Error> {
        let _in_flight = Counted::new(
            metrics::gauge!("otp.client.requests.in_flight", "otp.gateway" => self.inner.gateway.as_str()),
        );
        let query: Vec<(&str, &str)> = request.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = self.inner.base_url.join(request.api_path, &query);
        // The HTTP client gets its own copy of the body, wiped when it lets go of it (each
        // attempt its own: a retry sends the request again).
        let body = Bytes::from_owner(request.body.clone());
        let pending = self
            .inner
            .client
            .post(url.clone())
            .headers(request.headers.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send();
        self.read_answer(pending, url, deadline, budget).await
    }

    /// Waits for a turn, but never so long that the send would be written with less than
    /// `min_answer_time` left for its answer: under overload a send that waited in a deep queue
    /// would otherwise reach the gateway (an SMS) and be abandoned before the answer.
    async fn wait_for_turn(&self, deadline: Instant) -> Result<SemaphorePermit<'_>, Error> {
        let queued = Instant::now();
        let last_useful_turn = deadline.checked_sub(self.inner.min_answer_time).unwrap_or(queued);
        let give_up = after(queued, self.inner.max_queue_wait).min(last_useful_turn);
        if give_up <= queued {
            return Err(Error::shed(Duration::ZERO));
        }
        match tokio::time::timeout_at(give_up, self.inner.in_flight.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(Error::transport("the client is shutting down")),
            Err(_elapsed) => Err(Error::shed(queued.elapsed())),
        }
    }

    /// The answer by `deadline`, under one timer. The status is noted as soon as it arrives,
    /// so that a deadline passing while the body is read still reports it.
    async fn read_answer(
        &self,
        pending: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
        sent_to: reqwest::Url,
        deadline: Instant,
        budget: Duration,
    ) -> Result<RawResponse, Error> {
        let mut status_seen = None;
        let answer =
            tokio::time::timeout_at(deadline, self.read_answer_inner(pending, sent_to, &mut status_seen)).await;
        match answer {
            Ok(result) => result,
            Err(_elapsed) => {
                let error = Error::timeout(budget);
                Err(match status_seen {
                    Some(status) => error.with_provider_response(bare_response(status)),
                    None => error,
                })
            }
        }
    }

    async fn read_answer_inner(
        &self,
        pending: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
        sent_to: reqwest::Url,
        status_seen: &mut Option<u16>,
    ) -> Result<RawResponse, Error> {
        let mut response = pending.await.map_err(map_send_error)?;
        let status = response.status().as_u16();
        *status_seen = Some(status);
        tracing::debug!(http_status = status, "answer headers received");
        if (300..400).contains(&status) {
            return Err(Error::unexpected(format!(
                "the provider answered with a redirect (HTTP {status}), which is never followed"
            ))
            .with_provider_response(bare_response(status)));
        }
        // Only an injected client can follow a redirect (ours never do).
        if response.url() != &sent_to {
            return Err(Error::unexpected(
                "the injected HTTP client followed a redirect; redirects are never accepted",
            )
            .with_provider_response(bare_response(status)));
        }
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(&mut response, self.inner.max_response_bytes).await?;
        Ok(RawResponse { status, headers, body })
    }
}

/// The labels of every HTTP attempt of a client: method, host, port and gateway, in
/// OpenTelemetry's names; host and port shared, not copied, per attempt.
fn attempt_labels(gateway: Gateway, base_url: &BaseUrl) -> [metrics::Label; 4] {
    let url = base_url.url();
    let shared = |text: String| metrics::SharedString::from_shared(std::sync::Arc::<str>::from(text));
    [
        metrics::Label::new("http.request.method", "POST"),
        metrics::Label::new("server.address", shared(url.host_str().unwrap_or("").to_owned())),
        metrics::Label::new("server.port", shared(url.port_or_known_default().unwrap_or(0).to_string())),
        metrics::Label::new("otp.gateway", gateway.as_str()),
    ]
}

/// One more on a gauge for as long as it lives (a dropped send included).
struct Counted(metrics::Gauge);

impl Counted {
    fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `start + span`, saturating: a caller's `Duration::MAX` means "no deadline", never a panic.
fn after(start: Instant, span: Duration) -> Instant {
    // About 30 years, as tokio's own timers use for "never".
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    start.checked_add(span.min(FAR)).unwrap_or(start)
}

fn bare_response(status: u16) -> crate::ProviderResponse {
    crate::ProviderResponse {
        http_status: status,
        code: None,
        message: None,
        code_recognised: false,
        retry_after: None,
        body: Bytes::new(),
    }
}

fn map_send_error(error: reqwest::Error) -> Error {
    if error.is_connect() {
        // DNS, TCP or TLS failed before the request was written: no OTP can have gone out.
        Error::connect(error.without_url())
    } else if error.is_timeout() {
        // Only an injected client's own timeout lands here; ours is the deadline around the exchange.
        Error::timed_out("the HTTP client's own timeout passed; the OTP may or may not have been sent")
            .with_source(error.without_url())
    } else if error.is_builder() {
        Error::configuration("the request could not be built").with_source(error.without_url())
    } else {
        Error::transport("the connection failed after the request may have been written")
            .with_source(error.without_url())
    }
}

/// The answer's body, up to `cap`, into a buffer wiped when dropped. The chunks it is read from
/// are hyper's buffers, which we cannot wipe: the same bytes may stay in freed memory there.
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let status = response.status().as_u16();
    let over_cap = |declared: String| {
        Error::unexpected(format!("the answer is larger than the {cap}-byte cap ({declared})"))
            .with_provider_response(bare_response(status))
    };
    let declared = response.content_length();
    if let Some(length) = declared {
        if length > cap as u64 {
            return Err(over_cap(format!("declared {length} bytes")));
        }
    }
    let broke = |e: reqwest::Error| {
        Error::transport("the connection broke while the answer was read")
            .with_source(e.without_url())
            .with_provider_response(bare_response(status))
    };
    // A declared length (within the cap) is the size to expect: no growth, so no copy left.
    let expected = declared.and_then(|length| usize::try_from(length).ok()).unwrap_or(1024);
    let mut body = WipingWriter::with_capacity(expected);
    while let Some(chunk) = response.chunk().await.map_err(broke)? {
        if body.len() + chunk.len() > cap {
            return Err(over_cap("streamed".to_owned()));
        }
        body.extend(&chunk);
    }
    Ok(body.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;
    use crate::{ErrorKind, Gateway};

    /// A loopback port that records whether anyone connected.
    fn silent_listener() -> (std::net::TcpListener, BaseUrl) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = BaseUrl::parse(&format!("http://{}", listener.local_addr().unwrap()), false).unwrap();
        (listener, base)
    }

    fn wire() -> WireRequest {
        WireRequest::post_json("/send", b"{}".to_vec())
    }

    fn nothing_decoded(_: &RawResponse) -> Result<(), Error> {
        unreachable!("no answer comes from a silent listener")
    }

    fn assert_shed_unsent(error: &Error, listener: &std::net::TcpListener) {
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        assert_eq!(error.reached_provider(), crate::Reached::No, "{error}");
        assert!(error.is_retryable(), "nothing was sent, so trying later is safe: {error}");
        assert!(error.to_string().contains("nothing was sent"), "{error}");
        assert!(listener.accept().is_err(), "no connection was opened");
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_that_never_gets_a_turn_is_shed_after_the_queue_wait_having_sent_nothing() {
        let (listener, base) = silent_listener();
        let options = HttpOptions::default().max_concurrent_requests(1).max_queue_wait(Duration::from_millis(300));
        let transport = Transport::new(Gateway::Paytm, base, &options).unwrap();
        // Every turn is taken, as by a send in flight.
        let _in_flight = transport.inner.in_flight.acquire().await.unwrap();
        let started = Instant::now();
        let error = transport.exchange(&wire(), true, nothing_decoded).await.unwrap_err();
        // Paused time: the clock moved exactly as far as the send waited.
        assert_eq!(started.elapsed(), Duration::from_millis(300), "the queue wait, not the 30 s deadline");
        assert_shed_unsent(&error, &listener);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_that_comes_too_late_for_an_answer_is_never_taken() {
        let (listener, base) = silent_listener();
        // 4 s deadline, 3 s wanted for the answer (cut to half the deadline, 2 s), 60 s queue wait:
        // the send may wait 2 s for a turn at most.
        let options = HttpOptions::default()
            .max_concurrent_requests(1)
            .timeout(Duration::from_secs(4))
            .min_answer_time(Duration::from_secs(3))
            .max_queue_wait(Duration::from_secs(60));
        let transport = Transport::new(Gateway::Paytm, base, &options).unwrap();
        let in_flight = transport.inner.in_flight.acquire().await.unwrap();
        // The turn frees up at 2.5 s: 1.5 s before the deadline, too late to get an answer in.
        let release = async move {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            drop(in_flight);
        };
        let started = Instant::now();
        let send = async {
            let result = transport.exchange(&wire(), true, nothing_decoded).await;
            (result, started.elapsed())
        };
        let ((result, waited), ()) = tokio::join!(send, release);
        assert_eq!(waited, Duration::from_secs(2), "given up when less than 2 s would be left");
        assert_shed_unsent(&result.unwrap_err(), &listener);
        // The turn is free again now, and a send takes it at once (and then finds nobody answering).
        assert_eq!(transport.inner.in_flight.available_permits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_in_time_is_taken_and_the_send_goes_out() {
        let (listener, base) = silent_listener();
        let options = HttpOptions::default()
            .max_concurrent_requests(1)
            .timeout(Duration::from_secs(4))
            .max_queue_wait(Duration::from_secs(60));
        let transport = Transport::new(Gateway::Paytm, base, &options).unwrap();
        let in_flight = transport.inner.in_flight.acquire().await.unwrap();
        // Freed at 1.5 s, before the last useful moment (4 s − min(10 s, 4 s / 2) = 2 s).
        let release = async move {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            drop(in_flight);
        };
        let request = wire();
        let send = transport.exchange(&request, true, nothing_decoded);
        let (result, ()) = tokio::join!(send, release);
        let error = result.unwrap_err();
        // It was written: the listener got the connection, and the send ran into its deadline.
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Timeout, crate::Reached::Maybe), "{error}");
        assert!(listener.accept().is_ok(), "the send went out once it had its turn");
    }

    #[test]
    fn plain_http_to_a_remote_host_needs_the_option_on_the_transport_too() {
        // A base URL parsed with the opt-in is still refused by a transport without it.
        let base = BaseUrl::parse("http://example.com", true).unwrap();
        let error = Transport::new(Gateway::Paytm, base.clone(), &HttpOptions::default()).unwrap_err();
        assert!(error.is_configuration() && error.to_string().contains("plain http"), "{error}");
        assert!(Transport::new(Gateway::Paytm, base, &HttpOptions::default().allow_insecure_http(true)).is_ok());
        let loopback = BaseUrl::parse("http://127.0.0.1:9", false).unwrap();
        assert!(Transport::new(Gateway::Paytm, loopback, &HttpOptions::default()).is_ok());
    }

    #[test]
    fn debug_shows_settings_and_shapes_never_bodies() {
        let options = HttpOptions::default().connect_timeout(Duration::from_secs(3));
        assert!(format!("{options:?}").contains("connect_timeout: 3s"), "{options:?}");
        let response = RawResponse::new(200, HeaderMap::new(), b"{\"otpToken\":\"secret\"}".to_vec().into());
        assert_eq!(format!("{response:?}"), "RawResponse { status: 200, body: <21 bytes>, .. }");
        let base = BaseUrl::parse("https://example.com", false).unwrap();
        let transport = Transport::new(Gateway::Paytm, base, &HttpOptions::default()).unwrap();
        let debug = format!("{transport:?}");
        assert!(debug.starts_with("Transport { gateway: Paytm, base_url: BaseUrl(https://example.com/)"), "{debug}");
        #[cfg(any(feature = "rustls", feature = "native-tls"))]
        {
            let root = RootCertificate::from_der(b"\x30\x03\x02\x01\x00").unwrap();
            assert_eq!(format!("{root:?}"), "RootCertificate");
        }
    }

    #[test]
    fn deadlines_pass_through_exactly_up_to_thirty_years_and_saturate_beyond() {
        let start = Instant::now();
        let two_years = Duration::from_secs(86_400 * 365 * 2);
        assert_eq!(after(start, two_years), start + two_years);
        let thirty_years = Duration::from_secs(86_400 * 365 * 30);
        assert_eq!(after(start, Duration::MAX), start + thirty_years);
        assert_eq!(after(start, thirty_years + Duration::from_secs(1)), start + thirty_years);
    }

    #[test]
    fn the_in_flight_gauge_returns_to_zero_after_a_send() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let (listener, base) = silent_listener();
        drop(listener); // Nobody listens: the connection is refused, after the turn was taken.
        let transport = Transport::new(Gateway::Paytm, base, &HttpOptions::default()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        metrics::with_local_recorder(&recorder, || {
            let error = runtime.block_on(transport.exchange(&wire(), true, nothing_decoded)).unwrap_err();
            assert_eq!(error.reached_provider(), crate::Reached::No);
        });
        let gauges: Vec<f64> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "otp.client.requests.in_flight")
            .map(|(.., value)| match value {
                metrics_util::debugging::DebugValue::Gauge(value) => value.into_inner(),
                metrics_util::debugging::DebugValue::Counter(_) | metrics_util::debugging::DebugValue::Histogram(_) => {
                    f64::NAN
                }
            })
            .collect();
        assert_eq!(gauges, [0.0], "taken, then given back");
    }

    /// Compiles only for a type that wipes itself when dropped.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    #[test]
    fn request_and_answer_bodies_are_buffers_wiped_on_drop() {
        let wire = WireRequest::post_json("/verify", crate::operation::json_body(&["123456"]));
        wiped_on_drop(&wire.body);
        let response = RawResponse::new(200, HeaderMap::new(), b"{\"userAuthToken\":\"t\"}".to_vec().into());
        wiped_on_drop(&response.body);
        // What is handed on shares the wiped buffer rather than copying it into a plain one.
        assert_eq!(response.shared_body().as_ref(), response.body.as_slice());
        let writer = WipingWriter::with_capacity(4);
        wiped_on_drop(&writer.0);
    }

    /// It grows into a buffer of its own making (so the old one is wiped as it goes), only when
    /// full, to at least twice its size: a `Vec` left to grow itself would round up to 8 here
    /// and free its old buffer unwiped.
    #[test]
    fn a_full_buffer_moves_to_one_of_its_own_making_and_only_then() {
        let mut writer = WipingWriter::with_capacity(4);
        writer.extend(b"abcd");
        assert_eq!(writer.0.capacity(), 4, "exactly full: no move");
        writer.extend(b"e");
        assert_eq!(writer.0.capacity(), 8, "twice its size");
        let mut writer = WipingWriter::with_capacity(2);
        writer.extend(b"abcde");
        assert_eq!(writer.0.capacity(), 5, "what is needed, when more than twice");
    }

    #[test]
    fn a_growing_buffer_keeps_every_byte_in_order() {
        let mut writer = WipingWriter::with_capacity(2);
        for chunk in [&b"ab"[..], b"cde", b"", b"fghijklmnop"] {
            writer.extend(chunk);
        }
        assert_eq!((writer.len(), writer.into_inner().as_slice()), (16, &b"abcdefghijklmnop"[..]));
    }

    #[test]
    fn header_names_are_checked_not_trusted() {
        for bad in ["", "x verify", "x-v\u{e9}rify", "x:y"] {
            let error = wire().header(bad, "v").unwrap_err();
            assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, crate::Reached::No));
            assert!(error.to_string().contains("header name"), "{error}");
            assert!(wire().secret_header(bad, "v").is_err(), "{bad:?}");
        }
        // HTTP names are case-insensitive: any case is accepted, and kept lowercase.
        let wire = wire().header("X-Device-Id", "d").unwrap().secret_header("X-VERIFY", "s").unwrap();
        assert_eq!(wire.headers().get("x-device-id").unwrap(), "d");
        let secret = wire.headers().get("x-verify").unwrap();
        assert!(secret.is_sensitive() && secret == "s", "{secret:?}");
        assert!(WireRequest::post_json("/x", Vec::new()).secret_header("x-verify", "bad\nvalue").is_err());
    }

    #[test]
    fn zero_concurrent_requests_is_a_configuration_error() {
        let base = BaseUrl::parse("https://example.com", false).unwrap();
        let options = HttpOptions::default().max_concurrent_requests(0);
        assert!(Transport::new(Gateway::Paytm, base, &options).unwrap_err().is_configuration());
    }
}
