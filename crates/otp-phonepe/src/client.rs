//! The PhonePe client: configuration, signing, and reading the answer.

use base64::Engine as _;
use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, json_body, Client, Operation, OperationKind};
use otp_core::{
    Error, Gateway, KnownHosts, ProviderAnswer, ReferenceRule, RequiredSettings, SaltKey, SecretString, SecretText,
    SendReceipt, VerifyReceipt,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::generated::codes::CODES;
use crate::generated::verify_codes::VERIFY_CODES;
use crate::{SendOtpRequest, VerifyOtpRequest};

/// The API path; it is also what X-VERIFY hashes, whatever prefix a custom base URL has.
pub const API_PATH: &str = "/v3/merchant/otp/send";
/// The path of "Verify OTP and link".
pub const VERIFY_API_PATH: &str = "/v3/merchant/otp/verify";

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
    /// A secret PhonePe keeps to the server, a string: read into a buffer wiped when dropped.
    #[serde(rename = "otpToken", default, deserialize_with = "SecretText::string_only")]
    otp_token: SecretText,
}

/// `X-VERIFY`: lowercase hex SHA-256 of (base64 payload + API path + salt key), `###`, salt index.
pub fn x_verify(base64_payload: &str, api_path: &str, salt_key: &SaltKey, salt_index: u32) -> SecretString {
    let mut hasher = Sha256::new();
    hasher.update(base64_payload.as_bytes());
    hasher.update(api_path.as_bytes());
    hasher.update(salt_key.expose_secret().as_bytes());
    let digest = hasher.finalize();
    // Encoded in place and copied once into a string of its final size, so that no smaller
    // buffer holding the signature is left behind unwiped.
    let mut hex_digest = otp_core::Zeroizing::new([0u8; 64]);
    #[allow(clippy::expect_used)] // See the message: it holds by construction.
    hex::encode_to_slice(digest, &mut hex_digest[..]).expect("a SHA-256 digest is 32 bytes: 64 hex digits");
    let mut value = String::with_capacity(64 + 3 + 10);
    value.extend(hex_digest.iter().copied().map(char::from));
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

impl PhonePeClient {
    /// A signed request: the payload as base64 in `{"request": …}`, X-VERIFY over it and the
    /// API path, and the device id when given. Send and verify are signed alike. The base64
    /// text holds what the payload holds (a verify's code): it is wiped too.
    fn signed(&self, api_path: &'static str, payload: &[u8], device_id: Option<&str>) -> Result<WireRequest, Error> {
        let encoded = otp_core::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(payload));
        let signature = x_verify(&encoded, api_path, &self.salt_key, self.salt_index);
        let body = json_body(&SignedBody { request: &encoded });
        let mut wire = WireRequest::post_json(api_path, body).secret_header("x-verify", signature.expose_secret())?;
        if let Some(device_id) = device_id {
            wire = wire.header("x-device-id", device_id)?;
        }
        Ok(wire)
    }

    /// Verifies the code the customer typed against the latest send's `otpToken`. Never
    /// retried: a verify that may have reached PhonePe may have used up a try.
    pub async fn verify_otp(&self, request: &VerifyOtpRequest) -> Result<VerifyReceipt, Error> {
        execute(self, request).await
    }
}

/// The payload of "Verify OTP and link".
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyPayload<'a> {
    merchant_id: &'a str,
    otp_token: &'a str,
    otp: &'a str,
}

impl Operation<VerifyOtpRequest> for PhonePeClient {
    type Output = VerifyReceipt;
    const KIND: OperationKind = OperationKind::Verify;
    const RETRIES: bool = false;

    fn wire_request(&self, request: &VerifyOtpRequest) -> Result<WireRequest, Error> {
        let payload = json_body(&VerifyPayload {
            merchant_id: &self.merchant_id,
            otp_token: request.otp_token.expose_secret(),
            otp: request.otp.expose_secret(),
        });
        self.signed(VERIFY_API_PATH, &payload, request.device_id.as_deref())
    }

    fn decode(&self, _request: &VerifyOtpRequest, response: &RawResponse) -> Result<VerifyReceipt, Error> {
        let decoded = response.json::<VerifyAnswer>().map(|answer| {
            let token = answer.data.and_then(|d| d.user_auth_token.into_secret());
            ProviderAnswer::new(answer.code, answer.message, token)
        });
        // A success must carry userAuthToken (inferred: the field table is cut short; see
        // docs/gateways/verify.md).
        VERIFY_CODES.resolve_verify(response, decoded, ReferenceRule::Required)
    }
}

#[derive(Deserialize)]
struct VerifyAnswer {
    code: Option<String>,
    message: Option<String>,
    data: Option<VerifyAnswerData>,
}

#[derive(Deserialize)]
struct VerifyAnswerData {
    /// The customer's credential for PhonePe's next calls, a string: read into a buffer wiped
    /// when dropped.
    #[serde(rename = "userAuthToken", default, deserialize_with = "SecretText::string_only")]
    user_auth_token: SecretText,
}

impl Client for PhonePeClient {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Operation<SendOtpRequest> for PhonePeClient {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, request: &SendOtpRequest) -> Result<WireRequest, Error> {
        let payload = json_body(&SendPayload {
            merchant_id: &self.merchant_id,
            mobile_number: request.mobile.expose_digits(),
            email: request.email.as_deref(),
            short_name: request.short_name.as_deref(),
            request_type: request.request_type.map(|t| t.as_str()),
        });
        self.signed(API_PATH, &payload, request.device_id.as_deref())
    }

    fn decode(&self, _request: &SendOtpRequest, response: &RawResponse) -> Result<SendReceipt, Error> {
        let decoded = response.json::<Answer>().map(|answer| {
            let reference = answer.data.and_then(|d| d.otp_token.into_secret());
            ProviderAnswer::new(answer.code, answer.message, reference)
        });
        CODES.resolve(response, decoded, ReferenceRule::Required)
    }
}
