//! The verifier's figures (docs/verifier.md): guard decisions per second on each store, memory under
//! millions of distinct numbers and of a million tombstones, status lookups and start+check
//! against the sandbox at c=64 (on Redis with events into its stream and without), and the
//! Redis round trips of a start and of a check, counted by the server (`INFO commandstats`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{Check, Context, GuardRules, MemoryStore, RedisStore, Store, StoreKey, VerificationId, Verifier};
use otp::{ClientOptions, Environment, Gateway, MobileNumber, OtpCode};
use otp_verifier::test_util::{guard_decision, RedisServer};

use crate::{measure, BoxError, Run};

/// A distinct valid number per index (8 followed by nine digits: no sandbox magic).
#[allow(clippy::expect_used)] // See the message: it holds by construction.
fn number(i: usize) -> MobileNumber {
    let text = format!("8{:09}", i % 1_000_000_000);
    text.parse().expect("8 and nine digits is a valid number")
}

pub(crate) fn address(i: usize) -> IpAddr {
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
    let run = start_and_check_run(store, n, offset).await?.stats();
    println!(
        "{label:>6}  {:>10.0} start+check/s at c=64  p50 {:>8.1?}  p99 {:>8.1?}",
        run.requests_per_second, run.p50, run.p99
    );
    Ok(())
}

/// `n` start+check at c=64 against a sandbox of its own, each to a distinct number from
/// `offset` on.
async fn start_and_check_run<S: Store>(store: S, n: usize, offset: usize) -> Result<Run, BoxError> {
    let sandbox = Arc::new(Sandbox::start(SandboxConfig::default()).await?);
    let options = ClientOptions::new().environment(Environment::Custom(sandbox.base_url()));
    let verifier = Verifier::new(otp::sandbox::client(Gateway::PhonePe, options)?, store);
    measure(n, 64, move |i| {
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
    .await
}

/// Events off against on (the store's stream, appended in its scripts), in alternating rounds
/// so that drift on a shared machine lands on both alike; prints each side and on/off.
async fn events_cost(redis: &RedisServer, key: &StoreKey, n: usize) -> Result<(), BoxError> {
    const ROUNDS: usize = 6;
    let (mut off, mut on) = (Run::default(), Run::default());
    let mut appended = 0;
    for round in 0..ROUNDS {
        let offset = 400_000 + round * n;
        let store = RedisStore::open(&redis.url(), key.clone())?;
        if round % 2 == 0 {
            off.add(start_and_check_run(store, n, offset).await?);
        } else {
            let before = redis.calls(&["xadd"])?;
            on.add(start_and_check_run(store.with_event_stream(1_000_000)?, n, offset).await?);
            appended += redis.calls(&["xadd"])? - before;
        }
    }
    let (off, on) = (off.stats(), on.stats());
    for (label, run) in [("off", &off), ("on", &on)] {
        println!(
            "events {label:>3}  {:>10.0} start+check/s at c=64  p50 {:>8.1?}  p99 {:>8.1?}  (bench process CPU {:.0} µs per start+check)",
            run.requests_per_second,
            run.p50,
            run.p99,
            run.cpu_per_send.as_secs_f64() * 1e6
        );
    }
    println!(
        "events on/off throughput: {:.3} (cost {:+.1} %); the stream took {appended} events ({:.2} per start+check)",
        on.requests_per_second / off.requests_per_second,
        (1.0 - on.requests_per_second / off.requests_per_second) * 100.0,
        appended as f64 / (n * ROUNDS / 2) as f64
    );
    Ok(())
}

/// Status lookups at c=64 over `sessions` pending verifications, round robin.
async fn status_lookups<S: Store>(
    label: &str,
    store: S,
    sessions: usize,
    n: usize,
    offset: usize,
) -> Result<(), BoxError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let options = ClientOptions::new().environment(Environment::Custom(sandbox.base_url()));
    let verifier = Verifier::new(otp::sandbox::client(Gateway::PhonePe, options)?, store);
    let mut ids: Vec<VerificationId> = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let request = otp::phonepe::SendOtpRequest::new(number(offset + i));
        ids.push(verifier.start(request.into(), &Context::new(address(offset + i))).await?.id);
    }
    let ids = Arc::new(ids);
    let run = measure(n, 64, move |i| {
        let (verifier, ids) = (verifier.clone(), ids.clone());
        async move {
            match verifier.status(&ids[i % ids.len()]).await? {
                Some(_) => Ok(()),
                None => Err("a started verification has no status".into()),
            }
        }
    })
    .await?
    .stats();
    println!(
        "{label:>6}  {:>10.0} status/s at c=64  p50 {:>8.1?}  p99 {:>8.1?}  (over {sessions} pending verifications)",
        run.requests_per_second, run.p50, run.p99
    );
    Ok(())
}

/// `--tombstone-probe`: finishes a million sessions in a fresh default memory store (its bound
/// of tombstones: four per live session) and prints the resident bytes per tombstone; then a
/// quarter million more, which take the oldest ones' places.
pub async fn tombstone_probe() -> Result<(), BoxError> {
    let store = MemoryStore::new();
    let bound = 4 * otp_verifier::DEFAULT_MAX_SESSIONS;
    let before = resident_mib();
    otp_verifier::test_util::finish_sessions(&store, bound).await?;
    let full = resident_mib() - before;
    let kept = otp_verifier::test_util::tombstones(&store);
    otp_verifier::test_util::finish_sessions(&store, bound / 4).await?;
    let after = resident_mib() - before;
    println!(
        "memory store, {} finished sessions: {kept} tombstones kept, {:.0} bytes per tombstone (+{full:.0} MiB); {} more: {} kept, +{after:.0} MiB",
        bound,
        full * 1024.0 * 1024.0 / kept.max(1) as f64,
        bound / 4,
        otp_verifier::test_util::tombstones(&store)
    );
    Ok(())
}

/// `--memory-probe SENDS`: fills a fresh default memory store to its bound with numbers of
/// `SENDS` sends each (from a thousand addresses) and prints the resident bytes per subject.
pub async fn memory_probe(sends: usize) -> Result<(), BoxError> {
    use std::time::Duration;
    let store = MemoryStore::new();
    let rules = GuardRules::default()
        .cooldown(Duration::ZERO)
        .number_short_window(otp::verifier::Limit::new(10, Duration::from_secs(3600)))
        .per_client_ip(otp::verifier::Limit::new(10_000, Duration::from_secs(3600)));
    let addresses = 1_000;
    let numbers = otp_verifier::DEFAULT_MAX_GUARD_KEYS - addresses;
    let before = resident_mib();
    for i in 0..numbers {
        for _ in 0..sends {
            guard_decision(&store, &rules, &number(700_000_000 + i), address(i % addresses)).await?;
        }
    }
    let used = resident_mib() - before;
    let (subjects, _) = store.len();
    println!(
        "memory store full ({subjects} subjects), {sends} send(s) each: {:.0} bytes per subject (+{used:.0} MiB)",
        used * 1024.0 * 1024.0 / subjects as f64
    );
    Ok(())
}

pub async fn run(quick: bool) -> Result<(), BoxError> {
    let redis = RedisServer::start()?;
    let key = || StoreKey::from_bytes(&[42; 32]);
    println!("Verifier: a redis-server of its own on loopback, the sandbox in process");
    // Bytes per subject, each measured in a fresh process: an allocator reuses what an earlier
    // run freed, so a second measurement in one process reads too small.
    for sends in [1, 10] {
        let probe = std::process::Command::new(std::env::current_exe()?)
            .args(["--memory-probe", &sends.to_string()])
            .output()?;
        if !probe.status.success() {
            return Err(format!("the memory probe failed: {}", String::from_utf8_lossy(&probe.stderr)).into());
        }
        print!("{}", String::from_utf8_lossy(&probe.stdout));
    }
    let probe = std::process::Command::new(std::env::current_exe()?).arg("--tombstone-probe").output()?;
    if !probe.status.success() {
        return Err(format!("the tombstone probe failed: {}", String::from_utf8_lossy(&probe.stderr)).into());
    }
    print!("{}", String::from_utf8_lossy(&probe.stdout));
    println!("guard decisions, c=64:");
    let n = if quick { 20_000 } else { 200_000 };
    decisions("memory", MemoryStore::new(), n).await?;
    decisions("redis", RedisStore::open(&redis.url(), key()?)?, n / 4).await?;

    // Memory stays flat: the store is bounded, and once full of live subjects it refuses new
    // ones (unsent) instead of forgetting any.
    let store = MemoryStore::new();
    let rules = GuardRules::default();
    let fill = otp_verifier::DEFAULT_MAX_GUARD_KEYS / 2; // each decision: a new number and address
    let total = if quick { fill + fill / 4 } else { 2 * fill };
    let before = resident_mib();
    let mut line = String::from("memory store, distinct numbers:");
    let mut refused = 0;
    for i in 0..total {
        if !guard_decision(&store, &rules, &number(500_000_000 + i), address(i)).await? {
            refused += 1;
        }
        if (i + 1) % (total / 4) == 0 {
            line.push_str(&format!("  {}k → +{:.0} MiB", (i + 1) / 1000, resident_mib() - before));
        }
    }
    println!("{line}  (kept: {:?}; refused as full: {refused})", store.len());
    drop(store);

    println!("start + check against the sandbox (PhonePe, distinct numbers):");
    let n = if quick { 2_000 } else { 10_000 };
    start_and_check("memory", MemoryStore::new(), n, 0).await?;
    let store = RedisStore::open(&redis.url(), key()?)?;
    start_and_check("warm-up", store.clone(), n / 10, 100_000).await?; // loads the scripts
    start_and_check("redis", store, n, 200_000).await?;
    println!(
        "start + check on Redis, events into its stream (RedisStore::with_event_stream) or not, alternating rounds:"
    );
    events_cost(&redis, &key()?, n / 3).await?;

    println!("status lookups:");
    let (sessions, lookups) = if quick { (500, 20_000) } else { (2_000, 200_000) };
    status_lookups("memory", MemoryStore::new(), sessions, lookups, 600_000).await?;
    status_lookups("redis", RedisStore::open(&redis.url(), key()?)?, sessions, lookups / 4, 610_000).await?;

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

    // The same with events into the store's stream. Script calls are the round trips; XADD
    // counts every append, in a script or not, so equal script calls and one XADD per event
    // with nothing else sent means each event rode in its change's script (a test checks
    // that with MONITOR).
    let store = RedisStore::open(&redis.url(), key()?)?.with_event_stream(1_000_000)?;
    let verifier = Verifier::new(
        otp::sandbox::client(
            Gateway::PhonePe,
            ClientOptions::new().environment(Environment::Custom(sandbox.base_url())),
        )?,
        store,
    );
    let (mut starts, mut checks, mut appends) = (0, 0, 0);
    for i in 0..rounds {
        let mobile = number(310_000 + i);
        let (before, xadds_before) = (redis.script_calls()?, redis.calls(&["xadd"])?);
        let started = verifier
            .start(otp::phonepe::SendOtpRequest::new(mobile).into(), &Context::new(address(10_000 + i)))
            .await?;
        let after_start = redis.script_calls()?;
        let code = sandbox.otps(mobile.expose_digits())[0].otp.clone();
        verifier.check(&started.id, OtpCode::parse(&code)?).await?;
        starts += after_start - before;
        checks += redis.script_calls()? - after_start;
        appends += redis.calls(&["xadd"])? - xadds_before;
    }
    println!(
        "redis round trips with events on: {:.2} per start, {:.2} per check ({:.2} events appended per start+check, inside those scripts)",
        starts as f64 / rounds as f64,
        checks as f64 / rounds as f64,
        appends as f64 / rounds as f64
    );
    Ok(())
}
