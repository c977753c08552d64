//! The per-gateway seam: what a gateway *is*, beside the calls it offers.
//!
//! [`operation`](crate::operation) describes each call a gateway offers; a [`GatewayProfile`]
//! describes the gateway itself, once, in its own crate: which [`Gateway`] it is, its send and
//! verify request types, the settings its client is built from, how long its OTP stays valid
//! ([`Gateway::otp_validity`]), the number a send goes to, how its verify request follows from
//! a send, the send's receipt, the customer's code and the [`VerifyExtras`] (or that there is no
//! verify call), and whether a send may be repeated as a resend. The `otp` umbrella generates
//! everything that dispatches on the gateway (its `GatewayClient`, the verifier's
//! `SessionGateway`, the sandbox's clients) from profiles and one line per gateway, so no
//! per-gateway knowledge lives outside the gateway's crate.
//!
//! ```
//! use std::time::Duration;
//! use otp_core::http::{RawResponse, Transport, WireRequest};
//! use otp_core::operation::{Client, Operation, OperationKind, Request};
//! use otp_core::profile::{self, GatewayProfile, Setting, VerifyExtras};
//! use otp_core::{
//!     ClientOptions, Error, Gateway, HttpOptions, KnownHosts, MobileNumber, OtpCode, Outcome, RequiredSettings,
//!     SecretString, SendReceipt, VerifyReceipt,
//! };
//!
//! # #[derive(Clone)]
//! struct ExampleClient { transport: Transport }
//! struct Send { mobile: MobileNumber }
//! struct Verify { token: SecretString, code: OtpCode }
//! # impl Client for ExampleClient { fn transport(&self) -> &Transport { &self.transport } }
//! # impl Request for Send {
//! #     fn mobile(&self) -> Option<&MobileNumber> { Some(&self.mobile) }
//! #     fn validate(&self) -> Result<(), Error> { Ok(()) }
//! # }
//! # impl Request for Verify {
//! #     fn mobile(&self) -> Option<&MobileNumber> { None }
//! #     fn validate(&self) -> Result<(), Error> { Ok(()) }
//! # }
//! # impl Operation<Send> for ExampleClient {
//! #     type Output = SendReceipt;
//! #     const KIND: OperationKind = OperationKind::Send;
//! #     fn wire_request(&self, _: &Send) -> Result<WireRequest, Error> { Ok(WireRequest::post_json("/send", Vec::new())) }
//! #     fn decode(&self, _: &Send, _: &RawResponse) -> Result<SendReceipt, Error> { Err(Error::unexpected("example")) }
//! # }
//! # impl Operation<Verify> for ExampleClient {
//! #     type Output = VerifyReceipt;
//! #     const KIND: OperationKind = OperationKind::Verify;
//! #     fn wire_request(&self, _: &Verify) -> Result<WireRequest, Error> { Ok(WireRequest::post_json("/verify", Vec::new())) }
//! #     fn decode(&self, _: &Verify, _: &RawResponse) -> Result<VerifyReceipt, Error> { Err(Error::unexpected("example")) }
//! # }
//! const HOSTS: KnownHosts = KnownHosts { uat: "https://uat.example.com", production: None };
//!
//! impl GatewayProfile for ExampleClient {
//!     const GATEWAY: Gateway = Gateway::Paytm;
//!     const SETTINGS: &'static [Setting] = &[Setting::required("client_id")];
//!     type SendRequest = Send;
//!     type VerifyRequest = Verify;
//!
//!     fn from_settings(
//!         settings: &mut dyn FnMut(&'static str) -> Option<String>,
//!         options: ClientOptions,
//!     ) -> Result<Self, Error> {
//!         let mut required = RequiredSettings::new();
//!         let _client_id = required.text("client id", settings("client_id"));
//!         required.finish(Self::GATEWAY)?;
//!         Ok(ExampleClient { transport: options.transport(Self::GATEWAY, &HOSTS)? })
//!     }
//!
//!     fn mobile(request: &Send) -> &MobileNumber {
//!         &request.mobile
//!     }
//!
//!     fn validate_verify(_: &Send, _: &VerifyExtras) -> Result<(), Error> {
//!         Ok(()) // The check takes nothing but the send's reference and the code.
//!     }
//!
//!     fn verify_request(
//!         _: &Send,
//!         reference: Option<&SecretString>,
//!         _: Outcome,
//!         code: OtpCode,
//!         _: &VerifyExtras,
//!     ) -> Result<Verify, Error> {
//!         Ok(Verify { token: profile::reference(reference)?, code })
//!     }
//!
//!     fn check_resend(_: &Send) -> Result<(), Error> {
//!         Ok(())
//!     }
//! }
//!
//! assert_eq!(ExampleClient::OTP_VALIDITY, Duration::from_secs(600));
//! assert_eq!(ExampleClient::SETTINGS[0].env_var(ExampleClient::GATEWAY), "OTP_PAYTM_CLIENT_ID");
//! ```

use std::fmt;
use std::time::Duration;

use crate::operation::{Client, Operation, Request};
use crate::{ClientOptions, Error, Gateway, MobileNumber, OtpCode, Outcome, SecretString, SendReceipt, VerifyReceipt};

/// What a gateway is, beside the calls it offers: implemented once per gateway, on its client.
///
/// Every fact the umbrella, the verifier, the sandbox's clients and the CLI need about a
/// gateway is here or on [`Gateway`], so that a new gateway is its crate plus one line in each
/// registry. The client runs both requests through [`operation::execute`](crate::operation::execute)
/// (the supertraits say it can).
pub trait GatewayProfile:
    Client
    + Operation<Self::SendRequest, Output = SendReceipt>
    + Operation<Self::VerifyRequest, Output = VerifyReceipt>
    + Sized
{
    /// The gateway this is.
    const GATEWAY: Gateway;

    /// The settings its client is built from, in the order its builder checks them: the names
    /// [`GatewayProfile::from_settings`] asks for, and (through [`Setting::env_var`]) the
    /// environment variables the CLI reads.
    const SETTINGS: &'static [Setting];

    /// How long its OTP stays valid: [`Gateway::otp_validity`], the one definition. Not meant to
    /// be overridden (a test compares the two for every gateway).
    const OTP_VALIDITY: Duration = Self::GATEWAY.otp_validity();

    /// What a send takes.
    type SendRequest: Request;

    /// What the second step takes (a verify, or the call that consumes the OTP).
    type VerifyRequest: Request;

    /// A client built from named settings: `settings(name)` for each of [`Self::SETTINGS`]'s
    /// names, in order, `None` when absent (the builder then names every missing one).
    /// Configuration errors as the builder's.
    fn from_settings(
        settings: &mut dyn FnMut(&'static str) -> Option<String>,
        options: ClientOptions,
    ) -> Result<Self, Error>;

    /// The number a send goes to (and a verification verifies).
    fn mobile(request: &Self::SendRequest) -> &MobileNumber;

    /// Checks, before anything is sent, what [`GatewayProfile::verify_request`] will take from
    /// `request` and `extras` (all but the send's reference and the code): a verification that
    /// could never be checked must cost no OTP. `invalid_request` when it fails. Extras the
    /// gateway does not take are ignored.
    fn validate_verify(request: &Self::SendRequest, extras: &VerifyExtras) -> Result<(), Error>;

    /// The second step of a send of `request` that was answered with `reference` (the receipt's)
    /// and `outcome`, for the `code` the customer typed. `invalid_request`, nothing sent, where
    /// the gateway has no such call for this OTP (a transaction OTP, consumed by a payment), or
    /// when something it needs is missing (the reference, a required extra).
    fn verify_request(
        request: &Self::SendRequest,
        reference: Option<&SecretString>,
        outcome: Outcome,
        code: OtpCode,
        extras: &VerifyExtras,
    ) -> Result<Self::VerifyRequest, Error>;

    /// Whether `request` may be sent again as a resend: `invalid_request` where the gateway
    /// wants a new request instead (iServeU: a new `externalRefNumber` per transaction OTP).
    fn check_resend(request: &Self::SendRequest) -> Result<(), Error>;
}

/// The send's reference, which most verify calls repeat: `invalid_request` when the send
/// returned none.
pub fn reference(reference: Option<&SecretString>) -> Result<SecretString, Error> {
    reference.cloned().ok_or_else(|| Error::invalid_input("the send returned no reference to verify against"))
}

/// What a check needs that neither the send nor its receipt carries, given by the customer:
/// iServeU's registration takes the customer's name; AOPay's RegisterRemitter an optional KYC
/// id. A gateway ignores the extras it does not take. `Debug` shows neither value.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyExtras {
    /// The customer's name (iServeU's registration requires it).
    pub customer_name: Option<String>,
    /// The remitter's KYC id from AOPay's e-KYC (AOPay's RegisterRemitter, optional).
    pub kyc_id: Option<String>,
}

impl VerifyExtras {
    /// No extras.
    pub fn new() -> Self {
        Self::default()
    }

    /// The customer's name.
    pub fn customer_name(mut self, name: impl Into<String>) -> Self {
        self.customer_name = Some(name.into());
        self
    }

    /// The KYC id.
    pub fn kyc_id(mut self, kyc_id: impl Into<String>) -> Self {
        self.kyc_id = Some(kyc_id.into());
        self
    }
}

impl fmt::Debug for VerifyExtras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |present: bool| if present { "[redacted]" } else { "none" };
        f.debug_struct("VerifyExtras")
            .field("customer_name", &hidden(self.customer_name.is_some()))
            .field("kyc_id", &hidden(self.kyc_id.is_some()))
            .finish()
    }
}

/// One setting a gateway's client is built from ([`GatewayProfile::SETTINGS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The builder method's name, snake_case (`merchant_id`).
    pub name: &'static str,
    /// Whether the value is a secret: never on a command line, never printed.
    pub secret: bool,
    /// Whether the builder refuses to build without it.
    pub required: bool,
}

impl Setting {
    /// A required setting that is not secret.
    pub const fn required(name: &'static str) -> Self {
        Self { name, secret: false, required: true }
    }

    /// A required secret.
    pub const fn secret(name: &'static str) -> Self {
        Self { name, secret: true, required: true }
    }

    /// A setting the builder takes but does not require (a request may stand in for it).
    pub const fn optional(name: &'static str) -> Self {
        Self { name, secret: false, required: false }
    }

    /// How the builder's errors name it: `merchant id`.
    pub fn label(&self) -> String {
        self.name.replace('_', " ")
    }

    /// The environment variable it is read from by the CLI: `OTP_<GATEWAY>_<NAME>`
    /// (`OTP_PHONEPE_SALT_KEY`).
    pub fn env_var(&self, gateway: Gateway) -> String {
        format!("OTP_{}_{}", gateway.as_str(), self.name).to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;

    #[test]
    fn verify_extras_keep_what_they_are_given_and_show_none_of_it() {
        let extras = VerifyExtras::new().customer_name("Asha Rao").kyc_id("KYC-42");
        assert_eq!((extras.customer_name.as_deref(), extras.kyc_id.as_deref()), (Some("Asha Rao"), Some("KYC-42")));
        assert_eq!(format!("{extras:?}"), r#"VerifyExtras { customer_name: "[redacted]", kyc_id: "[redacted]" }"#);
        assert_eq!(format!("{:?}", VerifyExtras::new()), r#"VerifyExtras { customer_name: "none", kyc_id: "none" }"#);
    }

    #[test]
    fn settings_name_their_environment_variables_and_labels() {
        let setting = Setting::secret("salt_key");
        assert_eq!(setting.env_var(Gateway::PhonePe), "OTP_PHONEPE_SALT_KEY");
        assert_eq!(setting.label(), "salt key");
        assert!(setting.secret && setting.required);
        assert!(!Setting::optional("username").required && !Setting::required("client_id").secret);
    }

    #[test]
    fn extras_hide_their_values_and_a_missing_reference_is_invalid_input() {
        let extras = VerifyExtras::new().customer_name("Asha Rao").kyc_id("KYC-77");
        let shown = format!("{extras:?}");
        assert!(!shown.contains("Asha") && !shown.contains("KYC-77"), "{shown}");
        assert_eq!(format!("{:?}", VerifyExtras::new()), r#"VerifyExtras { customer_name: "none", kyc_id: "none" }"#);
        let error = reference(None).unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (crate::ErrorKind::InvalidRequest, crate::Reached::No));
        assert_eq!(reference(Some(&SecretString::new("t"))).unwrap().expose_secret(), "t");
    }
}
