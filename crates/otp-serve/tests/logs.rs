//! The log, as JSON: one line per request with its request id (the caller's, or made), route
//! template, status, duration, gateway and outcome or code — and, in the whole log, never the
//! number, the code, the client's address, the credential, the API key or more than the first
//! 4 characters of a verification id. (Its own test binary: it installs the process's
//! subscriber.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{checkable_number, start_body, Harness, Payload, Store};
use otp::Gateway;
use otp_serve::LogFormat;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_json_line_per_request_and_nothing_personal_or_secret() {
    let buffer = Buffer::default();
    let subscriber = otp_serve::subscriber(LogFormat::Json, "trace", buffer.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");

    let harness = Harness::start(Store::Memory).await;
    let (api, key) = (&harness.api, harness.keys.credentials.as_str());
    let mut secrets: Vec<String> = vec![key.to_owned(), "198.51.100.23".to_owned()];
    let mut ids = Vec::new();
    let mut references = 0;
    for gateway in Gateway::ALL {
        let to = checkable_number(gateway);
        let mut body = start_body(gateway, &to);
        body["client_ip"] = json!("198.51.100.23");
        let started = api.start(key, body, &[("x-request-id", "log-test-1"), ("idempotency-key", "log-key-1")]).await;
        // The same key with another gateway's body is refused: logged as its code.
        if started.status != 201 {
            assert_eq!(started.code(), Some("idempotency_key_reused"), "{}", started.text);
            let mut body = start_body(gateway, &to);
            body["client_ip"] = json!("198.51.100.23");
            let started = api.start(key, body, &[]).await;
            assert_eq!(started.status, 201, "{}", started.text);
            ids.push(started.id());
        } else {
            ids.push(started.id());
        }
        let id = ids.last().unwrap().clone();
        let code = harness.code(&to);
        secrets.push(to.clone());
        secrets.push(code.clone());
        for reference in harness.sandbox.otps(&to).iter().filter_map(|otp| otp.reference.clone()) {
            references += 1;
            secrets.push(reference);
        }
        let wrong = api.check(key, &id, &harness.wrong_code(&to)).await;
        assert_eq!(wrong.status, 422);
        let approved = api.check(key, &id, &code).await;
        assert_eq!(approved.status, 200, "{}", approved.text);
        if let Some(credential) = approved.body.get("credential").and_then(Value::as_str) {
            secrets.push(credential.to_owned());
        }
        let _ = api.status(key, &id).await;
        let resend = json!({ "client_ip": "198.51.100.23", "caller_key": "account-secret-9" });
        let _ =
            api.call("POST", &format!("/v1/verifications/{id}/resend"), Some(key), Payload::Json(resend), &[]).await;
    }
    secrets.push("account-secret-9".to_owned());
    secrets.extend(ids.iter().map(|id| id[..8].to_owned()));
    assert!(references > 0, "some gateway answered with a reference");

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> =
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["target"] == "otp_serve::request").collect();
    assert!(requests.len() >= 4 * 5, "{} request lines", requests.len());
    for line in &requests {
        for field in ["request_id", "method", "route", "status", "duration_ms"] {
            assert!(line.get(field).is_some(), "{field} in {line}");
        }
        if let Some(id) = line.get("id").and_then(Value::as_str) {
            assert_eq!(id.chars().count(), 4, "{line}");
        }
    }
    assert!(requests.iter().any(|l| l["request_id"] == "log-test-1" && l["route"] == "/v1/verifications"));
    assert!(requests.iter().any(|l| l["route"] == "/v1/verifications/{id}/check" && l["code"] == "wrong_otp"));
    assert!(requests.iter().any(|l| l["route"] == "/v1/verifications/{id}/check" && l["outcome"] == "verified"));
    assert!(requests.iter().all(|l| l["route"].as_str().is_some_and(|r| !r.contains('.'))), "templates, not paths");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret:?} is in the log");
    }
}
