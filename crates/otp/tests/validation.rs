//! Every gateway's requests are checked one way before anything touches the network: by
//! `validate()` (the umbrella's, over each gateway request's `Request::validate`), by a send or
//! a verify, by a verification's start, and when a stored request is read back. The fixtures
//! are per gateway in tests/common/mod.rs: a gateway without them fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;
use common::{invalid_requests, over_long_field, sample_request, Invalid};

use otp::verifier::{Context, MemoryStore, SessionGateway, Verification, Verifier};
use otp::{
    ClientOptions, Environment, Error, ErrorKind, Gateway, GatewayClient, IdentityNumber, Reached, SendOtpRequest,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn assert_refused(error: &Error, gateway: Gateway, what: &str) {
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{what}: {error}");
    assert_eq!(error.gateway(), Some(gateway), "{what}: {error}");
}

/// A loopback port that counts the connections made to it: it must never see one. (No HTTP
/// can reach a gateway without a connection, so zero connections is zero requests.)
struct Listener {
    uri: String,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { uri, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn server() -> Listener {
    Listener::start().await
}

fn client(server: &Listener, gateway: Gateway) -> GatewayClient {
    otp::sandbox::client(gateway, ClientOptions::new().environment(Environment::Custom(server.uri.clone()))).unwrap()
}

fn context() -> Context {
    Context::new("203.0.113.7".parse().unwrap())
}

#[tokio::test]
async fn every_gateway_refuses_an_invalid_request_by_validate_and_before_the_network() {
    let server = server().await;
    for gateway in Gateway::ALL {
        let client = client(&server, gateway);
        let verifier = Verifier::new(client.clone(), MemoryStore::new());
        let invalid = invalid_requests(gateway);
        assert!(!invalid.is_empty(), "{gateway}: no invalid request to try");
        for request in invalid {
            let what = format!("{gateway} {request:?}");
            match request {
                Invalid::Send(send) => {
                    assert_eq!(send.gateway(), gateway, "{what}: the fixture is another gateway's");
                    assert_refused(&send.validate().unwrap_err(), gateway, &what);
                    assert_refused(&client.send_otp(&send).await.unwrap_err(), gateway, &what);
                    let verification = Verification::new(send);
                    assert_refused(&GatewayClient::validate(&verification).unwrap_err(), gateway, &what);
                    assert_refused(&verifier.start(verification, &context()).await.unwrap_err(), gateway, &what);
                }
                Invalid::Verify(verify) => {
                    assert_eq!(verify.gateway(), gateway, "{what}: the fixture is another gateway's");
                    assert_refused(&verify.validate().unwrap_err(), gateway, &what);
                    assert_refused(&client.verify_otp(&verify).await.unwrap_err(), gateway, &what);
                }
            }
        }
        // The same checks let the gateway's valid request through.
        let valid = sample_request(gateway, "9876543210");
        valid.validate().unwrap();
        GatewayClient::validate(&Verification::new(valid)).unwrap();
    }
    assert_eq!(server.connections(), 0, "nothing reached any gateway");
    // The listener does count: a valid send reaches it (and finds no HTTP answer).
    let sent = client(&server, Gateway::ALL[0]).send_otp(&sample_request(Gateway::ALL[0], "9876543210")).await;
    assert_ne!(sent.unwrap_err().reached_provider(), Reached::No);
    assert_eq!(server.connections(), 1, "the listener counts connections");
}

#[test]
fn every_gateways_request_round_trips_and_an_over_long_field_is_refused_when_read_back() {
    for gateway in Gateway::ALL {
        let json = serde_json::to_value(sample_request(gateway, "9876543210")).unwrap();
        let back: SendOtpRequest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!((back.gateway(), serde_json::to_value(&back).unwrap()), (gateway, json.clone()));
        let verification = serde_json::to_value(Verification::new(back)).unwrap();
        assert_eq!(verification["request"], json, "{gateway}: a stored verification holds the request as is");
        serde_json::from_value::<Verification>(verification).unwrap();

        let (path, long) = over_long_field(gateway);
        let mut stored = json.clone();
        let (last, parents) = path.split_last().unwrap();
        let parent = parents.iter().fold(&mut stored, |value, key| &mut value[*key]);
        assert!(parent.get(*last).is_some(), "{gateway}: {path:?} is not a field of {json}");
        parent[*last] = long.into();
        let error = serde_json::from_value::<SendOtpRequest>(stored.clone()).unwrap_err();
        assert!(error.to_string().starts_with("invalid_request"), "{gateway}: {error}");
        let verification = serde_json::json!({ "request": stored, "customer_name": null });
        assert!(serde_json::from_value::<Verification>(verification).is_err(), "{gateway}: a stored verification");
    }
}

#[tokio::test]
async fn an_iserveu_registration_needs_a_customer_name_its_check_can_send() {
    let server = server().await;
    let registration = || {
        otp::iserveu::RegistrationOtpRequest::new(
            "9876543210".parse().unwrap(),
            "AADHAAR",
            IdentityNumber::new("765386439745"),
        )
    };
    for (verification, what) in [
        (Verification::new(registration()), "no name"),
        (Verification::new(registration()).customer_name(" "), "a blank name"),
        (Verification::new(registration()).customer_name("n".repeat(101)), "a name over 100 characters"),
        (Verification::new(registration()).customer_name("Asha\nRao"), "a control character"),
    ] {
        let error = GatewayClient::validate(&verification).unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{what}");
        let stored = serde_json::to_value(&verification).unwrap();
        assert!(serde_json::from_value::<Verification>(stored).is_err(), "{what}: read back");
        let verifier = Verifier::new(client(&server, Gateway::IServeU), MemoryStore::new());
        assert_refused(&verifier.start(verification, &context()).await.unwrap_err(), Gateway::IServeU, what);
    }
    assert_eq!(server.connections(), 0, "no OTP was sent for a session that cannot be checked");
    let named = Verification::new(registration()).customer_name("Asha Rao");
    GatewayClient::validate(&named).unwrap();
    serde_json::from_value::<Verification>(serde_json::to_value(&named).unwrap()).unwrap();
    // A transaction OTP is not checked here, so it needs no name.
    GatewayClient::validate(&Verification::new(sample_request(Gateway::IServeU, "9876543210"))).unwrap();
}

#[tokio::test]
async fn an_aopay_kyc_id_is_checked_at_the_start_kept_in_the_session_and_taken_by_the_check() {
    let server = server().await;
    let send = || sample_request(Gateway::AOPay, "9876543210");
    let over_long = Verification::new(send()).kyc_id("k".repeat(65));
    assert_refused(&GatewayClient::validate(&over_long).unwrap_err(), Gateway::AOPay, "an over-long KYC id");
    let verifier = Verifier::new(client(&server, Gateway::AOPay), MemoryStore::new());
    assert_refused(&verifier.start(over_long.clone(), &context()).await.unwrap_err(), Gateway::AOPay, "start");
    assert_eq!(server.connections(), 0, "no OTP was sent for a session that cannot be checked");
    let stored = serde_json::to_value(&over_long).unwrap();
    assert_eq!(stored["kyc_id"], "k".repeat(65));
    assert!(serde_json::from_value::<Verification>(stored).is_err(), "read back through the same checks");

    let with_kyc = Verification::new(send()).kyc_id("KYC-0042").customer_name("Asha Rao");
    let stored = serde_json::to_value(&with_kyc).unwrap();
    let back: Verification = serde_json::from_value(stored).unwrap();
    assert_eq!(
        (back.extras().kyc_id.as_deref(), back.extras().customer_name.as_deref()),
        (Some("KYC-0042"), Some("Asha Rao"))
    );
    let rendered = format!("{back:?}");
    assert!(!rendered.contains("KYC-0042") && !rendered.contains("Asha"), "{rendered}");
    // A session stored before `kyc_id` existed reads it as absent.
    let old = serde_json::json!({ "request": serde_json::to_value(send()).unwrap(), "customer_name": null });
    assert_eq!(serde_json::from_value::<Verification>(old).unwrap().extras().kyc_id, None);

    let sent: otp::verifier::Sent =
        serde_json::from_str(r#"{"reference":"STATE-1","outcome":"sent_for_registration"}"#).unwrap();
    let check = GatewayClient::verify_request(&back, &sent, otp::OtpCode::parse("123456").unwrap()).unwrap();
    assert_eq!(check.gateway(), Gateway::AOPay);
    assert!(format!("{check:?}").contains(r#"kyc_id: Some("KYC-0042")"#), "{check:?}");
}
