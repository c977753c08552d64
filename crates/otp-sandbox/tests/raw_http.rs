//! The sandbox through raw HTTP built here, not through the gateway crates: every check, every
//! magic number, the limit, the inbox, and well-formed answers to malformed requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::time::{Duration, Instant};

use base64::Engine as _;
use otp_core::reqwest::{self, StatusCode};
use otp_core::Gateway;
use otp_sandbox::{PhonePeCredentials, Sandbox, SandboxConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PHONEPE: &str = "/v3/merchant/otp/send";
const PAYTM: &str = "/v4/signin/otp/sv1/";
const ISERVEU: &str = "/common/dmt-lite/unified/otp/send";
const AOPAY: &str = "/api/AOP/DMTV1/TransactionSendOtp";

struct Harness {
    sandbox: Sandbox,
    http: reqwest::Client,
}

/// What the tests that run every gateway need of one, written here from its documentation:
/// how to send, and what it answers. Each gateway's section below makes its own, and
/// [`every_fixture`] finds one for each of `Gateway::ALL`: a gateway without one fails them.
#[derive(Clone)]
struct Fixture {
    gateway: Gateway,
    /// The send's route, with the query it needs.
    send: String,
    /// A send to a number: its headers and body.
    request: fn(mobile: &str, credentials: Credentials) -> Request,
    /// Where an answer's code is (a JSON pointer).
    code: &'static str,
    /// The code of a send that went out.
    sent: Value,
    /// The code of the sixth send to a number inside the limit window (HTTP 200).
    limited: Value,
    /// The answers of 9000000001, 9000000002, 9000000003 and 9000000005: the status, and the
    /// code where the body is the gateway's JSON.
    magic: [(u16, Option<Value>); 4],
    /// The answer to a body that is not a JSON object, or not declared as JSON: status, code.
    malformed: (u16, Value),
}

/// The credentials a fixture's request carries.
#[derive(Clone, Copy)]
enum Credentials {
    /// The sandbox's defaults.
    Sandbox,
    /// Wrong ones: the gateway refuses them.
    Wrong,
}

/// A request's headers and body.
struct Request {
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// The makers of every fixture, one per gateway: the one line a gateway adds here.
const FIXTURES: [fn() -> Fixture; 4] = [phonepe_fixture, paytm_fixture, iserveu_fixture, aopay_fixture];

/// One fixture for each of `Gateway::ALL`, in its order.
fn every_fixture() -> Vec<Fixture> {
    Gateway::ALL
        .into_iter()
        .map(|gateway| {
            let mut found = FIXTURES.iter().map(|make| make()).filter(|fixture| fixture.gateway == gateway);
            let fixture = found.next().unwrap_or_else(|| panic!("no fixture for {gateway}: add one to FIXTURES"));
            assert!(found.next().is_none(), "two fixtures for {gateway}");
            fixture
        })
        .collect()
}

impl Fixture {
    /// The code of an answer, where the gateway puts it (null when it is not there).
    fn code_of(&self, answer: &Answer) -> Value {
        answer.json().pointer(self.code).cloned().unwrap_or(Value::Null)
    }
}

/// An answer: status, raw body, and the body as JSON when it is JSON.
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn harness() -> Harness {
    harness_with(SandboxConfig::default()).await
}

async fn harness_with(config: SandboxConfig) -> Harness {
    Harness { sandbox: Sandbox::start(config).await.unwrap(), http: reqwest::Client::new() }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Answer {
        let mut request = self.http.post(self.url(path)).header("content-type", "application/json").body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read_answer(request.send().await.unwrap()).await
    }

    /// A fixture's send to `mobile`.
    async fn send(&self, fixture: &Fixture, mobile: &str, credentials: Credentials) -> Answer {
        let request = (fixture.request)(mobile, credentials);
        let headers: Vec<(&str, &str)> = request.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        self.post(&fixture.send, &headers, request.body).await
    }

    async fn get(&self, path: &str) -> Answer {
        read_answer(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    async fn inbox(&self, mobile: &str) -> Vec<Value> {
        let answer = self.get(&format!("/__sandbox/otps?mobile={mobile}")).await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.json()["otps"].as_array().unwrap().clone()
    }

    // ---- one well-formed request per gateway, with the default credentials

    async fn phonepe(&self, mobile: &str) -> Answer {
        let payload = json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": mobile});
        self.phonepe_payload(&payload, "sandbox-salt-key", 1).await
    }

    async fn phonepe_payload(&self, payload: &Value, salt_key: &str, salt_index: u32) -> Answer {
        let encoded = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
        let x_verify = x_verify(&encoded, salt_key, salt_index);
        let body = json!({ "request": encoded }).to_string();
        self.post(PHONEPE, &[("x-verify", &x_verify)], body).await
    }

    async fn paytm(&self, mobile: &str) -> Answer {
        let body = json!({"phone": mobile, "scopes": ["paytm"]}).to_string();
        self.post(&format!("{PAYTM}?locale=en-IN"), &paytm_headers("sandbox-client", "sandbox-secret"), body).await
    }

    async fn iserveu(&self, body: &Value) -> Answer {
        self.iserveu_as("sandbox-client", "sandbox-secret", body).await
    }

    async fn iserveu_as(&self, client_id: &str, client_secret: &str, body: &Value) -> Answer {
        self.post(ISERVEU, &[("client_id", client_id), ("client_secret", client_secret)], body.to_string()).await
    }

    async fn aopay(&self, body: &Value) -> Answer {
        self.post(AOPAY, &[], body.to_string()).await
    }
}

async fn read_answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    Answer { status, content_type, text: response.text().await.unwrap() }
}

/// PhonePe's signature, computed here independently of the sandbox.
fn x_verify(encoded: &str, salt_key: &str, salt_index: u32) -> String {
    let digest = Sha256::digest(format!("{encoded}{PHONEPE}{salt_key}"));
    let hex = hex::encode(digest);
    format!("{hex}###{salt_index}")
}

fn paytm_headers(client_id: &str, client_secret: &str) -> [(&'static str, &'static str); 2] {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{client_secret}"));
    // Leaked on purpose: a test's header values must outlive the array; a few bytes per test.
    let authorization: &'static str = Box::leak(format!("Basic {basic}").into_boxed_str());
    [("authorization", authorization), ("x-device-identifier", "device-0042")]
}

fn iserveu_transaction(mobile: &str) -> Value {
    json!({
        "otpType": "2",
        "customerMobileNumber": mobile,
        "username": "sandboxuser",
        "ovdType": "AADHAAR",
        "externalRefNumber": "REF123456",
        "requestedAmount": "1500.50",
    })
}

fn aopay_body(mobile: &str) -> Value {
    json!({
        "RegistrationID": "AOP-SANDBOX",
        "MobileNumber": mobile,
        "BeneID": "BENE1001",
        "Txntype": "IMPS",
        "Amount": "2500",
        "Pincode": "560001",
        "Address": "12 MG Road, Bengaluru",
        "DOB": "20/08/1990",
        "Latitude": "12.9716",
        "Longitute": "77.5946",
    })
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().unwrap().remove(key);
    body
}

// ------------------------------------------------------------------ PhonePe

fn phonepe_fixture() -> Fixture {
    Fixture {
        gateway: Gateway::PhonePe,
        send: PHONEPE.to_owned(),
        request: |mobile, credentials| {
            let (merchant_id, salt_key) = match credentials {
                Credentials::Sandbox => ("SANDBOXMERCHANT", "sandbox-salt-key"),
                Credentials::Wrong => ("NOBODY", "not-the-salt-key"),
            };
            let payload = json!({"merchantId": merchant_id, "mobileNumber": mobile});
            let encoded = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
            let headers = vec![("x-verify", x_verify(&encoded, salt_key, 1))];
            Request { headers, body: json!({ "request": encoded }).to_string() }
        },
        code: "/code",
        sent: json!("SUCCESS"),
        limited: json!("OTP_LIMIT_EXCEEDED"),
        magic: [
            (200, Some(json!("OTP_LIMIT_EXCEEDED"))),
            (200, Some(json!("USER_BLOCKED"))),
            (500, Some(json!("INTERNAL_SERVER_ERROR"))),
            (429, Some(json!("TOO_MANY_REQUESTS"))),
        ],
        malformed: (400, json!("BAD_REQUEST")),
    }
}

#[tokio::test]
async fn phonepe_signed_send_succeeds_and_lands_in_the_inbox() {
    let h = harness().await;
    let answer = h.phonepe("9876543210").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    let body = answer.json();
    assert_eq!(body["success"], true);
    assert_eq!(body["code"], "SUCCESS");
    assert_eq!(body["data"]["merchantId"], "SANDBOXMERCHANT");
    let token = body["data"]["otpToken"].as_str().unwrap();
    assert!(token.starts_with("OTP") && token.len() == 39, "{token}");

    let inbox = h.inbox("9876543210").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["gateway"], "phonepe");
    assert_eq!(inbox[0]["mobile"], "9876543210");
    assert_eq!(inbox[0]["reference"], token);
    let otp = inbox[0]["otp"].as_str().unwrap();
    assert!(otp.len() == 6 && otp.bytes().all(|b| b.is_ascii_digit()), "{otp}");
    assert!(inbox[0]["sent_at"].as_str().unwrap().ends_with('Z'));
    // The library sees the same inbox.
    let from_library = h.sandbox.otps("9876543210");
    assert_eq!(from_library.len(), 1);
    assert_eq!(from_library[0].otp, otp);
}

#[tokio::test]
async fn phonepe_accepts_every_documented_optional_field() {
    let h = harness().await;
    let payload = json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": "9876543210", "email": "a@example.com",
                         "shortName": "Asha", "requestType": "CREDIT"});
    let answer = h.phonepe_payload(&payload, "sandbox-salt-key", 1).await;
    assert_eq!(answer.json()["code"], "SUCCESS", "{}", answer.text);
}

#[tokio::test]
async fn phonepe_refuses_a_wrong_salt_key_or_index_with_authorization_failed() {
    let h = harness().await;
    let payload = json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": "9876543210"});
    for (salt_key, salt_index) in [("not-the-salt-key", 1), ("sandbox-salt-key", 2)] {
        let answer = h.phonepe_payload(&payload, salt_key, salt_index).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["code"], "AUTHORIZATION_FAILED");
        assert_eq!(answer.json()["success"], false);
    }
    // A signature over a different body does not carry over.
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
    let signature = x_verify("c29tZXRoaW5nIGVsc2U=", "sandbox-salt-key", 1);
    let answer = h.post(PHONEPE, &[("x-verify", &signature)], json!({ "request": encoded }).to_string()).await;
    assert_eq!(answer.json()["code"], "AUTHORIZATION_FAILED");
    // No signature at all.
    let answer = h.post(PHONEPE, &[], json!({ "request": encoded }).to_string()).await;
    assert_eq!(answer.json()["code"], "AUTHORIZATION_FAILED");
    assert!(h.inbox("9876543210").await.is_empty());
}

#[tokio::test]
async fn phonepe_checks_the_salt_index_and_key_it_was_started_with() {
    let credentials = PhonePeCredentials::default().salt_key("another-key").salt_index(3).merchant_id("M2");
    let h = harness_with(SandboxConfig::default().phonepe(credentials)).await;
    let payload = json!({"merchantId": "M2", "mobileNumber": "9876543210"});
    assert_eq!(h.phonepe_payload(&payload, "another-key", 1).await.json()["code"], "AUTHORIZATION_FAILED");
    assert_eq!(h.phonepe_payload(&payload, "sandbox-salt-key", 3).await.json()["code"], "AUTHORIZATION_FAILED");
    assert_eq!(h.phonepe_payload(&payload, "another-key", 3).await.json()["code"], "SUCCESS");
}

#[tokio::test]
async fn phonepe_refuses_bad_payloads_with_bad_request() {
    let h = harness().await;
    let cases = [
        json!({"merchantId": "SOMEONEELSE", "mobileNumber": "9876543210"}),
        json!({"mobileNumber": "9876543210"}),
        json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": "98765"}),
        json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": "+919876543210"}),
        json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": 9876543210u64}),
        json!({"merchantId": "SANDBOXMERCHANT"}),
        json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": "9876543210", "requestType": "LOAN"}),
    ];
    for payload in cases {
        let answer = h.phonepe_payload(&payload, "sandbox-salt-key", 1).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{payload}");
        assert_eq!(answer.json()["code"], "BAD_REQUEST", "{payload}");
    }
    // `request` that is not base64, or base64 of something that is not a JSON object.
    for request in ["%%% not base64", "bm90IGpzb24=", "WzEsMiwzXQ=="] {
        let signature = x_verify(request, "sandbox-salt-key", 1);
        let answer = h.post(PHONEPE, &[("x-verify", &signature)], json!({ "request": request }).to_string()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{request}");
        assert_eq!(answer.json()["code"], "BAD_REQUEST");
    }
    // A device id over 64 characters.
    let payload = json!({"merchantId": "SANDBOXMERCHANT", "mobileNumber": "9876543210"});
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
    let signature = x_verify(&encoded, "sandbox-salt-key", 1);
    let long_id = "d".repeat(65);
    let headers = [("x-verify", signature.as_str()), ("x-device-id", long_id.as_str())];
    let answer = h.post(PHONEPE, &headers, json!({ "request": encoded }).to_string()).await;
    assert_eq!(answer.json()["code"], "BAD_REQUEST");
    assert!(h.inbox("9876543210").await.is_empty());
}

// ------------------------------------------------------------------ Paytm

fn paytm_fixture() -> Fixture {
    Fixture {
        gateway: Gateway::Paytm,
        send: format!("{PAYTM}?locale=en-IN"),
        request: |mobile, credentials| {
            let headers = match credentials {
                Credentials::Sandbox => paytm_headers("sandbox-client", "sandbox-secret"),
                Credentials::Wrong => paytm_headers("x", "y"),
            };
            let headers = headers.iter().map(|(name, value)| (*name, (*value).to_owned())).collect();
            Request { headers, body: json!({"phone": mobile, "scopes": ["paytm"]}).to_string() }
        },
        code: "/responseCode",
        sent: json!("BE1400001"),
        limited: json!("BE1425006"),
        magic: [
            (200, Some(json!("BE1425006"))),
            (200, Some(json!("BE1424001"))),
            (500, Some(json!("BE1426003"))),
            (200, Some(json!("BE1425004"))),
        ],
        malformed: (400, json!("434")),
    }
}

#[tokio::test]
async fn paytm_send_succeeds_with_a_state_token() {
    let h = harness().await;
    let answer = h.paytm("9876543210").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["responseCode"], "BE1400001");
    assert_eq!(body["status"], "SUCCESS");
    let token = body["state_token"].as_str().unwrap();
    let inbox = h.inbox("9876543210").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["gateway"], "paytm");
    assert_eq!(inbox[0]["reference"], token);
}

#[tokio::test]
async fn paytm_refuses_wrong_credentials_with_be1423005() {
    let h = harness().await;
    let body = json!({"phone": "9876543210", "scopes": ["paytm"]}).to_string();
    let url = format!("{PAYTM}?locale=en-IN");
    for headers in [paytm_headers("sandbox-client", "wrong"), paytm_headers("other", "sandbox-secret")] {
        let answer = h.post(&url, &headers, body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["responseCode"], "BE1423005");
    }
    let answer = h.post(&url, &[("x-device-identifier", "d")], body).await;
    assert_eq!(answer.json()["responseCode"], "BE1423005");
}

#[tokio::test]
async fn paytm_requires_a_device_identifier_with_be1423012() {
    let h = harness().await;
    let [authorization, _] = paytm_headers("sandbox-client", "sandbox-secret");
    let body = json!({"phone": "9876543210", "scopes": ["paytm"]}).to_string();
    let answer = h.post(&format!("{PAYTM}?locale=en-IN"), &[authorization], body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["responseCode"], "BE1423012");
}

#[tokio::test]
async fn paytm_refuses_missing_locale_bad_phone_or_scopes_with_434() {
    let h = harness().await;
    let headers = paytm_headers("sandbox-client", "sandbox-secret");
    let good = json!({"phone": "9876543210", "scopes": ["paytm"]});
    let answer = h.post(PAYTM, &headers, good.to_string()).await;
    assert_eq!(answer.json()["responseCode"], "434", "no locale");
    let answer = h.post(&format!("{PAYTM}?locale="), &headers, good.to_string()).await;
    assert_eq!(answer.json()["responseCode"], "434", "empty locale");
    for body in [
        with(good.clone(), "phone", json!("12345")),
        with(good.clone(), "phone", json!(9876543210u64)),
        without(good.clone(), "phone"),
        with(good.clone(), "scopes", json!([])),
        with(good.clone(), "scopes", json!("paytm")),
        with(good.clone(), "scopes", json!([""])),
        without(good.clone(), "scopes"),
    ] {
        let answer = h.post(&format!("{PAYTM}?locale=en-IN"), &headers, body.to_string()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.json()["responseCode"], "434", "{body}");
    }
    assert!(h.inbox("9876543210").await.is_empty());
}

// ------------------------------------------------------------------ iServeU

fn iserveu_fixture() -> Fixture {
    Fixture {
        gateway: Gateway::IServeU,
        send: ISERVEU.to_owned(),
        request: |mobile, credentials| {
            let (client_id, client_secret) = match credentials {
                Credentials::Sandbox => ("sandbox-client", "sandbox-secret"),
                Credentials::Wrong => ("x", "y"),
            };
            let headers = vec![("client_id", client_id.to_owned()), ("client_secret", client_secret.to_owned())];
            Request { headers, body: iserveu_transaction(mobile).to_string() }
        },
        code: "/statusCode",
        sent: json!("0"),
        limited: json!("1"),
        // Its 500 is bare text, not its JSON.
        magic: [(200, Some(json!("1"))), (200, Some(json!("1"))), (500, None), (200, Some(json!("1")))],
        malformed: (200, json!("-1")),
    }
}

#[tokio::test]
async fn iserveu_both_otp_types_succeed() {
    let h = harness().await;
    let answer = h.iserveu(&iserveu_transaction("9876543210")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["statusCode"], "0", "{body}");
    assert_eq!(body["status"], "SUCCESS");

    let registration = json!({"otpType": "1", "customerMobileNumber": "9876543211", "username": "sandboxuser",
                              "ovdType": "AADHAAR", "ovdData": "765386439745", "latLong": "12.97,77.59",
                              "publicIP": "2001:db8::1", "paramA": "x"});
    assert_eq!(h.iserveu(&registration).await.json()["statusCode"], "0");

    let inbox = h.inbox("9876543210").await;
    assert_eq!(inbox[0]["gateway"], "iserveu");
    assert_eq!(inbox[0]["reference"], "REF123456");
    assert_eq!(h.inbox("9876543211").await[0]["reference"], Value::Null);
}

#[tokio::test]
async fn iserveu_refuses_wrong_headers_with_401() {
    let h = harness().await;
    let body = iserveu_transaction("9876543210");
    for (id, secret) in [("sandbox-client", "wrong"), ("wrong", "sandbox-secret")] {
        let answer = h.iserveu_as(id, secret, &body).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["statusCode"], "401");
    }
    // The documented header names have underscores; the dashed spelling is not the same header.
    let answer = h
        .post(ISERVEU, &[("client-id", "sandbox-client"), ("client-secret", "sandbox-secret")], body.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn iserveu_enforces_every_field_rule_with_minus_one() {
    let h = harness().await;
    let good = iserveu_transaction("9876543210");
    let cases = [
        (with(good.clone(), "requestedAmount", json!("abc")), "Requested Amount"),
        (with(good.clone(), "requestedAmount", json!("-5")), "Requested Amount"),
        (without(good.clone(), "requestedAmount"), "Requested Amount"),
        (without(good.clone(), "externalRefNumber"), "externalRefNumber"),
        (with(good.clone(), "externalRefNumber", json!("ABC12")), "externalRefNumber"),
        (with(good.clone(), "externalRefNumber", json!("A".repeat(23))), "externalRefNumber"),
        (with(good.clone(), "otpType", json!("3")), "otpType"),
        (with(good.clone(), "otpType", json!("1")), "ovdData"),
        (without(good.clone(), "ovdType"), "ovdType"),
        (with(good.clone(), "customerMobileNumber", json!("5876543210")), "customerMobileNumber"),
        (with(good.clone(), "username", json!("someoneelse")), "username"),
        (with(good.clone(), "latLong", json!("91.0,77.5")), "latLong"),
        (with(good.clone(), "latLong", json!("12.9")), "latLong"),
        (with(good.clone(), "publicIP", json!("300.1.1.1")), "publicIP"),
        (with(good.clone(), "requestedAmount", json!(1500)), "JSON object of strings"),
    ];
    for (body, says) in cases {
        let answer = h.iserveu(&body).await;
        assert_eq!(answer.status, StatusCode::OK, "{body}");
        let reply = answer.json();
        assert_eq!(reply["statusCode"], "-1", "{body}");
        assert!(reply["statusDesc"].as_str().unwrap().contains(says), "{body} -> {reply}");
    }
    assert!(h.inbox("9876543210").await.is_empty());
}

// ------------------------------------------------------------------ AOPay

fn aopay_fixture() -> Fixture {
    Fixture {
        gateway: Gateway::AOPay,
        send: AOPAY.to_owned(),
        request: |mobile, credentials| {
            let body = match credentials {
                Credentials::Sandbox => aopay_body(mobile),
                Credentials::Wrong => with(aopay_body(mobile), "RegistrationID", json!("WRONG")),
            };
            Request { headers: Vec::new(), body: body.to_string() }
        },
        code: "/response_code",
        sent: json!(1),
        limited: json!(2),
        // Its 500 is bare text, not its JSON; 9000000005's OTP went out, for registration.
        magic: [(200, Some(json!(2))), (200, Some(json!(2))), (500, None), (200, Some(json!(0)))],
        malformed: (200, json!(3)),
    }
}

#[tokio::test]
async fn aopay_send_succeeds_and_its_otp_expires() {
    let h = harness_with(SandboxConfig::default().aopay_otp_validity(Duration::from_millis(300))).await;
    let answer = h.aopay(&aopay_body("9876543210")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["status"], true, "{body}");
    assert_eq!(body["response_code"], 1);
    let state = body["stateresp"].as_str().unwrap();
    assert!(state.len() == 9 && state.bytes().all(|b| b.is_ascii_digit()), "{state}");

    let inbox = h.inbox("9876543210").await;
    assert_eq!(inbox[0]["gateway"], "aopay");
    assert_eq!(inbox[0]["reference"], state);
    assert_eq!(inbox[0]["expired"], false);
    assert!(inbox[0]["expires_at"].as_str().unwrap().ends_with('Z'));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.inbox("9876543210").await[0]["expired"], true);
}

#[tokio::test]
async fn an_unbounded_aopay_validity_never_expires_and_never_panics() {
    let h = harness_with(SandboxConfig::default().aopay_otp_validity(Duration::MAX)).await;
    assert_eq!(h.aopay(&aopay_body("9876543210")).await.status, StatusCode::OK);
    let otp = &h.sandbox.otps("9876543210")[0];
    assert!(!otp.expired);
    assert!(otp.expires_at.as_deref().unwrap() > otp.sent_at.as_str(), "{otp:?}");
}

#[tokio::test]
async fn aopay_otps_are_valid_for_90_seconds_by_default() {
    assert_eq!(SandboxConfig::default().aopay_otp_validity, Duration::from_secs(90));
    let h = harness().await;
    h.aopay(&aopay_body("9876543210")).await;
    let otp = &h.sandbox.otps("9876543210")[0];
    assert!(!otp.expired);
    let sent = otp.sent_at.as_str();
    let expires = otp.expires_at.as_deref().unwrap();
    // Same date, 90 s later: compare the seconds of the day.
    let seconds = |t: &str| {
        let time = &t[11..19];
        let parts: Vec<u32> = time.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600 + parts[1] * 60 + parts[2]
    };
    assert_eq!((seconds(expires) + 86_400 - seconds(sent)) % 86_400, 90, "{sent} -> {expires}");
}

#[tokio::test]
async fn aopay_refuses_an_unknown_registration_id_with_401_code_11() {
    let h = harness().await;
    for body in [
        with(aopay_body("9876543210"), "RegistrationID", json!("AOP-OTHER")),
        without(aopay_body("9876543210"), "RegistrationID"),
    ] {
        let answer = h.aopay(&body).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["response_code"], 11);
    }
}

#[tokio::test]
async fn aopay_enforces_every_field_rule() {
    let h = harness().await;
    let good = aopay_body("9876543210");
    let cases = [
        with(good.clone(), "MobileNumber", json!("12345")),
        without(good.clone(), "BeneID"),
        with(good.clone(), "Txntype", json!("UPI")),
        with(good.clone(), "Amount", json!("-10")),
        with(good.clone(), "Amount", json!("ten")),
        with(good.clone(), "Pincode", json!("56000")),
        with(good.clone(), "Pincode", json!("56000a")),
        without(good.clone(), "Address"),
        with(good.clone(), "DOB", json!("31/02/2000")),
        with(good.clone(), "DOB", json!("2000-08-20")),
        with(good.clone(), "Latitude", json!("95")),
        with(good.clone(), "Longitute", json!("200")),
        // The documented key is misspelt; the correct spelling is not it.
        with(without(good.clone(), "Longitute"), "Longitude", json!("77.5946")),
        with(good.clone(), "Amount", json!(2500)),
    ];
    for body in cases {
        let answer = h.aopay(&body).await;
        let reply = answer.json();
        assert_eq!(reply["status"], false, "{body}");
        assert_eq!(reply["response_code"], 3, "{body} -> {reply}");
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    assert!(h.inbox("9876543210").await.is_empty());
}

// ------------------------------------------------------------------ limits

#[tokio::test]
async fn the_sixth_send_within_ten_minutes_is_refused_with_each_gateways_limit_code() {
    let h = harness().await;
    let fixtures = every_fixture();
    for attempt in 1..=5 {
        for fixture in &fixtures {
            let answer = h.send(fixture, "9876543210", Credentials::Sandbox).await;
            assert_eq!(fixture.code_of(&answer), fixture.sent, "{} #{attempt}: {}", fixture.gateway, answer.text);
        }
    }
    for fixture in &fixtures {
        let answer = h.send(fixture, "9876543210", Credentials::Sandbox).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", fixture.gateway);
        assert_eq!(fixture.code_of(&answer), fixture.limited, "{}: {}", fixture.gateway, answer.text);
    }

    // 5 OTPs recorded per gateway (a number keeps its latest 20), none for the refused sends;
    // newest first.
    let inbox = h.inbox("9876543210").await;
    assert_eq!(inbox.len(), 5 * fixtures.len());
    assert_eq!(inbox[0]["gateway"], fixtures[fixtures.len() - 1].gateway.as_str());
    assert_eq!(inbox[inbox.len() - 1]["gateway"], fixtures[0].gateway.as_str());
    // The limit is per number: another number is unaffected.
    for fixture in &fixtures {
        let answer = h.send(fixture, "9876543211", Credentials::Sandbox).await;
        assert_eq!(fixture.code_of(&answer), fixture.sent, "{}", fixture.gateway);
    }
}

// ------------------------------------------------------------------ magic numbers

#[tokio::test]
async fn magic_numbers_answer_deterministically_whatever_the_credentials() {
    let h = harness().await;
    // Wrong credentials everywhere: the magic answer still comes.
    for fixture in every_fixture() {
        // Magic numbers do not count towards the limit, and repeat exactly: 9000000002 is sent
        // seven times more (not 9000000005, which issues AOPay an OTP each time).
        let numbers = ["9000000001", "9000000002", "9000000003", "9000000005"];
        let repeats =
            numbers.iter().zip(&fixture.magic).chain(std::iter::repeat_n((&numbers[1], &fixture.magic[1]), 7));
        for (mobile, (status, code)) in repeats {
            let answer = h.send(&fixture, mobile, Credentials::Wrong).await;
            let gateway = fixture.gateway;
            assert_eq!(answer.status.as_u16(), *status, "{gateway} {mobile}: {}", answer.text);
            if let Some(code) = code {
                assert_eq!(fixture.code_of(&answer), *code, "{gateway} {mobile}: {}", answer.text);
            }
        }
    }
    // 9000000005 on AOPay: sent for registration, so an OTP went out and is in the inbox.
    let inbox = h.inbox("9000000005").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["gateway"], "aopay");
}

#[tokio::test]
async fn magic_9000000006_is_a_proxys_html_502_on_every_gateway() {
    let h = harness().await;
    for fixture in every_fixture() {
        let answer = h.send(&fixture, "9000000006", Credentials::Wrong).await;
        let gateway = fixture.gateway;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{gateway}");
        assert_eq!(answer.content_type, "text/html", "{gateway}");
        assert!(answer.text.contains("<h1>502 Bad Gateway</h1>"), "{gateway}");
    }
}

#[tokio::test]
async fn magic_9000000004_answers_only_after_the_slow_delay() {
    let delay = Duration::from_millis(600);
    let h = harness_with(SandboxConfig::default().slow_answer_delay(delay)).await;
    assert_eq!(SandboxConfig::default().slow_answer_delay, Duration::from_secs(35));
    let started = Instant::now();
    let answer = h.phonepe("9000000004").await;
    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    // After the wait it is an ordinary number.
    assert_eq!(answer.json()["code"], "SUCCESS");
    let started = Instant::now();
    assert_eq!(h.paytm("9000000004").await.json()["responseCode"], "BE1400001");
    assert!(started.elapsed() >= delay);
}

// ------------------------------------------------------------------ robustness

#[tokio::test]
async fn malformed_json_gets_each_gateways_own_error_shape() {
    let h = harness().await;
    let garbage: [&[u8]; 3] = [b"{\"request\": ", b"null", &[0xff, 0xfe, 0x00, 0x7b]];
    for fixture in every_fixture() {
        // The credentials are right: the body is what is wrong.
        let Request { headers, .. } = (fixture.request)("9876543210", Credentials::Sandbox);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        for body in garbage {
            let answer = h.post(&fixture.send, &headers, body.to_vec()).await;
            let (status, code) = &fixture.malformed;
            assert_eq!(answer.status.as_u16(), *status, "{} {body:?}", fixture.gateway);
            assert_eq!(fixture.code_of(&answer), *code, "{} {body:?}: {}", fixture.gateway, answer.text);
        }
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_refused_in_the_gateways_shape() {
    let h = harness().await;
    for fixture in every_fixture() {
        let request = (fixture.request)("9876543210", Credentials::Sandbox);
        for content_type in [Some("text/plain"), None] {
            let mut post = h.http.post(h.url(&fixture.send)).body(request.body.clone());
            for (name, value) in &request.headers {
                post = post.header(*name, value);
            }
            if let Some(content_type) = content_type {
                post = post.header("content-type", content_type);
            }
            let answer = read_answer(post.send().await.unwrap()).await;
            let (status, code) = &fixture.malformed;
            assert_eq!(answer.status.as_u16(), *status, "{} {content_type:?}", fixture.gateway);
            assert_eq!(fixture.code_of(&answer), *code, "{} {content_type:?}: {}", fixture.gateway, answer.text);
        }
    }
    // PhonePe says what was wrong.
    let response = h.http.post(h.url(PHONEPE)).header("content-type", "text/plain").body("request=abc");
    let answer = read_answer(response.send().await.unwrap()).await;
    assert_eq!((answer.status, answer.json()["code"].clone()), (StatusCode::BAD_REQUEST, json!("BAD_REQUEST")));
    assert!(answer.json()["message"].as_str().unwrap().contains("Content-Type"), "{}", answer.text);
    assert!(h.inbox("9876543210").await.is_empty());
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_and_the_server_stays_up() {
    let h = harness().await;
    let big = format!("{{\"phone\":\"9876543210\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    for fixture in every_fixture() {
        let answer = h.post(&fixture.send, &[], big.clone()).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", fixture.gateway);
        assert_eq!(fixture.code_of(&answer), fixture.malformed.1, "{}: {}", fixture.gateway, answer.text);
    }
    // Streamed in chunks without a declared length, over a raw connection.
    let mut stream = tokio::net::TcpStream::connect(h.sandbox.addr()).await.unwrap();
    let head = format!(
        "POST {PAYTM}?locale=en-IN HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        h.sandbox.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.as_bytes().chunks(8 * 1024) {
        // The server may stop reading once over the cap; a refused write is fine.
        if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut reply = vec![0u8; 4096];
    let read = stream.read(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply[..read]);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(h.get("/__sandbox/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let h = harness().await;
    let answer = h.get("/nope").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"], "not_found");
    let answer = h.post("/v3/merchant/otp/sendx", &[], "{}").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.json();
    let answer = h.get(PHONEPE).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.json()["error"], "method_not_allowed");
    let answer = h.post("/__sandbox/health", &[], "{}").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn health_and_inbox_answer() {
    let h = harness().await;
    let health = h.get("/__sandbox/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));
    assert_eq!(h.get("/__sandbox/otps?mobile=9876543210").await.json(), json!({"otps": []}));
    h.phonepe("9876543210").await;
    h.phonepe("9876543211").await;
    // Without a number: everything, newest first.
    let all = h.get("/__sandbox/otps").await.json();
    let mobiles: Vec<&str> = all["otps"].as_array().unwrap().iter().map(|o| o["mobile"].as_str().unwrap()).collect();
    assert_eq!(mobiles, ["9876543211", "9876543210"]);
    assert_eq!(h.get("/__sandbox/otps?mobile").await.status, StatusCode::BAD_REQUEST);
    // The query is read as URLs encode it: %39 is "9", and other parameters are ignored.
    let decoded = h.get("/__sandbox/otps?mobile=%39876543210&page=2").await.json();
    assert_eq!(decoded["otps"].as_array().map(Vec::len), Some(1), "{decoded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_are_safe() {
    let h = std::sync::Arc::new(harness().await);
    let fixtures = every_fixture();
    let mut tasks = Vec::new();
    for i in 0..200usize {
        let h = h.clone();
        let fixture = fixtures[i % fixtures.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mobile = format!("98{:08}", i);
            fixture.code_of(&h.send(&fixture, &mobile, Credentials::Sandbox).await) == fixture.sent
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert_eq!(h.sandbox.otps("9800000007").len(), 1);
    // Every send is kept; an inbox query without a number returns at most 100, newest first.
    assert_eq!(h.sandbox.sizes(), (200, 200));
    assert_eq!(h.get("/__sandbox/otps").await.json()["otps"].as_array().unwrap().len(), 100);
    assert_eq!(h.get("/__sandbox/otps?limit=1000").await.json()["otps"].as_array().unwrap().len(), 100);
    assert_eq!(h.get("/__sandbox/otps?limit=7").await.json()["otps"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn the_state_stays_under_its_cap_and_a_reset_forgets_everything() {
    let h = harness_with(SandboxConfig::default().max_numbers(50)).await;
    let mut statuses = Vec::new();
    for i in 0..120u32 {
        statuses.push(h.phonepe(&format!("97{i:08}")).await.status);
    }
    assert!(statuses[..50].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert!(statuses[50..].iter().all(|s| *s == StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    assert_eq!(h.sandbox.sizes(), (50, 50), "the 70 new numbers were refused, not kept");
    assert_eq!(h.inbox("9700000000").await.len(), 1, "the oldest live number stays");
    assert!(h.inbox("9700000119").await.is_empty(), "a refused number keeps nothing");
    let reset = h.post("/__sandbox/reset", &[], "").await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(h.sandbox.sizes(), (0, 0));
    assert_eq!(h.phonepe("9700000119").await.json()["code"], "SUCCESS", "a reset makes room");
}

/// The message of a send refused because every place is held by a live number, checked for
/// the marker and the advice every gateway's answer carries.
fn assert_full(answer: &Answer, what: &str) {
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}", answer.text);
    assert_eq!(answer.content_type, "application/json", "{what}");
    let body = answer.json();
    assert_eq!(body["error"], "sandbox_full", "{what}: {body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("full of live numbers") && message.contains("--max-numbers"), "{what}: {message}");
}

/// The attacker: default credentials, no admin token, as many new numbers as it likes,
/// through every gateway. The victim, a teammate's number with five sends in the window,
/// keeps its OTP, its reference and its limit.
#[tokio::test]
async fn a_flood_of_new_numbers_never_evicts_a_live_number() {
    let h = harness_with(SandboxConfig::default().max_numbers(50)).await;
    let victim = "9876543210";
    let mut token = String::new();
    for _ in 0..5 {
        token = h.phonepe(victim).await.json()["data"]["otpToken"].as_str().unwrap().to_owned();
    }
    let fixtures = every_fixture();
    let (mut sent, mut refused) = (0, 0);
    for i in 0..400usize {
        let mobile = format!("97{i:08}");
        let answer = h.send(&fixtures[i % fixtures.len()], &mobile, Credentials::Sandbox).await;
        if answer.status == StatusCode::OK {
            sent += 1;
        } else {
            assert_full(&answer, &format!("send #{i}"));
            refused += 1;
        }
    }
    let inbox = h.sandbox.otps(victim);
    assert_eq!(inbox.len(), 5, "the victim's OTPs survived the flood");
    assert_eq!(inbox[0].reference.as_deref(), Some(token.as_str()));
    let limited = h.phonepe(victim).await;
    assert_eq!(limited.json()["code"], "OTP_LIMIT_EXCEEDED", "the victim's limit still holds: {}", limited.text);
    let verified = phonepe_verify(&h, &token, &inbox[0].otp, "sandbox-salt-key").await;
    assert_eq!(verified.json()["code"], "SUCCESS", "the victim's latest OTP still verifies: {}", verified.text);
    assert_eq!((sent, refused), (49, 351), "49 places were free; the rest of the flood was refused");
    assert_eq!(h.sandbox.sizes().0, 50);
    let metrics = h.get("/__sandbox/metrics").await.text;
    assert!(metrics.contains("\nsandbox_refused_full_total 351\n"), "{metrics}");
    assert!(metrics.contains("\nsandbox_numbers_max 50\n"), "{metrics}");
    // PhonePe's share of the 351 refused sends (87 of them, with four gateways).
    let phonepe = fixtures.iter().position(|fixture| fixture.gateway == Gateway::PhonePe).unwrap();
    let refused_phonepe = (49..400).filter(|i| i % fixtures.len() == phonepe).count();
    let line = format!(r#"sandbox_requests_total{{route="{PHONEPE}",status="503"}} {refused_phonepe}"#);
    assert!(metrics.contains(&line), "{metrics}");
}

/// Live entries end with their window and validity; a number with nothing live is the one
/// that makes room, however recently it was active, and a number with a live OTP never is.
#[tokio::test]
async fn new_numbers_are_admitted_again_once_the_live_ones_have_expired() {
    let short = Duration::from_secs(1);
    let config = SandboxConfig::default()
        .max_numbers(10)
        .limit_window(short)
        .aopay_otp_validity(short)
        .otp_validity(Duration::from_secs(30));
    let h = harness_with(config).await;
    // Live for 30 s: a PhonePe OTP. Live for 1 s: nine AOPay sends.
    assert_eq!(h.phonepe("9876543210").await.json()["code"], "SUCCESS");
    for i in 0..9u32 {
        assert_eq!(h.aopay(&aopay_body(&format!("96{i:08}"))).await.json()["response_code"], 1);
    }
    assert_full(&h.aopay(&aopay_body("9500000000")).await, "while all ten are live");
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    // The nine AOPay numbers are kept (30 s retention) but nothing in them is live.
    assert_eq!(h.sandbox.sizes().0, 10);
    for i in 0..9u32 {
        let answer = h.aopay(&aopay_body(&format!("95{i:08}"))).await;
        assert_eq!(answer.json()["response_code"], 1, "new number #{i}: {}", answer.text);
    }
    assert_full(&h.aopay(&aopay_body("9400000000")).await, "full again of live numbers");
    assert_eq!(h.sandbox.sizes().0, 10);
    assert_eq!(h.sandbox.otps("9876543210").len(), 1, "the number with a live OTP was never evicted");
    assert!(h.sandbox.otps("9600000000").is_empty(), "a number with nothing live made room");
}

// ------------------------------------------------------------------ the admin token

#[tokio::test]
async fn every_sandbox_route_needs_the_admin_token_and_nothing_else_passes() {
    let token = "0123456789abcdef-token";
    let h = harness_with(SandboxConfig::default().admin_token(token)).await;
    // The gateways need only their own credentials.
    assert_eq!(h.phonepe("9876543210").await.json()["code"], "SUCCESS");
    let same_length_wrong = "0123456789abcdef-tokeN";
    assert_eq!(same_length_wrong.len(), token.len());
    let refused = [
        None,
        Some(format!("Bearer {same_length_wrong}")),
        Some("Bearer 0123456789abcdef".to_owned()),
        Some(format!("Bearer {token}x")),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {token}")),
        Some(token.to_owned()),
    ];
    for (method, path) in [
        ("GET", "/__sandbox/otps?mobile=9876543210"),
        ("GET", "/__sandbox/health"),
        ("GET", "/__sandbox/metrics"),
        ("POST", "/__sandbox/reset"),
        ("GET", "/__sandbox/magic"),
        ("POST", "/__sandbox/ticket"),
    ] {
        let request = |authorization: Option<&str>| {
            let request = match method {
                "GET" => h.http.get(h.url(path)),
                _ => h.http.post(h.url(path)),
            };
            match authorization {
                Some(value) => request.header("authorization", value),
                None => request,
            }
        };
        for authorization in &refused {
            let answer = read_answer(request(authorization.as_deref()).send().await.unwrap()).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path} with {authorization:?}");
            assert_eq!(answer.json()["error"], "unauthorized");
        }
        let answer = read_answer(request(Some(&format!("Bearer {token}"))).send().await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
    }
}

/// Reads the event stream until `wanted` has arrived (or fails after 10 s), returning all read.
async fn read_events_until(response: &mut reqwest::Response, wanted: &str) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains(wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk()).await;
        let chunk = chunk.unwrap_or_else(|_| panic!("no {wanted:?} in the stream; read {text:?}")).unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap_or_else(|| panic!("the stream ended; read {text:?}"))));
    }
    text
}

#[tokio::test]
async fn the_inbox_page_is_served_to_anyone_under_a_strict_policy_and_its_events_need_the_token() {
    let token = "0123456789abcdef-token";
    let h = harness_with(SandboxConfig::default().admin_token(token)).await;
    // The page holds no data: served without the token, so that it can ask for it.
    for (path, content_type) in [
        ("/__sandbox/", "text/html; charset=utf-8"),
        ("/__sandbox/inbox.js", "text/javascript; charset=utf-8"),
        ("/__sandbox/inbox.css", "text/css; charset=utf-8"),
        ("/__sandbox/favicon.svg", "image/svg+xml"),
    ] {
        let response = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let policy = header("content-security-policy");
        assert!(policy.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe") && policy.contains("form-action 'none'"), "{policy}");
    }
    let page = h.get("/__sandbox/").await.text;
    assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains(" style="), "nothing inline");
    assert!(page.contains(r#"<script src="/__sandbox/inbox.js" defer></script>"#));
    let script = h.get("/__sandbox/inbox.js").await.text;
    for markup in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!script.contains(markup), "the page builds its DOM from text only, never with {markup}");
    }
    let not_following = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let moved = not_following.get(h.url("/__sandbox")).send().await.unwrap();
    assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(moved.headers()["location"], "/__sandbox/");
    assert_eq!(h.post("/__sandbox/", &[], "{}").await.status, StatusCode::METHOD_NOT_ALLOWED);

    // The events: refused without the token or a ticket bought with it.
    let events = |query: &str| h.http.get(h.url(&format!("/__sandbox/events{query}")));
    for query in ["", "?ticket=", "?ticket=4102444800000.AAAA", "?ticket=nonsense"] {
        assert_eq!(events(query).send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "{query:?}");
    }
    let bearer = format!("Bearer {token}");
    let by_header = events("").header("authorization", &bearer).send().await.unwrap();
    assert_eq!(by_header.status(), StatusCode::OK);
    drop(by_header);
    let ticket = h.http.post(h.url("/__sandbox/ticket")).header("authorization", &bearer).send().await.unwrap();
    let ticket: Value = serde_json::from_str(&ticket.text().await.unwrap()).unwrap();
    assert_eq!(ticket["expires_in"], 60);
    let ticket = ticket["ticket"].as_str().unwrap();
    let mut stream = events(&format!("?ticket={ticket}")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(read_events_until(&mut stream, "event: snapshot").await.contains("retry: 1000"));
    let magic =
        read_answer(h.http.get(h.url("/__sandbox/magic")).header("authorization", &bearer).send().await.unwrap())
            .await
            .json();
    assert_eq!(magic["gateways"].as_array().unwrap().len(), Gateway::ALL.len());
    assert_eq!(magic["numbers"][0]["mobile"], "9000000001");
}

#[tokio::test]
async fn the_event_stream_says_retry_then_the_inbox_then_each_change() {
    let h = harness().await;
    assert_eq!(h.phonepe("9876543210").await.json()["code"], "SUCCESS");
    let mut stream = h.http.get(h.url("/__sandbox/events")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(stream.headers()["cache-control"], "no-cache");
    let first = read_events_until(&mut stream, "\n\n").await;
    assert!(first.starts_with("event: snapshot\ndata: {\"otps\":[{"), "{first}");
    assert!(first.contains("\"mobile\":\"9876543210\"") && first.contains("\"status\":\"pending\""), "{first}");
    assert!(first.contains("\nretry: 1000\n"), "{first}");
    assert_eq!(h.paytm("9876543211").await.status, StatusCode::OK);
    let sent = read_events_until(&mut stream, "9876543211").await;
    assert!(sent.starts_with("event: otp\ndata: {"), "{sent}");
    let line = sent.lines().nth(1).unwrap();
    let otp: Value = serde_json::from_str(line.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!((otp["gateway"].as_str(), otp["status"].as_str()), (Some("paytm"), Some("pending")));
    assert_eq!(otp["otp"], h.inbox("9876543211").await[0]["otp"]);
    assert!(otp["valid_for_ms"].as_u64().unwrap() > 590_000, "{otp}");
    assert_eq!(h.post("/__sandbox/reset", &[], "").await.status, StatusCode::OK);
    assert!(read_events_until(&mut stream, "event: reset").await.starts_with("event: reset\ndata: {}"));
}

#[tokio::test]
async fn an_empty_admin_token_locks_the_sandbox_routes_rather_than_opening_them() {
    let h = harness_with(SandboxConfig::default().admin_token("")).await;
    for authorization in ["Bearer ", "Bearer"] {
        let answer = read_answer(
            h.http.get(h.url("/__sandbox/health")).header("authorization", authorization).send().await.unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
    }
    assert_eq!(h.get("/__sandbox/health").await.status, StatusCode::UNAUTHORIZED);
}

// ------------------------------------------------------------------ the second step, raw

const PHONEPE_VERIFY: &str = "/v3/merchant/otp/verify";
const PAYTM_VERIFY: &str = "/v4/signin/validate/otp/sv1";
const ISERVEU_REGISTRATION: &str = "/common/dmt-lite/unified/customer/process-customer-registration";
const AOPAY_REGISTER: &str = "/api/AOP/DMTV1/RegisterRemitter";

/// A signed PhonePe verify: X-VERIFY over the verify path, computed here.
async fn phonepe_verify(h: &Harness, token: &str, otp: &str, salt_key: &str) -> Answer {
    let payload = json!({"merchantId": "SANDBOXMERCHANT", "otpToken": token, "otp": otp});
    let encoded = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
    let digest = Sha256::digest(format!("{encoded}{PHONEPE_VERIFY}{salt_key}"));
    let hex = hex::encode(digest);
    let body = json!({ "request": encoded }).to_string();
    h.post(PHONEPE_VERIFY, &[("x-verify", &format!("{hex}###1"))], body).await
}

#[tokio::test]
async fn phonepe_verify_checks_the_signature_then_the_code() {
    let h = harness_with(SandboxConfig::default().fixed_otp("246810")).await;
    let token = h.phonepe("9876543210").await.json()["data"]["otpToken"].as_str().unwrap().to_owned();
    let forged = phonepe_verify(&h, &token, "246810", "not-the-salt-key").await;
    assert_eq!(
        (forged.status, forged.json()["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("AUTHORIZATION_FAILED"))
    );
    let wrong = phonepe_verify(&h, &token, "135790", "sandbox-salt-key").await;
    assert_eq!((wrong.status, wrong.json()["code"].clone()), (StatusCode::OK, json!("OTP_VERIFY_FAILED")));
    let right = phonepe_verify(&h, &token, "246810", "sandbox-salt-key").await;
    let answer = right.json();
    assert_eq!((answer["success"].clone(), answer["code"].clone()), (json!(true), json!("SUCCESS")));
    assert_eq!(answer["data"]["userAuthToken"].as_str().map(str::len), Some(32), "{answer}");
    let again = phonepe_verify(&h, &token, "246810", "sandbox-salt-key").await;
    assert_eq!(again.json()["code"], "OTP_ALREADY_VERIFIED");
    let unknown = phonepe_verify(&h, "OTP-never-issued", "246810", "sandbox-salt-key").await;
    assert_eq!(unknown.json()["code"], "INVALID_OTP_TOKEN");
}

#[tokio::test]
async fn paytm_validate_checks_credentials_locale_and_device() {
    let h = harness_with(SandboxConfig::default().fixed_otp("246810")).await;
    let state = h.paytm("9876543210").await.json()["state_token"].as_str().unwrap().to_owned();
    let body = || json!({"state_token": state, "otp": "246810"}).to_string();
    let path = format!("{PAYTM_VERIFY}?locale=en-IN");
    let no_locale = h.post(PAYTM_VERIFY, &paytm_headers("sandbox-client", "sandbox-secret"), body()).await;
    assert_eq!(no_locale.json()["responseCode"], "434");
    let bad_auth = h.post(&path, &paytm_headers("sandbox-client", "wrong"), body()).await;
    assert_eq!(
        (bad_auth.status, bad_auth.json()["responseCode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("BE1423005"))
    );
    let [authorization, _] = paytm_headers("sandbox-client", "sandbox-secret");
    let no_device = h.post(&path, &[authorization], body()).await;
    assert_eq!(no_device.json()["responseCode"], "BE1423012");
    let other_device = h.post(&path, &[authorization, ("x-device-identifier", "another")], body()).await;
    assert_eq!(other_device.json()["responseCode"], "BE1423013");
    let ok = h.post(&path, &paytm_headers("sandbox-client", "sandbox-secret"), body()).await;
    let answer = ok.json();
    assert_eq!(answer["responseCode"], "BE1400001", "{answer}");
    assert!(answer["tokens"]["access_token"].is_string());
    let spent = h.post(&path, &paytm_headers("sandbox-client", "sandbox-secret"), body()).await;
    assert_eq!(spent.json()["responseCode"], "1006");
}

#[tokio::test]
async fn iserveu_registration_consumes_only_a_registration_otp() {
    let h = harness_with(SandboxConfig::default().fixed_otp("246810")).await;
    let register =
        |otp: &str| json!({"mobileNumber": "9876543210", "otp": otp, "name": "Asha", "username": "sandboxuser"});
    // A transaction OTP is not a registration OTP.
    assert_eq!(h.iserveu(&iserveu_transaction("9876543210")).await.json()["statusCode"], "0");
    let refused = h
        .post(
            ISERVEU_REGISTRATION,
            &[("client_id", "sandbox-client"), ("client_secret", "sandbox-secret")],
            register("246810").to_string(),
        )
        .await;
    assert_eq!(
        (refused.json()["statusCode"].clone(), refused.json()["statusDesc"].clone()),
        (json!("-1"), json!("Invalid OTP"))
    );
    let send = json!({"otpType": "1", "customerMobileNumber": "9876543210", "username": "sandboxuser",
                      "ovdType": "AADHAAR", "ovdData": "765386439745"});
    assert_eq!(h.iserveu(&send).await.json()["statusCode"], "0");
    let bad_secret = h
        .post(
            ISERVEU_REGISTRATION,
            &[("client_id", "sandbox-client"), ("client_secret", "x")],
            register("246810").to_string(),
        )
        .await;
    assert_eq!(bad_secret.status, StatusCode::UNAUTHORIZED);
    let ok = h
        .post(
            ISERVEU_REGISTRATION,
            &[("client_id", "sandbox-client"), ("client_secret", "sandbox-secret")],
            register("246810").to_string(),
        )
        .await;
    assert_eq!(ok.json()["statusCode"], "0", "{}", ok.text);
}

#[tokio::test]
async fn aopay_register_remitter_needs_the_code_zero_reference() {
    let h = harness_with(SandboxConfig::default().fixed_otp("246810")).await;
    let send = json!({"MobileNumber": "9000000005", "BeneID": "B1", "Txntype": "IMPS", "Amount": "10", "Pincode": "560001",
                      "Address": "x", "DOB": "01/01/1990", "Latitude": "1", "Longitute": "2", "RegistrationID": "AOP-SANDBOX"});
    let sent = h.aopay(&send).await.json();
    assert_eq!(sent["response_code"], 0);
    let state = sent["stateresp"].as_str().unwrap().to_owned();
    let register = |registration: &str, otp: &str| {
        json!({"MobileNumber": "9000000005", "OTP": otp, "Stateresp": state, "RegistrationID": registration})
            .to_string()
    };
    let forged = h.post(AOPAY_REGISTER, &[], register("AOP-OTHER", "246810")).await;
    assert_eq!((forged.status, forged.json()["response_code"].clone()), (StatusCode::UNAUTHORIZED, json!(11)));
    let wrong = h.post(AOPAY_REGISTER, &[], register("AOP-SANDBOX", "135790")).await;
    assert_eq!(
        (wrong.json()["response_code"].clone(), wrong.json()["message"].clone()),
        (json!(2), json!("Invalid OTP"))
    );
    let ok = h.post(AOPAY_REGISTER, &[], register("AOP-SANDBOX", "246810")).await;
    assert_eq!(ok.json()["response_code"], 1, "{}", ok.text);
    assert_eq!(ok.json()["data"]["mobile"], "9000000005");
}

// ------------------------------------------------------------------ a server that survives its clients

/// A connection that sends nothing; `closed` says whether the server hung up on it.
struct Silent(tokio::net::TcpStream);

impl Silent {
    async fn open(h: &Harness) -> Self {
        Self(tokio::net::TcpStream::connect(h.sandbox.addr()).await.unwrap())
    }

    /// Whether the server closed it within `within`.
    async fn closed(&mut self, within: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(within, self.0.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
    }
}

#[tokio::test]
async fn idle_clients_beyond_the_cap_are_closed_fast_and_health_still_answers() {
    let h = harness_with(SandboxConfig::default().max_connections(3)).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(Silent::open(&h).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Beyond the cap, a real request still gets through (served with a short header timeout).
    let health = reqwest::Client::new().get(h.url("/__sandbox/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // An idle connection beyond the cap is closed within about a second.
    let mut overflow = Silent::open(&h).await;
    assert!(overflow.closed(Duration::from_secs(3)).await, "an idle overflow connection is closed fast");
    // The first three are still open (their timeout is 10 s).
    assert!(!idle[0].closed(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn a_graceful_shutdown_lets_a_request_in_flight_finish() {
    let config = SandboxConfig::default().slow_answer_delay(Duration::from_millis(500));
    let sandbox = Sandbox::start(config).await.unwrap();
    let url = format!("{}{AOPAY}", sandbox.base_url());
    let slow = tokio::spawn(async move {
        let body = aopay_body("9000000004").to_string();
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body).send().await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sandbox.shutdown(Duration::from_secs(5)).await;
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "the request in flight got its answer");
}

#[tokio::test]
async fn a_slowloris_client_is_closed_after_the_header_timeout() {
    let h = harness().await;
    let mut slow = Silent::open(&h).await;
    let started = Instant::now();
    slow.0.write_all(b"GET /__sandbox/health HTTP/1.1\r\n").await.unwrap();
    // A header line every two seconds: never a whole request.
    let mut closed = false;
    for i in 0..10 {
        if slow.0.write_all(format!("x-trickle-{i}: 1\r\n").as_bytes()).await.is_err()
            || slow.closed(Duration::from_secs(2)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(15), "closed by the 10 s header timeout: {:?}", started.elapsed());
    // The server kept answering meanwhile.
    assert_eq!(h.get("/__sandbox/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_invalid_chunked_body_is_described_as_such_not_as_too_large() {
    let h = harness().await;
    let mut socket = tokio::net::TcpStream::connect(h.sandbox.addr()).await.unwrap();
    let request = format!(
        "POST {PHONEPE} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = socket.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("could not be read") && !response.contains("64 KiB"), "{response}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_in_prometheus_text() {
    let h = harness().await;
    h.phonepe("9876543210").await;
    h.phonepe("9000000002").await;
    let metrics = h.get("/__sandbox/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.content_type.starts_with("text/plain"), "{}", metrics.content_type);
    let text = metrics.text;
    assert!(text.contains(r#"sandbox_requests_total{route="/v3/merchant/otp/send",status="200"} 2"#), "{text}");
    assert!(text.contains(r#"sandbox_request_duration_seconds_count{route="/v3/merchant/otp/send"} 2"#), "{text}");
    assert!(text.contains("sandbox_numbers_kept 1"), "the magic number keeps no state: {text}");
    assert!(text.contains("\nsandbox_refused_full_total 0\n"), "counted from the start: {text}");
    assert!(!text.contains("9876543210"), "no number in a label");
}
