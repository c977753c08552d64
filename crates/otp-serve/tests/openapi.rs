//! `docs/openapi.json` is the document the service serves, as `codegen --check` keeps
//! generated code fresh: after changing a handler or its types, regenerate it with
//! `OTP_SERVE_WRITE_OPENAPI=1 cargo test -p otp-serve --test openapi`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::path::PathBuf;

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
