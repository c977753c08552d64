//! The route walk: every route of the service answers every problem code its OpenAPI document
//! lists for it (`x-problem-codes`), each made to happen here — over real TCP, with the
//! sandbox as every gateway and a proxy before it that fails on demand — on the memory store
//! and on a real redis-server (where the store is also stopped, and started again).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::time::{Duration, Instant};

use common::{fixture, number, start_body, Answer, Harness, Mode, Payload, Store, Walk, GATEWAY_TIMEOUT};
use otp::Gateway;
use otp_verifier::test_util::RedisServer;
use serde_json::{json, Value};

const START: &str = "/v1/verifications";
const STATUS: &str = "/v1/verifications/{id}";
const CHECK: &str = "/v1/verifications/{id}/check";
const RESEND: &str = "/v1/verifications/{id}/resend";
const CANCEL: &str = "/v1/verifications/{id}/cancel";
const READYZ: &str = "/readyz";
const EVENTS: &str = "/v1/events";
const METRICS: &str = "/metrics";

/// What no test here can make happen, and why. Each entry is checked to stay unwalked.
const UNWALKED: &[(&str, &str, &str, &str)] = &[
    (
        "POST",
        CHECK,
        "blocked",
        "a verify answer of a gateway's own blocked code; the gateway crates' code tables are tested with each code",
    ),
    (
        "POST",
        RESEND,
        "blocked",
        "a number the gateway blocks only after its first send succeeded: no sandbox number does that",
    ),
];

/// …and on the memory store, the store cannot be stopped.
fn memory_unwalked() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let mut unwalked = UNWALKED.to_vec();
    for (method, route) in [
        ("POST", START),
        ("GET", STATUS),
        ("POST", CHECK),
        ("POST", RESEND),
        ("POST", CANCEL),
        ("GET", READYZ),
        ("GET", EVENTS),
    ] {
        unwalked.push((method, route, "store_unavailable", "the memory store cannot be unreachable"));
    }
    unwalked
}

fn path(route: &str, id: &str) -> String {
    route.replace("{id}", id)
}

async fn started(harness: &Harness, gateway: Gateway, to: &str) -> String {
    let answer = harness.api.start(&harness.keys.writer, start_body(gateway, to), &[]).await;
    assert_eq!(answer.status, 201, "{gateway}: {}", answer.text);
    answer.id()
}

/// A request to `route` for `id` with its usual body.
async fn request(harness: &Harness, method: &str, route: &str, id: &str, key: Option<&str>) -> Answer {
    let payload = match route {
        START => Payload::Json(start_body(Gateway::ALL[0], &number())),
        CHECK => Payload::Json(json!({ "code": "123456" })),
        RESEND => Payload::Json(json!({ "client_ip": "203.0.113.7" })),
        _ => Payload::None,
    };
    harness.api.call(method, &path(route, id), key, payload, &[]).await
}

async fn authentication(harness: &Harness, walk: &Walk) {
    let id = started(harness, Gateway::ALL[0], &number()).await;
    let routes = [("POST", START), ("GET", STATUS), ("POST", CHECK), ("POST", RESEND), ("POST", CANCEL)];
    for (method, route) in routes {
        walk.problem(&request(harness, method, route, &id, None).await, method, route, "unauthenticated");
        walk.problem(
            &request(harness, method, route, &id, Some("otp_sk_not-a-key")).await,
            method,
            route,
            "unauthenticated",
        );
        let basic = harness
            .api
            .call(method, &path(route, &id), None, Payload::None, &[("authorization", "Basic dXNlcjpwdw==")])
            .await;
        walk.problem(&basic, method, route, "unauthenticated");
        // The key of the other scope.
        let lacking = if method == "GET" { &harness.keys.write_only } else { &harness.keys.reader };
        walk.problem(&request(harness, method, route, &id, Some(lacking)).await, method, route, "forbidden");
    }
}

async fn malformed_and_invalid(harness: &Harness, walk: &Walk) {
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let gateway = Gateway::ALL[0];
    let raw = |text: &'static str| Payload::Raw("application/json", text.as_bytes().to_vec());
    let start = |payload| api.call("POST", START, Some(key), payload, &[]);
    walk.problem(&start(raw("{\"gateway\":")).await, "POST", START, "malformed_request");
    walk.problem(&start(raw("[]")).await, "POST", START, "malformed_request");
    walk.problem(&start(Payload::Raw("text/plain", b"{}".to_vec())).await, "POST", START, "malformed_request");
    let mut body = start_body(gateway, &number());
    body["to"] = json!(9876543210u64);
    let answer = start(Payload::Json(body)).await;
    walk.problem(&answer, "POST", START, "malformed_request");
    assert!(!answer.text.contains("9876543210"), "the caller's number is not echoed: {}", answer.text);
    let mut body = start_body(gateway, &number());
    body["gateway"] = json!("nowhere");
    walk.problem(&start(Payload::Json(body)).await, "POST", START, "malformed_request");
    let mut body = start_body(gateway, &number());
    body["colour"] = json!("blue");
    walk.problem(&start(Payload::Json(body)).await, "POST", START, "malformed_request");
    let mut body = start_body(gateway, &number());
    body["customer_name"] = json!("x".repeat(17 * 1024));
    let answer = start(Payload::Json(body)).await;
    walk.problem(&answer, "POST", START, "malformed_request");
    assert!(answer.body["detail"].as_str().unwrap().contains("16384"), "{}", answer.text);
    for gateway in Gateway::ALL {
        let mut body = start_body(gateway, &number());
        body["params"] = fixture(gateway)["wrong_type"].clone();
        let answer = start(Payload::Json(body)).await;
        walk.problem(&answer, "POST", START, "malformed_request");
        assert!(answer.body["detail"].as_str().unwrap().starts_with("params."), "{gateway}: {}", answer.text);
        for invalid in fixture(gateway)["invalid"].as_array().unwrap() {
            let mut body = start_body(gateway, &number());
            body["params"] = invalid["params"].clone();
            if invalid.get("no_customer_name").is_some() {
                body.as_object_mut().unwrap().remove("customer_name");
            }
            let answer = start(Payload::Json(body)).await;
            walk.problem(&answer, "POST", START, "invalid_request");
            let detail = answer.body["detail"].as_str().unwrap();
            assert!(detail.contains(invalid["detail"].as_str().unwrap()), "{gateway}: {detail}");
            assert_eq!(answer.body["may_have_sent"], "no");
        }
    }
    let mut body = start_body(gateway, "12345");
    walk.problem(&start(Payload::Json(body.clone())).await, "POST", START, "invalid_request");
    body["to"] = json!(number());
    body["client_ip"] = json!("not-an-address");
    walk.problem(&start(Payload::Json(body)).await, "POST", START, "invalid_request");
    let body = start_body(gateway, &number());
    let answer = api.start(key, body.clone(), &[("idempotency-key", "")]).await;
    walk.problem(&answer, "POST", START, "invalid_request");

    let id = started(harness, gateway, &number()).await;
    let (check_path, resend_path) = (path(CHECK, &id), path(RESEND, &id));
    let check = |payload| api.call("POST", &check_path, Some(key), payload, &[]);
    walk.problem(&check(raw("code=1")).await, "POST", CHECK, "malformed_request");
    walk.problem(&check(Payload::Json(json!({ "code": 123456 }))).await, "POST", CHECK, "malformed_request");
    walk.problem(
        &check(Payload::Json(json!({ "code": "123456", "extra": 1 }))).await,
        "POST",
        CHECK,
        "malformed_request",
    );
    walk.problem(&check(Payload::Json(json!({ "code": "12ab" }))).await, "POST", CHECK, "invalid_request");
    let resend = |payload| api.call("POST", &resend_path, Some(key), payload, &[]);
    walk.problem(&resend(Payload::None).await, "POST", RESEND, "malformed_request");
    walk.problem(&resend(Payload::Json(json!({ "client_ip": 7 }))).await, "POST", RESEND, "malformed_request");
    walk.problem(&resend(Payload::Json(json!({ "client_ip": "nowhere" }))).await, "POST", RESEND, "invalid_request");
    let bad_key = api
        .call(
            "POST",
            &path(RESEND, &id),
            Some(key),
            Payload::Json(json!({ "client_ip": "203.0.113.7" })),
            &[("idempotency-key", "")],
        )
        .await;
    walk.problem(&bad_key, "POST", RESEND, "invalid_request");
    // A cancel reads no body, but the bounds of every request hold for it too.
    let oversized = Payload::Raw("application/json", vec![b' '; 17 * 1024]);
    let answer = api.call("POST", &path(CANCEL, &id), Some(key), oversized, &[]).await;
    walk.problem(&answer, "POST", CANCEL, "malformed_request");

    // A transaction OTP is consumed elsewhere: its check (and for some gateways its resend) is refused.
    for gateway in Gateway::ALL {
        let Some(transaction) = fixture(gateway).get("transaction").cloned() else { continue };
        let mut body = start_body(gateway, &number());
        body["params"] = transaction["params"].clone();
        let id = api.start(key, body, &[]).await.id();
        let answer = api.check(key, &id, "123456").await;
        walk.problem(&answer, "POST", CHECK, transaction["check"].as_str().unwrap());
        if let Some(code) = transaction["resend"].as_str().filter(|c| *c != "ok") {
            walk.problem(&api.resend(key, &id, &[]).await, "POST", RESEND, code);
        }
    }
}

async fn not_found(harness: &Harness, walk: &Walk) {
    let theirs = harness.api.start(&harness.keys.other, start_body(Gateway::ALL[0], &number()), &[]).await.id();
    let mut forged = theirs.clone();
    forged.replace_range(forged.len() - 2.., "AA");
    for id in [theirs.as_str(), forged.as_str(), "nonsense", "AAAAAAAAAAAAAAAAAAAAAA.nowhere.AAAAAAAAAAAAAAAA"] {
        for (method, route) in [("GET", STATUS), ("POST", CHECK), ("POST", RESEND), ("POST", CANCEL)] {
            let answer = request(harness, method, route, id, Some(&harness.keys.writer)).await;
            walk.problem(&answer, method, route, "not_found");
        }
    }
}

async fn a_session_s_ends(harness: &Harness, walk: &Walk) {
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let gateway = Gateway::ALL[0];
    // Wrong codes until none is left.
    let to = number();
    let id = started(harness, gateway, &to).await;
    let wrong = harness.wrong_code(&to);
    for left in (0..5).rev() {
        let answer = api.check(key, &id, &wrong).await;
        walk.problem(&answer, "POST", CHECK, "wrong_otp");
        assert_eq!(answer.body["tries_left"], left);
    }
    walk.problem(&api.check(key, &id, &harness.code(&to)).await, "POST", CHECK, "max_attempts_reached");
    walk.problem(&api.resend(key, &id, &[]).await, "POST", RESEND, "max_attempts_reached");
    assert_eq!(api.status(key, &id).await.body["status"], "max_attempts_reached");
    // Approved.
    let to = number();
    let id = started(harness, gateway, &to).await;
    assert_eq!(api.check(key, &id, &harness.code(&to)).await.status, 200);
    walk.problem(&api.check(key, &id, &harness.code(&to)).await, "POST", CHECK, "already_approved");
    walk.problem(&api.resend(key, &id, &[]).await, "POST", RESEND, "already_approved");
    walk.problem(&api.cancel(key, &id).await, "POST", CANCEL, "already_approved");
    // Cancelled.
    let id = started(harness, gateway, &number()).await;
    assert_eq!(api.cancel(key, &id).await.status, 200);
    walk.problem(&api.check(key, &id, "123456").await, "POST", CHECK, "canceled");
    walk.problem(&api.resend(key, &id, &[]).await, "POST", RESEND, "canceled");
}

/// Expiry, on a service whose sessions live a second.
async fn expiry(store: Store, walk: &Walk) {
    let harness = Harness::start_with(store, |config| config.session_lifetime(Duration::from_secs(1))).await;
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let to = number();
    let checked = started(&harness, Gateway::ALL[0], &to).await;
    let resent = started(&harness, Gateway::ALL[0], &number()).await;
    let canceled = started(&harness, Gateway::ALL[0], &number()).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    walk.problem(&api.check(key, &checked, &harness.code(&to)).await, "POST", CHECK, "otp_expired");
    walk.problem(&api.resend(key, &resent, &[]).await, "POST", RESEND, "otp_expired");
    assert_eq!(api.status(key, &checked).await.body["status"], "expired");
    let cancel = api.cancel(key, &canceled).await;
    assert_eq!((cancel.status, cancel.body["status"].as_str()), (200, Some("expired")), "{}", cancel.text);
}

/// A replica with room for one send in flight: while one start waits on a slow gateway,
/// another start and a resend are shed unsent, and the one in flight finishes.
async fn overload(store: Store, walk: &Walk) {
    let harness = Harness::start_with(store, |config| config.max_in_flight_sends(1)).await;
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let waiting = started(&harness, Gateway::ALL[0], &number()).await;
    harness.proxy.set(Mode::Delay(Duration::from_millis(800)));
    let slow_to = number();
    let slow = {
        let api = api.clone();
        let (key, body) = (key.to_owned(), start_body(Gateway::ALL[0], &slow_to));
        tokio::spawn(async move { api.start(&key, body, &[]).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed_to = number();
    let shed = api.start(key, start_body(Gateway::ALL[0], &shed_to), &[]).await;
    walk.problem(&shed, "POST", START, "overloaded");
    assert_eq!(shed.body["may_have_sent"], "no");
    walk.problem(&api.resend(key, &waiting, &[]).await, "POST", RESEND, "overloaded");
    assert_eq!(slow.await.unwrap().status, 201, "the send in flight finished");
    harness.proxy.set(Mode::Pass);
    assert!(harness.sandbox.otps(&shed_to).is_empty(), "nothing was sent for the shed start");
    assert_eq!(api.start(key, start_body(Gateway::ALL[0], &shed_to), &[]).await.status, 201, "room again");
}

async fn idempotency_and_the_guard(harness: &Harness, walk: &Walk) {
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let gateway = Gateway::ALL[0];
    let body = start_body(gateway, &number());
    assert_eq!(api.start(key, body, &[("idempotency-key", "walk-1")]).await.status, 201);
    let other = start_body(gateway, &number());
    walk.problem(
        &api.start(key, other, &[("idempotency-key", "walk-1")]).await,
        "POST",
        START,
        "idempotency_key_reused",
    );

    // While the first call runs, a retry is refused as in progress.
    harness.proxy.set(Mode::Delay(Duration::from_millis(1000)));
    let body = start_body(gateway, &number());
    let first = tokio::spawn({
        let (api, key, body) = (api.clone(), key.to_owned(), body.clone());
        async move { api.start(&key, body, &[("idempotency-key", "walk-2")]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    walk.problem(
        &api.start(key, body.clone(), &[("idempotency-key", "walk-2")]).await,
        "POST",
        START,
        "idempotency_in_progress",
    );
    assert_eq!(first.await.unwrap().status, 201);
    let id = started(harness, gateway, &number()).await;
    let first = tokio::spawn({
        let (api, key, id) = (api.clone(), key.to_owned(), id.clone());
        async move { api.resend(&key, &id, &[("idempotency-key", "walk-3")]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    walk.problem(
        &api.resend(key, &id, &[("idempotency-key", "walk-3")]).await,
        "POST",
        RESEND,
        "idempotency_in_progress",
    );
    assert_eq!(first.await.unwrap().status, 200);
    harness.proxy.set(Mode::Pass);

    // The guard: one send per caller key an hour (these tests' rule).
    let mut body = start_body(gateway, &number());
    body["caller_key"] = json!("account-7");
    let first = api.start(key, body.clone(), &[]).await;
    assert_eq!(first.status, 201, "{}", first.text);
    body["to"] = json!(number());
    let refused = api.start(key, body, &[]).await;
    walk.problem(&refused, "POST", START, "rate_limited");
    assert_eq!(
        (refused.body["rule"].as_str(), refused.body["may_have_sent"].as_str()),
        (Some("caller_key"), Some("no"))
    );
    let resend = json!({ "client_ip": "203.0.113.7", "caller_key": "account-7" });
    let refused = api.call("POST", &path(RESEND, &first.id()), Some(key), Payload::Json(resend), &[]).await;
    walk.problem(&refused, "POST", RESEND, "rate_limited");
    assert_eq!(refused.body["rule"], "caller_key");
}

/// Every failure a gateway can answer with, made by the proxy: on starts through every
/// gateway, and on one gateway's checks and resends.
async fn gateway_failures(harness: &Harness, walk: &Walk) {
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let modes = [
        (Mode::Status(401), "gateway_authentication"),
        (Mode::Status(429), "rate_limited"),
        (Mode::Status(500), "provider_unavailable"),
        (Mode::Status(418), "rejected"),
        (Mode::Html, "unexpected_response"),
        (Mode::Broken, "transport"),
        (Mode::Delay(GATEWAY_TIMEOUT + Duration::from_millis(700)), "timeout"),
    ];
    for (mode, code) in modes {
        for gateway in Gateway::ALL {
            harness.proxy.set(mode);
            let answer = api.start(key, start_body(gateway, &number()), &[]).await;
            harness.proxy.set(Mode::Pass);
            walk.problem(&answer, "POST", START, code);
            assert_ne!(answer.body["may_have_sent"], "no", "{gateway} {code}: the gateway was asked");
            if code == "rate_limited" {
                assert!(
                    answer.body["provider"]["http_status"] == 429 && answer.body.get("rule").is_none(),
                    "{}",
                    answer.text
                );
            }
        }
        let gateway = Gateway::ALL[0];
        let to = number();
        let checked = started(harness, gateway, &to).await;
        let resent = started(harness, gateway, &number()).await;
        harness.proxy.set(mode);
        let check = api.check(key, &checked, &harness.code(&to)).await;
        let resend = api.resend(key, &resent, &[]).await;
        harness.proxy.set(Mode::Pass);
        walk.problem(&check, "POST", CHECK, code);
        walk.problem(&resend, "POST", RESEND, code);
    }
    // The sandbox's magic numbers: a refusal of this number by some gateway.
    let mut codes = std::collections::BTreeSet::new();
    for gateway in Gateway::ALL {
        let answer = api.start(key, start_body(gateway, "9000000002"), &[]).await;
        if let Some(code) = answer.code() {
            walk.problem(&answer, "POST", START, code);
            codes.insert(code.to_owned());
        }
    }
    assert!(codes.contains("blocked"), "{codes:?}");
}

async fn http_answers(harness: &Harness) {
    let api = &harness.api;
    let wrong = api.call("GET", START, Some(&harness.keys.writer), Payload::None, &[]).await;
    assert_eq!((wrong.status, wrong.code(), wrong.header("allow")), (405, Some("method_not_allowed"), Some("POST")));
    let nowhere = api.call("GET", "/v2/nowhere", None, Payload::None, &[]).await;
    assert_eq!((nowhere.status, nowhere.code()), (404, Some("not_found")));
    assert_eq!(api.call("GET", "/livez", None, Payload::None, &[]).await.body["status"], "ok");
    assert_eq!(api.call("GET", "/readyz", None, Payload::None, &[]).await.body["status"], "ready");
    let traced = api.call("GET", "/livez", None, Payload::None, &[("x-request-id", "trace-77")]).await;
    assert_eq!(traced.header("x-request-id"), Some("trace-77"));
    let problem = api.call("GET", "/v2/nowhere", None, Payload::None, &[("x-request-id", "trace-78")]).await;
    assert_eq!(problem.body["request_id"], "trace-78");
}

/// With `/metrics` on its own address, the API's address answers it `not_found`.
async fn metrics_elsewhere(walk: &Walk) {
    let harness =
        Harness::start_with(Store::Memory, |config| config.metrics_listen("127.0.0.1:0".parse().unwrap())).await;
    let answer = harness.api.call("GET", METRICS, None, Payload::None, &[]).await;
    walk.problem(&answer, "GET", METRICS, "not_found");
}

async fn document(harness: &Harness) -> Value {
    let answer = harness.api.call("GET", "/openapi.json", None, Payload::None, &[]).await;
    assert_eq!(answer.status, 200);
    answer.body
}

/// The audit trail: its refusals, and what it lists — the caller's tenant's events only, in
/// order, filtered and paged.
async fn events(harness: &Harness, walk: &Walk) {
    let (api, keys) = (&harness.api, &harness.keys);
    let get = |query: &str, key: Option<&str>| {
        let (path, key) = (format!("{EVENTS}{query}"), key.map(str::to_owned));
        async move { api.call("GET", &path, key.as_deref(), Payload::None, &[]).await }
    };
    walk.problem(&get("", None).await, "GET", EVENTS, "unauthenticated");
    walk.problem(&get("", Some(&keys.write_only)).await, "GET", EVENTS, "forbidden");
    walk.problem(&get("?limit=many", Some(&keys.reader)).await, "GET", EVENTS, "malformed_request");
    walk.problem(&get("?colour=red", Some(&keys.reader)).await, "GET", EVENTS, "malformed_request");
    for refused in ["?limit=0", "?limit=101", "?type=verification.nope", "?status=lost", "?cursor=abc", "?cursor=1-"] {
        walk.problem(&get(refused, Some(&keys.reader)).await, "GET", EVENTS, "invalid_request");
    }

    let to = number();
    let id = started(harness, Gateway::ALL[0], &to).await;
    assert_eq!(api.check(&keys.writer, &id, &harness.code(&to)).await.status, 200);
    let mine = get(&format!("?verification_id={id}"), Some(&keys.reader)).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    let types: Vec<&str> =
        mine.body["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["verification.started", "verification.approved"], "{}", mine.text);
    let first = &mine.body["events"][0];
    assert_eq!(first["id"], id.as_str());
    assert!(first["to"].as_str().unwrap().starts_with("XXXXXX") && !mine.text.contains(&to), "masked: {}", mine.text);
    let theirs = get(&format!("?verification_id={id}"), Some(&keys.other)).await;
    assert_eq!((theirs.status, theirs.body["events"].as_array().unwrap().len()), (200, 0), "another tenant's");
    let approved = get(&format!("?verification_id={id}&type=verification.approved"), Some(&keys.reader)).await;
    assert_eq!(approved.body["events"].as_array().unwrap().len(), 1);
    // Paged one at a time, the same events in the same order.
    let (mut cursor, mut paged) = (String::new(), Vec::new());
    loop {
        let page = get(&format!("?verification_id={id}&limit=1{cursor}"), Some(&keys.reader)).await;
        let events = page.body["events"].as_array().unwrap();
        paged.extend(events.iter().map(|e| e["type"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, types);
    let everything = get("?limit=100", Some(&keys.other)).await;
    assert!(!everything.text.contains(&id), "no other tenant's events in a listing");
    let failed = get("?status=failed", Some(&keys.reader)).await;
    assert_eq!((failed.status, failed.body["events"].as_array().unwrap().len()), (200, 0), "no webhooks here");
}

async fn walk_all(harness: &Harness, store: Store, walk: &Walk) {
    events(harness, walk).await;
    authentication(harness, walk).await;
    malformed_and_invalid(harness, walk).await;
    not_found(harness, walk).await;
    a_session_s_ends(harness, walk).await;
    expiry(store.clone(), walk).await;
    overload(store, walk).await;
    idempotency_and_the_guard(harness, walk).await;
    gateway_failures(harness, walk).await;
    http_answers(harness).await;
    metrics_elsewhere(walk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_code_on_the_memory_store() {
    let harness = Harness::start(Store::Memory).await;
    let walk = Walk::default();
    walk_all(&harness, Store::Memory, &walk).await;
    walk.covers(&document(&harness).await, &memory_unwalked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_code_on_redis_and_the_store_may_go_away() {
    let mut redis = RedisServer::start().expect("redis-server (the tests need a real one)");
    let store = Store::Redis(redis.url());
    let harness = Harness::start(store.clone()).await;
    let walk = Walk::default();
    walk_all(&harness, store, &walk).await;

    // Redis goes away: nothing is ready, nothing is sent, every route says so.
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let to = number();
    let id = started(&harness, Gateway::ALL[0], &to).await;
    redis.stop();
    let ready = api.call("GET", READYZ, None, Payload::None, &[]).await;
    walk.problem(&ready, "GET", READYZ, "store_unavailable");
    let fresh = number();
    for gateway in Gateway::ALL {
        let answer = api.start(key, start_body(gateway, &fresh), &[]).await;
        walk.problem(&answer, "POST", START, "store_unavailable");
        assert_eq!(answer.body["may_have_sent"], "no");
        let keyed = api.start(key, start_body(gateway, &fresh), &[("idempotency-key", "outage-1")]).await;
        walk.problem(&keyed, "POST", START, "store_unavailable");
    }
    assert!(harness.sandbox.otps(&fresh).is_empty(), "nothing was sent while the store was away");
    walk.problem(&api.status(key, &id).await, "GET", STATUS, "store_unavailable");
    walk.problem(&api.check(key, &id, &harness.code(&to)).await, "POST", CHECK, "store_unavailable");
    walk.problem(&api.resend(key, &id, &[]).await, "POST", RESEND, "store_unavailable");
    walk.problem(&api.cancel(key, &id).await, "POST", CANCEL, "store_unavailable");
    let trail = api.call("GET", EVENTS, Some(key), Payload::None, &[]).await;
    walk.problem(&trail, "GET", EVENTS, "store_unavailable");
    assert_eq!(harness.sandbox.otps(&to).len(), 1, "the resend sent nothing");

    // Redis is back (from its append-only file): the service resumes by itself.
    redis.restart().expect("redis-server restarts");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = api.call("GET", READYZ, None, Payload::None, &[]).await;
        if ready.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again: {}", ready.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(api.status(key, &id).await.body["status"], "pending", "the session survived");
    let approved = api.check(key, &id, &harness.code(&to)).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let again = api.start(key, start_body(Gateway::ALL[0], &fresh), &[]).await;
    assert_eq!(again.status, 201, "{}", again.text);

    walk.covers(&document(&harness).await, UNWALKED);
}
