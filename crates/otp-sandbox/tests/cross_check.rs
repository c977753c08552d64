//! Both sides agree with gateways.md: each gateway crate's client, pointed at the sandbox with
//! its default credentials, sends successfully, and each magic number becomes the documented kind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::time::Duration;

use otp_core::{Environment, Error, ErrorKind, HttpOptions, IdentityNumber, MobileNumber, Outcome, SendReceipt};
use otp_sandbox::{credentials, Sandbox, SandboxConfig};

fn mobile(digits: &str) -> MobileNumber {
    MobileNumber::parse(digits).unwrap()
}

struct Clients {
    phonepe: otp_phonepe::PhonePeClient,
    paytm: otp_paytm::PaytmClient,
    iserveu: otp_iserveu::IServeUClient,
    aopay: otp_aopay::AOPayClient,
}

impl Clients {
    fn new(sandbox: &Sandbox, timeout: Duration) -> Self {
        let env = || Environment::Custom(sandbox.base_url());
        let http = || HttpOptions::default().timeout(timeout);
        Self {
            phonepe: otp_phonepe::PhonePeClient::builder()
                .merchant_id(credentials::PHONEPE_MERCHANT_ID)
                .salt_key(credentials::PHONEPE_SALT_KEY)
                .salt_index(credentials::PHONEPE_SALT_INDEX)
                .environment(env())
                .http(http())
                .build()
                .unwrap(),
            paytm: otp_paytm::PaytmClient::builder()
                .client_id(credentials::PAYTM_CLIENT_ID)
                .client_secret(credentials::PAYTM_CLIENT_SECRET)
                .environment(env())
                .http(http())
                .build()
                .unwrap(),
            iserveu: otp_iserveu::IServeUClient::builder()
                .client_id(credentials::ISERVEU_CLIENT_ID)
                .client_secret(credentials::ISERVEU_CLIENT_SECRET)
                .username(credentials::ISERVEU_USERNAME)
                .environment(env())
                .http(http())
                .build()
                .unwrap(),
            aopay: otp_aopay::AOPayClient::builder()
                .registration_id(credentials::AOPAY_REGISTRATION_ID)
                .environment(env())
                .http(http())
                .build()
                .unwrap(),
        }
    }

    async fn phonepe(&self, number: &str) -> Result<SendReceipt, Error> {
        let request = otp_phonepe::SendOtpRequest::new(mobile(number))
            .email("asha@example.com")
            .short_name("Asha")
            .request_type(otp_phonepe::RequestType::Wallet)
            .device_id("device-0042");
        self.phonepe.send_otp(&request).await
    }

    async fn paytm(&self, number: &str) -> Result<SendReceipt, Error> {
        let request =
            otp_paytm::SendOtpRequest::new(mobile(number), "device-0042").scope("paytm").auto_read_hash("FA+9qCX9VSu");
        self.paytm.send_otp(&request).await
    }

    async fn iserveu(&self, number: &str) -> Result<SendReceipt, Error> {
        let request = otp_iserveu::TransactionOtpRequest::new(
            mobile(number),
            "AADHAAR",
            "REF123456",
            otp_core::Amount::parse("1500.50").unwrap(),
        )
        .coordinates(otp_core::Coordinates::new("12.97", "77.59").unwrap())
        .public_ip([203, 0, 113, 7].into());
        self.iserveu.send_otp(&request.into()).await
    }

    async fn iserveu_registration(&self, number: &str) -> Result<SendReceipt, Error> {
        let request =
            otp_iserveu::RegistrationOtpRequest::new(mobile(number), "AADHAAR", IdentityNumber::new("765386439745"));
        self.iserveu.send_otp(&request.into()).await
    }

    async fn aopay(&self, number: &str) -> Result<SendReceipt, Error> {
        let request = otp_aopay::SendOtpRequest::new(
            mobile(number),
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
        self.aopay.send_otp(&request).await
    }
}

async fn setup() -> (Sandbox, Clients) {
    let sandbox = Sandbox::start(SandboxConfig::default().slow_answer_delay(Duration::from_secs(5))).await.unwrap();
    let clients = Clients::new(&sandbox, Duration::from_secs(2));
    (sandbox, clients)
}

#[tokio::test]
async fn every_gateway_client_sends_through_the_sandbox() {
    let (sandbox, clients) = setup().await;
    let number = "9876543210";
    let receipts = [
        clients.phonepe(number).await.unwrap(),
        clients.paytm(number).await.unwrap(),
        clients.iserveu(number).await.unwrap(),
        clients.aopay(number).await.unwrap(),
    ];
    let inbox = sandbox.otps(number);
    assert_eq!(inbox.len(), 4);
    // The inbox is newest first; the receipts are in sending order.
    for (receipt, sent) in receipts.iter().zip(inbox.iter().rev()) {
        assert_eq!(receipt.outcome, Outcome::Sent, "{receipt:?}");
        assert_eq!(receipt.http_status, 200);
        assert_eq!(receipt.gateway, sent.gateway);
        let reference = receipt.reference.as_ref().map(|r| r.expose_secret().to_owned());
        assert_eq!(reference, sent.reference, "{:?}", receipt.gateway);
    }
    let codes: Vec<&str> = receipts.iter().map(|r| r.provider_code.as_str()).collect();
    assert_eq!(codes, ["SUCCESS", "BE1400001", "0", "1"]);

    let registration = clients.iserveu_registration("9876543211").await.unwrap();
    assert_eq!(registration.outcome, Outcome::Sent);
    assert!(registration.reference.is_none());
}

#[tokio::test]
async fn every_magic_number_becomes_the_documented_kind() {
    let (_sandbox, clients) = setup().await;
    use ErrorKind::*;
    // mobile → expected kind for phonepe, paytm, iserveu, aopay (None: a success).
    let table: [(&str, [Option<ErrorKind>; 4]); 5] = [
        ("9000000001", [Some(RateLimited), Some(RateLimited), Some(Rejected), Some(Rejected)]),
        ("9000000002", [Some(Blocked), Some(Blocked), Some(Rejected), Some(Rejected)]),
        (
            "9000000003",
            [
                Some(ProviderUnavailable),
                Some(ProviderUnavailable),
                Some(ProviderUnavailable),
                Some(ProviderUnavailable),
            ],
        ),
        ("9000000005", [Some(RateLimited), Some(RateLimited), Some(Rejected), None]),
        (
            "9000000006",
            [
                Some(ProviderUnavailable),
                Some(ProviderUnavailable),
                Some(ProviderUnavailable),
                Some(ProviderUnavailable),
            ],
        ),
    ];
    for (number, expected) in table {
        let results = [
            clients.phonepe(number).await,
            clients.paytm(number).await,
            clients.iserveu(number).await,
            clients.aopay(number).await,
        ];
        for (result, expected) in results.iter().zip(expected) {
            match (result, expected) {
                (Err(error), Some(kind)) => assert_eq!(error.kind(), kind, "{number}: {error}"),
                (Ok(_), None) => {}
                (other, expected) => panic!("{number}: expected {expected:?}, got {other:?}"),
            }
        }
    }
    // AOPay's 9000000005: the OTP went out to register the remitter — a success, not an error.
    let receipt = clients.aopay("9000000005").await.unwrap();
    assert_eq!(receipt.outcome, Outcome::SentForRegistration);
    assert_eq!(receipt.provider_code, "0");
    assert!(receipt.reference.is_some());
}

#[tokio::test]
async fn the_slow_number_times_out_at_the_clients_deadline() {
    let (_sandbox, clients) = setup().await;
    let started = std::time::Instant::now();
    let error = clients.paytm("9000000004").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(!error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test]
async fn wrong_credentials_are_authentication_errors_on_every_gateway() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let env = || Environment::Custom(sandbox.base_url());
    let number = "9876543210";
    let phonepe = otp_phonepe::PhonePeClient::builder()
        .merchant_id(credentials::PHONEPE_MERCHANT_ID)
        .salt_key("wrong-salt")
        .salt_index(1)
        .environment(env())
        .build()
        .unwrap();
    let error = phonepe.send_otp(&otp_phonepe::SendOtpRequest::new(mobile(number))).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::Authentication, Some("AUTHORIZATION_FAILED")));

    let paytm = otp_paytm::PaytmClient::builder()
        .client_id("sandbox-client")
        .client_secret("wrong")
        .environment(env())
        .build()
        .unwrap();
    let request = otp_paytm::SendOtpRequest::new(mobile(number), "device").scope("paytm");
    let error = paytm.send_otp(&request).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::Authentication, Some("BE1423005")));

    let iserveu = otp_iserveu::IServeUClient::builder()
        .client_id("sandbox-client")
        .client_secret("wrong")
        .username("sandboxuser")
        .environment(env())
        .build()
        .unwrap();
    let request: otp_iserveu::SendOtpRequest = otp_iserveu::TransactionOtpRequest::new(
        mobile(number),
        "AADHAAR",
        "REF123456",
        otp_core::Amount::parse("10").unwrap(),
    )
    .into();
    let error = iserveu.send_otp(&request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.http_status(), Some(401));

    let aopay = otp_aopay::AOPayClient::builder().registration_id("AOP-WRONG").environment(env()).build().unwrap();
    let request = otp_aopay::SendOtpRequest::new(
        mobile(number),
        "BENE1001",
        otp_aopay::TransactionType::Neft,
        otp_core::Amount::parse("1").unwrap(),
        otp_aopay::Remitter::new(
            "x",
            otp_core::Pincode::parse("560001").unwrap(),
            otp_aopay::DateOfBirth::parse("01/01/1990").unwrap(),
            otp_core::Coordinates::new("0", "0").unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let error = aopay.send_otp(&request).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::Authentication, Some("11")));
    assert!(sandbox.otps(number).is_empty());
}

#[tokio::test]
async fn the_limit_reaches_the_client_as_rate_limited_on_the_sixth_send() {
    let (_sandbox, clients) = setup().await;
    for _ in 0..5 {
        clients.phonepe("9876543210").await.unwrap();
    }
    let error = clients.phonepe("9876543210").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.provider_code(), Some("OTP_LIMIT_EXCEEDED"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_sandbox_full_of_live_numbers_is_provider_unavailable_and_retryable_on_every_gateway() {
    let sandbox = Sandbox::start(SandboxConfig::default().max_numbers(1)).await.unwrap();
    let clients = Clients::new(&sandbox, Duration::from_secs(2));
    clients.phonepe("9876543210").await.unwrap();
    let results = [
        clients.phonepe("9876543211").await,
        clients.paytm("9876543211").await,
        clients.iserveu("9876543211").await,
        clients.iserveu_registration("9876543211").await,
        clients.aopay("9876543211").await,
        // The magic number that issues a registration OTP needs a place too.
        clients.aopay("9000000005").await,
    ];
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
    clients.paytm("9876543210").await.unwrap();
    assert_eq!(sandbox.sizes().0, 1);
}
