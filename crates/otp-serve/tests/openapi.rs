//! `docs/openapi.json` is the document the service serves, as `codegen --check` keeps
//! generated code fresh: after changing a handler or its types, regenerate it with
//! `OTP_SERVE_WRITE_OPENAPI=1 cargo test -p otp-serve --test openapi`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::path::PathBuf;

use common::{number, start_body, Harness, Store};
use otp::Gateway;
use serde_json::{json, Value};

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_document_is_the_served_one() {
    let document = otp_serve::openapi_document();
    if std::env::var_os("OTP_SERVE_WRITE_OPENAPI").is_some() {
        std::fs::write(committed(), &document).expect("docs/openapi.json is writable");
    }
    let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        on_disk == document,
        "docs/openapi.json is stale: run OTP_SERVE_WRITE_OPENAPI=1 cargo test -p otp-serve --test openapi"
    );
    let parsed: serde_json::Value = serde_json::from_str(&document).expect("JSON");
    assert_eq!(parsed["openapi"], "3.1.0");
    let mut refs = Vec::new();
    collect_refs(&parsed, &mut refs);
    assert!(refs.len() > 10);
    for target in refs {
        let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
        assert!(parsed["components"]["schemas"].get(name).is_some(), "{target} resolves");
    }
}

fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", serde_json::Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(value, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_serves_it() {
    let config =
        otp_serve::ServeConfig::sandbox().expect("sandbox config").listen("127.0.0.1:0".parse().expect("addr"));
    let server = otp_serve::Server::start(config).await.expect("starts");
    let served = reqwest::get(format!("{}/openapi.json", server.base_url())).await.expect("answers");
    assert_eq!(served.headers()["content-type"], "application/json");
    assert_eq!(served.text().await.expect("body"), otp_serve::openapi_document());
}

/// The schema of a start through `gateway` (`…Start`, by the discriminator's mapping).
fn start_schema(document: &Value, gateway: Gateway) -> &Value {
    let start = &document["components"]["schemas"]["StartRequest"];
    let target = start["discriminator"]["mapping"][gateway.as_str()].as_str().unwrap();
    &document["components"]["schemas"][target.strip_prefix("#/components/schemas/").unwrap()]
}

fn allows_null(property: &Value) -> bool {
    property["type"].as_array().is_some_and(|types| types.contains(&json!("null")))
        || property["oneOf"].as_array().is_some_and(|items| items.iter().any(|item| item["type"] == "null"))
}

/// What a start's schema requires and allows to be `null` is what the service does: a gateway
/// with a required `params` field refuses a start without `params` (so the document requires
/// it), and `null` for an optional field is answered as its absence is (so the document
/// allows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_s_schema_requires_and_allows_what_the_service_does() {
    let document: Value = serde_json::from_str(&otp_serve::openapi_document()).unwrap();
    let harness = Harness::start(Store::Memory).await;
    let key = harness.keys.writer.as_str();
    for gateway in Gateway::ALL {
        let schema = start_schema(&document, gateway);
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();

        let mut without = start_body(gateway, &number());
        without.as_object_mut().unwrap().remove("params");
        let answer = harness.api.start(key, without, &[]).await;
        let refused = (answer.status, answer.code()) == (400, Some("malformed_request"));
        assert!(answer.status == 201 || refused, "{gateway} without params: {}", answer.text);
        assert_eq!(required.contains(&"params"), refused, "{gateway}: the document requires params iff a start does");

        for field in ["caller_key", "customer_name", "params"] {
            if required.contains(&field) {
                continue;
            }
            let mut absent = start_body(gateway, &number());
            absent.as_object_mut().unwrap().remove(field);
            let absent = harness.api.start(key, absent, &[]).await;
            let mut null = start_body(gateway, &number());
            null[field] = Value::Null;
            let null = harness.api.start(key, null, &[]).await;
            assert_eq!((null.status, null.code()), (absent.status, absent.code()), "{gateway} {field}: {}", null.text);
            assert!(allows_null(&schema["properties"][field]), "{gateway} {field}: the document allows null");
        }
    }
}
