//! Paytm (docs/gateways/paytm.md): Basic credentials, a locale and a device id on every call;
//! "Send OTP" answers a state token, which the validate call consumes from the same device.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use otp_core::Gateway;
use serde_json::{json, Map, Value};

use super::{Profile, Request};
use crate::answer::{admit, bad_gateway, credential, fresh, get, is_wire_mobile, record, reply, string_field, uuid, Answer};
use crate::app::App;
use crate::magic::{self, Magic};
use crate::state::{Check, Find, Verdict};

impl Profile for Paytm {
    const GATEWAY: Gateway = Gateway::Paytm;
    const SEND: &'static str = "/v4/signin/otp/sv1/";
    const VERIFY: &'static str = "/v4/signin/validate/otp/sv1";

    /// The locale, the Basic credentials and the device id, then a JSON object.
    fn authorise<'a>(app: &App, request: &'a Request, _path: &str) -> Result<Cow<'a, Map<String, Value>>, Response> {
        if !request.has_query("locale") {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "locale is mandatory"));
        }
        let credentials = &app.config.credentials.paytm;
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.client_id, credentials.client_secret));
        if request.header("authorization").and_then(|v| v.strip_prefix("Basic ")) != Some(expected.as_str()) {
            return Err(Self::failure(StatusCode::UNAUTHORIZED, "BE1423005", "Invalid Authorization"));
        }
        if request.header("x-device-identifier").is_none() {
            return Err(Self::failure(StatusCode::BAD_REQUEST, "BE1423012", "Device identifier is missing"));
        }
        request.body.as_ref().map(Cow::Borrowed).ok_or_else(|| Self::malformed(StatusCode::BAD_REQUEST, ""))
    }

    fn send(app: &App, request: &Request, body: &Map<String, Value>) -> Answer {
        let scopes_ok = body
            .get("scopes")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty() && s.iter().all(|v| v.as_str().is_some_and(|v| !v.trim().is_empty())));
        let phone = body.get("phone").and_then(Value::as_str).filter(|p| is_wire_mobile(p));
        let Some(phone) = phone.filter(|_| scopes_ok) else {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, ""));
        };
        admit::<Self>(app, phone)?;
        let token = fresh(uuid())?;
        let check = Check { device_id: request.header("x-device-identifier").map(str::to_owned), ..Check::default() };
        record::<Self>(app, phone, Some(token.clone()), check)?;
        Ok(reply(
            StatusCode::OK,
            json!({"status": "SUCCESS", "message": "OTP sent to phone", "responseCode": "BE1400001", "state_token": token}),
        ))
    }

    fn verify(app: &App, request: &Request, body: &Map<String, Value>) -> Answer {
        let (Some(state_token), Some(code)) = (get(body, "state_token"), get(body, "otp")) else {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, ""));
        };
        let device = request.header("x-device-identifier");
        let failure = |code: &str, message: &str| Ok(Self::failure(StatusCode::OK, code, message));
        match app.state.verify(Self::GATEWAY, Find::LatestReference(state_token), code, device) {
            Verdict::Verified => Ok(reply(
                StatusCode::OK,
                json!({"status": "SUCCESS", "message": "Success", "responseCode": "BE1400001",
                       "tokens": {"access_token": credential()?, "refresh_token": credential()?, "expires": "3600", "scope": "paytm"},
                       "encryptedUserId": "sandbox-user"}),
            )),
            Verdict::Wrong => failure("403", "Invalid OTP entered"),
            Verdict::DeviceMismatch => {
                Err(Self::failure(StatusCode::BAD_REQUEST, "BE1423013", "Device identifier does not match the send's"))
            }
            Verdict::Spent | Verdict::Expired | Verdict::Unknown => failure("1006", "Your session has expired"),
        }
    }

    fn mobile(body: &Map<String, Value>) -> Option<String> {
        string_field(body, "phone")
    }

    fn magic(_app: &App, magic: Magic, _mobile: &str) -> Response {
        match magic {
            Magic::OtpLimit => Self::failure(StatusCode::OK, "BE1425006", "Oops! You have reached an OTP limit, please raise a query at paytm.com/care."),
            Magic::Blocked => Self::failure(StatusCode::OK, "BE1424001", "We have found suspicious activity from this number. Therefore, we have blocked this account. Please raise a request at paytm.com/care to unblock your account."),
            Magic::ProviderError => Self::failure(StatusCode::INTERNAL_SERVER_ERROR, "BE1426003", "There was some issue in processing this request"),
            Magic::Throttled => Self::failure(StatusCode::OK, "BE1425004", "Mobile number is already pending for verification. Please try after 48 hours."),
            Magic::BadGateway | Magic::Slow => bad_gateway(),
        }
    }

    fn magic_answer(magic: Magic) -> &'static str {
        match magic {
            Magic::OtpLimit => "`BE1425006`",
            Magic::Blocked => "`BE1424001`",
            Magic::ProviderError => "500 `BE1426003`",
            Magic::Slow => magic::SLOW_ANSWER,
            Magic::Throttled => "`BE1425004`",
            Magic::BadGateway => magic::BAD_GATEWAY_ANSWER,
        }
    }

    fn malformed(status: StatusCode, _description: &str) -> Response {
        Self::failure(status, "434", "Bad request")
    }

    fn full(message: &str) -> Value {
        json!({"status": "FAILURE", "error": "sandbox_full", "message": message})
    }
}

/// Paytm's own answers.
pub(crate) struct Paytm;

impl Paytm {
    fn failure(status: StatusCode, code: &str, message: &str) -> Response {
        reply(status, json!({"status": "FAILURE", "message": message, "responseCode": code}))
    }
}

credentials! {
    /// What the Paytm routes check: the Basic credentials.
    PaytmCredentials {
        /// The client id.
        id client_id = PAYTM_CLIENT_ID: "sandbox-client",
        /// The client secret.
        secret client_secret = PAYTM_CLIENT_SECRET: "sandbox-secret",
    }
}
