//! Starting and stopping: the hyper accept loop (header read timeout, connection cap), the
//! embedded sandbox of `--sandbox`, and the metrics recorder.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use otp::sandbox::Sandbox;
use otp::{ClientOptions, Environment, Gateway, GatewayClient, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::{ConfigError, ServeConfig, MAX_BODY_BYTES};
use crate::observe;
use crate::routes;
use crate::tls::TlsIdentity;

/// Why the service did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration was refused (it names the key).
    Config(ConfigError),
    /// An address could not be listened on.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Config(error) => write!(f, "{error}"),
            ServeError::Listen { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Config(error) => Some(error),
            ServeError::Listen { error, .. } => Some(error),
        }
    }
}

impl From<ConfigError> for ServeError {
    fn from(error: ConfigError) -> Self {
        ServeError::Config(error)
    }
}

/// How long a connection beyond the cap has to send its request: a health check or a real
/// client does at once; an idle flood is closed within it.
const OVERFLOW_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest request head hyper buffers (its minimum is 8 KiB).
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// A running service. Stops when dropped; [`Server::shutdown`] lets requests in flight finish.
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    metrics_addr: Option<SocketAddr>,
    sandbox: Option<Sandbox>,
    dev_key: Option<SecretString>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    /// The slots of the sends in flight: a shutdown waits until all are back.
    sends: Arc<tokio::sync::Semaphore>,
    max_sends: usize,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).field("sandbox", &self.sandbox).finish_non_exhaustive()
    }
}

impl Server {
    /// Checks the config, connects the store (a Redis Cluster now; one Redis on first use),
    /// starts the embedded sandbox for `--sandbox`, and listens. Nothing listens unless all of
    /// it succeeded.
    pub async fn start(config: ServeConfig) -> Result<Self, ServeError> {
        config.check()?;
        let sandbox = match &config.sandbox {
            Some(sandbox_config) => {
                let addr = SocketAddr::from(([127, 0, 0, 1], 0));
                let sandbox = Sandbox::bind(addr, sandbox_config.clone())
                    .await
                    .map_err(|error| ServeError::Listen { addr, error })?;
                Some(sandbox)
            }
            None => None,
        };
        let clients = match &sandbox {
            Some(sandbox) => sandbox_clients(&sandbox.base_url())?,
            None => config.gateways.clone(),
        };
        let app = Arc::new(App::new(&config, clients, metrics_handle()).await?);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|error| ServeError::Listen { addr: config.listen, error })?;
        let addr = listener.local_addr().map_err(|error| ServeError::Listen { addr: config.listen, error })?;
        let metrics_listener = match config.metrics_listen {
            Some(metrics_addr) => Some(
                TcpListener::bind(metrics_addr)
                    .await
                    .map_err(|error| ServeError::Listen { addr: metrics_addr, error })?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let (shutdown, stop) = watch::channel(false);
        let limits = Limits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout,
            tls: config.tls.as_ref().map(TlsIdentity::acceptor),
        };
        let deadline = BodyDeadline(config.header_read_timeout);
        let api = with_layers(routes::router(app.clone()), deadline);
        // Webhook groups first: no request is served before they exist.
        let webhooks =
            crate::webhooks::spawn(&config.webhooks, &app.events, &app.tags, config.webhook_retries, &stop).await?;
        let mut tasks = vec![tokio::spawn(serve(listener, api, limits.clone(), stop.clone()))];
        tasks.extend(webhooks);
        if let Some(listener) = metrics_listener {
            let metrics = with_layers(routes::metrics_router(app.clone()), deadline);
            tasks.push(tokio::spawn(serve(listener, metrics, limits.clone(), stop.clone())));
        }
        tasks.push(tokio::spawn(sweep(app.clone(), stop.clone())));
        if let Some(handle) = app.metrics.clone() {
            tasks.push(tokio::spawn(upkeep(handle, stop)));
        }
        tracing::info!(%addr, gateways = ?app.verifiers.gateways(), "otp serve listening");
        let scheme = if limits.tls.is_some() { "https" } else { "http" };
        let (sends, max_sends) = (app.sends.clone(), app.max_in_flight_sends);
        Ok(Self {
            addr,
            scheme,
            metrics_addr,
            sandbox,
            dev_key: config.dev_key.clone(),
            tasks,
            shutdown,
            sends,
            max_sends,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, or `https://…` with TLS.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Where `/metrics` listens, when it has an address of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `--sandbox`'s embedded sandbox (its inbox shows the codes).
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// `--sandbox`'s development key (a secret: no `Display`).
    pub fn dev_api_key(&self) -> Option<&SecretString> {
        self.dev_key.as_ref()
    }

    /// What `otp serve` prints on start, one line each: `listening: http://HOST:PORT`, and
    /// with `--sandbox` `api_key: <key>`, `sandbox: http://127.0.0.1:PORT` and `inbox:
    /// http://127.0.0.1:PORT/__sandbox/` (the sandbox's inbox page, for a browser).
    pub fn banner(&self) -> Vec<String> {
        let mut lines = vec![format!("listening: {}", self.base_url())];
        if let Some(key) = &self.dev_key {
            lines.push(format!("api_key: {}", key.expose_secret()));
        }
        if let Some(sandbox) = &self.sandbox {
            lines.push(format!("sandbox: {}", sandbox.base_url()));
            lines.push(format!("inbox: {}", sandbox.inbox_url()));
        }
        if let Some(addr) = self.metrics_addr {
            lines.push(format!("metrics: {}://{addr}/metrics", self.scheme));
        }
        lines
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`; a send in flight still
    /// stores its session), then stops.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let (sends, max_sends) = (self.sends.clone(), self.max_sends);
        let _ = tokio::time::timeout(grace, async {
            for task in tasks {
                let _ = task.await;
            }
            // A send whose client went away runs on in its own task: it finishes too.
            let _ = sends.acquire_many(u32::try_from(max_sends).unwrap_or(u32::MAX)).await;
        })
        .await;
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.shutdown(grace).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `otp serve` in one call: starts, hands each banner line to `announce` (the CLI prints
/// them), serves until `shutdown` resolves, then drains requests in flight (up to 30 s).
///
/// ```no_run
/// # async fn cli() -> Result<(), otp_serve::ServeError> {
/// // otp serve --sandbox
/// otp_serve::run(otp_serve::ServeConfig::sandbox()?, |line| println!("{line}"), otp_serve::shutdown_signal()).await
/// # }
/// ```
pub async fn run(
    config: ServeConfig,
    mut announce: impl FnMut(&str),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let server = Server::start(config).await?;
    // Polled once before the banner: a signal handler the future installs when first polled
    // (as `shutdown_signal`'s do) is in place before anyone can read `listening:` and signal.
    let mut shutdown = std::pin::pin!(shutdown);
    let signalled = std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx).is_ready())).await;
    for line in server.banner() {
        announce(&line);
    }
    if !signalled {
        shutdown.await;
    }
    tracing::info!("otp serve stopping: finishing requests in flight");
    server.shutdown(DRAIN).await;
    Ok(())
}

/// How long [`run`] waits for requests in flight after the shutdown signal: past the
/// gateways' default deadline, so a send in flight still gets its answer and its session.
pub const DRAIN: Duration = Duration::from_secs(35);

/// Resolves on Ctrl-C or SIGTERM: [`run`]'s usual shutdown signal.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// A client per gateway, each pointed at the embedded sandbox with its credentials.
fn sandbox_clients(base_url: &str) -> Result<Vec<GatewayClient>, ConfigError> {
    let options = ClientOptions::new().environment(Environment::Custom(base_url.to_owned()));
    Gateway::ALL
        .into_iter()
        .map(|gateway| {
            otp::sandbox::client(gateway, options.clone())
                .map_err(|e| ConfigError::new("gateways", e.description().to_owned()))
        })
        .collect()
}

/// The process's Prometheus recorder: installed by the first server as the global one (so the
/// SDK's and the verifier's metrics reach it), shared by every later server. `None` when the
/// application installed its own recorder first: its metrics are its own to serve.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration".to_owned()), &seconds)
                .ok()?;
            builder.install_recorder().ok()
        })
        .clone()
}

/// Drains histograms now and then, as the exporter asks of a recorder without its own task.
async fn upkeep(handle: PrometheusHandle, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
            _ = stop.changed() => return,
        }
    }
}

/// How often each replica sweeps the store for sessions that ran out (their `expired` event
/// comes at most this late).
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Reports expired sessions until told to stop; every replica sweeps, each session is reported
/// once (the store's claim decides which replica).
async fn sweep(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {
                if let Err(error) = app.verifiers.sweep().await {
                    tracing::debug!(%error, "the sweep for expired verifications failed; the next one tries again");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

fn with_layers(router: Router, deadline: BodyDeadline) -> Router {
    router
        .route_layer(axum::middleware::from_fn(observe::route_template))
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(deadline, read_body))
        .layer(axum::middleware::from_fn(observe::observe))
}

/// How long a request's body may take to arrive once its headers have: as long as they may.
#[derive(Clone, Copy)]
struct BodyDeadline(Duration);

/// Reads the body whole (at most 16 KiB and within the deadline) before anything else: a
/// client trickling its body would otherwise hold its connection as long as it likes.
async fn read_body(
    axum::extract::State(BodyDeadline(deadline)): axum::extract::State<BodyDeadline>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            let detail = format!("the body is larger than {MAX_BODY_BYTES} bytes, or could not be read");
            return crate::problem::Problem::malformed(detail).into_response();
        }
        Err(_) => {
            let detail = format!("the body did not arrive within {} s of its headers", deadline.as_secs_f64());
            return crate::problem::Problem::malformed(detail).into_response();
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

#[derive(Clone)]
struct Limits {
    max_connections: usize,
    header_read_timeout: Duration,
    /// With TLS, each connection's handshake first, within the header read timeout.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Accepts connections until told to stop. Up to `max_connections` are served normally; as
/// many again with a one-second header timeout and no keep-alive (so a health check still
/// gets through a flood of idle clients, which are closed fast); beyond that a connection is
/// closed as it arrives.
async fn serve(listener: TcpListener, router: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let normal = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let overflow = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        while connections.try_join_next().is_some() {}
        let socket = match accepted {
            Ok((socket, _peer)) => socket,
            Err(error) => {
                // Out of file descriptors, most likely: back off briefly instead of spinning.
                tracing::warn!(%error, "otp serve could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (permit, header_timeout, keep_alive) = match normal.clone().try_acquire_owned() {
            Ok(permit) => (permit, limits.header_read_timeout, true),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(permit) => (permit, OVERFLOW_HEADER_READ_TIMEOUT, false),
                Err(_) => {
                    metrics::counter!("otp.serve.connections.refused").increment(1);
                    drop(socket);
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let stopping = stop.clone();
        let tls = limits.tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            let Some(acceptor) = tls else {
                return serve_connection(socket, service, header_timeout, keep_alive, stopping).await;
            };
            // A client that does not finish its handshake in time is closed, as a slow header is.
            match tokio::time::timeout(header_timeout, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => serve_connection(stream, service, header_timeout, keep_alive, stopping).await,
                Ok(Err(_)) | Err(_) => metrics::counter!("otp.serve.tls.handshake_failures").increment(1),
            }
        });
    }
    // Closed now, not when the drain ends: new connections are refused at once (a load
    // balancer moves on) instead of queueing unread in the kernel for the whole drain.
    drop(listener);
    // Requests in flight finish (their connections close after their answer).
    while connections.join_next().await.is_some() {}
}

/// Serves one connection (plain TCP or TLS) until it closes; on shutdown, the request in
/// flight finishes and the connection closes after its answer.
async fn serve_connection<I>(
    io: I,
    service: hyper_util::service::TowerToHyperService<Router>,
    header_timeout: Duration,
    keep_alive: bool,
    mut stopping: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(keep_alive)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stopping.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A signal sent the moment `listening:` is printed is already handled: the shutdown
    /// future has been polled (its handler installed) before the first banner line.
    #[tokio::test]
    async fn the_shutdown_signal_is_listened_for_before_the_banner_is_printed() {
        let polled = Arc::new(AtomicBool::new(false));
        let shutdown = {
            let polled = Arc::clone(&polled);
            std::future::poll_fn(move |_| {
                // Resolves on its second poll: the first one installs, as a signal handler.
                if polled.swap(true, Ordering::SeqCst) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        };
        let config = ServeConfig::sandbox().unwrap().listen("127.0.0.1:0".parse().unwrap());
        let announce = |line: &str| {
            assert!(polled.load(Ordering::SeqCst), "announced {line:?} before the shutdown future was polled");
        };
        tokio::time::timeout(Duration::from_secs(60), run(config, announce, shutdown)).await.unwrap().unwrap();
    }
}
