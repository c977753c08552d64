//! Telemetry: the exact metrics a send, a verify, a refusal and a shed send record, and spans
//! with OpenTelemetry's names; no label or span field carries a number, a code or a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    assert_eq!(count("otp.requests.shed", "otp.gateway=phonepe"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.client.queue.wait.duration", "otp.gateway=phonepe"), Some(1.0), "{rows:#?}");
    assert_eq!(count("otp.client.requests.in_flight", "otp.gateway=phonepe"), Some(0.0), "back to zero: {rows:#?}");
    assert_eq!(count("otp.client.requests.queued", "otp.gateway=phonepe"), Some(0.0), "{rows:#?}");
    let durations: f64 = rows.iter().filter(|(n, ..)| n == "http.client.request.duration").map(|r| r.2).sum();
    assert_eq!(durations, 5.0, "one per HTTP attempt (the shed send made none): {rows:#?}");
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
