//! The service's bounds: a client that trickles its headers is closed after the header read
//! timeout; past the connection cap a connection is closed at once while a health check still
//! gets through; a body at the size limit is read and one past it refused; a shutdown lets a
//! request in flight finish (its session stored) and then accepts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::time::{Duration, Instant};

use common::{number, start_body, Harness, Mode, Payload, Store};
use otp::Gateway;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Reads until the server closes the connection, or `limit` passes (`None`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_client_is_closed_after_the_header_read_timeout() {
    let harness =
        Harness::start_with(Store::Memory, |config| config.header_read_timeout(Duration::from_millis(800))).await;
    let mut stream = TcpStream::connect(harness.server.addr()).await.unwrap();
    stream.write_all(b"POST /v1/verifications HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let closed = closed_within(&mut stream, Duration::from_secs(5)).await.expect("closed");
    assert!(closed >= Duration::from_millis(700), "{closed:?}");
    // A client that sends its request in time is served.
    let live = harness.api.call("GET", "/livez", None, Payload::None, &[]).await;
    assert_eq!(live.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_refused_after_the_same_timeout() {
    let harness =
        Harness::start_with(Store::Memory, |config| config.header_read_timeout(Duration::from_millis(800))).await;
    let mut stream = TcpStream::connect(harness.server.addr()).await.unwrap();
    let head = format!(
        "POST /v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"gat",
        harness.keys.writer
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(started.elapsed() >= Duration::from_millis(700), "{:?}", started.elapsed());
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("malformed_request"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_connection_is_closed_and_a_health_check_still_gets_through() {
    let harness = Harness::start_with(Store::Memory, |config| {
        config.max_connections(2).header_read_timeout(Duration::from_secs(10))
    })
    .await;
    let addr = harness.server.addr();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut refused, Duration::from_millis(800)).await.is_some(), "closed as it arrived");
    // The overflow's idle connections are closed within a second; the capped ones stay open.
    let mut overflow = idle.split_off(2);
    for stream in &mut overflow {
        assert!(closed_within(stream, Duration::from_secs(3)).await.is_some(), "overflow closed fast");
    }
    for stream in &mut idle {
        assert!(closed_within(stream, Duration::from_millis(300)).await.is_none(), "within the cap, kept");
    }
    let live = harness.api.call("GET", "/livez", None, Payload::None, &[]).await;
    assert_eq!(live.status, 200, "a health check gets through with the cap full");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_at_the_limit_is_read_and_one_past_it_refused() {
    let harness = Harness::start(Store::Memory).await;
    let body = |size: usize| {
        let mut body = start_body(Gateway::ALL[0], &number());
        body["customer_name"] = json!("");
        let padding = size - body.to_string().len();
        body["customer_name"] = json!("x".repeat(padding));
        assert_eq!(body.to_string().len(), size);
        body
    };
    let at = harness.api.start(&harness.keys.writer, body(otp_serve::MAX_BODY_BYTES), &[]).await;
    assert_eq!(at.status, 201, "{}", at.text);
    let past = harness.api.start(&harness.keys.writer, body(otp_serve::MAX_BODY_BYTES + 1), &[]).await;
    assert_eq!((past.status, past.code()), (400, Some("malformed_request")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_lets_a_send_in_flight_finish_and_store_its_session() {
    let Harness { sandbox, proxy, server, keys, api } = Harness::start(Store::Memory).await;
    proxy.set(Mode::Delay(Duration::from_millis(800)));
    let to = number();
    let in_flight = tokio::spawn({
        let (api, key, to) = (api.clone(), keys.writer.clone(), to.clone());
        async move { api.start(&key, start_body(Gateway::ALL[0], &to), &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.addr();
    server.shutdown(Duration::from_secs(10)).await;
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(sandbox.otps(&to).len(), 1);
    assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after a shutdown");
}
