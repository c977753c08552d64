//! iServeU DMT-lite "send OTP" against a local mock: both OTP types, every rule and code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_core::operation::Operation as _;
use otp_core::{Environment, ErrorKind, IdentityNumber, MobileNumber, Outcome, Reached};
use otp_iserveu::{IServeUClient, SendOtpRequest};
use wiremock::matchers::{any, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "1s3rv3u-s3cr3t";
const AADHAAR: &str = "765386439745";
const SUCCESS: &str = r#"{"status":"SUCCESS","statusCode":"0","statusDesc":"OTP Sent Successfully.","paramA":" ","paramB":" ","paramC":" "}"#;

fn client(base: &str) -> IServeUClient {
    IServeUClient::builder()
        .client_id("client-42")
        .client_secret(SECRET)
        .username("isutestapi1")
        .environment(Environment::Custom(base.to_owned()))
        .build()
        .unwrap()
}

fn mobile() -> MobileNumber {
    MobileNumber::parse("8144094480").unwrap()
}

fn registration() -> SendOtpRequest {
    SendOtpRequest::registration(mobile(), "Aadhaar Card", IdentityNumber::new(AADHAAR))
}

fn transaction() -> SendOtpRequest {
    SendOtpRequest::transaction(mobile(), "Aadhaar Card", "1432452", "1001")
}

async fn mock(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
    server
}

#[tokio::test]
async fn a_registration_otp_on_the_wire() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/common/dmt-lite/unified/otp/send"))
        .and(header("client_id", "client-42"))
        .and(header("client_secret", SECRET))
        .and(header("content-type", "application/json"))
        .and(body_string(format!(
            r#"{{"customerMobileNumber":"8144094480","username":"isutestapi1","otpType":"1","ovdType":"Aadhaar Card","ovdData":"{AADHAAR}"}}"#
        )))
        .respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = client(&server.uri()).send_otp(&registration()).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::Sent);
    assert_eq!(receipt.provider_code, "0");
    assert!(receipt.reference.is_none(), "no externalRefNumber was sent");
}

#[tokio::test]
async fn a_transaction_otp_with_every_optional_field_on_the_wire() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/common/dmt-lite/unified/otp/send"))
        .and(body_string(
            r#"{"customerMobileNumber":"8144094480","externalRefNumber":"1432452","requestedAmount":"1001","username":"override1","otpType":"2","latLong":"28.6090,77.2362","publicIP":"2001:db8::1","ovdType":"Aadhaar Card","ovdData":"765386439745","paramA":"a","paramC":"c"}"#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS))
        .expect(1)
        .mount(&server)
        .await;
    let request = transaction()
        .ovd_data(IdentityNumber::new(AADHAAR))
        .username("override1")
        .lat_long("28.6090", "77.2362")
        .public_ip("2001:db8::1")
        .params(Some("a".into()), None, Some("c".into()));
    let receipt = client(&server.uri()).send_otp(&request).await.unwrap();
    assert_eq!(receipt.reference.unwrap().expose_secret(), "1432452", "the reference is the one sent");
}

#[tokio::test]
async fn every_code_and_odd_answer() {
    let cases = [
        (200, r#"{"status":"FAILED","statusCode":"-1","statusDesc":"Requested Amount Must Not be EMPTY Or Only Number Allowed"}"#, ErrorKind::InvalidRequest, Some("-1")),
        (200, r#"{"status":"FAILED","statusCode":"1","statusDesc":"Failed to send OTP"}"#, ErrorKind::Rejected, Some("1")),
        (200, r#"{"status":"FAILED","statusCode":"7","statusDesc":"new"}"#, ErrorKind::Rejected, Some("7")),
        (200, r#"{"status":"FAILED","statusCode":-1}"#, ErrorKind::InvalidRequest, Some("-1")),
        (500, "Internal Server Error", ErrorKind::ProviderUnavailable, None),
        (404, "", ErrorKind::Rejected, None),
        (200, r#"{"status":"SUCCESS"}"#, ErrorKind::UnexpectedResponse, None),
        // The seed's own sample: commas missing, not JSON.
        (200, "{\n\"status\": \"SUCCESS\", \"statusCode\": \"0\", \"statusDesc\": \"OTP Sent Successfully.\" \"paramA\": \" \", \"paramB\": \" \", \"paramC\": \" \" }", ErrorKind::UnexpectedResponse, None),
        (200, "{\n\"status\": \"FAILED\", \"statusCode\": \"1\", \"statusDesc\": \"Failed to send OTP\" \"paramA\": \"\", \"paramB\": \"\", \"paramC\": \"\" }", ErrorKind::UnexpectedResponse, None),
    ];
    for (status, body, kind, code) in cases {
        let server = mock(status, body).await;
        let error = client(&server.uri()).send_otp(&transaction()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{body}");
        assert_eq!(error.provider_code(), code, "{body}");
    }
    assert_eq!(otp_iserveu::CODES.entries().len(), 3);
}

#[tokio::test]
async fn every_validation_rule_refuses_before_sending() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = client(&server.uri());
    let tx = |reference: &str, amount: &str| SendOtpRequest::transaction(mobile(), "Aadhaar Card", reference, amount);
    let invalid = [
        tx("12345", "100"),                   // reference under 6
        tx("12345678901234567890123", "100"), // reference over 22
        tx("ref 123", "100"),
        tx("1432452", ""),
        tx("1432452", "0"),
        tx("1432452", "-5"),
        tx("1432452", "12a"),
        tx("1432452", "1e3"),
        SendOtpRequest::transaction(mobile(), "", "1432452", "100"),
        SendOtpRequest::registration(mobile(), "Aadhaar Card", IdentityNumber::new("")),
        registration().registration_ref("abc"),
        transaction().lat_long("91", "77"),
        transaction().lat_long("28.6", "181"),
        transaction().lat_long("north", "77"),
        transaction().public_ip("192.168.1"),
        transaction().public_ip("localhost"),
        transaction().username(""),
        transaction().params(Some("x\u{0}".into()), None, None),
    ];
    for request in invalid {
        let error = client.send_otp(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{request:?}");
        assert_eq!(error.reached_provider(), Reached::No);
    }
    let no_username = IServeUClient::builder()
        .client_id("c")
        .client_secret("s")
        .environment(Environment::Custom(server.uri()))
        .build()
        .unwrap();
    let error = no_username.send_otp(&transaction()).await.unwrap_err();
    assert!(error.is_configuration() && error.to_string().contains("username"), "{error}");
}

#[tokio::test]
async fn production_needs_an_explicit_base_url() {
    let error = IServeUClient::builder()
        .client_id("c")
        .client_secret("s")
        .environment(Environment::Production)
        .build()
        .unwrap_err();
    assert!(error.is_configuration());
    assert!(error.to_string().contains("no production host"), "{error}");
}

#[tokio::test]
async fn ovd_data_and_the_secret_are_redacted() {
    let server = mock(200, r#"{"status":"FAILED","statusCode":"1","statusDesc":"Failed to send OTP"}"#).await;
    let client = client(&server.uri());
    let request = registration();
    let wire = client.wire_request(&request).unwrap();
    let error = client.send_otp(&request).await.unwrap_err();
    let texts =
        [format!("{client:?}"), format!("{request:?}"), format!("{wire:?}"), format!("{error:?}"), format!("{error}")];
    for text in texts {
        assert!(!text.contains(AADHAAR) && !text.contains(SECRET) && !text.contains("8144094480"), "{text}");
    }
    assert!(format!("{request:?}").contains("XXXX-XXXX-9745"));
}
