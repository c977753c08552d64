//! What several end-to-end tests build alike: one client per gateway with the sandbox's
//! credentials, and one valid request per gateway, in the order PhonePe, Paytm, iServeU, AOPay.

#![allow(dead_code)] // Each test file uses what it needs.

use otp::{ClientOptions, Environment, Gateway, GatewayClient, HttpOptions, MobileNumber, SendOtpRequest};

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
        otp::aopay::SendOtpRequest::new(
            number(),
            "BENE1001",
            otp::aopay::TransactionType::Imps,
            otp::Amount::parse("100").unwrap(),
            otp::aopay::Remitter::new(
                "12 MG Road",
                otp::Pincode::parse("560001").unwrap(),
                otp::aopay::DateOfBirth::parse("20/08/1990").unwrap(),
                otp::Coordinates::new("12.97", "77.59").unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
        .into(),
    ]
}
