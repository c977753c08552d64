//! Paytm "Send OTP API" against a local mock: exact headers, query and body; every code. And the second step.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use base64::Engine as _;
use otp_core::operation::Operation as _;
use otp_core::{Environment, ErrorKind, MobileNumber, OtpCode, Outcome, Reached, SecretString};
use otp_paytm::{PaytmClient, SendOtpRequest, VerifyOtpRequest};
use wiremock::matchers::{any, body_string, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "p4ytm-cl13nt-s3cr3t";

fn client(base: &str) -> PaytmClient {
    PaytmClient::builder()
        .client_id("merchant-client")
        .client_secret(SECRET)
        .environment(Environment::Custom(base.to_owned()))
        .build()
        .unwrap()
}

fn request() -> SendOtpRequest {
    SendOtpRequest::new(MobileNumber::parse("+91 77777 77777").unwrap(), "8c4afbfab1ae0bd4").scope("paytm")
}

const SUCCESS: &str = r#"{"status":"SUCCESS","message":"OTP sent to phone","responseCode":"BE1400001","state_token":"65cb6680-29f6-11e4-aad2-3c970ea8b87f"}"#;

#[tokio::test]
async fn sends_exact_headers_query_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v4/signin/otp/sv1/"))
        .and(query_param("locale", "en-IN"))
        .and(header("content-type", "application/json"))
        .and(header("x-device-identifier", "8c4afbfab1ae0bd4"))
        .and(header("autoReadHash", "FA+9qCX9VSu"))
        .and(body_string(r#"{"phone":"7777777777","scopes":["paytm","wallet"]}"#))
        .and(|request: &Request| {
            // Decode the Basic credentials independently of the client.
            let value = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            let decoded = value
                .strip_prefix("Basic ")
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok());
            decoded.as_deref() == Some("merchant-client:p4ytm-cl13nt-s3cr3t")
        })
        .respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS))
        .expect(1)
        .mount(&server)
        .await;
    let receipt =
        client(&server.uri()).send_otp(&request().scope("wallet").auto_read_hash("FA+9qCX9VSu")).await.unwrap();
    assert_eq!(receipt.outcome, Outcome::Sent);
    assert_eq!(receipt.provider_code, "BE1400001");
    assert_eq!(receipt.reference.unwrap().expose_secret(), "65cb6680-29f6-11e4-aad2-3c970ea8b87f");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].url.query(), Some("locale=en-IN"), "exactly the locale, nothing else");
}

#[tokio::test]
async fn no_auto_read_hash_header_unless_given() {
    let server = MockServer::start().await;
    Mock::given(header_exists("autoReadHash")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_string(SUCCESS)).expect(1).mount(&server).await;
    client(&server.uri()).send_otp(&request()).await.unwrap();
}

#[tokio::test]
async fn every_documented_code_maps_as_gateways_md_says() {
    // Written from docs/gateways/README.md, not from the generated table.
    let cases = [
        ("434", 400, ErrorKind::InvalidRequest, false),
        ("BE1423005", 401, ErrorKind::Authentication, false),
        ("BE1423006", 403, ErrorKind::Authentication, false),
        ("BE1423012", 400, ErrorKind::InvalidRequest, false),
        ("BE1424001", 200, ErrorKind::Blocked, false),
        ("BE1425004", 200, ErrorKind::RateLimited, false),
        ("BE1425005", 403, ErrorKind::Authentication, false),
        ("BE1425006", 200, ErrorKind::RateLimited, false),
        ("BE1426003", 500, ErrorKind::ProviderUnavailable, true),
        ("BE1426011", 200, ErrorKind::Blocked, false),
        ("BE1499999", 200, ErrorKind::Rejected, false),
        ("BE1499999", 503, ErrorKind::ProviderUnavailable, true),
    ];
    assert_eq!(otp_paytm::CODES.entries().len(), 11, "ten failures and the success");
    for (code, status, kind, retryable) in cases {
        let server = MockServer::start().await;
        let body = format!(r#"{{"status":"FAILURE","message":"m","responseCode":"{code}"}}"#);
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        let error = client(&server.uri()).send_otp(&request()).await.unwrap_err();
        assert_eq!((error.kind(), error.is_retryable()), (kind, retryable), "{code} {status}");
        assert_eq!(error.provider_code(), Some(code));
        assert_eq!(error.http_status(), Some(status));
    }
}

#[tokio::test]
async fn non_json_and_odd_answers_are_typed() {
    let cases = [
        (200, "OTP sent", ErrorKind::UnexpectedResponse),
        (401, "Unauthorized", ErrorKind::Authentication),
        (429, "", ErrorKind::RateLimited),
        (200, r#"{"status":"SUCCESS","responseCode":"BE1400001"}"#, ErrorKind::UnexpectedResponse),
        (200, r#"{"responseCode":1400001}"#, ErrorKind::UnexpectedResponse),
    ];
    for (status, body, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        let error = client(&server.uri()).send_otp(&request()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{status} {body}");
    }
}

#[tokio::test]
async fn invalid_input_makes_no_request() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = client(&server.uri());
    let mobile = MobileNumber::parse("7777777777").unwrap();
    let invalid = [
        SendOtpRequest::new(mobile, "device"),
        SendOtpRequest::new(mobile, "").scope("paytm"),
        SendOtpRequest::new(mobile, "dev\nice").scope("paytm"),
        SendOtpRequest::new(mobile, "device").scope(""),
        SendOtpRequest::new(mobile, "device").scope("paytm").locale("english"),
        SendOtpRequest::new(mobile, "device").scope("paytm").auto_read_hash("hash\r\nX-Injected: 1"),
    ];
    for request in invalid {
        let error = client.send_otp(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{request:?}");
        assert_eq!(error.reached_provider(), Reached::No);
    }
}

#[tokio::test]
async fn the_secret_and_basic_value_appear_in_no_debug_or_error() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"status":"FAILURE","responseCode":"BE1423005"}"#))
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("merchant-client:{SECRET}"));
    let wire = client.wire_request(&request()).unwrap();
    let error = client.send_otp(&request()).await.unwrap_err();
    for text in [format!("{client:?}"), format!("{wire:?}"), format!("{error:?}"), format!("{error}")] {
        assert!(!text.contains(SECRET) && !text.contains(&basic) && !text.contains("7777777777"), "{text}");
    }
    let error = PaytmClient::builder().build().unwrap_err();
    assert!(error.to_string().contains("client id, client secret"), "{error}");
}

// ------------------------------------------------------------------ the second step

const STATE_TOKEN: &str = "65cb6680-29f6-11e4-aad2-3c970ea8b87f";

fn verify_request() -> VerifyOtpRequest {
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
    let receipt = client(&server.uri()).verify_otp(&verify_request()).await.unwrap();
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
    let receipt = client(&server.uri()).verify_otp(&verify_request()).await.unwrap();
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
        // Not in the table: the docs/gateways/README.md rule (status fallback, else rejected, code kept).
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
        let error = client.verify_otp(&verify_request()).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{code}");
        assert!(!error.is_retryable() || kind == ErrorKind::ProviderUnavailable, "{code}");
        assert_eq!(error.provider_code(), Some(code));
    }
}

#[test]
fn the_answer_parsers_never_panic() {
    use otp_core::http::RawResponse;
    use otp_core::test_util::answer_parser_never_panics;
    let client = client("http://127.0.0.1:9");
    let answer = |status: u16, body: &[u8]| RawResponse::new(status, Default::default(), body.to_vec().into());
    answer_parser_never_panics("paytm send", otp_paytm::EXAMPLES, |status, body| {
        client.decode(&request(), &answer(status, body))
    });
    answer_parser_never_panics("paytm verify", otp_paytm::VERIFY_EXAMPLES, |status, body| {
        client.decode(&verify_request(), &answer(status, body))
    });
}

#[tokio::test]
async fn locales_and_verify_requests_are_checked_before_sending() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let client = client(&server.uri());
    // Each rule of the en-IN shape fails on its own.
    for bad in ["en-INX", "en_IN", "EN-IN", "en-in", "e1-IN"] {
        let error = client.send_otp(&request().locale(bad)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{bad}");
        let error = client.verify_otp(&verify_request().locale(bad)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "verify {bad}");
    }
    let bad_device =
        VerifyOtpRequest::new(SecretString::new(STATE_TOKEN), OtpCode::parse("654321").unwrap(), "dév").unwrap();
    assert_eq!(client.verify_otp(&bad_device).await.unwrap_err().kind(), ErrorKind::InvalidRequest);
    let no_token = VerifyOtpRequest::new(SecretString::new(" "), OtpCode::parse("654321").unwrap(), "d").unwrap();
    assert_eq!(client.verify_otp(&no_token).await.unwrap_err().reached_provider(), Reached::No);
    assert_eq!(request().mobile().expose_digits(), "7777777777");
    assert_eq!(otp_core::operation::Request::mobile(&request()).map(MobileNumber::expose_digits), Some("7777777777"));
}

#[tokio::test]
async fn the_access_token_is_read_only_as_a_string_inside_an_object_the_last_one_winning() {
    let server = MockServer::start().await;
    let client = client(&server.uri());
    for (tokens, credential) in [
        (r#"{"refresh_token":"r","access_token":"first","access_token":"last"}"#, Some("last")),
        (r#"{"access_token":"a\/b"}"#, Some("a/b")),
        (r#"{"access_token":""}"#, None),
        (r#"{"access_token":12345}"#, None),
        (r#"{"access_token":null}"#, None),
        (r#""access_token""#, None),
        (r#"["access_token"]"#, None),
        ("7", None),
        ("null", None),
    ] {
        server.reset().await;
        let body = format!(r#"{{"status":"SUCCESS","responseCode":"BE1400001","tokens":{tokens}}}"#);
        Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_string(body)).mount(&server).await;
        let receipt = client.verify_otp(&verify_request()).await.unwrap();
        assert_eq!(receipt.credential.as_ref().map(SecretString::expose_secret), credential, "{tokens}");
    }
}

#[tokio::test]
async fn an_invalid_request_is_refused_by_validate_and_never_reaches_paytm() {
    use otp_core::operation::Request as _;
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let client = client(&server.uri());
    let long_device = "d".repeat(200);
    let send = SendOtpRequest::new(MobileNumber::parse("7777777777").unwrap(), long_device.as_str()).scope("paytm");
    let refused = otp_core::operation::Request::validate(&send).unwrap_err();
    assert_eq!((refused.kind(), refused.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
    assert_eq!(send.validate().unwrap_err().to_string(), refused.to_string(), "the same check without the trait");
    let error = client.send_otp(&send).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
    let verify =
        VerifyOtpRequest::new(SecretString::new(STATE_TOKEN), OtpCode::parse("654321").unwrap(), long_device).unwrap();
    assert_eq!(verify.validate().unwrap_err().kind(), ErrorKind::InvalidRequest);
    let error = client.verify_otp(&verify).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
    assert_eq!(error.gateway(), Some(otp_core::Gateway::Paytm));
    assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached Paytm");
}

/// Feature `serde`: a stored request comes back only through its checks.
#[cfg(feature = "serde")]
mod stored {
    use super::*;

    #[test]
    fn a_valid_request_round_trips() {
        let request = request().scope("wallet").auto_read_hash("FA+9qCX9VSu").locale("hi-IN");
        let json = serde_json::to_string(&request).unwrap();
        let back: SendOtpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!((back.device_identifier(), back.locale_param()), ("8c4afbfab1ae0bd4", "hi-IN"));
    }

    #[test]
    fn a_field_paytm_would_refuse_is_refused_by_serde() {
        let valid = serde_json::to_value(request()).unwrap();
        for (field, value, says) in [
            ("device_identifier", serde_json::Value::from("d".repeat(200)), "device identifier must be at most 128"),
            ("scopes", serde_json::json!([]), "at least one scope"),
            ("scopes", serde_json::json!(["s".repeat(65)]), "scope must be at most 64"),
            ("auto_read_hash", "h".repeat(65).into(), "auto-read hash must be at most 64"),
            ("locale", "english".into(), "locale must look like en-IN"),
        ] {
            let mut stored = valid.clone();
            stored[field] = value;
            let error = serde_json::from_value::<SendOtpRequest>(stored).unwrap_err();
            assert!(error.to_string().contains(says), "{field}: {error}");
        }
    }
}
