//! # otp-iserveu
//!
//! Send OTPs through iServeU's DMT-lite **unified "send OTP"** API
//! (`POST /common/dmt-lite/unified/otp/send`) on otp-core's HTTP path, with the documented
//! `client_id` / `client_secret` headers and every body value as a string.
//!
//! The two OTP types are two request types, so an invalid combination cannot be built:
//! a [`RegistrationOtpRequest`] needs the identity document (OVD) number; a
//! [`TransactionOtpRequest`] needs an external reference (6–22 characters) and an [`Amount`]. The OVD number is an
//! [`IdentityNumber`]: it never appears in full in `Debug`, errors or logs.
//!
//! ```no_run
//! use otp_iserveu::{IServeUClient, RegistrationOtpRequest, TransactionOtpRequest};
//! use otp_core::{Amount, Coordinates, Environment, IdentityNumber, MobileNumber};
//!
//! # async fn run() -> Result<(), otp_core::Error> {
//! let client = IServeUClient::builder()
//!     .client_id("client-id")
//!     .client_secret(std::env::var("ISERVEU_CLIENT_SECRET").unwrap_or_default())
//!     .username("isutestapi1")
//!     .environment(Environment::Uat) // production: Environment::Custom(the host issued to you)
//!     .build()?;
//!
//! // Customer registration: the identity document is required.
//! let mobile = MobileNumber::parse("8144094480")?;
//! let register = RegistrationOtpRequest::new(mobile, "Aadhaar Card", IdentityNumber::new("765386439745"));
//! client.send_otp(&register.into()).await?;
//!
//! // A transaction: reference and amount are required; the receipt's reference is the one sent.
//! let pay = TransactionOtpRequest::new(mobile, "Aadhaar Card", "TXN1432452", Amount::parse("1001")?)
//!     .coordinates(Coordinates::new("28.6090", "77.2362")?)
//!     .public_ip([203, 0, 113, 10].into());
//! let receipt = client.send_otp(&pay.into()).await?;
//! assert_eq!(receipt.reference.map(|r| r.expose_secret().to_owned()).as_deref(), Some("TXN1432452"));
//! # Ok(())
//! # }
//! ```
//!
//! ## Status codes
//!
//! iServeU answers HTTP 200 with a `statusCode`; any undocumented code is rejected with the
//! code kept, and a body that is not JSON (the seed's own samples are not) is an unexpected
//! response. Generated from `spec/codes.toml`:
//!
#![doc = include_str!("generated/codes.md")]
//!
//! ## Verify codes
//!
//! The second step's codes (docs/gateways/verify.md), from `spec/verify_codes.toml`:
//!
#![doc = include_str!("generated/verify_codes.md")]
#![forbid(unsafe_code)]
#![warn(clippy::wildcard_enum_match_arm)] // A new variant must be handled where it is matched.

mod generated;

use std::net::IpAddr;

use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind, Request};
use otp_core::profile::{GatewayProfile, Setting, VerifyExtras};
use otp_core::{
    validate, Amount, ClientOptions, ClientSecret, CodeText, Coordinates, Error, Gateway, IdentityNumber, KnownHosts,
    MobileNumber, OtpCode, Outcome, ProviderAnswer, ReferenceRule, RequiredSettings, SecretString, SendReceipt,
    VerifyReceipt,
};
use serde::{Deserialize, Serialize};

pub use generated::codes::{CODES, EXAMPLES};
pub use generated::verify_codes::{VERIFY_CODES, VERIFY_EXAMPLES};

/// The API path.
pub const API_PATH: &str = "/common/dmt-lite/unified/otp/send";
/// The call that consumes a registration OTP (iServeU has no separate verify).
pub const REGISTRATION_API_PATH: &str = "/common/dmt-lite/unified/customer/process-customer-registration";
/// iServeU's documented hosts: development only; production is issued at onboarding.
pub const HOSTS: KnownHosts = KnownHosts { uat: "https://apidev.iserveu.online", production: None };

/// The optional fields both OTP types take (the registration call takes all but the params).
/// `Debug` hides the customer's address (an IP identifies a person); the free-text
/// params may carry anything, so they too.
#[derive(Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Optional {
    username: Option<String>,
    coordinates: Option<Coordinates>,
    public_ip: Option<IpAddr>,
    params: [Option<String>; 3],
}

impl std::fmt::Debug for Optional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |present: bool| if present { "[redacted]" } else { "none" };
        f.debug_struct("Optional")
            .field("username", &self.username)
            .field("coordinates", &self.coordinates)
            .field("public_ip", &hidden(self.public_ip.is_some()))
            .field("params", &self.params.iter().map(|p| hidden(p.is_some())).collect::<Vec<_>>())
            .finish()
    }
}

impl Optional {
    /// The checks of the fields a request gave (coordinates and addresses are valid by
    /// construction).
    fn validate(&self) -> Result<(), Error> {
        if let Some(username) = &self.username {
            check_username(username)?;
        }
        for (name, param) in ["paramA", "paramB", "paramC"].iter().zip(&self.params) {
            if let Some(value) = param {
                if value.chars().count() > 256 || value.chars().any(char::is_control) {
                    return Err(Error::invalid_input(format!(
                        "{name} must be at most 256 characters, no control characters"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// `username`, a request's or the client's: every iServeU call sends one.
fn check_username(username: &str) -> Result<(), Error> {
    validate::text("username", username, 64)
}

/// The setters every request type shares, written once.
macro_rules! optional_setters {
    () => {
        /// `username`, for this request (else the client's).
        pub fn username(mut self, username: impl Into<String>) -> Self {
            self.optional.username = Some(username.into());
            self
        }

        /// `latLong`: where the customer is.
        pub fn coordinates(mut self, coordinates: Coordinates) -> Self {
            self.optional.coordinates = Some(coordinates);
            self
        }

        /// `publicIP`: the customer's address.
        pub fn public_ip(mut self, ip: IpAddr) -> Self {
            self.optional.public_ip = Some(ip);
            self
        }

        /// The customer's number.
        pub fn mobile(&self) -> &MobileNumber {
            &self.mobile
        }
    };
}

/// The send's free-text params, which only the send takes (the registration call has none).
macro_rules! params_setter {
    () => {
        /// `paramA`, `paramB`, `paramC`: free text echoed back (at most 256 characters each).
        pub fn params(mut self, a: Option<String>, b: Option<String>, c: Option<String>) -> Self {
            self.optional.params = [a, b, c];
            self
        }
    };
}

/// A registration OTP (`otpType` 1): the customer's identity document number is required.
/// With feature `serde` it is read back only through its checks.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "RegistrationWire"))]
pub struct RegistrationOtpRequest {
    mobile: MobileNumber,
    ovd_type: String,
    ovd_data: IdentityNumber,
    external_ref: Option<String>,
    optional: Optional,
}

impl RegistrationOtpRequest {
    /// `customerMobileNumber`, `ovdType` (such as `Aadhaar Card`) and `ovdData`.
    pub fn new(mobile: MobileNumber, ovd_type: impl Into<String>, ovd_data: IdentityNumber) -> Self {
        Self { mobile, ovd_type: ovd_type.into(), ovd_data, external_ref: None, optional: Optional::default() }
    }

    /// `externalRefNumber`, optional for a registration (6 to 22 letters, digits, - and _).
    pub fn external_ref(mut self, reference: impl Into<String>) -> Self {
        self.external_ref = Some(reference.into());
        self
    }

    optional_setters!();
    params_setter!();
}

/// A transaction OTP (`otpType` 2): a reference and an amount are required, the identity
/// document optional. With feature `serde` it is read back only through its checks.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "TransactionWire"))]
pub struct TransactionOtpRequest {
    mobile: MobileNumber,
    ovd_type: String,
    external_ref: String,
    amount: Amount,
    ovd_data: Option<IdentityNumber>,
    optional: Optional,
}

impl TransactionOtpRequest {
    /// `customerMobileNumber`, `ovdType`, `externalRefNumber` (6 to 22 letters, digits, - and
    /// _; the receipt's reference) and `requestedAmount`.
    pub fn new(
        mobile: MobileNumber,
        ovd_type: impl Into<String>,
        external_ref: impl Into<String>,
        amount: Amount,
    ) -> Self {
        let (ovd_type, external_ref) = (ovd_type.into(), external_ref.into());
        Self { mobile, ovd_type, external_ref, amount, ovd_data: None, optional: Optional::default() }
    }

    /// `ovdData`, optional for a transaction.
    pub fn ovd_data(mut self, ovd_data: IdentityNumber) -> Self {
        self.ovd_data = Some(ovd_data);
        self
    }

    optional_setters!();
    params_setter!();
}

/// What a stored registration OTP request is read as before its checks let it through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct RegistrationWire {
    mobile: MobileNumber,
    ovd_type: String,
    ovd_data: IdentityNumber,
    external_ref: Option<String>,
    optional: Optional,
}

#[cfg(feature = "serde")]
impl TryFrom<RegistrationWire> for RegistrationOtpRequest {
    type Error = Error;

    fn try_from(wire: RegistrationWire) -> Result<Self, Error> {
        let mut request = RegistrationOtpRequest::new(wire.mobile, wire.ovd_type, wire.ovd_data);
        request.external_ref = wire.external_ref;
        request.optional = wire.optional;
        Request::validate(&request)?;
        Ok(request)
    }
}

/// What a stored transaction OTP request is read as before its checks let it through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct TransactionWire {
    mobile: MobileNumber,
    ovd_type: String,
    external_ref: String,
    amount: Amount,
    ovd_data: Option<IdentityNumber>,
    optional: Optional,
}

#[cfg(feature = "serde")]
impl TryFrom<TransactionWire> for TransactionOtpRequest {
    type Error = Error;

    fn try_from(wire: TransactionWire) -> Result<Self, Error> {
        let mut request = TransactionOtpRequest::new(wire.mobile, wire.ovd_type, wire.external_ref, wire.amount);
        request.ovd_data = wire.ovd_data;
        request.optional = wire.optional;
        Request::validate(&request)?;
        Ok(request)
    }
}

/// Completes a customer registration with the registration OTP the customer received: the
/// call that consumes that OTP (iServeU has no separate verify call). `Debug` hides the name.
///
/// It takes the send's username, coordinates and address, but not its free-text params:
/// iServeU's registration call has none (docs/gateways/verify.md), so there is nothing to set them on.
///
/// ```
/// use otp_core::{MobileNumber, OtpCode};
/// let mobile = MobileNumber::parse("8144094480").unwrap();
/// let request = otp_iserveu::CompleteRegistrationRequest::new(mobile, OtpCode::parse("123456").unwrap(), "Asha");
/// let _ = request.username("isutestapi1").public_ip([203, 0, 113, 10].into());
/// ```
///
/// ```compile_fail
/// use otp_core::{MobileNumber, OtpCode};
/// let mobile = MobileNumber::parse("8144094480").unwrap();
/// let request = otp_iserveu::CompleteRegistrationRequest::new(mobile, OtpCode::parse("123456").unwrap(), "Asha");
/// let _ = request.params(Some("never sent".into()), None, None);
/// ```
#[derive(Clone)]
pub struct CompleteRegistrationRequest {
    mobile: MobileNumber,
    otp: OtpCode,
    name: String,
    /// Username, coordinates and address; its params stay empty (this call takes none).
    optional: Optional,
}

impl std::fmt::Debug for CompleteRegistrationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompleteRegistrationRequest")
            .field("mobile", &self.mobile)
            .field("otp", &self.otp)
            .field("name", &"[redacted]")
            .field("username", &self.optional.username)
            .field("coordinates", &self.optional.coordinates)
            .field("public_ip", &self.optional.public_ip.map(|_| "[redacted]"))
            .finish()
    }
}

impl CompleteRegistrationRequest {
    /// `mobileNumber` (the one the registration OTP went to), `otp` and the customer's `name`.
    pub fn new(mobile: MobileNumber, otp: OtpCode, name: impl Into<String>) -> Self {
        Self { mobile, otp, name: name.into(), optional: Optional::default() }
    }

    optional_setters!();
}

/// Either kind of iServeU OTP: what [`IServeUClient::send_otp`] takes (`.into()` from either).
#[derive(Debug, Clone)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SendOtpRequest {
    /// A registration OTP.
    Registration(RegistrationOtpRequest),
    /// A transaction OTP.
    Transaction(TransactionOtpRequest),
}

impl From<RegistrationOtpRequest> for SendOtpRequest {
    fn from(request: RegistrationOtpRequest) -> Self {
        SendOtpRequest::Registration(request)
    }
}

impl From<TransactionOtpRequest> for SendOtpRequest {
    fn from(request: TransactionOtpRequest) -> Self {
        SendOtpRequest::Transaction(request)
    }
}

/// What the wire needs of either kind.
struct Parts<'a> {
    mobile: &'a MobileNumber,
    ovd_type: &'a str,
    ovd_data: Option<&'a IdentityNumber>,
    external_ref: Option<&'a str>,
    /// `otpType` and, for a transaction, `requestedAmount`.
    otp_type: &'static str,
    amount: Option<&'a Amount>,
    optional: &'a Optional,
}

impl RegistrationOtpRequest {
    fn parts(&self) -> Parts<'_> {
        Parts {
            mobile: &self.mobile,
            ovd_type: &self.ovd_type,
            ovd_data: Some(&self.ovd_data),
            external_ref: self.external_ref.as_deref(),
            otp_type: "1",
            amount: None,
            optional: &self.optional,
        }
    }
}

impl TransactionOtpRequest {
    fn parts(&self) -> Parts<'_> {
        Parts {
            mobile: &self.mobile,
            ovd_type: &self.ovd_type,
            ovd_data: self.ovd_data.as_ref(),
            external_ref: Some(&self.external_ref),
            otp_type: "2",
            amount: Some(&self.amount),
            optional: &self.optional,
        }
    }
}

impl SendOtpRequest {
    fn parts(&self) -> Parts<'_> {
        match self {
            SendOtpRequest::Registration(r) => r.parts(),
            SendOtpRequest::Transaction(t) => t.parts(),
        }
    }

    /// The customer's number.
    pub fn mobile(&self) -> &MobileNumber {
        self.parts().mobile
    }

    /// The `externalRefNumber` sent (the receipt's reference), if any.
    pub fn external_ref(&self) -> Option<&str> {
        self.parts().external_ref
    }
}

/// The checks both OTP types share, on their parts. (Amounts, coordinates and addresses are
/// checked when they are made.)
fn validate_parts(parts: &Parts<'_>) -> Result<(), Error> {
    validate::text("OVD type", parts.ovd_type, 64)?;
    if let Some(ovd) = parts.ovd_data {
        validate::text("OVD data", ovd.expose(), 64).map_err(|_| {
            Error::invalid_input("OVD data must be a non-empty document number of at most 64 characters")
        })?;
    }
    if let Some(reference) = parts.external_ref {
        let length = reference.chars().count();
        if !(6..=22).contains(&length) {
            return Err(Error::invalid_input("external reference must be 6 to 22 characters"));
        }
        if !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::invalid_input("external reference may contain only letters, digits, - and _"));
        }
    }
    parts.optional.validate()
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(self.mobile())
    }

    fn validate(&self) -> Result<(), Error> {
        validate_parts(&self.parts())
    }
}

impl Request for RegistrationOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        validate_parts(&self.parts())
    }
}

impl Request for TransactionOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        validate_parts(&self.parts())
    }
}

/// Sends OTPs through iServeU. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct IServeUClient {
    client_id: String,
    client_secret: ClientSecret,
    username: Option<String>,
    transport: Transport,
}

otp_core::client_builder! {
    /// Builds an [`IServeUClient`]; every setting is checked by [`IServeUClientBuilder::build`].
    pub struct IServeUClientBuilder {
        /// The `client_id` shared during integration.
        client_id: String,
        /// The `client_secret` shared during integration.
        client_secret: ClientSecret,
        /// The default `username` (a request may give its own).
        username: String,
    }
}

impl IServeUClientBuilder {
    /// Checks the configuration; a missing or invalid setting is a configuration error.
    pub fn build(self) -> Result<IServeUClient, Error> {
        let mut required = RequiredSettings::new();
        let client_id = required.text("client id", self.client_id);
        let client_secret = required.secret("client secret", self.client_secret, ClientSecret::is_empty);
        required.finish(Gateway::IServeU)?;
        let transport = self.options.transport(Gateway::IServeU, &HOSTS)?;
        Ok(IServeUClient { client_id, client_secret, username: self.username, transport })
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "statusCode", default)]
    status_code: CodeText,
    #[serde(rename = "statusDesc")]
    status_desc: Option<String>,
}

impl IServeUClient {
    /// Starts a builder.
    pub fn builder() -> IServeUClientBuilder {
        IServeUClientBuilder::default()
    }

    /// Sends the OTP. The request is checked first; nothing is sent when it is invalid.
    pub async fn send_otp(&self, request: &SendOtpRequest) -> Result<SendReceipt, Error> {
        execute(self, request).await
    }
}

/// The unified send body, in iServeU's documented order; absent options left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SendBody<'a> {
    customer_mobile_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_ref_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_amount: Option<&'a str>,
    username: &'a str,
    /// "1" registration, "2" transaction.
    otp_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat_long: Option<String>,
    #[serde(rename = "publicIP", skip_serializing_if = "Option::is_none")]
    public_ip: Option<String>,
    ovd_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ovd_data: Option<&'a str>,
    #[serde(rename = "paramA", skip_serializing_if = "Option::is_none")]
    param_a: Option<&'a str>,
    #[serde(rename = "paramB", skip_serializing_if = "Option::is_none")]
    param_b: Option<&'a str>,
    #[serde(rename = "paramC", skip_serializing_if = "Option::is_none")]
    param_c: Option<&'a str>,
}

impl IServeUClient {
    /// The request's `username` (checked with the request), else the client's (checked here,
    /// the same way): every iServeU call needs one.
    fn username_for<'a>(&'a self, optional: &'a Optional) -> Result<&'a str, Error> {
        if let Some(username) = optional.username.as_deref() {
            return Ok(username);
        }
        let username = self.username.as_deref().ok_or_else(|| {
            Error::configuration("iserveu needs a username: set it on the client (OTP_ISERVEU_USERNAME) or the request")
        })?;
        check_username(username)?;
        Ok(username)
    }

    /// `body` as a JSON POST with the `client_id` and `client_secret` headers.
    fn authenticated(&self, api_path: &'static str, body: &impl Serialize) -> Result<WireRequest, Error> {
        WireRequest::post_json(api_path, json_body(body))
            .header("client_id", &self.client_id)?
            .secret_header("client_secret", self.client_secret.expose_secret())
    }
}

impl Client for IServeUClient {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Operation<SendOtpRequest> for IServeUClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        let parts = request.parts();
        let username = self.username_for(parts.optional)?;
        let [param_a, param_b, param_c] = &parts.optional.params;
        let body = SendBody {
            customer_mobile_number: parts.mobile.expose_digits(),
            external_ref_number: parts.external_ref,
            requested_amount: parts.amount.map(Amount::as_str),
            username,
            otp_type: parts.otp_type,
            lat_long: parts.optional.coordinates.as_ref().map(|c| format!("{},{}", c.latitude(), c.longitude())),
            public_ip: parts.optional.public_ip.map(|ip| ip.to_string()),
            ovd_type: parts.ovd_type,
            ovd_data: parts.ovd_data.map(IdentityNumber::expose),
            param_a: param_a.as_deref(),
            param_b: param_b.as_deref(),
            param_c: param_c.as_deref(),
        };
        self.authenticated(API_PATH, &body)
    }

    /// iServeU's answer carries no reference: the `externalRefNumber` sent is the one to keep.
    fn decode(&self, request: &SendOtpRequest, response: &RawResponse) -> Result<SendReceipt, Error> {
        let reference = request.external_ref().map(SecretString::new);
        let decoded = response
            .json::<Answer>()
            .map(|answer| ProviderAnswer::new(answer.status_code.into_text(), answer.status_desc, reference));
        CODES.resolve(response, decoded, ReferenceRule::Optional)
    }
}

impl IServeUClient {
    /// Completes the customer's registration with the code they typed (the verify step of a
    /// registration OTP). Never retried: a call that may have reached iServeU may have used
    /// the OTP. A transaction OTP is consumed by iServeU's money-transfer call instead, with
    /// the same `externalRefNumber`: that is a payment, not an OTP step, and is not here.
    pub async fn complete_registration(&self, request: &CompleteRegistrationRequest) -> Result<VerifyReceipt, Error> {
        execute(self, request).await
    }
}

/// The body of "process customer registration", every value a string.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationBody<'a> {
    mobile_number: &'a str,
    otp: &'a str,
    name: &'a str,
    username: &'a str,
    /// Lower-case `latlong` here, unlike the send's `latLong`.
    #[serde(rename = "latlong", skip_serializing_if = "Option::is_none")]
    lat_long: Option<String>,
    #[serde(rename = "publicIP", skip_serializing_if = "Option::is_none")]
    public_ip: Option<String>,
}

impl Request for CompleteRegistrationRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        check_name(&self.name)?;
        self.optional.validate()
    }
}

/// The customer's `name`, which the registration call takes: one check for a request and for
/// a verification that will make one.
fn check_name(name: &str) -> Result<(), Error> {
    validate::text("name", name, 100)
}

impl Operation<CompleteRegistrationRequest> for IServeUClient {
    type Output = VerifyReceipt;
    const KIND: OperationKind = OperationKind::Verify;
    const RETRIES: bool = false;

    fn wire_request(&self, request: &CompleteRegistrationRequest) -> Result<WireRequest, Error> {
        let optional = &request.optional;
        let username = self.username_for(optional)?;
        let body = RegistrationBody {
            mobile_number: request.mobile.expose_digits(),
            otp: request.otp.expose_secret(),
            name: &request.name,
            username,
            lat_long: optional.coordinates.as_ref().map(|c| format!("{},{}", c.latitude(), c.longitude())),
            public_ip: optional.public_ip.map(|ip| ip.to_string()),
        };
        self.authenticated(REGISTRATION_API_PATH, &body)
    }

    fn decode(&self, _request: &CompleteRegistrationRequest, response: &RawResponse) -> Result<VerifyReceipt, Error> {
        let decoded = response
            .json::<Answer>()
            .map(|answer| ProviderAnswer::new(answer.status_code.into_text(), answer.status_desc, None));
        VERIFY_CODES.resolve_verify(response, decoded, ReferenceRule::Optional)
    }
}

impl RegistrationOtpRequest {
    /// The registration call that consumes this request's OTP: its number, its username,
    /// coordinates and address (the same customer, the same account), the code and the name.
    fn completion(&self, code: OtpCode, name: &str) -> CompleteRegistrationRequest {
        let Optional { username, coordinates, public_ip, params: _ } = &self.optional;
        let optional = Optional {
            username: username.clone(),
            coordinates: coordinates.clone(),
            public_ip: *public_ip,
            params: Default::default(),
        };
        CompleteRegistrationRequest { mobile: self.mobile, otp: code, name: name.to_owned(), optional }
    }
}

/// The name a registration is completed with, from the customer's extras.
fn customer_name(extras: &VerifyExtras) -> Result<&str, Error> {
    extras.customer_name.as_deref().ok_or_else(|| {
        Error::invalid_input(
            "iServeU completes a registration with the customer's name: give it with the verification's customer_name",
        )
    })
}

/// What [`GatewayProfile::verify_request`] refuses for a transaction OTP.
const TRANSACTION_NOT_VERIFIED: &str =
    "an iServeU transaction OTP is checked by iServeU's money-transfer call with the same externalRefNumber, not here";

impl GatewayProfile for IServeUClient {
    const GATEWAY: Gateway = Gateway::IServeU;
    /// `username` is not required by the builder: a request may carry its own, and every call
    /// that has neither is refused as a configuration error before it is sent.
    const SETTINGS: &'static [Setting] =
        &[Setting::required("client_id"), Setting::secret("client_secret"), Setting::optional("username")];
    type SendRequest = SendOtpRequest;
    type VerifyRequest = CompleteRegistrationRequest;

    fn from_settings(
        settings: &mut dyn FnMut(&'static str) -> Option<String>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let mut builder = IServeUClient::builder().options(options);
        if let Some(client_id) = settings("client_id") {
            builder = builder.client_id(client_id);
        }
        if let Some(client_secret) = settings("client_secret") {
            builder = builder.client_secret(client_secret);
        }
        if let Some(username) = settings("username") {
            builder = builder.username(username);
        }
        builder.build()
    }

    fn mobile(request: &SendOtpRequest) -> &MobileNumber {
        request.mobile()
    }

    /// A registration is completed with the customer's name: required, and checked now. A
    /// transaction OTP has no call here, so it takes nothing.
    fn validate_verify(request: &SendOtpRequest, extras: &VerifyExtras) -> Result<(), Error> {
        match request {
            SendOtpRequest::Registration(_) => check_name(customer_name(extras)?),
            SendOtpRequest::Transaction(_) => Ok(()),
        }
    }

    /// A registration OTP is consumed by "process customer registration"; a transaction OTP by
    /// iServeU's money-transfer call (a payment, not an OTP step): refused.
    fn verify_request(
        request: &SendOtpRequest,
        _reference: Option<&SecretString>,
        _outcome: Outcome,
        code: OtpCode,
        extras: &VerifyExtras,
    ) -> Result<CompleteRegistrationRequest, Error> {
        match request {
            SendOtpRequest::Registration(registration) => Ok(registration.completion(code, customer_name(extras)?)),
            SendOtpRequest::Transaction(_) => Err(Error::invalid_input(TRANSACTION_NOT_VERIFIED)),
        }
    }

    /// iServeU wants a new `externalRefNumber` for every transaction OTP: the same request
    /// cannot be sent again.
    fn check_resend(request: &SendOtpRequest) -> Result<(), Error> {
        match request {
            SendOtpRequest::Registration(_) => Ok(()),
            SendOtpRequest::Transaction(_) => Err(Error::invalid_input(
                "iServeU wants a new externalRefNumber for every transaction OTP: start a new verification instead of resending",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;
    use otp_core::ErrorKind;

    fn registration() -> RegistrationOtpRequest {
        RegistrationOtpRequest::new("8144094480".parse().unwrap(), "AADHAAR", IdentityNumber::new("765386439745"))
    }

    fn transaction() -> SendOtpRequest {
        TransactionOtpRequest::new("8144094480".parse().unwrap(), "AADHAAR", "TXN1432452", Amount::parse("10").unwrap())
            .into()
    }

    fn code() -> OtpCode {
        OtpCode::parse("123456").unwrap()
    }

    #[test]
    fn the_profile_asks_for_its_settings() {
        otp_core::test_util::check_settings::<IServeUClient>();
    }

    #[test]
    fn a_registration_completes_with_the_name_and_the_sends_account_and_place() {
        let send: SendOtpRequest = registration()
            .username("isutestapi1")
            .public_ip([203, 0, 113, 10].into())
            .params(Some("echo".into()), None, None)
            .into();
        let named = VerifyExtras::new().customer_name("Asha Rao");
        IServeUClient::validate_verify(&send, &named).unwrap();
        let completion = IServeUClient::verify_request(&send, None, Outcome::Sent, code(), &named).unwrap();
        assert_eq!((completion.name.as_str(), completion.mobile.expose_digits()), ("Asha Rao", "8144094480"));
        assert_eq!(completion.optional.username.as_deref(), Some("isutestapi1"));
        assert_eq!(completion.optional.public_ip, Some([203, 0, 113, 10].into()));
        assert_eq!(completion.optional.params, [None, None, None], "the registration call takes no params");
        IServeUClient::check_resend(&send).unwrap();

        for extras in [
            VerifyExtras::new(),
            VerifyExtras::new().customer_name(" "),
            VerifyExtras::new().customer_name("n".repeat(101)),
        ] {
            let error = IServeUClient::validate_verify(&send, &extras).unwrap_err();
            assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, otp_core::Reached::No));
        }
        let error =
            IServeUClient::verify_request(&send, None, Outcome::Sent, code(), &VerifyExtras::new()).unwrap_err();
        assert!(error.to_string().contains("customer's name"), "{error}");
    }

    #[test]
    fn a_transaction_otp_has_no_verify_call_and_no_resend() {
        let send = transaction();
        IServeUClient::validate_verify(&send, &VerifyExtras::new()).unwrap();
        let reference = SecretString::new("TXN1432452");
        let error = IServeUClient::verify_request(&send, Some(&reference), Outcome::Sent, code(), &VerifyExtras::new())
            .unwrap_err();
        assert_eq!((error.kind(), error.description()), (ErrorKind::InvalidRequest, TRANSACTION_NOT_VERIFIED));
        let error = IServeUClient::check_resend(&send).unwrap_err();
        assert!(error.to_string().contains("new externalRefNumber"), "{error}");
    }
}
