//! The PhonePe client: configuration, signing, and reading the answer.

use base64::Engine as _;
use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind, Request};
use otp_core::{
    Error, Gateway, KnownHosts, MobileNumber, ProviderAnswer, ReferenceRule, RequiredSettings, SaltKey, SecretString,
    SendReceipt,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::generated::codes::CODES;
use crate::SendOtpRequest;

/// The API path; it is also what X-VERIFY hashes, whatever prefix a custom base URL has.
pub const API_PATH: &str = "/v3/merchant/otp/send";

/// PhonePe's documented hosts.
pub const HOSTS: KnownHosts =
    KnownHosts { uat: "https://mercury-uat.phonepe.com", production: Some("https://mercury-t2.phonepe.com") };

/// Sends OTPs through PhonePe. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PhonePeClient {
    merchant_id: String,
    salt_key: SaltKey,
    salt_index: u32,
    transport: Transport,
}

otp_core::client_builder! {
    /// Builds a [`PhonePeClient`]; every setting is checked by [`PhonePeClientBuilder::build`].
    pub struct PhonePeClientBuilder {
        /// The `merchantId` PhonePe assigned.
        merchant_id: String,
        /// The salt key of the salt index in use.
        salt_key: SaltKey,
        /// The salt index (any positive integer PhonePe issued).
        salt_index: u32 = by_value,
    }
}

impl PhonePeClientBuilder {
    /// Checks the configuration; a missing or invalid setting is a configuration error.
    pub fn build(self) -> Result<PhonePeClient, Error> {
        let mut required = RequiredSettings::new();
        let merchant_id = required.text("merchant id", self.merchant_id);
        let salt_key = required.secret("salt key", self.salt_key, SaltKey::is_empty);
        let salt_index = required.value("salt index", self.salt_index);
        required.finish(Gateway::PhonePe)?;
        if salt_index == 0 {
            return Err(Error::configuration("the PhonePe salt index must be a positive integer"));
        }
        if merchant_id.len() > 64 || !merchant_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(Error::configuration("the PhonePe merchant id may contain only letters, digits, _ and -"));
        }
        let transport = self.options.transport(Gateway::PhonePe, &HOSTS)?;
        Ok(PhonePeClient { merchant_id, salt_key, salt_index, transport })
    }
}

#[derive(Deserialize)]
struct Answer {
    code: Option<String>,
    message: Option<String>,
    data: Option<AnswerData>,
}

#[derive(Deserialize)]
struct AnswerData {
    #[serde(rename = "otpToken")]
    otp_token: Option<String>,
}

/// `X-VERIFY`: lowercase hex SHA-256 of (base64 payload + API path + salt key), `###`, salt index.
pub fn x_verify(base64_payload: &str, salt_key: &SaltKey, salt_index: u32) -> SecretString {
    let mut hasher = Sha256::new();
    hasher.update(base64_payload.as_bytes());
    hasher.update(API_PATH.as_bytes());
    hasher.update(salt_key.expose_secret().as_bytes());
    let digest = hasher.finalize();
    let mut value = String::with_capacity(64 + 3 + 10);
    for byte in digest {
        value.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        value.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    value.push_str("###");
    value.push_str(&salt_index.to_string());
    SecretString::new(value)
}

impl PhonePeClient {
    /// Starts a builder.
    pub fn builder() -> PhonePeClientBuilder {
        PhonePeClientBuilder::default()
    }

    /// Sends the OTP. The request is checked first; nothing is sent when it is invalid.
    pub async fn send_otp(&self, request: &SendOtpRequest) -> Result<SendReceipt, Error> {
        execute(self, request).await
    }
}

/// The payload PhonePe signs: its documented fields, in its order; absent options left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SendPayload<'a> {
    merchant_id: &'a str,
    mobile_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    short_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_type: Option<&'static str>,
}

/// The body on the wire: the base64 of the payload.
#[derive(Serialize)]
struct SignedBody<'a> {
    request: &'a str,
}

impl Client for PhonePeClient {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(self.mobile())
    }
}

impl Operation<SendOtpRequest> for PhonePeClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        request.validate()?;
        let payload = json_body(&SendPayload {
            merchant_id: &self.merchant_id,
            mobile_number: request.mobile.expose_digits(),
            email: request.email.as_deref(),
            short_name: request.short_name.as_deref(),
            request_type: request.request_type.map(|t| t.as_str()),
        });
        let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
        let signature = x_verify(&encoded, &self.salt_key, self.salt_index);
        let body = json_body(&SignedBody { request: &encoded });
        let mut wire = WireRequest::post_json(API_PATH, body).secret_header("x-verify", signature.expose_secret())?;
        if let Some(device_id) = &request.device_id {
            wire = wire.header("x-device-id", device_id)?;
        }
        Ok(wire)
    }

    fn decode(&self, _request: &SendOtpRequest, response: &RawResponse) -> Result<SendReceipt, Error> {
        let decoded = response.json::<Answer>().map(|answer| {
            let reference = answer.data.and_then(|d| d.otp_token).filter(|t| !t.is_empty()).map(SecretString::new);
            ProviderAnswer::new(answer.code, answer.message, reference)
        });
        CODES.resolve(response, decoded, ReferenceRule::Required)
    }
}
