//! The headline benchmark: the SDK where users live. A local stand-in for a gateway answers the
//! PhonePe send after a uniform 100–200 ms (configurable) over TLS, with a CA made at start;
//! the SDK with default options and a plain `reqwest::Client` sending the same bytes take turns
//! at 1, 64, 256 and 1,000 callers (closed loop); then an open-loop phase sends at twice the
//! SDK's sustainable rate and splits the failed sends by whether they can have reached the
//! gateway.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use otp::{Environment, GatewayClient, HttpOptions, Reached, RootCertificate, SendOtpRequest};
use otp_core::reqwest;
use tokio_rustls::rustls;

use crate::{ms, BoxError, RawCall, Run, MOBILE, PHONEPE_ANSWER, PHONEPE_MERCHANT, PHONEPE_SALT};

/// How long the realistic phases run.
pub struct Settings {
    /// The stand-in's answer latency, uniform between these (ms).
    pub latency_ms: (u64, u64),
    /// One measured run of one side.
    pub run: Duration,
    /// Measured runs per side and caller count (they alternate, SDK first in odd ones).
    pub rounds: usize,
    /// The open-loop overload phase.
    pub overload: Duration,
}

impl Settings {
    /// About two minutes in all, or `long` (15 s runs, a 60 s overload).
    pub fn new(long: bool, quick: bool) -> Self {
        let latency_ms = std::env::var("OTP_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| {
                let (low, high) = v.split_once('-')?;
                Some((low.trim().parse().ok()?, high.trim().parse().ok()?))
            })
            .unwrap_or((100, 200));
        match (long, quick) {
            (true, _) => {
                Self { latency_ms, run: Duration::from_secs(15), rounds: 2, overload: Duration::from_secs(60) }
            }
            (false, true) => {
                Self { latency_ms, run: Duration::from_secs(1), rounds: 1, overload: Duration::from_secs(5) }
            }
            (false, false) => {
                Self { latency_ms, run: Duration::from_secs(4), rounds: 1, overload: Duration::from_secs(25) }
            }
        }
    }
}

// ------------------------------------------------------------------ the gateway stand-in

/// PhonePe's verify, and its success: a check through the stand-in is approved.
const PHONEPE_VERIFY_PATH: &str = "/v3/merchant/otp/verify";
const PHONEPE_VERIFY_ANSWER: &str = r#"{"success":true,"code":"SUCCESS","message":"Your request has been successfully completed.","data":{"userAuthToken":"bench-user-auth-token"}}"#;

/// What the stand-in saw: connections opened, requests read, answers written.
#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    received: AtomicU64,
    answered: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.connections.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
        )
    }
}

pub(crate) struct StandIn {
    pub(crate) base_url: String,
    pub(crate) ca_pem: String,
    counters: Arc<Counters>,
}

/// A CA made now, and a certificate for `localhost` signed by it.
fn local_ca() -> Result<(String, rustls::ServerConfig), BoxError> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let certificate = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &issuer)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    Ok((ca_pem, config))
}

/// Serves the PhonePe send's success (and the verify's, for `--serve`'s checks) after the
/// configured latency, over TLS (HTTP/1.1).
pub(crate) async fn stand_in(latency_ms: (u64, u64)) -> Result<StandIn, BoxError> {
    let (ca_pem, config) = local_ca()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let counters = Arc::new(Counters::default());
    let shared = counters.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let (acceptor, counters) = (acceptor.clone(), shared.clone());
            tokio::spawn(async move {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                let _ = socket.set_nodelay(true);
                let Ok(tls) = acceptor.accept(socket).await else { return };
                let service = hyper::service::service_fn(move |request| answer(request, counters.clone(), latency_ms));
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(StandIn { base_url: format!("https://localhost:{port}"), ca_pem, counters })
}

/// Reads the request, waits the gateway's latency, answers the send's success (the verify's
/// at its path: any code is right). Dropped
/// unanswered when the client gives up: received − answered is what was abandoned in flight.
async fn answer(
    request: hyper::Request<hyper::body::Incoming>,
    counters: Arc<Counters>,
    latency_ms: (u64, u64),
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let verify = request.uri().path() == PHONEPE_VERIFY_PATH;
    request.into_body().collect().await?;
    counters.received.fetch_add(1, Ordering::Relaxed);
    let delay = fastrand::u64(latency_ms.0..=latency_ms.1.max(latency_ms.0));
    tokio::time::sleep(Duration::from_millis(delay)).await;
    counters.answered.fetch_add(1, Ordering::Relaxed);
    let body = if verify { PHONEPE_VERIFY_ANSWER } else { PHONEPE_ANSWER };
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    Ok(response)
}

// ------------------------------------------------------------------ the two clients

fn sdk_client(stand_in: &StandIn, http: HttpOptions) -> Result<GatewayClient, BoxError> {
    let root = RootCertificate::from_pem(stand_in.ca_pem.as_bytes())?;
    Ok(otp::phonepe::PhonePeClient::builder()
        .merchant_id(PHONEPE_MERCHANT)
        .salt_key(PHONEPE_SALT)
        .salt_index(1)
        .environment(Environment::Custom(stand_in.base_url.clone()))
        .http(http.add_root_certificate(root))
        .build()?
        .into())
}

fn raw_call(stand_in: &StandIn) -> Result<RawCall, BoxError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(format!("otp-rs/{}", env!("CARGO_PKG_VERSION")))
        .add_root_certificate(reqwest::Certificate::from_pem(stand_in.ca_pem.as_bytes())?)
        .build()?;
    Ok(RawCall::new(http, &stand_in.base_url, otp::Gateway::PhonePe))
}

fn request() -> Result<SendOtpRequest, BoxError> {
    Ok(otp::phonepe::SendOtpRequest::new(MOBILE.parse()?).into())
}

/// `callers` workers each send one after another until `duration` has passed.
pub(crate) async fn closed_loop<F, Fut>(callers: usize, duration: Duration, job: F) -> Result<Run, BoxError>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let started = Instant::now();
    let end = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let job = job.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let sent = Instant::now();
                job().await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, BoxError>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(worker) = workers.join_next().await {
        latencies.extend(worker??);
    }
    Ok(Run { elapsed: started.elapsed(), latencies, cpu: Duration::ZERO })
}

/// Peak resident memory of this process since the last reset (Linux; 0 elsewhere), in MiB.
fn peak_rss_mib() -> f64 {
    process_status_mib("VmHWM:")
}

/// A memory figure of this process's /proc status (`VmRSS:`, `VmHWM:`), in MiB; 0 off Linux.
pub(crate) fn process_status_mib(field: &str) -> f64 {
    status_file_mib("/proc/self/status", field)
}

/// A memory figure of a /proc status file (this process's or a child's), in MiB; 0 if unread.
pub(crate) fn status_file_mib(path: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets the peak to the current resident size (Linux ≥ 4.0; ignored elsewhere).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One side's runs at one caller count.
#[derive(Default)]
struct Side {
    run: Run,
    connections: u64,
    peak_rss: f64,
}

impl Side {
    /// A closed-loop run whose connections count for this side; `timed` runs also count their
    /// sends, latencies and peak memory (a warm-up does not).
    async fn run<F, Fut>(
        &mut self,
        counters: &Counters,
        callers: usize,
        duration: Duration,
        timed: bool,
        job: F,
    ) -> Result<(), BoxError>
    where
        F: Fn() -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        reset_peak_rss();
        let (before, _, _) = counters.snapshot();
        let run = closed_loop(callers, duration, job).await?;
        self.connections += counters.snapshot().0 - before;
        if timed {
            self.run.add(run);
            self.peak_rss = self.peak_rss.max(peak_rss_mib());
        }
        Ok(())
    }
}

/// SDK (default options) against raw reqwest at each caller count; returns the worst ratio.
async fn closed_loops(stand_in: &StandIn, settings: &Settings) -> Result<f64, BoxError> {
    println!(
        "{:>7} {:>10} {:>10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>13}",
        "callers",
        "sdk send/s",
        "raw send/s",
        "ratio",
        "sdk p50",
        "sdk p99",
        "raw p50",
        "raw p99",
        "conns s/r",
        "peak RSS s/r"
    );
    let mut worst = f64::INFINITY;
    for callers in [1usize, 64, 256, 1_000] {
        // Fresh clients per caller count: each side opens the connections it needs, counted.
        let client: &'static GatewayClient = Box::leak(Box::new(sdk_client(stand_in, HttpOptions::default())?));
        let request: &'static SendOtpRequest = Box::leak(Box::new(request()?));
        let raw: &'static RawCall = Box::leak(Box::new(raw_call(stand_in)?));
        let sdk_job = move || async move { client.send_otp(request).await.map(drop).map_err(BoxError::from) };
        let raw_job = move || async move { raw.send(MOBILE).await };
        // Warm-up: connections and TLS sessions opened (and counted), not timed.
        let warm = settings.run.min(Duration::from_secs(2));
        let (mut sdk, mut raw_side) = (Side::default(), Side::default());
        // One caller makes ~6 sends a second: four times the run, or the random latency of a
        // few dozen sends decides the ratio.
        let run = if callers == 1 { settings.run * 4 } else { settings.run };
        sdk.run(&stand_in.counters, callers, warm, false, sdk_job).await?;
        raw_side.run(&stand_in.counters, callers, warm, false, raw_job).await?;
        for round in 0..settings.rounds * 2 {
            // A B B A …: drift on a shared machine lands on both sides alike.
            if (round % 4 == 0) || (round % 4 == 3) {
                sdk.run(&stand_in.counters, callers, run, true, sdk_job).await?;
            } else {
                raw_side.run(&stand_in.counters, callers, run, true, raw_job).await?;
            }
        }
        let (sdk_connections, raw_connections, sdk_rss, raw_rss) =
            (sdk.connections, raw_side.connections, sdk.peak_rss, raw_side.peak_rss);
        let (sdk, raw_stats) = (sdk.run.stats(), raw_side.run.stats());
        let ratio = sdk.requests_per_second / raw_stats.requests_per_second;
        worst = worst.min(ratio);
        println!(
            "{callers:>7} {:>10.1} {:>10.1} {ratio:>6.3} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>11} {:>13}",
            sdk.requests_per_second,
            raw_stats.requests_per_second,
            ms(sdk.p50),
            ms(sdk.p99),
            ms(raw_stats.p50),
            ms(raw_stats.p99),
            format!("{}/{}", sdk_connections, raw_connections),
            format!("{sdk_rss:.0}/{raw_rss:.0} MiB"),
        );
    }
    Ok(worst)
}

/// How the open-loop sends ended.
#[derive(Default)]
struct Outcomes {
    sent: AtomicU64,
    shed: AtomicU64,
    failed_maybe_reached: AtomicU64,
    failed_answered: AtomicU64,
}

/// Sends at twice what a client limited to `limit` in flight sustains, and reports goodput and
/// how every failed send ended. Returns (goodput / sustainable, failures that reached the gateway).
async fn overload(stand_in: &StandIn, settings: &Settings) -> Result<(f64, u64), BoxError> {
    // A limit that makes the client's cap, not this machine's two cores, the bottleneck.
    let limit = 128;
    let client: &'static GatewayClient =
        Box::leak(Box::new(sdk_client(stand_in, HttpOptions::default().max_concurrent_requests(limit))?));
    let request: &'static SendOtpRequest = Box::leak(Box::new(request()?));
    let sdk_job = move || async move { client.send_otp(request).await.map(drop).map_err(BoxError::from) };
    closed_loop(limit * 2, Duration::from_secs(2), sdk_job).await?;
    let sustainable = closed_loop(limit * 2, Duration::from_secs(5), sdk_job).await?.stats().requests_per_second;
    let rate = 2.0 * sustainable;
    println!(
        "overload: max_concurrent_requests({limit}) sustains {sustainable:.0} sends/s; \
         sending {rate:.0}/s open loop for {} s",
        settings.overload.as_secs()
    );
    let outcomes: &'static Outcomes = Box::leak(Box::default());
    let (_, received_before, answered_before) = stand_in.counters.snapshot();
    let mut sends = tokio::task::JoinSet::new();
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut launched = 0u64;
    while started.elapsed() < settings.overload {
        ticker.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        for _ in launched..due {
            sends.spawn(async move {
                match client.send_otp(request).await {
                    Ok(_) => &outcomes.sent,
                    Err(error) => match error.reached_provider() {
                        Reached::No => &outcomes.shed,
                        Reached::Yes => &outcomes.failed_answered,
                        _ => &outcomes.failed_maybe_reached,
                    },
                }
                .fetch_add(1, Ordering::Relaxed);
            });
        }
        launched = launched.max(due);
        // Reap finished sends so the set stays the size of what is in flight or queued.
        while sends.try_join_next().is_some() {}
    }
    while sends.join_next().await.is_some() {}
    // Until the last send ended: what was queued at the end counts against the goodput.
    let sending_time = started.elapsed();
    let (_, received, answered) = stand_in.counters.snapshot();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let goodput = load(&outcomes.sent) as f64 / sending_time.as_secs_f64();
    let reached_and_failed = load(&outcomes.failed_maybe_reached) + load(&outcomes.failed_answered);
    println!(
        "overload: {launched} sends; {} sent ({goodput:.0}/s = {:.1}% of sustainable), {} shed unsent \
         (Reached::No), {} failed after they may have reached the gateway, {} failed with an answer",
        load(&outcomes.sent),
        100.0 * goodput / sustainable,
        load(&outcomes.shed),
        load(&outcomes.failed_maybe_reached),
        load(&outcomes.failed_answered),
    );
    println!(
        "overload: the stand-in read {} requests and answered {}: {} abandoned in flight",
        received - received_before,
        answered - answered_before,
        (received - received_before).saturating_sub(answered - answered_before),
    );
    Ok((goodput / sustainable, reached_and_failed))
}

/// The realistic phases; prints the two figures the overload issue is judged by.
pub async fn run(settings: Settings) -> Result<(), BoxError> {
    let stand_in = stand_in(settings.latency_ms).await?;
    println!(
        "Realistic: a PhonePe stand-in answering after {}–{} ms over TLS (local CA), SDK with default \
         options against raw reqwest, closed loop, {} s per run, {} run(s) per side, alternating",
        settings.latency_ms.0,
        settings.latency_ms.1,
        settings.run.as_secs_f64(),
        settings.rounds,
    );
    let worst = closed_loops(&stand_in, &settings).await?;
    println!("(conns: connections each side opened, warm-up included; peak RSS: the whole process, stand-in included)");
    let (goodput, reached_and_failed) = overload(&stand_in, &settings).await?;
    println!("sdk/raw sends/s (worst of 1, 64, 256, 1,000 callers, TLS, real latency): {worst:.3}");
    println!(
        "overload at 2x: goodput {:.1}% of sustainable; sends failed after reaching the gateway: {reached_and_failed}",
        100.0 * goodput
    );
    Ok(())
}
