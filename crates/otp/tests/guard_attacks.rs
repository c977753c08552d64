//! The send guard and a session's life, tried as an attacker would (docs/security.md): floods
//! meant to wipe the guard, address tricks, resends of spent sessions, a check racing a resend,
//! replayed store calls, and a store that fails in the ways fail-open must not cover. Sends are
//! counted where they land: in the real sandbox's inbox; Redis is a real redis-server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{
    Check, Context, GuardRules, Limit, MemoryStore, RedisStore, State, Store, StoreKey, Verification, Verifier,
};
use otp::{ErrorKind, Gateway, MobileNumber, Reached};
use otp_verifier::test_util::guard_decision;

mod common;
use common::sessions::{from, phonepe_to, redis_server, redis_store, Instrumented};
use common::{code, inbox_code, sandbox_client, wrong};

/// A distinct valid number per index, none of them the sandbox's magic numbers.
fn number(i: usize) -> MobileNumber {
    format!("8{:09}", i).parse().unwrap()
}

/// Point 1: a start that could never be sent (a Paytm device id of 200 characters) used to be
/// admitted, fail, give its place back and leave an entry behind; 300,000 of them from one
/// address pushed a victim's live limits out of the default memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invalid_starts_counts_nowhere_and_the_victims_cooldown_holds_at_the_default_bounds() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let store = MemoryStore::new();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::Paytm), store.clone());
    let paytm = |mobile: MobileNumber, device: &str| -> Verification {
        otp::paytm::SendOtpRequest::new(mobile, device).scope("paytm").into()
    };
    let victim: MobileNumber = "9876512345".parse().unwrap();
    verifier.start(paytm(victim, "victim-phone"), &from(1)).await.unwrap();
    assert_eq!(store.len(), (2, 1), "the victim's number and address, and its session");

    let attacker = from(2);
    let device = "d".repeat(200);
    for i in 0..300_000 {
        let error = verifier.start(paytm(number(i), &device), &attacker).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
    }
    assert_eq!(store.len(), (2, 1), "an invalid request is counted nowhere and leaves nothing behind");

    let refused = verifier.start(paytm(victim, "victim-phone"), &from(3)).await.unwrap_err();
    assert_eq!((refused.kind(), refused.guard_rule()), (ErrorKind::RateLimited, Some("cooldown")), "{refused}");
    assert_eq!(sandbox.otps(victim.expose_digits()).len(), 1, "one SMS to the victim, not two");
}

/// Point 1, the other way in: real, admitted sends to a million new subjects. The default
/// memory store fills up and then refuses new subjects unsent; it never forgets a live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_admitted_sends_fills_the_default_memory_store_and_forgets_no_live_limit() {
    let store = MemoryStore::new();
    let rules = GuardRules::default();
    let victim: MobileNumber = "9876512346".parse().unwrap();
    let victim_ip: IpAddr = "203.0.113.50".parse().unwrap();
    assert!(guard_decision(&store, &rules, &victim, victim_ip).await.unwrap());
    let mut admitted = 0;
    let mut refused = 0;
    // Each decision counts a new number and a new address: two subjects.
    for i in 0..otp_verifier::DEFAULT_MAX_GUARD_KEYS / 2 + 1_000 {
        let address = IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32 + i as u32));
        match guard_decision(&store, &rules, &number(i), address).await {
            Ok(true) => admitted += 1,
            Ok(false) => refused += 1,
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(store.len().0, otp_verifier::DEFAULT_MAX_GUARD_KEYS, "full, and no fuller");
    assert_eq!(admitted, otp_verifier::DEFAULT_MAX_GUARD_KEYS / 2 - 1, "the victim holds two places");
    assert_eq!(refused, 1_001);
    // The victim is still inside its cooldown: refused, whatever the flood did.
    assert!(!guard_decision(&store, &rules, &victim, victim_ip).await.unwrap());
    // And so is the flood's first number, sent first of all.
    assert!(!guard_decision(&store, &rules, &number(0), "198.51.100.1".parse().unwrap()).await.unwrap());
}

/// A store full of live limits refuses a start for a new number as `transport`, nothing sent,
/// while known numbers are still held to their limits.
#[tokio::test]
async fn a_full_memory_store_refuses_new_numbers_unsent_and_still_limits_known_ones() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let store = MemoryStore::with_bounds(20, 100);
    let rules = GuardRules::default().per_client_ip(Limit::new(100, Duration::from_secs(3600)));
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store.clone()).with_rules(rules).unwrap();
    let one_ip = from(1);
    let mut full = 0;
    for i in 0..40 {
        match verifier.start(phonepe_to(number(i).expose_digits()), &one_ip).await {
            Ok(_) => assert_eq!(sandbox.otps(number(i).expose_digits()).len(), 1),
            Err(error) => {
                assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::No), "{error}");
                assert!(error.is_retryable());
                assert!(sandbox.otps(number(i).expose_digits()).is_empty(), "refused, so nothing sent");
                full += 1;
            }
        }
    }
    // 20 places: one address and 19 numbers.
    assert_eq!((full, store.len().0), (21, 20));
    let refused = verifier.start(phonepe_to(number(0).expose_digits()), &one_ip).await.unwrap_err();
    assert_eq!(refused.guard_rule(), Some("cooldown"), "{refused}");
}

/// Point 2: `::ffff:a.b.c.d` is `a.b.c.d`, and one IPv6 /64 is one client.
async fn an_address_counts_once_however_it_is_written<S: Store>(store: S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default().cooldown(Duration::ZERO).per_client_ip(Limit::new(3, Duration::from_secs(3600)));
    let verifier =
        Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store.clone()).with_rules(rules.clone()).unwrap();
    let context = |ip: &str| Context::new(ip.parse().unwrap());
    for (i, ip) in ["203.0.113.9", "::ffff:203.0.113.9", "203.0.113.9"].into_iter().enumerate() {
        verifier.start(phonepe_to(number(100 + i).expose_digits()), &context(ip)).await.unwrap();
    }
    let refused = verifier.start(phonepe_to(number(103).expose_digits()), &context("::ffff:203.0.113.9")).await;
    assert_eq!(refused.unwrap_err().guard_rule(), Some("client_ip"));

    let mut admitted = 0;
    for i in 0..6 {
        let ip = format!("2001:db8:77:1:{i:x}:{:x}::{i}", i * 7919);
        match verifier.start(phonepe_to(number(200 + i).expose_digits()), &context(&ip)).await {
            Ok(_) => admitted += 1,
            Err(error) => assert_eq!(error.guard_rule(), Some("client_ip"), "{error}"),
        }
    }
    assert_eq!(admitted, 3, "six addresses of one /64 share one quota of 3");
    let sent: usize = (200..206).map(|i| sandbox.otps(number(i).expose_digits()).len()).sum();
    assert_eq!(sent, 3);
    // Another /64 is another client; a prefix of 128 counts exact addresses.
    verifier.start(phonepe_to(number(210).expose_digits()), &context("2001:db8:77:2::1")).await.unwrap();
    let exact =
        Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store).with_rules(rules.ipv6_prefix(128)).unwrap();
    exact.start(phonepe_to(number(211).expose_digits()), &context("2001:db8:77:1::ffff")).await.unwrap();
}

#[tokio::test]
async fn an_address_counts_once_however_it_is_written_in_memory() {
    an_address_counts_once_however_it_is_written(MemoryStore::new()).await;
}

#[tokio::test]
async fn an_address_counts_once_however_it_is_written_on_redis() {
    let server = redis_server();
    an_address_counts_once_however_it_is_written(redis_store(&server)).await;
}

/// Point 3: a session spent by wrong codes sends no new code.
async fn a_spent_session_is_not_resent<S: Store>(store: S) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default().cooldown(Duration::ZERO);
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store).with_rules(rules).unwrap();
    let mobile = "9876512401";
    let started = verifier.start(phonepe_to(mobile), &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, mobile);
    for left in (0..5).rev() {
        let checked = verifier.check(&started.id, wrong(&issued)).await.unwrap();
        assert!(matches!(checked, Check::WrongOtp { tries_left } if tries_left == left), "{checked:?}");
    }
    let error = verifier.resend(&started.id, &from(1)).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::OtpExpired, Reached::No), "{error}");
    assert_eq!(sandbox.otps(mobile).len(), 1, "no SMS for a session no check can use");
}

#[tokio::test]
async fn a_spent_session_is_not_resent_in_memory() {
    a_spent_session_is_not_resent(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_spent_session_is_not_resent_on_redis() {
    let server = redis_server();
    a_spent_session_is_not_resent(redis_store(&server)).await;
}

/// Point 4: the old code's check and a resend race, 200 times. Whatever order they land in, a
/// resend that succeeded leaves a session its new code verifies (unless the old code already
/// verified it): the check of the old code never ends the resend's session.
async fn a_check_never_ends_the_session_a_resend_replaced<S: Store>(store: S, first_number: usize) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules =
        GuardRules::default().cooldown(Duration::ZERO).per_client_ip(Limit::new(1_000, Duration::from_secs(3600)));
    // Every verify held back a while: the customer's old code is in flight while a resend goes out.
    let gateway = Instrumented {
        verify_delay: Duration::from_millis(5),
        ..Instrumented::new(sandbox_client(&sandbox, Gateway::PhonePe))
    };
    let verifier = otp_verifier::Verifier::new(gateway, store).with_rules(rules).unwrap();
    let (mut resent_first, mut verified_first) = (0, 0);
    for i in 0..200 {
        let mobile = number(first_number + i);
        let mobile = mobile.expose_digits();
        let started = verifier.start(phonepe_to(mobile), &from(1)).await.unwrap();
        let old = inbox_code(&sandbox, mobile);
        let check = {
            let (verifier, id) = (verifier.clone(), started.id.clone());
            tokio::spawn(async move { verifier.check(&id, code(&old)).await })
        };
        let resend = {
            let (verifier, id) = (verifier.clone(), started.id.clone());
            tokio::spawn(async move { verifier.resend(&id, &from(1)).await })
        };
        let (checked, resent) = (check.await.unwrap().unwrap(), resend.await.unwrap());
        match (&checked, &resent) {
            (Check::Verified { .. }, _) => verified_first += 1,
            (_, Ok(_)) => {
                resent_first += 1;
                assert!(
                    matches!(checked, Check::WrongOtp { .. }),
                    "the old code is not the session's now: {checked:?}"
                );
                let new = inbox_code(&sandbox, mobile);
                let again = verifier.check(&started.id, code(&new)).await.unwrap();
                assert!(
                    matches!(again, Check::Verified { .. }),
                    "round {i}: the resent code must verify, got {again:?}"
                );
            }
            (other, Err(error)) => panic!("round {i}: {other:?} and {error}"),
        }
    }
    assert_eq!(resent_first + verified_first, 200);
    assert!(resent_first > 0, "the race was never lost by the check: no test of it ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_never_ends_the_session_a_resend_replaced_in_memory() {
    a_check_never_ends_the_session_a_resend_replaced(MemoryStore::new(), 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_never_ends_the_session_a_resend_replaced_on_redis() {
    let server = redis_server();
    a_check_never_ends_the_session_a_resend_replaced(redis_store(&server), 600).await;
}

/// Point 4, the interleaving the race above hits only sometimes, made certain: the resend's new
/// code has reached the gateway (which now judges the old one expired) but its answer is not
/// back, so the session still holds the old send when the old code is checked. The check ends
/// nothing; the resend lands and its code verifies.
async fn a_check_between_a_resends_send_and_its_answer_ends_nothing<S: Store>(store: S, mobile: &str) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default().cooldown(Duration::ZERO);
    let gateway = Instrumented {
        answer_delay: Duration::from_millis(300),
        ..Instrumented::new(sandbox_client(&sandbox, Gateway::PhonePe))
    };
    let verifier = otp_verifier::Verifier::new(gateway, store).with_rules(rules).unwrap();
    let started = verifier.start(phonepe_to(mobile), &from(1)).await.unwrap();
    let old = inbox_code(&sandbox, mobile);
    let resend = {
        let (verifier, id) = (verifier.clone(), started.id.clone());
        tokio::spawn(async move { verifier.resend(&id, &from(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_ne!(inbox_code(&sandbox, mobile), old, "the new code has reached the gateway");
    let checked = verifier.check(&started.id, code(&old)).await.unwrap();
    assert!(matches!(checked, Check::WrongOtp { .. }), "the old code is not the session's now: {checked:?}");
    resend.await.unwrap().expect("the resend lands: the check ended nothing");
    let new = inbox_code(&sandbox, mobile);
    assert!(matches!(verifier.check(&started.id, code(&new)).await.unwrap(), Check::Verified { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_between_a_resends_send_and_its_answer_ends_nothing_in_memory() {
    a_check_between_a_resends_send_and_its_answer_ends_nothing(MemoryStore::new(), "9876512461").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_between_a_resends_send_and_its_answer_ends_nothing_on_redis() {
    let server = redis_server();
    a_check_between_a_resends_send_and_its_answer_ends_nothing(redis_store(&server), "9876512462").await;
}

/// The last try used ends the session even while a resend is on its way (tries belong to the
/// session, a resend keeps them): the status says `max_attempts_reached`, its event goes, and
/// the resend's new code is reported as landing on an ended session (may have been sent).
async fn the_last_try_ends_the_session_a_resend_is_replacing<S: Store>(store: S, mobile: &str) {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let rules = GuardRules::default().cooldown(Duration::ZERO);
    let gateway = Instrumented {
        answer_delay: Duration::from_millis(300),
        ..Instrumented::new(sandbox_client(&sandbox, Gateway::PhonePe))
    };
    let tries = rules.max_wrong_tries;
    let verifier = otp_verifier::Verifier::new(gateway, store).with_rules(rules).unwrap();
    let started = verifier.start(phonepe_to(mobile), &from(1)).await.unwrap();
    let issued = inbox_code(&sandbox, mobile);
    for _ in 1..tries {
        verifier.check(&started.id, wrong(&issued)).await.unwrap();
    }
    let resend = {
        let (verifier, id) = (verifier.clone(), started.id.clone());
        tokio::spawn(async move { verifier.resend(&id, &from(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let last = verifier.check(&started.id, wrong(&issued)).await.unwrap();
    assert!(matches!(last, Check::WrongOtp { tries_left: 0 }), "{last:?}");
    let status = verifier.status(&started.id).await.unwrap().unwrap();
    assert_eq!(status.state, State::MaxAttemptsReached);
    let error = resend.await.unwrap().unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::OtpExpired, Reached::Yes), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_try_ends_the_session_a_resend_is_replacing_in_memory() {
    the_last_try_ends_the_session_a_resend_is_replacing(MemoryStore::new(), "9876512463").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_try_ends_the_session_a_resend_is_replacing_on_redis() {
    let server = redis_server();
    the_last_try_ends_the_session_a_resend_is_replacing(redis_store(&server), "9876512464").await;
}

/// Point 6: fail-open is for a store that cannot be reached, and even then a guard decides. A
/// Redis that answers with an error (here: a user not allowed to run scripts, NOPERM) keeps the
/// guard closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_never_covers_a_redis_that_answers_with_an_error() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let server = redis_server();
    let admin = redis::Client::open(server.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "noscripts", "on", ">pw", "~*", "&*", "+@all", "-eval", "-evalsha"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = format!("redis://noscripts:pw@127.0.0.1:{}/", server.port());
    let store = RedisStore::open(&url, StoreKey::from_bytes(&[7; 32]).unwrap()).unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), store).with_guard_fail_open(true);
    for caller in 0..3 {
        let error = verifier.start(phonepe_to("9876512501"), &from(caller)).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::No), "{error}");
    }
    assert!(sandbox.otps("9876512501").is_empty(), "an answering store is not a reason to send unguarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_unreachable_and_fail_open_a_local_guard_decides() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut server = redis_server();
    let verifier =
        Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), redis_store(&server)).with_guard_fail_open(true);
    server.stop();
    let mut outcomes = Vec::new();
    for caller in 0..4 {
        let error = verifier.start(phonepe_to("9876512601"), &from(caller)).await.unwrap_err();
        outcomes.push((error.kind(), error.reached_provider(), error.guard_rule()));
    }
    // The first goes out (and its session cannot be kept); the local guard's cooldown holds the rest.
    assert_eq!(outcomes[0], (ErrorKind::Transport, Reached::Yes, None));
    for outcome in &outcomes[1..] {
        assert_eq!(*outcome, (ErrorKind::RateLimited, Reached::No, Some("cooldown")));
    }
    assert_eq!(sandbox.otps("9876512601").len(), 1);
}

/// Point 7: the answer names the number it verified.
#[tokio::test]
async fn a_verified_check_names_the_number_it_verified() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let verifier = Verifier::new(sandbox_client(&sandbox, Gateway::PhonePe), MemoryStore::new());
    let started = verifier.start(phonepe_to("9876512701"), &from(1)).await.unwrap();
    match verifier.check(&started.id, code(&inbox_code(&sandbox, "9876512701"))).await.unwrap() {
        Check::Verified { mobile, .. } => {
            assert_eq!(mobile.expose_digits(), "9876512701");
            assert_eq!(format!("{mobile:?} {mobile}"), "MobileNumber(XXXXXX2701) XXXXXX2701");
        }
        other => panic!("{other:?}"),
    }
}
