//! AOPay (docs/gateways/aopay.md): the RegistrationID in a body of strings; "Transaction Send
//! OTP" (code 1; code 0 when the remitter is new and the OTP went out to register them), then
//! RegisterRemitter with the code 0 reference. Its OTPs expire after 90 seconds.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use otp_core::{validate, Date, Gateway};
use serde_json::{json, Map, Value};

use super::{Profile, Request};
use crate::answer::{
    admit, bad_gateway, bad_request_as_ok, fresh, get, internal_error_text, is_wire_mobile, record, reply,
    string_field, Answer,
};
use crate::app::{random_text, App, SandboxConfig};
use crate::magic::{self, Magic};
use crate::state::{Check, Find, Verdict};

/// How long an AOPay OTP stays valid by default, as AOPay documents (defined once, in otp-core).
pub(crate) const OTP_VALIDITY: Duration = Gateway::AOPay.otp_validity();

impl Profile for AOPay {
    const GATEWAY: Gateway = Gateway::AOPay;
    const SEND: &'static str = "/api/AOP/DMTV1/TransactionSendOtp";
    const VERIFY: &'static str = "/api/AOP/DMTV1/RegisterRemitter";

    /// A body of strings, then its RegistrationID.
    fn authorise<'a>(app: &App, request: &'a Request, _path: &str) -> Result<Cow<'a, Map<String, Value>>, Response> {
        let Some(fields) = request.fields() else {
            return Err(Self::failure(StatusCode::OK, 3, "request body must be a JSON object of strings"));
        };
        if get(fields, "RegistrationID") != Some(app.config.credentials.aopay.registration_id.as_str()) {
            return Err(reply(
                StatusCode::UNAUTHORIZED,
                json!({"response_code": 11, "status": false, "message": "Authentication failed"}),
            ));
        }
        Ok(Cow::Borrowed(fields))
    }

    fn send(app: &App, _request: &Request, fields: &Map<String, Value>) -> Answer {
        Self::check(fields).map_err(|message| Self::failure(StatusCode::OK, 3, message))?;
        let mobile = get(fields, "MobileNumber").unwrap_or_default();
        admit::<Self>(app, mobile)?;
        let state = Self::issue(app, mobile, false)?;
        let message = "OTP has been send to the remitter mobile number.";
        Ok(reply(
            StatusCode::OK,
            json!({"status": true, "response_code": 1, "message": message, "stateresp": state, "Status": "True", "Value": message}),
        ))
    }

    fn verify(app: &App, _request: &Request, fields: &Map<String, Value>) -> Answer {
        let (Some(mobile), Some(state), Some(code)) =
            (get(fields, "MobileNumber").filter(|m| is_wire_mobile(m)), get(fields, "Stateresp"), get(fields, "OTP"))
        else {
            return Err(Self::failure(StatusCode::OK, 3, "MobileNumber, OTP and Stateresp are mandatory"));
        };
        Ok(match app.state.verify(Self::GATEWAY, Find::RegistrationReference { reference: state, mobile }, code, None) {
            Verdict::Verified => reply(
                StatusCode::OK,
                json!({"status": true, "response_code": 1, "message": "Remitter registered successfully.",
                       "data": {"fname": "Sandbox", "lname": "Remitter", "mobile": mobile, "status": "Active",
                                "limit": "25000", "remaining_limit": "25000"}}),
            ),
            Verdict::Expired => Self::failure(StatusCode::OK, 2, "OTP expired"),
            Verdict::Wrong | Verdict::Spent | Verdict::Unknown | Verdict::DeviceMismatch => {
                Self::failure(StatusCode::OK, 2, "Invalid OTP")
            }
        })
    }

    fn mobile(body: &Map<String, Value>) -> Option<String> {
        string_field(body, "MobileNumber")
    }

    fn magic(app: &App, magic: Magic, mobile: &str) -> Response {
        match magic {
            Magic::OtpLimit => Self::failure(StatusCode::OK, 2, "OTP limit reached for this remitter"),
            Magic::Blocked => Self::failure(StatusCode::OK, 2, "Remitter is blocked"),
            Magic::ProviderError => internal_error_text(),
            // Sent for registration: a real registration OTP went out, for RegisterRemitter.
            Magic::Throttled => match Self::issue(app, mobile, true) {
                Ok(state) => reply(
                    StatusCode::OK,
                    json!({"status": false, "response_code": 0, "stateresp": state,
                           "message": "Remitter not registered OTP sent for new registration."}),
                ),
                Err(refused) => refused,
            },
            Magic::BadGateway | Magic::Slow => bad_gateway(),
        }
    }

    fn magic_answer(magic: Magic) -> &'static str {
        match magic {
            Magic::OtpLimit => "code 2 failure",
            Magic::Blocked => "code 2 failure",
            Magic::ProviderError => "HTTP 500",
            Magic::Slow => magic::SLOW_ANSWER,
            Magic::Throttled => "code 0: sent for registration",
            Magic::BadGateway => magic::BAD_GATEWAY_ANSWER,
        }
    }

    fn malformed(status: StatusCode, description: &str) -> Response {
        Self::failure(bad_request_as_ok(status), 3, description)
    }

    fn full(message: &str) -> Value {
        json!({"status": false, "error": "sandbox_full", "message": message})
    }

    fn validity(config: &SandboxConfig) -> Duration {
        config.aopay_otp_validity
    }
}

/// AOPay's own answers, references and field rules.
pub(crate) struct AOPay;

impl AOPay {
    fn failure(status: StatusCode, code: i64, message: &str) -> Response {
        reply(status, json!({"status": false, "response_code": code, "message": message}))
    }

    /// `stateresp`: AOPay's references are 9-digit numbers.
    fn state_reference() -> Option<String> {
        Some(format!("{}{}", random_text(1, b"123456789")?, random_text(8, b"0123456789")?))
    }

    /// Issues an OTP for a send: a registration OTP for code 0, a transaction OTP for code 1.
    /// The refusal is the answer to give: no randomness, or no place for a new number.
    fn issue(app: &App, mobile: &str, registration: bool) -> Result<String, Response> {
        let state = fresh(Self::state_reference())?;
        record::<Self>(app, mobile, Some(state.clone()), Check { registration, ..Check::default() })?;
        Ok(state)
    }

    fn check(fields: &Map<String, Value>) -> Result<(), &'static str> {
        get(fields, "MobileNumber").filter(|m| is_wire_mobile(m)).ok_or("Invalid MobileNumber")?;
        get(fields, "BeneID").ok_or("BeneID is required")?;
        if !matches!(get(fields, "Txntype"), Some("IMPS" | "NEFT")) {
            return Err("Txntype must be IMPS or NEFT");
        }
        validate::positive_amount("Amount", get(fields, "Amount").unwrap_or("")).map_err(|_| "Invalid Amount")?;
        let pincode = get(fields, "Pincode").unwrap_or("");
        if pincode.len() != 6 || !pincode.bytes().all(|b| b.is_ascii_digit()) {
            return Err("Invalid Pincode");
        }
        get(fields, "Address").ok_or("Address is required")?;
        Date::parse_dd_mm_yyyy("DOB", get(fields, "DOB").unwrap_or("")).map_err(|_| "Invalid DOB")?;
        // Spaces around a number pass here, as for iServeU's latLong.
        validate::decimal_in_range("Latitude", get(fields, "Latitude").unwrap_or("").trim(), -90.0, 90.0)
            .map_err(|_| "Invalid Latitude")?;
        validate::decimal_in_range("Longitute", get(fields, "Longitute").unwrap_or("").trim(), -180.0, 180.0)
            .map_err(|_| "Invalid Longitute")?;
        Ok(())
    }
}

credentials! {
    /// What the AOPay routes check: the body's RegistrationID.
    AOPayCredentials {
        /// `RegistrationID`.
        id registration_id = AOPAY_REGISTRATION_ID: "AOP-SANDBOX",
    }
}
