//! Nothing a caller sends makes the service fail: every truncation of every gateway's valid
//! start, every field of it replaced by a value of each other JSON type, and bytes that are
//! not text are answered with a problem (400 or 422) or a verification, never a 5xx or a
//! dropped connection (a panicking handler would drop it, failing the request here).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{number, start_body, Harness, Payload, Store};
use otp::Gateway;
use serde_json::{json, Value};

fn replacements() -> Vec<Value> {
    vec![Value::Null, json!(true), json!(-1), json!(1e308), json!("x".repeat(300)), json!([]), json!({}), json!(["a"])]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_makes_the_service_fail() {
    let harness = Harness::start(Store::Memory).await;
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let acceptable = |status: u16| matches!(status, 201 | 400 | 409 | 422 | 429);
    for gateway in Gateway::ALL {
        let body = start_body(gateway, &number()).to_string();
        for end in (0..body.len()).step_by(3) {
            let payload = Payload::Raw("application/json", body.as_bytes()[..end].to_vec());
            let answer = api.call("POST", "/v1/verifications", Some(key), payload, &[]).await;
            assert_eq!((answer.status, answer.code()), (400, Some("malformed_request")), "{gateway} cut at {end}");
        }
        let valid = start_body(gateway, &number());
        let mut fields: Vec<(Option<String>, String)> =
            valid.as_object().unwrap().keys().map(|k| (None, k.clone())).collect();
        fields.extend(valid["params"].as_object().unwrap().keys().map(|k| (Some("params".to_owned()), k.clone())));
        for (parent, field) in fields {
            for replacement in replacements() {
                let mut body = start_body(gateway, &number());
                match &parent {
                    Some(parent) => body[parent][&field] = replacement.clone(),
                    None => body[&field] = replacement.clone(),
                }
                let answer = api.start(key, body, &[]).await;
                assert!(acceptable(answer.status), "{gateway} {field} = {replacement}: {}", answer.text);
            }
        }
    }
    for id in ["%00", "..%2F..", &"a".repeat(2000), "\u{1F600}"] {
        let answer = api.call("GET", &format!("/v1/verifications/{id}"), Some(key), Payload::None, &[]).await;
        assert!(matches!(answer.status, 400 | 404), "{id}: {}", answer.text);
    }
    let bytes = Payload::Raw("application/json", vec![0xff, 0xfe, 0x00, 0x7b]);
    assert_eq!(api.call("POST", "/v1/verifications", Some(key), bytes, &[]).await.status, 400);
    let junk = api.start(key, start_body(Gateway::ALL[0], &number()), &[("idempotency-key", "k\tk")]).await;
    assert_eq!((junk.status, junk.code()), (422, Some("invalid_request")), "{}", junk.text);
    assert_eq!(api.call("GET", "/livez", None, Payload::None, &[]).await.status, 200, "still up");
}

/// An id that is not UTF-8 is no verification's: `not_found` as a problem, after the key's
/// checks, on every route that takes one (axum's own answer was a plain-text 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_is_not_utf8_is_not_found() {
    let harness = Harness::start(Store::Memory).await;
    let api = &harness.api;
    let routes = [
        ("GET", "/v1/verifications/%FF", None),
        ("POST", "/v1/verifications/%FF/check", Some(json!({ "code": "123456" }))),
        ("POST", "/v1/verifications/%FF/resend", Some(json!({ "client_ip": "203.0.113.7" }))),
        ("POST", "/v1/verifications/%FF/cancel", None),
    ];
    for (method, path, body) in routes {
        let payload = body.map_or(Payload::None, Payload::Json);
        let answer = api.call(method, path, Some(&harness.keys.writer), payload, &[]).await;
        assert_eq!((answer.status, answer.code()), (404, Some("not_found")), "{method} {path}: {}", answer.text);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"), "{method} {path}");
        let unauthenticated = api.call(method, path, None, Payload::None, &[]).await;
        assert_eq!(unauthenticated.code(), Some("unauthenticated"), "{method} {path}");
    }
    let forbidden =
        api.call("POST", "/v1/verifications/%FF/cancel", Some(&harness.keys.reader), Payload::None, &[]).await;
    assert_eq!(forbidden.code(), Some("forbidden"), "{}", forbidden.text);
}
