//! Never panic on input: every gateway's answer parser and the sandbox's request parser get
//! arbitrary bytes, truncated and mutated real fixtures, and wrong-typed JSON — thousands of
//! cases each — and every input ends in a typed result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use otp::{Error, ErrorKind, GatewayClient, HttpOptions, SendOtpRequest, SendReceipt};
use otp_core::http::RawResponse;
use otp_core::operation::Operation as _;
use proptest::prelude::*;
use serde_json::Value;

const CASES: u32 = 2_000;

/// One gateway's answer parser, reached through its send operation as a real send reaches it.
struct Parser {
    client: GatewayClient,
    request: SendOtpRequest,
}

impl Parser {
    fn decode(&self, status: u16, body: &[u8]) -> Result<SendReceipt, Error> {
        let response = RawResponse::new(status, Default::default(), body.to_vec().into());
        match (&self.client, &self.request) {
            (GatewayClient::PhonePe(c), SendOtpRequest::PhonePe(r)) => c.decode(r, &response),
            (GatewayClient::Paytm(c), SendOtpRequest::Paytm(r)) => c.decode(r, &response),
            (GatewayClient::IServeU(c), SendOtpRequest::IServeU(r)) => c.decode(r, &response),
            (GatewayClient::AOPay(c), SendOtpRequest::AOPay(r)) => c.decode(r, &response),
            _ => unreachable!("common builds matching pairs"),
        }
    }
}

/// Each gateway's parser and its documented example answers (the fixtures).
fn parsers() -> Vec<(&'static str, Parser, Vec<&'static str>)> {
    let bodies = |examples: &'static [(&'static str, u16, &'static str)]| examples.iter().map(|e| e.2).collect();
    let fixtures: [Vec<&'static str>; 4] = [
        bodies(otp::phonepe::EXAMPLES),
        bodies(otp::paytm::EXAMPLES),
        bodies(otp::iserveu::EXAMPLES),
        bodies(otp::aopay::EXAMPLES),
    ];
    let clients = common::sandbox_clients("http://127.0.0.1:9", HttpOptions::default());
    clients
        .into_iter()
        .zip(common::sample_requests("9876543210"))
        .zip(fixtures)
        .map(|((client, request), fixtures)| (client.gateway().as_str(), Parser { client, request }, fixtures))
        .collect()
}

/// A typed result whose parts agree with the answer it came from.
fn check(gateway: &str, status: u16, result: Result<SendReceipt, Error>) -> Result<(), TestCaseError> {
    match result {
        Ok(receipt) => {
            prop_assert_eq!(receipt.http_status, status, "{}", gateway);
            prop_assert!(!receipt.provider_code.is_empty(), "{}: success without a code", gateway);
        }
        Err(error) => {
            prop_assert!(ErrorKind::ALL.contains(&error.kind()));
            prop_assert_eq!(error.http_status(), Some(status), "{}: {}", gateway, error);
            // Formatting never panics either.
            let _ = (format!("{error}"), format!("{error:?}"));
        }
    }
    Ok(())
}

/// One runtime for every case of the sandbox property test.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("SUCCESS"), Just("0"), Just("1"), Just("-1"), Just("BE1400001"), Just("OTP")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("code".to_owned()),
                    Just("success".to_owned()),
                    Just("data".to_owned()),
                    Just("otpToken".to_owned()),
                    Just("responseCode".to_owned()),
                    Just("state_token".to_owned()),
                    Just("statusCode".to_owned()),
                    Just("response_code".to_owned()),
                    Just("responsecode".to_owned()),
                    Just("status".to_owned()),
                    Just("stateresp".to_owned()),
                    Just("message".to_owned()),
                    "[a-zA-Z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(500), Just(502), 100u16..600]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_end_in_a_typed_result(status in status(), body in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (gateway, decode, _) in parsers() {
            check(gateway, status, decode.decode(status, &body))?;
        }
    }

    #[test]
    fn truncated_and_mutated_fixtures_end_in_a_typed_result(
        status in status(),
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        for (gateway, decode, fixtures) in parsers() {
            let fixture = fixtures[pick.index(fixtures.len())].as_bytes();
            let truncated = &fixture[..cut.index(fixture.len() + 1)];
            check(gateway, status, decode.decode(status, truncated))?;
            let mut mutated = fixture.to_vec();
            for (at, byte) in &flips {
                let i = at.index(mutated.len());
                mutated[i] = *byte;
            }
            check(gateway, status, decode.decode(status, &mutated))?;
        }
    }

    #[test]
    fn wrong_typed_json_ends_in_a_typed_result(
        status in status(),
        pick in any::<prop::sample::Index>(),
        field in any::<prop::sample::Index>(),
        replacement in json_value(),
        whole in json_value(),
    ) {
        for (gateway, decode, fixtures) in parsers() {
            check(gateway, status, decode.decode(status, whole.to_string().as_bytes()))?;
            // A real answer with one field's value swapped for junk of any type.
            let fixture = fixtures[pick.index(fixtures.len())];
            let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(fixture) else { continue };
            if object.is_empty() {
                continue;
            }
            let key = object.keys().nth(field.index(object.len())).cloned().unwrap();
            object.insert(key, replacement.clone());
            check(gateway, status, decode.decode(status, Value::Object(object).to_string().as_bytes()))?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// The sandbox's checks directly (no socket), so each route sees thousands of inputs.
    #[test]
    fn the_sandbox_answers_any_request(
        route in 0usize..4,
        header in ".{0,80}",
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
    ) {
        let (path, query) = [
            ("/v3/merchant/otp/send", None),
            ("/v4/signin/otp/sv1/", Some("locale=en-IN")),
            ("/common/dmt-lite/unified/otp/send", None),
            ("/api/AOP/DMTV1/TransactionSendOtp", None),
        ][route];
        let headers = [("x-verify", header.as_str()), ("authorization", header.as_str()), ("client_id", header.as_str())];
        let status = runtime().block_on(otp_sandbox::status_for_fuzzing(path, query, &headers, &body));
        prop_assert!(status.is_some_and(|s| [200, 400, 401, 429, 500, 502].contains(&s)), "{:?}", status);
    }
}

#[test]
fn every_documented_example_decodes_to_its_documented_kind() {
    // The fixtures themselves, so the mutations above start from answers that parse.
    for (gateway, decode, _) in parsers() {
        let examples = match gateway {
            "phonepe" => otp::phonepe::EXAMPLES,
            "paytm" => otp::paytm::EXAMPLES,
            "iserveu" => otp::iserveu::EXAMPLES,
            _ => otp::aopay::EXAMPLES,
        };
        for (code, status, body) in examples {
            match decode.decode(*status, body.as_bytes()) {
                Ok(receipt) => assert_eq!(receipt.provider_code, *code, "{gateway}"),
                Err(error) => assert_eq!(error.provider_code(), Some(*code), "{gateway}: {error}"),
            }
        }
    }
}

mod sandbox_requests {
    //! The sandbox's request parsing, through its real HTTP front door.

    use super::*;
    use otp_core::reqwest;
    use otp_sandbox::{Sandbox, SandboxConfig};

    const ROUTES: [&str; 4] = [
        "/v3/merchant/otp/send",
        "/v4/signin/otp/sv1/?locale=en-IN",
        "/common/dmt-lite/unified/otp/send",
        "/api/AOP/DMTV1/TransactionSendOtp",
    ];

    struct Harness {
        runtime: tokio::runtime::Runtime,
        sandbox: Sandbox,
        http: reqwest::Client,
    }

    fn harness() -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let config = SandboxConfig::default().slow_answer_delay(std::time::Duration::ZERO);
        let sandbox = runtime.block_on(Sandbox::start(config)).unwrap();
        Harness { runtime, sandbox, http: reqwest::Client::new() }
    }

    impl Harness {
        /// Posts a body; the answer must be well formed: JSON, or the magic number's HTML 502.
        fn post(&self, route: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
            let url = format!("{}{route}", self.sandbox.base_url());
            let (status, content_type, text) = self.runtime.block_on(async {
                let response = self
                    .http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("authorization", "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=")
                    .header("x-device-identifier", "d")
                    .header("client_id", "sandbox-client")
                    .header("client_secret", "sandbox-secret")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
                (status, content_type, response.text().await.unwrap())
            });
            if status == 502 {
                prop_assert_eq!(content_type.as_deref(), Some("text/html"));
            } else if status == 500 && content_type.as_deref() == Some("text/plain") {
                // iServeU and AOPay's magic 9000000003.
            } else {
                prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{} {}: {}", route, status, text);
            }
            prop_assert!([200, 400, 401, 413, 429, 500, 502].contains(&status), "{}: {}", route, status);
            Ok(())
        }
    }

    fn fixtures() -> [Value; 4] {
        [
            serde_json::json!({"request": "eyJtZXJjaGFudElkIjoiU0FOREJPWE1FUkNIQU5UIiwibW9iaWxlTnVtYmVyIjoiOTg3NjU0MzIxMCJ9"}),
            serde_json::json!({"phone": "9876543210", "scopes": ["paytm"]}),
            serde_json::json!({"otpType": "2", "customerMobileNumber": "9876543210", "username": "sandboxuser",
                               "ovdType": "AADHAAR", "externalRefNumber": "REF123456", "requestedAmount": "10"}),
            serde_json::json!({"RegistrationID": "AOP-SANDBOX", "MobileNumber": "9876543210", "BeneID": "B1",
                               "Txntype": "IMPS", "Amount": "1", "Pincode": "560001", "Address": "a",
                               "DOB": "20/08/1990", "Latitude": "1", "Longitute": "1"}),
        ]
    }

    #[test]
    fn arbitrary_and_mutated_requests_get_well_formed_answers() {
        let harness = harness();
        let config = ProptestConfig { cases: 1_000, ..ProptestConfig::default() };
        let strategy = (
            any::<prop::sample::Index>(),
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<prop::sample::Index>(),
            json_value(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        );
        proptest::test_runner::TestRunner::new(config)
            .run(&strategy, |(route, bytes, field, junk, flips)| {
                let i = route.index(ROUTES.len());
                let route = ROUTES[i];
                harness.post(route, bytes)?;
                // A valid body with one field's value of the wrong type.
                let mut body = fixtures()[i].clone();
                let object = body.as_object_mut().unwrap();
                let key = object.keys().nth(field.index(object.len())).cloned().unwrap();
                object.insert(key, junk);
                harness.post(route, body.to_string().into_bytes())?;
                // A valid body with bytes flipped.
                let mut bytes = fixtures()[i].to_string().into_bytes();
                for (at, byte) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                harness.post(route, bytes)
            })
            .unwrap();
        // Still up, and still right.
        let health = harness.runtime.block_on(async {
            harness.http.get(format!("{}/__sandbox/health", harness.sandbox.base_url())).send().await
        });
        assert_eq!(health.unwrap().status(), 200);
    }
}
