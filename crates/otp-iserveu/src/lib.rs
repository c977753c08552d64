//! # otp-iserveu
//!
//! Send OTPs through iServeU's DMT-lite **unified "send OTP"** API
//! (`POST /common/dmt-lite/unified/otp/send`) on otp-core's HTTP path, with the documented
//! `client_id` / `client_secret` headers and every body value as a string.
//!
//! The two OTP types are two constructors, so an invalid combination cannot be built:
//! a **registration** OTP needs the identity document (OVD) number; a **transaction** OTP
//! needs an external reference (6–22 characters) and a positive amount. The OVD number is an
//! [`IdentityNumber`]: it never appears in full in `Debug`, errors or logs.
//!
//! ```no_run
//! use otp_iserveu::{IServeUClient, SendOtpRequest};
//! use otp_core::{Environment, IdentityNumber, MobileNumber};
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
//! let register = SendOtpRequest::registration(mobile, "Aadhaar Card", IdentityNumber::new("765386439745"));
//! client.send_otp(&register).await?;
//!
//! // A transaction: reference and amount are required; the receipt's reference is the one sent.
//! let pay = SendOtpRequest::transaction(mobile, "Aadhaar Card", "TXN1432452", "1001")
//!     .lat_long("28.6090", "77.2362")
//!     .public_ip("203.0.113.10");
//! let receipt = client.send_otp(&pay).await?;
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
#![forbid(unsafe_code)]

mod generated;

use std::net::IpAddr;

use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind, Request};
use otp_core::{
    validate, ClientSecret, CodeText, Error, Gateway, IdentityNumber, KnownHosts, MobileNumber, ProviderAnswer,
    ReferenceRule, RequiredSettings, SecretString, SendReceipt,
};
use serde::{Deserialize, Serialize};

pub use generated::codes::{CODES, EXAMPLES};

/// The API path.
pub const API_PATH: &str = "/common/dmt-lite/unified/otp/send";
/// iServeU's documented hosts: development only; production is issued at onboarding.
pub const HOSTS: KnownHosts = KnownHosts { uat: "https://apidev.iserveu.online", production: None };

/// What the OTP is for, with what each purpose requires.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum OtpPurpose {
    /// `otpType` 1: customer registration; the OVD number is required.
    Registration {
        /// The identity document number (`ovdData`).
        ovd_data: IdentityNumber,
    },
    /// `otpType` 2: a transaction; reference and amount are required, OVD data optional.
    Transaction {
        /// `externalRefNumber`, 6 to 22 characters.
        external_ref: String,
        /// `requestedAmount`, a positive number in digits.
        amount: String,
        /// `ovdData`, optional here.
        ovd_data: Option<IdentityNumber>,
    },
}

/// A "send OTP" request.
#[derive(Debug, Clone)]
pub struct SendOtpRequest {
    mobile: MobileNumber,
    ovd_type: String,
    purpose: OtpPurpose,
    registration_ref: Option<String>,
    username: Option<String>,
    lat_long: Option<(String, String)>,
    public_ip: Option<String>,
    params: [Option<String>; 3],
}

impl SendOtpRequest {
    fn new(mobile: MobileNumber, ovd_type: impl Into<String>, purpose: OtpPurpose) -> Self {
        Self {
            mobile,
            ovd_type: ovd_type.into(),
            purpose,
            registration_ref: None,
            username: None,
            lat_long: None,
            public_ip: None,
            params: [None, None, None],
        }
    }

    /// A customer-registration OTP (`otpType` "1").
    pub fn registration(mobile: MobileNumber, ovd_type: impl Into<String>, ovd_data: IdentityNumber) -> Self {
        Self::new(mobile, ovd_type, OtpPurpose::Registration { ovd_data })
    }

    /// A transaction OTP (`otpType` "2").
    pub fn transaction(
        mobile: MobileNumber,
        ovd_type: impl Into<String>,
        external_ref: impl Into<String>,
        amount: impl Into<String>,
    ) -> Self {
        let purpose =
            OtpPurpose::Transaction { external_ref: external_ref.into(), amount: amount.into(), ovd_data: None };
        Self::new(mobile, ovd_type, purpose)
    }

    /// The OVD number of a transaction OTP (a registration OTP has it already).
    pub fn ovd_data(mut self, ovd: IdentityNumber) -> Self {
        if let OtpPurpose::Transaction { ovd_data, .. } = &mut self.purpose {
            *ovd_data = Some(ovd);
        }
        self
    }

    /// An external reference for a registration OTP (a transaction OTP has one already).
    pub fn registration_ref(mut self, external_ref: impl Into<String>) -> Self {
        self.registration_ref = Some(external_ref.into());
        self
    }

    /// The `username`, instead of the client's.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// `latLong`: latitude and longitude as decimal numbers.
    pub fn lat_long(mut self, latitude: impl Into<String>, longitude: impl Into<String>) -> Self {
        self.lat_long = Some((latitude.into(), longitude.into()));
        self
    }

    /// `publicIP`: the transacting device's IPv4 or IPv6 address.
    pub fn public_ip(mut self, ip: impl Into<String>) -> Self {
        self.public_ip = Some(ip.into());
        self
    }

    /// `paramA`, `paramB`, `paramC` (free use); `None` leaves one out.
    pub fn params(mut self, a: Option<String>, b: Option<String>, c: Option<String>) -> Self {
        self.params = [a, b, c];
        self
    }

    /// The number the OTP goes to.
    pub fn mobile(&self) -> &MobileNumber {
        &self.mobile
    }

    /// The external reference that will be sent, if any.
    pub fn external_ref(&self) -> Option<&str> {
        match &self.purpose {
            OtpPurpose::Transaction { external_ref, .. } => Some(external_ref),
            OtpPurpose::Registration { .. } => self.registration_ref.as_deref(),
        }
    }

    fn ovd(&self) -> Option<&IdentityNumber> {
        match &self.purpose {
            OtpPurpose::Registration { ovd_data } => Some(ovd_data),
            OtpPurpose::Transaction { ovd_data, .. } => ovd_data.as_ref(),
        }
    }

    /// Checks every field; nothing is sent when this fails.
    pub fn validate(&self) -> Result<(), Error> {
        validate::text("OVD type", &self.ovd_type, 64)?;
        if let Some(ovd) = self.ovd() {
            validate::text("OVD data", ovd.expose(), 64).map_err(|_| {
                Error::invalid_input("OVD data must be a non-empty document number of at most 64 characters")
            })?;
        }
        if let Some(reference) = self.external_ref() {
            let length = reference.chars().count();
            if !(6..=22).contains(&length) {
                return Err(Error::invalid_input("external reference must be 6 to 22 characters"));
            }
            if !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(Error::invalid_input("external reference may contain only letters, digits, - and _"));
            }
        }
        if let OtpPurpose::Transaction { amount, .. } = &self.purpose {
            validate::positive_amount("amount", amount)?;
        }
        if let Some(username) = &self.username {
            validate::text("username", username, 64)?;
        }
        if let Some((latitude, longitude)) = &self.lat_long {
            validate::decimal_in_range("latitude", latitude, -90.0, 90.0)?;
            validate::decimal_in_range("longitude", longitude, -180.0, 180.0)?;
        }
        if let Some(ip) = &self.public_ip {
            ip.parse::<IpAddr>().map_err(|_| Error::invalid_input("public IP must be an IPv4 or IPv6 address"))?;
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
    public_ip: Option<&'a str>,
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

impl Client for IServeUClient {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(self.mobile())
    }
}

impl Operation<SendOtpRequest> for IServeUClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        request.validate()?;
        let username = request.username.as_deref().or(self.username.as_deref()).ok_or_else(|| {
            Error::configuration("iserveu needs a username: set it on the client (OTP_ISERVEU_USERNAME) or the request")
        })?;
        validate::text("username", username, 64)?;
        let (otp_type, amount) = match &request.purpose {
            OtpPurpose::Registration { .. } => ("1", None),
            OtpPurpose::Transaction { amount, .. } => ("2", Some(amount.as_str())),
        };
        let [param_a, param_b, param_c] = &request.params;
        let body = json_body(&SendBody {
            customer_mobile_number: request.mobile.expose_digits(),
            external_ref_number: request.external_ref(),
            requested_amount: amount,
            username,
            otp_type,
            lat_long: request.lat_long.as_ref().map(|(lat, long)| format!("{lat},{long}")),
            public_ip: request.public_ip.as_deref(),
            ovd_type: &request.ovd_type,
            ovd_data: request.ovd().map(IdentityNumber::expose),
            param_a: param_a.as_deref(),
            param_b: param_b.as_deref(),
            param_c: param_c.as_deref(),
        });
        WireRequest::post_json(API_PATH, body)
            .header("client_id", &self.client_id)?
            .secret_header("client_secret", self.client_secret.expose_secret())
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
