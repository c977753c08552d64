//! HTTPS from PEM files: a client that trusts the certificate's authority runs a verification
//! over it; one that does not, or that speaks plain HTTP, gets nothing; a client that never
//! finishes its handshake is closed like a slow header; a key that is not the certificate's,
//! a file that is not PEM, or half a pair is refused before anything listens, naming the key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::io::Read as _;
use std::time::Duration;

use common::{number, start_body};
use otp::Gateway;
use otp_serve::{ServeConfig, Server, TlsIdentity};
use serde_json::{json, Value};

/// A certificate authority (its PEM) and a certificate it signed for localhost and 127.0.0.1
/// (chain PEM, key PEM).
fn authority_and_identity() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let leaf = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
    (ca_pem, leaf.pem(), key.serialize_pem())
}

fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_runs_over_https_and_nothing_answers_without_the_handshake() {
    let (ca, chain, key) = authority_and_identity();
    let identity = TlsIdentity::from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
    assert!(!format!("{identity:?}").contains("PRIVATE"), "Debug shows no key");
    let config = ServeConfig::sandbox()
        .unwrap()
        .listen("127.0.0.1:0".parse().unwrap())
        .header_read_timeout(Duration::from_millis(500))
        .tls(identity);
    let server = Server::start(config).await.unwrap();
    let base = server.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    assert!(server.banner()[0].starts_with("listening: https://"), "{:?}", server.banner());
    let dev_key = server.dev_api_key().unwrap().expose_secret().to_owned();

    let client = trusting(&ca);
    let to = number();
    let started = client
        .post(format!("{base}/v1/verifications"))
        .bearer_auth(&dev_key)
        .header("content-type", "application/json")
        .body(start_body(Gateway::PhonePe, &to).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    let started: Value = serde_json::from_str(&started.text().await.unwrap()).unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let code = server.sandbox().unwrap().otps(&to)[0].otp.clone();
    let checked = client
        .post(format!("{base}/v1/verifications/{id}/check"))
        .bearer_auth(&dev_key)
        .header("content-type", "application/json")
        .body(json!({ "code": code }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let checked: Value = serde_json::from_str(&checked.text().await.unwrap()).unwrap();
    assert_eq!(checked["status"], "approved");

    // A client that does not trust the authority refuses the certificate: nothing is sent.
    let stranger = reqwest::Client::new().get(format!("{base}/livez")).send().await.unwrap_err();
    assert!(stranger.is_connect(), "{stranger:?}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new().get(format!("http://{}/livez", server.addr())).send().await;
    assert!(plain.is_err(), "{plain:?}");
    // A connection that never starts its handshake is closed within the header read timeout.
    let silent = server.addr();
    let closed = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(silent).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut byte = [0u8; 1];
        socket.read(&mut byte)
    })
    .await
    .unwrap();
    assert!(matches!(closed, Ok(0)), "closed by the server, not by the test's 5 s: {closed:?}");
    assert_eq!(client.get(format!("{base}/livez")).send().await.unwrap().status(), 200, "still serving");
    server.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn a_key_that_is_not_the_certificates_a_file_that_is_not_pem_or_half_a_pair_is_refused() {
    let (_, chain, key) = authority_and_identity();
    let (_, _, other_key) = authority_and_identity();
    let refused = |chain: &str, key: &str| TlsIdentity::from_pem(chain.as_bytes(), key.as_bytes()).unwrap_err();
    assert_eq!(refused(&chain, &other_key).key(), "tls_key");
    assert_eq!(refused("not a certificate", &key).key(), "tls_cert");
    assert_eq!(refused(&chain, &chain).key(), "tls_key", "a certificate where the key should be");
    let error = refused(&chain, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert!(!error.message().contains("AAAA"), "{}", error.message());

    // From the file: paths relative to the config's directory; half a pair is an error.
    let dir = std::env::temp_dir().join(format!("otp-serve-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &chain).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    let file = |extra: &str| {
        let path = dir.join("otp-serve.toml");
        std::fs::write(&path, format!("listen = \"0.0.0.0:0\"\n{extra}\n")).unwrap();
        ServeConfig::from_file(&path)
    };
    assert_eq!(file("tls_cert = \"cert.pem\"").unwrap_err().key(), "tls_key");
    assert_eq!(file("tls_key = \"key.pem\"").unwrap_err().key(), "tls_cert");
    assert_eq!(file("tls_cert = \"missing.pem\"\ntls_key = \"key.pem\"").unwrap_err().key(), "tls_cert");
    // The pair is read and fits, and a public address with TLS passes: the next check speaks.
    assert_eq!(file("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"").unwrap_err().key(), "gateways");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A public address needs TLS or an explicit proxy in front; with TLS it starts.
#[tokio::test]
async fn a_public_address_listens_with_tls_and_is_refused_without() {
    let (_, chain, key) = authority_and_identity();
    let keys = common::Keys::new();
    let public =
        || common::config("http://127.0.0.1:9", &keys, &common::Store::Memory).listen("0.0.0.0:0".parse().unwrap());
    let refused = Server::start(public()).await.unwrap_err().to_string();
    assert!(refused.contains("listen") && refused.contains("TLS"), "{refused}");
    let identity = TlsIdentity::from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
    let server = Server::start(public().tls(identity)).await.unwrap();
    assert!(server.base_url().starts_with("https://"));
    server.shutdown(Duration::from_secs(1)).await;
}
