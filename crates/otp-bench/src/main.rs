//! # otp-bench
//!
//! `cargo xtask bench` runs this in release mode. First the headline, where users live
//! ([`realistic`]): a gateway stand-in answering after 100–200 ms over TLS, the SDK with default
//! options against raw reqwest at 1, 64, 256 and 1,000 callers, then an open-loop overload at
//! twice the sustainable rate (`--long` for 15 s runs and a 60 s overload;
//! `OTP_BENCH_LATENCY_MS=150-300` for another latency). Then the overhead on loopback, where
//! a server answers in microseconds: against one local server in one process, it
//! sends N OTPs per gateway through the SDK and through a hand-written minimal reqwest call
//! that puts the same bytes on the wire, at concurrency 1 and 64, and prints requests/s, the
//! SDK/raw ratio and p50/p99 latency; then the sandbox's throughput beside a wiremock server
//! answering the same requests, and the raw call against itself (the A/A noise floor). The last
//! line is the worst gateway's SDK/raw ratio at c=64.
//!
//! Between the two, the verifier's figures ([`verifier`]): guard decisions per second on the
//! memory store and on a real Redis, memory under millions of numbers, start+check against the
//! sandbox at c=64, and Redis round trips per start and per check.
//!
//! - `otp-bench --quick` runs fewer requests (a smoke run).
//! - `otp-bench --verifier` runs only the verifier's figures.
//! - `otp-bench --serve` runs `otp serve`'s figures ([`serve`]; not in the default run):
//!   start+check through the service over HTTP against an in-process verifier (TLS stand-in
//!   and sandbox, memory and Redis), start latency at 500/s open loop, the service's memory,
//!   and an overload at twice its sustainable rate.
//! - `otp-bench --webhooks` runs the webhooks' figures ([`webhooks`]; not in the default run):
//!   events delivered per second by one replica on Redis, and the delay from state change to
//!   delivery at 200 events/s.
//! - `otp-bench --compare GATEWAY` runs one gateway's comparison three times
//!   (`OTP_BENCH_SENDS` sends each, default 200,000): to check one change quickly.
//! - `otp-bench --soak BASE_URL` sends `OTP_BENCH_SENDS` AOPay OTPs to distinct numbers to a
//!   running `otp sandbox --limit-window 0 --aopay-otp-validity 0` (watch its memory; a default
//!   sandbox answers 503 once `--max-numbers` live numbers fill it, as it should).
//! - `otp-bench --profile GATEWAY` sends at c=64 for a profiler to attach (`--profile-raw
//!   GATEWAY`: the raw calls only).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)] // A benchmark's output is its product.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use base64::Engine as _;
use clap::Parser as _;
use otp::{Environment, Gateway, GatewayClient, IdentityNumber, MobileNumber, SendOtpRequest};
use otp_core::operation::Operation as _;
use otp_core::reqwest;
use sha2::{Digest, Sha256};

mod realistic;
mod serve;
mod verifier;
mod webhooks;

const MOBILE: &str = "9876543210";
const PHONEPE_SALT: &str = "bench-salt-key";
const PHONEPE_MERCHANT: &str = "BENCHMERCHANT";
/// SDK and raw alternate this many times per measurement.
const ROUNDS: usize = 40;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a run measured.
struct Stats {
    cpu_per_send: Duration,
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `job(i)` for i in 0..n with `concurrency` workers; every job must succeed.
async fn measure<F, Fut>(n: usize, concurrency: usize, job: F) -> Result<Run, BoxError>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (job, next) = (job.clone(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(n / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, BoxError>(latencies);
                }
                let sent = Instant::now();
                job(i).await?;
                latencies.push(sent.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(n);
    while let Some(worker) = workers.join_next().await {
        latencies.extend(worker??);
    }
    let elapsed = started.elapsed();
    Ok(Run { elapsed, latencies, cpu: process_cpu().saturating_sub(cpu_before) })
}

/// One measured batch.
#[derive(Default)]
struct Run {
    cpu: Duration,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn add(&mut self, other: Run) {
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
    }

    fn stats(mut self) -> Stats {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let at = |q: f64| self.latencies.get(((n as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
        Stats {
            requests_per_second: n as f64 / self.elapsed.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
            cpu_per_send: Duration::from_secs_f64(self.cpu.as_secs_f64() / n.max(1) as f64),
        }
    }
}

/// Two jobs measured in alternating rounds, so drift on a shared 2-core machine (frequency,
/// neighbours, the allocator warming) lands on both sides alike. The ratio is the median of
/// the rounds' own ratios: one noisy round cannot swing it.
struct Comparison {
    first: Stats,
    second: Stats,
    ratio: f64,
}

async fn interleaved<A, FA, B, FB>(
    n: usize,
    concurrency: usize,
    rounds: usize,
    a: A,
    b: B,
) -> Result<Comparison, BoxError>
where
    A: Fn(usize) -> FA + Clone + Send + Sync + 'static,
    FA: Future<Output = Result<(), BoxError>> + Send,
    B: Fn(usize) -> FB + Clone + Send + Sync + 'static,
    FB: Future<Output = Result<(), BoxError>> + Send,
{
    let per_round = n / rounds;
    let (mut first, mut second) = (Run::default(), Run::default());
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Alternate which goes first, too.
        let (run_a, run_b) = if round % 2 == 0 {
            let run_a = measure(per_round, concurrency, a.clone()).await?;
            (run_a, measure(per_round, concurrency, b.clone()).await?)
        } else {
            let run_b = measure(per_round, concurrency, b.clone()).await?;
            (measure(per_round, concurrency, a.clone()).await?, run_b)
        };
        // Same request count per side: the throughput ratio is the inverse ratio of times.
        ratios.push(run_b.elapsed.as_secs_f64() / run_a.elapsed.as_secs_f64());
        first.add(run_a);
        second.add(run_b);
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(Comparison { first: first.stats(), second: second.stats(), ratio })
}

// ------------------------------------------------------------------ the local server

const PHONEPE_ANSWER: &str = r#"{"success":true,"code":"SUCCESS","message":"Your request has been successfully completed.","data":{"merchantId":"BENCHMERCHANT","otpToken":"OTP7c8d7de8-5d16-46b7-a269-45afeafb5f8e"}}"#;
const PAYTM_ANSWER: &str = r#"{"status":"SUCCESS","message":"OTP sent to phone","responseCode":"BE1400001","state_token":"e3b0c442-98fc-1c14"}"#;
const ISERVEU_ANSWER: &str = r#"{"status":"SUCCESS","statusCode":"0","statusDesc":"OTP Sent Successfully.","paramA":"","paramB":"","paramC":""}"#;
const AOPAY_ANSWER: &str = r#"{"status":true,"response_code":1,"message":"OTP has been send to the remitter mobile number.","stateresp":"123456789"}"#;

/// A server that reads each request and answers each gateway's fixed success: it costs the
/// same whoever calls it, so the difference measured is the client's.
async fn fixed_server() -> Result<String, BoxError> {
    fn answer(body: &'static str) -> axum::routing::MethodRouter {
        post(move |_request: axum::body::Bytes| async move { ([("content-type", "application/json")], body) })
    }
    let router = axum::Router::new()
        .route("/v3/merchant/otp/send", answer(PHONEPE_ANSWER))
        .route("/v4/signin/otp/sv1/", answer(PAYTM_ANSWER))
        .route("/common/dmt-lite/unified/otp/send", answer(ISERVEU_ANSWER))
        .route("/api/AOP/DMTV1/TransactionSendOtp", answer(AOPAY_ANSWER));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

// ------------------------------------------------------------------ the SDK side

fn mobile() -> Result<MobileNumber, BoxError> {
    Ok(MOBILE.parse()?)
}

/// Every gateway's client and request, as the bench sends them (one arm each: a new gateway
/// does not compile without its own).
fn sdk_pairs(base: &str) -> Result<Vec<(Gateway, GatewayClient, SendOtpRequest)>, BoxError> {
    Gateway::ALL.into_iter().map(|gateway| sdk_pair(gateway, base)).collect()
}

fn sdk_pair(gateway: Gateway, base: &str) -> Result<(Gateway, GatewayClient, SendOtpRequest), BoxError> {
    let env = || Environment::Custom(base.to_owned());
    Ok(match gateway {
        Gateway::PhonePe => (
            Gateway::PhonePe,
            otp::phonepe::PhonePeClient::builder()
                .merchant_id(PHONEPE_MERCHANT)
                .salt_key(PHONEPE_SALT)
                .salt_index(1)
                .environment(env())
                .build()?
                .into(),
            otp::phonepe::SendOtpRequest::new(mobile()?).into(),
        ),
        Gateway::Paytm => (
            Gateway::Paytm,
            otp::paytm::PaytmClient::builder()
                .client_id("bench-client")
                .client_secret("bench-secret")
                .environment(env())
                .build()?
                .into(),
            otp::paytm::SendOtpRequest::new(mobile()?, "device-0042").scope("paytm").into(),
        ),
        Gateway::IServeU => (
            Gateway::IServeU,
            otp::iserveu::IServeUClient::builder()
                .client_id("bench-client")
                .client_secret("bench-secret")
                .username("benchuser")
                .environment(env())
                .build()?
                .into(),
            otp::iserveu::TransactionOtpRequest::new(mobile()?, "AADHAAR", "REF123456", otp::Amount::parse("1500.50")?)
                .ovd_data(IdentityNumber::new("765386439745"))
                .into(),
        ),
        Gateway::AOPay => (
            Gateway::AOPay,
            otp::aopay::AOPayClient::builder().registration_id("AOP-554").environment(env()).build()?.into(),
            otp::aopay::SendOtpRequest::new(
                mobile()?,
                "BENE1001",
                otp::aopay::TransactionType::Imps,
                otp::Amount::parse("2500")?,
                otp::aopay::Remitter::new(
                    "12 MG Road, Bengaluru",
                    otp::Pincode::parse("560001")?,
                    otp::aopay::DateOfBirth::parse("20/08/1990")?,
                    otp::Coordinates::new("12.9716", "77.5946")?,
                )?,
            )?
            .into(),
        ),
    })
}

/// The exact request the SDK would send, to prove the raw call matches it byte for byte.
fn sdk_wire_body(client: &GatewayClient, request: &SendOtpRequest) -> Result<Vec<u8>, BoxError> {
    let wire = match (client, request) {
        (GatewayClient::PhonePe(c), SendOtpRequest::PhonePe(r)) => c.wire_request(r)?,
        (GatewayClient::Paytm(c), SendOtpRequest::Paytm(r)) => c.wire_request(r)?,
        (GatewayClient::IServeU(c), SendOtpRequest::IServeU(r)) => c.wire_request(r)?,
        (GatewayClient::AOPay(c), SendOtpRequest::AOPay(r)) => c.wire_request(r)?,
        _ => return Err("mismatched pair".into()),
    };
    Ok(wire.body().to_vec())
}

// ------------------------------------------------------------------ the raw side

/// A hand-written call: build the same bytes, POST them, read and parse the JSON answer.
#[derive(Clone)]
struct RawCall {
    http: reqwest::Client,
    url: String,
    gateway: Gateway,
    basic: String,
}

impl RawCall {
    fn new(http: reqwest::Client, base: &str, gateway: Gateway) -> Self {
        let path = match gateway {
            Gateway::PhonePe => "/v3/merchant/otp/send",
            Gateway::Paytm => "/v4/signin/otp/sv1/?locale=en-IN",
            Gateway::IServeU => "/common/dmt-lite/unified/otp/send",
            Gateway::AOPay => "/api/AOP/DMTV1/TransactionSendOtp",
        };
        let basic = base64::engine::general_purpose::STANDARD.encode("bench-client:bench-secret");
        Self { http, url: format!("{base}{path}"), gateway, basic: format!("Basic {basic}") }
    }

    /// The body and headers, built per call as the SDK builds them per call.
    fn request(&self, mobile: &str) -> (Vec<u8>, Vec<(&'static str, String)>) {
        match self.gateway {
            Gateway::PhonePe => {
                let payload = format!(r#"{{"merchantId":"{PHONEPE_MERCHANT}","mobileNumber":"{mobile}"}}"#);
                let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
                let digest = Sha256::digest(format!("{encoded}/v3/merchant/otp/send{PHONEPE_SALT}"));
                let hex = hex::encode(digest);
                let body = format!(r#"{{"request":"{encoded}"}}"#).into_bytes();
                (body, vec![("x-verify", format!("{hex}###1"))])
            }
            Gateway::Paytm => (
                format!(r#"{{"phone":"{mobile}","scopes":["paytm"]}}"#).into_bytes(),
                vec![("authorization", self.basic.clone()), ("x-device-identifier", "device-0042".into())],
            ),
            Gateway::IServeU => (
                format!(
                    r#"{{"customerMobileNumber":"{mobile}","externalRefNumber":"REF123456","requestedAmount":"1500.50","username":"benchuser","otpType":"2","ovdType":"AADHAAR","ovdData":"765386439745"}}"#
                )
                .into_bytes(),
                vec![("client_id", "bench-client".into()), ("client_secret", "bench-secret".into())],
            ),
            Gateway::AOPay => (
                format!(
                    r#"{{"MobileNumber":"{mobile}","BeneID":"BENE1001","Txntype":"IMPS","Amount":"2500","Pincode":"560001","Address":"12 MG Road, Bengaluru","DOB":"20/08/1990","Latitude":"12.9716","Longitute":"77.5946","RegistrationID":"AOP-554"}}"#
                )
                .into_bytes(),
                vec![],
            ),
        }
    }

    async fn send(&self, mobile: &str) -> Result<(), BoxError> {
        let (body, headers) = self.request(mobile);
        let mut request = self.http.post(&self.url).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()).into());
        }
        let answer: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
        if answer.is_null() {
            return Err("empty answer".into());
        }
        Ok(())
    }
}

fn raw_client() -> Result<reqwest::Client, BoxError> {
    // The SDK's user agent, so both sides put the same header bytes on the wire.
    let user_agent = format!("otp-rs/{}", env!("CARGO_PKG_VERSION"));
    // No environment proxy, as the SDK's own client has none for a loopback base.
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(user_agent)
        .build()?)
}

// ------------------------------------------------------------------ runs

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The client, request and raw call live for the whole run: jobs borrow them, so neither side
/// pays for reference counts or copies that only the harness would add.
fn leak(
    client: GatewayClient,
    request: SendOtpRequest,
    raw: RawCall,
) -> (&'static GatewayClient, &'static SendOtpRequest, &'static RawCall) {
    (Box::leak(Box::new(client)), Box::leak(Box::new(request)), Box::leak(Box::new(raw)))
}

/// Warms both sides, then measures SDK sends against raw calls in alternating rounds.
async fn sdk_against_raw(
    client: &'static GatewayClient,
    request: &'static SendOtpRequest,
    raw: &'static RawCall,
    n: usize,
    concurrency: usize,
) -> Result<Comparison, BoxError> {
    let sdk_job = move |_| async move { client.send_otp(request).await.map(drop).map_err(BoxError::from) };
    let raw_job = move |_| async move { raw.send(MOBILE).await };
    let warm = (n / 10).max(concurrency);
    measure(warm, concurrency, sdk_job).await?;
    measure(warm, concurrency, raw_job).await?;
    interleaved(n, concurrency, ROUNDS, sdk_job, raw_job).await
}

async fn sdk_vs_raw(n: usize) -> Result<f64, BoxError> {
    let base = fixed_server().await?;
    let mut worst_c64 = f64::INFINITY;
    println!("SDK against a hand-written reqwest call, same server, same bytes, {n} sends per run");
    println!(
        "{:<8} {:>4} {:>12} {:>12} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "gateway", "c", "sdk req/s", "raw req/s", "ratio*", "sdk p50", "sdk p99", "raw p50", "raw p99"
    );
    for (gateway, client, request) in sdk_pairs(&base)? {
        let raw = RawCall::new(raw_client()?, &base, gateway);
        if sdk_wire_body(&client, &request)? != raw.request(MOBILE).0 {
            return Err(
                format!("{gateway}: the raw body differs from the SDK's; the comparison would be unfair").into()
            );
        }
        let (client, request, raw) = leak(client, request, raw);
        for concurrency in [1, 64] {
            let Comparison { first: sdk, second: raw_stats, ratio } =
                sdk_against_raw(client, request, raw, n, concurrency).await?;
            if concurrency == 64 {
                worst_c64 = worst_c64.min(ratio);
            }
            println!(
                "{gateway:<8} {concurrency:>4} {:>12.0} {:>12.0} {ratio:>7.3} {:>8.3}ms {:>8.3}ms {:>8.3}ms {:>8.3}ms",
                sdk.requests_per_second,
                raw_stats.requests_per_second,
                ms(sdk.p50),
                ms(sdk.p99),
                ms(raw_stats.p50),
                ms(raw_stats.p99),
            );
        }
    }
    // The resolution of the figures above: the raw call measured against itself the same way.
    let raw: &'static RawCall = Box::leak(Box::new(RawCall::new(raw_client()?, &base, Gateway::AOPay)));
    let raw_job = move |_| async move { raw.send(MOBILE).await };
    measure(n / 10, 64, raw_job).await?;
    let same = interleaved(n, 64, ROUNDS, raw_job, raw_job).await?;
    println!("raw/raw (A/A, aopay, c=64), the noise floor of a ratio: {:.3}", same.ratio);
    Ok(worst_c64)
}

async fn sandbox_vs_wiremock(n: usize) -> Result<(), BoxError> {
    use wiremock::matchers::{method, path};
    let concurrency = 64;
    let mut config = otp_sandbox::SandboxConfig::default();
    config.credentials.phonepe.merchant_id = PHONEPE_MERCHANT.into();
    config.credentials.phonepe.salt_key = PHONEPE_SALT.into();
    let sandbox = otp_sandbox::Sandbox::start(config).await?;
    let mock = wiremock::MockServer::builder().body_print_limit(wiremock::BodyPrintLimit::Limited(256)).start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/v3/merchant/otp/send"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string(PHONEPE_ANSWER),
        )
        .mount(&mock)
        .await;
    let http = raw_client()?;
    // A distinct number per send, across rounds and servers: the sandbox refuses a 6th OTP to
    // one number in 10 minutes.
    let next_number: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let job_for = |base: String| {
        let raw: &'static RawCall = Box::leak(Box::new(RawCall::new(http.clone(), &base, Gateway::PhonePe)));
        move |_| async move { raw.send(&format!("7{:09}", next_number.fetch_add(1, Ordering::Relaxed))).await }
    };
    let (sandbox_job, wiremock_job) = (job_for(sandbox.base_url()), job_for(mock.uri()));
    measure(n / 10, concurrency, sandbox_job).await?;
    measure(n / 10, concurrency, wiremock_job).await?;
    let Comparison { first: sandbox, second: wiremock, ratio } =
        interleaved(n, concurrency, ROUNDS, sandbox_job, wiremock_job).await?;
    for (name, stats) in [("sandbox", sandbox), ("wiremock", wiremock)] {
        println!(
            "{name:<9} c={concurrency}: {:>8.0} req/s (p50 {:.3} ms, p99 {:.3} ms)",
            stats.requests_per_second,
            ms(stats.p50),
            ms(stats.p99)
        );
    }
    println!("sandbox/wiremock throughput ratio* (signed PhonePe sends, c={concurrency}): {ratio:.2}");
    Ok(())
}

/// How many sends a profiling run makes (`OTP_BENCH_SENDS`, default 200,000).
fn profile_sends() -> usize {
    std::env::var("OTP_BENCH_SENDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200_000)
}

/// `--profile GATEWAY`: only SDK sends at c=64, long enough to attach a profiler
/// (`--profile-raw GATEWAY`: only the raw calls).
async fn profile(gateway: Gateway) -> Result<(), BoxError> {
    let base = fixed_server().await?;
    let (_, client, request) =
        sdk_pairs(&base)?.into_iter().find(|(name, _, _)| *name == gateway).ok_or("no such gateway")?;
    let raw_call = RawCall::new(raw_client()?, &base, gateway);
    let (client, request, _) = leak(client, request, raw_call);
    let job = move |_| async move { client.send_otp(request).await.map(drop).map_err(BoxError::from) };
    let stats = measure(profile_sends(), 64, job).await?.stats();
    println!("{gateway} sdk c=64: {:.0} req/s", stats.requests_per_second);
    Ok(())
}

/// What `cargo xtask bench` runs, and the single runs it offers for one question at a time.
#[derive(clap::Parser)]
#[command(name = "otp-bench", about = "otp-rs benchmarks: the realistic TLS stand-in, the verifier, loopback overhead")]
struct Args {
    /// Fewer requests: a smoke run.
    #[arg(long)]
    quick: bool,
    /// 15 s runs and a 60 s overload.
    #[arg(long)]
    long: bool,
    /// Only the verifier's figures.
    #[arg(long)]
    verifier: bool,
    /// Only `otp serve`'s figures: throughput against an in-process verifier, latency, memory, overload.
    #[arg(long)]
    serve: bool,
    /// Only the webhooks' figures: deliveries per second and the delay to delivery.
    #[arg(long)]
    webhooks: bool,
    /// (Internal) one `otp serve` Server in this process, as `--serve` and `--webhooks` run it.
    #[arg(long, value_name = "SPEC", hide = true)]
    serve_child: Option<String>,
    /// One gateway's SDK/raw comparison, three times (`OTP_BENCH_SENDS` sends each).
    #[arg(long, value_name = "GATEWAY")]
    compare: Option<Gateway>,
    /// SDK sends at c=64 for a profiler to attach.
    #[arg(long, value_name = "GATEWAY")]
    profile: Option<Gateway>,
    /// Raw calls only at c=64 for a profiler to attach.
    #[arg(long, value_name = "GATEWAY")]
    profile_raw: Option<Gateway>,
    /// AOPay sends to distinct numbers to a running `otp sandbox` at this base URL.
    #[arg(long, value_name = "BASE_URL")]
    soak: Option<String>,
    /// (Internal) the memory store's bytes per subject, in a fresh process.
    #[arg(long, value_name = "SENDS", hide = true)]
    memory_probe: Option<usize>,
    /// (Internal) the memory store's bytes per tombstone, in a fresh process.
    #[arg(long, hide = true)]
    tombstone_probe: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let quick = args.quick;
    if let Some(spec) = &args.serve_child {
        // The parent reads stdout: a failure to start is said there, as a line of its own.
        return serve::child(spec).await.inspect_err(|error| println!("error: {error}"));
    }
    if args.serve {
        return serve::run(quick).await;
    }
    if args.webhooks {
        return webhooks::run(quick).await;
    }
    if let Some(gateway) = args.compare {
        return compare(gateway).await;
    }
    if let Some(gateway) = args.profile {
        return profile(gateway).await;
    }
    if let Some(base) = &args.soak {
        return soak(base, profile_sends()).await;
    }
    if let Some(gateway) = args.profile_raw {
        let base = fixed_server().await?;
        let raw: &'static RawCall = Box::leak(Box::new(RawCall::new(raw_client()?, &base, gateway)));
        let job = move |_| async move { raw.send(MOBILE).await };
        let stats = measure(profile_sends(), 64, job).await?.stats();
        println!("{gateway} raw c=64: {:.0} req/s", stats.requests_per_second);
        return Ok(());
    }
    if let Some(sends) = args.memory_probe {
        return verifier::memory_probe(sends).await;
    }
    if args.tombstone_probe {
        return verifier::tombstone_probe().await;
    }
    if args.verifier {
        return verifier::run(quick).await;
    }
    let long = args.long;
    let n = if quick { 1_000 } else { 10_000 };
    println!(
        "machine: {} logical CPUs; release={}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        !cfg!(debug_assertions)
    );
    realistic::run(realistic::Settings::new(long, quick)).await?;
    println!();
    verifier::run(quick).await?;
    println!();
    println!("Overhead on loopback (a server answering in microseconds: the SDK's own cost, magnified)");
    sandbox_vs_wiremock(n).await?;
    println!();
    let worst = sdk_vs_raw(n).await?;
    println!("* ratio: the median, over {ROUNDS} alternating rounds, of the first's throughput / the second's");
    println!("sdk/raw throughput ratio (worst gateway, c=64): {worst:.2}");
    Ok(())
}

/// `--soak BASE_URL`: `OTP_BENCH_SENDS` AOPay sends, each to a distinct number, at c=64, to a
/// sandbox running elsewhere (`otp sandbox`), printing the rate every 100,000: watch the
/// sandbox process's memory while it runs.
async fn soak(base: &str, sends: usize) -> Result<(), BoxError> {
    let url: &'static str = Box::leak(format!("{base}/api/AOP/DMTV1/TransactionSendOtp").into_boxed_str());
    let http: &'static reqwest::Client = Box::leak(Box::new(raw_client()?));
    let chunk = 100_000.min(sends.max(1));
    let mut done = 0;
    while done < sends {
        let offset = done;
        let job = move |i: usize| async move {
            let body = format!(
                r#"{{"MobileNumber":"7{:09}","BeneID":"BENE1001","Txntype":"IMPS","Amount":"2500","Pincode":"560001","Address":"12 MG Road","DOB":"20/08/1990","Latitude":"12.9716","Longitute":"77.5946","RegistrationID":"AOP-SANDBOX"}}"#,
                offset + i
            );
            let answer = http.post(url).header("content-type", "application/json").body(body).send().await?;
            if !answer.status().is_success() {
                return Err(format!("HTTP {}", answer.status()).into());
            }
            answer.bytes().await?;
            Ok::<_, BoxError>(())
        };
        let stats = measure(chunk, 64, job).await?.stats();
        done += chunk;
        println!(
            "{done} distinct numbers sent: {:.0} sends/s (p99 {:.2} ms)",
            stats.requests_per_second,
            ms(stats.p99)
        );
    }
    Ok(())
}

/// `--compare GATEWAY`: only that gateway's SDK/raw comparison, three times over
/// (`OTP_BENCH_SENDS` per run): a quick check of one change without the whole suite.
async fn compare(gateway: Gateway) -> Result<(), BoxError> {
    let base = fixed_server().await?;
    let (_, client, request) =
        sdk_pairs(&base)?.into_iter().find(|(name, _, _)| *name == gateway).ok_or("no such gateway")?;
    let raw = RawCall::new(raw_client()?, &base, gateway);
    let (client, request, raw) = leak(client, request, raw);
    let n = profile_sends();
    for _ in 0..3 {
        for concurrency in [1, 64] {
            let c = sdk_against_raw(client, request, raw, n, concurrency).await?;
            println!(
                "{gateway} c={concurrency}: sdk {:.0} req/s, raw {:.0} req/s, ratio {:.3}; \
                 process CPU per send (server and idle spinning included): sdk {:.2} µs, raw {:.2} µs",
                c.first.requests_per_second,
                c.second.requests_per_second,
                c.ratio,
                c.first.cpu_per_send.as_secs_f64() * 1e6,
                c.second.cpu_per_send.as_secs_f64() * 1e6
            );
        }
    }
    Ok(())
}

/// CPU time of every thread of this process so far (Linux schedstat, nanoseconds on a CPU; 0
/// elsewhere). Less sensitive than throughput to a neighbour taking the CPU away.
fn process_cpu() -> Duration {
    tasks_cpu("/proc/self/task")
}

/// CPU time of every thread listed in a /proc `task` directory (this process's or a child's).
fn tasks_cpu(dir: &str) -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir(dir) {
        for task in tasks.flatten() {
            if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(total)
}
