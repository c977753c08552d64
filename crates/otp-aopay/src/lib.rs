//! # otp-aopay
//!
//! Send OTPs through AOPay's DMTV1 **"Transaction Send OTP"** API
//! (`POST /api/AOP/DMTV1/TransactionSendOtp`) on otp-core's HTTP path. The partner is
//! identified by its `RegistrationID` in the body (AOPay whitelists the partner's IP; no auth
//! header is documented). The OTP is valid for [`OTP_VALIDITY`] (90 seconds).
//!
//! Two answers are successes: `response_code` 1 ([`Outcome::Sent`](otp_core::Outcome)) and
//! `response_code` 0, "Remitter not registered OTP sent for new registration."
//! ([`Outcome::SentForRegistration`](otp_core::Outcome)): an OTP went out in both cases,
//! with `stateresp` as the reference.
//!
//! The body key `Longitute` is misspelt on AOPay's wire and stays so; the Rust API says
//! `longitude`.
//!
//! ```no_run
//! use otp_aopay::{AOPayClient, DateOfBirth, SendOtpRequest, TransactionType};
//! use otp_core::{Environment, MobileNumber, Outcome};
//!
//! # async fn run() -> Result<(), otp_core::Error> {
//! let client = AOPayClient::builder().registration_id("AOP-554").environment(Environment::Production).build()?;
//! let request = SendOtpRequest {
//!     mobile: MobileNumber::parse("9900000088")?,
//!     beneficiary_id: "60600077".into(),
//!     transaction_type: TransactionType::Imps,
//!     amount: "100".into(),
//!     pincode: "110045".into(),
//!     address: "Delhi".into(),
//!     date_of_birth: DateOfBirth::parse("20/08/2000")?,
//!     latitude: "28.6090".into(),
//!     longitude: "77.2362".into(),
//! };
//! let receipt = client.send_otp(&request).await?;
//! if receipt.outcome == Outcome::SentForRegistration {
//!     // The remitter must register first: the OTP sent is for that.
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Response codes
//!
//! Generated from `spec/codes.toml`; any other code is rejected with the code kept.
//!
#![doc = include_str!("generated/codes.md")]
#![forbid(unsafe_code)]

mod generated;

use std::time::Duration;

use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind, Request};
use otp_core::{
    validate, CodeText, Date, Error, Gateway, KnownHosts, MobileNumber, ProviderAnswer, ReferenceRule,
    RequiredSettings, SecretString, SendReceipt,
};
use serde::{Deserialize, Serialize};

pub use generated::codes::{CODES, EXAMPLES};

/// The API path.
pub const API_PATH: &str = "/api/AOP/DMTV1/TransactionSendOtp";
/// AOPay's documented hosts.
pub const HOSTS: KnownHosts =
    KnownHosts { uat: "https://uatapi.aopay.co.in", production: Some("https://api.aopay.co.in") };
/// How long an AOPay OTP stays valid.
pub const OTP_VALIDITY: Duration = Duration::from_secs(90);

/// `Txntype`: the transfer the OTP authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionType {
    /// Real-time transfer.
    Imps,
    /// Batched transfer.
    Neft,
}

impl TransactionType {
    /// The value on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransactionType::Imps => "IMPS",
            TransactionType::Neft => "NEFT",
        }
    }
}

impl std::str::FromStr for TransactionType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "IMPS" => Ok(TransactionType::Imps),
            "NEFT" => Ok(TransactionType::Neft),
            _ => Err(Error::invalid_input("transaction type must be IMPS or NEFT")),
        }
    }
}

/// A date of birth: a real calendar date, not in the future, sent as `DD/MM/YYYY`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth {
    date: Date,
    /// The wire text, kept from parsing so a send formats nothing.
    text: [u8; 10],
}

impl DateOfBirth {
    /// Parses `DD/MM/YYYY` (`31/02/2000` and `2000-08-20` are refused).
    pub fn parse(value: &str) -> Result<Self, Error> {
        let date = Date::parse_dd_mm_yyyy("date of birth", value)?;
        if date.year() < 1900 || date > Date::today_utc() {
            return Err(Error::invalid_input("date of birth must be between 1900 and today"));
        }
        // A parsed DD/MM/YYYY is exactly ten ASCII bytes.
        let text = value.as_bytes().try_into().map_err(|_| Error::invalid_input("date of birth must be DD/MM/YYYY"))?;
        Ok(Self { date, text })
    }

    /// The date.
    pub fn date(&self) -> Date {
        self.date
    }

    /// The date as sent: `DD/MM/YYYY`.
    pub fn as_str(&self) -> &str {
        // Only a validated DD/MM/YYYY is ever stored, so this is never empty.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

impl std::fmt::Debug for DateOfBirth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DateOfBirth").field(&self.date).finish()
    }
}

/// A "Transaction Send OTP" request. Every field is required; [`SendOtpRequest::validate`]
/// checks them all before anything is sent.
#[derive(Debug, Clone)]
pub struct SendOtpRequest {
    /// `MobileNumber`: the remitter.
    pub mobile: MobileNumber,
    /// `BeneID`: the beneficiary registered under the remitter.
    pub beneficiary_id: String,
    /// `Txntype`.
    pub transaction_type: TransactionType,
    /// `Amount`: a positive number.
    pub amount: String,
    /// `Pincode`: 6 digits.
    pub pincode: String,
    /// `Address`.
    pub address: String,
    /// `DOB`.
    pub date_of_birth: DateOfBirth,
    /// `Latitude`: decimal, -90 to 90.
    pub latitude: String,
    /// `Longitute` on the wire: decimal, -180 to 180.
    pub longitude: String,
}

impl SendOtpRequest {
    /// Checks every field; nothing is sent when this fails.
    pub fn validate(&self) -> Result<(), Error> {
        validate::text("beneficiary id", &self.beneficiary_id, 32)?;
        if !self.beneficiary_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_input("beneficiary id may contain only letters and digits"));
        }
        validate::positive_amount("amount", &self.amount)?;
        let pincode = self.pincode.as_bytes();
        if pincode.len() != 6 || !pincode.iter().all(u8::is_ascii_digit) || pincode[0] == b'0' {
            return Err(Error::invalid_input("pincode must be 6 digits, not starting with 0"));
        }
        validate::text("address", &self.address, 200)?;
        validate::decimal_in_range("latitude", &self.latitude, -90.0, 90.0)?;
        validate::decimal_in_range("longitude", &self.longitude, -180.0, 180.0)?;
        Ok(())
    }
}

/// Sends OTPs through AOPay. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct AOPayClient {
    registration_id: String,
    transport: Transport,
}

otp_core::client_builder! {
    /// Builds an [`AOPayClient`]; every setting is checked by [`AOPayClientBuilder::build`].
    pub struct AOPayClientBuilder {
        /// The partner's `RegistrationID` (`AOP-554`).
        registration_id: String,
    }
}

impl AOPayClientBuilder {
    /// Checks the configuration; a missing or invalid setting is a configuration error.
    pub fn build(self) -> Result<AOPayClient, Error> {
        let mut required = RequiredSettings::new();
        let registration_id = required.text("registration id", self.registration_id);
        required.finish(Gateway::AOPay)?;
        if registration_id.len() > 32 || !registration_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::configuration("the AOPay registration id may contain only letters, digits and -"));
        }
        let transport = self.options.transport(Gateway::AOPay, &HOSTS)?;
        Ok(AOPayClient { registration_id, transport })
    }
}

#[derive(Deserialize)]
struct Answer {
    // The 401 sample spells it `responsecode`.
    #[serde(alias = "responsecode", default)]
    response_code: CodeText,
    message: Option<String>,
    #[serde(default)]
    stateresp: CodeText,
}

impl AOPayClient {
    /// Starts a builder.
    pub fn builder() -> AOPayClientBuilder {
        AOPayClientBuilder::default()
    }

    /// Sends the OTP. The request is checked first; nothing is sent when it is invalid.
    pub async fn send_otp(&self, request: &SendOtpRequest) -> Result<SendReceipt, Error> {
        execute(self, request).await
    }
}

/// "Transaction Send OTP": AOPay's own names in its documented order (`Longitute` is its
/// spelling, and what it reads).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendBody<'a> {
    mobile_number: &'a str,
    #[serde(rename = "BeneID")]
    bene_id: &'a str,
    txntype: &'static str,
    amount: &'a str,
    pincode: &'a str,
    address: &'a str,
    #[serde(rename = "DOB")]
    dob: &'a str,
    latitude: &'a str,
    longitute: &'a str,
    #[serde(rename = "RegistrationID")]
    registration_id: &'a str,
}

impl Client for AOPayClient {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }
}

impl Operation<SendOtpRequest> for AOPayClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        request.validate()?;
        let body = json_body(&SendBody {
            mobile_number: request.mobile.expose_digits(),
            bene_id: &request.beneficiary_id,
            txntype: request.transaction_type.as_str(),
            amount: &request.amount,
            pincode: &request.pincode,
            address: &request.address,
            dob: request.date_of_birth.as_str(),
            latitude: &request.latitude,
            longitute: &request.longitude,
            registration_id: &self.registration_id,
        });
        Ok(WireRequest::post_json(API_PATH, body))
    }

    fn decode(&self, _request: &SendOtpRequest, response: &RawResponse) -> Result<SendReceipt, Error> {
        let decoded = response.json::<Answer>().map(|answer| {
            let reference = answer.stateresp.into_text().filter(|r| !r.is_empty()).map(SecretString::new);
            ProviderAnswer::new(answer.response_code.into_text(), answer.message, reference)
        });
        CODES.resolve(response, decoded, ReferenceRule::Required)
    }
}
