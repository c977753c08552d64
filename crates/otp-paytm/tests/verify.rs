//! Paytm "Validate OTP" against a local mock: exact headers, query and body; every code of
//! verify.md; the access token as the credential.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use base64::Engine as _;
use otp_core::{Environment, ErrorKind, OtpCode, Outcome, Reached, SecretString};
use otp_paytm::{PaytmClient, VerifyOtpRequest};
use wiremock::matchers::{any, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "p4ytm-cl13nt-s3cr3t";
const STATE_TOKEN: &str = "65cb6680-29f6-11e4-aad2-3c970ea8b87f";

fn client(base: &str) -> PaytmClient {
    PaytmClient::builder()
        .client_id("merchant-client")
        .client_secret(SECRET)
        .environment(Environment::Custom(base.to_owned()))
        .build()
        .unwrap()
}

fn request() -> VerifyOtpRequest {
    VerifyOtpRequest::new(SecretString::new(STATE_TOKEN), OtpCode::parse("654321").unwrap(), "8c4afbfab1ae0bd4")
        .unwrap()
}

#[tokio::test]
async fn sends_exact_headers_query_and_body_and_reads_the_access_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v4/signin/validate/otp/sv1"))
        .and(query_param("locale", "en-IN"))
        .and(header("content-type", "application/json"))
        .and(header("x-device-identifier", "8c4afbfab1ae0bd4"))
        .and(body_string(format!(r#"{{"state_token":"{STATE_TOKEN}","otp":"654321"}}"#)))
        .and(|request: &Request| {
            // Decode the Basic credentials independently of the client.
            let value = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            let decoded = value
                .strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default();
            decoded == format!("merchant-client:{SECRET}").as_bytes()
        })
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"SUCCESS","message":"Success","responseCode":"BE1400001","tokens":{"access_token":"sso-9f2c","refresh_token":"r-1","scope":"paytm"},"encryptedUserId":"e-1"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = client(&server.uri()).verify_otp(&request()).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::Verified);
    assert_eq!(receipt.credential.as_ref().map(SecretString::expose_secret), Some("sso-9f2c"));
    assert!(!format!("{receipt:?}").contains("sso-9f2c"));
}

#[tokio::test]
async fn a_success_without_a_string_access_token_has_no_credential() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"SUCCESS","responseCode":"BE1400001","tokens":{"access_token":{"nested":true}}}"#,
        ))
        .mount(&server)
        .await;
    let receipt = client(&server.uri()).verify_otp(&request()).await.unwrap();
    assert!(receipt.credential.is_none());
}

#[test]
fn a_paytm_otp_is_exactly_six_digits() {
    let token = || SecretString::new(STATE_TOKEN);
    for code in ["1234", "12345678"] {
        let error = VerifyOtpRequest::new(token(), OtpCode::parse(code).unwrap(), "d").unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{code}");
    }
}

#[tokio::test]
async fn every_verify_code_maps_as_verify_md_says() {
    let failures = [
        ("403", 200, ErrorKind::WrongOtp),
        ("1006", 200, ErrorKind::OtpExpired),
        ("434", 400, ErrorKind::InvalidRequest),
        ("BE1423005", 401, ErrorKind::Authentication),
        ("BE1423011", 200, ErrorKind::OtpExpired),
        ("BE1423012", 400, ErrorKind::InvalidRequest),
        ("BE1423013", 400, ErrorKind::InvalidRequest),
        ("BE1425004", 200, ErrorKind::RateLimited),
        // Not in the table: the gateways.md rule (status fallback, else rejected, code kept).
        ("BE1999999", 200, ErrorKind::Rejected),
        ("BE1999998", 503, ErrorKind::ProviderUnavailable),
    ];
    assert_eq!(otp_paytm::VERIFY_CODES.entries().len(), 9);
    let server = MockServer::start().await;
    let client = client(&server.uri());
    for (code, status, kind) in failures {
        server.reset().await;
        let body = format!(r#"{{"status":"FAILURE","message":"m","responseCode":"{code}"}}"#);
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        let error = client.verify_otp(&request()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{code}");
        assert!(!error.is_retryable() || kind == ErrorKind::ProviderUnavailable, "{code}");
        assert_eq!(error.provider_code(), Some(code));
    }
}
