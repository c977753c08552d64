//! Never panic on input: the sandbox's request handling gets arbitrary bodies and headers on
//! every route, directly and over HTTP, and always answers well-formed. (Each gateway's answer
//! parsers have their property tests in their own crate: otp_core::test_util.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_core::test_util::json_value;
use proptest::prelude::*;
use serde_json::Value;

const CASES: u32 = 2_000;

/// One runtime for every case of the sandbox property test.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// The sandbox's checks directly (no socket), so each route — every gateway's send and
    /// second step, from the sandbox's own list — sees thousands of inputs.
    #[test]
    fn the_sandbox_answers_any_request(
        route in any::<prop::sample::Index>(),
        second_step in any::<bool>(),
        header in ".{0,80}",
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
    ) {
        let (_, send, verify) = otp_sandbox::ROUTES[route.index(otp_sandbox::ROUTES.len())];
        let path = if second_step { verify } else { send };
        let headers = [("x-verify", header.as_str()), ("authorization", header.as_str()), ("client_id", header.as_str())];
        let status = runtime().block_on(otp_sandbox::status_for_fuzzing(path, Some("locale=en-IN"), &headers, &body));
        prop_assert!(status.is_some_and(|s| [200, 400, 401, 429, 500, 502].contains(&s)), "{path}: {:?}", status);
    }
}

#[test]
fn the_sandbox_lists_a_route_pair_for_every_gateway() {
    let listed: Vec<otp::Gateway> = otp_sandbox::ROUTES.iter().map(|(gateway, _, _)| *gateway).collect();
    assert_eq!(listed, otp::Gateway::ALL);
}

mod sandbox_requests {
    //! The sandbox's request parsing, through its real HTTP front door.

    use super::*;
    use otp_core::reqwest;
    use otp_sandbox::{Sandbox, SandboxConfig};

    /// Every send route, with the valid body its mutations start from (one per gateway: a
    /// gateway without one fails to compile).
    fn send_route(gateway: otp::Gateway) -> (String, Value) {
        let send = otp_sandbox::ROUTES.iter().find(|(g, _, _)| *g == gateway).map(|(_, send, _)| *send).unwrap();
        let body = match gateway {
            otp::Gateway::PhonePe => {
                serde_json::json!({"request": "eyJtZXJjaGFudElkIjoiU0FOREJPWE1FUkNIQU5UIiwibW9iaWxlTnVtYmVyIjoiOTg3NjU0MzIxMCJ9"})
            }
            otp::Gateway::Paytm => serde_json::json!({"phone": "9876543210", "scopes": ["paytm"]}),
            otp::Gateway::IServeU => {
                serde_json::json!({"otpType": "2", "customerMobileNumber": "9876543210", "username": "sandboxuser",
                               "ovdType": "AADHAAR", "externalRefNumber": "REF123456", "requestedAmount": "10"})
            }
            otp::Gateway::AOPay => {
                serde_json::json!({"RegistrationID": "AOP-SANDBOX", "MobileNumber": "9876543210", "BeneID": "B1",
                               "Txntype": "IMPS", "Amount": "1", "Pincode": "560001", "Address": "a",
                               "DOB": "20/08/1990", "Latitude": "1", "Longitute": "1"})
            }
        };
        (format!("{send}?locale=en-IN"), body)
    }

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
                let (route, fixture) = send_route(otp::Gateway::ALL[route.index(otp::Gateway::ALL.len())]);
                let route = route.as_str();
                harness.post(route, bytes)?;
                // A valid body with one field's value of the wrong type.
                let mut body = fixture.clone();
                let object = body.as_object_mut().unwrap();
                let key = object.keys().nth(field.index(object.len())).cloned().unwrap();
                object.insert(key, junk);
                harness.post(route, body.to_string().into_bytes())?;
                // A valid body with bytes flipped.
                let mut bytes = fixture.to_string().into_bytes();
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
