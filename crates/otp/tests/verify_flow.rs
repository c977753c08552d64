//! The second step end to end, SDK against the sandbox: send, read the code from the inbox,
//! verify; and every way a verification fails (verify.md, sandbox.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::time::Duration;

mod common;
use common::{aopay_send, code, inbox_code, sandbox_client, wrong};

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::{
    aopay, iserveu, paytm, phonepe, ErrorKind, Gateway, GatewayClient, IdentityNumber, MobileNumber, OtpCode, Outcome,
    SecretString, VerifyRequest,
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

#[tokio::test]
async fn every_gateway_verifies_the_code_it_sent() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();

    let token = phonepe_send(&sandbox, "9876543210").await;
    let otp = inbox_code(&sandbox, "9876543210");
    let request: VerifyRequest = phonepe::VerifyOtpRequest::new(token, code(&otp)).into();
    let receipt = client(&sandbox, Gateway::PhonePe).verify_otp(&request).await.unwrap();
    assert_eq!((receipt.gateway, receipt.outcome), (Gateway::PhonePe, Outcome::Verified));
    assert!(receipt.credential.is_some(), "userAuthToken");

    let paytm_client = client(&sandbox, Gateway::Paytm);
    let send = paytm::SendOtpRequest::new(number("9876543211"), "device-7").scope("paytm").into();
    let state_token = paytm_client.send_otp(&send).await.unwrap().reference.unwrap();
    let otp = inbox_code(&sandbox, "9876543211");
    let request = paytm::VerifyOtpRequest::new(state_token, code(&otp), "device-7").unwrap().into();
    let receipt = paytm_client.verify_otp(&request).await.unwrap();
    assert!(receipt.credential.is_some(), "tokens.access_token");

    let iserveu_client = client(&sandbox, Gateway::IServeU);
    let send =
        iserveu::RegistrationOtpRequest::new(number("9876543212"), "AADHAAR", IdentityNumber::new("765386439745"));
    iserveu_client.send_otp(&send.into()).await.unwrap();
    let otp = inbox_code(&sandbox, "9876543212");
    let request = iserveu::CompleteRegistrationRequest::new(number("9876543212"), code(&otp), "Asha Rao").into();
    let receipt = iserveu_client.verify_otp(&request).await.unwrap();
    assert_eq!((receipt.provider_code.as_str(), receipt.credential.is_none()), ("0", true));

    // 9000000005: AOPay answers code 0 and issues a registration OTP.
    let aopay_client = client(&sandbox, Gateway::AOPay);
    let send = common_aopay_send("9000000005");
    let sent = aopay_client.send_otp(&send).await.unwrap();
    assert_eq!(sent.outcome, Outcome::SentForRegistration);
    let otp = inbox_code(&sandbox, "9000000005");
    let request = aopay::RegisterRemitterRequest::new(number("9000000005"), code(&otp), sent.reference.unwrap()).into();
    let receipt = aopay_client.verify_otp(&request).await.unwrap();
    assert_eq!(receipt.provider_code, "1");
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
