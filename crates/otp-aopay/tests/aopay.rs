//! AOPay "Transaction Send OTP" against a local mock: exact keys, both code spellings, code 0. And the second step.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_aopay::{AOPayClient, DateOfBirth, RegisterRemitterRequest, Remitter, SendOtpRequest, TransactionType};
use otp_core::operation::Operation as _;
use otp_core::{
    Amount, Coordinates, Environment, Error, ErrorKind, MobileNumber, OtpCode, Outcome, Pincode, Reached, SecretString,
};
use wiremock::matchers::{any, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base: &str) -> AOPayClient {
    AOPayClient::builder().registration_id("AOP-554").environment(Environment::Custom(base.to_owned())).build().unwrap()
}

/// The documented sample's fields, any of which a test may replace.
#[derive(Clone, Copy)]
struct Fields {
    beneficiary_id: &'static str,
    transaction_type: TransactionType,
    amount: &'static str,
    pincode: &'static str,
    address: &'static str,
    latitude: &'static str,
    longitude: &'static str,
}

const SAMPLE: Fields = Fields {
    beneficiary_id: "60600077",
    transaction_type: TransactionType::Imps,
    amount: "100",
    pincode: "110045",
    address: "Delhi",
    latitude: "28.6090",
    longitude: "77.2362",
};

fn build(f: Fields) -> Result<SendOtpRequest, Error> {
    let remitter = Remitter::new(
        f.address,
        Pincode::parse(f.pincode)?,
        DateOfBirth::parse("20/08/2000")?,
        Coordinates::new(f.latitude, f.longitude)?,
    )?;
    let mobile = MobileNumber::parse("9900000088")?;
    SendOtpRequest::new(mobile, f.beneficiary_id, f.transaction_type, Amount::parse(f.amount)?, remitter)
}

fn request() -> SendOtpRequest {
    build(SAMPLE).unwrap()
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
    let neft = build(Fields { transaction_type: TransactionType::Neft, ..SAMPLE }).unwrap();
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
    for dob in ["31/02/2000", "2000-08-20", "20/8/2000", "01/01/2999", "01/01/1850"] {
        assert_eq!(DateOfBirth::parse(dob).unwrap_err().kind(), ErrorKind::InvalidRequest, "{dob}");
    }
    assert!("UPI".parse::<TransactionType>().is_err());
    assert_eq!("imps".parse::<TransactionType>().unwrap(), TransactionType::Imps);
    // Invalid fields are refused when the request is made: no invalid request can reach send_otp.
    let invalid = [
        Fields { pincode: "11004", ..SAMPLE },
        Fields { pincode: "011004", ..SAMPLE },
        Fields { amount: "-100", ..SAMPLE },
        Fields { amount: "0", ..SAMPLE },
        Fields { amount: "abc", ..SAMPLE },
        Fields { beneficiary_id: "", ..SAMPLE },
        Fields { beneficiary_id: "60 600", ..SAMPLE },
        Fields { address: " ", ..SAMPLE },
        Fields { latitude: "95", ..SAMPLE },
        Fields { longitude: "east", ..SAMPLE },
    ];
    for fields in invalid {
        let error = build(fields).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
        assert_eq!(error.reached_provider(), Reached::No);
    }
    assert!(AOPayClient::builder().build().unwrap_err().to_string().contains("registration id"));
}

// ------------------------------------------------------------------ the second step

fn verify_request() -> RegisterRemitterRequest {
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
    let receipt = client(&server.uri()).register_remitter(&verify_request().kyc_id("KYC77")).await.unwrap();
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
    client(&server.uri()).register_remitter(&verify_request()).await.unwrap();
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
        let error = client.register_remitter(&verify_request()).await.unwrap_err();
        assert_eq!((error.kind(), error.provider_code()), (kind, Some(code)), "{body}");
    }
    assert_eq!(otp_aopay::VERIFY_CODES.entries().len(), 2);
}

#[test]
fn the_answer_parsers_never_panic() {
    use otp_core::http::RawResponse;
    use otp_core::test_util::answer_parser_never_panics;
    let client = client("http://127.0.0.1:9");
    let answer = |status: u16, body: &[u8]| RawResponse::new(status, Default::default(), body.to_vec().into());
    answer_parser_never_panics("aopay send", otp_aopay::EXAMPLES, |status, body| {
        client.decode(&request(), &answer(status, body))
    });
    answer_parser_never_panics("aopay register", otp_aopay::VERIFY_EXAMPLES, |status, body| {
        client.decode(&verify_request(), &answer(status, body))
    });
}

#[test]
fn values_rules_and_debug_of_the_aopay_types() {
    assert_eq!("neft".parse::<TransactionType>().unwrap(), TransactionType::Neft);
    assert_eq!("IMPS".parse::<TransactionType>().unwrap(), TransactionType::Imps);
    // 1900 and today are the first and last valid birth years/dates.
    assert!(DateOfBirth::parse("01/01/1900").is_ok());
    assert!(DateOfBirth::parse("31/12/1899").is_err());
    let today = otp_core::Date::today_utc();
    let today = format!("{:02}/{:02}/{}", today.day(), today.month(), today.year());
    assert!(DateOfBirth::parse(&today).is_ok(), "{today}");
    let dob = DateOfBirth::parse("20/08/2000").unwrap();
    assert_eq!(format!("{dob:?}"), "DateOfBirth(Date { year: 2000, month: 8, day: 20 })");
    let remitter = build(SAMPLE).unwrap();
    assert!(format!("{remitter:?}").contains("remitter: Remitter { .. }"), "{remitter:?}");
    // The registration id: letters, digits and -, at most 32.
    let with = |id: &str| AOPayClient::builder().registration_id(id).build().map(drop);
    assert!(with(&"A".repeat(32)).is_ok() && with("AOP-554").is_ok());
    for bad in [&"A".repeat(33), "AOP 554", "AOP_554"] {
        assert!(with(bad).unwrap_err().is_configuration(), "{bad}");
    }
    assert_eq!(request().mobile().expose_digits(), "9900000088");
    assert_eq!(otp_core::operation::Request::mobile(&request()).map(MobileNumber::expose_digits), Some("9900000088"));
    assert_eq!(
        otp_core::operation::Request::mobile(&verify_request()).map(MobileNumber::expose_digits),
        Some("9900000088")
    );
}

#[tokio::test]
async fn an_invalid_register_remitter_is_refused_by_validate_and_never_reaches_aopay() {
    use otp_core::operation::Request;
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let client = client(&server.uri());
    let mobile = || MobileNumber::parse("9900000088").unwrap();
    let code = || OtpCode::parse("482913").unwrap();
    let invalid = [
        RegisterRemitterRequest::new(mobile(), code(), SecretString::new("s".repeat(65))),
        RegisterRemitterRequest::new(mobile(), code(), SecretString::new(" ")),
        verify_request().kyc_id("k".repeat(65)),
        verify_request().kyc_id("k\u{0}"),
    ];
    for request in invalid {
        let refused = Request::validate(&request).unwrap_err();
        assert_eq!((refused.kind(), refused.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
        let error = client.register_remitter(&request).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
        assert_eq!(error.gateway(), Some(otp_core::Gateway::AOPay));
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached AOPay");
    Request::validate(&verify_request().kyc_id("KYC-1")).unwrap();
    Request::validate(&request()).unwrap();
}

/// Feature `serde`: a stored request comes back only through its checks.
#[cfg(feature = "serde")]
mod stored {
    use super::*;

    #[test]
    fn a_valid_request_round_trips() {
        let request = build(Fields { transaction_type: TransactionType::Neft, ..SAMPLE }).unwrap();
        let json = serde_json::to_string(&request).unwrap();
        let back: SendOtpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.mobile().expose_digits(), "9900000088");
    }

    #[test]
    fn a_field_aopay_would_refuse_is_refused_by_serde() {
        let valid = serde_json::to_value(request()).unwrap();
        let cases: [(&[&str], serde_json::Value, &str); 5] = [
            (&["beneficiary_id"], "6".repeat(40).into(), "beneficiary id must be at most 32"),
            (&["beneficiary_id"], "60 600".into(), "beneficiary id may contain only letters and digits"),
            (&["remitter", "address"], "a".repeat(201).into(), "address must be at most 200"),
            (&["remitter", "date_of_birth"], "31/02/2000".into(), "date of birth"),
            (&["amount"], "-5".into(), "amount"),
        ];
        for (path, value, says) in cases {
            let mut stored = valid.clone();
            let (last, parents) = path.split_last().unwrap();
            let field = parents.iter().fold(&mut stored, |value, key| &mut value[*key]);
            field[*last] = value;
            let error = serde_json::from_value::<SendOtpRequest>(stored).unwrap_err();
            assert!(error.to_string().contains(says), "{path:?}: {error}");
        }
        // A remitter alone is checked too.
        let mut remitter = valid["remitter"].clone();
        remitter["address"] = "\n".into();
        assert!(serde_json::from_value::<Remitter>(remitter).is_err());
    }
}
