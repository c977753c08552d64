//! The one HTTP path against local servers: every failure mode ends as a typed error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::TestGateway;
use otp_core::http::{HttpOptions, RawResponse, Transport, WireRequest};
use otp_core::{
    BaseUrl, CodeEntry, CodeResult, CodeTable, Error, ErrorKind, Gateway, MobileNumber, Outcome, ProviderAnswer,
    Reached, ReferenceRule, RetryPolicy, SendReceipt,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{body_bytes, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

static ENTRIES: &[CodeEntry] = &[
    CodeEntry { code: "OK", result: CodeResult::Outcome(Outcome::Sent), retryable: false, message: "" },
    CodeEntry { code: "SLOW_DOWN", result: CodeResult::Error(ErrorKind::RateLimited), retryable: true, message: "" },
];
static TABLE: CodeTable = CodeTable::new(Gateway::Paytm, ENTRIES);

#[derive(serde::Deserialize)]
struct Answer {
    code: Option<String>,
    reference: Option<String>,
}

fn decode(response: &RawResponse) -> Result<SendReceipt, Error> {
    let decoded = response.json::<Answer>().map(|a| ProviderAnswer::new(a.code, None, a.reference.map(Into::into)));
    TABLE.resolve(response, decoded, ReferenceRule::Required)
}

fn mobile() -> MobileNumber {
    MobileNumber::parse("9876543210").unwrap()
}

fn transport(base: &str, options: HttpOptions) -> TestGateway {
    TestGateway::new(base, options)
}

fn request() -> WireRequest {
    WireRequest::post_json("/api/send", br#"{"phone":"9876543210"}"#.to_vec())
        .secret_header("authorization", "Basic c2VjcmV0")
        .unwrap()
}

/// A server that answers every connection with `response` after `delay`, then closes.
async fn raw_server(response: Vec<u8>, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn sends_the_exact_request_and_reads_a_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prefix/api/send"))
        .and(header("content-type", "application/json"))
        .and(header("authorization", "Basic c2VjcmV0"))
        .and(body_bytes(br#"{"phone":"9876543210"}"#.to_vec()))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"code":"OK","reference":"r-1"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = transport(&format!("{}/prefix/", server.uri()), HttpOptions::default())
        .send(request(), &mobile(), decode)
        .await
        .unwrap();
    assert_eq!(receipt.outcome, Outcome::Sent);
    assert_eq!(receipt.reference.unwrap().expose_secret(), "r-1");
}

/// `Duration::MAX` is how a caller says "no limit"; deadline arithmetic must saturate, not panic.
#[tokio::test]
async fn unbounded_durations_are_accepted_and_sends_still_work() {
    let server = MockServer::start().await;
    Mock::given(path("/api/send"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "0").set_body_string(r#"{"code":"SLOW_DOWN"}"#),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/send"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"code":"OK","reference":"r-max"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let policy = RetryPolicy::safe(2)
        .backoff(Duration::MAX, Duration::MAX)
        .max_retry_after(Duration::MAX)
        .overall_deadline(Duration::MAX);
    let options = HttpOptions::default().timeout(Duration::MAX).retry(policy);
    let receipt = transport(&server.uri(), options).send(request(), &mobile(), decode).await.unwrap();
    assert_eq!(receipt.reference.unwrap().expose_secret(), "r-max");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/api/send"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/elsewhere", server.uri())))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let error = transport(&server.uri(), HttpOptions::default()).send(request(), &mobile(), decode).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
    assert_eq!(error.http_status(), Some(302));
    assert_eq!(error.gateway(), Some(Gateway::Paytm));
}

#[tokio::test]
async fn an_injected_client_that_follows_redirects_is_caught() {
    let server = MockServer::start().await;
    Mock::given(path("/api/send"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/elsewhere", server.uri())))
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"code":"OK","reference":"r"}"#))
        .mount(&server)
        .await;
    // reqwest only re-POSTs on 307/308; a 302 becomes a GET, which the mock above also answers.
    let client = otp_core::reqwest::Client::new();
    let error = transport(&server.uri(), HttpOptions::default().client(client))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse, "{error}");
}

#[test]
fn a_remote_http_base_is_refused_before_any_connection() {
    let error = BaseUrl::parse("http://203.0.113.7:9/", false).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(error.is_configuration());
    assert_eq!(error.reached_provider(), Reached::No);
}

#[tokio::test]
async fn connection_refused_is_transport_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = transport(&format!("http://{addr}"), HttpOptions::default())
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);
    assert!(error.is_retryable());
    assert_eq!(error.reached_provider(), Reached::No);
    assert_eq!(error.http_status(), None);
}

#[tokio::test]
async fn a_server_slower_than_the_deadline_times_out_in_time() {
    let base = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec(), Duration::from_secs(10)).await;
    let deadline = Duration::from_millis(500);
    let started = Instant::now();
    let error = transport(&base, HttpOptions::default().timeout(deadline))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(!error.is_retryable());
    assert_eq!(error.reached_provider(), Reached::Maybe);
    assert!(elapsed >= deadline && elapsed < deadline + Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn a_body_that_trickles_past_the_deadline_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n").await;
        for _ in 0..100 {
            if socket.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let error = transport(&format!("http://{addr}"), HttpOptions::default().timeout(Duration::from_millis(700)))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(error.http_status(), Some(200), "the status line arrived before the body stalled");
}

#[tokio::test]
async fn a_connection_closed_mid_answer_is_transport_not_retryable() {
    let base = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{\"code\":".to_vec(), Duration::ZERO).await;
    let error = transport(&base, HttpOptions::default()).send(request(), &mobile(), decode).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport, "{error}");
    assert!(!error.is_retryable(), "the request was written: an OTP may have gone out");
    assert_eq!(error.reached_provider(), Reached::Maybe);
    assert_eq!(error.http_status(), Some(200), "the status line did arrive");
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_unread() {
    let base = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 70000\r\n\r\n{}".to_vec(), Duration::ZERO).await;
    let error = transport(&base, HttpOptions::default()).send(request(), &mobile(), decode).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
    assert!(error.to_string().contains("declared 70000 bytes"), "{error}");
}

#[tokio::test]
async fn a_streamed_body_over_a_custom_cap_is_refused() {
    let mut response = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    response.extend(std::iter::repeat_n(b'x', 2048));
    let base = raw_server(response, Duration::ZERO).await;
    let error = transport(&base, HttpOptions::default().max_response_bytes(1024))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
    assert!(error.to_string().contains("streamed"), "{error}");
}

#[tokio::test]
async fn a_non_json_5xx_falls_back_to_provider_unavailable() {
    let server = MockServer::start().await;
    Mock::given(path("/api/send"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html><body>Bad Gateway</body></html>"))
        .mount(&server)
        .await;
    let error = transport(&server.uri(), HttpOptions::default()).send(request(), &mobile(), decode).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ProviderUnavailable);
    assert_eq!(error.http_status(), Some(502));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn retry_never_resends_after_a_5xx_or_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/api/send")).respond_with(ResponseTemplate::new(500)).expect(1).mount(&server).await;
    let options =
        HttpOptions::default().retry(RetryPolicy::safe(5).backoff(Duration::from_millis(1), Duration::from_millis(2)));
    let error = transport(&server.uri(), options.clone()).send(request(), &mobile(), decode).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ProviderUnavailable);
    server.verify().await;

    let slow = MockServer::start().await;
    Mock::given(path("/api/send"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&slow)
        .await;
    let error = transport(&slow.uri(), options.timeout(Duration::from_millis(200)))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn retry_resends_a_throttle_and_honours_retry_after() {
    let server = MockServer::start().await;
    // Both attempts carry the whole request: the first lends it, the last (2 of 2) takes it.
    Mock::given(path("/api/send"))
        .and(header("authorization", "Basic c2VjcmV0"))
        .and(body_bytes(br#"{"phone":"9876543210"}"#.to_vec()))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_string(r#"{"code":"SLOW_DOWN"}"#),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/send"))
        .and(header("authorization", "Basic c2VjcmV0"))
        .and(body_bytes(br#"{"phone":"9876543210"}"#.to_vec()))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"code":"OK","reference":"r-2"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let receipt = transport(&server.uri(), HttpOptions::default().retry(RetryPolicy::safe(2)))
        .send(request(), &mobile(), decode)
        .await
        .unwrap();
    assert_eq!(receipt.reference.unwrap().expose_secret(), "r-2");
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as Retry-After asked");
}

#[tokio::test]
async fn retry_reconnects_after_refused_connections_up_to_the_limit() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let policy = RetryPolicy::safe(4).backoff(Duration::from_millis(10), Duration::from_millis(20));
    let error = transport(&format!("http://{addr}"), HttpOptions::default().retry(policy))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);

    // Now open the port after the first refusal: a later attempt gets through.
    let base = format!("http://{addr}");
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let body = r#"{"code":"OK","reference":"late"}"#;
        let response = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        socket.write_all(response.as_bytes()).await.unwrap();
    });
    let policy = RetryPolicy::safe(20).backoff(Duration::from_millis(50), Duration::from_millis(100));
    let receipt =
        transport(&base, HttpOptions::default().retry(policy)).send(request(), &mobile(), decode).await.unwrap();
    assert_eq!(receipt.reference.unwrap().expose_secret(), "late");
    opener.await.unwrap();
}

#[tokio::test]
async fn the_overall_deadline_bounds_every_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let policy = RetryPolicy::safe(1000)
        .backoff(Duration::from_millis(100), Duration::from_millis(100))
        .overall_deadline(Duration::from_millis(600));
    let started = Instant::now();
    let error = transport(&format!("http://{addr}"), HttpOptions::default().retry(policy))
        .send(request(), &mobile(), decode)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport);
    assert!(started.elapsed() < Duration::from_millis(600) + Duration::from_secs(1));
}

#[test]
fn a_request_its_checks_refuse_is_never_sent_and_is_counted_as_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        server
    });
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let gateway = transport(&server.uri(), HttpOptions::default());
    let number = mobile();
    let refused = gateway.send_refused(request(), &number, decode, "device id must be at most 64 characters");
    let error = metrics::with_local_recorder(&recorder, || runtime.block_on(refused)).unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
    assert_eq!(error.gateway(), Some(Gateway::Paytm), "tagged with the gateway");
    assert!(error.to_string().contains("device id"), "{error}");
    assert!(runtime.block_on(server.received_requests()).unwrap().is_empty(), "nothing reached the server");
    let counted: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "otp.sends")
        .map(|(key, ..)| key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(counted, ["gateway=paytm,result=invalid_request"], "one refused-before-built send");
    // The same request with nothing to refuse goes out.
    let sent = runtime.block_on(gateway.send(request(), &mobile(), decode));
    assert!(sent.is_err(), "the mock's empty answer is not a receipt");
    assert_eq!(runtime.block_on(server.received_requests()).unwrap().len(), 1);
}

#[test]
fn debug_of_a_request_hides_secret_headers_and_the_body() {
    let debug = format!("{:?}", request());
    assert!(!debug.contains("c2VjcmV0"), "{debug}");
    assert!(!debug.contains("9876543210"), "{debug}");
    assert!(debug.contains("Sensitive"), "{debug}");
}

#[test]
fn a_header_value_http_cannot_carry_is_invalid_input() {
    let error = WireRequest::post_json("/x", b"{}".to_vec()).header("x-device-id", "bad\nvalue").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(!error.to_string().contains("bad"), "{error}");
}

// ------------------------------------------------------------------ overload and TLS

#[tokio::test]
async fn under_overload_a_send_without_a_timely_turn_is_refused_unsent_and_never_reaches_the_server() {
    let server = MockServer::start().await;
    // The one send in flight takes far longer than the others are willing to wait.
    Mock::given(method("POST"))
        .and(path("/send"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"code":"OK","reference":"r"}"#)
                .set_delay(Duration::from_secs(20)),
        )
        .mount(&server)
        .await;
    let options = HttpOptions::default().max_concurrent_requests(1).max_queue_wait(Duration::from_millis(100));
    let transport = Arc::new(transport(&server.uri(), options));
    let first = {
        let transport = transport.clone();
        tokio::spawn(
            async move { transport.send(WireRequest::post_json("/send", b"{}".to_vec()), &mobile(), decode).await },
        )
    };
    // Wait until the first send has reached the server (and so holds the only turn).
    while server.received_requests().await.unwrap_or_default().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut refused = Vec::new();
    for _ in 0..5 {
        let transport = transport.clone();
        refused.push(tokio::spawn(async move {
            transport.send(WireRequest::post_json("/send", b"{\"late\":true}".to_vec()), &mobile(), decode).await
        }));
    }
    for send in refused {
        let error = send.await.unwrap().unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Timeout, Reached::No), "{error}");
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.gateway(), Some(Gateway::Paytm));
    }
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "only the send that had its turn reached the server");
    assert_eq!(received[0].body, b"{}");
    first.abort();
}

/// Private roots: only with a TLS backend (xtask builds otp-core without one).
#[cfg(any(feature = "rustls", feature = "native-tls"))]
mod private_roots {
    use super::*;
    use otp_core::http::RootCertificate;

    #[test]
    fn a_root_certificate_must_be_a_certificate() {
        let error = RootCertificate::from_pem(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(error.is_configuration(), "{error}");
        assert!(RootCertificate::from_pem(b"no certificate here").unwrap_err().is_configuration());
        // DER is parsed when the client is built: refused there, before anything is sent.
        let options =
            HttpOptions::default().add_root_certificate(RootCertificate::from_der(b"\x30\x03\x02\x01\x00").unwrap());
        let base = BaseUrl::parse("https://localhost:1", false).unwrap();
        assert!(Transport::new(Gateway::Paytm, base, &options).unwrap_err().is_configuration());
    }

    #[test]
    fn root_certificates_and_an_injected_client_are_refused_together() {
        let ca = LocalCa::new();
        let options = HttpOptions::default()
            .client(otp_core::reqwest::Client::new())
            .add_root_certificate(RootCertificate::from_pem(ca.pem.as_bytes()).unwrap());
        let base = BaseUrl::parse("https://localhost:1", false).unwrap();
        let error = Transport::new(Gateway::Paytm, base, &options).unwrap_err();
        assert!(error.is_configuration(), "{error}");
        assert!(error.to_string().contains("injected"), "{error}");
    }

    #[tokio::test]
    async fn a_private_root_is_trusted_only_when_added() {
        let ca = LocalCa::new();
        let base = ca.serve_one_answer(2).await;

        // Without the root: the handshake fails before the request is written.
        let untrusting = transport(&base, HttpOptions::default());
        let error =
            untrusting.send(WireRequest::post_json("/send", b"{}".to_vec()), &mobile(), decode).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::Transport, Reached::No), "{error:?}");

        // With it: the send goes through over TLS.
        let options =
            HttpOptions::default().add_root_certificate(RootCertificate::from_pem(ca.pem.as_bytes()).unwrap());
        let trusting = transport(&base, options);
        let receipt = trusting.send(WireRequest::post_json("/send", b"{}".to_vec()), &mobile(), decode).await.unwrap();
        assert_eq!(receipt.outcome, Outcome::Sent);
    }

    /// A certificate authority made for this test, and a leaf for `localhost` it signed.
    struct LocalCa {
        pem: String,
        leaf_der: Vec<u8>,
        leaf_key_der: Vec<u8>,
    }

    impl LocalCa {
        fn new() -> Self {
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::new(ca_params, ca_key);
            let leaf_key = rcgen::KeyPair::generate().unwrap();
            let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .signed_by(&leaf_key, &issuer)
                .unwrap();
            Self { pem: ca.pem(), leaf_der: leaf.der().to_vec(), leaf_key_der: leaf_key.serialize_der() }
        }

        /// An https server on localhost that answers up to `connections` connections with a
        /// success.
        async fn serve_one_answer(&self, connections: usize) -> String {
            use tokio_rustls::rustls;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![self.leaf_der.clone().into()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(self.leaf_key_der.clone().into()),
                )
                .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                for _ in 0..connections {
                    let Ok((socket, _)) = listener.accept().await else { return };
                    let Ok(mut tls) = acceptor.accept(socket).await else { continue };
                    let mut request = vec![0u8; 4096];
                    let _ = tls.read(&mut request).await;
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 29\r\nconnection: close\r\n\r\n{\"code\":\"OK\",\"reference\":\"r\"}";
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
            format!("https://localhost:{port}")
        }
    }
}

// ------------------------------------------------------------------ the answer cap, exactly

/// A success answer padded with JSON whitespace to exactly `size` bytes.
fn success_of_size(size: usize) -> Vec<u8> {
    let mut body = br#"{"code":"OK","reference":"r-cap"}"#.to_vec();
    body.resize(size, b' ');
    body
}

/// A server that writes the head, then the body in `pieces` separate writes (so the client
/// reads it in several chunks), then closes.
async fn piecewise_server(head: String, body: Vec<u8>, pieces: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let _ = socket.write_all(head.as_bytes()).await;
        for piece in body.chunks(body.len().div_ceil(pieces.max(1)).max(1)) {
            let _ = socket.write_all(piece).await;
            let _ = socket.flush().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_default_cap_is_64_kib_exactly_declared_or_streamed_in_pieces() {
    const CAP: usize = 64 * 1024;
    assert_eq!(HttpOptions::DEFAULT_MAX_RESPONSE_BYTES, CAP);
    for (size, accepted) in [(CAP, true), (CAP + 1, false)] {
        // Declared with content-length.
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n");
        let base = piecewise_server(head, success_of_size(size), 1).await;
        let result = transport(&base, HttpOptions::default()).send(request(), &mobile(), decode).await;
        assert_eq!(result.is_ok(), accepted, "declared {size}: {:?}", result.err());
        // Streamed without a length, in three pieces whose sum is what counts.
        let head = "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_owned();
        let base = piecewise_server(head, success_of_size(size), 3).await;
        let result = transport(&base, HttpOptions::default()).send(request(), &mobile(), decode).await;
        match result {
            Ok(receipt) => assert!(accepted, "streamed {size} must be refused, got {receipt:?}"),
            Err(error) => {
                assert!(!accepted, "streamed {size} must be read whole: {error}");
                assert_eq!(error.kind(), ErrorKind::UnexpectedResponse, "{error}");
                assert!(error.to_string().contains("streamed"), "{error}");
            }
        }
    }
}

#[tokio::test]
async fn a_documented_non_retryable_code_on_a_429_is_not_retried() {
    // OTP_LIMIT_EXCEEDED is the per-number limit: documented, not retryable, whatever the status.
    static LIMIT_ENTRIES: &[CodeEntry] = &[CodeEntry {
        code: "OTP_LIMIT_EXCEEDED",
        result: CodeResult::Error(ErrorKind::RateLimited),
        retryable: false,
        message: "",
    }];
    static LIMIT_TABLE: CodeTable = CodeTable::new(Gateway::PhonePe, LIMIT_ENTRIES);
    fn limit_decode(response: &RawResponse) -> Result<SendReceipt, Error> {
        let decoded = response.json::<Answer>().map(|a| ProviderAnswer::new(a.code, None, None));
        LIMIT_TABLE.resolve(response, decoded, ReferenceRule::Required)
    }
    let server = MockServer::start().await;
    Mock::given(path("/api/send"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_string(r#"{"code":"OTP_LIMIT_EXCEEDED"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let options = HttpOptions::default().retry(RetryPolicy::safe(3));
    let error = transport(&server.uri(), options).send(request(), &mobile(), limit_decode).await.unwrap_err();
    assert_eq!((error.kind(), error.is_retryable()), (ErrorKind::RateLimited, false));
}

#[tokio::test]
async fn each_send_through_one_client_goes_to_its_own_query() {
    let server = MockServer::start().await;
    for locale in ["en-IN", "hi-IN"] {
        Mock::given(path("/api/send"))
            .and(wiremock::matchers::query_param("locale", locale))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(format!(r#"{{"code":"OK","reference":"{locale}"}}"#)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = transport(&server.uri(), HttpOptions::default());
    for locale in ["en-IN", "hi-IN"] {
        let receipt = client.send(request().query("locale", locale), &mobile(), decode).await.unwrap();
        assert_eq!(receipt.reference.unwrap().expose_secret(), locale);
    }
}

#[test]
fn wire_requests_expose_what_they_will_send() {
    let wire = request().header("x-device", "d-1").unwrap();
    assert_eq!(wire.api_path(), "/api/send");
    assert_eq!(wire.body(), br#"{"phone":"9876543210"}"#);
    assert_eq!(wire.headers().get("x-device").unwrap(), "d-1");
    assert!(wire.headers().get("authorization").unwrap().is_sensitive());
    assert!(!HttpOptions::default().insecure_http_allowed());
    assert!(HttpOptions::default().allow_insecure_http(true).insecure_http_allowed());
}
