//! AOPay "RegisterRemitter" (the call that consumes a sent-for-registration OTP) against a
//! local mock: exact keys in their order, both code spellings, never retried.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_aopay::{AOPayClient, RegisterRemitterRequest};
use otp_core::{Environment, ErrorKind, MobileNumber, OtpCode, Outcome, SecretString};
use wiremock::matchers::{any, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base: &str) -> AOPayClient {
    AOPayClient::builder().registration_id("AOP-554").environment(Environment::Custom(base.to_owned())).build().unwrap()
}

fn request() -> RegisterRemitterRequest {
    RegisterRemitterRequest::new(
        MobileNumber::parse("9900000088").unwrap(),
        OtpCode::parse("482913").unwrap(),
        SecretString::new("465185569"),
    )
}

#[tokio::test]
async fn sends_the_documented_keys_with_mobile_number_and_reads_code_one() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/AOP/DMTV1/RegisterRemitter"))
        .and(header("content-type", "application/json"))
        .and(body_string(
            r#"{"MobileNumber":"9900000088","OTP":"482913","Stateresp":"465185569","KycId":"KYC77","RegistrationID":"AOP-554"}"#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":true,"response_code":1,"message":"Remitter registered successfully.","data":{"fname":"Ravi","lname":"Kumar","mobile":"9900000088","status":"Active","limit":"25000"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = client(&server.uri()).register_remitter(&request().kyc_id("KYC77")).await.unwrap();
    assert_eq!((receipt.outcome, receipt.provider_code.as_str()), (Outcome::Verified, "1"));
}

#[tokio::test]
async fn no_kyc_id_unless_given() {
    let server = MockServer::start().await;
    Mock::given(body_string(
        r#"{"MobileNumber":"9900000088","OTP":"482913","Stateresp":"465185569","RegistrationID":"AOP-554"}"#,
    ))
    .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"status":true,"response_code":1,"message":"ok"}"#))
    .expect(1)
    .mount(&server)
    .await;
    client(&server.uri()).register_remitter(&request()).await.unwrap();
}

#[tokio::test]
async fn authentication_in_both_spellings_and_other_codes_rejected() {
    let server = MockServer::start().await;
    let client = client(&server.uri());
    let cases = [
        (
            401,
            r#"{"status":false,"responsecode":11,"message":"Authentication failed"}"#,
            ErrorKind::Authentication,
            "11",
        ),
        (
            401,
            r#"{"status":false,"response_code":11,"message":"Authentication failed"}"#,
            ErrorKind::Authentication,
            "11",
        ),
        (200, r#"{"status":false,"response_code":3,"message":"Invalid OTP"}"#, ErrorKind::Rejected, "3"),
    ];
    for (status, body, kind, code) in cases {
        server.reset().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .expect(1)
            .mount(&server)
            .await;
        let error = client.register_remitter(&request()).await.unwrap_err();
        assert_eq!((error.kind(), error.provider_code()), (kind, Some(code)), "{body}");
    }
    assert_eq!(otp_aopay::VERIFY_CODES.entries().len(), 2);
}
