//! `otp serve --sandbox` as a script sees it: the banner's lines, the development key, the
//! embedded sandbox's inbox over HTTP for the code, and `/metrics` with the SDK's, the
//! verifier's and the service's own figures labelled by route template.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{number, start_body, Api};
use otp::Gateway;
use otp_serve::{ServeConfig, Server};
use serde_json::Value;

fn line<'a>(banner: &'a [String], prefix: &str) -> &'a str {
    banner.iter().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in {banner:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_serves_every_gateway_with_a_development_key() {
    let server = Server::start(ServeConfig::sandbox().unwrap().listen("127.0.0.1:0".parse().unwrap())).await.unwrap();
    let banner = server.banner();
    let http = reqwest::Client::new();
    assert_eq!(banner.len(), 4, "{banner:?}");
    let base = line(&banner, "listening: ").to_owned();
    let key = line(&banner, "api_key: ").to_owned();
    let sandbox = line(&banner, "sandbox: ").to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && sandbox.starts_with("http://127.0.0.1:"));
    let inbox = line(&banner, "inbox: ");
    assert_eq!(inbox, format!("{sandbox}/__sandbox/"), "the inbox page is the sandbox's");
    let page = http.get(inbox).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(Some(key.as_str()), server.dev_api_key().map(|k| k.expose_secret()));
    assert!(!format!("{server:?}").contains(&key), "the key never shows in Debug");
    let api = Api::new(base);
    for gateway in Gateway::ALL {
        let to = common::checkable_number(gateway);
        let started = api.start(&key, start_body(gateway, &to), &[]).await;
        assert_eq!(started.status, 201, "{gateway}: {}", started.text);
        let inbox: Value = serde_json::from_str(
            &http.get(format!("{sandbox}/__sandbox/otps?mobile={to}")).send().await.unwrap().text().await.unwrap(),
        )
        .unwrap();
        let code = inbox["otps"][0]["otp"].as_str().unwrap().to_owned();
        let approved = api.check(&key, &started.id(), &code).await;
        assert_eq!(approved.status, 200, "{gateway}: {}", approved.text);
    }
    // Only loopback.
    let public = ServeConfig::sandbox().unwrap().listen("0.0.0.0:0".parse().unwrap());
    assert_eq!(
        Server::start(public).await.unwrap_err().to_string(),
        "config: listen: --sandbox listens on a loopback address only"
    );

    let metrics = http.get(format!("{}/metrics", server.base_url())).send().await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for expected in [
        "http_server_request_duration",
        "http_route=\"/v1/verifications/{id}/check\"",
        "http_route=\"/v1/verifications\"",
        "otp_sends",
        "otp_verifications",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    assert!(!text.contains(&key[7..19]), "no key");
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once('{').and_then(|(_, rest)| rest.split_once('}')))
        .map(|(labels, _)| labels)
        .collect();
    assert!(labels.len() > 10);
    for labels in labels {
        assert_eq!(otp::mask_digit_runs(labels), labels, "no number (a run of 10 digits) in a label");
    }
    // A route's label is its template: no id in any label.
    assert!(!text.lines().any(|l| l.contains("/v1/verifications/") && !l.contains("{id}")), "{text}");
    server.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_may_listen_on_their_own_address() {
    let config = ServeConfig::sandbox()
        .unwrap()
        .listen("127.0.0.1:0".parse().unwrap())
        .metrics_listen("127.0.0.1:0".parse().unwrap());
    let server = Server::start(config).await.unwrap();
    let metrics = server.metrics_addr().expect("its own address");
    assert!(server.banner().iter().any(|l| l == &format!("metrics: http://{metrics}/metrics")));
    let key = server.dev_api_key().unwrap().expose_secret().to_owned();
    let api = Api::new(server.base_url());
    assert_eq!(api.start(&key, start_body(Gateway::ALL[0], &number()), &[]).await.status, 201);
    let here = reqwest::get(format!("{}/metrics", server.base_url())).await.unwrap();
    assert_eq!(here.status(), 404, "not on the API's address");
    let there = reqwest::get(format!("http://{metrics}/metrics")).await.unwrap();
    assert_eq!(there.status(), 200);
    assert!(there.text().await.unwrap().contains("http_server_request_duration"));
}
