//! The retry policy under paused tokio time: backoffs pass instantly and deterministically,
//! and attempts are counted exactly (each attempt on a refused connection resolves the host
//! once, through a counting resolver).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::TestGateway;
use otp_core::http::{HttpOptions, RawResponse, WireRequest};
use otp_core::reqwest::dns::{Addrs, Name, Resolve, Resolving};
use otp_core::{Error, ErrorKind, Gateway, MobileNumber, Reached, RetryPolicy, SendReceipt};
use tokio::time::Instant;

/// Resolves every name to one address, counting the lookups.
struct CountingResolver {
    addr: SocketAddr,
    lookups: Arc<AtomicUsize>,
}

impl Resolve for CountingResolver {
    fn resolve(&self, _name: Name) -> Resolving {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let addrs: Addrs = Box::new(std::iter::once(self.addr));
        Box::pin(async move { Ok(addrs) })
    }
}

/// A transport to a closed port whose every connection attempt is counted.
fn refused_transport(policy: RetryPolicy) -> (TestGateway, Arc<AtomicUsize>) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let lookups = Arc::new(AtomicUsize::new(0));
    let client = otp_core::reqwest::Client::builder()
        .redirect(otp_core::reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(CountingResolver { addr, lookups: lookups.clone() }))
        .build()
        .unwrap();
    let options = HttpOptions::default().client(client).retry(policy);
    (TestGateway::with_gateway(Gateway::PhonePe, &format!("http://localhost:{}", addr.port()), options), lookups)
}

fn never_decoded(_: &RawResponse) -> Result<SendReceipt, Error> {
    unreachable!("no answer can come from a closed port")
}

async fn send(transport: &TestGateway) -> Error {
    let mobile = MobileNumber::parse("9876543210").unwrap();
    transport.send(WireRequest::post_json("/send", b"{}".to_vec()), &mobile, never_decoded).await.unwrap_err()
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_exactly_up_to_the_limit() {
    for limit in [1, 2, 5] {
        let policy = RetryPolicy::safe(limit).backoff(Duration::from_millis(200), Duration::from_secs(2));
        let (transport, attempts) = refused_transport(policy);
        let error = send(&transport).await;
        assert_eq!(error.kind(), ErrorKind::Transport);
        assert_eq!(error.reached_provider(), Reached::No);
        assert!(error.is_retryable());
        assert_eq!(attempts.load(Ordering::SeqCst), limit as usize, "limit {limit}");
    }
}

#[tokio::test(start_paused = true)]
async fn no_retry_by_default() {
    let (transport, attempts) = refused_transport(RetryPolicy::none());
    send(&transport).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn one_overall_deadline_covers_every_attempt_and_backoff() {
    let policy = RetryPolicy::safe(1_000)
        .backoff(Duration::from_millis(100), Duration::from_millis(100))
        .overall_deadline(Duration::from_millis(1_000));
    let (transport, attempts) = refused_transport(policy);
    let started = Instant::now();
    let error = send(&transport).await;
    assert_eq!(error.kind(), ErrorKind::Transport);
    // Virtual time: exact, whatever the machine's load.
    assert!(started.elapsed() <= Duration::from_millis(1_000), "{:?}", started.elapsed());
    let attempts = attempts.load(Ordering::SeqCst);
    // Jittered backoffs of at most 100 ms within 1 s: more than one attempt, far fewer than 1,000.
    assert!((2..1_000).contains(&attempts), "{attempts} attempts");
}
