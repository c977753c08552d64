//! A verification's whole life over HTTP, through every gateway, on the memory store and on a
//! real redis-server: start, status, wrong and right codes, the credential by scope, resend,
//! cancel, test numbers, idempotent starts, and tenants.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{checkable_number, fixture, number, start_body, Harness, Store, TEST_CODE, TEST_NUMBER};
use otp::Gateway;
use otp_verifier::test_util::RedisServer;
use serde_json::{json, Value};

fn rfc3339(value: &Value) -> bool {
    let text = value.as_str().unwrap_or("");
    text.len() == 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

async fn every_gateway_s_life(harness: &Harness) {
    let api = &harness.api;
    let keys = &harness.keys;
    let mut credential_seen = 0;
    for gateway in Gateway::ALL {
        for (key, may_read) in [(&keys.credentials, true), (&keys.writer, false)] {
            let to = checkable_number(gateway);
            let started = api.start(key, start_body(gateway, &to), &[]).await;
            assert_eq!(started.status, 201, "{gateway}: {}", started.text);
            let id = started.id();
            assert_eq!(started.header("location"), Some(format!("/v1/verifications/{id}").as_str()));
            assert_eq!(started.header("idempotent-replayed"), None);
            let body = &started.body;
            assert_eq!((body["status"].as_str(), body["gateway"].as_str()), (Some("pending"), Some(gateway.as_str())));
            assert_eq!(body["to"], format!("XXXXXX{}", &to[6..]), "masked");
            assert!(!started.text.contains(&to), "the number never shows whole");
            assert_eq!(
                (body["tries_left"].as_u64(), body["sends"].as_u64(), body["test"].as_bool()),
                (Some(5), Some(1), Some(false))
            );
            assert!(rfc3339(&body["expires_at"]) && rfc3339(&body["resend_available_at"]), "{}", started.text);
            assert!(body["outcome"].as_str().unwrap().starts_with("sent"));

            let status = api.status(key, &id).await;
            assert_eq!(status.status, 200, "{}", status.text);
            for field in [
                "id",
                "status",
                "gateway",
                "to",
                "outcome",
                "tries_left",
                "sends",
                "expires_at",
                "resend_available_at",
                "test",
            ] {
                assert_eq!(status.body[field], body[field], "{gateway} {field}");
            }

            let wrong = api.check(key, &id, &harness.wrong_code(&to)).await;
            let expected = fixture(gateway).get("wrong_code").and_then(Value::as_str).unwrap_or("wrong_otp").to_owned();
            assert_eq!((wrong.status, wrong.code()), (422, Some(expected.as_str())), "{gateway}: {}", wrong.text);
            if expected == "wrong_otp" {
                assert_eq!(wrong.body["tries_left"], 4);
            }
            assert_eq!(api.status(key, &id).await.body["tries_left"], 4);

            let code = harness.code(&to);
            let approved = api.check(key, &id, &code).await;
            assert_eq!(approved.status, 200, "{gateway}: {}", approved.text);
            assert_eq!(
                (approved.body["status"].as_str(), approved.body["tries_left"].as_u64()),
                (Some("approved"), Some(0))
            );
            assert_eq!(approved.body["to"], body["to"]);
            assert_eq!(approved.body["resend_available_at"], Value::Null);
            let credential = approved.body.get("credential");
            let returned = approved.body.get("credential_returned");
            if may_read {
                assert!(returned.is_none(), "{}", approved.text);
                credential_seen += usize::from(credential.is_some());
            } else {
                assert!(credential.is_none(), "a key without credentials:read never sees one: {}", approved.text);
            }

            let again = api.check(key, &id, &code).await;
            assert_eq!((again.status, again.code()), (409, Some("already_approved")), "{}", again.text);
            assert!(again.body.get("credential").is_none());
            let status = api.status(key, &id).await;
            assert_eq!((status.body["status"].as_str(), status.body["to"].clone()), (Some("approved"), Value::Null));
            assert_eq!(status.body["sends"], 1);
            let cancel = api.cancel(key, &id).await;
            assert_eq!((cancel.status, cancel.code()), (409, Some("already_approved")));
        }
    }
    assert!(credential_seen > 0, "some gateway returns a credential, which a credentials:read key sees");
}

async fn a_key_without_credentials_read_learns_only_that_one_came(harness: &Harness) {
    // The gateways that issue a credential: seen by the credentials key above; here each is
    // checked once more with the writer's key, which gets `credential_returned` instead.
    let api = &harness.api;
    let mut returned = 0;
    for gateway in Gateway::ALL {
        let to = checkable_number(gateway);
        let id = api.start(&harness.keys.writer, start_body(gateway, &to), &[]).await.id();
        let approved = api.check(&harness.keys.writer, &id, &harness.code(&to)).await;
        assert_eq!(approved.status, 200, "{}", approved.text);
        if approved.body.get("credential_returned") == Some(&json!(true)) {
            returned += 1;
        }
    }
    assert!(returned > 0);
}

async fn resend_and_cancel(harness: &Harness) {
    let (api, key) = (&harness.api, &harness.keys.writer);
    for gateway in Gateway::ALL {
        let to = checkable_number(gateway);
        let id = api.start(key, start_body(gateway, &to), &[]).await.id();
        let first = harness.code(&to);
        let resent = api.resend(key, &id, &[]).await;
        assert_eq!(resent.status, 200, "{gateway}: {}", resent.text);
        assert_eq!((resent.id(), resent.body["sends"].as_u64()), (id.clone(), Some(2)));
        assert_eq!(api.status(key, &id).await.body["sends"], 2);
        let second = harness.code(&to);
        let checked = api.check(key, &id, &second).await;
        assert_eq!(checked.status, 200, "{gateway}: the latest code verifies: {}", checked.text);
        let _ = first;

        let id = api.start(key, start_body(gateway, &number_for(gateway)), &[]).await.id();
        let canceled = api.cancel(key, &id).await;
        assert_eq!((canceled.status, canceled.body["status"].as_str()), (200, Some("canceled")), "{}", canceled.text);
        let again = api.cancel(key, &id).await;
        assert_eq!((again.status, again.body["status"].as_str()), (200, Some("canceled")));
        let check = api.check(key, &id, "123456").await;
        assert_eq!((check.status, check.code()), (410, Some("canceled")));
        let resend = api.resend(key, &id, &[]).await;
        assert_eq!((resend.status, resend.code()), (410, Some("canceled")), "{}", resend.text);
    }
}

/// A number for a start that will not be checked (the fixture's fixed one where it has one).
fn number_for(gateway: Gateway) -> String {
    if fixture(gateway).get("checkable_mobile").is_some() {
        checkable_number(gateway)
    } else {
        number()
    }
}

async fn transaction_otps_are_checked_elsewhere(harness: &Harness) {
    let (api, key) = (&harness.api, &harness.keys.writer);
    let mut seen = 0;
    for gateway in Gateway::ALL {
        let Some(transaction) = fixture(gateway).get("transaction").cloned() else { continue };
        seen += 1;
        let mut body = start_body(gateway, &number());
        body["params"] = transaction["params"].clone();
        let started = api.start(key, body, &[]).await;
        assert_eq!(started.status, 201, "{gateway}: {}", started.text);
        let id = started.id();
        let check = api.check(key, &id, "123456").await;
        assert_eq!(check.code(), transaction["check"].as_str(), "{gateway}: {}", check.text);
        let resend = api.resend(key, &id, &[]).await;
        match transaction["resend"].as_str() {
            Some("ok") => assert_eq!(resend.status, 200, "{gateway}: {}", resend.text),
            code => assert_eq!(resend.code(), code, "{gateway}: {}", resend.text),
        }
    }
    assert!(seen > 0);
}

async fn test_numbers_reach_no_gateway(harness: &Harness) {
    let (api, key) = (&harness.api, &harness.keys.writer);
    for gateway in Gateway::ALL {
        let started = api.start(key, start_body(gateway, TEST_NUMBER), &[]).await;
        assert_eq!(started.status, 201, "{gateway}: {}", started.text);
        assert_eq!(started.body["test"], true);
        assert!(harness.sandbox.otps(TEST_NUMBER).is_empty(), "no gateway was asked");
        let id = started.id();
        assert_eq!(api.status(key, &id).await.body["test"], true);
        let wrong = api.check(key, &id, "654321").await;
        assert_eq!(wrong.code(), Some("wrong_otp"));
        let approved = api.check(key, &id, TEST_CODE).await;
        assert_eq!((approved.status, approved.body["test"].as_bool()), (200, Some(true)), "{}", approved.text);
    }
}

async fn an_idempotent_start_answers_its_first_answer(harness: &Harness) {
    let (api, key) = (&harness.api, &harness.keys.writer);
    let gateway = Gateway::ALL[0];
    let to = number();
    let body = start_body(gateway, &to);
    let first = api.start(key, body.clone(), &[("idempotency-key", "order-42")]).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let replay = api.start(key, body.clone(), &[("idempotency-key", "order-42")]).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body, "the same body");
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(harness.sandbox.otps(&to).len(), 1, "one SMS");
    // Another tenant's same key is its own: a new verification, sent.
    let other = api.start(&harness.keys.other, body.clone(), &[("idempotency-key", "order-42")]).await;
    assert_eq!((other.status, other.header("idempotent-replayed")), (201, None));
    assert_ne!(other.id(), first.id());
    assert_eq!(harness.sandbox.otps(&to).len(), 2, "the other tenant's own SMS");
    // The same key with another body.
    let reused = api.start(key, start_body(gateway, &number()), &[("idempotency-key", "order-42")]).await;
    assert_eq!((reused.status, reused.code()), (409, Some("idempotency_key_reused")), "{}", reused.text);
    // A resend's key replays too.
    let id = first.id();
    let resent = api.resend(key, &id, &[("idempotency-key", "resend-1")]).await;
    assert_eq!((resent.status, resent.header("idempotent-replayed")), (200, None), "{}", resent.text);
    let again = api.resend(key, &id, &[("idempotency-key", "resend-1")]).await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (200, Some("true")));
    assert_eq!(harness.sandbox.otps(&to).len(), 3, "one resend SMS");
    let bad = api.start(key, body, &[("idempotency-key", &"k".repeat(256))]).await;
    assert_eq!((bad.status, bad.code()), (422, Some("invalid_request")));
}

async fn another_tenant_s_id_is_not_found(harness: &Harness) {
    let (api, keys) = (&harness.api, &harness.keys);
    let gateway = Gateway::ALL[0];
    let id = api.start(&keys.writer, start_body(gateway, &number()), &[]).await.id();
    let unknown = api.status(&keys.other, "AAAAAAAAAAAAAAAAAAAAAA.x.AAAAAAAAAAAAAAAA").await;
    for answer in [
        api.status(&keys.other, &id).await,
        api.check(&keys.other, &id, "123456").await,
        api.resend(&keys.other, &id, &[]).await,
        api.cancel(&keys.other, &id).await,
    ] {
        assert_eq!((answer.status, answer.code()), (404, Some("not_found")), "{}", answer.text);
        assert_eq!(answer.body["detail"], unknown.body["detail"], "the same answer as an unknown id");
    }
    assert_eq!(api.status(&keys.writer, &id).await.status, 200, "still the owner's");
    // The owner's other keys share its tenant: rotation.
    assert_eq!(api.status(&keys.reader, &id).await.status, 200);
}

async fn all(harness: Harness) {
    every_gateway_s_life(&harness).await;
    a_key_without_credentials_read_learns_only_that_one_came(&harness).await;
    resend_and_cancel(&harness).await;
    transaction_otps_are_checked_elsewhere(&harness).await;
    test_numbers_reach_no_gateway(&harness).await;
    an_idempotent_start_answers_its_first_answer(&harness).await;
    another_tenant_s_id_is_not_found(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_s_life_on_the_memory_store() {
    all(Harness::start(Store::Memory).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_s_life_on_redis() {
    let redis = RedisServer::start().expect("redis-server (the tests need a real one)");
    all(Harness::start(Store::Redis(redis.url())).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cooldown_says_when_to_try_again() {
    let harness = Harness::start_with(Store::Memory, |config| {
        config.guard_rules(common::rules().cooldown(std::time::Duration::from_secs(30)))
    })
    .await;
    let (api, key) = (&harness.api, harness.keys.writer.as_str());
    let to = number();
    let started = api.start(key, start_body(Gateway::ALL[0], &to), &[]).await;
    assert_eq!(started.status, 201);
    let expires: &str = started.body["expires_at"].as_str().unwrap();
    let available: &str = started.body["resend_available_at"].as_str().unwrap();
    assert!(available < expires, "{available} before {expires}");
    for answer in
        [api.start(key, start_body(Gateway::ALL[0], &to), &[]).await, api.resend(key, &started.id(), &[]).await]
    {
        assert_eq!(
            (answer.status, answer.code(), answer.body["rule"].as_str()),
            (429, Some("rate_limited"), Some("cooldown"))
        );
        let wait: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((25..=30).contains(&wait), "{wait}");
        assert_eq!(answer.body["retry_after_s"], wait);
        assert_eq!(answer.body["may_have_sent"], "no");
    }
    assert_eq!(harness.sandbox.otps(&to).len(), 1, "nothing more was sent");
}

/// A client that goes away while its start waits on a slow gateway cancels nothing: the send
/// finishes in its own task and its session is stored, so a retry with the same
/// idempotency key answers that verification (replayed) instead of finding the key stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_start_leaves_a_stored_session() {
    use tokio::io::AsyncWriteExt as _;
    let harness = Harness::start(Store::Memory).await;
    harness.proxy.set(common::Mode::Delay(std::time::Duration::from_millis(800)));
    let to = number();
    let body = start_body(Gateway::ALL[0], &to).to_string();
    let addr = harness.server.addr();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/verifications HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\nidempotency-key: gone-away-1\r\ncontent-length: {}\r\n\r\n{body}",
        harness.keys.writer,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(socket);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    harness.proxy.set(common::Mode::Pass);
    let retried = harness
        .api
        .start(&harness.keys.writer, start_body(Gateway::ALL[0], &to), &[("idempotency-key", "gone-away-1")])
        .await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"), "the first call finished and was stored");
    assert_eq!(harness.sandbox.otps(&to).len(), 1, "one SMS");
    assert_eq!(harness.api.status(&harness.keys.reader, &retried.id()).await.body["status"], "pending");
}
