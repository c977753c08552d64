//! PhonePe "Trigger OTP" against a local mock: exact wire bytes, every code, failure paths.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_core::operation::Operation as _;
use otp_core::{Environment, ErrorKind, HttpOptions, MobileNumber, Outcome, Reached};
use otp_phonepe::{PhonePeClient, RequestType, SendOtpRequest};
use wiremock::matchers::{any, body_string, header, header_exists, method, path, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SALT_KEY: &str = "4f2a7e0c-1b3d-4c5e-9a8b-2d6f0e1c3b5a";
// Computed outside Rust (Python's base64 and hashlib) from the payloads in the comments.
// {"merchantId":"MERCHANTUAT","mobileNumber":"9876543210","email":"nishant@example.com","shortName":"Nishant Mittal","requestType":"WALLET"}
const FULL_B64: &str = "eyJtZXJjaGFudElkIjoiTUVSQ0hBTlRVQVQiLCJtb2JpbGVOdW1iZXIiOiI5ODc2NTQzMjEwIiwiZW1haWwiOiJuaXNoYW50QGV4YW1wbGUuY29tIiwic2hvcnROYW1lIjoiTmlzaGFudCBNaXR0YWwiLCJyZXF1ZXN0VHlwZSI6IldBTExFVCJ9";
const FULL_X_VERIFY_INDEX_7: &str = "6aaf6b573de304180cfd4ef838251de4a533447f5dab2518a45132fae860a4b1###7";
// {"merchantId":"MERCHANTUAT","mobileNumber":"9876543210"}
const MINIMAL_B64: &str = "eyJtZXJjaGFudElkIjoiTUVSQ0hBTlRVQVQiLCJtb2JpbGVOdW1iZXIiOiI5ODc2NTQzMjEwIn0=";
const MINIMAL_X_VERIFY_INDEX_1: &str = "da7247a38e400cdc25c08a2a254b69bcac1c0422b3593bed8f90f549fe8d84e0###1";

fn client(base: &str, salt_index: u32) -> PhonePeClient {
    PhonePeClient::builder()
        .merchant_id("MERCHANTUAT")
        .salt_key(SALT_KEY)
        .salt_index(salt_index)
        .environment(Environment::Custom(base.to_owned()))
        .build()
        .unwrap()
}

fn minimal() -> SendOtpRequest {
    SendOtpRequest::new(MobileNumber::parse("+91 98765 43210").unwrap())
}

fn success_body() -> &'static str {
    r#"{"success":true,"code":"SUCCESS","message":"Your request has been successfully completed.","data":{"merchantId":"MERCHANTUAT","otpToken":"OTP7c8d7de8-5d16-46b7-a269-45afeafb5f8e"}}"#
}

#[tokio::test]
async fn sends_the_signed_payload_with_every_optional_field() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/merchant/otp/send"))
        .and(query_param_is_missing("locale"))
        .and(header("content-type", "application/json"))
        .and(header("x-verify", FULL_X_VERIFY_INDEX_7))
        .and(header("x-device-id", "device-0042"))
        .and(body_string(format!(r#"{{"request":"{FULL_B64}"}}"#)))
        .respond_with(ResponseTemplate::new(200).set_body_string(success_body()))
        .expect(1)
        .mount(&server)
        .await;
    let request = minimal()
        .email("nishant@example.com")
        .short_name("Nishant Mittal")
        .request_type(RequestType::Wallet)
        .device_id("device-0042");
    let receipt = client(&server.uri(), 7).send_otp(&request).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::Sent);
    assert_eq!(receipt.provider_code, "SUCCESS");
    assert_eq!(receipt.http_status, 200);
    assert_eq!(receipt.message.as_deref(), Some("Your request has been successfully completed."));
    let token = receipt.reference.clone().unwrap();
    assert_eq!(token.expose_secret(), "OTP7c8d7de8-5d16-46b7-a269-45afeafb5f8e");
    assert!(!format!("{receipt:?}").contains("OTP7c8d7de8"), "the otpToken stays out of Debug");
}

#[tokio::test]
async fn sends_only_the_required_keys_when_nothing_optional_is_given() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/merchant/otp/send"))
        .and(header("x-verify", MINIMAL_X_VERIFY_INDEX_1))
        .and(body_string(format!(r#"{{"request":"{MINIMAL_B64}"}}"#)))
        .respond_with(ResponseTemplate::new(200).set_body_string(success_body()))
        .expect(1)
        .mount(&server)
        .await;
    // No X-DEVICE-ID unless given.
    Mock::given(header_exists("x-device-id")).respond_with(ResponseTemplate::new(599)).expect(0).mount(&server).await;
    client(&server.uri(), 1).send_otp(&minimal()).await.unwrap();
}

#[tokio::test]
async fn a_custom_base_with_a_prefix_still_hashes_the_api_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gateways/phonepe/v3/merchant/otp/send"))
        .and(header("x-verify", MINIMAL_X_VERIFY_INDEX_1))
        .respond_with(ResponseTemplate::new(200).set_body_string(success_body()))
        .expect(1)
        .mount(&server)
        .await;
    client(&format!("{}/gateways/phonepe", server.uri()), 1).send_otp(&minimal()).await.unwrap();
}

#[tokio::test]
async fn every_documented_code_maps_as_gateways_md_says() {
    // (code, HTTP status, kind, retryable), written from docs/gateways/README.md, not from the table.
    let failures = [
        ("AUTHORIZATION_FAILED", 401, ErrorKind::Authentication, false),
        ("BAD_REQUEST", 400, ErrorKind::InvalidRequest, false),
        ("INTERNAL_SERVER_ERROR", 500, ErrorKind::ProviderUnavailable, true),
        ("USER_BLACKLISTED", 200, ErrorKind::Blocked, false),
        ("USER_BLOCKED", 200, ErrorKind::Blocked, false),
        ("OTP_LIMIT_EXCEEDED", 200, ErrorKind::RateLimited, false),
        ("TOO_MANY_REQUESTS", 429, ErrorKind::RateLimited, true),
        // The code decides whatever the status.
        ("USER_BLOCKED", 500, ErrorKind::Blocked, false),
    ];
    let documented: Vec<&str> = otp_phonepe::CODES.entries().iter().map(|e| e.code).collect();
    assert_eq!(documented.len(), 8);
    for (code, ..) in &failures {
        assert!(documented.contains(code), "{code} is in spec/codes.toml");
    }
    for (code, status, kind, retryable) in failures {
        let server = MockServer::start().await;
        let body = format!(r#"{{"success":false,"code":"{code}","message":"m-{code}"}}"#);
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        let error = client(&server.uri(), 1).send_otp(&minimal()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{code}");
        assert_eq!(error.is_retryable(), retryable, "{code}");
        assert_eq!(error.provider_code(), Some(code));
        assert_eq!(error.provider_message(), Some(format!("m-{code}").as_str()));
        assert_eq!(error.http_status(), Some(status));
        assert_eq!(error.reached_provider(), Reached::Yes);
    }
}

#[tokio::test]
async fn the_spec_examples_decode_to_their_documented_results() {
    for (code, status, body) in otp_phonepe::EXAMPLES {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(ResponseTemplate::new(*status).set_body_string(*body)).mount(&server).await;
        let result = client(&server.uri(), 1).send_otp(&minimal()).await;
        let entry = otp_phonepe::CODES.lookup(code).unwrap();
        match result {
            Ok(receipt) => assert_eq!(entry.result.as_str(), receipt.outcome.as_str(), "{code}"),
            Err(error) => assert_eq!(entry.result.as_str(), error.kind().as_str(), "{code}"),
        }
    }
}

#[tokio::test]
async fn odd_answers_are_typed() {
    let cases: [(u16, &str, ErrorKind); 6] = [
        (400, "{}", ErrorKind::InvalidRequest),
        (
            200,
            r#"{"success":true,"code":"SUCCESS","message":"ok","data":{"merchantId":"M"}}"#,
            ErrorKind::UnexpectedResponse,
        ),
        (200, r#"{"success":true,"code":"SUCCESS","data":null}"#, ErrorKind::UnexpectedResponse),
        (200, r#"{"success":false,"code":"SOMETHING_NEW","message":"?"}"#, ErrorKind::Rejected),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", ErrorKind::ProviderUnavailable),
        (200, r#"{"success":"yes","code":17}"#, ErrorKind::UnexpectedResponse),
    ];
    for (status, body, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        let error = client(&server.uri(), 1).send_otp(&minimal()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{status} {body}");
        assert_eq!(error.http_status(), Some(status));
    }
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"success":false,"code":"SOMETHING_NEW"}"#))
        .mount(&server)
        .await;
    let error = client(&server.uri(), 1).send_otp(&minimal()).await.unwrap_err();
    assert_eq!(error.provider_code(), Some("SOMETHING_NEW"), "an unknown code is kept verbatim");
}

#[tokio::test]
async fn invalid_input_makes_no_request() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = client(&server.uri(), 1);
    let invalid = [
        minimal().email("not-an-email"),
        minimal().email("a@b"),
        minimal().email("a b@example.com"),
        minimal().short_name(""),
        minimal().short_name("line\nbreak"),
        minimal().device_id("x".repeat(65)),
        minimal().device_id("dévice"),
        minimal().device_id(""),
    ];
    for request in invalid {
        let error = client.send_otp(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{request:?}");
        assert_eq!(error.reached_provider(), Reached::No);
    }
    minimal().device_id("x".repeat(64)).validate().unwrap();
}

#[tokio::test]
async fn configuration_is_checked_before_anything_is_sent() {
    let error = PhonePeClient::builder().build().unwrap_err();
    assert!(error.is_configuration());
    assert!(error.to_string().contains("merchant id, salt key, salt index"), "{error}");
    let zero = PhonePeClient::builder().merchant_id("M").salt_key("k").salt_index(0).build().unwrap_err();
    assert!(zero.to_string().contains("positive"), "{zero}");
    let http = PhonePeClient::builder()
        .merchant_id("M")
        .salt_key("k")
        .salt_index(1)
        .environment(Environment::Custom("http://phonepe.example.com".into()))
        .build()
        .unwrap_err();
    assert!(http.is_configuration());
    PhonePeClient::builder()
        .merchant_id("M")
        .salt_key("k")
        .salt_index(1)
        .environment(Environment::Custom("http://phonepe.example.com".into()))
        .http(HttpOptions::default().allow_insecure_http(true))
        .build()
        .unwrap();
    for environment in [Environment::Uat, Environment::Production] {
        PhonePeClient::builder().merchant_id("M").salt_key("k").salt_index(1).environment(environment).build().unwrap();
    }
}

#[tokio::test]
async fn the_salt_key_and_signature_appear_in_no_debug_or_error() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"success":false,"code":"AUTHORIZATION_FAILED"}"#))
        .mount(&server)
        .await;
    let builder = PhonePeClient::builder()
        .merchant_id("MERCHANTUAT")
        .salt_key(SALT_KEY)
        .salt_index(1)
        .environment(Environment::Custom(server.uri()));
    let client = builder.clone().build().unwrap();
    let request = minimal();
    let wire = client.wire_request(&request).unwrap();
    let error = client.send_otp(&request).await.unwrap_err();
    let texts = [
        format!("{builder:?}"),
        format!("{client:?}"),
        format!("{request:?}"),
        format!("{wire:?}"),
        format!("{error:?}"),
        format!("{error}"),
    ];
    for text in texts {
        for secret in [SALT_KEY, &MINIMAL_X_VERIFY_INDEX_1[..64], "9876543210"] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }
}

#[test]
fn the_merchant_id_rule_allows_letters_digits_underscore_and_hyphen_up_to_64() {
    let build = |merchant_id: &str| {
        PhonePeClient::builder().merchant_id(merchant_id).salt_key("k").salt_index(1).build().map(drop)
    };
    for ok in ["M", "MERCHANT_UAT-01", &"a".repeat(64), "m9"] {
        assert!(build(ok).is_ok(), "{ok:?} is a valid merchant id");
    }
    for bad in [&"a".repeat(65), "MERCHANT UAT", "MERCHANT/UAT", "MERCHANT.UAT", "MÉRCHANT", "M\"X"] {
        let error = build(bad).unwrap_err();
        assert!(error.is_configuration(), "{bad:?}: {error}");
        assert!(error.to_string().contains("letters, digits, _ and -"), "{bad:?}: {error}");
    }
}

#[test]
fn the_answer_parsers_never_panic() {
    use otp_core::http::RawResponse;
    use otp_core::test_util::answer_parser_never_panics;
    let client = client("http://127.0.0.1:9", 1);
    let answer = |status: u16, body: &[u8]| RawResponse::new(status, Default::default(), body.to_vec().into());
    answer_parser_never_panics("phonepe send", otp_phonepe::EXAMPLES, |status, body| {
        client.decode(&minimal(), &answer(status, body))
    });
    let verify = otp_phonepe::VerifyOtpRequest::new(
        otp_core::SecretString::new("OTPx"),
        otp_core::OtpCode::parse("123456").unwrap(),
    );
    answer_parser_never_panics("phonepe verify", otp_phonepe::VERIFY_EXAMPLES, |status, body| {
        client.decode(&verify, &answer(status, body))
    });
}

#[test]
fn validate_is_the_requests_one_check_and_wire_request_no_longer_repeats_it() {
    use otp_core::operation::Request;
    let long = minimal().device_id("x".repeat(65));
    let error = Request::validate(&long).unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
    assert!(error.to_string().contains("device id"), "{error}");
    // The inherent method is the same check, for callers without the trait in scope.
    assert_eq!(long.validate().unwrap_err().to_string(), error.to_string());
    Request::validate(&minimal().email("a@example.com").short_name("Asha").device_id("d-1")).unwrap();
    assert_eq!(Request::mobile(&minimal()).map(MobileNumber::expose_digits), Some("9876543210"));
}

/// Feature `serde`: a stored request comes back only through its checks.
#[cfg(feature = "serde")]
mod stored {
    use super::*;

    fn full() -> SendOtpRequest {
        minimal().email("asha@example.com").short_name("Asha Rao").request_type(RequestType::Credit).device_id("d-42")
    }

    #[test]
    fn a_valid_request_round_trips() {
        let json = serde_json::to_string(&full()).unwrap();
        let back: SendOtpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!((back.mobile().expose_digits(), back.device_id_header()), ("9876543210", Some("d-42")));
        let bare: SendOtpRequest = serde_json::from_str(&serde_json::to_string(&minimal()).unwrap()).unwrap();
        assert_eq!(bare.device_id_header(), None);
    }

    #[test]
    fn a_field_phonepe_would_refuse_is_refused_by_serde() {
        let valid = serde_json::to_value(full()).unwrap();
        for (field, value, says) in [
            ("device_id", "x".repeat(200), "device id must be at most 64 characters"),
            ("short_name", "n".repeat(101), "short name must be at most 100 characters"),
            ("email", "not-an-email".to_owned(), "email is not a valid address"),
        ] {
            let mut stored = valid.clone();
            stored[field] = value.into();
            let error = serde_json::from_value::<SendOtpRequest>(stored).unwrap_err();
            assert!(error.to_string().contains(says), "{field}: {error}");
        }
    }
}
