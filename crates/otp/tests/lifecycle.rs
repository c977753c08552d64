//! A verification's whole life (docs/verifier.md): status through every state, tombstones,
//! terminal answers without a gateway call, idempotent starts racing across verifiers, test
//! numbers that reach no gateway, and the events of each change — against the real sandbox, on
//! the memory store and on a real redis-server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::time::{Duration, SystemTime};

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{
    ChannelSink, Check, Context, Event, EventKind, GuardRules, MemoryStore, RedisStore, State, Store, StoreKey,
    Verifier,
};
use otp::{ErrorKind, Gateway, MobileNumber, Outcome, Reached};
use otp_verifier::test_util::RedisCluster;

mod common;
use common::sessions::{from, phonepe_to, redis_server, redis_store, Instrumented};
use common::{code, inbox_code, sandbox_client, wrong};

fn drain(receiver: &mut tokio::sync::mpsc::Receiver<Event>) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        kinds.push(event.kind);
    }
    kinds
}

/// Pending → approved, with status at each step; a finished session answers its state without
/// a gateway call, never the credential twice; its tombstone holds no number.
async fn status_through_a_life<S: Store>(store: impl Fn() -> S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let (sink, mut events) = ChannelSink::new(64);
    let rules = GuardRules::default().cooldown(Duration::from_millis(200));
    let verifier =
        Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store()).with_rules(rules).unwrap().with_events(sink);
    let mobile = "9876513001";
    let started = verifier.start(phonepe_to(mobile), &from(1)).await.unwrap();
    assert!(!started.test && !started.replayed);
    let status = verifier.status(&started.id).await.unwrap().unwrap();
    assert_eq!(
        (status.state, status.gateway, status.tries_left, status.sends),
        (State::Pending, Gateway::PhonePe, 5, 1)
    );
    assert_eq!(status.mobile.unwrap().expose_digits(), mobile);
    assert_eq!(format!("{:?}", status.mobile.unwrap()), "MobileNumber(XXXXXX3001)");
    let now = SystemTime::now();
    assert!(status.expires_at > now + Duration::from_secs(590) && status.expires_at <= now + Duration::from_secs(600));
    assert!(status.resend_available_at.unwrap() <= now + Duration::from_millis(200));
    assert!(status.created_at <= now && !status.test);

    let issued = inbox_code(&sandbox, mobile);
    assert!(matches!(verifier.check(&started.id, wrong(&issued)).await.unwrap(), Check::WrongOtp { tries_left: 4 }));
    assert_eq!(verifier.status(&started.id).await.unwrap().unwrap().tries_left, 4);
    tokio::time::sleep(Duration::from_millis(250)).await;
    verifier.resend(&started.id, &from(1)).await.unwrap();
    let status = verifier.status(&started.id).await.unwrap().unwrap();
    assert_eq!((status.state, status.sends, status.tries_left), (State::Pending, 2, 4));
    let second = inbox_code(&sandbox, mobile);
    assert!(matches!(verifier.check(&started.id, code(&second)).await.unwrap(), Check::Verified { .. }));

    let status = verifier.status(&started.id).await.unwrap().unwrap();
    assert_eq!((status.state, status.sends, status.tries_left), (State::Approved, 2, 0));
    assert!(status.mobile.is_none() && status.resend_available_at.is_none(), "a tombstone keeps no number");
    let sends_before = sandbox.otps(mobile).len();
    assert!(matches!(verifier.check(&started.id, code(&second)).await.unwrap(), Check::AlreadyApproved));
    let refused = verifier.resend(&started.id, &from(1)).await.unwrap_err();
    assert_eq!((refused.kind(), refused.reached_provider()), (ErrorKind::OtpExpired, Reached::No), "{refused}");
    assert!(refused.to_string().contains("approved"), "{refused}");
    assert_eq!(verifier.cancel(&started.id).await.unwrap(), Some(State::Approved), "an approved one stays approved");
    assert_eq!(sandbox.otps(mobile).len(), sends_before, "a finished session sends nothing");
    assert_eq!(
        drain(&mut events),
        [EventKind::Started, EventKind::WrongCode, EventKind::Resent, EventKind::Approved],
        "one event per change, in order"
    );

    // Cancelled, spent and unknown.
    let started = verifier.start(phonepe_to("9876513002"), &from(2)).await.unwrap();
    assert_eq!(verifier.cancel(&started.id).await.unwrap(), Some(State::Canceled));
    assert_eq!(verifier.cancel(&started.id).await.unwrap(), Some(State::Canceled), "again: still canceled");
    assert!(matches!(verifier.check(&started.id, code("123456")).await.unwrap(), Check::Canceled));
    assert_eq!(verifier.status(&started.id).await.unwrap().unwrap().state, State::Canceled);
    let started = verifier.start(phonepe_to("9876513003"), &from(3)).await.unwrap();
    let issued = inbox_code(&sandbox, "9876513003");
    for _ in 0..5 {
        verifier.check(&started.id, wrong(&issued)).await.unwrap();
    }
    assert_eq!(verifier.status(&started.id).await.unwrap().unwrap().state, State::MaxAttemptsReached);
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::MaxAttemptsReached));
    let unknown = otp::verifier::VerificationId::parse("AAAAAAAAAAAAAAAAAAAAAA").unwrap();
    assert!(verifier.status(&unknown).await.unwrap().is_none());
    assert!(matches!(verifier.check(&unknown, code("123456")).await.unwrap(), Check::NotFound));
    assert_eq!(verifier.cancel(&unknown).await.unwrap(), None);
    let kinds = drain(&mut events);
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Canceled).count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::WrongCode).count(), 5, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&EventKind::MaxAttemptsReached), "{kinds:?}");

    // A session that runs out: expired, then gone with its retention.
    let short = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store())
        .with_session_lifetime(Duration::from_secs(1))
        .unwrap()
        .with_retention(Duration::from_secs(1))
        .unwrap();
    let started = short.start(phonepe_to("9876513004"), &from(4)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(short.status(&started.id).await.unwrap().unwrap().state, State::Expired);
    assert!(matches!(short.check(&started.id, code("123456")).await.unwrap(), Check::Expired));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(short.status(&started.id).await.unwrap().is_none(), "past its retention");
}

#[tokio::test]
async fn status_follows_a_verification_through_its_life_in_memory() {
    let store = MemoryStore::new();
    status_through_a_life(|| store.clone()).await;
}

#[tokio::test]
async fn status_follows_a_verification_through_its_life_on_redis() {
    let server = redis_server();
    status_through_a_life(|| redis_store(&server)).await;
}

/// 50 concurrent starts with one idempotency key across 4 verifiers: one SMS, and every answer
/// the same id or "in progress"; later retries replay it; another request under the key is
/// refused.
async fn idempotent_starts_race<S: Store>(stores: [S; 4], mobile: &str) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default().cooldown(Duration::ZERO);
    let verifiers: Vec<Verifier<S>> = stores
        .into_iter()
        .map(|store| {
            let client = sandbox_client(&sandbox, Gateway::PhonePe);
            Verifier::new(client, store).with_rules(rules.clone()).unwrap()
        })
        .collect();
    let keyed = |caller| from(caller).idempotency_key("order-7781").unwrap();
    let tasks: Vec<_> = (0..50u32)
        .map(|caller| {
            let (verifier, context, mobile) =
                (verifiers[caller as usize % 4].clone(), keyed(caller), mobile.to_owned());
            tokio::spawn(async move { verifier.start(phonepe_to(&mobile), &context).await })
        })
        .collect();
    let (mut ids, mut in_progress) = (std::collections::BTreeSet::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(started) => {
                ids.insert(started.id.as_str().to_owned());
            }
            Err(error) => {
                assert_eq!(
                    (error.kind(), error.guard_rule(), error.reached_provider()),
                    (ErrorKind::RateLimited, Some("idempotency_in_progress"), Reached::No),
                    "{error}"
                );
                assert!(error.is_retryable());
                in_progress += 1;
            }
        }
    }
    assert_eq!(ids.len(), 1, "one id for every answer");
    assert!(in_progress < 50);
    assert_eq!(sandbox.otps(mobile).len(), 1, "one SMS");
    let replayed = verifiers[3].start(phonepe_to(mobile), &keyed(99)).await.unwrap();
    assert!(replayed.replayed && ids.contains(replayed.id.as_str()));
    let reused = verifiers[1].start(phonepe_to("9876513999"), &keyed(98)).await.unwrap_err();
    assert_eq!((reused.kind(), reused.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
    assert!(reused.to_string().contains("idempotency key reused"), "{reused}");
    assert_eq!(sandbox.otps(mobile).len(), 1);
    assert!(sandbox.otps("9876513999").is_empty());
    // A resend with its own key is idempotent too.
    let id = &replayed.id;
    let resend_key = from(1).idempotency_key("resend-1").unwrap();
    let first = verifiers[0].resend(id, &resend_key).await.unwrap();
    let again = verifiers[2].resend(id, &resend_key).await.unwrap();
    assert!(!first.replayed && again.replayed && again.id == first.id);
    assert_eq!(sandbox.otps(mobile).len(), 2, "one resend, however often it is retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_starts_with_one_key_send_once_in_memory() {
    let store = MemoryStore::new();
    idempotent_starts_race([store.clone(), store.clone(), store.clone(), store], "9876513101").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_starts_with_one_key_across_four_verifiers_on_redis_send_once() {
    let server = redis_server();
    idempotent_starts_race(std::array::from_fn(|_| redis_store(&server)), "9876513102").await;
}

/// A first call that sent nothing lets its key go: the retry really tries.
#[tokio::test]
async fn a_key_whose_first_call_sent_nothing_is_free_again() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), MemoryStore::new());
    let context = from(1).idempotency_key("k-1").unwrap();
    verifier.start(phonepe_to("9876513201"), &from(2)).await.unwrap();
    // Refused by the cooldown (nothing sent): the key is not burnt.
    let refused = verifier.start(phonepe_to("9876513201"), &context).await.unwrap_err();
    assert_eq!(refused.guard_rule(), Some("cooldown"));
    let again = verifier.start(phonepe_to("9876513201"), &context).await.unwrap_err();
    assert_eq!(again.guard_rule(), Some("cooldown"), "tried again, not replayed: {again}");
}

/// A first call the provider answered with a refusal, or may have received, keeps its key: a
/// retry replays that failure — its kind and whether the provider was reached — and sends
/// nothing again.
#[tokio::test]
async fn a_key_whose_first_call_failed_after_reaching_the_provider_replays_that_failure() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    // A deadline well before the sandbox's 35 s answer to 9000000004: the send may have arrived.
    let http = otp::HttpOptions::default().timeout(Duration::from_millis(300));
    let options = otp::ClientOptions::new().environment(otp::Environment::Custom(sandbox.base_url())).http(http);
    let client = otp::sandbox::client(Gateway::PhonePe, options).unwrap();
    let verifier = Verifier::new(client, MemoryStore::new());
    for (number, caller, reached) in [("9000000002", 1, Reached::Yes), ("9000000004", 2, Reached::Maybe)] {
        let context = from(caller).idempotency_key(format!("key-{number}")).unwrap();
        let first = verifier.start(phonepe_to(number), &context).await.unwrap_err();
        assert_eq!(first.reached_provider(), reached, "{first}");
        let again = verifier.start(phonepe_to(number), &context).await.unwrap_err();
        assert_eq!((again.kind(), again.reached_provider()), (first.kind(), reached), "{again}");
        assert!(again.to_string().contains("the first call with this idempotency key failed"), "{again}");
    }
}

/// Test numbers reach no gateway, verify only their fixed code, and are counted by the guard.
async fn test_numbers<S: Store>(store: S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let (sink, mut events) = ChannelSink::new(16);
    let reviewer: MobileNumber = "9999999999".parse().unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store)
        .with_test_numbers([(reviewer, code("123456"))])
        .with_events(sink);
    let started = verifier.start(phonepe_to("9999999999"), &from(1)).await.unwrap();
    assert!(started.test);
    assert!(verifier.status(&started.id).await.unwrap().unwrap().test);
    assert!(matches!(verifier.check(&started.id, code("123457")).await.unwrap(), Check::WrongOtp { tries_left: 4 }));
    assert!(matches!(verifier.check(&started.id, code("12345")).await.unwrap(), Check::WrongOtp { tries_left: 3 }));
    match verifier.check(&started.id, code("123456")).await.unwrap() {
        Check::Verified { mobile, credential } => assert!(mobile == reviewer && credential.is_none()),
        other => panic!("{other:?}"),
    }
    let refused = verifier.start(phonepe_to("9999999999"), &from(1)).await.unwrap_err();
    assert_eq!(refused.guard_rule(), Some("cooldown"), "the guard counts a test number like any other");
    assert!(sandbox.otps("9999999999").is_empty(), "no gateway was called");
    let marked: Vec<bool> = std::iter::from_fn(|| events.try_recv().ok()).map(|e| e.test).collect();
    assert!(!marked.is_empty() && marked.iter().all(|t| *t), "{marked:?}");
}

#[tokio::test]
async fn a_test_number_reaches_no_gateway_in_memory() {
    test_numbers(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_test_number_reaches_no_gateway_on_redis() {
    let server = redis_server();
    test_numbers(redis_store(&server)).await;
}

/// An event carries no full number, code, reference or address.
#[tokio::test]
async fn events_carry_no_number_code_reference_or_address() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let (sink, mut events) = ChannelSink::new(16);
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), MemoryStore::new()).with_events(sink);
    let context = Context::new("198.51.100.77".parse().unwrap());
    let started = verifier.start(phonepe_to("9876513301"), &context).await.unwrap();
    let issued = inbox_code(&sandbox, "9876513301");
    let reference = sandbox.otps("9876513301")[0].reference.clone().unwrap();
    verifier.check(&started.id, wrong(&issued)).await.unwrap();
    verifier.check(&started.id, code(&issued)).await.unwrap();
    let refused = verifier.start(phonepe_to("9876513301"), &context).await.unwrap_err();
    assert_eq!(refused.guard_rule(), Some("cooldown"));
    let all: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    let kinds: Vec<EventKind> = all.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Started, EventKind::WrongCode, EventKind::Approved, EventKind::SendFailed]);
    assert_eq!((all[3].outcome, all[3].rule), (Some("rate_limited"), Some("cooldown")));
    for event in &all {
        let text = format!("{event:?} {}", event.to_json());
        for secret in ["9876513301", issued.as_str(), reference.as_str(), "198.51.100.77"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(event.to_json()["to"], "XXXXXX3301");
    }
}

/// Where a sweeper test's verifiers report, read back as the `expired` events' JSON.
enum Events {
    Channels(Vec<tokio::sync::mpsc::Receiver<Event>>),
    Stream(RedisStore),
}

impl Events {
    async fn expired(&mut self) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        match self {
            Events::Channels(receivers) => {
                for receiver in receivers {
                    all.extend(std::iter::from_fn(|| receiver.try_recv().ok()).map(|e| e.to_json()));
                }
            }
            // Nothing to wait for: a store records each event before the call that made it returns.
            Events::Stream(store) => loop {
                let read = store.read_events("sweeper-test", "t1", 500).await.unwrap();
                if read.is_empty() {
                    break;
                }
                store.ack_events("sweeper-test", read.iter().map(|e| e.entry_id.as_str())).await.unwrap();
                all.extend(read.iter().map(|entry| entry.to_json()));
            },
        }
        all.retain(|event| event["type"] == "verification.expired");
        all
    }
}

/// Sessions that run out their lifetime are reported expired by whichever sweeper claims them:
/// 3 verifiers (on connections of their own, or clones of one store) sweep concurrently over
/// `count` sessions of 1 s, and exactly `count` `expired` events come, one per session.
async fn three_sweepers<S: Store>(verifiers: [Verifier<S>; 3], mut events: Events, count: usize) {
    // Started across the three (test numbers: no gateway, so they all start at once).
    let starts: Vec<_> = (0..count)
        .map(|i| {
            let verifier = verifiers[i % 3].clone();
            let request = phonepe_to(sweeper_number(i).expose_digits());
            tokio::spawn(async move { verifier.start(request, &from(i as u32)).await })
        })
        .collect();
    let mut started = std::collections::BTreeSet::new();
    for start in starts {
        started.insert(start.await.unwrap().unwrap().id.as_str().to_owned());
    }
    assert_eq!(started.len(), count);
    // Two that end otherwise before their lifetime: never reported expired.
    let (approved, canceled) = (
        verifiers[0].start(phonepe_to(sweeper_number(count).expose_digits()), &from(90_001)).await.unwrap(),
        verifiers[1].start(phonepe_to(sweeper_number(count + 1).expose_digits()), &from(90_002)).await.unwrap(),
    );
    assert!(matches!(verifiers[2].check(&approved.id, code("123456")).await.unwrap(), Check::Verified { .. }));
    verifiers[2].cancel(&canceled.id).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let sweepers: Vec<_> = verifiers
        .iter()
        .map(|verifier| {
            let verifier = verifier.clone();
            tokio::spawn(async move {
                let mut reported = 0;
                while tokio::time::Instant::now() < deadline {
                    reported += verifier.sweep_expired().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                reported
            })
        })
        .collect();
    let mut reported = 0;
    for sweeper in sweepers {
        reported += sweeper.await.unwrap();
    }
    // Every sweeper has stopped: all they emitted is in the sinks now.
    let expired = events.expired().await;
    assert_eq!(reported, count, "the sweepers' own count");
    assert_eq!(expired.len(), count, "exactly one expired event per session: none twice, none missing");
    let ids: std::collections::BTreeSet<String> =
        expired.iter().map(|event| event["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, started, "each for a session that ran out");
    for event in &expired {
        assert_eq!(event["gateway"], "phonepe");
        assert!(event["to"].is_null() && event["test"] == true && event["outcome"] == "otp_expired", "{event}");
    }
    for verifier in &verifiers {
        assert_eq!(verifier.sweep_expired().await.unwrap(), 0, "nothing is left to report");
    }
    assert!(events.expired().await.is_empty());
    let one = otp::verifier::VerificationId::parse(started.first().unwrap()).unwrap();
    assert_eq!(verifiers[1].status(&one).await.unwrap().unwrap().state, State::Expired);
}

fn sweeper_number(i: usize) -> MobileNumber {
    format!("81{i:08}").parse().unwrap()
}

/// Verifiers whose sessions last 1 s, with `count + 2` test numbers (no gateway is called).
fn sweeping_verifier<S: Store>(sandbox: &Sandbox, store: S, count: usize) -> Verifier<S> {
    Verifier::new(sandbox_client(sandbox, Gateway::PhonePe), store)
        .with_session_lifetime(Duration::from_secs(1))
        .unwrap()
        .with_test_numbers((0..count + 2).map(|i| (sweeper_number(i), code("123456"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sweepers_report_each_of_a_thousand_expired_sessions_once_on_redis() {
    let server = redis_server();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifiers = std::array::from_fn(|_| {
        sweeping_verifier(&sandbox, redis_store(&server).with_event_stream(100_000).unwrap(), 1_000)
    });
    three_sweepers(verifiers, Events::Stream(redis_store(&server)), 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sweepers_report_each_of_a_thousand_expired_sessions_once_in_memory() {
    let store = MemoryStore::new();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut receivers = Vec::new();
    let verifiers = std::array::from_fn(|_| {
        let (sink, receiver) = ChannelSink::new(10_000);
        receivers.push(receiver);
        sweeping_verifier(&sandbox, store.clone(), 1_000).with_events(sink)
    });
    three_sweepers(verifiers, Events::Channels(receivers), 1_000).await;
}

/// One sweep claims batch after batch until none is left: 501 sessions that ran out (one more
/// than a batch) are all reported by a single call, on both stores.
async fn one_sweep_reports_more_than_a_batch<S: Store>(store: S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifier = sweeping_verifier(&sandbox, store, 501);
    for i in 0..501 {
        verifier.start(phonepe_to(sweeper_number(i).expose_digits()), &from(i as u32)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(verifier.sweep_expired().await.unwrap(), 501);
    assert_eq!(verifier.sweep_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn one_sweep_reports_more_than_a_batch_in_memory() {
    one_sweep_reports_more_than_a_batch(MemoryStore::new()).await;
}

#[tokio::test]
async fn one_sweep_reports_more_than_a_batch_on_redis() {
    let server = redis_server();
    one_sweep_reports_more_than_a_batch(redis_store(&server)).await;
}

/// On a three-node Redis Cluster the stream and the expiry set are keys of their own slots,
/// apart from the sessions: a verification's events reach the stream, and three sweepers on
/// connections of their own report each expired session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_redis_cluster_events_reach_the_stream_and_sweepers_report_each_expiry_once() {
    let cluster = RedisCluster::start()
        .unwrap_or_else(|e| panic!("this test needs a real Redis Cluster (redis-server and redis-cli): {e}"));
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(RedisStore::connect_cluster(&nodes, StoreKey::from_bytes(&[7; 32]).unwrap()).await.unwrap());
    }
    // A verification through a real gateway: its events in order, read back from the stream
    // (on a Cluster each is appended right after its change, before the call returns).
    let recording = stores[3].clone().with_event_stream(10_000).unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), recording);
    let started = verifier.start(phonepe_to("9876513401"), &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, "9876513401");
    verifier.check(&started.id, wrong(&issued)).await.unwrap();
    verifier.check(&started.id, code(&issued)).await.unwrap();
    let read = stores[3].read_events("webhooks", "w1", 10).await.unwrap();
    let kinds: Vec<serde_json::Value> = read.iter().map(|entry| entry.to_json()["type"].clone()).collect();
    assert_eq!(kinds, ["verification.started", "verification.wrong_code", "verification.approved"]);
    assert!(read.iter().all(|entry| entry.to_json()["id"] == started.id.as_str()));
    assert_eq!(read[0].to_json()["to"], "XXXXXX3401");

    let verifiers = std::array::from_fn(|i| {
        sweeping_verifier(&sandbox, stores[i].clone().with_event_stream(100_000).unwrap(), 300)
    });
    three_sweepers(verifiers, Events::Stream(stores[3].clone()), 300).await;
}

/// On one Redis server a store with an event stream records each state change as it is made:
/// when a call returns, its event is in the stream, in order. A start, an approval and a
/// cancellation append theirs inside the script that makes the change (MONITOR shows each
/// XADD coming from `lua`); a wrong code and a refused start, which change no session, append
/// theirs right after, from the client.
#[tokio::test]
async fn on_one_redis_server_each_event_is_in_the_stream_when_its_call_returns() {
    let server = redis_server();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let store = redis_store(&server).with_event_stream(1_000).unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store.clone());
    let next = || async {
        let read = store.read_events("audit", "a1", 10).await.unwrap();
        read.iter().map(|entry| entry.to_json()["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let monitor = server.monitor().unwrap();
    let started = verifier.start(phonepe_to("9876513501"), &from(1)).await.unwrap();
    assert_eq!(next().await, ["verification.started"]);
    let issued = inbox_code(&sandbox, "9876513501");
    verifier.check(&started.id, wrong(&issued)).await.unwrap();
    assert_eq!(next().await, ["verification.wrong_code"]);
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::Verified { .. }));
    assert_eq!(next().await, ["verification.approved"]);
    let refused = verifier.start(phonepe_to("9876513501"), &from(2)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited);
    assert_eq!(next().await, ["verification.send_failed"]);
    let other = verifier.start(phonepe_to("9876513502"), &from(3)).await.unwrap();
    verifier.cancel(&other.id).await.unwrap();
    assert_eq!(next().await, ["verification.started", "verification.canceled"]);
    let lines = monitor.finish().unwrap();
    let xadds: Vec<&String> = lines.iter().filter(|line| line.contains("\"XADD\"")).collect();
    let from_scripts = xadds.iter().filter(|line| line.contains("[0 lua]")).count();
    assert_eq!((xadds.len(), from_scripts), (6, 4), "started ×2, approved, canceled in scripts: {xadds:#?}");
}

/// A start labelled with a tenant labels every event of its verification, whoever makes it:
/// a check, a resend without the label, the sweeper (from the record), on the stream too.
#[tokio::test]
async fn every_event_of_a_verification_carries_its_start_s_tenant() {
    let server = redis_server();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let store = redis_store(&server).with_event_stream(1_000).unwrap();
    let (sink, mut received) = ChannelSink::new(100);
    let rules = GuardRules::default().cooldown(Duration::ZERO);
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store.clone())
        .with_rules(rules.clone())
        .unwrap()
        .with_session_lifetime(Duration::from_secs(1))
        .unwrap()
        .with_events(sink);
    assert!(from(1).tenant("").is_err() && from(1).tenant("a b").is_err() && from(1).tenant("x".repeat(65)).is_err());
    let started = verifier.start(phonepe_to("9876513601"), &from(1).tenant("alpha").unwrap()).await.unwrap();
    verifier.check(&started.id, wrong(&inbox_code(&sandbox, "9876513601"))).await.unwrap();
    verifier.resend(&started.id, &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, "9876513601");
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::Verified { .. }));
    let ran_out = verifier.start(phonepe_to("9876513602"), &from(2).tenant("beta").unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(verifier.sweep_expired().await.unwrap(), 1);

    let events: Vec<Event> = std::iter::from_fn(|| received.try_recv().ok()).collect();
    let labelled: Vec<(EventKind, Option<&str>)> = events.iter().map(|e| (e.kind, e.tenant.as_deref())).collect();
    assert_eq!(
        labelled,
        [
            (EventKind::Started, Some("alpha")),
            (EventKind::WrongCode, Some("alpha")),
            (EventKind::Resent, Some("alpha")),
            (EventKind::Approved, Some("alpha")),
            (EventKind::Started, Some("beta")),
            (EventKind::Expired, Some("beta")),
        ]
    );
    let streamed = store.read_events("audit", "a1", 10).await.unwrap();
    let tenants: Vec<serde_json::Value> = streamed.iter().map(|e| e.to_json()["tenant"].clone()).collect();
    assert_eq!(tenants, ["alpha", "alpha", "alpha", "alpha", "beta", "beta"]);
    assert_eq!(streamed[5].to_json()["id"], ran_out.id.as_str());
}

/// A resend starts the session's clock again: its expiry and its next cooldown count from the
/// new send, in `status` and in the resend's answer.
#[tokio::test]
async fn a_resend_moves_the_expiry_and_the_next_cooldown_to_the_new_send() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default().cooldown(Duration::from_millis(200));
    let verifier =
        Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), MemoryStore::new()).with_rules(rules).unwrap();
    let started = verifier.start(phonepe_to("9876513701"), &from(1)).await.unwrap();
    let before = verifier.status(&started.id).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resent = verifier.resend(&started.id, &from(1)).await.unwrap();
    let after = verifier.status(&started.id).await.unwrap().unwrap();
    let moved = |later: SystemTime, earlier: SystemTime| later.duration_since(earlier).unwrap_or_default();
    assert!(moved(after.expires_at, before.expires_at) >= Duration::from_millis(350), "{before:?} → {after:?}");
    assert!(moved(resent.expires_at, started.expires_at) >= Duration::from_millis(350));
    let (next, first) = (after.resend_available_at.unwrap(), before.resend_available_at.unwrap());
    assert!(moved(next, first) >= Duration::from_millis(350), "the cooldown counts from the resend");
    assert_eq!((after.sends, after.created_at), (2, before.created_at));
}

/// A resend's outcome is its own send's, not the first one's: a provider that first sent for
/// registration and then plainly (AOPay, once the remitter is registered) shows `sent` in the
/// resend's answer, its event and the status.
#[tokio::test]
async fn a_resend_reports_its_own_sends_outcome() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let gateway = Instrumented::new(sandbox_client(&sandbox, Gateway::PhonePe));
    let (sink, mut events) = ChannelSink::new(64);
    let rules = GuardRules::default().cooldown(Duration::from_millis(1));
    let verifier =
        otp_verifier::Verifier::new(gateway.clone(), MemoryStore::new()).with_rules(rules).unwrap().with_events(sink);
    gateway.next_send_answers(Outcome::SentForRegistration);
    let started = verifier.start(phonepe_to("9876513711"), &from(1)).await.unwrap();
    assert_eq!(started.outcome, Outcome::SentForRegistration);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let resent = verifier.resend(&started.id, &from(1)).await.unwrap();
    assert_eq!(resent.outcome, Outcome::Sent);
    assert_eq!(verifier.status(&started.id).await.unwrap().unwrap().outcome, Outcome::Sent);
    let outcomes: Vec<(EventKind, Option<&str>)> =
        std::iter::from_fn(|| events.try_recv().ok()).map(|event| (event.kind, event.outcome)).collect();
    assert_eq!(outcomes, [(EventKind::Started, Some("sent_for_registration")), (EventKind::Resent, Some("sent"))]);
}

/// A finished verification's status says when it finished; a pending one has no end yet.
#[tokio::test]
async fn a_finished_status_says_when_it_ended() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), MemoryStore::new());
    let started = verifier.start(phonepe_to("9876513801"), &from(1)).await.unwrap();
    assert_eq!(verifier.status(&started.id).await.unwrap().unwrap().ended_at, None);
    let before = SystemTime::now();
    verifier.cancel(&started.id).await.unwrap();
    let ended = verifier.status(&started.id).await.unwrap().unwrap().ended_at.expect("a cancelled one has ended");
    let after = SystemTime::now();
    assert!(ended >= before - Duration::from_millis(5) && ended <= after, "{ended:?}");
}
