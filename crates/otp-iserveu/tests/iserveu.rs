//! iServeU DMT-lite "send OTP" against a local mock: both OTP types, every rule and code. And the second step.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp_core::operation::Operation as _;
use otp_core::{Amount, Coordinates, Environment, ErrorKind, IdentityNumber, MobileNumber, OtpCode, Outcome, Reached};
use otp_iserveu::{
    CompleteRegistrationRequest, IServeUClient, RegistrationOtpRequest, SendOtpRequest, TransactionOtpRequest,
};
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

fn registration() -> RegistrationOtpRequest {
    RegistrationOtpRequest::new(mobile(), "Aadhaar Card", IdentityNumber::new(AADHAAR))
}

fn transaction() -> TransactionOtpRequest {
    TransactionOtpRequest::new(mobile(), "Aadhaar Card", "1432452", Amount::parse("1001").unwrap())
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
    let receipt = client(&server.uri()).send_otp(&registration().into()).await.unwrap();
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
        .coordinates(Coordinates::new("28.6090", "77.2362").unwrap())
        .public_ip("2001:db8::1".parse().unwrap())
        .params(Some("a".into()), None, Some("c".into()));
    let receipt = client(&server.uri()).send_otp(&request.into()).await.unwrap();
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
        let error = client(&server.uri()).send_otp(&transaction().into()).await.unwrap_err();
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
    let tx = |reference: &str| {
        TransactionOtpRequest::new(mobile(), "Aadhaar Card", reference, Amount::parse("100").unwrap())
    };
    // Amounts, coordinates and IP addresses are refused when they are made: no such request exists.
    for amount in ["", "0", "-5", "12a", "1e3"] {
        assert_eq!(Amount::parse(amount).unwrap_err().reached_provider(), Reached::No, "{amount}");
    }
    for (lat, long) in [("91", "77"), ("28.6", "181"), ("north", "77")] {
        assert_eq!(Coordinates::new(lat, long).unwrap_err().kind(), ErrorKind::InvalidRequest, "{lat},{long}");
    }
    for ip in ["192.168.1", "localhost"] {
        assert!(ip.parse::<std::net::IpAddr>().is_err(), "{ip}");
    }
    let invalid: [SendOtpRequest; 8] = [
        tx("12345").into(),                   // reference under 6
        tx("12345678901234567890123").into(), // reference over 22
        tx("ref 123").into(),
        TransactionOtpRequest::new(mobile(), "", "1432452", Amount::parse("100").unwrap()).into(),
        RegistrationOtpRequest::new(mobile(), "Aadhaar Card", IdentityNumber::new("")).into(),
        registration().external_ref("abc").into(),
        transaction().username("").into(),
        transaction().params(Some("x\u{0}".into()), None, None).into(),
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
    let error = no_username.send_otp(&transaction().into()).await.unwrap_err();
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
    let request: SendOtpRequest = registration().into();
    let wire = client.wire_request(&request).unwrap();
    let error = client.send_otp(&request).await.unwrap_err();
    let texts =
        [format!("{client:?}"), format!("{request:?}"), format!("{wire:?}"), format!("{error:?}"), format!("{error}")];
    for text in texts {
        assert!(!text.contains(AADHAAR) && !text.contains(SECRET) && !text.contains("8144094480"), "{text}");
    }
    assert!(format!("{request:?}").contains("XXXX-XXXX-9745"));
}

// ------------------------------------------------------------------ the second step

fn verify_request() -> CompleteRegistrationRequest {
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
    let request = verify_request()
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
        let error = client.complete_registration(&verify_request()).await.unwrap_err();
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

#[test]
fn the_answer_parsers_never_panic() {
    use otp_core::http::RawResponse;
    use otp_core::test_util::answer_parser_never_panics;
    let client = client("http://127.0.0.1:9");
    let answer = |status: u16, body: &[u8]| RawResponse::new(status, Default::default(), body.to_vec().into());
    let send: SendOtpRequest = transaction().into();
    answer_parser_never_panics("iserveu send", otp_iserveu::EXAMPLES, |status, body| {
        client.decode(&send, &answer(status, body))
    });
    answer_parser_never_panics("iserveu registration", otp_iserveu::VERIFY_EXAMPLES, |status, body| {
        client.decode(&verify_request(), &answer(status, body))
    });
}

#[tokio::test]
async fn references_params_and_the_requests_number_are_checked_exactly() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS)).mount(&server).await;
    let client = client(&server.uri());
    let send = |request: TransactionOtpRequest| {
        let client = client.clone();
        async move { client.send_otp(&request.into()).await }
    };
    // A reference with a character other than letters, digits, - and _ (any one is enough).
    for bad in ["REF.12345", "REF 12345", "REF/12345"] {
        let request = TransactionOtpRequest::new(mobile(), "Aadhaar Card", bad, Amount::parse("1").unwrap());
        assert_eq!(send(request).await.unwrap_err().kind(), ErrorKind::InvalidRequest, "{bad}");
    }
    assert!(send(TransactionOtpRequest::new(mobile(), "Aadhaar Card", "REF-123_45", Amount::parse("1").unwrap()))
        .await
        .is_ok());
    // paramA: 256 characters pass, 257 do not, and one control character fails however short.
    assert!(send(transaction().params(Some("p".repeat(256)), None, None)).await.is_ok());
    let long = send(transaction().params(Some("p".repeat(257)), None, None)).await.unwrap_err();
    assert_eq!(long.kind(), ErrorKind::InvalidRequest);
    let control = send(transaction().params(None, None, Some("a\u{7}".into()))).await.unwrap_err();
    assert_eq!(control.kind(), ErrorKind::InvalidRequest);
    // The number the span shows is the request's.
    let request: SendOtpRequest = transaction().into();
    assert_eq!(request.mobile().expose_digits(), "8144094480");
    assert_eq!(otp_core::operation::Request::mobile(&request).map(MobileNumber::expose_digits), Some("8144094480"));
    let registration = verify_request();
    assert_eq!(
        otp_core::operation::Request::mobile(&registration).map(MobileNumber::expose_digits),
        Some("8144094480")
    );
}

#[tokio::test]
async fn every_request_type_is_checked_by_validate_and_none_invalid_reaches_iserveu() {
    use otp_core::operation::Request;
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS)).mount(&server).await;
    let client = client(&server.uri());
    let long_user = "u".repeat(65);
    let registration = registration().username(long_user.as_str());
    let transaction = transaction().params(Some("p".repeat(257)), None, None);
    let completion = verify_request().username(long_user.as_str());
    let blank_name = CompleteRegistrationRequest::new(mobile(), OtpCode::parse("1234").unwrap(), "\t");
    let checks: [(&str, Result<(), otp_core::Error>); 5] = [
        ("registration", Request::validate(&registration)),
        ("transaction", Request::validate(&transaction)),
        ("send", Request::validate(&SendOtpRequest::from(transaction.clone()))),
        ("completion", Request::validate(&completion)),
        ("blank name", Request::validate(&blank_name)),
    ];
    for (what, checked) in checks {
        let error = checked.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{what}");
    }
    for send in [SendOtpRequest::from(registration), transaction.into()] {
        let error = client.send_otp(&send).await.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
    }
    for verify in [completion, blank_name] {
        let error = client.complete_registration(&verify).await.unwrap_err();
        assert_eq!((error.kind(), error.gateway()), (ErrorKind::InvalidRequest, Some(otp_core::Gateway::IServeU)));
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached iServeU");
    // The valid ones pass the same checks.
    Request::validate(&SendOtpRequest::from(registration_valid())).unwrap();
    Request::validate(&verify_request().username("u".repeat(64))).unwrap();
}

fn registration_valid() -> RegistrationOtpRequest {
    registration().external_ref("REG-123456").params(Some("a".into()), None, None)
}

/// What the HTTP path records for each send (its number, masked in a span) and what a log of a
/// completion shows: the number masked, never the code or the customer's name.
#[test]
fn each_send_names_its_number_and_a_completion_shows_neither_code_nor_name() {
    use otp_core::operation::Request;
    assert_eq!(Request::mobile(&registration()), Some(&mobile()));
    assert_eq!(Request::mobile(&transaction()), Some(&mobile()));
    let completion = CompleteRegistrationRequest::new(mobile(), OtpCode::parse("4321").unwrap(), "Asha Rao");
    let debug = format!("{completion:?}");
    assert!(debug.starts_with("CompleteRegistrationRequest { mobile: "), "{debug}");
    assert!(debug.contains("name: \"[redacted]\"") && debug.contains("XXXXXX4480"), "{debug}");
    assert!(!debug.contains("Asha") && !debug.contains("4321") && !debug.contains("8144094480"), "{debug}");
}

/// Feature `serde`: a stored request comes back only through its checks.
#[cfg(feature = "serde")]
mod stored {
    use super::*;

    fn full_transaction() -> TransactionOtpRequest {
        transaction()
            .ovd_data(IdentityNumber::new(AADHAAR))
            .username("override1")
            .coordinates(Coordinates::new("28.6090", "77.2362").unwrap())
            .public_ip("2001:db8::1".parse().unwrap())
            .params(Some("a".into()), None, Some("c".into()))
    }

    #[test]
    fn valid_requests_of_both_types_round_trip() {
        for request in [SendOtpRequest::from(full_transaction()), registration_valid().into(), registration().into()] {
            let json = serde_json::to_string(&request).unwrap();
            let back: SendOtpRequest = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
            assert_eq!(back.external_ref(), request.external_ref());
        }
        let json = serde_json::to_string(&registration_valid()).unwrap();
        let back: RegistrationOtpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn a_field_iserveu_would_refuse_is_refused_by_serde() {
        let transaction = serde_json::to_value(SendOtpRequest::from(full_transaction())).unwrap();
        let registration = serde_json::to_value(SendOtpRequest::from(registration_valid())).unwrap();
        let cases: [(&serde_json::Value, &[&str], serde_json::Value, &str); 6] = [
            (
                &transaction,
                &["Transaction", "external_ref"],
                "R".repeat(23).into(),
                "external reference must be 6 to 22",
            ),
            (&transaction, &["Transaction", "ovd_type"], "t".repeat(65).into(), "OVD type must be at most 64"),
            (
                &transaction,
                &["Transaction", "optional", "username"],
                "u".repeat(65).into(),
                "username must be at most 64",
            ),
            (&transaction, &["Transaction", "optional", "params"], serde_json::json!([null, "p\u{7}", null]), "paramB"),
            (&registration, &["Registration", "ovd_data"], "9".repeat(65).into(), "OVD data must be"),
            (&registration, &["Registration", "external_ref"], "REF".into(), "external reference must be 6 to 22"),
        ];
        for (valid, path, value, says) in cases {
            let mut stored = valid.clone();
            let (last, parents) = path.split_last().unwrap();
            let field = parents.iter().fold(&mut stored, |value, key| &mut value[*key]);
            field[*last] = value;
            let error = serde_json::from_value::<SendOtpRequest>(stored).unwrap_err();
            assert!(error.to_string().contains(says), "{path:?}: {error}");
        }
    }
}
