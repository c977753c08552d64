//! What several end-to-end tests build alike: one client per gateway with the sandbox's
//! credentials, and one valid request per gateway, in the order PhonePe, Paytm, iServeU, AOPay.

#![allow(dead_code)] // Each test file uses what it needs.

use otp::{Environment, GatewayClient, HttpOptions, MobileNumber, SendOtpRequest};
use otp_sandbox::credentials;

/// A client per gateway for the sandbox (or any server) at `base_url`.
pub fn sandbox_clients(base_url: &str, http: HttpOptions) -> Vec<GatewayClient> {
    let env = || Environment::Custom(base_url.to_owned());
    vec![
        otp::phonepe::PhonePeClient::builder()
            .merchant_id(credentials::PHONEPE_MERCHANT_ID)
            .salt_key(credentials::PHONEPE_SALT_KEY)
            .salt_index(credentials::PHONEPE_SALT_INDEX)
            .environment(env())
            .http(http.clone())
            .build()
            .unwrap()
            .into(),
        otp::paytm::PaytmClient::builder()
            .client_id(credentials::PAYTM_CLIENT_ID)
            .client_secret(credentials::PAYTM_CLIENT_SECRET)
            .environment(env())
            .http(http.clone())
            .build()
            .unwrap()
            .into(),
        otp::iserveu::IServeUClient::builder()
            .client_id(credentials::ISERVEU_CLIENT_ID)
            .client_secret(credentials::ISERVEU_CLIENT_SECRET)
            .username(credentials::ISERVEU_USERNAME)
            .environment(env())
            .http(http.clone())
            .build()
            .unwrap()
            .into(),
        otp::aopay::AOPayClient::builder()
            .registration_id(credentials::AOPAY_REGISTRATION_ID)
            .environment(env())
            .http(http)
            .build()
            .unwrap()
            .into(),
    ]
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
