//! Replicas on one Redis answer for each other's verifications: a start on one is read,
//! checked and replayed on another, and another tenant's key is refused on both; a replica
//! with another store key reads none of them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{config, number, start_body, Api, Harness, Keys, Store};
use otp::Gateway;
use otp_serve::{Server, StoreSecret};
use otp_verifier::test_util::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_replica_answers_for_any_verification() {
    let redis = RedisServer::start().expect("redis-server (the tests need a real one)");
    let store = Store::Redis(redis.url());
    let first = Harness::start(store.clone()).await;
    // The second replica: the same keys, store and store key, its own gateway clients.
    let second = Server::start(config(&first.proxy.url, &first.keys, &store)).await.unwrap();
    let other = Api::new(second.base_url());
    let keys: &Keys = &first.keys;
    for gateway in Gateway::ALL {
        let to = common::checkable_number(gateway);
        let body = start_body(gateway, &to);
        let started =
            first.api.start(&keys.writer, body.clone(), &[("idempotency-key", &format!("replica-{gateway}"))]).await;
        assert_eq!(started.status, 201, "{}", started.text);
        let id = started.id();
        let replayed = other.start(&keys.writer, body, &[("idempotency-key", &format!("replica-{gateway}"))]).await;
        assert_eq!((replayed.id(), replayed.header("idempotent-replayed")), (id.clone(), Some("true")));
        assert_eq!(other.status(&keys.reader, &id).await.body["status"], "pending");
        assert_eq!(other.status(&keys.other, &id).await.status, 404, "another tenant's, on every replica");
        let approved = other.check(&keys.writer, &id, &first.code(&to)).await;
        assert_eq!(approved.status, 200, "{gateway}: {}", approved.text);
        assert_eq!(first.api.status(&keys.writer, &id).await.body["status"], "approved");
    }
    // Another store key: none of these ids reads there.
    let id = first.api.start(&keys.writer, start_body(Gateway::ALL[0], &number()), &[]).await.id();
    let stranger =
        config(&first.proxy.url, keys, &store).redis_store(redis.url(), StoreSecret::from_bytes(&[7u8; 32]).unwrap());
    let stranger = Server::start(stranger).await.unwrap();
    assert_eq!(Api::new(stranger.base_url()).status(&keys.writer, &id).await.status, 404);
}
