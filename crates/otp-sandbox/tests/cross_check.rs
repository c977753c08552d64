//! Both sides agree with the wire contracts of docs/gateways/: each gateway crate's client, pointed at the sandbox with
//! its default credentials, sends successfully, and each magic number becomes the documented kind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use otp_core::{
    ClientOptions, Environment, Error, ErrorKind, Gateway, HttpOptions, IdentityNumber, MobileNumber, Outcome,
    SendReceipt,
};
use otp_sandbox::{credentials, Sandbox, SandboxConfig};
use ErrorKind::{Blocked, ProviderUnavailable, RateLimited, Rejected};

fn mobile(digits: &str) -> MobileNumber {
    MobileNumber::parse(digits).unwrap()
}

type Sending = Pin<Box<dyn Future<Output = Result<SendReceipt, Error>>>>;
type Sender = Box<dyn Fn(&str, Credentials) -> Sending>;

/// One gateway's client pointed at the sandbox, and what the gateway's documentation says the
/// client reads. Each gateway's section below makes its own; [`every_fixture`] finds one for
/// each of `Gateway::ALL`, so a gateway without one fails every test here.
struct Fixture {
    gateway: Gateway,
    /// A well-formed send to a number, every optional field set, by a client with the
    /// sandbox's credentials or with wrong ones.
    send: Sender,
    /// The provider code of a send that went out.
    sent: &'static str,
    /// What 9000000001, 9000000002, 9000000003, 9000000005 and 9000000006 become (`None`: a
    /// send that went out).
    magic: [Option<ErrorKind>; 5],
    /// The provider code of wrong credentials (an authentication error, HTTP 401).
    wrong_credentials: &'static str,
}

#[derive(Clone, Copy)]
enum Credentials {
    Sandbox,
    Wrong,
}

impl Fixture {
    fn send(&self, number: &str) -> Sending {
        (self.send)(number, Credentials::Sandbox)
    }
}

/// The makers of every fixture, one per gateway: the one line a gateway adds here.
const FIXTURES: [fn(&Sandbox, Duration) -> Fixture; 4] = [phonepe, paytm, iserveu, aopay];

/// One fixture for each of `Gateway::ALL`, in its order, with clients timing out after `timeout`.
fn every_fixture(sandbox: &Sandbox, timeout: Duration) -> Vec<Fixture> {
    let mut made: Vec<Fixture> = FIXTURES.iter().map(|make| make(sandbox, timeout)).collect();
    let fixtures: Vec<Fixture> = Gateway::ALL
        .into_iter()
        .map(|gateway| {
            let index = made.iter().position(|fixture| fixture.gateway == gateway);
            made.remove(index.unwrap_or_else(|| panic!("no fixture for {gateway}: add one to FIXTURES")))
        })
        .collect();
    assert!(made.is_empty(), "a gateway with two fixtures");
    fixtures
}

/// What every client here is given: the sandbox's address, and `timeout`.
fn options(sandbox: &Sandbox, timeout: Duration) -> ClientOptions {
    ClientOptions::new()
        .environment(Environment::Custom(sandbox.base_url()))
        .http(HttpOptions::default().timeout(timeout))
}

/// A fixture's `send`: `send` with the first client (the sandbox's credentials) or the second
/// (wrong ones).
fn sender<C: Clone + 'static>(clients: [C; 2], send: fn(C, MobileNumber) -> Sending) -> Sender {
    Box::new(move |number, credentials| {
        let [right, wrong] = &clients;
        let client = match credentials {
            Credentials::Sandbox => right.clone(),
            Credentials::Wrong => wrong.clone(),
        };
        send(client, mobile(number))
    })
}

// ------------------------------------------------------------------ PhonePe

fn phonepe(sandbox: &Sandbox, timeout: Duration) -> Fixture {
    let client = |salt_key: &str| {
        let builder = otp_phonepe::PhonePeClient::builder()
            .merchant_id(credentials::PHONEPE_MERCHANT_ID)
            .salt_key(salt_key)
            .salt_index(credentials::PHONEPE_SALT_INDEX);
        builder.options(options(sandbox, timeout)).build().unwrap()
    };
    Fixture {
        gateway: Gateway::PhonePe,
        send: sender([client(credentials::PHONEPE_SALT_KEY), client("wrong-salt")], |client, mobile| {
            let request = otp_phonepe::SendOtpRequest::new(mobile)
                .email("asha@example.com")
                .short_name("Asha")
                .request_type(otp_phonepe::RequestType::Wallet)
                .device_id("device-0042");
            Box::pin(async move { client.send_otp(&request).await })
        }),
        sent: "SUCCESS",
        magic: [
            Some(RateLimited),
            Some(Blocked),
            Some(ProviderUnavailable),
            Some(RateLimited),
            Some(ProviderUnavailable),
        ],
        wrong_credentials: "AUTHORIZATION_FAILED",
    }
}

// ------------------------------------------------------------------ Paytm

fn paytm(sandbox: &Sandbox, timeout: Duration) -> Fixture {
    let client = |client_secret: &str| {
        let builder =
            otp_paytm::PaytmClient::builder().client_id(credentials::PAYTM_CLIENT_ID).client_secret(client_secret);
        builder.options(options(sandbox, timeout)).build().unwrap()
    };
    Fixture {
        gateway: Gateway::Paytm,
        send: sender([client(credentials::PAYTM_CLIENT_SECRET), client("wrong")], |client, mobile| {
            let request =
                otp_paytm::SendOtpRequest::new(mobile, "device-0042").scope("paytm").auto_read_hash("FA+9qCX9VSu");
            Box::pin(async move { client.send_otp(&request).await })
        }),
        sent: "BE1400001",
        magic: [
            Some(RateLimited),
            Some(Blocked),
            Some(ProviderUnavailable),
            Some(RateLimited),
            Some(ProviderUnavailable),
        ],
        wrong_credentials: "BE1423005",
    }
}

// ------------------------------------------------------------------ iServeU

fn iserveu_client(sandbox: &Sandbox, timeout: Duration, client_secret: &str) -> otp_iserveu::IServeUClient {
    let builder = otp_iserveu::IServeUClient::builder()
        .client_id(credentials::ISERVEU_CLIENT_ID)
        .client_secret(client_secret)
        .username(credentials::ISERVEU_USERNAME);
    builder.options(options(sandbox, timeout)).build().unwrap()
}

fn iserveu(sandbox: &Sandbox, timeout: Duration) -> Fixture {
    let client = |client_secret: &str| iserveu_client(sandbox, timeout, client_secret);
    Fixture {
        gateway: Gateway::IServeU,
        send: sender([client(credentials::ISERVEU_CLIENT_SECRET), client("wrong")], |client, mobile| {
            let request = otp_iserveu::TransactionOtpRequest::new(
                mobile,
                "AADHAAR",
                "REF123456",
                otp_core::Amount::parse("1500.50").unwrap(),
            )
            .coordinates(otp_core::Coordinates::new("12.97", "77.59").unwrap())
            .public_ip([203, 0, 113, 7].into());
            Box::pin(async move { client.send_otp(&request.into()).await })
        }),
        sent: "0",
        magic: [Some(Rejected), Some(Rejected), Some(ProviderUnavailable), Some(Rejected), Some(ProviderUnavailable)],
        wrong_credentials: "401",
    }
}

/// iServeU's other send: the registration OTP (type 1), which answers no reference.
async fn iserveu_registration(sandbox: &Sandbox, number: &str) -> Result<SendReceipt, Error> {
    let client = iserveu_client(sandbox, Duration::from_secs(2), credentials::ISERVEU_CLIENT_SECRET);
    let request =
        otp_iserveu::RegistrationOtpRequest::new(mobile(number), "AADHAAR", IdentityNumber::new("765386439745"));
    client.send_otp(&request.into()).await
}

// ------------------------------------------------------------------ AOPay

fn aopay(sandbox: &Sandbox, timeout: Duration) -> Fixture {
    let client = |registration_id: &str| {
        let builder = otp_aopay::AOPayClient::builder().registration_id(registration_id);
        builder.options(options(sandbox, timeout)).build().unwrap()
    };
    Fixture {
        gateway: Gateway::AOPay,
        send: sender([client(credentials::AOPAY_REGISTRATION_ID), client("AOP-WRONG")], |client, mobile| {
            let request = otp_aopay::SendOtpRequest::new(
                mobile,
                "BENE1001",
                otp_aopay::TransactionType::Imps,
                otp_core::Amount::parse("2500").unwrap(),
                otp_aopay::Remitter::new(
                    "12 MG Road, Bengaluru",
                    otp_core::Pincode::parse("560001").unwrap(),
                    otp_aopay::DateOfBirth::parse("20/08/1990").unwrap(),
                    otp_core::Coordinates::new("12.9716", "77.5946").unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
            Box::pin(async move { client.send_otp(&request).await })
        }),
        sent: "1",
        // 9000000005: the OTP went out, to register the remitter.
        magic: [Some(Rejected), Some(Rejected), Some(ProviderUnavailable), None, Some(ProviderUnavailable)],
        wrong_credentials: "11",
    }
}

// ------------------------------------------------------------------ every gateway

async fn setup() -> (Sandbox, Vec<Fixture>) {
    let sandbox = Sandbox::start(SandboxConfig::default().slow_answer_delay(Duration::from_secs(5))).await.unwrap();
    let fixtures = every_fixture(&sandbox, Duration::from_secs(2));
    (sandbox, fixtures)
}

#[tokio::test]
async fn every_gateway_client_sends_through_the_sandbox() {
    let (sandbox, fixtures) = setup().await;
    let number = "9876543210";
    let mut receipts = Vec::new();
    for fixture in &fixtures {
        receipts.push(fixture.send(number).await.unwrap());
    }
    let inbox = sandbox.otps(number);
    assert_eq!(inbox.len(), fixtures.len());
    // The inbox is newest first; the receipts are in sending order.
    for ((receipt, sent), fixture) in receipts.iter().zip(inbox.iter().rev()).zip(&fixtures) {
        assert_eq!(receipt.outcome, Outcome::Sent, "{receipt:?}");
        assert_eq!(receipt.http_status, 200);
        assert_eq!(receipt.gateway, sent.gateway);
        assert_eq!(receipt.gateway, fixture.gateway);
        let reference = receipt.reference.as_ref().map(|r| r.expose_secret().to_owned());
        assert_eq!(reference, sent.reference, "{:?}", receipt.gateway);
        assert_eq!(receipt.provider_code, fixture.sent, "{:?}", receipt.gateway);
    }

    let registration = iserveu_registration(&sandbox, "9876543211").await.unwrap();
    assert_eq!(registration.outcome, Outcome::Sent);
    assert!(registration.reference.is_none());
}

#[tokio::test]
async fn every_magic_number_becomes_the_documented_kind() {
    let (sandbox, fixtures) = setup().await;
    for fixture in &fixtures {
        let numbers = ["9000000001", "9000000002", "9000000003", "9000000005", "9000000006"];
        for (number, expected) in numbers.into_iter().zip(fixture.magic) {
            let gateway = fixture.gateway;
            match (fixture.send(number).await, expected) {
                (Err(error), Some(kind)) => assert_eq!(error.kind(), kind, "{gateway} {number}: {error}"),
                (Ok(_), None) => {}
                (other, expected) => panic!("{gateway} {number}: expected {expected:?}, got {other:?}"),
            }
        }
    }
    // AOPay's 9000000005: the OTP went out to register the remitter — a success, not an error.
    let receipt = aopay(&sandbox, Duration::from_secs(2)).send("9000000005").await.unwrap();
    assert_eq!(receipt.outcome, Outcome::SentForRegistration);
    assert_eq!(receipt.provider_code, "0");
    assert!(receipt.reference.is_some());
}

#[tokio::test]
async fn the_slow_number_times_out_at_the_clients_deadline() {
    let (sandbox, _) = setup().await;
    let started = std::time::Instant::now();
    let error = paytm(&sandbox, Duration::from_secs(2)).send("9000000004").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(!error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test]
async fn wrong_credentials_are_authentication_errors_on_every_gateway() {
    let (sandbox, fixtures) = setup().await;
    let number = "9876543210";
    for fixture in &fixtures {
        let error = (fixture.send)(number, Credentials::Wrong).await.unwrap_err();
        let gateway = fixture.gateway;
        assert_eq!(error.kind(), ErrorKind::Authentication, "{gateway}: {error}");
        assert_eq!(error.provider_code(), Some(fixture.wrong_credentials), "{gateway}: {error}");
        assert_eq!(error.http_status(), Some(401), "{gateway}: {error}");
    }
    assert!(sandbox.otps(number).is_empty());
}

#[tokio::test]
async fn the_limit_reaches_the_client_as_rate_limited_on_the_sixth_send() {
    let (sandbox, _) = setup().await;
    let phonepe = phonepe(&sandbox, Duration::from_secs(2));
    for _ in 0..5 {
        phonepe.send("9876543210").await.unwrap();
    }
    let error = phonepe.send("9876543210").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.provider_code(), Some("OTP_LIMIT_EXCEEDED"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_sandbox_full_of_live_numbers_is_provider_unavailable_and_retryable_on_every_gateway() {
    let sandbox = Sandbox::start(SandboxConfig::default().max_numbers(1)).await.unwrap();
    let fixtures = every_fixture(&sandbox, Duration::from_secs(2));
    fixtures[0].send("9876543210").await.unwrap();
    let mut results = Vec::new();
    for fixture in &fixtures {
        results.push(fixture.send("9876543211").await);
    }
    results.push(iserveu_registration(&sandbox, "9876543211").await);
    // The magic number that issues a registration OTP needs a place too.
    results.push(aopay(&sandbox, Duration::from_secs(2)).send("9000000005").await);
    for result in results {
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ProviderUnavailable, "{error}");
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.http_status(), Some(503), "{error}");
        assert_eq!(error.provider_code(), None, "no documented code: the status decides");
        let message = error.provider_message().unwrap_or_default();
        assert!(message.contains("full of live numbers") && message.contains("--max-numbers"), "{message}");
        let wait = error.retry_after().unwrap();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(600), "{wait:?}");
    }
    // The number already kept is still served.
    for fixture in &fixtures {
        fixture.send("9876543210").await.unwrap();
    }
    assert_eq!(sandbox.sizes().0, 1);
}
