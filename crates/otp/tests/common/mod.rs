//! What several end-to-end tests build alike: one client per gateway with the sandbox's
//! credentials, and the fixtures each gateway supplies, keyed by `Gateway` with an exhaustive
//! `match`: a gateway without them does not compile, and every test that iterates
//! `Gateway::ALL` runs it.

#![allow(dead_code)] // Each test file uses what it needs.
#![warn(clippy::wildcard_enum_match_arm)] // Every fixture names every gateway.

/// The verifier's end-to-end tests' shared parts (a real Redis, a wrapped client).
#[cfg(feature = "redis")]
pub mod sessions;

use std::time::Duration;

use otp::sandbox::Sandbox;
use otp::{
    ClientOptions, Environment, Gateway, GatewayClient, HttpOptions, MobileNumber, OtpCode, Outcome, SecretString,
    SendOtpRequest, SendReceipt, VerifyExtras, VerifyRequest,
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

/// A client of `gateway` for the sandbox (or any server) at `base_url`.
pub fn client_at(gateway: Gateway, base_url: &str, http: HttpOptions) -> GatewayClient {
    let options = ClientOptions::new().environment(Environment::Custom(base_url.to_owned())).http(http);
    otp::sandbox::client(gateway, options).unwrap()
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
    }
}

/// A send whose OTP its gateway's second step consumes, with what that step needs.
pub struct Verifiable {
    /// The number it goes to (in the sandbox, AOPay issues a registration OTP to 9000000005 only).
    pub mobile: &'static str,
    /// The send.
    pub send: SendOtpRequest,
    /// The customer's extras its check needs.
    pub extras: VerifyExtras,
    /// Whether a verified check returns a credential (PhonePe `userAuthToken`, Paytm's access token).
    pub credential: bool,
    /// The verify request written by hand from the gateway's docs, not through its profile.
    pub by_hand: fn(&SendReceipt, OtpCode) -> VerifyRequest,
}

/// `gateway`'s verifiable send.
pub fn verifiable(gateway: Gateway) -> Verifiable {
    let number = |digits: &str| MobileNumber::parse(digits).unwrap();
    match gateway {
        Gateway::PhonePe => Verifiable {
            mobile: "9876543210",
            send: otp::phonepe::SendOtpRequest::new(number("9876543210")).device_id("device-3").into(),
            extras: VerifyExtras::new(),
            credential: true,
            by_hand: |sent, code| {
                otp::phonepe::VerifyOtpRequest::new(sent.reference.clone().unwrap(), code).device_id("device-3").into()
            },
        },
        Gateway::Paytm => Verifiable {
            mobile: "9876543211",
            send: otp::paytm::SendOtpRequest::new(number("9876543211"), "device-7").scope("paytm").into(),
            extras: VerifyExtras::new(),
            credential: true,
            by_hand: |sent, code| {
                otp::paytm::VerifyOtpRequest::new(sent.reference.clone().unwrap(), code, "device-7").unwrap().into()
            },
        },
        Gateway::IServeU => Verifiable {
            mobile: "9876543212",
            send: otp::iserveu::RegistrationOtpRequest::new(
                number("9876543212"),
                "AADHAAR",
                otp::IdentityNumber::new("765386439745"),
            )
            .into(),
            extras: VerifyExtras::new().customer_name("Asha Rao"),
            credential: false,
            by_hand: |_, code| {
                otp::iserveu::CompleteRegistrationRequest::new(
                    MobileNumber::parse("9876543212").unwrap(),
                    code,
                    "Asha Rao",
                )
                .into()
            },
        },
        Gateway::AOPay => Verifiable {
            mobile: "9000000005",
            send: aopay_send("9000000005").into(),
            extras: VerifyExtras::new().kyc_id("KYC-0042"),
            credential: false,
            by_hand: |sent, code| {
                let mobile = MobileNumber::parse("9000000005").unwrap();
                otp::aopay::RegisterRemitterRequest::new(mobile, code, sent.reference.clone().unwrap())
                    .kyc_id("KYC-0042")
                    .into()
            },
        },
    }
}

/// A send of `gateway` whose OTP has no verify call (a transaction OTP, consumed by a
/// payment), how the sandbox answers it, and what a check of it is told; `None` where every
/// OTP of the gateway has one.
pub fn unverifiable(gateway: Gateway) -> Option<(SendOtpRequest, Outcome, &'static str)> {
    match gateway {
        Gateway::PhonePe | Gateway::Paytm => None,
        Gateway::IServeU => Some((
            sample_request(Gateway::IServeU, "9876543213"),
            Outcome::Sent,
            "an iServeU transaction OTP is checked by iServeU's money-transfer call with the same externalRefNumber, not here",
        )),
        Gateway::AOPay => Some((
            aopay_send("9876543214").into(),
            Outcome::Sent,
            "an AOPay transaction OTP is checked by AOPay's transfer call, not here",
        )),
    }
}

/// Whether `gateway`'s sample request (`sample_request`) may be sent again as a resend.
pub fn sample_may_be_resent(gateway: Gateway) -> bool {
    match gateway {
        Gateway::PhonePe | Gateway::Paytm | Gateway::AOPay => true,
        // The sample is a transaction OTP, which wants a new externalRefNumber each time.
        Gateway::IServeU => false,
    }
}

/// As docs/gateways/README.md says: AOPay 90 s, the others 10 minutes.
pub fn documented_validity(gateway: Gateway) -> Duration {
    match gateway {
        Gateway::PhonePe | Gateway::Paytm | Gateway::IServeU => Duration::from_secs(600),
        Gateway::AOPay => Duration::from_secs(90),
    }
}

/// The CLI's environment variables, as its docs name them.
pub fn documented_env_vars(gateway: Gateway) -> &'static [&'static str] {
    match gateway {
        Gateway::PhonePe => &["OTP_PHONEPE_MERCHANT_ID", "OTP_PHONEPE_SALT_KEY", "OTP_PHONEPE_SALT_INDEX"],
        Gateway::Paytm => &["OTP_PAYTM_CLIENT_ID", "OTP_PAYTM_CLIENT_SECRET"],
        Gateway::IServeU => &["OTP_ISERVEU_CLIENT_ID", "OTP_ISERVEU_CLIENT_SECRET", "OTP_ISERVEU_USERNAME"],
        Gateway::AOPay => &["OTP_AOPAY_REGISTRATION_ID"],
    }
}
