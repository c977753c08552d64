//! iServeU (docs/gateways/iserveu.md): `client_id` and `client_secret` headers and a body of
//! strings; the unified send (OTP type 1 registers a customer, type 2 confirms a transaction),
//! then the customer's registration with the type 1 code.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::Response;
use otp_core::{validate, Gateway};
use serde_json::{json, Map, Value};

use super::{Profile, Request};
use crate::answer::{
    admit, bad_gateway, bad_request_as_ok, get, internal_error_text, is_wire_mobile, record, reply, string_field,
    Answer,
};
use crate::app::App;
use crate::magic::{self, Magic};
use crate::state::{Check, Find, Verdict};

impl Profile for IServeU {
    const GATEWAY: Gateway = Gateway::IServeU;
    const SEND: &'static str = "/common/dmt-lite/unified/otp/send";
    const VERIFY: &'static str = "/common/dmt-lite/unified/customer/process-customer-registration";

    /// The `client_id` and `client_secret` headers, then a body of strings.
    fn authorise<'a>(app: &App, request: &'a Request, _path: &str) -> Result<Cow<'a, Map<String, Value>>, Response> {
        let credentials = &app.config.credentials.iserveu;
        if request.header("client_id") != Some(credentials.client_id.as_str())
            || request.header("client_secret") != Some(credentials.client_secret.as_str())
        {
            return Err(Self::status(
                StatusCode::UNAUTHORIZED,
                "401",
                "Unauthorized: invalid client_id or client_secret",
            ));
        }
        request.fields().map(Cow::Borrowed).ok_or_else(|| Self::invalid("request body must be a JSON object of strings"))
    }

    fn send(app: &App, _request: &Request, fields: &Map<String, Value>) -> Answer {
        Self::check(app, fields).map_err(Self::invalid)?;
        let mobile = get(fields, "customerMobileNumber").unwrap_or_default();
        admit::<Self>(app, mobile)?;
        let check = Check { registration: get(fields, "otpType") == Some("1"), ..Check::default() };
        let reference = get(fields, "externalRefNumber").map(str::to_owned);
        record::<Self>(app, mobile, reference, check)?;
        Ok(Self::status(StatusCode::OK, "0", "OTP Sent Successfully."))
    }

    fn verify(app: &App, _request: &Request, fields: &Map<String, Value>) -> Answer {
        let Some(mobile) = get(fields, "mobileNumber").filter(|m| is_wire_mobile(m)) else {
            return Err(Self::invalid("mobileNumber is invalid"));
        };
        if get(fields, "name").is_none() {
            return Err(Self::invalid("name is mandatory"));
        }
        Self::check_username(app, fields).map_err(Self::invalid)?;
        let code = get(fields, "otp").unwrap_or_default();
        Ok(match app.state.verify(Self::GATEWAY, Find::RegistrationFor(mobile), code, None) {
            Verdict::Verified => Self::status(StatusCode::OK, "0", "Customer Registered Successfully."),
            Verdict::Expired => Self::invalid("OTP expired"),
            Verdict::Wrong | Verdict::Spent | Verdict::Unknown | Verdict::DeviceMismatch => Self::invalid("Invalid OTP"),
        })
    }

    fn mobile(body: &Map<String, Value>) -> Option<String> {
        string_field(body, "customerMobileNumber")
    }

    fn magic(_app: &App, magic: Magic, _mobile: &str) -> Response {
        match magic {
            Magic::OtpLimit | Magic::Blocked | Magic::Throttled => {
                Self::status(StatusCode::OK, "1", "Failed to send OTP")
            }
            Magic::ProviderError => internal_error_text(),
            Magic::BadGateway | Magic::Slow => bad_gateway(),
        }
    }

    fn magic_answer(magic: Magic) -> &'static str {
        match magic {
            Magic::OtpLimit => "statusCode `1`",
            Magic::Blocked => "statusCode `1`",
            Magic::ProviderError => "HTTP 500",
            Magic::Slow => magic::SLOW_ANSWER,
            Magic::Throttled => "statusCode `1`",
            Magic::BadGateway => magic::BAD_GATEWAY_ANSWER,
        }
    }

    fn malformed(status: StatusCode, description: &str) -> Response {
        Self::status(bad_request_as_ok(status), "-1", description)
    }

    fn full(message: &str) -> Value {
        json!({"status": "FAILED", "statusDesc": message, "error": "sandbox_full", "message": message,
               "paramA": "", "paramB": "", "paramC": ""})
    }
}

/// iServeU's own answers and field rules.
pub(crate) struct IServeU;

impl IServeU {
    fn status(status: StatusCode, code: &str, description: &str) -> Response {
        let outcome = if code == "0" { "SUCCESS" } else { "FAILED" };
        reply(
            status,
            json!({"status": outcome, "statusCode": code, "statusDesc": description, "paramA": "", "paramB": "", "paramC": ""}),
        )
    }

    fn invalid(description: &str) -> Response {
        Self::status(StatusCode::OK, "-1", description)
    }

    fn check_username(app: &App, fields: &Map<String, Value>) -> Result<(), &'static str> {
        if get(fields, "username") != Some(app.config.credentials.iserveu.username.as_str()) {
            return Err("username is invalid");
        }
        Ok(())
    }

    fn check(app: &App, fields: &Map<String, Value>) -> Result<(), &'static str> {
        let otp_type = get(fields, "otpType");
        get(fields, "customerMobileNumber").filter(|m| is_wire_mobile(m)).ok_or("customerMobileNumber is invalid")?;
        Self::check_username(app, fields)?;
        get(fields, "ovdType").ok_or("ovdType is mandatory")?;
        if let Some(reference) = get(fields, "externalRefNumber") {
            if !(6..=22).contains(&reference.chars().count()) {
                return Err("externalRefNumber must be 6 to 22 characters");
            }
        }
        match otp_type {
            Some("1") => {
                get(fields, "ovdData").ok_or("ovdData is mandatory for OTP type 1")?;
            }
            Some("2") => {
                get(fields, "externalRefNumber").ok_or("externalRefNumber is mandatory for OTP type 2")?;
                let amount = get(fields, "requestedAmount").unwrap_or("");
                validate::positive_amount("requestedAmount", amount)
                    .map_err(|_| "Requested Amount Must Not be EMPTY Or Only Number Allowed")?;
            }
            _ => return Err("otpType must be 1 or 2"),
        }
        if let Some(lat_long) = get(fields, "latLong") {
            let (lat, long) = lat_long.split_once(',').ok_or("latLong must be \"lat,long\"")?;
            // How strict the gateway is about spaces is not documented: the emulator lets them pass
            // (the client never sends any).
            validate::decimal_in_range("latitude", lat.trim(), -90.0, 90.0).map_err(|_| "latLong is invalid")?;
            validate::decimal_in_range("longitude", long.trim(), -180.0, 180.0).map_err(|_| "latLong is invalid")?;
        }
        if let Some(ip) = get(fields, "publicIP") {
            ip.parse::<IpAddr>().map_err(|_| "publicIP is invalid")?;
        }
        Ok(())
    }
}

credentials! {
    /// What the iServeU routes check: the two headers, and the body's `username`.
    IServeUCredentials {
        /// `client_id`.
        id client_id = ISERVEU_CLIENT_ID: "sandbox-client",
        /// `client_secret`.
        secret client_secret = ISERVEU_CLIENT_SECRET: "sandbox-secret",
        /// `username`.
        id username = ISERVEU_USERNAME: "sandboxuser",
    }
}
