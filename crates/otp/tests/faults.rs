//! Faults on the wire, for every gateway: a body that trickles slower than the deadline, a
//! connection closed mid-answer, a declared length that lies, an answer over the cap — each a
//! typed error, and none of them retried on the client's own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use otp::{ErrorKind, Gateway, GatewayClient, HttpOptions, Reached, SendOtpRequest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Headers promptly, then one byte of the body every 100 ms.
    Trickle,
    /// A chunked answer whose connection closes after the first chunk.
    ClosedMidAnswer,
    /// `content-length: 500`, 20 bytes, then close.
    LyingLength,
    /// `content-length` of 10 MiB (and the bytes keep coming).
    DeclaredOverCap,
    /// A chunked answer that streams past the cap without declaring a length.
    StreamedOverCap,
}

/// Reads one request (headers and a content-length body) so the client has finished writing.
async fn read_request(stream: &mut TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return;
            }
        }
    }
}

async fn faulty_server(fault: Fault) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                read_request(&mut stream).await;
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = serve(fault, &mut stream).await;
            });
        }
    });
    (format!("http://{addr}"), requests)
}

async fn serve(fault: Fault, stream: &mut TcpStream) -> std::io::Result<()> {
    const JSON: &str = "content-type: application/json\r\n";
    match fault {
        Fault::Trickle => {
            stream.write_all(format!("HTTP/1.1 200 OK\r\n{JSON}content-length: 1000\r\n\r\n").as_bytes()).await?;
            for _ in 0..1000 {
                stream.write_all(b" ").await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Fault::ClosedMidAnswer => {
            stream.write_all(format!("HTTP/1.1 200 OK\r\n{JSON}transfer-encoding: chunked\r\n\r\n").as_bytes()).await?;
            stream.write_all(b"a\r\n{\"success\"\r\n").await?;
        }
        Fault::LyingLength => {
            stream.write_all(format!("HTTP/1.1 200 OK\r\n{JSON}content-length: 500\r\n\r\n").as_bytes()).await?;
            stream.write_all(b"{\"success\": true, \"c").await?;
        }
        Fault::DeclaredOverCap => {
            let length = 10 * 1024 * 1024;
            stream.write_all(format!("HTTP/1.1 200 OK\r\n{JSON}content-length: {length}\r\n\r\n").as_bytes()).await?;
            let block = vec![b' '; 64 * 1024];
            for _ in 0..160 {
                stream.write_all(&block).await?;
            }
        }
        Fault::StreamedOverCap => {
            stream.write_all(format!("HTTP/1.1 200 OK\r\n{JSON}transfer-encoding: chunked\r\n\r\n").as_bytes()).await?;
            let block = vec![b' '; 16 * 1024];
            for _ in 0..640 {
                stream.write_all(format!("{:x}\r\n", block.len()).as_bytes()).await?;
                stream.write_all(&block).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
    }
    stream.shutdown().await
}

/// A client and a request of each gateway.
fn pairs(base: &str, timeout: Duration) -> Vec<(GatewayClient, SendOtpRequest)> {
    let http = HttpOptions::default().timeout(timeout);
    Gateway::ALL
        .into_iter()
        .map(|gateway| (common::client_at(gateway, base, http.clone()), common::sample_request(gateway, "9876543210")))
        .collect()
}

async fn each_gateway(fault: Fault, timeout: Duration, expected: ErrorKind, reached: Reached) {
    let (base, requests) = faulty_server(fault).await;
    let pairs = pairs(&base, timeout);
    for (client, request) in &pairs {
        let started = Instant::now();
        let error = client.send_otp(request).await.unwrap_err();
        assert_eq!(error.kind(), expected, "{fault:?} via {}: {error}", client.gateway());
        assert_eq!(error.reached_provider(), reached, "{fault:?} via {}", client.gateway());
        assert!(!error.is_retryable(), "{fault:?}: the request was written, so never retryable");
        assert!(started.elapsed() < timeout + Duration::from_secs(1), "{fault:?}: {:?}", started.elapsed());
    }
    // One request per send: nothing was re-sent behind the caller's back.
    assert_eq!(requests.load(Ordering::SeqCst), pairs.len(), "{fault:?}");
}

#[tokio::test]
async fn a_trickling_body_times_out_at_the_deadline() {
    each_gateway(Fault::Trickle, Duration::from_millis(700), ErrorKind::Timeout, Reached::Maybe).await;
}

#[tokio::test]
async fn a_connection_closed_mid_answer_is_transport() {
    each_gateway(Fault::ClosedMidAnswer, Duration::from_secs(5), ErrorKind::Transport, Reached::Maybe).await;
}

#[tokio::test]
async fn a_declared_length_that_lies_is_transport() {
    each_gateway(Fault::LyingLength, Duration::from_secs(5), ErrorKind::Transport, Reached::Maybe).await;
}

#[tokio::test]
async fn a_declared_answer_over_the_cap_is_unexpected() {
    each_gateway(Fault::DeclaredOverCap, Duration::from_secs(5), ErrorKind::UnexpectedResponse, Reached::Yes).await;
}

#[tokio::test]
async fn a_streamed_answer_over_the_cap_is_unexpected() {
    each_gateway(Fault::StreamedOverCap, Duration::from_secs(5), ErrorKind::UnexpectedResponse, Reached::Yes).await;
}
