//! `--webhooks`: one replica's webhook deliveries on a real redis-server.
//!
//! One service (a child process, as `--serve` runs it) on a redis-server of its own, with one
//! webhook endpoint (the default `RetrySchedule`, lanes and timeout) pointing at a receiver in
//! this process: a hyper server that answers 204 at once and records when each event (its
//! `data.id` and `type`) first arrived. PhonePe goes through the sandbox in this process; each
//! start+check flow makes two events, `verification.started` and `verification.approved`.
//!
//! 1. Throughput: start+check closed loop at c=64 for 10 s; deliveries counted over the run,
//!    then the backlog left at its end and how fast it drained with nothing else running.
//!    Then a backlog alone: the replica stopped, 10 s of flows through a service without the
//!    endpoint, and a new replica with it delivering them with nothing else running.
//! 2. Delay: 100 flows/s (200 events/s) open loop for 10 s. The state change's time is when
//!    the API answered the call that caused it (the start, the check), recorded per public id
//!    and event type; the delay is from there to the event's arrival at the receiver.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use otp_verifier::test_util::RedisServer;
use serde_json::Value;

use crate::realistic::closed_loop;
use crate::serve::{fresh, http_flow, open_loop, quantiles, Service, Upstream};
use crate::{ms, BoxError};

const STARTED: &str = "verification.started";
const APPROVED: &str = "verification.approved";
/// Flows per second of the delay run (two events each).
const STEADY_FLOWS: f64 = 100.0;
/// `OTP_BENCH_WEBHOOK_LANES`: the endpoint's `max_in_flight` (default: the service's), to
/// see what limits deliveries.
fn lanes() -> usize {
    std::env::var("OTP_BENCH_WEBHOOK_LANES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(otp_serve::DEFAULT_MAX_IN_FLIGHT)
}

/// How long to wait for deliveries still on their way.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    deliveries: AtomicU64,
    /// `(data.id, type)` → when its first delivery arrived.
    first: Mutex<HashMap<(String, String), Instant>>,
    /// Deliveries of an event that had arrived already (at least once: a retry, or a replica's).
    duplicates: AtomicU64,
    /// Bodies without `type` and `data.id`.
    unreadable: AtomicU64,
}

impl Seen {
    fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    fn first(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Instant>> {
        self.first.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiver: `http://127.0.0.1:PORT/hooks`.
async fn receiver() -> Result<(String, Arc<Seen>), BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let _ = socket.set_nodelay(true);
            let seen = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| receive(request, seen.clone()));
                let io = hyper_util::rt::TokioIo::new(socket);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok((url, seen))
}

/// Reads the delivery, notes its arrival, answers 204.
async fn receive(
    request: hyper::Request<hyper::body::Incoming>,
    seen: Arc<Seen>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let arrived = Instant::now();
    seen.deliveries.fetch_add(1, Ordering::Relaxed);
    let event = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    match (event["data"]["id"].as_str(), event["type"].as_str()) {
        (Some(id), Some(kind)) => match seen.first().entry((id.to_owned(), kind.to_owned())) {
            Entry::Occupied(_) => {
                seen.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Entry::Vacant(place) => {
                place.insert(arrived);
            }
        },
        _ => {
            seen.unreadable.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::NO_CONTENT;
    Ok(response)
}

/// Waits until `done` holds or `limit` passed; how long it waited.
async fn until(limit: Duration, done: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !done() && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// When the receiver's count first passed `before` and when it reached `before + count` (or
/// the drain limit passed), polled every millisecond.
async fn arrivals(seen: &Seen, before: u64, count: u64) -> (Instant, Instant) {
    let started = Instant::now();
    let mut first = None;
    loop {
        let now = Instant::now();
        let delivered = seen.deliveries();
        if delivered > before && first.is_none() {
            first = Some(now);
        }
        if delivered >= before + count || started.elapsed() > DRAIN_LIMIT {
            return (first.unwrap_or(now), now);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Each state change's delay to its first delivery, from `answers` (public id, start answered,
/// check answered); returns the delays, how many arrived before the API's answer (counted as
/// 0) and how many did not arrive.
fn delays(
    answers: &[(String, Instant, Instant)],
    first: &HashMap<(String, String), Instant>,
) -> (Vec<Duration>, usize, usize) {
    let (mut delays, mut early, mut missing) = (Vec::with_capacity(2 * answers.len()), 0, 0);
    for (id, started, approved) in answers {
        for (kind, answered) in [(STARTED, started), (APPROVED, approved)] {
            match first.get(&(id.clone(), kind.to_owned())) {
                Some(arrived) => {
                    if arrived < answered {
                        early += 1;
                    }
                    delays.push(arrived.saturating_duration_since(*answered));
                }
                None => missing += 1,
            }
        }
    }
    (delays, early, missing)
}

/// `--webhooks`.
pub(crate) async fn run(quick: bool) -> Result<(), BoxError> {
    let (run_for, steady_for) = if quick {
        (Duration::from_secs(2), Duration::from_secs(3))
    } else {
        (Duration::from_secs(10), Duration::from_secs(10))
    };
    let redis = RedisServer::start()?;
    let sandbox = Upstream::sandbox().await?;
    let (url, seen) = receiver().await?;
    let service = Service::start_with_lanes(&sandbox, Some(&redis), Some(&url), lanes()).await?;
    let api = service.api(Duration::from_secs(30))?;
    println!(
        "Webhooks: one replica (one Server in a child process, request lines logged at info to /dev/null) on a \
         redis-server of its own, one endpoint (default RetrySchedule, {} lanes, {} s timeout) to a receiver in the \
         bench process answering 204 at once; PhonePe through the sandbox in the bench process; a start+check flow \
         over HTTP makes two events ({STARTED}, {APPROVED})",
        lanes(),
        otp_serve::DEFAULT_WEBHOOK_TIMEOUT.as_secs()
    );
    let flow = {
        let (api, sandbox) = (api.clone(), sandbox.clone());
        move || {
            let (api, sandbox) = (api.clone(), sandbox.clone());
            async move { http_flow(&api, &sandbox, fresh()).await.map(drop) }
        }
    };
    // Warm-up: connections, the group, the scripts; every event delivered before measuring.
    let warm = closed_loop(8, Duration::from_secs(1), flow.clone()).await?.latencies.len() as u64;
    until(DRAIN_LIMIT, || seen.deliveries() >= 2 * warm).await;

    // 1. Throughput.
    let before = seen.deliveries();
    let cpu_before = service.cpu();
    let run = closed_loop(64, run_for, flow).await?;
    let during = seen.deliveries() - before;
    let events = 2 * run.latencies.len() as u64;
    let drained = until(DRAIN_LIMIT, || seen.deliveries() >= before + events).await;
    let delivered = seen.deliveries() - before;
    let service_cpu = service.cpu() - cpu_before;
    let elapsed = run.elapsed.as_secs_f64();
    let backlog = events.saturating_sub(during);
    let drain_rate = if drained.is_zero() { f64::NAN } else { (delivered - during) as f64 / drained.as_secs_f64() };
    println!(
        "throughput: start+check at c=64 for {:.1} s: {} flows, {events} events ({:.0}/s made); delivered during the \
         run: {during} ({:.0}/s)",
        elapsed,
        run.latencies.len(),
        events as f64 / elapsed,
        during as f64 / elapsed,
    );
    println!(
        "throughput: backlog at the run's end {backlog}, delivered in {:.2} s after it ({drain_rate:.0}/s with no new \
         events); in all {delivered} of {events} delivered; service CPU {:.1} s over run and drain ({:.0} µs per event made)",
        drained.as_secs_f64(),
        service_cpu.as_secs_f64(),
        service_cpu.as_secs_f64() * 1e6 / events.max(1) as f64,
    );

    // 1b. A backlog alone: the replica stopped, events made by a service without the endpoint
    // (the group, made by the first replica, keeps its place in the stream), then a new
    // replica with the endpoint delivers them with nothing else running.
    service.stop().await;
    let maker = Service::start(&sandbox, Some(&redis), None).await?;
    let maker_api = maker.api(Duration::from_secs(30))?;
    let made = {
        let sandbox = sandbox.clone();
        let job = move || {
            let (api, sandbox) = (maker_api.clone(), sandbox.clone());
            async move { http_flow(&api, &sandbox, fresh()).await.map(drop) }
        };
        2 * closed_loop(64, run_for, job).await?.latencies.len() as u64
    };
    maker.stop().await;
    let before = seen.deliveries();
    let service = Service::start_with_lanes(&sandbox, Some(&redis), Some(&url), lanes()).await?;
    let api = service.api(Duration::from_secs(30))?;
    let cpu_before = service.cpu();
    let (first, last) = arrivals(&seen, before, made).await;
    let delivering_cpu = service.cpu() - cpu_before;
    let backlog_rate = (made.saturating_sub(1)) as f64 / last.saturating_duration_since(first).as_secs_f64();
    let delivered = seen.deliveries() - before;
    println!(
        "backlog: {made} events made while no replica delivered, then one replica started: {delivered} delivered, \
         {backlog_rate:.0}/s from the first arrival to the last; service CPU {:.0} µs per delivery",
        delivering_cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64
    );

    // 2. Delay at a steady rate.
    let job = {
        let (api, sandbox) = (api.clone(), sandbox.clone());
        move |_k: usize| {
            let (api, sandbox) = (api.clone(), sandbox.clone());
            async move { http_flow(&api, &sandbox, fresh()).await.map_err(|error| error.to_string()) }
        }
    };
    let steady = open_loop(STEADY_FLOWS, steady_for, job).await?;
    let failed = steady.results.iter().filter(|r| r.is_err()).count();
    let answers: Vec<(String, Instant, Instant)> = steady.results.into_iter().filter_map(Result::ok).collect();
    let wanted: Vec<(String, String)> = answers
        .iter()
        .flat_map(|(id, _, _)| [(id.clone(), STARTED.to_owned()), (id.clone(), APPROVED.to_owned())])
        .collect();
    until(Duration::from_secs(30), || {
        let first = seen.first();
        wanted.iter().all(|key| first.contains_key(key))
    })
    .await;
    let (delays, early, missing) = delays(&answers, &seen.first());
    let (p50, p99, max) = quantiles(delays.clone());
    println!(
        "delay: {STEADY_FLOWS:.0} start+check/s ({:.0} events/s) open loop for {} s: {} flows ({failed} failed), {} events \
         delivered; the API's answer → arrival at the receiver: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({early} arrived \
         before the answer, counted as 0; {missing} not delivered within 30 s; the bench issued each flow at most {:.1} ms late)",
        2.0 * STEADY_FLOWS,
        steady_for.as_secs(),
        answers.len() + failed,
        delays.len(),
        ms(p50),
        ms(p99),
        ms(max),
        ms(steady.max_lag),
    );
    println!(
        "receiver: {} deliveries in all, {} of an event already delivered, {} unreadable",
        seen.deliveries(),
        seen.duplicates.load(Ordering::Relaxed),
        seen.unreadable.load(Ordering::Relaxed)
    );
    println!(
        "webhook events delivered/s by one replica, made as fast as c=64 start+check makes them: {:.0}/s (made {:.0}/s; \
         what was left drained at {drain_rate:.0}/s; a backlog alone at {backlog_rate:.0}/s) (goal ≥ 2,000/s)",
        during as f64 / elapsed,
        events as f64 / elapsed,
    );
    println!("state change → delivery at 200 events/s: p50 {:.1} ms, p99 {:.1} ms (goal p99 ≤ 1 s)", ms(p50), ms(p99));
    service.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_delay_runs_from_the_answer_to_the_first_arrival_and_counts_the_early_and_the_missing() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let answers = vec![("a".to_owned(), at(100), at(200)), ("b".to_owned(), at(100), at(300))];
        let mut first = HashMap::new();
        first.insert(("a".to_owned(), STARTED.to_owned()), at(150));
        first.insert(("a".to_owned(), APPROVED.to_owned()), at(190)); // before the check's answer
        first.insert(("b".to_owned(), STARTED.to_owned()), at(400));
        let (mut delays, early, missing) = delays(&answers, &first);
        delays.sort();
        assert_eq!(delays, [Duration::ZERO, Duration::from_millis(50), Duration::from_millis(300)]);
        assert_eq!((early, missing), (1, 1));
    }
}
