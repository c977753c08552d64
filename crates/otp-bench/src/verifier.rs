//! The verifier's figures (sessions.md): guard decisions per second on each store, memory under
//! millions of distinct numbers, start+check against the sandbox at c=64, and the Redis round
//! trips of a start and of a check, counted by the server (`INFO commandstats`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{Check, Context, GuardRules, MemoryStore, RedisStore, Store, StoreKey, Verifier};
use otp::{ClientOptions, Environment, Gateway, MobileNumber, OtpCode};
use otp_verifier::test_util::{guard_decision, RedisServer};

use crate::{measure, BoxError};

/// A distinct valid number per index (8 followed by nine digits: no sandbox magic).
#[allow(clippy::expect_used)] // See the message: it holds by construction.
fn number(i: usize) -> MobileNumber {
    let text = format!("8{:09}", i % 1_000_000_000);
    text.parse().expect("8 and nine digits is a valid number")
}

fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i as u32)))
}

fn resident_mib() -> f64 {
    crate::realistic::process_status_mib("VmRSS:")
}

async fn decisions<S: Store>(label: &str, store: S, n: usize) -> Result<(), BoxError> {
    let rules = Arc::new(GuardRules::default());
    let admitted = measure(n, 64, move |i| {
        let (store, rules) = (store.clone(), rules.clone());
        async move {
            guard_decision(&store, &rules, &number(i), address(i)).await?;
            Ok(())
        }
    })
    .await?
    .stats();
    println!(
        "{label:>6}  {:>10.0}/s  p50 {:>8.1?}  p99 {:>8.1?}  (distinct numbers: every decision admits and writes)",
        admitted.requests_per_second, admitted.p50, admitted.p99
    );
    Ok(())
}

async fn start_and_check<S: Store>(label: &str, store: S, n: usize, offset: usize) -> Result<(), BoxError> {
    let sandbox = Arc::new(Sandbox::start(SandboxConfig::default()).await?);
    let options = ClientOptions::new().environment(Environment::Custom(sandbox.base_url()));
    let verifier = Verifier::new(otp::sandbox::client(Gateway::PhonePe, options)?, store);
    let run = measure(n, 64, move |i| {
        let (verifier, sandbox) = (verifier.clone(), sandbox.clone());
        async move {
            let mobile = number(offset + i);
            let request = otp::phonepe::SendOtpRequest::new(mobile);
            let started = verifier.start(request.into(), &Context::new(address(offset + i))).await?;
            let code = sandbox.otps(mobile.expose_digits()).first().map(|otp| otp.otp.clone()).ok_or("no OTP")?;
            match verifier.check(&started.id, OtpCode::parse(&code)?).await? {
                Check::Verified { .. } => Ok(()),
                other => Err(format!("the right code answered {other:?}").into()),
            }
        }
    })
    .await?
    .stats();
    println!(
        "{label:>6}  {:>10.0} start+check/s at c=64  p50 {:>8.1?}  p99 {:>8.1?}",
        run.requests_per_second, run.p50, run.p99
    );
    Ok(())
}

pub async fn run(quick: bool) -> Result<(), BoxError> {
    let redis = RedisServer::start()?;
    let key = || StoreKey::from_bytes(&[42; 32]);
    println!("Verifier (sessions.md): a redis-server of its own on loopback, the sandbox in process");
    println!("guard decisions, c=64:");
    let n = if quick { 20_000 } else { 200_000 };
    decisions("memory", MemoryStore::new(), n).await?;
    decisions("redis", RedisStore::open(&redis.url(), key()?)?, n / 4).await?;

    // Memory stays flat: the store is bounded (250,000 subjects by default) and drops the least
    // recently sent first.
    let store = MemoryStore::new();
    let rules = GuardRules::default();
    let total = if quick { 400_000 } else { 2_000_000 };
    let before = resident_mib();
    let mut line = String::from("memory store, distinct numbers:");
    for i in 0..total {
        guard_decision(&store, &rules, &number(500_000_000 + i), address(i)).await?;
        if (i + 1) % (total / 4) == 0 {
            line.push_str(&format!("  {}k → +{:.0} MiB", (i + 1) / 1000, resident_mib() - before));
        }
    }
    println!("{line}  (kept: {:?})", store.len());
    drop(store);

    println!("start + check against the sandbox (PhonePe, distinct numbers):");
    let n = if quick { 2_000 } else { 10_000 };
    start_and_check("memory", MemoryStore::new(), n, 0).await?;
    let store = RedisStore::open(&redis.url(), key()?)?;
    start_and_check("warm-up", store.clone(), n / 10, 100_000).await?; // loads the scripts
    start_and_check("redis", store, n, 200_000).await?;

    // Round trips of one start and one check, counted by the server.
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let options = ClientOptions::new().environment(Environment::Custom(sandbox.base_url()));
    let verifier =
        Verifier::new(otp::sandbox::client(Gateway::PhonePe, options)?, RedisStore::open(&redis.url(), key()?)?);
    let rounds = 100;
    let mut started = Vec::with_capacity(rounds);
    let before = redis.script_calls()?;
    for i in 0..rounds {
        let request = otp::phonepe::SendOtpRequest::new(number(300_000 + i));
        started.push(verifier.start(request.into(), &Context::new(address(i))).await?);
    }
    let after_starts = redis.script_calls()?;
    let refused_before = after_starts;
    for (i, _) in started.iter().enumerate().take(rounds) {
        let request = otp::phonepe::SendOtpRequest::new(number(300_000 + i));
        let refused = verifier.start(request.into(), &Context::new(address(i))).await;
        if refused.is_ok() {
            return Err("a start within the cooldown was admitted".into());
        }
    }
    let after_refusals = redis.script_calls()?;
    for (i, session) in started.iter().enumerate() {
        let code = sandbox.otps(number(300_000 + i).expose_digits())[0].otp.clone();
        verifier.check(&session.id, OtpCode::parse(&code)?).await?;
    }
    let after_checks = redis.script_calls()?;
    let per = |from: u64, to: u64| (to - from) as f64 / rounds as f64;
    println!(
        "redis round trips: {:.2} per start (guard decision + session), {:.2} per refused start (the guard decision), {:.2} per check",
        per(before, after_starts),
        per(refused_before, after_refusals),
        per(after_refusals, after_checks)
    );
    Ok(())
}
