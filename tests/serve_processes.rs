//! `otp serve` as real processes, each started with `otp serve --config <file>` on one real
//! redis-server, its PhonePe pointed at an in-process sandbox whose inbox counts every SMS:
//!
//! - three replicas raced: starts to one number from many addresses (the cooldown lets one
//!   through), a verification started, checked and read on three different replicas, one
//!   idempotency key raced over all three (one SMS, one id);
//! - a replica killed with SIGKILL while flows run over all three: every start answered 201
//!   can still be checked and read on the survivors; a request that hit the dead one is
//!   retried elsewhere with its idempotency key and never sends a second SMS;
//! - Redis stopped: `/readyz` 503 and every start 503 `store_unavailable`, nothing sent;
//!   Redis back: the same processes turn ready and start again by themselves;
//! - 2,000 idle connections: health and a real start still answer on fresh connections, the
//!   idle ones are closed by the header read timeouts (1 s past the connection cap), and the
//!   process, started with the common soft limit of 1,024 open files, copes;
//! - SIGTERM with 200 starts in flight (the gateway answers 3 s late): new connections are
//!   refused at once, every start is answered or was never sent, every SMS sent has its
//!   session in Redis, the process exits 0.
//!
//! The tests run one at a time (each starts several processes on a small machine); children
//! are killed when a test ends, passes or panics. Without redis-server the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otp::sandbox::{Sandbox, SandboxConfig};
use otp_serve::{NewApiKey, Scope};
use otp_verifier::test_util::RedisServer;
use serde_json::{json, Value};

/// One test at a time: each runs several processes, and their liveness deadlines should not
/// be spent waiting for another test's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The store key every replica shares (32 bytes, base64).
const STORE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// How long a test waits for something that should happen by itself (a process starting,
/// Redis reconnecting): a liveness deadline, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh valid number for each call (never a sandbox magic number).
fn number() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = u64::from(std::process::id() % 1000) * 1_000_000;
    format!("7{:09}", base + NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A PhonePe start to `to` from the end user at `client_ip`.
fn start_body(to: &str, client_ip: &str) -> Value {
    json!({
        "gateway": "phonepe",
        "to": to,
        "client_ip": client_ip,
        "params": { "device_id": "device-0042", "email": "asha@example.com", "short_name": "Asha", "request_type": "wallet" },
    })
}

/// Runs every future on the runtime at once; their outputs in order.
async fn all<T: Send + 'static>(futures: Vec<impl Future<Output = T> + Send + 'static>) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

/// What every test runs on: a redis-server, the sandbox (behind a slow gateway when asked),
/// one API key, and the directory of the config files.
struct Setup {
    redis: RedisServer,
    sandbox: Arc<Sandbox>,
    slow: Option<SlowGateway>,
    key: String,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup {
    /// `slow`: the gateway answers this late (the sandbox has the SMS at once).
    async fn start(name: &str, slow: Option<Duration>) -> Self {
        Self::start_with(name, slow, "").await
    }

    /// …with `extra` appended to the config.
    async fn start_with(name: &str, slow: Option<Duration>, extra: &str) -> Self {
        let redis = RedisServer::start().unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"));
        let sandbox = Arc::new(Sandbox::start(SandboxConfig::default()).await.unwrap());
        let slow = match slow {
            Some(delay) => Some(SlowGateway::start(sandbox.base_url(), delay).await),
            None => None,
        };
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-processes-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let new = NewApiKey::generate().unwrap();
        let key = new.key.expose_secret().to_owned();
        let setup = Self { redis, sandbox, slow, key, dir };
        let gateway = setup.slow.as_ref().map_or_else(|| setup.sandbox.base_url(), |slow| slow.url.clone());
        let config = format!(
            "listen = \"127.0.0.1:0\"\n\n\
             [store]\nkind = \"redis\"\nurl = \"{}\"\n\n\
             {}\n\
             [gateways.phonepe]\nbase_url = \"{gateway}\"\nmerchant_id = \"SANDBOXMERCHANT\"\n\
             salt_key = \"sandbox-salt-key\"\nsalt_index = \"1\"\n\n\
             [guard]\ncooldown_s = 60\nper_client_ip = {{ count = 10000, window_s = 3600 }}\n{extra}",
            setup.redis.url(),
            new.config_lines("backend", "checkout", &Scope::ALL),
        );
        std::fs::write(setup.config(), config).unwrap();
        setup
    }

    fn config(&self) -> PathBuf {
        self.dir.join("otp-serve.toml")
    }

    fn api(&self) -> Api {
        Api::new(&self.key)
    }

    /// `count` replicas on this setup's config, each ready.
    async fn replicas(&self, count: usize) -> Vec<Replica> {
        let replicas: Vec<Replica> = (0..count).map(|n| Replica::start(self, &format!("r{n}"), None)).collect();
        let api = self.api();
        for replica in &replicas {
            api.until_ready(replica).await;
        }
        replicas
    }

    /// How many SMS the sandbox sent to `to`.
    fn sms(&self, to: &str) -> usize {
        self.sandbox.otps(to).len()
    }

    /// The code the sandbox sent to `to` last.
    fn code(&self, to: &str) -> String {
        self.sandbox.otps(to).first().unwrap_or_else(|| panic!("no SMS to {to}")).otp.clone()
    }

    /// How many SMS the sandbox sent in all.
    fn sms_total(&self) -> usize {
        self.sandbox.sizes().1
    }

    /// The pending sessions in Redis (`otp:s:{…}`, one per verification sent and stored).
    fn sessions_in_redis(&self) -> usize {
        let output = Command::new("redis-cli")
            .args(["-p", &self.redis.port().to_string(), "--scan", "--pattern", "otp:s:*"])
            .output()
            .expect("redis-cli (it comes with the Debian package redis-server)");
        assert!(output.status.success(), "redis-cli --scan: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().lines().filter(|key| key.starts_with("otp:s:{")).count()
    }
}

/// One `otp serve --config` process; killed (SIGKILL) when dropped.
struct Replica {
    child: Child,
    base: String,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    /// Starts `otp serve --config` (with its soft open-file limit set to `soft_nofile`, as a
    /// service manager's default would) and reads its `listening:` line.
    fn start(setup: &Setup, name: &str, soft_nofile: Option<u64>) -> Self {
        let log = setup.dir.join(format!("{name}.log"));
        let config = setup.config();
        let mut command = match soft_nofile {
            None => Command::new(env!("CARGO_BIN_EXE_otp")),
            Some(limit) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -S -n {limit} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_otp"));
                command
            }
        };
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("OTP_SERVE_STORE_KEY", STORE_KEY)
            .env("OTP_TEST_WEBHOOK_SECRET", receiver::SECRET)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the otp binary");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        // Reads the first line, then keeps draining stdout so the service never blocks on it.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            let _ = lines.read_line(&mut line);
            let _ = sender.send(line);
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let mut replica = Self { child, base: String::new(), log, exited: None };
        let line = receiver.recv_timeout(PATIENCE).unwrap_or_default();
        replica.base = line
            .trim_end()
            .strip_prefix("listening: ")
            .unwrap_or_else(|| panic!("otp serve printed {line:?}, not `listening: …`; its log:\n{}", replica.log()))
            .to_owned();
        replica
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its log.
    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process still runs.
    fn running(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().unwrap();
        }
        self.exited.is_none()
    }

    /// SIGKILL, as a crash or an OOM kill would.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.exited = Some(self.child.wait().unwrap());
    }

    /// SIGTERM, as an orchestrator stopping it.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Waits up to `deadline` for the process to exit.
    async fn exit_within(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        while self.running() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.exited
    }

    /// Its soft and hard open-file limits, as the kernel has them (for failure messages).
    fn open_file_limits(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/limits", self.pid()))
            .unwrap_or_default()
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .unwrap_or("")
            .to_owned()
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", self.text)).to_owned()
    }

    /// A problem of `code` with `status`, its Retry-After where the runbook promises one.
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, Some(code)), "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        if status == 429 || status == 503 || code == "idempotency_in_progress" {
            let wait: u64 = self.header("retry-after").expect("Retry-After").parse().unwrap();
            assert!(wait >= 1, "Retry-After {wait}");
        }
    }
}

/// The API with one key, over fresh or pooled connections.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    key: String,
}

impl Api {
    fn new(key: &str) -> Self {
        // Past the service's 35 s drain: an answer that comes is waited for.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(45)).build().unwrap();
        Self { http, key: key.to_owned() }
    }

    /// Each request on a connection of its own, closed after it (none is kept in a pool).
    fn unpooled(&self) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(45)).pool_max_idle_per_host(0).build().unwrap();
        Self { http, key: self.key.clone() }
    }

    /// A request, or the connection-level error that stopped it (refused, reset, closed
    /// before an answer).
    async fn try_call(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.http.request(method, format!("{base}{path}")).bearer_auth(&self.key);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, headers, text, body })
    }

    async fn try_start(&self, base: &str, body: &Value, headers: &[(&str, &str)]) -> Result<Answer, reqwest::Error> {
        self.try_call(base, reqwest::Method::POST, "/v1/verifications", Some(body), headers).await
    }

    async fn try_check(&self, base: &str, id: &str, code: &str) -> Result<Answer, reqwest::Error> {
        let body = json!({ "code": code });
        self.try_call(base, reqwest::Method::POST, &format!("/v1/verifications/{id}/check"), Some(&body), &[]).await
    }

    async fn try_status(&self, base: &str, id: &str) -> Result<Answer, reqwest::Error> {
        self.try_call(base, reqwest::Method::GET, &format!("/v1/verifications/{id}"), None, &[]).await
    }

    async fn start(&self, base: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        self.try_start(base, body, headers).await.unwrap_or_else(|e| panic!("POST {base}/v1/verifications: {e}"))
    }

    async fn check(&self, base: &str, id: &str, code: &str) -> Answer {
        self.try_check(base, id, code).await.unwrap_or_else(|e| panic!("check on {base}: {e}"))
    }

    async fn status(&self, base: &str, id: &str) -> Answer {
        self.try_status(base, id).await.unwrap_or_else(|e| panic!("status on {base}: {e}"))
    }

    async fn get(&self, base: &str, path: &str) -> Answer {
        self.try_call(base, reqwest::Method::GET, path, None, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"))
    }

    /// Polls `/readyz` until it answers `status` (panics past the deadline).
    async fn until_readyz(&self, replica: &Replica, status: u16) -> Answer {
        let until = Instant::now() + PATIENCE;
        loop {
            let answer = self.try_call(&replica.base, reqwest::Method::GET, "/readyz", None, &[]).await;
            match answer {
                Ok(answer) if answer.status == status => return answer,
                other if Instant::now() > until => {
                    panic!("{}/readyz never answered {status} (last: {other:?}); log:\n{}", replica.base, replica.log())
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn until_ready(&self, replica: &Replica) {
        self.until_readyz(replica, 200).await;
    }
}

/// The gateway as a slow network has it: each request goes to the sandbox at once (the SMS is
/// sent), and its answer comes back `delay` later.
struct SlowGateway {
    url: String,
    forwarded: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlowGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlowGateway {
    async fn start(upstream: String, delay: Duration) -> Self {
        use axum::body::Body;
        use axum::extract::Request;
        use axum::response::Response;
        let client = reqwest::Client::new();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let counted = forwarded.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let (client, upstream, counted) = (client.clone(), upstream.clone(), counted.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
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
                let bytes = answer.bytes().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                response.body(Body::from(bytes)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, forwarded, task }
    }

    /// How many requests reached the sandbox (whose answers are on their way back).
    fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

/// Three replicas on one redis-server, raced: the guard's limit holds across them, any of them
/// answers for a verification another started, and one idempotency key sends one SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_redis_share_the_guard_the_sessions_and_the_idempotency_keys() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::start("race", None).await;
    let replicas = setup.replicas(3).await;
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let api = setup.api();

    // (a) 30 starts to one number, each from its own address, spread over the three: the
    // cooldown (one send per 60 s) lets exactly one through, wherever it lands.
    let to = number();
    let answers = all((0..30)
        .map(|i| {
            let (api, base, body) =
                (api.clone(), bases[i % 3].clone(), start_body(&to, &format!("198.51.100.{}", i + 1)));
            async move { api.start(&base, &body, &[]).await }
        })
        .collect())
    .await;
    let admitted: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        admitted.len(),
        1,
        "the cooldown admits one start: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|a| a.status != 201) {
        refused.assert_problem(429, "rate_limited");
        assert_eq!(refused.body["rule"], "cooldown", "{}", refused.text);
        assert_eq!(refused.body["may_have_sent"], "no", "{}", refused.text);
    }
    assert_eq!(setup.sms(&to), 1, "the sandbox sent exactly what the guard admitted");

    // (b) Started on the first, checked on the second, read on the third.
    let to = number();
    let started = api.start(&bases[0], &start_body(&to, "203.0.113.7"), &[]).await;
    assert_eq!(started.status, 201, "{}", started.text);
    let id = started.id();
    let wrong = if setup.code(&to) == "111111" { "222222" } else { "111111" };
    let answer = api.check(&bases[1], &id, wrong).await;
    answer.assert_problem(422, "wrong_otp");
    assert_eq!(answer.body["tries_left"], 4);
    let status = api.status(&bases[2], &id).await;
    assert_eq!(
        (status.status, &status.body["status"], &status.body["tries_left"]),
        (200, &json!("pending"), &json!(4))
    );
    let approved = api.check(&bases[1], &id, &setup.code(&to)).await;
    assert_eq!((approved.status, &approved.body["status"]), (200, &json!("approved")), "{}", approved.text);
    assert_eq!(api.status(&bases[2], &id).await.body["status"], "approved");
    api.check(&bases[0], &id, &setup.code(&to)).await.assert_problem(409, "already_approved");
    assert_eq!(setup.sms(&to), 1);

    // (c) One idempotency key, 30 concurrent starts over the three: one SMS; every answer is
    // that one verification (first or replayed) or the documented "still running" refusal.
    let to = number();
    let body = start_body(&to, "203.0.113.9");
    let answers = all((0..30)
        .map(|i| {
            let (api, base, body) = (api.clone(), bases[i % 3].clone(), body.clone());
            async move { api.start(&base, &body, &[("idempotency-key", "race-one-key")]).await }
        })
        .collect())
    .await;
    let ids: std::collections::BTreeSet<String> = answers.iter().filter(|a| a.status == 201).map(Answer::id).collect();
    assert_eq!(ids.len(), 1, "one verification for one key: {ids:?}");
    let first = answers.iter().filter(|a| a.status == 201 && a.header("idempotent-replayed").is_none()).count();
    assert_eq!(first, 1, "one answer is the start itself, the others replays");
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.assert_problem(409, "idempotency_in_progress");
    }
    assert_eq!(setup.sms(&to), 1, "one SMS for one idempotency key");
    let id = ids.into_iter().next().unwrap();
    for base in &bases {
        let again = api.start(base, &body, &[("idempotency-key", "race-one-key")]).await;
        assert_eq!((again.status, again.id(), again.header("idempotent-replayed")), (201, id.clone(), Some("true")));
    }
    assert_eq!(setup.sms(&to), 1);
}

/// What happened to one flow of the killed-replica test.
#[derive(Debug, Default)]
struct Flow {
    to: String,
    /// The verification, when some replica answered its start 201.
    id: Option<String>,
    /// Which replica the start went to first.
    sent_to: usize,
    /// Which replica answered the start 201.
    answered_by: Option<usize>,
    /// Requests that failed at the connection level and were sent again elsewhere.
    failovers: usize,
    /// Where its check left it: `approved` (or `expired`, when the killed replica had its
    /// code verified by the gateway and died before storing the approval).
    state: &'static str,
    /// The start was retried after a connection failure and its key was still held by the
    /// killed replica's claim (idempotency_in_progress until the claim's lease ends).
    held: bool,
}

/// Sends `call` to the replicas from `first` on, round the ring, until one answers (a
/// connection-level failure, which only the killed replica 0 may have, moves on to the next);
/// counts the moves.
async fn failover<F, Fut>(bases: &[String], first: usize, failovers: &mut usize, call: F) -> (usize, Answer)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Answer, reqwest::Error>>,
{
    let mut errors = Vec::new();
    for step in 0..bases.len() * 2 {
        let target = (first + step) % bases.len();
        match call(bases[target].clone()).await {
            Ok(answer) => return (target, answer),
            Err(error) => {
                assert_eq!(target, 0, "{}: only the killed replica fails: {error}", bases[target]);
                assert!(!error.is_timeout(), "{}: a timeout is not a dead replica: {error}", bases[target]);
                errors.push(format!("{}: {error}", bases[target]));
                *failovers += 1;
            }
        }
    }
    panic!("no replica answered: {errors:?}");
}

/// Start, check, status, round-robin over the replicas, each request failing over.
async fn flow(api: Api, bases: Vec<String>, sandbox: Arc<Sandbox>, i: usize) -> Flow {
    let mut flow = Flow { to: number(), sent_to: i % 3, ..Flow::default() };
    let body = start_body(&flow.to, &format!("192.0.2.{}", i % 250 + 1));
    let key = format!("killed-replica-{i}");
    let mut failovers = 0;
    let (by, started) = failover(&bases, i % 3, &mut failovers, |base| {
        let (api, body, key) = (api.clone(), body.clone(), key.clone());
        async move { api.try_start(&base, &body, &[("idempotency-key", &key)]).await }
    })
    .await;
    let retried = failovers > 0;
    flow.failovers += failovers;
    if started.status == 409 && started.code() == Some("idempotency_in_progress") && retried {
        // The killed replica claimed the key and died: the key is held until its lease ends.
        flow.held = true;
        return flow;
    }
    assert_eq!(started.status, 201, "start of flow {i}: {}", started.text);
    let id = started.id();
    flow.id = Some(id.clone());
    flow.answered_by = Some(by);
    let code = sandbox.otps(&flow.to).first().unwrap_or_else(|| panic!("no SMS to {}", flow.to)).otp.clone();
    let mut failovers = 0;
    let (_, checked) = failover(&bases, (i + 1) % 3, &mut failovers, |base| {
        let (api, id, code) = (api.clone(), id.clone(), code.clone());
        async move { api.try_check(&base, &id, &code).await }
    })
    .await;
    // A check in flight on the killed replica may have been judged there: its retry answers
    // already_approved (the approval was stored), or otp_expired (the gateway verified and
    // spent the code, PhonePe answers a spent code OTP_ALREADY_VERIFIED, which the SDK reads
    // as expired, and the replica died before it stored the approval).
    flow.state = match (checked.status, checked.code()) {
        (200, _) => "approved",
        (409, Some("already_approved")) if failovers > 0 => "approved",
        (410, Some("otp_expired")) if failovers > 0 => "expired",
        _ => panic!("check of flow {i} (failovers {failovers}): {}", checked.text),
    };
    flow.failovers += failovers;
    let mut failovers = 0;
    let (_, status) = failover(&bases, (i + 2) % 3, &mut failovers, |base| {
        let (api, id) = (api.clone(), id.clone());
        async move { api.try_status(&base, &id).await }
    })
    .await;
    assert_eq!(status.body["status"], flow.state, "status of flow {i}: {}", status.text);
    flow.failovers += failovers;
    flow
}

/// A replica killed with SIGKILL while flows run over all three loses no verification it (or
/// any other) answered, and no retry sends a second SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_loses_no_answered_verification_and_no_retry_sends_twice() {
    let _serial = SERIAL.lock().await;
    // Every replica also delivers the tenant's events to one receiver, which verifies each
    // with the official standardwebhooks package.
    let receiver = Receiver::start("ok");
    let webhook = format!(
        "\n[[webhooks]]\nname = \"audit\"\ntenant = \"checkout\"\nurl = \"{}\"\nsecret_env = \"OTP_TEST_WEBHOOK_SECRET\"\ntimeout_s = 1\n",
        receiver.url
    );
    let setup = Setup::start_with("killed", None, &webhook).await;
    let mut replicas = setup.replicas(3).await;
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let api = setup.api();
    const FLOWS: usize = 90;
    const CONCURRENT: usize = 6;
    let codes = setup.sandbox.clone();
    let done = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
    let mut tasks = Vec::new();
    for i in 0..FLOWS {
        let (api, bases, codes, done, permits) =
            (api.clone(), bases.clone(), codes.clone(), done.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let flow = flow(api, bases, codes, i).await;
            done.fetch_add(1, Ordering::SeqCst);
            flow
        }));
    }
    let until = Instant::now() + PATIENCE;
    while done.load(Ordering::SeqCst) < FLOWS / 3 {
        assert!(Instant::now() < until, "the flows did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    replicas[0].kill();
    let killed_at = done.load(Ordering::SeqCst);
    // Every flow ends before any failure is told (a panic would kill the replicas under the rest).
    let mut joined = Vec::new();
    for task in tasks {
        joined.push(task.await);
    }
    let flows: Vec<Flow> = joined.into_iter().map(Result::unwrap).collect();
    assert!(killed_at < FLOWS, "the kill came after every flow had finished");
    let survivors = &bases[1..];
    for flow in &flows {
        let sms = setup.sms(&flow.to);
        assert!(sms <= 1, "{} got {sms} SMS: a retry sent again", flow.to);
        if let Some(id) = &flow.id {
            assert_eq!(sms, 1, "{flow:?}");
            for base in survivors {
                let status = api.status(base, id).await;
                assert_eq!(
                    (status.status, &status.body["status"]),
                    (200, &json!(flow.state)),
                    "{flow:?}: {}",
                    status.text
                );
            }
        }
    }
    let before_the_kill = flows.iter().filter(|f| f.answered_by == Some(0)).count();
    let failed_over = flows.iter().filter(|f| f.failovers > 0).count();
    let held = flows.iter().filter(|f| f.held).count();
    assert!(before_the_kill > 0, "the killed replica answered no start before it died");
    assert!(failed_over > 0, "no request hit the killed replica after it died");
    assert!(held <= CONCURRENT, "{held} keys held: only a request in flight at the kill can hold one");
    assert!(flows.iter().filter(|f| f.held).all(|f| f.sent_to == 0), "a key held by a survivor");
    for replica in replicas.iter_mut().skip(1) {
        assert!(replica.running(), "a survivor exited; its log:\n{}", replica.log());
        api.until_ready(replica).await;
    }

    // Every event of every answered verification reaches the receiver through the survivors
    // (what the dead replica held is claimed once idle), and an event delivered twice has the
    // same webhook-id both times.
    let mut expected = std::collections::BTreeSet::new();
    for flow in flows.iter().filter(|f| f.id.is_some()) {
        let id = flow.id.clone().unwrap();
        expected.insert((id.clone(), "verification.started".to_owned()));
        if flow.state == "approved" {
            expected.insert((id, "verification.approved".to_owned()));
        }
    }
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = events(&receiver);
        if expected.iter().all(|event| seen.contains_key(event)) {
            assert!(seen.values().all(|ids| ids.len() == 1), "a duplicate had another webhook-id: {seen:?}");
            break;
        }
        let missing: Vec<_> = expected.iter().filter(|event| !seen.contains_key(*event)).collect();
        assert!(Instant::now() < until, "not delivered within 60 s: {missing:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(receiver.seen().iter().all(|d| d["verified"] == true), "every delivery verified");
}

#[path = "../crates/otp-serve/tests/common/python.rs"]
mod python;
#[path = "../crates/otp-serve/tests/common/receiver.rs"]
mod receiver;

use receiver::Receiver;

/// (verification id, event type) → the webhook-ids a receiver's verified deliveries came with.
fn events(receiver: &Receiver) -> std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>> {
    let mut events: std::collections::BTreeMap<_, std::collections::BTreeSet<String>> = Default::default();
    for delivery in receiver.seen().iter().filter(|d| d["verified"] == true) {
        let key = (
            delivery["payload"]["data"]["id"].as_str().unwrap().to_owned(),
            delivery["payload"]["type"].as_str().unwrap().to_owned(),
        );
        events.entry(key).or_default().insert(delivery["webhook_id"].as_str().unwrap().to_owned());
    }
    events
}

/// Redis stopped: both replicas turn unready and refuse every start as `store_unavailable`
/// with nothing sent; Redis back: the same processes turn ready and start again by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_every_start_unsent_and_redis_back_serves_again_without_a_restart() {
    let _serial = SERIAL.lock().await;
    let mut setup = Setup::start("redis-down", None).await;
    let mut replicas = setup.replicas(2).await;
    let pids: Vec<u32> = replicas.iter().map(Replica::pid).collect();
    let api = setup.api();
    let earlier_to = number();
    let earlier = api.start(&replicas[0].base, &start_body(&earlier_to, "203.0.113.7"), &[]).await;
    assert_eq!(earlier.status, 201, "{}", earlier.text);
    let earlier_id = earlier.id();

    setup.redis.stop();
    let sent_before = setup.sms_total();
    for replica in &replicas {
        api.until_readyz(replica, 503).await.assert_problem(503, "store_unavailable");
    }
    let numbers: Vec<String> = (0..10).map(|_| number()).collect();
    let answers = all(numbers
        .iter()
        .enumerate()
        .map(|(i, to)| {
            let (api, base, body) = (api.clone(), replicas[i % 2].base.clone(), start_body(to, "203.0.113.7"));
            async move { api.start(&base, &body, &[]).await }
        })
        .collect())
    .await;
    for answer in &answers {
        answer.assert_problem(503, "store_unavailable");
        assert_eq!(answer.body["may_have_sent"], "no", "{}", answer.text);
    }
    for replica in &replicas {
        api.get(&replica.base, "/readyz").await.assert_problem(503, "store_unavailable");
    }
    assert_eq!(setup.sms_total(), sent_before, "nothing is sent while Redis is away");

    setup.redis.restart().unwrap();
    for replica in &replicas {
        api.until_ready(replica).await;
    }
    for (i, replica) in replicas.iter_mut().enumerate() {
        assert!(replica.running(), "replica {i} exited; its log:\n{}", replica.log());
        assert_eq!(replica.pid(), pids[i], "the same process");
        // A number refused while Redis was away: its refusal counted nothing against it.
        let to = &numbers[i];
        let answer = api.start(&replica.base, &start_body(to, "203.0.113.7"), &[]).await;
        assert_eq!(answer.status, 201, "replica {i} after Redis came back: {}", answer.text);
        assert_eq!(setup.sms(to), 1);
    }
    // What was stored before the outage is still there (the append-only file).
    let status = api.status(&replicas[1].base, &earlier_id).await;
    assert_eq!((status.status, &status.body["status"]), (200, &json!("pending")), "{}", status.text);
}

/// The service's default connection cap (docs/serve.md): as many are served, as many again
/// get one second to send their request.
const MAX_CONNECTIONS: usize = 1024;
/// The default header read timeout: an idle connection that was served is closed after it.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// 2,000 connections that send nothing: a health check and a real start on fresh connections
/// still answer, the idle ones are closed by the server (those past the cap after 1 s, the
/// others after the header read timeout), and the process is healthy afterwards. It is started
/// with a soft limit of 1,024 open files, the usual default of a service manager: holding
/// twice the connection cap needs more, which the `otp` binary must raise itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_are_closed_by_the_server_and_crowd_out_neither_health_nor_a_start() {
    use tokio::io::AsyncReadExt as _;
    const IDLE: usize = 2000;
    let _serial = SERIAL.lock().await;
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(limit >= 2 * IDLE as u64, "the test needs {} open files; the hard limit allows {limit}", 2 * IDLE);
    let setup = Setup::start("idle", None).await;
    let mut replica = Replica::start(&setup, "idle", Some(1024));
    let api = setup.api().unpooled();
    api.until_ready(&replica).await;
    let addr = replica.base.strip_prefix("http://").unwrap().to_owned();
    let mut idle = Vec::with_capacity(IDLE);
    for n in 0..IDLE {
        let connect = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&addr)).await;
        let mut stream = match connect {
            Ok(Ok(stream)) => stream,
            other => panic!(
                "idle connection {n}: {other:?}; the server's {}; its log ends:\n{}",
                replica.open_file_limits(),
                replica.log_tail(5)
            ),
        };
        // Reads until the server closes it (whatever it says first), and says when.
        idle.push(tokio::spawn(async move {
            let mut buffer = [0u8; 256];
            while let Ok(read) = stream.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
            }
        }));
    }
    let flooded = Instant::now();

    let health = tokio::time::timeout(Duration::from_secs(3), api.get(&replica.base, "/livez")).await;
    let health = health.unwrap_or_else(|_| {
        panic!(
            "/livez did not answer within 3 s of the flood; the server's {}; its log ends:\n{}",
            replica.open_file_limits(),
            replica.log_tail(5)
        )
    });
    assert_eq!(health.status, 200, "{}", health.text);
    let to = number();
    let started =
        tokio::time::timeout(Duration::from_secs(5), api.start(&replica.base, &start_body(&to, "203.0.113.7"), &[]))
            .await
            .unwrap_or_else(|_| panic!("a start did not answer within 5 s of the flood"));
    assert_eq!(started.status, 201, "{}", started.text);
    assert_eq!(setup.sms(&to), 1);

    // Midway: the connections past the cap had their second and are closed; the served ones
    // are kept until the header read timeout.
    tokio::time::sleep_until((flooded + HEADER_READ_TIMEOUT / 2).into()).await;
    let closed = idle.iter().filter(|task| task.is_finished()).count();
    assert!(closed >= IDLE - MAX_CONNECTIONS, "{closed} closed: those past the cap get 1 s");
    assert!(IDLE - closed >= MAX_CONNECTIONS - 24, "{closed} closed: the served ones are kept 10 s");

    let until = flooded + HEADER_READ_TIMEOUT + PATIENCE;
    for (n, task) in idle.into_iter().enumerate() {
        tokio::time::timeout_at(until.into(), task)
            .await
            .unwrap_or_else(|_| panic!("idle connection {n} is still open {:?} after the flood", until - flooded))
            .unwrap();
    }

    assert!(replica.running(), "the replica exited; its log:\n{}", replica.log());
    assert_eq!(api.get(&replica.base, "/livez").await.status, 200);
    assert_eq!(api.get(&replica.base, "/readyz").await.status, 200);
    let to = number();
    assert_eq!(api.start(&replica.base, &start_body(&to, "203.0.113.7"), &[]).await.status, 201);
    assert_eq!(setup.sms(&to), 1);
}

/// SIGTERM while 200 starts are in flight (half of them waiting 3 s for the gateway's answer):
/// the listener closes at once (new connections are refused while the drain runs), every start
/// is answered or was never sent, every SMS sent belongs to an answered start whose session
/// another replica reads, Redis holds exactly one session per SMS, and the process exits 0
/// within its drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_two_hundred_starts_in_flight_answers_every_sent_one_and_keeps_its_session() {
    const IN_FLIGHT: usize = 200;
    const LATE: usize = 20;
    let _serial = SERIAL.lock().await;
    let setup = Setup::start("sigterm", Some(Duration::from_secs(3))).await;
    let mut replicas = setup.replicas(2).await;
    let slow = setup.slow.as_ref().unwrap();
    let api = setup.api().unpooled();
    let base = replicas[0].base.clone();
    let start = |to: &String| {
        let (api, base, body) = (api.clone(), base.clone(), start_body(to, "203.0.113.7"));
        tokio::spawn(async move { api.try_start(&base, &body, &[]).await })
    };
    let numbers: Vec<String> = (0..IN_FLIGHT).map(|_| number()).collect();
    let tasks: Vec<_> = numbers.iter().map(start).collect();

    // The signal once half have reached the gateway: those wait for its answer, the others
    // are anywhere between the client's socket and the guard.
    let until = Instant::now() + PATIENCE;
    while slow.forwarded() < IN_FLIGHT / 2 {
        assert!(Instant::now() < until, "only {} starts reached the gateway", slow.forwarded());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at_the_signal = slow.forwarded();
    replicas[0].terminate();

    // It stops accepting: the listening socket closes while the starts in flight still wait
    // for the gateway, so a new connection is refused at once, and a load balancer or client
    // moves on to another replica. (Left open, the kernel would queue new connections in its
    // backlog, where nobody reads them, for the whole drain, and reset them at the end.)
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let until = Instant::now() + PATIENCE;
    loop {
        let probe = tokio::net::TcpStream::connect(&addr).await;
        if probe.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused) {
            break;
        }
        assert!(Instant::now() < until, "{addr} still accepts connections {PATIENCE:?} after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Told last, after everything else was checked.
    let draining = tasks.iter().filter(|task| !task.is_finished()).count();
    let refused_while_draining = replicas[0].running() && draining > 0;
    let late: Vec<String> = (0..LATE).map(|_| number()).collect();
    let late_tasks: Vec<_> = late.iter().map(start).collect();
    for (to, task) in late.iter().zip(late_tasks) {
        match task.await.unwrap() {
            Err(error) => assert!(error.is_connect(), "{to}: a start after the listener closed: {error:?}"),
            Ok(answer) => panic!("{to}: a start after the listener closed was served: {}", answer.text),
        }
    }

    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let exited = replicas[0].exit_within(otp_serve::DRAIN + Duration::from_secs(10)).await;
    let exited = exited.unwrap_or_else(|| panic!("no exit within the drain; log:\n{}", replicas[0].log()));
    assert_eq!(exited.code(), Some(0), "{exited}; log:\n{}", replicas[0].log());

    let reader = replicas[1].base.clone();
    let mut answered = 0;
    for (to, result) in numbers.iter().zip(&results) {
        let sms = setup.sms(to);
        match result {
            Ok(answer) if answer.status == 201 => {
                answered += 1;
                assert_eq!(sms, 1, "{to}");
                let status = api.status(&reader, &answer.id()).await;
                assert_eq!((status.status, &status.body["status"]), (200, &json!("pending")), "{}", status.text);
            }
            // A refusal (a starved machine can miss the 1 s Redis deadline: store_unavailable)
            // is fine only when nothing was sent.
            Ok(answer) => {
                assert!(answer.status >= 400, "{}", answer.text);
                assert_eq!((&answer.body["may_have_sent"], sms), (&json!("no"), 0), "{to}: {}", answer.text);
            }
            Err(error) => {
                assert!(!error.is_timeout(), "{to}: {error}");
                assert_eq!(sms, 0, "{to}: an SMS went out but its start got no answer: {error}");
            }
        }
    }
    for to in &late {
        assert_eq!(setup.sms(to), 0, "{to}: refused, yet sent");
    }
    assert!(
        answered >= at_the_signal,
        "{answered} answered: every start at the gateway when the signal came ({at_the_signal}) is"
    );
    assert_eq!(setup.sms_total(), answered, "every SMS belongs to an answered start");
    assert_eq!(setup.sessions_in_redis(), answered, "every SMS sent has its session in Redis");
    assert!(
        refused_while_draining,
        "{addr} refused connections only once its drain was over (starts still in flight when it \
         first refused: {draining}): new connections waited in the listening socket's backlog, \
         unserved, for the whole drain, and were reset when it ended"
    );
}
