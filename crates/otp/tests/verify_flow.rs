//! The second step end to end, SDK against the sandbox: send, read the code from the inbox,
//! verify; and every way a verification fails (docs/gateways/verify.md, docs/sandbox.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::time::Duration;

mod common;
use common::{aopay_send, code, inbox_code, sandbox_client, unverifiable, verifiable, wrong};

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::{
    aopay, paytm, phonepe, ErrorKind, Gateway, GatewayClient, MobileNumber, OtpCode, Outcome, SecretString,
    VerifyExtras, VerifyRequest,
};

fn client(sandbox: &Sandbox, gateway: Gateway) -> GatewayClient {
    sandbox_client(sandbox, gateway)
}

fn number(digits: &str) -> MobileNumber {
    digits.parse().unwrap()
}

async fn phonepe_send(sandbox: &Sandbox, mobile: &str) -> SecretString {
    let request = phonepe::SendOtpRequest::new(number(mobile)).into();
    client(sandbox, Gateway::PhonePe).send_otp(&request).await.unwrap().reference.unwrap()
}

/// Every gateway, from its fixture: send, read the code from the inbox, verify, once with the
/// verify request written by hand and once with the one its profile derives
/// (`SendOtpRequest::verify_request`, what the verifier and `otp send --verify` use).
#[tokio::test]
async fn every_gateway_verifies_the_code_it_sent_by_hand_and_through_its_profile() {
    for through_profile in [false, true] {
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        for gateway in Gateway::ALL {
            let fixture = verifiable(gateway);
            let client = client(&sandbox, gateway);
            fixture.send.validate_verify(&fixture.extras).unwrap();
            let sent = client.send_otp(&fixture.send).await.unwrap();
            let otp = code(&inbox_code(&sandbox, fixture.mobile));
            let request = if through_profile {
                fixture.send.verify_request(sent.reference.as_ref(), sent.outcome, otp, &fixture.extras).unwrap()
            } else {
                (fixture.by_hand)(&sent, otp)
            };
            assert_eq!(request.gateway(), gateway);
            let receipt = client.verify_otp(&request).await.unwrap();
            assert_eq!((receipt.gateway, receipt.outcome), (gateway, Outcome::Verified), "{gateway}");
            assert_eq!(receipt.credential.is_some(), fixture.credential, "{gateway}: credential");
        }
    }
}

/// A transaction OTP has no verify call: its check is refused, nothing sent, with the message
/// the verifier has always given.
#[tokio::test]
async fn an_otp_without_a_verify_call_is_refused_a_check_unsent() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut refused = 0;
    for gateway in Gateway::ALL {
        let Some((send, outcome, message)) = unverifiable(gateway) else { continue };
        let sent = client(&sandbox, gateway).send_otp(&send).await.unwrap();
        assert_eq!(sent.outcome, outcome, "{gateway}: the sandbox answers it as a transaction OTP");
        let connections = sandbox.connections_accepted();
        let error = send.verify_request(sent.reference.as_ref(), sent.outcome, code("123456"), &VerifyExtras::new());
        let error = error.unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, otp::Reached::No));
        assert_eq!((error.gateway(), error.description()), (Some(gateway), message));
        assert_eq!(sandbox.connections_accepted(), connections, "{gateway}: nothing sent");
        refused += 1;
    }
    assert!(refused > 0, "the fixtures name the gateways with such OTPs: none ran");
}

fn common_aopay_send(mobile: &str) -> otp::SendOtpRequest {
    aopay_send(mobile).into()
}

#[tokio::test]
async fn wrong_codes_count_and_the_sixth_finds_the_otp_spent() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let token = phonepe_send(&sandbox, "9876543220").await;
    let issued = inbox_code(&sandbox, "9876543220");
    let client = client(&sandbox, Gateway::PhonePe);
    let attempt = |otp: OtpCode| {
        let request: VerifyRequest = phonepe::VerifyOtpRequest::new(token.clone(), otp).into();
        let client = client.clone();
        async move { client.verify_otp(&request).await }
    };
    for _ in 0..5 {
        let error = attempt(wrong(&issued)).await.unwrap_err();
        assert_eq!((error.kind(), error.provider_code()), (ErrorKind::WrongOtp, Some("OTP_VERIFY_FAILED")));
    }
    // Out of tries: even the right code no longer verifies.
    let error = attempt(code(&issued)).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::OtpExpired, Some("OTP_ALREADY_VERIFIED")));
}

#[tokio::test]
async fn a_verified_code_is_spent_and_a_stale_token_is_refused() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = client(&sandbox, Gateway::PhonePe);
    let old = phonepe_send(&sandbox, "9876543230").await;
    let old_code = inbox_code(&sandbox, "9876543230");
    let new = phonepe_send(&sandbox, "9876543230").await;
    let new_code = inbox_code(&sandbox, "9876543230");
    let verify = |token: &SecretString, otp: &str| -> VerifyRequest {
        phonepe::VerifyOtpRequest::new(token.clone(), code(otp)).into()
    };
    let error = client.verify_otp(&verify(&old, &old_code)).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::OtpExpired, Some("INVALID_OTP_TOKEN")));
    client.verify_otp(&verify(&new, &new_code)).await.unwrap();
    let error = client.verify_otp(&verify(&new, &new_code)).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::OtpExpired, Some("OTP_ALREADY_VERIFIED")));
}

#[tokio::test]
async fn paytm_refuses_another_device_and_a_wrong_code() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = client(&sandbox, Gateway::Paytm);
    let send = paytm::SendOtpRequest::new(number("9876543240"), "device-a").scope("paytm").into();
    let state_token = client.send_otp(&send).await.unwrap().reference.unwrap();
    let issued = inbox_code(&sandbox, "9876543240");
    let on = |device: &str, otp: OtpCode| -> VerifyRequest {
        paytm::VerifyOtpRequest::new(state_token.clone(), otp, device).unwrap().into()
    };
    let error = client.verify_otp(&on("device-b", code(&issued))).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::InvalidRequest, Some("BE1423013")));
    let error = client.verify_otp(&on("device-a", wrong(&issued))).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_code()), (ErrorKind::WrongOtp, Some("403")));
    client.verify_otp(&on("device-a", code(&issued))).await.unwrap();
}

#[tokio::test]
async fn an_aopay_registration_otp_expires_and_a_fixed_otp_is_issued_when_asked() {
    let config = SandboxConfig::default().aopay_otp_validity(Duration::from_millis(200)).fixed_otp("123456");
    let sandbox = Sandbox::start(config).await.unwrap();
    let client = client(&sandbox, Gateway::AOPay);
    let sent = client.send_otp(&common_aopay_send("9000000005")).await.unwrap();
    assert_eq!(inbox_code(&sandbox, "9000000005"), "123456");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = aopay::RegisterRemitterRequest::new(number("9000000005"), code("123456"), sent.reference.unwrap());
    let error = client.verify_otp(&request.into()).await.unwrap_err();
    assert_eq!((error.kind(), error.provider_message()), (ErrorKind::Rejected, Some("OTP expired")));
}

#[tokio::test]
async fn a_verify_request_for_another_gateway_is_refused_unsent() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let request: VerifyRequest = phonepe::VerifyOtpRequest::new(SecretString::new("OTPx"), code("123456")).into();
    let error = client(&sandbox, Gateway::Paytm).verify_otp(&request).await.unwrap_err();
    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, otp::Reached::No));
    assert_eq!(sandbox.connections_accepted(), 0);
}
