//! # otp-aopay
//!
//! Send OTPs through AOPay's DMTV1 **"Transaction Send OTP"** API
//! (`POST /api/AOP/DMTV1/TransactionSendOtp`) on otp-core's HTTP path. The partner is
//! identified by its `RegistrationID` in the body (AOPay whitelists the partner's IP; no auth
//! header is documented). The OTP is valid for [`OTP_VALIDITY`] (90 seconds, as
//! `Gateway::AOPay.otp_validity()` says).
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
//! use otp_aopay::{AOPayClient, DateOfBirth, Remitter, SendOtpRequest, TransactionType};
//! use otp_core::{Amount, Coordinates, Environment, MobileNumber, Outcome, Pincode};
//!
//! # async fn run() -> Result<(), otp_core::Error> {
//! let client = AOPayClient::builder().registration_id("AOP-554").environment(Environment::Production).build()?;
//! let remitter = Remitter::new(
//!     "Delhi",
//!     Pincode::parse("110045")?,
//!     DateOfBirth::parse("20/08/2000")?,
//!     Coordinates::new("28.6090", "77.2362")?,
//! )?;
//! let mobile = MobileNumber::parse("9900000088")?;
//! let request = SendOtpRequest::new(mobile, "60600077", TransactionType::Imps, Amount::parse("100")?, remitter)?;
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
//!
//! ## Verify codes
//!
//! The second step's codes (docs/gateways/verify.md), from `spec/verify_codes.toml`:
//!
#![doc = include_str!("generated/verify_codes.md")]
#![forbid(unsafe_code)]
#![warn(clippy::wildcard_enum_match_arm)] // A new variant must be handled where it is matched.

mod generated;

use std::time::Duration;

use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind, Request};
use otp_core::profile::{self, GatewayProfile, Setting, VerifyExtras};
use otp_core::{
    validate, Amount, ClientOptions, CodeText, Coordinates, Date, Error, Gateway, KnownHosts, MobileNumber, OtpCode,
    Outcome, Pincode, ProviderAnswer, ReferenceRule, RequiredSettings, SecretString, SecretText, SendReceipt,
    VerifyReceipt,
};
use serde::{Deserialize, Serialize};

pub use generated::codes::{CODES, EXAMPLES};
pub use generated::verify_codes::{VERIFY_CODES, VERIFY_EXAMPLES};

/// The API path.
pub const API_PATH: &str = "/api/AOP/DMTV1/TransactionSendOtp";
/// AOPay's documented hosts.
pub const HOSTS: KnownHosts =
    KnownHosts { uat: "https://uatapi.aopay.co.in", production: Some("https://api.aopay.co.in") };
/// How long an AOPay OTP stays valid: [`Gateway::otp_validity`], where it is defined.
pub const OTP_VALIDITY: Duration = Gateway::AOPay.otp_validity();
/// The path of "RegisterRemitter", which consumes a sent-for-registration OTP.
pub const REGISTER_API_PATH: &str = "/api/AOP/DMTV1/RegisterRemitter";
/// The name of RegisterRemitter's number field. *Inferred*: the page's sample says `MobileNo`,
/// its curl example and every other DMTV1 call `MobileNumber` (docs/gateways/verify.md).
pub const REGISTER_MOBILE_FIELD: &str = "MobileNumber";

/// `Txntype`: the transfer the OTP authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[derive(Clone, PartialEq, Eq)]
pub struct DateOfBirth {
    date: Date,
    /// The wire text exactly as parsed.
    text: Box<str>,
}

impl DateOfBirth {
    /// Parses `DD/MM/YYYY` (`31/02/2000` and `2000-08-20` are refused).
    pub fn parse(value: &str) -> Result<Self, Error> {
        let date = Date::parse_dd_mm_yyyy("date of birth", value)?;
        if date.year() < 1900 || date > Date::today_utc() {
            return Err(Error::invalid_input("date of birth must be between 1900 and today"));
        }
        Ok(Self { date, text: value.into() })
    }

    /// The date.
    pub fn date(&self) -> Date {
        self.date
    }

    /// The date as sent: `DD/MM/YYYY`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

// Written as its wire text, read back through `parse`: a stored date is checked again.
#[cfg(feature = "serde")]
impl serde::Serialize for DateOfBirth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for DateOfBirth {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateOfBirth::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Debug for DateOfBirth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DateOfBirth").field(&self.date).finish()
    }
}

/// What AOPay requires about the remitter with every send. Checked when made (and when read
/// back, feature `serde`); `Debug` shows none of it (an address, a birth date and a location
/// identify a person).
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "RemitterWire"))]
pub struct Remitter {
    address: String,
    pincode: Pincode,
    date_of_birth: DateOfBirth,
    coordinates: Coordinates,
}

impl Remitter {
    /// `Address` (at most 200 characters), `Pincode`, `DOB`, and `Latitude`/`Longitute`.
    pub fn new(
        address: impl Into<String>,
        pincode: Pincode,
        date_of_birth: DateOfBirth,
        coordinates: Coordinates,
    ) -> Result<Self, Error> {
        let remitter = Self { address: address.into(), pincode, date_of_birth, coordinates };
        remitter.validate()?;
        Ok(remitter)
    }

    /// The address is the one free-text field (the rest are valid by construction).
    fn validate(&self) -> Result<(), Error> {
        validate::text("address", &self.address, 200)
    }
}

/// What a stored remitter is read as before [`Remitter::new`] lets it through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct RemitterWire {
    address: String,
    pincode: Pincode,
    date_of_birth: DateOfBirth,
    coordinates: Coordinates,
}

#[cfg(feature = "serde")]
impl TryFrom<RemitterWire> for Remitter {
    type Error = Error;

    fn try_from(wire: RemitterWire) -> Result<Self, Error> {
        Remitter::new(wire.address, wire.pincode, wire.date_of_birth, wire.coordinates)
    }
}

impl std::fmt::Debug for Remitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remitter").finish_non_exhaustive()
    }
}

/// A "Transaction Send OTP" request. Every field is required, and each is checked when the
/// request is made, and again when it is read back (feature `serde`): an invalid request
/// cannot exist, so none is ever sent.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "SendOtpRequestWire"))]
pub struct SendOtpRequest {
    mobile: MobileNumber,
    beneficiary_id: String,
    transaction_type: TransactionType,
    amount: Amount,
    remitter: Remitter,
}

impl SendOtpRequest {
    /// `MobileNumber` (the remitter's), `BeneID` (letters and digits, at most 32), `Txntype`,
    /// `Amount`, and the remitter's details.
    pub fn new(
        mobile: MobileNumber,
        beneficiary_id: impl Into<String>,
        transaction_type: TransactionType,
        amount: Amount,
        remitter: Remitter,
    ) -> Result<Self, Error> {
        let request = Self { mobile, beneficiary_id: beneficiary_id.into(), transaction_type, amount, remitter };
        Request::validate(&request)?;
        Ok(request)
    }

    /// The remitter's number.
    pub fn mobile(&self) -> &MobileNumber {
        &self.mobile
    }
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        validate::text("beneficiary id", &self.beneficiary_id, 32)?;
        if !self.beneficiary_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_input("beneficiary id may contain only letters and digits"));
        }
        self.remitter.validate()
    }
}

/// What a stored request is read as before [`SendOtpRequest::new`] lets it through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct SendOtpRequestWire {
    mobile: MobileNumber,
    beneficiary_id: String,
    transaction_type: TransactionType,
    amount: Amount,
    remitter: Remitter,
}

#[cfg(feature = "serde")]
impl TryFrom<SendOtpRequestWire> for SendOtpRequest {
    type Error = Error;

    fn try_from(wire: SendOtpRequestWire) -> Result<Self, Error> {
        SendOtpRequest::new(wire.mobile, wire.beneficiary_id, wire.transaction_type, wire.amount, wire.remitter)
    }
}

/// Registers the remitter with the OTP of a send answered "sent for registration" (code 0):
/// the call that consumes that OTP, within [`OTP_VALIDITY`] of the send.
#[derive(Debug, Clone)]
pub struct RegisterRemitterRequest {
    mobile: MobileNumber,
    otp: OtpCode,
    stateresp: SecretString,
    kyc_id: Option<String>,
}

impl RegisterRemitterRequest {
    /// The remitter's number, the code, and `Stateresp` (the send's reference).
    pub fn new(mobile: MobileNumber, otp: OtpCode, stateresp: SecretString) -> Self {
        Self { mobile, otp, stateresp, kyc_id: None }
    }

    /// `KycId`, from AOPay's remitter e-KYC, when there is one.
    pub fn kyc_id(mut self, kyc_id: impl Into<String>) -> Self {
        self.kyc_id = Some(kyc_id.into());
        self
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
    /// The verify step's secret (a string or a number, as codes are): wiped when dropped.
    #[serde(default)]
    stateresp: SecretText,
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

impl Operation<SendOtpRequest> for AOPayClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        let remitter = &request.remitter;
        let body = json_body(&SendBody {
            mobile_number: request.mobile.expose_digits(),
            bene_id: &request.beneficiary_id,
            txntype: request.transaction_type.as_str(),
            amount: request.amount.as_str(),
            pincode: remitter.pincode.as_str(),
            address: &remitter.address,
            dob: remitter.date_of_birth.as_str(),
            latitude: remitter.coordinates.latitude(),
            longitute: remitter.coordinates.longitude(),
            registration_id: &self.registration_id,
        });
        Ok(WireRequest::post_json(API_PATH, body))
    }

    fn decode(&self, _request: &SendOtpRequest, response: &RawResponse) -> Result<SendReceipt, Error> {
        let decoded = response.json::<Answer>().map(|answer| {
            let reference = answer.stateresp.into_secret();
            ProviderAnswer::new(answer.response_code.into_text(), answer.message, reference)
        });
        CODES.resolve(response, decoded, ReferenceRule::Required)
    }
}

impl AOPayClient {
    /// Registers the remitter with the code they typed (the verify step of a code-0 send).
    /// Never retried: a call that may have reached AOPay may have used the OTP. A transaction
    /// OTP (code 1) is consumed by AOPay's transfer call instead: a payment, not here.
    pub async fn register_remitter(&self, request: &RegisterRemitterRequest) -> Result<VerifyReceipt, Error> {
        execute(self, request).await
    }
}

/// RegisterRemitter's body. Written by hand rather than derived so the inferred field name
/// lives in one constant ([`REGISTER_MOBILE_FIELD`]); order as documented.
struct RegisterBody<'a> {
    mobile: &'a str,
    otp: &'a str,
    stateresp: &'a str,
    kyc_id: Option<&'a str>,
    registration_id: &'a str,
}

impl Serialize for RegisterBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut body = serializer.serialize_struct("RegisterRemitter", 5)?;
        body.serialize_field(REGISTER_MOBILE_FIELD, self.mobile)?;
        body.serialize_field("OTP", self.otp)?;
        body.serialize_field("Stateresp", self.stateresp)?;
        match self.kyc_id {
            Some(kyc_id) => body.serialize_field("KycId", kyc_id)?,
            None => body.skip_field("KycId")?,
        }
        body.serialize_field("RegistrationID", self.registration_id)?;
        body.end()
    }
}

impl Request for RegisterRemitterRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        validate::text("stateresp", self.stateresp.expose_secret(), 64)?;
        match &self.kyc_id {
            Some(kyc_id) => check_kyc_id(kyc_id),
            None => Ok(()),
        }
    }
}

/// `KycId`: one check for a request and for a verification that may make one.
fn check_kyc_id(kyc_id: &str) -> Result<(), Error> {
    validate::text("KYC id", kyc_id, 64)
}

impl Operation<RegisterRemitterRequest> for AOPayClient {
    type Output = VerifyReceipt;
    const KIND: OperationKind = OperationKind::Verify;
    const RETRIES: bool = false;

    fn wire_request(&self, request: &RegisterRemitterRequest) -> Result<WireRequest, Error> {
        let body = json_body(&RegisterBody {
            mobile: request.mobile.expose_digits(),
            otp: request.otp.expose_secret(),
            stateresp: request.stateresp.expose_secret(),
            kyc_id: request.kyc_id.as_deref(),
            registration_id: &self.registration_id,
        });
        Ok(WireRequest::post_json(REGISTER_API_PATH, body))
    }

    fn decode(&self, _request: &RegisterRemitterRequest, response: &RawResponse) -> Result<VerifyReceipt, Error> {
        let decoded = response
            .json::<Answer>()
            .map(|answer| ProviderAnswer::new(answer.response_code.into_text(), answer.message, None));
        VERIFY_CODES.resolve_verify(response, decoded, ReferenceRule::Optional)
    }
}

/// What [`GatewayProfile::verify_request`] refuses for a transaction OTP (code 1).
const TRANSACTION_NOT_VERIFIED: &str = "an AOPay transaction OTP is checked by AOPay's transfer call, not here";

impl GatewayProfile for AOPayClient {
    const GATEWAY: Gateway = Gateway::AOPay;
    const SETTINGS: &'static [Setting] = &[Setting::required("registration_id")];
    type SendRequest = SendOtpRequest;
    type VerifyRequest = RegisterRemitterRequest;

    fn from_settings(
        settings: &mut dyn FnMut(&'static str) -> Option<String>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let mut builder = AOPayClient::builder().options(options);
        if let Some(registration_id) = settings("registration_id") {
            builder = builder.registration_id(registration_id);
        }
        builder.build()
    }

    fn mobile(request: &SendOtpRequest) -> &MobileNumber {
        request.mobile()
    }

    /// Whether the send will be answered for a registration is known only once it is; the
    /// KYC id the registration would take is checked now.
    fn validate_verify(_request: &SendOtpRequest, extras: &VerifyExtras) -> Result<(), Error> {
        match &extras.kyc_id {
            Some(kyc_id) => check_kyc_id(kyc_id),
            None => Ok(()),
        }
    }

    /// A sent-for-registration OTP (code 0) is consumed by RegisterRemitter, with the send's
    /// `stateresp` and the KYC id when given; a transaction OTP (code 1) by AOPay's transfer
    /// call (a payment, not an OTP step): refused.
    fn verify_request(
        request: &SendOtpRequest,
        reference: Option<&SecretString>,
        outcome: Outcome,
        code: OtpCode,
        extras: &VerifyExtras,
    ) -> Result<RegisterRemitterRequest, Error> {
        if outcome != Outcome::SentForRegistration {
            return Err(Error::invalid_input(TRANSACTION_NOT_VERIFIED));
        }
        let register = RegisterRemitterRequest::new(request.mobile, code, profile::reference(reference)?);
        Ok(match &extras.kyc_id {
            Some(kyc_id) => register.kyc_id(kyc_id),
            None => register,
        })
    }

    /// A resend is the same request: AOPay issues a new `stateresp`.
    fn check_resend(_request: &SendOtpRequest) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;
    use otp_core::{ErrorKind, Reached};
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// A request the constructors would refuse, made field by field as only this crate can (as
    /// a derived Deserialize once could): `execute` must still refuse it.
    fn unchecked(beneficiary_id: &str, address: &str) -> SendOtpRequest {
        let remitter = Remitter {
            address: address.to_owned(),
            pincode: Pincode::parse("110045").unwrap(),
            date_of_birth: DateOfBirth::parse("20/08/2000").unwrap(),
            coordinates: Coordinates::new("28.6090", "77.2362").unwrap(),
        };
        SendOtpRequest {
            mobile: MobileNumber::parse("9900000088").unwrap(),
            beneficiary_id: beneficiary_id.to_owned(),
            transaction_type: TransactionType::Imps,
            amount: Amount::parse("100").unwrap(),
            remitter,
        }
    }

    #[tokio::test]
    async fn a_send_request_that_bypassed_its_constructor_is_still_refused_before_sending() {
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        let client = AOPayClient::builder()
            .registration_id("AOP-554")
            .environment(otp_core::Environment::Custom(server.uri()))
            .build()
            .unwrap();
        for (request, says) in [
            (unchecked(&"6".repeat(33), "Delhi"), "beneficiary id"),
            (unchecked("BENE-1", "Delhi"), "letters and digits"),
            (unchecked("60600077", &"a".repeat(201)), "address"),
            (unchecked("60600077", "line\nbreak"), "address"),
        ] {
            let refused = Request::validate(&request).unwrap_err();
            assert!(refused.to_string().contains(says), "{refused}");
            let error = client.send_otp(&request).await.unwrap_err();
            assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No), "{error}");
            assert_eq!(error.gateway(), Some(Gateway::AOPay));
        }
        assert!(server.received_requests().await.unwrap().is_empty(), "nothing reached AOPay");
        Request::validate(&unchecked("60600077", "Delhi")).unwrap();
    }

    #[test]
    fn the_profile_asks_for_its_settings_and_its_validity_is_the_gateways() {
        otp_core::test_util::check_settings::<AOPayClient>();
        assert_eq!((OTP_VALIDITY, AOPayClient::OTP_VALIDITY), (Duration::from_secs(90), Duration::from_secs(90)));
    }

    #[test]
    fn a_registration_otp_registers_with_the_stateresp_and_a_transaction_otp_is_refused() {
        let send = unchecked("60600077", "Delhi");
        let code = || OtpCode::parse("123456").unwrap();
        let stateresp = SecretString::new("STATE-9");
        let with_kyc = VerifyExtras::new().kyc_id("KYC-77");
        AOPayClient::validate_verify(&send, &with_kyc).unwrap();
        let register =
            AOPayClient::verify_request(&send, Some(&stateresp), Outcome::SentForRegistration, code(), &with_kyc)
                .unwrap();
        assert_eq!(
            (register.mobile.expose_digits(), register.stateresp.expose_secret(), register.kyc_id.as_deref()),
            ("9900000088", "STATE-9", Some("KYC-77"))
        );
        let error = AOPayClient::verify_request(&send, Some(&stateresp), Outcome::Sent, code(), &with_kyc).unwrap_err();
        assert_eq!((error.kind(), error.description()), (ErrorKind::InvalidRequest, TRANSACTION_NOT_VERIFIED));
        let error = AOPayClient::verify_request(&send, None, Outcome::SentForRegistration, code(), &with_kyc);
        assert_eq!(error.unwrap_err().kind(), ErrorKind::InvalidRequest, "no stateresp");
        let too_long = VerifyExtras::new().kyc_id("k".repeat(65));
        assert_eq!(AOPayClient::validate_verify(&send, &too_long).unwrap_err().kind(), ErrorKind::InvalidRequest);
        AOPayClient::check_resend(&send).unwrap();
    }
}
