//! # otp-paytm
//!
//! Send OTPs through Paytm's **"Send OTP API"** (`POST /v4/signin/otp/sv1/?locale=en-IN`), on
//! otp-core's HTTP path: `Authorization: Basic base64(clientId:clientSecret)`, a mandatory
//! `x-device-identifier`, an optional `autoReadHash`, and the body `{"phone", "scopes"}`.
//! The `state_token` Paytm returns is the receipt's reference (a secret) for the verify step.
//!
//! ```no_run
//! use otp_paytm::{PaytmClient, SendOtpRequest};
//! use otp_core::{Environment, MobileNumber};
//!
//! # async fn run() -> Result<(), otp_core::Error> {
//! let client = PaytmClient::builder()
//!     .client_id("merchant-client")
//!     .client_secret(std::env::var("PAYTM_CLIENT_SECRET").unwrap_or_default())
//!     .environment(Environment::Uat)
//!     .build()?;
//! let request = SendOtpRequest::new(MobileNumber::parse("7777777777")?, "8c4afbfab1ae0bd4")
//!     .scope("paytm")
//!     .scope("wallet");
//! let receipt = client.send_otp(&request).await?;
//! let state_token = receipt.reference; // for the verify call
//! # let _ = state_token;
//! # Ok(())
//! # }
//! ```
//!
//! ## Response codes
//!
//! A documented `responseCode` decides the result whatever the HTTP status; anything else
//! falls back to the HTTP status (see otp-core). Generated from `spec/codes.toml`:
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

use base64::Engine as _;
use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind, Request};
use otp_core::profile::{self, GatewayProfile, Setting, VerifyExtras};
use otp_core::{
    validate, ClientOptions, ClientSecret, Error, Gateway, KnownHosts, MobileNumber, OtpCode, Outcome, ProviderAnswer,
    ReferenceRule, RequiredSettings, SecretString, SecretText, SendReceipt, VerifyReceipt,
};
use serde::{Deserialize, Serialize};

pub use generated::codes::{CODES, EXAMPLES};
pub use generated::verify_codes::{VERIFY_CODES, VERIFY_EXAMPLES};

/// The API path.
pub const API_PATH: &str = "/v4/signin/otp/sv1/";
/// The only documented locale, and the default.
pub const DEFAULT_LOCALE: &str = "en-IN";
/// The path of "Validate OTP". *Inferred* from the send's path: Paytm's page gives the
/// headers, body and codes of this call but not its URL (docs/gateways/verify.md).
pub const VERIFY_API_PATH: &str = "/v4/signin/validate/otp/sv1";
/// Paytm's documented hosts.
pub const HOSTS: KnownHosts =
    KnownHosts { uat: "https://accounts-uat.paytm.com", production: Some("https://accounts.paytm.com") };

/// A "Send OTP" request. With feature `serde` it is read back only through its checks: a
/// stored request cannot come back as one Paytm would refuse.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "SendOtpRequestWire"))]
pub struct SendOtpRequest {
    mobile: MobileNumber,
    device_identifier: String,
    scopes: Vec<String>,
    auto_read_hash: Option<String>,
    locale: String,
}

impl SendOtpRequest {
    /// An OTP to this number, from this device (Android id, iOS vendor id, or a web cookie id).
    /// Add at least one scope.
    pub fn new(mobile: MobileNumber, device_identifier: impl Into<String>) -> Self {
        Self {
            mobile,
            device_identifier: device_identifier.into(),
            scopes: Vec::new(),
            auto_read_hash: None,
            locale: DEFAULT_LOCALE.to_owned(),
        }
    }

    /// Adds a scope (`paytm`, `wallet`, … as Paytm shared them).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// The app hash for SMS auto-read (`autoReadHash`).
    pub fn auto_read_hash(mut self, hash: impl Into<String>) -> Self {
        self.auto_read_hash = Some(hash.into());
        self
    }

    /// The `locale` query parameter (default and only documented value `en-IN`).
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = locale.into();
        self
    }

    /// The number the OTP goes to.
    pub fn mobile(&self) -> &MobileNumber {
        &self.mobile
    }

    /// The `x-device-identifier` it sends, which the validate call must repeat.
    pub fn device_identifier(&self) -> &str {
        &self.device_identifier
    }

    /// The `locale` it sends.
    pub fn locale_param(&self) -> &str {
        &self.locale
    }

    /// Checks every field; nothing is sent when this fails ([`Request::validate`], for callers
    /// without the trait in scope).
    pub fn validate(&self) -> Result<(), Error> {
        Request::validate(self)
    }
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        check_device_identifier(&self.device_identifier)?;
        if self.scopes.is_empty() {
            return Err(Error::invalid_input("at least one scope is required"));
        }
        for scope in &self.scopes {
            validate::text("scope", scope, 64)?;
        }
        if let Some(hash) = &self.auto_read_hash {
            validate::header_text("auto-read hash", hash, 64)?;
        }
        check_locale(&self.locale)
    }
}

/// What a stored request is read as before its checks let it through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct SendOtpRequestWire {
    mobile: MobileNumber,
    device_identifier: String,
    scopes: Vec<String>,
    auto_read_hash: Option<String>,
    locale: String,
}

#[cfg(feature = "serde")]
impl TryFrom<SendOtpRequestWire> for SendOtpRequest {
    type Error = Error;

    fn try_from(wire: SendOtpRequestWire) -> Result<Self, Error> {
        let mut request = SendOtpRequest::new(wire.mobile, wire.device_identifier).locale(wire.locale);
        request.scopes = wire.scopes;
        request.auto_read_hash = wire.auto_read_hash;
        Request::validate(&request)?;
        Ok(request)
    }
}

/// `x-device-identifier`, which the validate call repeats: one check for both.
fn check_device_identifier(device_identifier: &str) -> Result<(), Error> {
    validate::header_text("device identifier", device_identifier, 128)
}

/// Paytm's codes are exactly 6 digits.
fn check_otp(otp: &OtpCode) -> Result<(), Error> {
    if otp.len() != 6 {
        return Err(Error::invalid_input("a Paytm OTP is exactly 6 digits"));
    }
    Ok(())
}

/// `en-IN` and the like: Paytm's `locale` query parameter.
fn check_locale(locale: &str) -> Result<(), Error> {
    let locale_ok = locale.len() == 5
        && locale.as_bytes()[2] == b'-'
        && locale[..2].bytes().all(|b| b.is_ascii_lowercase())
        && locale[3..].bytes().all(|b| b.is_ascii_uppercase());
    if !locale_ok {
        return Err(Error::invalid_input("locale must look like en-IN"));
    }
    Ok(())
}

/// A "Validate OTP" request: the send's `state_token`, the 6-digit code, and the device id
/// the send used (Paytm refuses another with `BE1423013`).
#[derive(Debug, Clone)]
pub struct VerifyOtpRequest {
    state_token: SecretString,
    otp: OtpCode,
    device_identifier: String,
    locale: String,
}

impl VerifyOtpRequest {
    /// `state_token` (the send's reference), `otp` (Paytm's are exactly 6 digits) and the
    /// `x-device-identifier` of the send.
    pub fn new(state_token: SecretString, otp: OtpCode, device_identifier: impl Into<String>) -> Result<Self, Error> {
        check_otp(&otp)?;
        let device_identifier = device_identifier.into();
        Ok(Self { state_token, otp, device_identifier, locale: DEFAULT_LOCALE.to_owned() })
    }

    /// The `locale` query parameter (default `en-IN`).
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = locale.into();
        self
    }
}

impl Request for VerifyOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        None
    }

    fn validate(&self) -> Result<(), Error> {
        check_otp(&self.otp)?;
        check_device_identifier(&self.device_identifier)?;
        validate::text("state token", self.state_token.expose_secret(), 256)?;
        check_locale(&self.locale)
    }
}

/// Sends OTPs through Paytm. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PaytmClient {
    basic_credentials: SecretString,
    transport: Transport,
}

otp_core::client_builder! {
    /// Builds a [`PaytmClient`]; every setting is checked by [`PaytmClientBuilder::build`].
    pub struct PaytmClientBuilder {
        /// The client id Paytm issued.
        client_id: String,
        /// The client secret Paytm issued.
        client_secret: ClientSecret,
    }
}

impl PaytmClientBuilder {
    /// Checks the configuration; a missing or invalid setting is a configuration error.
    pub fn build(self) -> Result<PaytmClient, Error> {
        let mut required = RequiredSettings::new();
        let client_id = required.text("client id", self.client_id);
        let client_secret = required.secret("client secret", self.client_secret, ClientSecret::is_empty);
        required.finish(Gateway::Paytm)?;
        if client_id.contains(':') {
            return Err(Error::configuration("the Paytm client id must not contain ':' (Basic credentials)"));
        }
        // Every intermediate copy of the secret is wiped when dropped; the header is built at
        // its exact size so that SecretString keeps this buffer rather than a reallocated one.
        let plain = zeroize::Zeroizing::new(format!("{client_id}:{}", client_secret.expose_secret()));
        let encoded = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plain.as_bytes()));
        let mut header = String::with_capacity("Basic ".len() + encoded.len());
        header.push_str("Basic ");
        header.push_str(&encoded);
        let basic_credentials = SecretString::new(header);
        let transport = self.options.transport(Gateway::Paytm, &HOSTS)?;
        Ok(PaytmClient { basic_credentials, transport })
    }
}

#[derive(Deserialize)]
struct Answer {
    message: Option<String>,
    #[serde(rename = "responseCode")]
    response_code: Option<String>,
    /// The verify step's secret, a string: read into a buffer wiped when dropped.
    #[serde(default, deserialize_with = "SecretText::string_only")]
    state_token: SecretText,
}

impl PaytmClient {
    /// Starts a builder.
    pub fn builder() -> PaytmClientBuilder {
        PaytmClientBuilder::default()
    }

    /// Sends the OTP. The request is checked first; nothing is sent when it is invalid.
    pub async fn send_otp(&self, request: &SendOtpRequest) -> Result<SendReceipt, Error> {
        execute(self, request).await
    }
}

/// The body of "Send OTP": the number and the scopes asked for.
#[derive(Serialize)]
struct SendBody<'a> {
    phone: &'a str,
    scopes: &'a [String],
}

impl Client for PaytmClient {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Operation<SendOtpRequest> for PaytmClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        let body = json_body(&SendBody { phone: request.mobile.expose_digits(), scopes: &request.scopes });
        let mut wire = WireRequest::post_json(API_PATH, body)
            .query("locale", request.locale.clone())
            .secret_header("authorization", self.basic_credentials.expose_secret())?
            .header("x-device-identifier", &request.device_identifier)?;
        if let Some(hash) = &request.auto_read_hash {
            wire = wire.header("autoreadhash", hash)?;
        }
        Ok(wire)
    }

    fn decode(&self, _request: &SendOtpRequest, response: &RawResponse) -> Result<SendReceipt, Error> {
        let decoded = response.json::<Answer>().map(|answer| {
            let reference = answer.state_token.into_secret();
            ProviderAnswer::new(answer.response_code, answer.message, reference)
        });
        CODES.resolve(response, decoded, ReferenceRule::Required)
    }
}

impl PaytmClient {
    /// Validates the code the customer typed against the send's `state_token`. Never retried:
    /// a validation that may have reached Paytm may have used up a try.
    pub async fn verify_otp(&self, request: &VerifyOtpRequest) -> Result<VerifyReceipt, Error> {
        execute(self, request).await
    }
}

/// The body of "Validate OTP".
#[derive(Serialize)]
struct VerifyBody<'a> {
    state_token: &'a str,
    otp: &'a str,
}

#[derive(Deserialize)]
struct VerifyAnswer {
    message: Option<String>,
    #[serde(rename = "responseCode")]
    response_code: Option<String>,
    #[serde(default)]
    tokens: Tokens,
}

/// `tokens`, whose inner shape is not published: only `access_token`, when a string, is read,
/// straight into a buffer wiped when dropped (the other tokens are skipped, never copied).
/// Any other value of `tokens` reads as no token, as a missing one does.
#[derive(Default)]
struct Tokens {
    access_token: Option<SecretString>,
}

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TokensVisitor)
    }
}

struct TokensVisitor;

impl<'de> serde::de::Visitor<'de> for TokensVisitor {
    type Value = Tokens;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Paytm's tokens")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tokens, A::Error> {
        let mut tokens = Tokens::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "access_token" {
                // Only a string counts (a number is no token); the last of duplicates wins.
                tokens.access_token = map.next_value::<AccessToken>()?.0.into_secret();
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(tokens)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tokens, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Tokens::default())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Tokens, E> {
        Ok(Tokens::default())
    }
}

/// `access_token`'s value: a string is the token, anything else none.
#[derive(Deserialize)]
struct AccessToken(#[serde(deserialize_with = "SecretText::string_only")] SecretText);

impl Operation<VerifyOtpRequest> for PaytmClient {
    type Output = VerifyReceipt;
    const KIND: OperationKind = OperationKind::Verify;
    const RETRIES: bool = false;

    fn wire_request(&self, request: &VerifyOtpRequest) -> Result<WireRequest, Error> {
        let body = json_body(&VerifyBody {
            state_token: request.state_token.expose_secret(),
            otp: request.otp.expose_secret(),
        });
        WireRequest::post_json(VERIFY_API_PATH, body)
            .query("locale", request.locale.clone())
            .secret_header("authorization", self.basic_credentials.expose_secret())?
            .header("x-device-identifier", &request.device_identifier)
    }

    fn decode(&self, _request: &VerifyOtpRequest, response: &RawResponse) -> Result<VerifyReceipt, Error> {
        let decoded = response
            .json::<VerifyAnswer>()
            .map(|answer| ProviderAnswer::new(answer.response_code, answer.message, answer.tokens.access_token));
        VERIFY_CODES.resolve_verify(response, decoded, ReferenceRule::Optional)
    }
}

impl GatewayProfile for PaytmClient {
    const GATEWAY: Gateway = Gateway::Paytm;
    const SETTINGS: &'static [Setting] = &[Setting::required("client_id"), Setting::secret("client_secret")];
    type SendRequest = SendOtpRequest;
    type VerifyRequest = VerifyOtpRequest;

    fn from_settings(
        settings: &mut dyn FnMut(&'static str) -> Option<String>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let mut builder = PaytmClient::builder().options(options);
        if let Some(client_id) = settings("client_id") {
            builder = builder.client_id(client_id);
        }
        if let Some(client_secret) = settings("client_secret") {
            builder = builder.client_secret(client_secret);
        }
        builder.build()
    }

    fn mobile(request: &SendOtpRequest) -> &MobileNumber {
        request.mobile()
    }

    /// The validate call takes the send's device id and locale, checked with the send.
    fn validate_verify(_request: &SendOtpRequest, _extras: &VerifyExtras) -> Result<(), Error> {
        Ok(())
    }

    /// "Validate OTP": the send's `state_token`, and its device id and locale (Paytm refuses
    /// another device with `BE1423013`).
    fn verify_request(
        request: &SendOtpRequest,
        reference: Option<&SecretString>,
        _outcome: Outcome,
        code: OtpCode,
        _extras: &VerifyExtras,
    ) -> Result<VerifyOtpRequest, Error> {
        let verify = VerifyOtpRequest::new(profile::reference(reference)?, code, request.device_identifier())?;
        Ok(verify.locale(request.locale_param()))
    }

    /// A resend is the same request: Paytm issues a new `state_token`.
    fn check_resend(_request: &SendOtpRequest) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;

    #[test]
    fn the_profile_asks_for_its_settings() {
        otp_core::test_util::check_settings::<PaytmClient>();
        let given = |name: &str| Some(format!("{name}-value"));
        PaytmClient::from_settings(&mut |name| given(name), ClientOptions::new()).unwrap();
    }

    #[test]
    fn the_validate_call_repeats_the_token_device_and_locale_and_wants_six_digits() {
        let send = SendOtpRequest::new("9876543210".parse().unwrap(), "device-7").scope("paytm").locale("hi-IN");
        let token = SecretString::new("state-1");
        let extras = VerifyExtras::new();
        let code = |digits: &str| OtpCode::parse(digits).unwrap();
        let verify = PaytmClient::verify_request(&send, Some(&token), Outcome::Sent, code("123456"), &extras).unwrap();
        assert_eq!(
            (verify.state_token.expose_secret(), verify.device_identifier.as_str(), verify.locale.as_str()),
            ("state-1", "device-7", "hi-IN")
        );
        for refused in [
            PaytmClient::verify_request(&send, Some(&token), Outcome::Sent, code("1234"), &extras),
            PaytmClient::verify_request(&send, None, Outcome::Sent, code("123456"), &extras),
        ] {
            assert_eq!(refused.unwrap_err().kind(), otp_core::ErrorKind::InvalidRequest);
        }
        PaytmClient::check_resend(&send).unwrap();
    }
}
