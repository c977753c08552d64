//! iServeU "process customer registration" (the call that consumes a registration OTP)
//! against a local mock: exact headers and body, every code, never retried.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_core::{Coordinates, Environment, ErrorKind, MobileNumber, OtpCode, Outcome};
use otp_iserveu::{CompleteRegistrationRequest, IServeUClient};
use wiremock::matchers::{any, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "1s3rv3u-s3cr3t";

fn client(base: &str) -> IServeUClient {
    IServeUClient::builder()
        .client_id("client-42")
        .client_secret(SECRET)
        .username("isutestapi1")
        .environment(Environment::Custom(base.to_owned()))
        .build()
        .unwrap()
}

fn request() -> CompleteRegistrationRequest {
    CompleteRegistrationRequest::new(
        MobileNumber::parse("8144094480").unwrap(),
        OtpCode::parse("123456").unwrap(),
        "Asha Rao",
    )
}

#[tokio::test]
async fn sends_every_field_as_a_string_with_the_client_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/common/dmt-lite/unified/customer/process-customer-registration"))
        .and(header("client_id", "client-42"))
        .and(header("client_secret", SECRET))
        .and(header("content-type", "application/json"))
        .and(body_string(
            r#"{"mobileNumber":"8144094480","otp":"123456","name":"Asha Rao","username":"override1","latlong":"28.6090,77.2362","publicIP":"203.0.113.10"}"#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":"SUCCESS","statusCode":"0","statusDesc":"Customer Registered Successfully."}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let request = request()
        .username("override1")
        .coordinates(Coordinates::new("28.6090", "77.2362").unwrap())
        .public_ip([203, 0, 113, 10].into());
    let receipt = client(&server.uri()).complete_registration(&request).await.unwrap();
    assert_eq!((receipt.outcome, receipt.provider_code.as_str()), (Outcome::Verified, "0"));
    assert!(receipt.credential.is_none());
    assert!(!format!("{request:?}").contains("123456"), "the code is redacted");
}

#[tokio::test]
async fn failures_keep_their_code_and_description() {
    let server = MockServer::start().await;
    let client = client(&server.uri());
    for (code, description) in [("-1", "Invalid OTP"), ("1", "Registration failed"), ("9", "new")] {
        server.reset().await;
        let body = format!(r#"{{"status":"FAILED","statusCode":"{code}","statusDesc":"{description}"}}"#);
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .expect(1)
            .mount(&server)
            .await;
        let error = client.complete_registration(&request()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Rejected, "{code}");
        assert_eq!((error.provider_code(), error.provider_message()), (Some(code), Some(description)));
    }
    assert_eq!(otp_iserveu::VERIFY_CODES.entries().len(), 3);
}

#[tokio::test]
async fn a_blank_name_is_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let blank = CompleteRegistrationRequest::new(
        MobileNumber::parse("8144094480").unwrap(),
        OtpCode::parse("1234").unwrap(),
        " ",
    );
    let error = client(&server.uri()).complete_registration(&blank).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
}
