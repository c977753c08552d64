//! Leak-proof: with a TRACE subscriber installed, every gateway runs through success and
//! failure paths against the sandbox with random credentials, and no salt key, client secret,
//! Basic credential, X-VERIFY value, identity number, OTP token or full mobile number appears
//! in any log line. The same holds for `{:?}` and `{}` of every public config, request, answer
//! and error type, with random secrets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use otp::{Environment, Error, Gateway, GatewayClient, IdentityNumber, MobileNumber, SecretString, SendOtpRequest};
use otp_sandbox::{Sandbox, SandboxConfig};
use proptest::prelude::*;

/// Everything the global subscriber writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(logs.clone())
            .init();
        logs
    })
}

#[derive(Debug, Clone)]
struct Secrets {
    salt_key: String,
    paytm_secret: String,
    iserveu_secret: String,
    aadhaar: String,
    mobile: String,
}

fn secrets() -> impl Strategy<Value = Secrets> {
    ("[a-zA-Z0-9]{20,32}", "[a-zA-Z0-9]{20,32}", "[a-zA-Z0-9]{20,32}", "[2-9][0-9]{11}", "[6-8][0-9]{9}").prop_map(
        |(salt_key, paytm_secret, iserveu_secret, aadhaar, mobile)| Secrets {
            salt_key,
            paytm_secret,
            iserveu_secret,
            aadhaar,
            mobile,
        },
    )
}

fn base64(text: &str) -> String {
    // A small standard-alphabet encoder, so the test does not lean on the code under test.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Setup {
    clients: Vec<GatewayClient>,
    wrong: Vec<GatewayClient>,
}

/// A client of every gateway, with the test's random secrets (or wrong ones).
fn clients(base_url: &str, s: &Secrets, right: bool) -> Vec<GatewayClient> {
    Gateway::ALL.into_iter().map(|gateway| client(gateway, base_url, s, right)).collect()
}

/// A client of `gateway` with the test's random secrets (or wrong ones). A gateway without
/// an arm here does not compile.
fn client(gateway: Gateway, base_url: &str, s: &Secrets, right: bool) -> GatewayClient {
    let env = || Environment::Custom(base_url.to_owned());
    let pick = |secret: &str| if right { secret.to_owned() } else { format!("{secret}x") };
    match gateway {
        Gateway::PhonePe => otp::phonepe::PhonePeClient::builder()
            .merchant_id("SANDBOXMERCHANT")
            .salt_key(pick(&s.salt_key))
            .salt_index(1)
            .environment(env())
            .build()
            .unwrap()
            .into(),
        Gateway::Paytm => otp::paytm::PaytmClient::builder()
            .client_id("sandbox-client")
            .client_secret(pick(&s.paytm_secret))
            .environment(env())
            .build()
            .unwrap()
            .into(),
        Gateway::IServeU => otp::iserveu::IServeUClient::builder()
            .client_id("sandbox-client")
            .client_secret(pick(&s.iserveu_secret))
            .username("sandboxuser")
            .environment(env())
            .build()
            .unwrap()
            .into(),
        Gateway::AOPay => otp::aopay::AOPayClient::builder()
            .registration_id(if right { "AOP-SANDBOX" } else { "AOP-WRONG" })
            .environment(env())
            .build()
            .unwrap()
            .into(),
    }
}

/// A request of every gateway, in the order of `clients`.
fn requests(mobile: &str, aadhaar: &str) -> Vec<SendOtpRequest> {
    Gateway::ALL.into_iter().map(|gateway| request(gateway, mobile, aadhaar)).collect()
}

/// A request of `gateway` carrying every kind of personal data it takes.
fn request(gateway: Gateway, mobile: &str, aadhaar: &str) -> SendOtpRequest {
    let number = || MobileNumber::parse(mobile).unwrap();
    match gateway {
        Gateway::PhonePe => {
            otp::phonepe::SendOtpRequest::new(number()).email("a@example.com").device_id("device-1").into()
        }
        Gateway::Paytm => otp::paytm::SendOtpRequest::new(number(), "device-1").scope("paytm").into(),
        Gateway::IServeU => {
            otp::iserveu::RegistrationOtpRequest::new(number(), "AADHAAR", IdentityNumber::new(aadhaar))
                .external_ref("REF123456")
                .into()
        }
        Gateway::AOPay => otp::aopay::SendOtpRequest::new(
            number(),
            "BENE1",
            otp::aopay::TransactionType::Imps,
            otp::Amount::parse("10").unwrap(),
            otp::aopay::Remitter::new(
                "12 MG Road",
                otp::Pincode::parse("560001").unwrap(),
                otp::aopay::DateOfBirth::parse("20/08/1990").unwrap(),
                otp::Coordinates::new("12.9", "77.5").unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
        .into(),
    }
}

/// Every rendering a secret could hide in.
fn renderings(s: &Secrets, setup: &Setup, receipts: &[otp::SendReceipt], errors: &[Error]) -> String {
    let mut text = String::new();
    for client in setup.clients.iter().chain(&setup.wrong) {
        text += &format!("{client:?}\n");
    }
    for request in requests(&s.mobile, &s.aadhaar) {
        text += &format!("{request:?}\n");
    }
    for receipt in receipts {
        text += &format!("{receipt:?}\n");
    }
    for error in errors {
        text += &format!("{error}\n{error:?}\n");
    }
    // Secrets have no Display at all (a compile_fail doctest in otp-core proves it).
    let secret = SecretString::new(s.salt_key.clone());
    let salt_key = otp::SaltKey::new(s.salt_key.clone());
    let client_secret = otp::ClientSecret::new(s.paytm_secret.clone());
    let identity = IdentityNumber::new(s.aadhaar.clone());
    let mobile = MobileNumber::parse(&s.mobile).unwrap();
    text += &format!("{secret:?} {salt_key:?} {client_secret:?} {identity} {identity:?} {mobile} {mobile:?}\n");
    text
}

fn forbidden(s: &Secrets, tokens: &[String]) -> Vec<String> {
    let mut forbidden = vec![
        s.salt_key.clone(),
        s.paytm_secret.clone(),
        s.iserveu_secret.clone(),
        base64(&format!("sandbox-client:{}", s.paytm_secret)),
        s.aadhaar.clone(),
        s.aadhaar[4..].to_owned(), // more than the last 4 digits
        s.mobile.clone(),
        s.mobile[3..].to_owned(), // more than the last 4 digits
    ];
    forbidden.extend(tokens.iter().cloned());
    forbidden
}

fn assert_clean(what: &str, text: &str, forbidden: &[String]) -> Result<(), TestCaseError> {
    for secret in forbidden {
        prop_assert!(!text.contains(secret.as_str()), "{} leaked in {}:\n{}", secret, what, text);
    }
    // An X-VERIFY value is 64 hex digits; nothing that long may appear.
    let long_hex = text.split(|c: char| !c.is_ascii_hexdigit()).find(|word| word.len() >= 64);
    prop_assert!(long_hex.is_none(), "a signature-like value leaked in {}: {:?}", what, long_hex);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn trace_logs_and_renderings_never_carry_a_secret(s in secrets()) {
        let logs = logs();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (setup, receipts, errors) = runtime.block_on(async {
            let mut config = SandboxConfig::default();
            config.credentials.phonepe.salt_key = s.salt_key.clone();
            config.credentials.paytm.client_secret = s.paytm_secret.clone();
            config.credentials.iserveu.client_secret = s.iserveu_secret.clone();
            let sandbox = Sandbox::start(config).await.unwrap();
            let setup = Setup { clients: clients(&sandbox.base_url(), &s, true), wrong: clients(&sandbox.base_url(), &s, false) };
            let mut receipts = Vec::new();
            let mut errors = Vec::new();
            for mobile in [s.mobile.as_str(), "9000000001", "9000000003", "9000000006"] {
                for (client, request) in setup.clients.iter().zip(requests(mobile, &s.aadhaar)) {
                    match client.send_otp(&request).await {
                        Ok(receipt) => receipts.push(receipt),
                        Err(error) => errors.push(error),
                    }
                }
            }
            for (client, request) in setup.wrong.iter().zip(requests(&s.mobile, &s.aadhaar)) {
                errors.push(client.send_otp(&request).await.unwrap_err());
            }
            (setup, receipts, errors)
        });
        prop_assert!(receipts.len() >= Gateway::ALL.len(), "the success path ran");
        prop_assert!(errors.len() >= 3 * Gateway::ALL.len(), "the failure paths ran");
        let tokens: Vec<String> =
            receipts.iter().filter_map(|r| r.reference.as_ref()).map(|r| r.expose_secret().to_owned())
            // iServeU's reference is the caller's own external reference, not a provider token.
            .filter(|t| t != "REF123456")
            .collect();
        prop_assert!(!tokens.is_empty());
        let forbidden = forbidden(&s, &tokens);

        let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        prop_assert!(logged.contains("otp.send") && logged.contains(&s.mobile[6..]), "the subscriber captured the sends");
        assert_clean("the TRACE logs", &logged, &forbidden)?;
        assert_clean("Debug/Display", &renderings(&s, &setup, &receipts, &errors), &forbidden)?;
    }
}

#[test]
fn the_test_base64_matches_a_known_value() {
    assert_eq!(base64("sandbox-client:sandbox-secret"), "c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=");
    assert_eq!(base64("ab"), "YWI=");
}
