//! Webhooks as a tenant's receiver sees them: real HTTP receivers (tests/webhooks/receiver.py)
//! verify every delivery with the official `standardwebhooks` package; a real redis-server
//! holds the events. Every event arrives verified and in order per verification; a receiver
//! that fails is retried with the same webhook-id, one that hangs is timed out, a redirect is
//! not followed, and both end as dead letters while another tenant's deliveries keep flowing;
//! replicas share the work and one that dies leaves nothing undelivered; a Redis restart loses
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::receiver::{Receiver, SECRET};
use common::{number, start_body, Harness, Store};
use otp::verifier::{RedisStore, StoreKey};
use otp::Gateway;
use otp_serve::{RetrySchedule, ServeConfig, Server, WebhookEndpoint, WebhookSecret};
use otp_verifier::test_util::RedisServer;
use serde_json::Value;

/// A webhook to `receiver` for `tenant`'s events, under the tests' secret.
fn endpoint(receiver: &Receiver, name: &str, tenant: &str) -> WebhookEndpoint {
    WebhookEndpoint::new(name, tenant, &receiver.url, WebhookSecret::parse(SECRET).unwrap()).unwrap()
}

fn redis() -> RedisServer {
    RedisServer::start().expect("redis-server (the tests need a real one)")
}

/// Retries fast enough for a test: 100 ms, fourfold up to 400 ms, given up after 4 s.
fn quick() -> RetrySchedule {
    RetrySchedule::new(Duration::from_millis(100), Duration::from_millis(400), Duration::from_secs(4)).unwrap()
}

/// `n` verifications started and approved with `key` through `harness`, `c` at a time; their ids.
async fn verifications(harness: &Harness, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
        let runs = chunk.iter().map(|_| async {
            let to = number();
            let started = harness.api.start(key, start_body(Gateway::PhonePe, &to), &[]).await;
            assert_eq!(started.status, 201, "{}", started.text);
            let id = started.id();
            let checked = harness.api.check(key, &id, &harness.code(&to)).await;
            assert_eq!(checked.status, 200, "{}", checked.text);
            id
        });
        ids.extend(futures_join(runs).await);
    }
    ids
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await);
    }
    outputs
}

/// Each verification's event types in the order they arrived.
fn by_verification(deliveries: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for delivery in deliveries {
        let id = delivery["payload"]["data"]["id"].as_str().unwrap().to_owned();
        order.entry(id).or_default().push(delivery["payload"]["type"].as_str().unwrap().to_owned());
    }
    order
}

async fn every_event_arrives_verified_and_in_order(store: Store) {
    let (alpha, beta) = (Receiver::start("ok"), Receiver::start("ok"));
    let approvals = endpoint(&beta, "beta-approvals", "beta").events(["verification.approved"]).unwrap();
    let harness = Harness::start_with(store, |config| {
        config.webhook(endpoint(&alpha, "alpha-all", "alpha")).webhook(approvals).webhook_retries(quick())
    })
    .await;
    let ids = verifications(&harness, &harness.keys.writer, 200).await;
    let beta_ids = verifications(&harness, &harness.keys.other, 5).await;
    alpha.until(Duration::from_secs(60), "400 events for alpha", |seen| seen.len() >= 400).await;
    beta.until(Duration::from_secs(30), "5 approvals for beta", |seen| seen.len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let seen = alpha.seen();
    assert!(seen.iter().all(|d| d["verified"] == true), "every delivery verified by standardwebhooks");
    assert_eq!(seen.len(), 400, "each event once: {:#?}", &seen[..seen.len().min(5)]);
    let order = by_verification(&seen);
    assert_eq!(order.keys().cloned().collect::<BTreeSet<_>>(), ids.iter().cloned().collect::<BTreeSet<_>>());
    for (id, types) in &order {
        assert_eq!(types, &["verification.started", "verification.approved"], "{id}");
    }
    let webhook_ids: BTreeSet<&str> = seen.iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(webhook_ids.len(), 400, "an id per event");
    let one = &seen[0]["payload"];
    assert!(one["timestamp"].as_str().unwrap().ends_with('Z'), "{one}");
    let data = one["data"].as_object().unwrap();
    let fields: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(fields, BTreeSet::from(["type", "id", "gateway", "to", "outcome", "rule", "test", "at"]));
    assert!(data["to"].as_str().unwrap().starts_with("XXXXXX"), "masked: {one}");

    let beta_seen = beta.seen();
    assert_eq!(beta_seen.len(), 5, "the filter: approvals only, and only beta's");
    let beta_order = by_verification(&beta_seen);
    assert_eq!(beta_order.keys().cloned().collect::<BTreeSet<_>>(), beta_ids.into_iter().collect());
    assert!(beta_seen.iter().all(|d| d["payload"]["type"] == "verification.approved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_of_200_verifications_arrives_verified_in_order_on_redis() {
    let server = redis();
    every_event_arrives_verified_and_in_order(Store::Redis(server.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_of_200_verifications_arrives_verified_in_order_in_memory() {
    every_event_arrives_verified_and_in_order(Store::Memory).await;
}

/// What the store keeps as dead letters, by endpoint group.
async fn dead_letters(server: &RedisServer) -> BTreeMap<String, Vec<Value>> {
    let store = RedisStore::open(&server.url(), StoreKey::from_bytes(&[42u8; 32]).unwrap()).unwrap();
    let mut by_group: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for letter in store.dead_letters_after(None, 1_000).await.unwrap() {
        let letter = letter.to_json();
        by_group.entry(letter["group"].as_str().unwrap().to_owned()).or_default().push(letter);
    }
    by_group
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_hanging_and_redirecting_receivers_are_retried_timed_out_and_not_followed_while_others_flow() {
    let server = redis();
    let (flaky, hung, moved, steady) =
        (Receiver::start("fail3"), Receiver::start("hang"), Receiver::start("redirect"), Receiver::start("ok"));
    let hung_endpoint = endpoint(&hung, "hung", "alpha").timeout(Duration::from_millis(300)).unwrap();
    let harness = Harness::start_with(Store::Redis(server.url()), |config| {
        config
            .webhook(endpoint(&flaky, "flaky", "alpha"))
            .webhook(hung_endpoint)
            .webhook(endpoint(&moved, "moved", "alpha"))
            .webhook(endpoint(&steady, "steady", "beta"))
            .webhook_retries(quick())
    })
    .await;
    verifications(&harness, &harness.keys.writer, 3).await;
    verifications(&harness, &harness.keys.other, 10).await;
    // Beta's deliveries flow while alpha's receivers fail and hang.
    steady.until(Duration::from_secs(3), "beta's 20 events", |seen| seen.len() >= 20).await;
    assert!(dead_letters(&server).await.is_empty(), "nothing given up yet: the others are still being tried");

    flaky
        .until(Duration::from_secs(20), "each of 6 events accepted on its 4th try", |seen| {
            seen.iter().filter(|d| d["status"] == 204).count() >= 6
        })
        .await;
    let mut tries: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for delivery in flaky.seen() {
        tries
            .entry(delivery["webhook_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(delivery["try"].as_u64().unwrap());
    }
    assert_eq!(tries.len(), 6, "one webhook-id per event, the same on every try");
    assert!(tries.values().all(|t| t == &[1, 2, 3, 4]), "{tries:?}");

    // Given up after 4 s: dead letters, the reason kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let letters = loop {
        let letters = dead_letters(&server).await;
        let count = |group: &str| letters.get(group).map_or(0, Vec::len);
        if count("webhooks:hung") == 6 && count("webhooks:moved") == 6 {
            break letters;
        }
        assert!(tokio::time::Instant::now() < deadline, "dead letters: {letters:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(letters["webhooks:hung"].iter().all(|l| l["reason"] == "timeout"), "{letters:#?}");
    assert!(letters["webhooks:moved"].iter().all(|l| l["reason"] == "http_301"), "{letters:#?}");
    assert!(!letters.contains_key("webhooks:flaky") && !letters.contains_key("webhooks:steady"));
    assert!(moved.seen().iter().all(|d| d.get("followed").is_none()), "a redirect is never followed");
    assert!(hung.seen().len() >= 12, "each hung event tried at least twice: {}", hung.seen().len());
    assert_eq!(steady.accepted().len(), 20);

    // The same dead letters through the API, alpha's only, each naming its webhook and reason.
    let listed = harness
        .api
        .call("GET", "/v1/events?status=failed&limit=100", Some(&harness.keys.reader), common::Payload::None, &[])
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let mut by_webhook: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for letter in listed.body["events"].as_array().unwrap() {
        by_webhook
            .entry(letter["webhook"].as_str().unwrap().to_owned())
            .or_default()
            .insert(letter["reason"].as_str().unwrap().to_owned());
    }
    let expected = BTreeMap::from([
        ("hung".to_owned(), BTreeSet::from(["timeout".to_owned()])),
        ("moved".to_owned(), BTreeSet::from(["http_301".to_owned()])),
    ]);
    assert_eq!(by_webhook, expected);
    assert_eq!(listed.body["events"].as_array().unwrap().len(), 12);
    let beta = harness
        .api
        .call("GET", "/v1/events?status=failed", Some(&harness.keys.other), common::Payload::None, &[])
        .await;
    assert_eq!(beta.body["events"].as_array().unwrap().len(), 0, "another tenant's dead letters are not listed");
}

/// Three replicas share one endpoint's deliveries; one dies (its tasks stop at once, as a
/// killed process's would) with deliveries in flight: every event still arrives, and any
/// event delivered twice carries the same webhook-id both times.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_deliveries_and_one_that_dies_leaves_none_undelivered() {
    let server = redis();
    let receiver = Receiver::start("ok");
    let endpoint = || endpoint(&receiver, "shared", "alpha").timeout(Duration::from_millis(500)).unwrap();
    let store = Store::Redis(server.url());
    let harness =
        Harness::start_with(store.clone(), |config| config.webhook(endpoint()).webhook_retries(quick())).await;
    let replica = |config: ServeConfig| config.webhook(endpoint()).webhook_retries(quick());
    let second = Server::start(replica(common::config(&harness.proxy.url, &harness.keys, &store))).await.unwrap();
    let third = Server::start(replica(common::config(&harness.proxy.url, &harness.keys, &store))).await.unwrap();
    let ids = verifications(&harness, &harness.keys.writer, 60).await;
    drop(third);
    let more = verifications(&harness, &harness.keys.writer, 20).await;
    receiver
        .until(Duration::from_secs(30), "160 events", |seen| {
            by_verification(seen).values().map(Vec::len).sum::<usize>() >= 160
        })
        .await;
    let seen = receiver.seen();
    let mut per_event: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for delivery in &seen {
        let key = (
            delivery["payload"]["data"]["id"].as_str().unwrap().to_owned(),
            delivery["payload"]["type"].as_str().unwrap().to_owned(),
        );
        per_event.entry(key).or_default().insert(delivery["webhook_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(per_event.len(), 160, "every event of the 80 verifications arrived");
    assert!(per_event.values().all(|ids| ids.len() == 1), "a duplicate has the same webhook-id");
    let delivered: BTreeSet<&String> = per_event.keys().map(|(id, _)| id).collect();
    assert!(ids.iter().chain(&more).all(|id| delivered.contains(id)));
    drop(second);
}

/// Redis restarted (from its append-only file) while events wait for a failing receiver:
/// nothing is lost and delivery resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_loses_no_event_and_delivery_resumes() {
    let mut server = redis();
    let receiver = Receiver::start("fail3");
    // Tries close together, given up only after a minute: the restart's reconnection delays them.
    let patient =
        RetrySchedule::new(Duration::from_millis(100), Duration::from_millis(400), Duration::from_secs(60)).unwrap();
    let endpoint = endpoint(&receiver, "after-restart", "alpha").timeout(Duration::from_secs(1)).unwrap();
    let harness =
        Harness::start_with(Store::Redis(server.url()), |config| config.webhook(endpoint).webhook_retries(patient))
            .await;
    verifications(&harness, &harness.keys.writer, 5).await;
    receiver.until(Duration::from_secs(10), "first tries", |seen| !seen.is_empty()).await;
    server.restart().unwrap();
    receiver
        .until(Duration::from_secs(30), "all 10 events accepted", |seen| {
            seen.iter().filter(|d| d["status"] == 204).count() >= 10
        })
        .await;
    let accepted: BTreeSet<String> =
        receiver.accepted().iter().map(|d| d["webhook_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(accepted.len(), 10);
}
