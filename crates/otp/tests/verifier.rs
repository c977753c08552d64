//! Verification sessions and the send guard end to end (docs/security.md): many verifiers racing
//! for one number against the sandbox, on one shared memory store and on a real Redis; wrong
//! codes racing on one session; Redis killed and restarted mid-run; what Redis holds; a Redis
//! whose clock is not the application's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use otp::sandbox::{self, Sandbox, SandboxConfig};
use otp::verifier::{
    Check, Context, GuardRules, Limit, MemoryStore, RedisStore, Sent, SessionGateway, Store, StoreKey, Verification,
    Verifier,
};
use otp::{phonepe, ClientOptions, Environment, Error, ErrorKind, Gateway, GatewayClient, MobileNumber, Reached};
use otp_verifier::test_util::{RedisCluster, RedisServer};

mod common;
use common::sessions::{from, phonepe_to, redis_server, redis_store, Instrumented, STORE_KEY};
use common::{code, inbox_code, sandbox_client, wrong};

fn client(sandbox: &Sandbox, gateway: Gateway) -> GatewayClient {
    sandbox_client(sandbox, gateway)
}

/// 200 concurrent starts for one number through 4 verifiers: exactly `allowed` reach the
/// sandbox; every other is refused by `rule`, unsent.
async fn race_starts<S: Store>(stores: [S; 4], rules: GuardRules, mobile: &str, allowed: usize, rule: &str) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifiers: Vec<Verifier<S>> = stores
        .into_iter()
        .map(|store| Verifier::new(client(&sandbox, Gateway::PhonePe), store).with_rules(rules.clone()).unwrap())
        .collect();
    let tasks: Vec<_> = (0..200u32)
        .map(|caller| {
            let verifier = verifiers[caller as usize % 4].clone();
            let mobile = mobile.to_owned();
            tokio::spawn(async move { verifier.start(phonepe_to(&mobile), &from(caller)).await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::RateLimited, "{error}");
                assert_eq!(error.reached_provider(), Reached::No);
                assert_eq!(error.guard_rule(), Some(rule));
                assert!(error.retry_after().unwrap() > Duration::ZERO);
            }
        }
    }
    assert_eq!(admitted, allowed);
    assert_eq!(sandbox.otps(mobile).len(), allowed, "sends that reached the sandbox");
}

fn five_an_hour_no_cooldown() -> GuardRules {
    GuardRules::default().cooldown(Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_verifiers_on_one_memory_store_let_exactly_the_limit_through() {
    let store = MemoryStore::new();
    let stores = [store.clone(), store.clone(), store.clone(), store];
    race_starts(stores.clone(), GuardRules::default(), "9876500001", 1, "cooldown").await;
    race_starts(stores, five_an_hour_no_cooldown(), "9876500002", 5, "number_short_window").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_verifiers_on_one_redis_let_exactly_the_limit_through() {
    let server = redis_server();
    let stores = || std::array::from_fn(|_| redis_store(&server));
    race_starts(stores(), GuardRules::default(), "9876500011", 1, "cooldown").await;
    race_starts(stores(), five_an_hour_no_cooldown(), "9876500012", 5, "number_short_window").await;
    // The long window counts across short ones: 3 per short window, 4 per long one.
    let rules = five_an_hour_no_cooldown()
        .number_short_window(Limit::new(3, Duration::from_secs(60)))
        .number_long_window(Limit::new(4, Duration::from_secs(3600)));
    race_starts(stores(), rules, "9876500013", 3, "number_short_window").await;
}

fn redis_cluster() -> RedisCluster {
    RedisCluster::start()
        .unwrap_or_else(|e| panic!("this test needs a real Redis Cluster (redis-server and redis-cli): {e}"))
}

async fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisStore::connect_cluster(&nodes, StoreKey::from_bytes(&STORE_KEY).unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_redis_cluster_the_limits_tries_and_sessions_hold_alike() {
    let cluster = redis_cluster();
    let stores = [
        cluster_store(&cluster).await,
        cluster_store(&cluster).await,
        cluster_store(&cluster).await,
        cluster_store(&cluster).await,
    ];
    race_starts(stores.clone(), GuardRules::default(), "9876500021", 1, "cooldown").await;
    race_starts(stores.clone(), five_an_hour_no_cooldown(), "9876500022", 5, "number_short_window").await;
    race_wrong_checks(stores[0].clone(), "9876500303").await;
    session_lifecycle(|| stores[1].clone()).await;
}

#[tokio::test]
async fn the_address_and_caller_key_rules_count_across_numbers() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default()
        .per_client_ip(Limit::new(3, Duration::from_secs(3600)))
        .per_caller_key(Limit::new(2, Duration::from_secs(3600)));
    let verifier = Verifier::new(client(&sandbox, Gateway::PhonePe), MemoryStore::new()).with_rules(rules).unwrap();
    let one_ip = Context::new("203.0.113.9".parse().unwrap());
    for n in 0..3 {
        verifier.start(phonepe_to(&format!("987650010{n}")), &one_ip).await.unwrap();
    }
    let error = verifier.start(phonepe_to("9876500109"), &one_ip).await.unwrap_err();
    assert_eq!(error.guard_rule(), Some("client_ip"));
    let keyed = |caller| from(caller).caller_key("account-7").unwrap();
    for n in 0..2 {
        verifier.start(phonepe_to(&format!("987650020{n}")), &keyed(n)).await.unwrap();
    }
    let error = verifier.start(phonepe_to("9876500209"), &keyed(9)).await.unwrap_err();
    assert_eq!((error.kind(), error.guard_rule()), (ErrorKind::RateLimited, Some("caller_key")));
    assert!(sandbox.otps("9876500109").is_empty() && sandbox.otps("9876500209").is_empty());
}

/// 10 concurrent wrong codes on one session whose limit is 5: at most 5 reach the gateway,
/// and the session ends spent (even the right code is then refused).
async fn race_wrong_checks<S: Store>(store: S, mobile: &str) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let gateway = Instrumented::new(client(&sandbox, Gateway::PhonePe));
    let verifies = gateway.verifies.clone();
    let verifier = otp_verifier::Verifier::new(gateway, store);
    let started = verifier.start(phonepe_to(mobile), &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, mobile);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (verifier, id, guess) = (verifier.clone(), started.id.clone(), wrong(&issued));
            tokio::spawn(async move { verifier.check(&id, guess).await.unwrap() })
        })
        .collect();
    let mut tries_left = BTreeSet::new();
    let mut spent = 0;
    for task in tasks {
        match task.await.unwrap() {
            Check::WrongOtp { tries_left: left } => assert!(tries_left.insert(left), "each try counted once"),
            Check::MaxAttemptsReached => spent += 1,
            other => panic!("a wrong code answered {other:?}"),
        }
    }
    assert_eq!(tries_left, BTreeSet::from([0, 1, 2, 3, 4]));
    assert_eq!(spent, 5);
    assert_eq!(verifies.load(Ordering::SeqCst), 5, "verify calls that reached the gateway");
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::MaxAttemptsReached));
    assert_eq!(verifies.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_never_take_more_than_the_limit_in_memory() {
    race_wrong_checks(MemoryStore::new(), "9876500301").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_never_take_more_than_the_limit_on_redis() {
    let server = redis_server();
    race_wrong_checks(redis_store(&server), "9876500302").await;
}

/// One session's life on a store: resend after the cooldown (the new reference replaces the
/// old), verify once, expire, cancel, a smaller wrong-try limit.
async fn session_lifecycle<S: Store>(store: impl Fn() -> S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    // A cooldown long enough that a busy machine (a mutation run beside it) still resends
    // inside it: at 300 ms the refusal below was once a send.
    let rules = GuardRules::default().cooldown(Duration::from_millis(1_500));
    let verifier = Verifier::new(client(&sandbox, Gateway::PhonePe), store()).with_rules(rules.clone()).unwrap();
    assert_eq!(verifier.rules(), &rules);
    let started = verifier.start(phonepe_to("9876500401"), &from(1)).await.unwrap();
    assert_eq!((started.gateway, started.resend_after), (Gateway::PhonePe, Duration::from_millis(1_500)));
    let lifetime = started.expires_at.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(lifetime > Duration::from_secs(595) && lifetime <= Duration::from_secs(600), "PhonePe: 10 minutes");
    let first = inbox_code(&sandbox, "9876500401");

    let refused = verifier.resend(&started.id, &from(1)).await.unwrap_err();
    assert_eq!((refused.guard_rule(), refused.reached_provider()), (Some("cooldown"), Reached::No));
    assert!(refused.retry_after().unwrap() <= Duration::from_millis(1_500));
    tokio::time::sleep(Duration::from_millis(1_550)).await;
    let resent = verifier.resend(&started.id, &from(1)).await.unwrap();
    assert_eq!(resent.id, started.id);
    assert_eq!(sandbox.otps("9876500401").len(), 2);
    let second = inbox_code(&sandbox, "9876500401");

    // The session now holds the new reference: the new code verifies (PhonePe keeps only the
    // latest token), and a verified session is over.
    let wrong_first = if first == second { wrong(&second) } else { code(&first) };
    assert!(matches!(verifier.check(&started.id, wrong_first).await.unwrap(), Check::WrongOtp { tries_left: 4 }));
    match verifier.check(&started.id, code(&second)).await.unwrap() {
        checked @ Check::Verified { .. } => {
            assert_eq!(checked.as_str(), "verified");
            assert!(
                matches!(checked, Check::Verified { credential: Some(_), mobile } if mobile.expose_digits() == "9876500401"),
                "userAuthToken"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(verifier.check(&started.id, code(&second)).await.unwrap(), Check::AlreadyApproved));
    let gone = verifier.resend(&started.id, &from(1)).await.unwrap_err();
    assert_eq!((gone.kind(), gone.reached_provider()), (ErrorKind::OtpExpired, Reached::No));

    // Lifetime: a session ends with it; cancel ends it at once.
    let too_short =
        Verifier::new(client(&sandbox, Gateway::PhonePe), store()).with_session_lifetime(Duration::from_millis(999));
    assert!(too_short.err().unwrap().is_configuration());
    let retention = |retention| Verifier::new(client(&sandbox, Gateway::PhonePe), store()).with_retention(retention);
    assert!(retention(Duration::from_millis(999)).err().unwrap().is_configuration(), "a retention of at least 1 s");
    assert!(retention(Duration::from_secs(1)).is_ok() && retention(Duration::from_secs(7 * 86_400)).is_ok());
    let short = Verifier::new(client(&sandbox, Gateway::PhonePe), store())
        .with_session_lifetime(Duration::from_secs(1))
        .unwrap();
    let started = short.start(phonepe_to("9876500402"), &from(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let issued = inbox_code(&sandbox, "9876500402");
    assert!(matches!(short.check(&started.id, code(&issued)).await.unwrap(), Check::Expired));
    let started = short.start(phonepe_to("9876500403"), &from(3)).await.unwrap();
    assert_eq!(short.cancel(&started.id).await.unwrap(), Some(otp::verifier::State::Canceled));
    let issued = inbox_code(&sandbox, "9876500403");
    assert!(matches!(short.check(&started.id, code(&issued)).await.unwrap(), Check::Canceled));

    // Two wrong codes spend a session whose limit is two.
    let strict = Verifier::new(client(&sandbox, Gateway::PhonePe), store())
        .with_rules(GuardRules::default().max_wrong_tries(2))
        .unwrap();
    let started = strict.start(phonepe_to("9876500404"), &from(4)).await.unwrap();
    let issued = inbox_code(&sandbox, "9876500404");
    assert!(matches!(strict.check(&started.id, wrong(&issued)).await.unwrap(), Check::WrongOtp { tries_left: 1 }));
    let spent = strict.check(&started.id, wrong(&issued)).await.unwrap();
    assert_eq!(spent.as_str(), "wrong_otp");
    assert!(matches!(spent, Check::WrongOtp { tries_left: 0 }));
    assert!(matches!(strict.check(&started.id, code(&issued)).await.unwrap(), Check::MaxAttemptsReached));
}

#[tokio::test]
async fn a_session_verifies_once_resends_after_its_cooldown_and_expires_in_memory() {
    let store = MemoryStore::new();
    session_lifecycle(|| store.clone()).await;
}

#[tokio::test]
async fn a_session_verifies_once_resends_after_its_cooldown_and_expires_on_redis() {
    let server = redis_server();
    session_lifecycle(|| redis_store(&server)).await;
}

/// A start whose send never left (the gateway's port is closed) gives its place in the guard
/// back: the next start is not refused by the cooldown.
async fn an_unsent_start_gives_its_place_back<S: Store>(store: S) {
    let options = ClientOptions::new().environment(Environment::Custom("http://127.0.0.1:9".to_owned()));
    let unreachable = sandbox::client(Gateway::PhonePe, options).unwrap();
    let verifier = Verifier::new(unreachable, store);
    for _ in 0..3 {
        let error = verifier.start(phonepe_to("9876500411"), &from(1)).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::No), "{error}");
    }
}

#[tokio::test]
async fn an_unsent_start_gives_its_place_back_in_memory() {
    an_unsent_start_gives_its_place_back(MemoryStore::new()).await;
}

#[tokio::test]
async fn an_unsent_start_gives_its_place_back_on_redis() {
    let server = redis_server();
    an_unsent_start_gives_its_place_back(redis_store(&server)).await;
}

#[tokio::test]
async fn a_resend_that_outlives_its_session_says_the_code_went_out() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let gateway = Instrumented {
        send_delay: Duration::from_millis(300),
        ..Instrumented::new(client(&sandbox, Gateway::PhonePe))
    };
    let rules = GuardRules::default().cooldown(Duration::ZERO);
    let verifier = otp_verifier::Verifier::new(gateway, MemoryStore::new()).with_rules(rules).unwrap();
    let started = verifier.start(phonepe_to("9876500451"), &from(1)).await.unwrap();
    let resend = {
        let (verifier, id) = (verifier.clone(), started.id.clone());
        tokio::spawn(async move { verifier.resend(&id, &from(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    verifier.cancel(&started.id).await.unwrap();
    let error = resend.await.unwrap().unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::OtpExpired, Reached::Yes), "{error}");
    assert_eq!(sandbox.otps("9876500451").len(), 2, "the resend's code went out");
}

#[tokio::test]
async fn a_check_the_gateway_never_judged_gives_its_try_back_and_one_it_may_have_keeps_it() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let gateway = Instrumented::new(client(&sandbox, Gateway::PhonePe));
    let verifier = otp_verifier::Verifier::new(gateway.clone(), MemoryStore::new())
        .with_rules(GuardRules::default().max_wrong_tries(3))
        .unwrap();
    let started = verifier.start(phonepe_to("9876500421"), &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, "9876500421");
    gateway.fail_next_verify(|| Error::connect("refused in the test"));
    let error = verifier.check(&started.id, wrong(&issued)).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::No));
    assert!(matches!(verifier.check(&started.id, wrong(&issued)).await.unwrap(), Check::WrongOtp { tries_left: 2 }));
    gateway.fail_next_verify(|| Error::transport("broken in the test"));
    let error = verifier.check(&started.id, wrong(&issued)).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::Maybe));
    assert!(matches!(verifier.check(&started.id, wrong(&issued)).await.unwrap(), Check::WrongOtp { tries_left: 0 }));
    assert_eq!(gateway.verifies.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_session_whose_reference_the_gateway_dropped_ends_without_another_call() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let gateway = Instrumented::new(client(&sandbox, Gateway::PhonePe));
    let verifier = otp_verifier::Verifier::new(gateway.clone(), MemoryStore::new());
    let started = verifier.start(phonepe_to("9876500431"), &from(1)).await.unwrap();
    // A send outside the verifier: PhonePe now verifies only that newer token.
    client(&sandbox, Gateway::PhonePe).send_otp(phonepe_to("9876500431").request()).await.unwrap();
    let newest = inbox_code(&sandbox, "9876500431");
    let checked = verifier.check(&started.id, code(&newest)).await.unwrap();
    assert_eq!(checked.as_str(), "otp_expired");
    assert!(matches!(verifier.check(&started.id, code(&newest)).await.unwrap(), Check::Expired));
    assert_eq!(gateway.verifies.load(Ordering::SeqCst), 1, "the ended session asks the gateway no more");
}

#[tokio::test]
async fn an_iserveu_transaction_otp_is_not_resent_with_its_spent_reference() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifier = Verifier::new(client(&sandbox, Gateway::IServeU), MemoryStore::new())
        .with_rules(GuardRules::default().cooldown(Duration::ZERO))
        .unwrap();
    let amount = otp::Amount::parse("100").unwrap();
    let transaction =
        otp::iserveu::TransactionOtpRequest::new("9876500441".parse().unwrap(), "AADHAAR", "REF441441", amount);
    let started = verifier.start(transaction.into(), &from(1)).await.unwrap();
    let error = verifier.resend(&started.id, &from(1)).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
    assert_eq!(sandbox.otps("9876500441").len(), 1, "nothing sent again");
    // A registration OTP is resent as usual.
    let registration = otp::iserveu::RegistrationOtpRequest::new(
        "9876500442".parse().unwrap(),
        "AADHAAR",
        otp::IdentityNumber::new("765386439745"),
    );
    let started = verifier.start(Verification::new(registration).customer_name("Asha Rao"), &from(2)).await.unwrap();
    verifier.resend(&started.id, &from(2)).await.unwrap();
    assert_eq!(sandbox.otps("9876500442").len(), 2);
    let issued = inbox_code(&sandbox, "9876500442");
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::Verified { .. }));
}

/// AOPay: a transaction OTP is started under the guard, and its check refused unsent (the
/// transfer call consumes it) with its try given back; a registration OTP verifies.
async fn transaction_and_registration_otps<S: Store>(store: S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifier = Verifier::new(client(&sandbox, Gateway::AOPay), store);
    let send = |mobile: &str| common::aopay_send(mobile);
    // An AOPay transaction OTP: sent, and its check refused before anything is sent, its try
    // given back.
    let started = verifier.start(send("9876500501").into(), &from(1)).await.unwrap();
    assert_eq!(started.outcome, otp::Outcome::Sent);
    // AOPay's OTP lives 90 s, and so does its session.
    let lifetime = started.expires_at.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(lifetime > Duration::from_secs(85) && lifetime <= Duration::from_secs(90), "{lifetime:?}");
    let issued = inbox_code(&sandbox, "9876500501");
    for _ in 0..6 {
        let error = verifier.check(&started.id, code(&issued)).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
    }
    // 9000000005: sent for registration, checked by RegisterRemitter.
    let started = verifier.start(send("9000000005").into(), &from(2)).await.unwrap();
    assert_eq!(started.outcome, otp::Outcome::SentForRegistration);
    let issued = inbox_code(&sandbox, "9000000005");
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::Verified { .. }));
}

#[tokio::test]
async fn a_transaction_otp_is_started_under_the_guard_but_checked_by_the_business_call_in_memory() {
    transaction_and_registration_otps(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_transaction_otp_is_started_under_the_guard_but_checked_by_the_business_call_on_redis() {
    let server = redis_server();
    transaction_and_registration_otps(redis_store(&server)).await;
}

/// Retries `call` until it answers something other than `transport` (the reconnect).
async fn once_reconnected<T, F, Fut>(mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    for _ in 0..100 {
        match call().await {
            Err(error) if error.kind() == ErrorKind::Transport => tokio::time::sleep(Duration::from_millis(100)).await,
            answer => return answer,
        }
    }
    panic!("the store never came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_every_call_answers_transport_and_sends_nothing_and_limits_survive_a_restart() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut server = redis_server();
    let verifier = Verifier::new(client(&sandbox, Gateway::PhonePe), redis_store(&server));
    let started = verifier.start(phonepe_to("9876500601"), &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, "9876500601");

    server.stop();
    for _ in 0..3 {
        let errors = [
            verifier.start(phonepe_to("9876500602"), &from(2)).await.unwrap_err(),
            verifier.start(phonepe_to("9876500601"), &from(3)).await.unwrap_err(),
            verifier.resend(&started.id, &from(1)).await.unwrap_err(),
            verifier.check(&started.id, code(&issued)).await.unwrap_err(),
            verifier.cancel(&started.id).await.unwrap_err(),
        ];
        for error in errors {
            assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::No), "{error}");
        }
    }
    assert_eq!(sandbox.otps("9876500601").len(), 1, "nothing sent while Redis was down");
    assert!(sandbox.otps("9876500602").is_empty());

    // Failing open is for the guard only, and only when asked: the OTP goes out unguarded, and
    // the start still fails because its session cannot be kept (the caller is told it was sent).
    let fail_open = Verifier::new(client(&sandbox, Gateway::PhonePe), redis_store(&server)).with_guard_fail_open(true);
    let error = fail_open.start(phonepe_to("9876500603"), &from(5)).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::Yes), "{error}");
    assert_eq!(sandbox.otps("9876500603").len(), 1);

    server.restart().unwrap();
    // The cooldown of the send before the outage still holds, and its session still verifies.
    let context = from(4);
    let refused = once_reconnected(|| verifier.start(phonepe_to("9876500601"), &context)).await.unwrap_err();
    assert_eq!(refused.guard_rule(), Some("cooldown"));
    assert!(matches!(verifier.check(&started.id, code(&issued)).await.unwrap(), Check::Verified { .. }));
    verifier.start(phonepe_to("9876500602"), &from(2)).await.unwrap();
    assert_eq!(sandbox.otps("9876500602").len(), 1);
}

/// Every key and value in Redis, as bytes, with each key's TTL in ms (a stream's entries'
/// field names and values, with its length).
async fn redis_contents(server: &RedisServer) -> Vec<(String, Vec<Vec<u8>>, i64)> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut connection).await.unwrap();
    let mut contents = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut connection).await.unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query_async(&mut connection).await.unwrap(),
            "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut connection).await.unwrap(),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(&mut connection).await.unwrap(),
            "stream" => {
                type Entries = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;
                let entries: Entries =
                    redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut connection).await.unwrap();
                entries.into_iter().flat_map(|(_, fields)| fields.into_iter().flat_map(|(n, v)| [n, v])).collect()
            }
            other => panic!("unexpected {other} at {key}"),
        };
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut connection).await.unwrap();
        contents.push((key, values, ttl));
    }
    contents
}

#[tokio::test]
async fn redis_holds_no_number_address_key_code_or_reference_and_every_key_expires() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let server = redis_server();
    let store = redis_store(&server);
    const MAX_EVENTS: usize = 1_000;
    let store = store.with_event_stream(MAX_EVENTS).unwrap();
    let verifier = Verifier::new(client(&sandbox, Gateway::Paytm), store.clone());
    let context = Context::new("203.0.113.77".parse().unwrap())
        .caller_key("account-4242")
        .unwrap()
        .idempotency_key("order-secret-77")
        .unwrap();
    let request = otp::paytm::SendOtpRequest::new("9876500701".parse().unwrap(), "device-secret-9").scope("paytm");
    let started = verifier.start(request.into(), &context).await.unwrap();
    let issued = inbox_code(&sandbox, "9876500701");
    let reference = sandbox.otps("9876500701")[0].reference.clone().unwrap();
    assert!(matches!(verifier.check(&started.id, wrong(&issued)).await.unwrap(), Check::WrongOtp { .. }));
    // A second verification runs out its lifetime and is swept: its record, the sweep's claim
    // and the `expired` event are in Redis too.
    let brief = Verifier::new(client(&sandbox, Gateway::Paytm), store.clone())
        .with_session_lifetime(Duration::from_secs(1))
        .unwrap();
    let second = otp::paytm::SendOtpRequest::new("9876500702".parse().unwrap(), "device-secret-8").scope("paytm");
    let ran_out = brief.start(second.into(), &Context::new("203.0.113.77".parse().unwrap())).await.unwrap();
    let second_reference = sandbox.otps("9876500702")[0].reference.clone().unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(brief.sweep_expired().await.unwrap(), 1);
    let kinds: Vec<String> = store
        .read_events("scan", "s1", 10)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.to_json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["verification.started", "verification.wrong_code", "verification.started", "verification.expired"]
    );

    let contents = redis_contents(&server).await;
    assert_eq!(
        contents.len(),
        11,
        "two numbers, the address, the caller key, the live session and two records, the \
         idempotency key, the expiry set, the sweep's claim, the event stream: {contents:?}"
    );
    let secrets = [
        "9876500701",
        "9876500702",
        "203.0.113.77",
        "account-4242",
        "device-secret-9",
        "device-secret-8",
        "order-secret-77",
        &issued,
        &reference,
        &second_reference,
        started.id.as_str(),
        ran_out.id.as_str(),
    ];
    let hex = |text: &str| text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    for (key, values, ttl) in &contents {
        let shape_ok = match key.strip_prefix("otp:{g}:") {
            Some(guard) => matches!(guard.split_once(':'), Some(("n" | "i" | "c", digest)) if hex(digest)),
            None => {
                key == "otp:{x}:expiries"
                    || key == "otp:{e}:events"
                    || key.strip_prefix("otp:{x}:claim:").is_some_and(hex)
                    || key
                        .strip_prefix("otp:s:{")
                        .or_else(|| key.strip_prefix("otp:r:{"))
                        .or_else(|| key.strip_prefix("otp:k:{"))
                        .and_then(|rest| rest.strip_suffix('}'))
                        .is_some_and(hex)
            }
        };
        assert!(shape_ok, "{key}");
        if key == "otp:{e}:events" {
            // A stream is bounded by its length (MAXLEN ~), not a TTL: a consumer group keeps its place.
            assert_eq!(*ttl, -1, "{key}");
            let client = redis::Client::open(server.url()).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let length: usize = redis::cmd("XLEN").arg(key).query_async(&mut connection).await.unwrap();
            assert_eq!(length, 4, "{key}: one entry per event, within its bound of {MAX_EVENTS}");
            let text: Vec<String> = values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
            assert!(text.contains(&"XXXXXX0701".to_owned()), "the masked number is there: {text:?}");
        } else {
            assert!(*ttl > 0, "{key} has no TTL");
        }
        if key.starts_with("otp:r:") {
            // A record outlives its session by the retention: 24 h by default.
            let day = otp::verifier::DEFAULT_RETENTION.as_millis() as i64;
            assert_eq!(day, 86_400_000);
            assert!(*ttl > day - 10_000, "{key}: {ttl} ms");
        }
        if key.starts_with("otp:k:") {
            // An idempotency key replays its first answer for 24 h (a couple of seconds have passed).
            let day = otp::verifier::IDEMPOTENCY_KEY_LIFETIME.as_millis() as i64;
            assert_eq!(day, 86_400_000);
            assert!((day - 10_000..=day).contains(ttl), "{key}: {ttl} ms");
        }
        if key.starts_with("otp:{x}:") {
            // The expiry set and a sweep's claim hold sessions' keyed hashes, nothing else.
            assert!(values.iter().all(|v| hex(&String::from_utf8_lossy(v))), "{key}: {values:?}");
        }
        for secret in secrets {
            assert!(!key.contains(secret), "{key}");
            for value in values {
                let text = String::from_utf8_lossy(value);
                assert!(!text.contains(secret), "{key} holds {secret}");
            }
        }
    }
    // Sealed under the store key: another key cannot open the session, and says so.
    let stranger = RedisStore::open(&server.url(), StoreKey::from_bytes(&[8; 32]).unwrap()).unwrap();
    let other = Verifier::new(client(&sandbox, Gateway::Paytm), stranger);
    assert!(
        matches!(other.check(&started.id, code(&issued)).await.unwrap(), Check::NotFound),
        "another key, another session key"
    );
}

const SKEWED_TEST: &str = "an_instance_whose_clock_runs_two_hours_ahead_is_held_to_the_same_limits";

/// Two instances on one Redis, one of them (a second process, under libfaketime) with its clock
/// two hours ahead. Were an instance's clock part of a decision, the other's sends would look
/// two hours old to it: the cooldown would admit, or the wait would be hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_clock_runs_two_hours_ahead_is_held_to_the_same_limits() {
    if let Ok(setting) = std::env::var("OTP_TEST_SKEWED_INSTANCE") {
        return skewed_instance(&setting).await;
    }
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let server = redis_server();
    let verifier = Verifier::new(client(&sandbox, Gateway::PhonePe), redis_store(&server));
    verifier.start(phonepe_to("9876500801"), &from(1)).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut skewed = std::process::Command::new("faketime");
    skewed
        .args(["-f", "+2h"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", SKEWED_TEST, "--test-threads", "1"])
        .env("OTP_TEST_SKEWED_INSTANCE", format!("{} {} {now}", server.url(), sandbox.base_url()));
    // Waited for off the runtime, which serves the sandbox the other process sends through.
    let status = tokio::task::spawn_blocking(move || skewed.status())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("this test needs faketime (the Debian package; .ci/run installs it): {e}"));
    assert!(status.success(), "the skewed instance's assertions failed");
    // The skewed instance's send counts here too, by the server's clock.
    let refused = verifier.start(phonepe_to("9876500802"), &from(3)).await.unwrap_err();
    assert_cooldown_of_seconds(&refused);
    assert_eq!((sandbox.otps("9876500801").len(), sandbox.otps("9876500802").len()), (1, 1));
}

async fn skewed_instance(setting: &str) {
    let [redis, sandbox_url, parent_now]: [&str; 3] = setting.split(' ').collect::<Vec<_>>().try_into().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now >= parent_now.parse::<u64>().unwrap() + 7000, "faketime did not move this process's clock");
    let options = ClientOptions::new().environment(Environment::Custom(sandbox_url.to_owned()));
    let client = sandbox::client(Gateway::PhonePe, options).unwrap();
    let store = RedisStore::open(redis, StoreKey::from_bytes(&STORE_KEY).unwrap()).unwrap();
    let verifier = Verifier::new(client, store);
    let refused = verifier.start(phonepe_to("9876500801"), &from(2)).await.unwrap_err();
    assert_cooldown_of_seconds(&refused);
    verifier.start(phonepe_to("9876500802"), &from(2)).await.unwrap();
}

fn assert_cooldown_of_seconds(refused: &Error) {
    assert_eq!(refused.guard_rule(), Some("cooldown"), "{refused}");
    let wait = refused.retry_after().unwrap();
    assert!(wait > Duration::from_secs(20) && wait <= Duration::from_secs(30), "{wait:?}");
}

#[tokio::test]
async fn a_guard_decision_is_one_round_trip_and_a_check_at_most_two() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let server = redis_server();
    let verifier = Verifier::new(client(&sandbox, Gateway::PhonePe), redis_store(&server));
    // Warm up: Redis learns each script once (EVALSHA, NOSCRIPT, EVAL).
    let warm = verifier.start(phonepe_to("9876500901"), &from(1)).await.unwrap();
    verifier.check(&warm.id, wrong(&inbox_code(&sandbox, "9876500901"))).await.unwrap();
    verifier.check(&warm.id, code(&inbox_code(&sandbox, "9876500901"))).await.unwrap();
    verifier.start(phonepe_to("9876500901"), &from(1)).await.unwrap_err();

    let before = server.script_calls().unwrap();
    let started = verifier.start(phonepe_to("9876500902"), &from(2)).await.unwrap();
    let after_start = server.script_calls().unwrap();
    verifier.start(phonepe_to("9876500902"), &from(2)).await.unwrap_err();
    let after_refusal = server.script_calls().unwrap();
    let issued = inbox_code(&sandbox, "9876500902");
    verifier.check(&started.id, wrong(&issued)).await.unwrap();
    let after_wrong = server.script_calls().unwrap();
    verifier.check(&started.id, code(&issued)).await.unwrap();
    let after_right = server.script_calls().unwrap();
    assert_eq!(
        [after_start - before, after_refusal - after_start, after_wrong - after_refusal, after_right - after_wrong],
        [2, 1, 1, 2],
        "start (decision + session), refused start, wrong check, verified check (try + removal)"
    );
}

#[tokio::test]
async fn debug_of_requests_sessions_and_verifiers_shows_no_number_address_name_or_code() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mobile = || "9876501001".parse::<MobileNumber>().unwrap();
    let verifications: Vec<Verification> = vec![
        phonepe::SendOtpRequest::new(mobile()).email("asha.rao@example.com").short_name("Asha Rao").into(),
        otp::paytm::SendOtpRequest::new(mobile(), "device-7").scope("paytm").into(),
        Verification::new(
            otp::iserveu::RegistrationOtpRequest::new(mobile(), "AADHAAR", otp::IdentityNumber::new("765386439745"))
                .public_ip("198.51.100.23".parse().unwrap()),
        )
        .customer_name("Asha Rao"),
    ];
    let verifier = Verifier::new(client(&sandbox, Gateway::PhonePe), MemoryStore::new());
    let context = Context::new("198.51.100.23".parse().unwrap()).caller_key("account-4242").unwrap();
    let started = verifier.start(verifications[0].clone(), &context).await.unwrap();
    let checked = verifier.check(&started.id, code("000000")).await.unwrap();
    let iserveu_check = <GatewayClient as SessionGateway>::verify_request(
        &verifications[2],
        &serde_json::from_str::<Sent>(r#"{"reference":null,"outcome":"sent"}"#).unwrap(),
        code("482913"),
    )
    .unwrap();
    let rendered = format!("{verifications:?} {verifier:?} {context:?} {started:?} {checked:?} {iserveu_check:?}");
    for secret in [
        "9876501001",
        "asha.rao",
        "Asha Rao",
        "198.51.100.23",
        "account-4242",
        "765386439745",
        "482913",
        started.id.as_str(),
    ] {
        assert!(!rendered.contains(secret), "{secret} in {rendered}");
    }
    let verifier_debug = format!("{verifier:?}");
    assert!(
        verifier_debug.starts_with("Verifier { gateway: PhonePe(") && verifier_debug.contains("MemoryStore {"),
        "{verifier_debug}"
    );
    assert_eq!(
        format!("{context:?}"),
        r#"Context { client_ip: "[redacted]", caller_key: Some("[redacted]"), idempotency_key: None }"#
    );
    for verification in &verifications {
        assert!(format!("{verification:?}").contains("XXXXXX1001"), "the masked number is shown: {verification:?}");
    }
}
