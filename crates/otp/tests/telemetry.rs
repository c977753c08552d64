//! Telemetry: the exact metrics a send, a verify, a refusal and a shed send record, and spans
//! with OpenTelemetry's names; no label or span field carries a number, a code or a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use otp::sandbox::{self, Sandbox, SandboxConfig};
use otp::{
    phonepe, ClientOptions, Environment, ErrorKind, Gateway, GatewayClient, HttpOptions, OtpCode, VerifyRequest,
};

/// (name, labels as "k=v" sorted, value) for every counter; histograms as their sample count.
fn snapshot(snapshotter: &Snapshotter) -> Vec<(String, Vec<String>, f64)> {
    let mut rows: Vec<(String, Vec<String>, f64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<String> = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(samples) => samples.len() as f64,
            };
            (key.key().name().to_owned(), labels, value)
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

fn find<'a>(rows: &'a [(String, Vec<String>, f64)], name: &str, label: &str) -> Option<&'a (String, Vec<String>, f64)> {
    rows.iter().find(|(n, labels, _)| n == name && labels.iter().any(|l| l == label))
}

/// A log writer that keeps every line, for the span checks.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on a fresh runtime with a debugging recorder and a TRACE subscriber that keeps
/// every line (span closings included): the metrics it recorded, and its log text.
fn recorded(work: impl std::future::Future<Output = ()>) -> (Vec<(String, Vec<String>, f64)>, String) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(work));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    (snapshot(&snapshotter), text)
}

fn phonepe_client(sandbox: &Sandbox, http: HttpOptions) -> GatewayClient {
    let options = ClientOptions::new().environment(Environment::Custom(sandbox.base_url())).http(http);
    sandbox::client(Gateway::PhonePe, options).unwrap()
}

#[test]
fn a_send_a_verify_a_refusal_and_a_shed_send_record_their_metrics_and_spans() {
    let (rows, logs) = recorded(async {
        let sandbox = Sandbox::start(SandboxConfig::default().fixed_otp("482913")).await.unwrap();
        let client = phonepe_client(&sandbox, HttpOptions::default());
        let send = phonepe::SendOtpRequest::new("9876543210".parse().unwrap()).into();
        let token = client.send_otp(&send).await.unwrap().reference.unwrap();
        let verify = |code: &str| -> VerifyRequest {
            phonepe::VerifyOtpRequest::new(token.clone(), OtpCode::parse(code).unwrap()).into()
        };
        let wrong = client.verify_otp(&verify("111111")).await.unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::WrongOtp);
        client.verify_otp(&verify("482913")).await.unwrap();
        let spent = client.verify_otp(&verify("482913")).await.unwrap_err();
        assert_eq!(spent.kind(), ErrorKind::OtpExpired);
        // A refusal: the magic number that is blocked.
        let blocked = phonepe::SendOtpRequest::new("9000000002".parse().unwrap()).into();
        assert_eq!(client.send_otp(&blocked).await.unwrap_err().kind(), ErrorKind::Blocked);
        // A shed send: one turn, held by a slow send; the next gets none in time.
        let slow_sandbox =
            Sandbox::start(SandboxConfig::default().slow_answer_delay(Duration::from_millis(600))).await.unwrap();
        let one_turn = HttpOptions::default().max_concurrent_requests(1).max_queue_wait(Duration::from_millis(50));
        let limited = phonepe_client(&slow_sandbox, one_turn);
        let slow = phonepe::SendOtpRequest::new("9000000004".parse().unwrap()).into();
        let quick = phonepe::SendOtpRequest::new("9876543211".parse().unwrap()).into();
        let (first, second) = tokio::join!(limited.send_otp(&slow), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            limited.send_otp(&quick).await
        });
        first.unwrap();
        assert_eq!(second.unwrap_err().reached_provider(), otp::Reached::No);
    });
    let count = |name: &str, label: &str| find(&rows, name, label).map(|row| row.2);
    assert_eq!(count("otp.sends", "result=sent"), Some(2.0), "{rows:#?}");
    assert_eq!(count("otp.sends", "result=blocked"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.sends", "result=timeout"), Some(1.0), "the shed send: {rows:#?}");
    assert_eq!(count("otp.verifications", "result=verified"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.verifications", "result=wrong_otp"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.verifications", "result=otp_expired"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.requests.shed", "otp.gateway=phonepe"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.client.queue.wait.duration", "otp.gateway=phonepe"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.client.requests.in_flight", "otp.gateway=phonepe"), Some(0.0), "back to zero: {rows:#?}");
    assert_eq!(count("otp.client.requests.queued", "otp.gateway=phonepe"), Some(0.0), "{rows:#?}");
    let durations: f64 = rows.iter().filter(|(n, ..)| n == "http.client.request.duration").map(|r| r.2).sum();
    assert_eq!(durations, 6.0, "one per HTTP attempt (the shed send made none): {rows:#?}");
    assert!(find(&rows, "http.client.request.duration", "http.response.status_code=200").is_some());
    // Label values come from closed sets: no number, code, token or IP.
    for (name, labels, _) in &rows {
        for label in labels {
            assert!(!has_digit_run(label, 6), "{name}: {label}");
        }
    }
    for span in ["otp.send", "otp.verify", "http.client.request"] {
        assert!(logs.contains(span), "span {span} in the logs");
    }
    for field in [
        "http.request.method=\"POST\"",
        "url.template=\"/v3/merchant/otp/verify\"",
        "http.response.status_code=200",
        "http.request.resend_count=0",
        "outcome=\"verified\"",
    ] {
        assert!(logs.contains(field), "{field} in the logs");
    }
    assert!(!has_digit_run(&logs, 10), "no full number in any span or log line");
    assert!(!logs.contains("482913") && !logs.contains("111111"), "no OTP code in the logs");
}

fn has_digit_run(text: &str, length: usize) -> bool {
    text.as_bytes().windows(length).any(|w| w.iter().all(u8::is_ascii_digit))
}

#[test]
fn the_verifier_records_its_spans_and_the_guard_its_refusals_by_rule() {
    use otp::verifier::{Check, Context, MemoryStore, Verifier};
    let (rows, logs) = recorded(async {
        let sandbox = Sandbox::start(SandboxConfig::default().fixed_otp("482913")).await.unwrap();
        let verifier = Verifier::new(phonepe_client(&sandbox, HttpOptions::default()), MemoryStore::new());
        let context = Context::new("203.0.113.5".parse().unwrap()).caller_key("account-31337").unwrap();
        let request = || phonepe::SendOtpRequest::new("9876543210".parse().unwrap()).into();
        let started = verifier.start(request(), &context).await.unwrap();
        // The cooldown refuses a second start and a resend; each is counted under its rule.
        assert_eq!(verifier.start(request(), &context).await.unwrap_err().guard_rule(), Some("cooldown"));
        assert_eq!(verifier.resend(&started.id, &context).await.unwrap_err().guard_rule(), Some("cooldown"));
        let wrong = verifier.check(&started.id, OtpCode::parse("111111").unwrap()).await.unwrap();
        assert!(matches!(wrong, Check::WrongOtp { tries_left: 4 }));
        let right = verifier.check(&started.id, OtpCode::parse("482913").unwrap()).await.unwrap();
        assert!(matches!(right, Check::Verified { .. }));
    });
    let count = |name: &str, label: &str| find(&rows, name, label).map(|row| row.2);
    assert_eq!(count("otp.guard.refusals", "rule=cooldown"), Some(2.0), "{rows:#?}");
    assert_eq!(count("otp.sends", "result=sent"), Some(1.0), "refusals send nothing: {rows:#?}");
    assert_eq!(count("otp.verifications", "result=wrong_otp"), Some(1.0), "{rows:#?}");
    for (name, labels, _) in &rows {
        for label in labels {
            assert!(
                !has_digit_run(label, 6) && !label.contains("203.0.113") && !label.contains("31337"),
                "{name}: {label}"
            );
        }
    }
    for field in [
        "otp.verifier.start{otp.gateway=\"phonepe\" otp.outcome=\"sent\"",
        "otp.verifier.start{otp.gateway=\"phonepe\" otp.guard.rule=\"cooldown\" error.type=\"rate_limited\"",
        "otp.verifier.resend{otp.gateway=\"phonepe\" otp.guard.rule=\"cooldown\" error.type=\"rate_limited\"",
        "otp.verifier.check{otp.gateway=\"phonepe\" otp.outcome=\"wrong_otp\"",
        "otp.verifier.check{otp.gateway=\"phonepe\" otp.outcome=\"verified\"",
    ] {
        assert!(logs.contains(field), "{field} in the logs:\n{logs}");
    }
    assert!(!has_digit_run(&logs, 10), "no full number in any span or log line");
    for secret in ["482913", "111111", "203.0.113.5", "account-31337"] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

/// A memory store full of live limits refuses a new number unsent, counts `otp.guard.full` for
/// each refusal, and says so in the log once (not once per refusal).
#[test]
fn a_full_memory_store_counts_every_refusal_and_logs_it_once() {
    use otp::verifier::{Context, MemoryStore, Verifier};
    let (rows, logs) = recorded(async {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        // Two places: the first start's number and address fill them.
        let verifier = Verifier::new(phonepe_client(&sandbox, HttpOptions::default()), MemoryStore::with_bounds(2, 10));
        let context = Context::new("203.0.113.5".parse().unwrap());
        let request = |mobile: &str| phonepe::SendOtpRequest::new(mobile.parse().unwrap()).into();
        verifier.start(request("9876543210"), &context).await.unwrap();
        for mobile in ["9876543211", "9876543212", "9876543213"] {
            let error = verifier.start(request(mobile), &context).await.unwrap_err();
            assert_eq!(error.reached_provider(), otp::Reached::No, "{error}");
            assert!(sandbox.otps(mobile).is_empty());
        }
    });
    let full = rows.iter().find(|(name, _, _)| name == "otp.guard.full").map(|row| row.2);
    assert_eq!(full, Some(3.0), "{rows:#?}");
    assert_eq!(logs.matches("the memory store is full of live limits").count(), 1, "{logs}");
}

/// A server that answers every request with a 200 whose body is not JSON.
async fn garbage_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nxyz").await;
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn every_outcome_and_error_kind_of_a_send_is_counted_under_its_own_name() {
    let (rows, logs) = recorded(async {
        let sandbox = Sandbox::start(SandboxConfig::default().slow_answer_delay(Duration::from_secs(2))).await.unwrap();
        let phonepe = phonepe_client(&sandbox, HttpOptions::default());
        let to = |mobile: &str| -> otp::SendOtpRequest { phonepe::SendOtpRequest::new(mobile.parse().unwrap()).into() };
        let kind = |result: Result<otp::SendReceipt, otp::Error>| result.unwrap_err().kind();
        phonepe.send_otp(&to("9876543210")).await.unwrap();
        assert_eq!(kind(phonepe.send_otp(&to("9000000001")).await), ErrorKind::RateLimited);
        assert_eq!(kind(phonepe.send_otp(&to("9000000002")).await), ErrorKind::Blocked);
        assert_eq!(kind(phonepe.send_otp(&to("9000000003")).await), ErrorKind::ProviderUnavailable);
        let bad_email = phonepe::SendOtpRequest::new("9876543211".parse().unwrap()).email("not-an-address").into();
        assert_eq!(kind(phonepe.send_otp(&bad_email).await), ErrorKind::InvalidRequest);
        let impatient = HttpOptions::default().timeout(Duration::from_millis(400));
        let hasty = phonepe_client(&sandbox, impatient);
        assert_eq!(kind(hasty.send_otp(&to("9000000004")).await), ErrorKind::Timeout);
        // A PhonePe client of the sandbox's merchant, with this salt key, at this base URL.
        let phonepe_at = |salt_key: &str, base: String| -> GatewayClient {
            otp::phonepe::PhonePeClient::builder()
                .merchant_id(sandbox::credentials::PHONEPE_MERCHANT_ID)
                .salt_key(salt_key)
                .salt_index(sandbox::credentials::PHONEPE_SALT_INDEX)
                .environment(Environment::Custom(base))
                .build()
                .unwrap()
                .into()
        };
        let wrong_key = phonepe_at("not-the-salt-key", sandbox.base_url());
        assert_eq!(kind(wrong_key.send_otp(&to("9876543212")).await), ErrorKind::Authentication);
        let closed = phonepe_at(sandbox::credentials::PHONEPE_SALT_KEY, "http://127.0.0.1:9".to_owned());
        assert_eq!(kind(closed.send_otp(&to("9876543213")).await), ErrorKind::Transport);
        let garbage = phonepe_at(sandbox::credentials::PHONEPE_SALT_KEY, garbage_server().await);
        assert_eq!(kind(garbage.send_otp(&to("9876543214")).await), ErrorKind::UnexpectedResponse);
        // iServeU's statusCode 1 without a documented meaning: rejected, code kept.
        let iserveu = sandbox::client(
            Gateway::IServeU,
            ClientOptions::new().environment(Environment::Custom(sandbox.base_url())),
        )
        .unwrap();
        let request = otp::iserveu::TransactionOtpRequest::new(
            "9000000001".parse().unwrap(),
            "AADHAAR",
            "REF123456",
            otp::Amount::parse("100").unwrap(),
        );
        assert_eq!(kind(iserveu.send_otp(&request.into()).await), ErrorKind::Rejected);
        // AOPay's code 0: sent, for registration.
        let aopay =
            sandbox::client(Gateway::AOPay, ClientOptions::new().environment(Environment::Custom(sandbox.base_url())))
                .unwrap();
        let receipt = aopay.send_otp(&common::aopay_send("9000000005").into()).await.unwrap();
        assert_eq!(receipt.outcome, otp::Outcome::SentForRegistration);
    });
    let count = |label: &str| -> f64 {
        rows.iter().filter(|(n, labels, _)| n == "otp.sends" && labels.iter().any(|l| l == label)).map(|r| r.2).sum()
    };
    for result in [
        "sent",
        "sent_for_registration",
        "rate_limited",
        "blocked",
        "provider_unavailable",
        "invalid_request",
        "timeout",
        "authentication",
        "transport",
        "unexpected_response",
        "rejected",
    ] {
        assert_eq!(count(&format!("result={result}")), 1.0, "otp.sends{{result={result}}}: {rows:#?}");
    }
    let sends: f64 = rows.iter().filter(|(n, ..)| n == "otp.sends").map(|r| r.2).sum();
    assert_eq!(sends, 11.0, "one count per send, nothing else: {rows:#?}");
    assert!(!has_digit_run(&logs, 10), "no full number in any span or log line");
}
