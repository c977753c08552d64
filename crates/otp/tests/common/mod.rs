//! What several end-to-end tests build alike: one client per gateway with the sandbox's
//! credentials, and one valid request per gateway, in the order PhonePe, Paytm, iServeU, AOPay.

#![allow(dead_code)] // Each test file uses what it needs.

use otp::sandbox::Sandbox;
use otp::{ClientOptions, Environment, Gateway, GatewayClient, HttpOptions, MobileNumber, OtpCode, SendOtpRequest};

/// A client of `gateway` for this sandbox, with default options.
pub fn sandbox_client(sandbox: &Sandbox, gateway: Gateway) -> GatewayClient {
    otp::sandbox::client(gateway, ClientOptions::new().environment(Environment::Custom(sandbox.base_url()))).unwrap()
}

pub fn code(digits: &str) -> OtpCode {
    OtpCode::parse(digits).unwrap()
}

/// A code that is not the one issued.
pub fn wrong(issued: &str) -> OtpCode {
    code(if issued == "111111" { "222222" } else { "111111" })
}

/// The code the sandbox issued last to a number.
pub fn inbox_code(sandbox: &Sandbox, mobile: &str) -> String {
    sandbox.otps(mobile)[0].otp.clone()
}

/// A valid AOPay send to `mobile` (9000000005 is answered "sent for registration").
pub fn aopay_send(mobile: &str) -> otp::aopay::SendOtpRequest {
    let remitter = otp::aopay::Remitter::new(
        "12 MG Road",
        otp::Pincode::parse("560001").unwrap(),
        otp::aopay::DateOfBirth::parse("20/08/1990").unwrap(),
        otp::Coordinates::new("12.97", "77.59").unwrap(),
    )
    .unwrap();
    let amount = otp::Amount::parse("100").unwrap();
    otp::aopay::SendOtpRequest::new(
        mobile.parse().unwrap(),
        "BENE1001",
        otp::aopay::TransactionType::Imps,
        amount,
        remitter,
    )
    .unwrap()
}

/// A client per gateway for the sandbox (or any server) at `base_url`.
pub fn sandbox_clients(base_url: &str, http: HttpOptions) -> Vec<GatewayClient> {
    let options = ClientOptions::new().environment(Environment::Custom(base_url.to_owned())).http(http);
    [Gateway::PhonePe, Gateway::Paytm, Gateway::IServeU, Gateway::AOPay]
        .into_iter()
        .map(|gateway| otp::sandbox::client(gateway, options.clone()).unwrap())
        .collect()
}

/// A valid request per gateway to `mobile`.
pub fn sample_requests(mobile: &str) -> Vec<SendOtpRequest> {
    let number = || MobileNumber::parse(mobile).unwrap();
    vec![
        otp::phonepe::SendOtpRequest::new(number()).into(),
        otp::paytm::SendOtpRequest::new(number(), "device-0042").scope("paytm").into(),
        otp::iserveu::TransactionOtpRequest::new(number(), "AADHAAR", "REF123456", otp::Amount::parse("100").unwrap())
            .into(),
        aopay_send(mobile).into(),
    ]
}
