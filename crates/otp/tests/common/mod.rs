//! What several end-to-end tests build alike: one client per gateway with the sandbox's
//! credentials, and one valid request per gateway, in the order PhonePe, Paytm, iServeU, AOPay.

#![allow(dead_code)] // Each test file uses what it needs.

use otp::sandbox::Sandbox;
use otp::{
    ClientOptions, Environment, Gateway, GatewayClient, HttpOptions, MobileNumber, OtpCode, SecretString,
    SendOtpRequest, VerifyRequest,
};

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

/// A valid request per gateway to `mobile`, in the order of `Gateway::ALL`.
pub fn sample_requests(mobile: &str) -> Vec<SendOtpRequest> {
    Gateway::ALL.into_iter().map(|gateway| sample_request(gateway, mobile)).collect()
}

/// A valid send request of `gateway` to `mobile`. A gateway without one fails every test that
/// runs every gateway.
pub fn sample_request(gateway: Gateway, mobile: &str) -> SendOtpRequest {
    let number = || MobileNumber::parse(mobile).unwrap();
    match gateway {
        Gateway::PhonePe => otp::phonepe::SendOtpRequest::new(number()).into(),
        Gateway::Paytm => otp::paytm::SendOtpRequest::new(number(), "device-0042").scope("paytm").into(),
        Gateway::IServeU => otp::iserveu::TransactionOtpRequest::new(
            number(),
            "AADHAAR",
            "REF123456",
            otp::Amount::parse("100").unwrap(),
        )
        .into(),
        Gateway::AOPay => aopay_send(mobile).into(),
        other => panic!("no sample request for {other}: add one to tests/common/mod.rs"),
    }
}

/// A request its gateway would refuse, of either step.
#[derive(Debug)]
pub enum Invalid {
    /// A send.
    Send(SendOtpRequest),
    /// A verify.
    Verify(VerifyRequest),
}

/// Requests of `gateway` that its checks must refuse (`invalid_request`, nothing sent): each
/// with a field the gateway would refuse. AOPay's send has none: its constructors refuse every
/// such field, so no invalid AOPay send can be made (its crate's own tests bypass them).
pub fn invalid_requests(gateway: Gateway) -> Vec<Invalid> {
    let number = || MobileNumber::parse("9876543210").unwrap();
    let reference = || SecretString::new("reference-1");
    let long = |n: usize| "x".repeat(n);
    match gateway {
        Gateway::PhonePe => vec![
            Invalid::Send(otp::phonepe::SendOtpRequest::new(number()).device_id(long(200)).into()),
            Invalid::Send(otp::phonepe::SendOtpRequest::new(number()).email("not-an-email").into()),
            Invalid::Verify(
                otp::phonepe::VerifyOtpRequest::new(reference(), code("123456")).device_id(long(65)).into(),
            ),
        ],
        Gateway::Paytm => vec![
            Invalid::Send(otp::paytm::SendOtpRequest::new(number(), long(200)).scope("paytm").into()),
            Invalid::Send(otp::paytm::SendOtpRequest::new(number(), "device-0042").into()),
            Invalid::Verify(otp::paytm::VerifyOtpRequest::new(reference(), code("123456"), long(200)).unwrap().into()),
        ],
        Gateway::IServeU => vec![
            Invalid::Send(
                otp::iserveu::TransactionOtpRequest::new(
                    number(),
                    "AADHAAR",
                    long(23),
                    otp::Amount::parse("1").unwrap(),
                )
                .into(),
            ),
            Invalid::Send(
                otp::iserveu::RegistrationOtpRequest::new(number(), long(65), otp::IdentityNumber::new("765386439745"))
                    .into(),
            ),
            Invalid::Verify(otp::iserveu::CompleteRegistrationRequest::new(number(), code("123456"), long(101)).into()),
        ],
        Gateway::AOPay => vec![
            Invalid::Verify(otp::aopay::RegisterRemitterRequest::new(number(), code("123456"), long(65).into()).into()),
            Invalid::Verify(
                otp::aopay::RegisterRemitterRequest::new(number(), code("123456"), reference()).kyc_id(long(65)).into(),
            ),
        ],
        other => panic!("no invalid requests for {other}: add some to tests/common/mod.rs"),
    }
}

/// Where, in `gateway`'s sample request as JSON (`sample_request`), a field sits that the
/// gateway would refuse when too long, and a value too long for it.
pub fn over_long_field(gateway: Gateway) -> (&'static [&'static str], String) {
    match gateway {
        Gateway::PhonePe => (&["PhonePe", "device_id"], "x".repeat(200)),
        Gateway::Paytm => (&["Paytm", "device_identifier"], "x".repeat(200)),
        Gateway::IServeU => (&["IServeU", "Transaction", "external_ref"], "x".repeat(23)),
        Gateway::AOPay => (&["AOPay", "remitter", "address"], "x".repeat(201)),
        other => panic!("no over-long field for {other}: add one to tests/common/mod.rs"),
    }
}
