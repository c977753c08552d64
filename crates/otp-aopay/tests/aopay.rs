//! AOPay "Transaction Send OTP" against a local mock: exact keys, both code spellings, code 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_aopay::{AOPayClient, DateOfBirth, SendOtpRequest, TransactionType};
use otp_core::operation::Operation as _;
use otp_core::{Environment, ErrorKind, MobileNumber, Outcome, Reached};
use wiremock::matchers::{any, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base: &str) -> AOPayClient {
    AOPayClient::builder().registration_id("AOP-554").environment(Environment::Custom(base.to_owned())).build().unwrap()
}

fn request() -> SendOtpRequest {
    SendOtpRequest {
        mobile: MobileNumber::parse("9900000088").unwrap(),
        beneficiary_id: "60600077".into(),
        transaction_type: TransactionType::Imps,
        amount: "100".into(),
        pincode: "110045".into(),
        address: "Delhi".into(),
        date_of_birth: DateOfBirth::parse("20/08/2000").unwrap(),
        latitude: "28.6090".into(),
        longitude: "77.2362".into(),
    }
}

async fn mock(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
    server
}

#[tokio::test]
async fn all_ten_keys_as_documented_with_longitute_misspelt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/AOP/DMTV1/TransactionSendOtp"))
        .and(header("content-type", "application/json"))
        .and(body_string(
            r#"{"MobileNumber":"9900000088","BeneID":"60600077","Txntype":"IMPS","Amount":"100","Pincode":"110045","Address":"Delhi","DOB":"20/08/2000","Latitude":"28.6090","Longitute":"77.2362","RegistrationID":"AOP-554"}"#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"status":true,"response_code":1,"message":"OTP has been send to the remitter mobile number.","stateresp":"465185569","Status":"True","Value":"OTP has been send to the remitter mobile number."}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = client(&server.uri()).send_otp(&request()).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::Sent);
    assert_eq!(receipt.provider_code, "1");
    assert_eq!(receipt.reference.unwrap().expose_secret(), "465185569");
    let neft = SendOtpRequest { transaction_type: TransactionType::Neft, ..request() };
    let body = String::from_utf8(client(&server.uri()).wire_request(&neft).unwrap().body().to_vec()).unwrap();
    assert!(body.contains(r#""Txntype":"NEFT""#) && !body.contains("Longitude"), "{body}");
}

#[tokio::test]
async fn code_zero_is_sent_for_registration_not_a_failure() {
    let server = mock(
        200,
        r#"{"status":false,"response_code":0,"stateresp":"b3c1e519-cf15-4145-8c26-c3d03e9d2f00","message":"Remitter not registered OTP sent for new registration."}"#,
    )
    .await;
    let receipt = client(&server.uri()).send_otp(&request()).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::SentForRegistration);
    assert_eq!(receipt.reference.unwrap().expose_secret(), "b3c1e519-cf15-4145-8c26-c3d03e9d2f00");
    assert_eq!(receipt.message.as_deref(), Some("Remitter not registered OTP sent for new registration."));
}

#[tokio::test]
async fn authentication_in_both_spellings_and_other_codes() {
    let cases = [
        (
            401,
            r#"{"response_code":11,"status":false,"message":"Authentication failed"}"#,
            ErrorKind::Authentication,
            Some("11"),
        ),
        (
            401,
            r#"{"responsecode":11,"status":false,"message":"Authentication failed"}"#,
            ErrorKind::Authentication,
            Some("11"),
        ),
        (200, r#"{"status":false,"response_code":2,"message":"Invalid beneficiary"}"#, ErrorKind::Rejected, Some("2")),
        (200, r#"{"status":false,"response_code":"5","message":"?"}"#, ErrorKind::Rejected, Some("5")),
        (401, "Unauthorized", ErrorKind::Authentication, None),
        (500, "", ErrorKind::ProviderUnavailable, None),
        (
            200,
            r#"{"status":true,"response_code":1,"message":"no stateresp"}"#,
            ErrorKind::UnexpectedResponse,
            Some("1"),
        ),
    ];
    for (status, body, kind, code) in cases {
        let server = mock(status, body).await;
        let error = client(&server.uri()).send_otp(&request()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{body}");
        assert_eq!(error.provider_code(), code, "{body}");
        assert_eq!(error.http_status(), Some(status));
    }
}

#[tokio::test]
async fn invalid_input_makes_no_request() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = client(&server.uri());
    for dob in ["31/02/2000", "2000-08-20", "20/8/2000", "01/01/2999", "01/01/1850"] {
        assert_eq!(DateOfBirth::parse(dob).unwrap_err().kind(), ErrorKind::InvalidRequest, "{dob}");
    }
    assert!("UPI".parse::<TransactionType>().is_err());
    assert_eq!("imps".parse::<TransactionType>().unwrap(), TransactionType::Imps);
    let invalid = [
        SendOtpRequest { pincode: "11004".into(), ..request() },
        SendOtpRequest { pincode: "011004".into(), ..request() },
        SendOtpRequest { amount: "-100".into(), ..request() },
        SendOtpRequest { amount: "0".into(), ..request() },
        SendOtpRequest { amount: "abc".into(), ..request() },
        SendOtpRequest { beneficiary_id: "".into(), ..request() },
        SendOtpRequest { beneficiary_id: "60 600".into(), ..request() },
        SendOtpRequest { address: " ".into(), ..request() },
        SendOtpRequest { latitude: "95".into(), ..request() },
        SendOtpRequest { longitude: "east".into(), ..request() },
    ];
    for request in invalid {
        let error = client.send_otp(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{request:?}");
        assert_eq!(error.reached_provider(), Reached::No);
    }
    assert!(AOPayClient::builder().build().unwrap_err().to_string().contains("registration id"));
}
