//! PhonePe "Verify OTP and link" against a local mock: exact signed bytes, every code of
//! docs/gateways/verify.md, the credential kept secret, never retried.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_core::{Environment, ErrorKind, HttpOptions, OtpCode, Outcome, Reached, RetryPolicy, SecretString};
use otp_phonepe::{PhonePeClient, VerifyOtpRequest};
use wiremock::matchers::{any, body_string, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SALT_KEY: &str = "4f2a7e0c-1b3d-4c5e-9a8b-2d6f0e1c3b5a";
const TOKEN: &str = "OTP7c8d7de8-5d16-46b7-a269-45afeafb5f8e";
// Computed outside Rust (Python's base64 and hashlib):
// {"merchantId":"MERCHANTUAT","otpToken":"OTP7c8d7de8-5d16-46b7-a269-45afeafb5f8e","otp":"123456"}
const VERIFY_B64: &str = "eyJtZXJjaGFudElkIjoiTUVSQ0hBTlRVQVQiLCJvdHBUb2tlbiI6Ik9UUDdjOGQ3ZGU4LTVkMTYtNDZiNy1hMjY5LTQ1YWZlYWZiNWY4ZSIsIm90cCI6IjEyMzQ1NiJ9";
// sha256(VERIFY_B64 + "/v3/merchant/otp/verify" + SALT_KEY), salt index 1
const VERIFY_X_VERIFY: &str = "014c63af5dacc2576e748070ee6aaf59b815022854b7651099689f9d77d9af4d###1";
const SUCCESS: &str = r#"{"success":true,"code":"SUCCESS","message":"Your request has been successfully completed.","data":{"merchantId":"MERCHANTUAT","userAuthToken":"UAT-secret-7c8d"}}"#;

fn client(base: &str, http: HttpOptions) -> PhonePeClient {
    PhonePeClient::builder()
        .merchant_id("MERCHANTUAT")
        .salt_key(SALT_KEY)
        .salt_index(1)
        .environment(Environment::Custom(base.to_owned()))
        .http(http)
        .build()
        .unwrap()
}

fn request() -> VerifyOtpRequest {
    VerifyOtpRequest::new(SecretString::new(TOKEN), OtpCode::parse("123456").unwrap())
}

#[tokio::test]
async fn sends_the_signed_verify_payload_and_keeps_the_credential_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/merchant/otp/verify"))
        .and(header("content-type", "application/json"))
        .and(header("x-verify", VERIFY_X_VERIFY))
        .and(header("x-device-id", "device-0042"))
        .and(body_string(format!(r#"{{"request":"{VERIFY_B64}"}}"#)))
        .respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS))
        .expect(1)
        .mount(&server)
        .await;
    let receipt =
        client(&server.uri(), HttpOptions::default()).verify_otp(&request().device_id("device-0042")).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::Verified);
    assert_eq!((receipt.provider_code.as_str(), receipt.http_status), ("SUCCESS", 200));
    assert_eq!(receipt.credential.as_ref().map(SecretString::expose_secret), Some("UAT-secret-7c8d"));
    let debug = format!("{receipt:?} {:?}", request());
    assert!(!debug.contains("UAT-secret") && !debug.contains("123456") && !debug.contains(TOKEN), "{debug}");
}

#[tokio::test]
async fn no_device_id_unless_given_and_success_without_a_token_is_unexpected() {
    let server = MockServer::start().await;
    Mock::given(header_exists("x-device-id")).respond_with(ResponseTemplate::new(599)).expect(0).mount(&server).await;
    Mock::given(path("/v3/merchant/otp/verify"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"success":true,"code":"SUCCESS","data":{}}"#))
        .expect(1)
        .mount(&server)
        .await;
    let error = client(&server.uri(), HttpOptions::default()).verify_otp(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedResponse, "{error}");
}

#[tokio::test]
async fn every_verify_code_maps_as_verify_md_says() {
    // (code, HTTP status, kind, retryable), written from docs/gateways/verify.md, not from the table.
    let failures = [
        ("OTP_VERIFY_FAILED", 200, ErrorKind::WrongOtp, false),
        ("OTP_EXPIRED", 200, ErrorKind::OtpExpired, false),
        ("OTP_ALREADY_VERIFIED", 200, ErrorKind::OtpExpired, false),
        ("INVALID_OTP_TOKEN", 200, ErrorKind::OtpExpired, false),
        ("OTP_LIMIT_EXCEEDED", 200, ErrorKind::RateLimited, false),
        ("TOO_MANY_REQUESTS", 429, ErrorKind::RateLimited, true),
        ("USER_BLACKLISTED", 200, ErrorKind::Blocked, false),
        ("USER_BLOCKED", 200, ErrorKind::Blocked, false),
        ("AUTHORIZATION_FAILED", 401, ErrorKind::Authentication, false),
        ("BAD_REQUEST", 400, ErrorKind::InvalidRequest, false),
        ("INVALID_DEVICE_ID", 400, ErrorKind::InvalidRequest, false),
        ("INTERNAL_SERVER_ERROR", 500, ErrorKind::ProviderUnavailable, true),
    ];
    assert_eq!(otp_phonepe::VERIFY_CODES.entries().len(), failures.len() + 1, "and SUCCESS");
    let server = MockServer::start().await;
    let client = client(&server.uri(), HttpOptions::default());
    for (code, status, kind, retryable) in failures {
        server.reset().await;
        let body = format!(r#"{{"success":false,"code":"{code}","message":"m-{code}","data":{{}}}}"#);
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        let error = client.verify_otp(&request()).await.unwrap_err();
        assert_eq!((error.kind(), error.is_retryable()), (kind, retryable), "{code}");
        assert_eq!((error.provider_code(), error.http_status()), (Some(code), Some(status)), "{code}");
        assert_eq!(error.reached_provider(), Reached::Yes);
    }
}

#[tokio::test]
async fn a_verify_is_never_retried_even_when_the_policy_would() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_string(r#"{"success":false,"code":"TOO_MANY_REQUESTS","message":"slow down"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let http = HttpOptions::default().retry(RetryPolicy::safe(3));
    let error = client(&server.uri(), http).verify_otp(&request()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn a_verify_request_is_checked_before_sending() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = client(&server.uri(), HttpOptions::default());
    let code = || OtpCode::parse("123456").unwrap();
    for bad in [
        VerifyOtpRequest::new(SecretString::new("OTP\u{1}x"), code()),
        VerifyOtpRequest::new(SecretString::new(""), code()),
        VerifyOtpRequest::new(SecretString::new(TOKEN), code()).device_id("d".repeat(65)),
    ] {
        let error = client.verify_otp(&bad).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
    }
    use otp_core::operation::Request;
    let send = otp_phonepe::SendOtpRequest::new("9876543210".parse().unwrap());
    assert_eq!(Request::mobile(&send).map(otp_core::MobileNumber::expose_digits), Some("9876543210"));
    assert!(Request::mobile(&request()).is_none(), "a verify carries no number");
}

#[tokio::test]
async fn an_invalid_verify_is_refused_by_validate_and_never_reaches_phonepe() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS)).mount(&server).await;
    let client = client(&server.uri(), HttpOptions::default());
    for invalid in
        [request().device_id("d".repeat(65)), VerifyOtpRequest::new("t\n".into(), OtpCode::parse("1234").unwrap())]
    {
        let refused = invalid.validate().unwrap_err();
        assert_eq!((refused.kind(), refused.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
        let error = client.verify_otp(&invalid).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
        assert_eq!(error.gateway(), Some(otp_core::Gateway::PhonePe));
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached PhonePe");
}
