//! `--serve`: `otp serve` measured over HTTP, as a backend calls it.
//!
//! The service runs in a child process of this binary (`--serve-child`, hidden): one
//! `otp_serve::Server`, as `otp serve` runs it (request lines logged at `info`, to /dev/null
//! here; its Prometheus recorder installed), so its resident memory and CPU are its own. The
//! bench process holds the load (one reqwest client, keep-alive), the gateway (the sandbox, or
//! the TLS stand-in of [`crate::realistic`]) and, for the comparison, the in-process
//! `Verifier` on the same kind of store (the same redis-server, under the same key).
//!
//! 1. Start+check throughput at c=64 through the service against the same flow through an
//!    in-process `Verifier`, alternating A B B A: against the stand-in at 100–200 ms (the
//!    headline: where users live) and the sandbox (a gateway answering in microseconds: the
//!    service's own cost, magnified), each on the memory store and on Redis.
//! 2. Starts at a fixed open-loop 500/s for 10 s against the sandbox: the HTTP round trip's
//!    p50/p99/max, and the service's resident memory idle and after.
//! 3. Start+check flows open loop at twice the sustainable rate (the closed-loop figure of 1)
//!    for 10 s: what was answered, refused (status and problem code) or failed at the client.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{Check, Context, Event, MemoryStore, RedisStore, Store, StoreKey, Verifier};
use otp::{ClientOptions, Environment, Gateway, GatewayClient, HttpOptions, MobileNumber, OtpCode, RootCertificate};
use otp_core::reqwest;
use otp_serve::{ApiKey, NewApiKey, Scope, ServeConfig, Server, StoreSecret, WebhookEndpoint, WebhookSecret};
use otp_verifier::test_util::RedisServer;
use serde_json::{json, Value};

use crate::verifier::address;
use crate::{ms, BoxError, Run};

/// The tenant of the bench's API key (and of its webhook endpoint).
pub(crate) const TENANT: &str = "bench";
/// The store key of every service and in-process verifier here: one Redis, one key.
const STORE_KEY: [u8; 32] = [42; 32];
/// The webhook endpoint's secret (Standard Webhooks' test vector's).
pub(crate) const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Callers of the closed-loop runs.
const CALLERS: usize = 64;
/// What the in-process side keeps of its events on the memory store, as the service does.
const EVENTS_MAX_LEN: usize = 1_000_000;

/// How long each phase runs.
pub(crate) struct Settings {
    /// One measured closed-loop run against the stand-in (two per side, A B B A).
    standin_run: Duration,
    /// One measured closed-loop run against the sandbox.
    sandbox_run: Duration,
    /// The open-loop 500 starts/s run.
    steady: Duration,
    /// The overload run.
    overload: Duration,
}

impl Settings {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Self {
                standin_run: Duration::from_secs(1),
                sandbox_run: Duration::from_secs(1),
                steady: Duration::from_secs(2),
                overload: Duration::from_secs(2),
            }
        } else {
            Self {
                standin_run: Duration::from_secs(8),
                sandbox_run: Duration::from_secs(3),
                steady: Duration::from_secs(10),
                overload: Duration::from_secs(10),
            }
        }
    }
}

// ------------------------------------------------------------------ numbers and gateways

/// A fresh index per flow, across every phase: a distinct number and client address each, so
/// no guard limit or sandbox limit ever refuses one.
pub(crate) fn fresh() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The number of index `i`: 8 and nine digits (no sandbox magic number).
pub(crate) fn digits(i: usize) -> String {
    format!("8{:09}", i % 1_000_000_000)
}

/// Where the service's gateway client (and the in-process verifier's) sends: PhonePe's sandbox
/// client pointed at the sandbox in this process, or at the TLS stand-in.
#[derive(Clone)]
pub(crate) struct Upstream {
    url: String,
    ca_pem: Option<String>,
    /// The sandbox, whose inbox has the codes; `None` for the stand-in, which approves any.
    sandbox: Option<Arc<Sandbox>>,
}

impl Upstream {
    /// The sandbox in this process, with room for every number a run uses.
    pub(crate) async fn sandbox() -> Result<Self, BoxError> {
        let sandbox = Sandbox::start(SandboxConfig::default().max_numbers(4_000_000)).await?;
        Ok(Self { url: sandbox.base_url(), ca_pem: None, sandbox: Some(Arc::new(sandbox)) })
    }

    async fn stand_in(latency_ms: (u64, u64)) -> Result<Self, BoxError> {
        let stand_in = crate::realistic::stand_in(latency_ms).await?;
        Ok(Self { url: stand_in.base_url, ca_pem: Some(stand_in.ca_pem), sandbox: None })
    }

    fn client(&self) -> Result<GatewayClient, BoxError> {
        gateway_client(&self.url, self.ca_pem.as_deref())
    }

    /// The code `to` was sent (the sandbox's), or any code (the stand-in approves every one).
    pub(crate) fn code(&self, to: &str) -> Result<String, BoxError> {
        match &self.sandbox {
            Some(sandbox) => {
                Ok(sandbox.otps(to).first().map(|otp| otp.otp.clone()).ok_or_else(|| format!("no OTP sent to {to}"))?)
            }
            None => Ok("123456".to_owned()),
        }
    }
}

/// The PhonePe client both sides send through: the sandbox's credentials, default options,
/// the stand-in's CA when it has one.
fn gateway_client(url: &str, ca_pem: Option<&str>) -> Result<GatewayClient, BoxError> {
    let mut http = HttpOptions::default();
    if let Some(pem) = ca_pem {
        http = http.add_root_certificate(RootCertificate::from_pem(pem.as_bytes())?);
    }
    let options = ClientOptions::new().environment(Environment::Custom(url.to_owned())).http(http);
    Ok(otp::sandbox::client(Gateway::PhonePe, options)?)
}

// ------------------------------------------------------------------ the service, a child process

/// `--serve-child SPEC`: one `Server` as `otp serve` runs it, on loopback, PhonePe through
/// `gateway_url`, the memory store or `redis`, and a `webhook` endpoint if given. Prints
/// `listening: URL` and `api_key: KEY`, serves until its stdin closes, then stops.
pub(crate) async fn child(spec: &str) -> Result<(), BoxError> {
    let spec: Value = serde_json::from_str(spec)?;
    // As `otp serve`: a request line per request at info (the parent sends stderr to /dev/null).
    otp_serve::init_logging(otp_serve::LogFormat::Text);
    let url = spec["gateway_url"].as_str().ok_or("the spec has no gateway_url")?;
    let key = NewApiKey::generate()?;
    let scopes = [Scope::VerificationsWrite, Scope::VerificationsRead];
    let mut config = ServeConfig::new()
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .gateway(gateway_client(url, spec["ca_pem"].as_str())?)
        .api_key(ApiKey::from_digest("bench", TENANT, &key.sha256, &scopes)?);
    if let Some(redis) = spec["redis"].as_str() {
        config = config.redis_store(redis, StoreSecret::from_bytes(&STORE_KEY)?);
    }
    if let Some(hook) = spec["webhook"].as_str() {
        let endpoint = WebhookEndpoint::new("bench", TENANT, hook, WebhookSecret::parse(WEBHOOK_SECRET)?)?;
        let lanes = spec["lanes"].as_u64().map_or(otp_serve::DEFAULT_MAX_IN_FLIGHT, |n| n as usize);
        config = config.webhook(endpoint.max_in_flight(lanes)?);
    }
    let server = Server::start(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening: {}", server.base_url())?;
        writeln!(stdout, "api_key: {}", key.key.expose_secret())?;
        stdout.flush()?;
    }
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    server.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

/// A running service child. Stopped (stdin closed, then killed if need be) by [`Service::stop`]
/// or when dropped.
pub(crate) struct Service {
    child: Child,
    stdin: Option<ChildStdin>,
    base: String,
    key: String,
}

impl Service {
    pub(crate) async fn start(
        upstream: &Upstream,
        redis: Option<&RedisServer>,
        webhook: Option<&str>,
    ) -> Result<Self, BoxError> {
        Self::start_with_lanes(upstream, redis, webhook, otp_serve::DEFAULT_MAX_IN_FLIGHT).await
    }

    /// [`Service::start`] with the webhook endpoint's `max_in_flight` set.
    pub(crate) async fn start_with_lanes(
        upstream: &Upstream,
        redis: Option<&RedisServer>,
        webhook: Option<&str>,
        lanes: usize,
    ) -> Result<Self, BoxError> {
        let spec = json!({
            "gateway_url": upstream.url,
            "ca_pem": upstream.ca_pem,
            "redis": redis.map(RedisServer::url),
            "webhook": webhook,
            "lanes": lanes,
        });
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve-child")
            .arg(spec.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("the service's stdout")?;
        let lines = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            let mut reader = std::io::BufReader::new(stdout);
            let mut lines = Vec::new();
            for _ in 0..2 {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    break;
                }
                lines.push(line.trim().to_owned());
            }
            Ok(lines)
        })
        .await??;
        let mut service = Self { child, stdin, base: String::new(), key: String::new() };
        for line in &lines {
            if let Some(base) = line.strip_prefix("listening: ") {
                service.base = base.to_owned();
            } else if let Some(key) = line.strip_prefix("api_key: ") {
                service.key = key.to_owned();
            }
        }
        if service.base.is_empty() || service.key.is_empty() {
            return Err(format!("the service did not start: {lines:?}").into());
        }
        Ok(service)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A memory figure of the service's /proc status (`VmRSS:`, `VmHWM:`), in MiB.
    pub(crate) fn status_mib(&self, field: &str) -> f64 {
        crate::realistic::status_file_mib(&format!("/proc/{}/status", self.pid()), field)
    }

    /// CPU time of every thread of the service so far.
    pub(crate) fn cpu(&self) -> Duration {
        crate::tasks_cpu(&format!("/proc/{}/task", self.pid()))
    }

    pub(crate) fn api(&self, timeout: Duration) -> Result<Api, BoxError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()?;
        Ok(Api {
            http,
            start_url: format!("{}/v1/verifications", self.base).into(),
            base: self.base.clone().into(),
            auth: format!("Bearer {}", self.key).into(),
        })
    }

    /// Closes its stdin (it drains and exits), and kills it if it has not within 5 s.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin.take());
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------------ the HTTP client

/// The service's API, as a backend calls it: one reqwest client (keep-alive, a pool of as many
/// connections as requests in flight), JSON bodies, the answer read and parsed whole.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    start_url: Arc<str>,
    base: Arc<str>,
    auth: Arc<str>,
}

/// An answer of the service.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Answer {
    /// The public id a start answered.
    pub(crate) fn id(&self) -> Result<&str, BoxError> {
        self.body["id"].as_str().ok_or_else(|| format!("no id in {}", self.body).into())
    }

    /// The problem code of a refusal.
    fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }
}

impl Api {
    async fn post(&self, url: &str, body: String) -> Result<Answer, reqwest::Error> {
        let response = self
            .http
            .post(url)
            .header("authorization", &*self.auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }

    /// `POST /v1/verifications`: PhonePe to `to`, for an end user at `ip`.
    pub(crate) async fn start(&self, to: &str, ip: IpAddr) -> Result<Answer, reqwest::Error> {
        self.post(&self.start_url, format!(r#"{{"gateway":"phonepe","to":"{to}","client_ip":"{ip}"}}"#)).await
    }

    /// The sum of the service's Prometheus samples whose name contains `name` (`/metrics`, on
    /// the API's address).
    pub(crate) async fn metric(&self, name: &str) -> Result<f64, BoxError> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await?.text().await?;
        Ok(text
            .lines()
            .filter(|line| !line.starts_with('#') && line.split(['{', ' ']).next().is_some_and(|n| n.contains(name)))
            .filter_map(|line| line.rsplit(' ').next().and_then(|value| value.parse::<f64>().ok()))
            .sum())
    }

    /// `POST /v1/verifications/{id}/check`.
    pub(crate) async fn check(&self, id: &str, code: &str) -> Result<Answer, reqwest::Error> {
        self.post(&format!("{}/v1/verifications/{id}/check", self.base), format!(r#"{{"code":"{code}"}}"#)).await
    }
}

/// One start+check through the service that must succeed (201, then 200); returns the public
/// id with the instants each answer arrived.
pub(crate) async fn http_flow(
    api: &Api,
    upstream: &Upstream,
    i: usize,
) -> Result<(String, Instant, Instant), BoxError> {
    let to = digits(i);
    let started = api.start(&to, address(i)).await?;
    let start_answered = Instant::now();
    if started.status != 201 {
        return Err(format!("a start answered {}: {}", started.status, started.body).into());
    }
    let id = started.id()?.to_owned();
    let checked = api.check(&id, &upstream.code(&to)?).await?;
    let check_answered = Instant::now();
    if checked.status != 200 {
        return Err(format!("a check answered {}: {}", checked.status, checked.body).into());
    }
    Ok((id, start_answered, check_answered))
}

/// The same start+check through an in-process verifier.
async fn in_process_flow<S: Store>(verifier: &Verifier<S>, upstream: &Upstream, i: usize) -> Result<(), BoxError> {
    let mobile: MobileNumber = digits(i).parse()?;
    let context = Context::new(address(i)).tenant(TENANT)?;
    let started = verifier.start(otp::phonepe::SendOtpRequest::new(mobile).into(), &context).await?;
    let code = upstream.code(mobile.expose_digits())?;
    match verifier.check(&started.id, OtpCode::parse(&code)?).await? {
        Check::Verified { .. } => Ok(()),
        other => Err(format!("the right code answered {other:?}").into()),
    }
}

// ------------------------------------------------------------------ open loop

/// What an open-loop run issued and got back.
pub(crate) struct OpenLoop<T> {
    pub(crate) results: Vec<T>,
    /// How late the bench issued its latest-issued job (its own lag: it should stay near the tick).
    pub(crate) max_lag: Duration,
    /// Until the last job ended.
    pub(crate) elapsed: Duration,
}

/// Issues `job(k)` at `rate` per second for `duration`, on schedule whatever the answers (a
/// 1 ms tick; a late tick issues what is due at once), and waits for every job to end.
pub(crate) async fn open_loop<F, Fut, T>(rate: f64, duration: Duration, job: F) -> Result<OpenLoop<T>, BoxError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut jobs = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut issued, mut max_lag) = (0usize, Duration::ZERO);
    while started.elapsed() < duration {
        ticker.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        if due > issued {
            let scheduled = started + Duration::from_secs_f64((due - 1) as f64 / rate);
            max_lag = max_lag.max(tokio::time::Instant::now().saturating_duration_since(scheduled));
        }
        for k in issued..due {
            jobs.spawn(job(k));
        }
        issued = issued.max(due);
        while let Some(done) = jobs.try_join_next() {
            results.push(done?);
        }
    }
    while let Some(done) = jobs.join_next().await {
        results.push(done?);
    }
    Ok(OpenLoop { results, max_lag, elapsed: started.elapsed() })
}

/// p50, p99 and max of `latencies`.
pub(crate) fn quantiles(mut latencies: Vec<Duration>) -> (Duration, Duration, Duration) {
    latencies.sort_unstable();
    let n = latencies.len();
    let at = |q: f64| latencies.get(((n as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
    (at(0.50), at(0.99), latencies.last().copied().unwrap_or_default())
}

// ------------------------------------------------------------------ 1. throughput

/// Runs `serve` and `local` closed loop at c=64, A B B A, `rounds` runs each after a warm-up.
async fn alternate<A, FA, B, FB>(run: Duration, rounds: usize, serve: A, local: B) -> Result<(Run, Run), BoxError>
where
    A: Fn() -> FA + Clone + Send + Sync + 'static,
    FA: Future<Output = Result<(), BoxError>> + Send,
    B: Fn() -> FB + Clone + Send + Sync + 'static,
    FB: Future<Output = Result<(), BoxError>> + Send,
{
    use crate::realistic::closed_loop;
    let warm = run.min(Duration::from_secs(1));
    closed_loop(CALLERS, warm, serve.clone()).await?;
    closed_loop(CALLERS, warm, local.clone()).await?;
    let (mut served, mut in_process) = (Run::default(), Run::default());
    for round in 0..rounds * 2 {
        if round % 4 == 0 || round % 4 == 3 {
            served.add(closed_loop(CALLERS, run, serve.clone()).await?);
        } else {
            in_process.add(closed_loop(CALLERS, run, local.clone()).await?);
        }
    }
    Ok((served, in_process))
}

/// Start+check through the service (on Redis when `redis` is given, else on the memory store)
/// against the same flow through `verifier`; prints both and the ratio, returns the service's
/// flows/s and the ratio.
async fn compare<S: Store>(
    label: &str,
    upstream: &Upstream,
    redis: Option<&RedisServer>,
    verifier: Verifier<S>,
    run: Duration,
) -> Result<(f64, f64), BoxError> {
    let service = Service::start(upstream, redis, None).await?;
    let api = service.api(Duration::from_secs(30))?;
    let up = upstream.clone();
    let serve_job = move || {
        let (api, up) = (api.clone(), up.clone());
        async move { http_flow(&api, &up, fresh()).await.map(drop) }
    };
    let up = upstream.clone();
    let local_job = move || {
        let (verifier, up) = (verifier.clone(), up.clone());
        async move { in_process_flow(&verifier, &up, fresh()).await }
    };
    let (cpu_before, bench_before) = (service.cpu(), crate::process_cpu());
    let (served, in_process) = alternate(run, 2, serve_job, local_job).await?;
    let (service_cpu, bench_cpu) = (service.cpu() - cpu_before, crate::process_cpu() - bench_before);
    let (served_flows, in_process_flows) = (served.latencies.len(), in_process.latencies.len());
    let (served, in_process) = (served.stats(), in_process.stats());
    let ratio = served.requests_per_second / in_process.requests_per_second;
    println!(
        "{label:<17} serve {:>6.0} flows/s (p50 {:>5.1} ms, p99 {:>5.1} ms)  in-process {:>6.0} flows/s (p50 {:>5.1} ms, p99 {:>5.1} ms)  serve/in-process {ratio:.3}",
        served.requests_per_second,
        ms(served.p50),
        ms(served.p99),
        in_process.requests_per_second,
        ms(in_process.p50),
        ms(in_process.p99),
    );
    println!(
        "{:<17} CPU per flow: the service {:.0} µs; the bench process {:.0} µs (averaged over both sides' flows: client, gateway, in-process verifier)",
        "",
        service_cpu.as_secs_f64() * 1e6 / served_flows.max(1) as f64,
        bench_cpu.as_secs_f64() * 1e6 / (served_flows + in_process_flows).max(1) as f64,
    );
    service.stop().await;
    Ok((served.requests_per_second, ratio))
}

/// The in-process side on the memory store keeps its events in a bounded log in process, as
/// the service keeps its own.
fn event_log() -> impl Fn(Event) + Send + Sync + 'static {
    let log = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    move |event: Event| {
        let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.push_back(event.to_json());
        if log.len() > EVENTS_MAX_LEN {
            log.pop_front();
        }
    }
}

/// Both sides on the memory store.
async fn compare_memory(label: &str, upstream: &Upstream, run: Duration) -> Result<(f64, f64), BoxError> {
    let verifier = Verifier::new(upstream.client()?, MemoryStore::new()).with_events(event_log());
    compare(label, upstream, None, verifier, run).await
}

/// Both sides on `redis`: the in-process verifier opens the store the service opens (same
/// server, key and event stream).
async fn compare_redis(
    label: &str,
    upstream: &Upstream,
    redis: &RedisServer,
    run: Duration,
) -> Result<(f64, f64), BoxError> {
    let store = RedisStore::open(&redis.url(), StoreKey::from_bytes(&STORE_KEY)?)?.with_event_stream(EVENTS_MAX_LEN)?;
    compare(label, upstream, Some(redis), Verifier::new(upstream.client()?, store), run).await
}

// ------------------------------------------------------------------ 2. latency and memory, 3. overload

/// The open-loop rate of the latency run.
const STEADY_RATE: f64 = 500.0;
/// How long a client of the overload run waits for an answer.
const OVERLOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How one request of an open-loop run ended: a status (and problem code), or no answer.
fn outcome(result: &Result<Answer, reqwest::Error>) -> String {
    match result {
        Ok(answer) => match answer.code() {
            Some(code) => format!("{} {code}", answer.status),
            None => answer.status.to_string(),
        },
        Err(error) if error.is_timeout() => format!("no answer: client timeout ({} s)", OVERLOAD_TIMEOUT.as_secs()),
        Err(error) if error.is_connect() => "no answer: connect failed".to_owned(),
        Err(error) => {
            // The innermost cause says what happened to the connection (closed, reset).
            let mut cause: &dyn std::error::Error = error;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            format!("no answer: {cause}")
        }
    }
}

/// Prints each outcome's count and its latencies.
fn tally(label: &str, outcomes: Vec<(String, Duration)>) {
    let total = outcomes.len();
    let mut by: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for (outcome, latency) in outcomes {
        by.entry(outcome).or_default().push(latency);
    }
    println!("  {label}: {total}");
    for (outcome, latencies) in by {
        let n = latencies.len();
        let (p50, p99, max) = quantiles(latencies);
        println!("    {outcome:<44} {n:>7}  p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms", ms(p50), ms(p99), ms(max));
    }
}

/// What the latency run measured, for the summary.
struct Steady {
    p99: Duration,
    idle_mib: f64,
    after_mib: f64,
}

/// A fresh service against the sandbox: its idle RSS, starts at 500/s open loop (after a 1 s
/// warm-up at the same rate), its RSS after; then [`overload`] on the same service.
async fn steady(
    label: &str,
    upstream: &Upstream,
    redis: Option<&RedisServer>,
    settings: &Settings,
    sustainable: f64,
) -> Result<Steady, BoxError> {
    let service = Service::start(upstream, redis, None).await?;
    // Let it settle (its first sweep, the store's connection) before reading its idle size.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_mib = service.status_mib("VmRSS:");
    let api = service.api(Duration::from_secs(10))?;
    let start = |api: Api| {
        move |_k: usize| {
            let api = api.clone();
            async move {
                let i = fresh();
                let sent = Instant::now();
                let answer = api.start(&digits(i), address(i)).await;
                (outcome(&answer), sent.elapsed())
            }
        }
    };
    open_loop(STEADY_RATE, Duration::from_secs(1), start(api.clone())).await?;
    let run = open_loop(STEADY_RATE, settings.steady, start(api)).await?;
    let after_mib = service.status_mib("VmRSS:");
    let peak_mib = service.status_mib("VmHWM:");
    let issued = run.results.len();
    let created: Vec<Duration> = run.results.iter().filter(|(o, _)| o == "201").map(|(_, d)| *d).collect();
    let refused = issued - created.len();
    let (p50, p99, max) = quantiles(run.results.iter().map(|(_, d)| *d).collect());
    println!(
        "{label:<7} {STEADY_RATE:.0} starts/s open loop for {} s: {issued} starts, {} answered 201, {refused} otherwise; \
         HTTP round trip p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (the bench issued each at most {:.1} ms late)",
        settings.steady.as_secs(),
        created.len(),
        ms(p50),
        ms(p99),
        ms(max),
        ms(run.max_lag),
    );
    println!(
        "{label:<7} service RSS (the child process: one Server, nothing else): {idle_mib:.1} MiB idle, {after_mib:.1} MiB after \
         the run (peak {peak_mib:.1} MiB; {} sessions started in it)",
        issued + STEADY_RATE as usize,
    );
    overload(label, &service, upstream, sustainable, settings).await?;
    service.stop().await;
    Ok(Steady { p99, idle_mib, after_mib })
}

/// Start+check flows open loop at twice `sustainable` (flows/s) for the run; prints how every
/// start and check ended, with latencies, and the service's memory after.
async fn overload(
    label: &str,
    service: &Service,
    upstream: &Upstream,
    sustainable: f64,
    settings: &Settings,
) -> Result<(), BoxError> {
    let rate = 2.0 * sustainable;
    // A client of its own: its pool opens as many connections as requests wait.
    let api = service.api(OVERLOAD_TIMEOUT)?;
    let up = upstream.clone();
    let job = move |k: usize| {
        let (api, up) = (api.clone(), up.clone());
        async move {
            let i = fresh();
            let to = digits(i);
            let sent = Instant::now();
            let started = api.start(&to, address(i)).await;
            let start = (outcome(&started), sent.elapsed());
            let id = match &started {
                Ok(answer) if answer.status == 201 => answer.id().ok().map(str::to_owned),
                _ => None,
            };
            let check = match (id, up.code(&to)) {
                (Some(id), Ok(code)) => {
                    let sent = Instant::now();
                    let checked = api.check(&id, &code).await;
                    Some((outcome(&checked), sent.elapsed()))
                }
                (Some(_), Err(_)) => Some(("bench: the sandbox has no code".to_owned(), Duration::ZERO)),
                (None, _) => None,
            };
            (k, start, check)
        }
    };
    let cpu_before = service.cpu();
    let metrics = service.api(Duration::from_secs(30))?;
    let refused_before = metrics.metric("connections_refused").await?;
    let run = open_loop(rate, settings.overload, job).await?;
    let refused = metrics.metric("connections_refused").await? - refused_before;
    let service_cpu = service.cpu() - cpu_before;
    let issued = run.results.len();
    println!(
        "{label:<7} overload: sustainable {sustainable:.0} start+check/s (closed loop, c=64, above); {rate:.0}/s open loop \
         for {} s: {issued} flows issued (the bench issued each at most {:.0} ms late), the last answered {:.1} s after the first was issued",
        settings.overload.as_secs(),
        ms(run.max_lag),
        run.elapsed.as_secs_f64(),
    );
    let mut starts = Vec::with_capacity(issued);
    let mut checks = Vec::with_capacity(issued);
    let (mut first_second, mut last_second) = (Vec::new(), Vec::new());
    let last_from = ((settings.overload.as_secs_f64() - 1.0).max(0.0) * rate) as usize;
    let mut approved = 0usize;
    for (k, start, check) in run.results {
        if start.0 == "201" {
            if (k as f64) < rate {
                first_second.push(start.1);
            } else if k >= last_from {
                last_second.push(start.1);
            }
        }
        starts.push(start);
        if let Some(check) = check {
            approved += usize::from(check.0 == "200");
            checks.push(check);
        }
    }
    let refusals = starts.iter().chain(&checks).filter(|(o, _)| o.starts_with("429") || o.starts_with("503")).count();
    tally("starts", starts);
    tally("checks", checks);
    let goodput = approved as f64 / run.elapsed.as_secs_f64();
    println!(
        "{label:<7} overload: {approved} flows approved = {goodput:.0}/s until the last answer ({:.0}% of sustainable); \
         starts answered 201: p50 {:.0} ms for those issued in the first second, {:.0} ms in the last; service CPU {:.1} s of {:.1} s",
        100.0 * goodput / sustainable,
        ms(quantiles(first_second).0),
        ms(quantiles(last_second).0),
        service_cpu.as_secs_f64(),
        run.elapsed.as_secs_f64(),
    );
    if refusals == 0 {
        println!(
            "{label:<7} overload: no answer refused work for load (no 429 or 503): the service has no load shedding; the \
             excess waited in its queues (the latencies above)"
        );
    } else {
        println!("{label:<7} overload: {refusals} answers refused work (429 or 503, codes above)");
    }
    println!(
        "{label:<7} overload: connections the service closed as they arrived, past its cap of {} served + as many on a 1 s \
         header timeout (otp_serve_connections_refused): {refused:.0}; a client sees those as resets",
        otp_serve::DEFAULT_MAX_CONNECTIONS
    );
    println!(
        "{label:<7} service RSS after the overload: {:.1} MiB (peak {:.1} MiB)",
        service.status_mib("VmRSS:"),
        service.status_mib("VmHWM:")
    );
    Ok(())
}

/// `--serve`.
pub(crate) async fn run(quick: bool) -> Result<(), BoxError> {
    let settings = Settings::new(quick);
    let latency_ms = crate::realistic::Settings::new(false, quick).latency_ms;
    let redis = RedisServer::start()?;
    let sandbox = Upstream::sandbox().await?;
    let stand_in = Upstream::stand_in(latency_ms).await?;
    println!(
        "otp serve: one Server in a child process of the bench (request lines logged at info, to /dev/null), called \
         over loopback HTTP by one reqwest client (keep-alive); a flow is POST /v1/verifications then POST …/check, \
         PhonePe, a distinct number and client address each, default guard rules; Redis: a redis-server of its own"
    );
    println!(
        "start+check at c={CALLERS}, the service against an in-process Verifier (same gateway client, same store: the same \
         redis-server and key; on memory its events kept in process as the service keeps them), A B B A, two {} s runs \
         each against the TLS stand-in at {}–{} ms, two {} s runs each against the sandbox in the bench process:",
        settings.standin_run.as_secs(),
        latency_ms.0,
        latency_ms.1,
        settings.sandbox_run.as_secs()
    );
    let (_, standin_memory) = compare_memory("stand-in, memory", &stand_in, settings.standin_run).await?;
    let (_, standin_redis) = compare_redis("stand-in, redis", &stand_in, &redis, settings.standin_run).await?;
    let (sandbox_memory, _) = compare_memory("sandbox, memory", &sandbox, settings.sandbox_run).await?;
    let (sandbox_redis, _) = compare_redis("sandbox, redis", &sandbox, &redis, settings.sandbox_run).await?;
    println!(
        "open loop against the sandbox: starts at {STEADY_RATE:.0}/s (a fresh service each, 1 s warm-up), then start+check \
         flows at twice the closed-loop rate above on the same service (clients wait up to {} s):",
        OVERLOAD_TIMEOUT.as_secs()
    );
    let memory = steady("memory", &sandbox, None, &settings, sandbox_memory).await?;
    let on_redis = steady("redis", &sandbox, Some(&redis), &settings, sandbox_redis).await?;
    println!(
        "serve/in-process start+check/s (TLS stand-in {}–{} ms, c={CALLERS}): memory {standin_memory:.3}, redis {standin_redis:.3} (goal ≥ 0.97)",
        latency_ms.0, latency_ms.1
    );
    println!(
        "start round trip at {STEADY_RATE:.0}/s open loop, p99: memory {:.2} ms, redis {:.2} ms (goal ≤ 5 ms)",
        ms(memory.p99),
        ms(on_redis.p99)
    );
    println!(
        "service RSS idle → after {STEADY_RATE:.0}/s: memory {:.1} → {:.1} MiB, redis {:.1} → {:.1} MiB (goal ≤ 64 MiB)",
        memory.idle_mib, memory.after_mib, on_redis.idle_mib, on_redis.after_mib
    );
    Ok(())
}
