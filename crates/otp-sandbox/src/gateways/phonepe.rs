//! PhonePe (docs/gateways/phonepe.md): a base64 JSON payload signed with X-VERIFY, over the
//! route's path and the salt key; "Trigger OTP", then its verify with the OTP token.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use otp_core::Gateway;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{Profile, Request};
use crate::answer::{admit, bad_gateway, credential, fresh, get, is_wire_mobile, record, reply, uuid, Answer};
use crate::app::App;
use crate::magic::{self, Magic};
use crate::state::{Check, Find, Verdict};

impl Profile for PhonePe {
    const GATEWAY: Gateway = Gateway::PhonePe;
    const SEND: &'static str = "/v3/merchant/otp/send";
    const VERIFY: &'static str = "/v3/merchant/otp/verify";

    /// The payload, once X-VERIFY (over `path`) and its merchant id check out.
    fn authorise<'a>(app: &App, request: &'a Request, path: &str) -> Result<Cow<'a, Map<String, Value>>, Response> {
        let Some((encoded, payload)) = request.body.as_ref().and_then(Self::payload) else {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "request must be base64 of a JSON payload"));
        };
        let credentials = &app.config.credentials.phonepe;
        let expected = {
            let digest = Sha256::digest(format!("{encoded}{path}{}", credentials.salt_key));
            let hex = hex::encode(digest);
            format!("{hex}###{}", credentials.salt_index)
        };
        if request.header("x-verify") != Some(expected.as_str()) {
            return Err(Self::failure(
                StatusCode::UNAUTHORIZED,
                "AUTHORIZATION_FAILED",
                "Value of X-VERIFY is incorrect",
            ));
        }
        if get(&payload, "merchantId") != Some(credentials.merchant_id.as_str()) {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "Invalid merchantId"));
        }
        Ok(Cow::Owned(payload))
    }

    fn send(app: &App, request: &Request, payload: &Map<String, Value>) -> Answer {
        let bad_request = |description| Err(Self::malformed(StatusCode::BAD_REQUEST, description));
        let Some(mobile) = get(payload, "mobileNumber").filter(|m| is_wire_mobile(m)) else {
            return bad_request("Invalid mobileNumber");
        };
        if payload.get("requestType").is_some_and(|kind| !matches!(kind.as_str(), Some("WALLET" | "CREDIT"))) {
            return bad_request("requestType must be WALLET or CREDIT");
        }
        let device_id = request.header("x-device-id");
        if device_id.is_some_and(|d| d.chars().count() > 64) {
            return bad_request("X-DEVICE-ID is longer than 64 characters");
        }
        admit::<Self>(app, mobile)?;
        let token = format!("OTP{}", fresh(uuid())?);
        let check = Check { device_id: device_id.map(str::to_owned), ..Check::default() };
        record::<Self>(app, mobile, Some(token.clone()), check)?;
        Ok(Self::success(app, "otpToken", token))
    }

    fn verify(app: &App, _request: &Request, payload: &Map<String, Value>) -> Answer {
        let (Some(token), Some(code)) = (get(payload, "otpToken"), get(payload, "otp")) else {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "otpToken and otp are mandatory"));
        };
        let failure = |code: &str, message: &str| Ok(Self::failure(StatusCode::OK, code, message));
        match app.state.verify(Self::GATEWAY, Find::LatestReference(token), code, None) {
            Verdict::Verified => Ok(Self::success(app, "userAuthToken", credential()?)),
            Verdict::Wrong => failure("OTP_VERIFY_FAILED", "OTP verification failed"),
            Verdict::Spent => failure("OTP_ALREADY_VERIFIED", "OTP already verified or too many attempts"),
            Verdict::Expired => failure("OTP_EXPIRED", "OTP expired"),
            Verdict::Unknown | Verdict::DeviceMismatch => failure("INVALID_OTP_TOKEN", "Invalid OTP token"),
        }
    }

    fn mobile(body: &Map<String, Value>) -> Option<String> {
        Self::payload(body).and_then(|(_, p)| get(&p, "mobileNumber").map(str::to_owned))
    }

    fn magic(_app: &App, magic: Magic, _mobile: &str) -> Response {
        match magic {
            Magic::OtpLimit => {
                Self::failure(StatusCode::OK, "OTP_LIMIT_EXCEEDED", "OTP limit exceeded for this mobile number")
            }
            Magic::Blocked => Self::failure(StatusCode::OK, "USER_BLOCKED", "User is blocked for 1 day."),
            Magic::ProviderError => Self::failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "The server is busy or the server is not responding",
            ),
            Magic::Throttled => Self::failure(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "Too many requests"),
            Magic::BadGateway | Magic::Slow => bad_gateway(),
        }
    }

    fn magic_answer(magic: Magic) -> &'static str {
        match magic {
            Magic::OtpLimit => "200 `OTP_LIMIT_EXCEEDED`",
            Magic::Blocked => "200 `USER_BLOCKED`",
            Magic::ProviderError => "500 `INTERNAL_SERVER_ERROR`",
            Magic::Slow => magic::SLOW_ANSWER,
            Magic::Throttled => "429 `TOO_MANY_REQUESTS`",
            Magic::BadGateway => magic::BAD_GATEWAY_ANSWER,
        }
    }

    fn malformed(status: StatusCode, description: &str) -> Response {
        Self::failure(status, "BAD_REQUEST", description)
    }

    fn full(message: &str) -> Value {
        json!({"success": false, "error": "sandbox_full", "message": message, "data": {}})
    }
}

/// PhonePe's own answers and payload.
pub(crate) struct PhonePe;

impl PhonePe {
    fn failure(status: StatusCode, code: &str, message: &str) -> Response {
        reply(status, json!({"success": false, "code": code, "message": message, "data": {}}))
    }

    /// A success, its data the merchant id and `key`'s value (the send's or the verify's token).
    fn success(app: &App, key: &str, value: String) -> Response {
        reply(
            StatusCode::OK,
            json!({"success": true, "code": "SUCCESS", "message": "Your request has been successfully completed.",
                   "data": {"merchantId": app.config.credentials.phonepe.merchant_id, key: value}}),
        )
    }

    /// The request's `request` field and the JSON object it is base64 of.
    fn payload(body: &Map<String, Value>) -> Option<(String, Map<String, Value>)> {
        let encoded = body.get("request")?.as_str()?.to_owned();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).ok()?;
        match serde_json::from_slice(&decoded).ok()? {
            Value::Object(payload) => Some((encoded, payload)),
            _ => None,
        }
    }
}

credentials! {
    /// What the PhonePe routes check: X-VERIFY's salt key and index, and the payload's merchant id.
    PhonePeCredentials {
        /// `merchantId`.
        id merchant_id = PHONEPE_MERCHANT_ID: "SANDBOXMERCHANT",
        /// The salt key X-VERIFY is computed with.
        secret salt_key = PHONEPE_SALT_KEY: "sandbox-salt-key",
        /// The salt index after X-VERIFY's `###`.
        index salt_index = PHONEPE_SALT_INDEX: 1,
    }
}
