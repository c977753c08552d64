//! What each emulated gateway checks and answers, in its own documented codes and shapes.

// A refusal is the gateway's answer itself (`Err(Response)`), returned at once by a handler:
// its size on a path that ends the request does not matter.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use otp_core::{validate, Date, Gateway};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::app::{random_text, App};
use crate::magic::{Magic, BAD_GATEWAY_HTML};
use crate::state::{Admission, Check, Full};

/// One emulated gateway.
pub(crate) trait Emulated {
    const GATEWAY: Gateway;
    /// The route, as the gateway documents it.
    const PATH: &'static str;
    /// The number the request is for, read leniently (for magic numbers). Routes without
    /// magic numbers (the second step's) keep the default: none.
    fn mobile(_body: &Map<String, Value>) -> Option<String> {
        None
    }
    /// The deterministic answer of a magic number (never [`Magic::Slow`]); only called for a
    /// route whose `mobile` reads one.
    fn magic(_app: &App, _magic: Magic, _mobile: &str) -> Response {
        bad_gateway()
    }
    /// The answer to a body that could not be read at all.
    fn malformed(status: StatusCode, description: &str) -> Response;
    /// Every check the real gateway makes, then the answer.
    /// `body` is the request's JSON object, or `None` when the body was not one.
    fn answer(
        app: &App,
        headers: &HeaderMap,
        query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response;
}

pub(crate) fn reply(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

pub(crate) fn bad_gateway() -> Response {
    (StatusCode::BAD_GATEWAY, [("content-type", "text/html")], BAD_GATEWAY_HTML).into_response()
}

/// A 10-digit Indian number exactly as the wire must carry it.
pub(crate) fn is_wire_mobile(value: &str) -> bool {
    value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()) && matches!(value.as_bytes()[0], b'6'..=b'9')
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn string_field(body: &Map<String, Value>, name: &str) -> Option<String> {
    body.get(name)?.as_str().map(str::to_owned)
}

/// A fresh reference shaped like a UUID, from the OS's generator.
fn reference() -> Option<String> {
    let hex = random_text(30, b"0123456789abcdef")?;
    Some(format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[12..15], &hex[15..18], &hex[18..]))
}

/// The answer when the OS gives no randomness: nothing is issued.
pub(crate) fn unavailable() -> Response {
    reply(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "no randomness available to issue an OTP"}))
}

/// The answer to a send for a new number when every place is held by a live number: HTTP 503
/// with `Retry-After`, `body` in the gateway's shape but with none of its documented codes, so
/// that each client's rule (a documented code decides, else the HTTP status) reads it as
/// provider_unavailable, retryable. Every shape also carries `"error": "sandbox_full"` and the
/// [`full_message`] as `message`, for scripts.
pub(crate) fn full(refused: Full, body: Value) -> Response {
    let headers = [("content-type", "application/json".to_owned()), ("retry-after", retry_after(refused).to_string())];
    (StatusCode::SERVICE_UNAVAILABLE, headers, body.to_string()).into_response()
}

/// Whole seconds until the first place may free, rounded up (at least 1).
fn retry_after(refused: Full) -> u64 {
    (refused.retry_after.as_secs() + u64::from(refused.retry_after.subsec_nanos() > 0)).max(1)
}

/// What a refused send is told: why, and what to do.
pub(crate) fn full_message(refused: Full) -> String {
    format!(
        "the sandbox is full of live numbers: each of the {} numbers it keeps has an unexpired OTP \
         or a send inside the limit window, and a live number is never evicted, so no new number \
         is admitted now (numbers already kept still are); try again in {} s, when the first may \
         free, or restart the sandbox with a larger --max-numbers",
        refused.max_numbers,
        retry_after(refused)
    )
}

/// An object that must be all strings (iServeU, AOPay).
pub(crate) fn string_map(body: Option<&Map<String, Value>>) -> Option<&Map<String, Value>> {
    body.filter(|map| map.values().all(Value::is_string))
}

pub(crate) fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------- PhonePe

pub(crate) struct PhonePe;

impl PhonePe {
    pub(crate) fn failure(status: StatusCode, code: &str, message: &str) -> Response {
        reply(status, json!({"success": false, "code": code, "message": message, "data": {}}))
    }

    fn full(refused: Full) -> Response {
        let message = full_message(refused);
        full(refused, json!({"success": false, "error": "sandbox_full", "message": message, "data": {}}))
    }

    /// The payload of a signed request to `path` (send or verify), once X-VERIFY and the
    /// merchant id check out; PhonePe's own refusal otherwise.
    pub(crate) fn signed_payload(
        app: &App,
        headers: &HeaderMap,
        body: Option<&Map<String, Value>>,
        path: &str,
    ) -> Result<Map<String, Value>, Response> {
        let Some((encoded, payload)) = body.and_then(Self::payload) else {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "request must be base64 of a JSON payload"));
        };
        let config = &app.config;
        let expected = {
            let digest = Sha256::digest(format!("{encoded}{path}{}", config.phonepe_salt_key));
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}###{}", config.phonepe_salt_index)
        };
        if header(headers, "x-verify") != Some(expected.as_str()) {
            return Err(Self::failure(
                StatusCode::UNAUTHORIZED,
                "AUTHORIZATION_FAILED",
                "Value of X-VERIFY is incorrect",
            ));
        }
        if get(&payload, "merchantId") != Some(config.phonepe_merchant_id.as_str()) {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "Invalid merchantId"));
        }
        Ok(payload)
    }

    fn payload(body: &Map<String, Value>) -> Option<(String, Map<String, Value>)> {
        let encoded = string_field(body, "request")?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).ok()?;
        match serde_json::from_slice(&decoded).ok()? {
            Value::Object(payload) => Some((encoded, payload)),
            _ => None,
        }
    }
}

impl Emulated for PhonePe {
    const GATEWAY: Gateway = Gateway::PhonePe;
    const PATH: &'static str = "/v3/merchant/otp/send";

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

    fn malformed(status: StatusCode, description: &str) -> Response {
        Self::failure(status, "BAD_REQUEST", description)
    }

    fn answer(
        app: &App,
        headers: &HeaderMap,
        _query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        let payload = match Self::signed_payload(app, headers, body, Self::PATH) {
            Ok(payload) => payload,
            Err(refused) => return refused,
        };
        let config = &app.config;
        let Some(mobile) = get(&payload, "mobileNumber").filter(|m| is_wire_mobile(m)) else {
            return Self::malformed(StatusCode::BAD_REQUEST, "Invalid mobileNumber");
        };
        if let Some(kind) = payload.get("requestType") {
            if !matches!(kind.as_str(), Some("WALLET" | "CREDIT")) {
                return Self::malformed(StatusCode::BAD_REQUEST, "requestType must be WALLET or CREDIT");
            }
        }
        if header(headers, "x-device-id").is_some_and(|d| d.chars().count() > 64) {
            return Self::malformed(StatusCode::BAD_REQUEST, "X-DEVICE-ID is longer than 64 characters");
        }
        match app.state.admit(Self::GATEWAY, mobile) {
            Admission::Admitted => {}
            Admission::OverLimit => {
                return Self::failure(StatusCode::OK, "OTP_LIMIT_EXCEEDED", "OTP limit exceeded for this mobile number")
            }
            Admission::Full(refused) => return Self::full(refused),
        }
        let (Some(token), Some(otp)) = (reference(), app.issue_otp()) else { return unavailable() };
        let token = format!("OTP{token}");
        let check = Check { device_id: header(headers, "x-device-id").map(str::to_owned), ..Check::default() };
        let recorded =
            app.state.record(Self::GATEWAY, mobile, Some(token.clone()), Some(config.otp_validity), otp, check);
        if let Err(refused) = recorded {
            return Self::full(refused);
        }
        reply(
            StatusCode::OK,
            json!({"success": true, "code": "SUCCESS", "message": "Your request has been successfully completed.",
                   "data": {"merchantId": config.phonepe_merchant_id, "otpToken": token}}),
        )
    }
}

// ---------------------------------------------------------------- Paytm

pub(crate) struct Paytm;

impl Paytm {
    pub(crate) fn failure(status: StatusCode, code: &str, message: &str) -> Response {
        reply(status, json!({"status": "FAILURE", "message": message, "responseCode": code}))
    }

    fn full(refused: Full) -> Response {
        full(refused, json!({"status": "FAILURE", "error": "sandbox_full", "message": full_message(refused)}))
    }

    /// The locale, the Basic credentials and the device id every Paytm call checks.
    pub(crate) fn authorised(app: &App, headers: &HeaderMap, query: &[(String, String)]) -> Result<(), Response> {
        let has_locale = query.iter().any(|(name, value)| name == "locale" && !value.is_empty());
        if !has_locale {
            return Err(Self::malformed(StatusCode::BAD_REQUEST, "locale is mandatory"));
        }
        let config = &app.config;
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", config.paytm_client_id, config.paytm_client_secret));
        if header(headers, "authorization").and_then(|v| v.strip_prefix("Basic ")) != Some(expected.as_str()) {
            return Err(Self::failure(StatusCode::UNAUTHORIZED, "BE1423005", "Invalid Authorization"));
        }
        if header(headers, "x-device-identifier").is_none() {
            return Err(Self::failure(StatusCode::BAD_REQUEST, "BE1423012", "Device identifier is missing"));
        }
        Ok(())
    }
}

impl Emulated for Paytm {
    const GATEWAY: Gateway = Gateway::Paytm;
    const PATH: &'static str = "/v4/signin/otp/sv1/";

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

    fn malformed(status: StatusCode, _description: &str) -> Response {
        Self::failure(status, "434", "Bad request")
    }

    fn answer(
        app: &App,
        headers: &HeaderMap,
        query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        let config = &app.config;
        if let Err(refused) = Self::authorised(app, headers, query) {
            return refused;
        }
        let Some(body) = body else { return Self::malformed(StatusCode::BAD_REQUEST, "") };
        let Some(phone) = body.get("phone").and_then(Value::as_str).filter(|p| is_wire_mobile(p)) else {
            return Self::malformed(StatusCode::BAD_REQUEST, "");
        };
        let scopes_ok = body
            .get("scopes")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty() && s.iter().all(|v| v.as_str().is_some_and(|v| !v.trim().is_empty())));
        if !scopes_ok {
            return Self::malformed(StatusCode::BAD_REQUEST, "");
        }
        match app.state.admit(Self::GATEWAY, phone) {
            Admission::Admitted => {}
            Admission::OverLimit => return Self::magic(app, Magic::OtpLimit, phone),
            Admission::Full(refused) => return Self::full(refused),
        }
        let (Some(token), Some(otp)) = (reference(), app.issue_otp()) else { return unavailable() };
        let check = Check { device_id: header(headers, "x-device-identifier").map(str::to_owned), ..Check::default() };
        let recorded =
            app.state.record(Self::GATEWAY, phone, Some(token.clone()), Some(config.otp_validity), otp, check);
        if let Err(refused) = recorded {
            return Self::full(refused);
        }
        reply(
            StatusCode::OK,
            json!({"status": "SUCCESS", "message": "OTP sent to phone", "responseCode": "BE1400001", "state_token": token}),
        )
    }
}

// ---------------------------------------------------------------- iServeU

pub(crate) struct IServeU;

impl IServeU {
    pub(crate) fn status(status: StatusCode, code: &str, description: &str) -> Response {
        let outcome = if code == "0" { "SUCCESS" } else { "FAILED" };
        reply(
            status,
            json!({"status": outcome, "statusCode": code, "statusDesc": description, "paramA": "", "paramB": "", "paramC": ""}),
        )
    }

    fn full(refused: Full) -> Response {
        let message = full_message(refused);
        full(
            refused,
            json!({"status": "FAILED", "statusDesc": message, "error": "sandbox_full", "message": message,
                   "paramA": "", "paramB": "", "paramC": ""}),
        )
    }

    pub(crate) fn invalid(description: &str) -> Response {
        Self::status(StatusCode::OK, "-1", description)
    }

    /// The `client_id` and `client_secret` headers every iServeU call checks.
    pub(crate) fn authorised(app: &App, headers: &HeaderMap) -> Result<(), Response> {
        let config = &app.config;
        if header(headers, "client_id") != Some(config.iserveu_client_id.as_str())
            || header(headers, "client_secret") != Some(config.iserveu_client_secret.as_str())
        {
            return Err(Self::status(
                StatusCode::UNAUTHORIZED,
                "401",
                "Unauthorized: invalid client_id or client_secret",
            ));
        }
        Ok(())
    }

    fn check(app: &App, fields: &Map<String, Value>) -> Result<(), &'static str> {
        let otp_type = get(fields, "otpType");
        get(fields, "customerMobileNumber").filter(|m| is_wire_mobile(m)).ok_or("customerMobileNumber is invalid")?;
        if get(fields, "username") != Some(app.config.iserveu_username.as_str()) {
            return Err("username is invalid");
        }
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

impl Emulated for IServeU {
    const GATEWAY: Gateway = Gateway::IServeU;
    const PATH: &'static str = "/common/dmt-lite/unified/otp/send";

    fn mobile(body: &Map<String, Value>) -> Option<String> {
        string_field(body, "customerMobileNumber")
    }

    fn magic(_app: &App, magic: Magic, _mobile: &str) -> Response {
        match magic {
            Magic::OtpLimit | Magic::Blocked | Magic::Throttled => {
                Self::status(StatusCode::OK, "1", "Failed to send OTP")
            }
            Magic::ProviderError => {
                (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], "Internal Server Error")
                    .into_response()
            }
            Magic::BadGateway | Magic::Slow => bad_gateway(),
        }
    }

    fn malformed(status: StatusCode, description: &str) -> Response {
        let status = if status == StatusCode::BAD_REQUEST { StatusCode::OK } else { status };
        Self::status(status, "-1", description)
    }

    fn answer(
        app: &App,
        headers: &HeaderMap,
        _query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        let config = &app.config;
        if let Err(refused) = Self::authorised(app, headers) {
            return refused;
        }
        let Some(fields) = string_map(body) else {
            return Self::invalid("request body must be a JSON object of strings");
        };
        if let Err(description) = Self::check(app, fields) {
            return Self::invalid(description);
        }
        let mobile = get(fields, "customerMobileNumber").unwrap_or_default();
        match app.state.admit(Self::GATEWAY, mobile) {
            Admission::Admitted => {}
            Admission::OverLimit => return Self::status(StatusCode::OK, "1", "Failed to send OTP"),
            Admission::Full(refused) => return Self::full(refused),
        }
        let Some(otp) = app.issue_otp() else { return unavailable() };
        let check = Check { registration: get(fields, "otpType") == Some("1"), ..Check::default() };
        let reference = get(fields, "externalRefNumber").map(str::to_owned);
        if let Err(refused) = app.state.record(Self::GATEWAY, mobile, reference, Some(config.otp_validity), otp, check)
        {
            return Self::full(refused);
        }
        Self::status(StatusCode::OK, "0", "OTP Sent Successfully.")
    }
}

// ---------------------------------------------------------------- AOPay

pub(crate) struct AOPay;

impl AOPay {
    /// The body's fields, all strings, once the RegistrationID checks out: what every AOPay
    /// call checks first.
    pub(crate) fn authorised_fields<'a>(
        app: &App,
        body: Option<&'a Map<String, Value>>,
    ) -> Result<&'a Map<String, Value>, Response> {
        let Some(fields) = string_map(body) else {
            return Err(Self::failure(StatusCode::OK, 3, "request body must be a JSON object of strings"));
        };
        if get(fields, "RegistrationID") != Some(app.config.aopay_registration_id.as_str()) {
            return Err(reply(
                StatusCode::UNAUTHORIZED,
                json!({"response_code": 11, "status": false, "message": "Authentication failed"}),
            ));
        }
        Ok(fields)
    }

    pub(crate) fn failure(status: StatusCode, code: i64, message: &str) -> Response {
        reply(status, json!({"status": false, "response_code": code, "message": message}))
    }

    /// `stateresp`: AOPay's references are 9-digit numbers.
    fn state_reference() -> Option<String> {
        Some(format!("{}{}", random_text(1, b"123456789")?, random_text(8, b"0123456789")?))
    }

    fn full(refused: Full) -> Response {
        full(refused, json!({"status": false, "error": "sandbox_full", "message": full_message(refused)}))
    }

    /// Issues an OTP for a send: a registration OTP for code 0, a transaction OTP for code 1.
    /// The refusal is the answer to give: no randomness, or no place for a new number.
    fn issue(app: &App, mobile: &str, registration: bool) -> Result<String, Response> {
        let (Some(state), Some(otp)) = (Self::state_reference(), app.issue_otp()) else { return Err(unavailable()) };
        let check = Check { registration, ..Check::default() };
        let validity = Some(app.config.aopay_otp_validity);
        app.state.record(Self::GATEWAY, mobile, Some(state.clone()), validity, otp, check).map_err(Self::full)?;
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

impl Emulated for AOPay {
    const GATEWAY: Gateway = Gateway::AOPay;
    const PATH: &'static str = "/api/AOP/DMTV1/TransactionSendOtp";

    fn mobile(body: &Map<String, Value>) -> Option<String> {
        string_field(body, "MobileNumber")
    }

    fn magic(app: &App, magic: Magic, mobile: &str) -> Response {
        match magic {
            Magic::OtpLimit => Self::failure(StatusCode::OK, 2, "OTP limit reached for this remitter"),
            Magic::Blocked => Self::failure(StatusCode::OK, 2, "Remitter is blocked"),
            Magic::ProviderError => {
                (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], "Internal Server Error")
                    .into_response()
            }
            Magic::Throttled => {
                // Sent for registration: a real registration OTP went out, for RegisterRemitter.
                let state = match Self::issue(app, mobile, true) {
                    Ok(state) => state,
                    Err(refused) => return refused,
                };
                reply(
                    StatusCode::OK,
                    json!({"status": false, "response_code": 0, "stateresp": state,
                           "message": "Remitter not registered OTP sent for new registration."}),
                )
            }
            Magic::BadGateway | Magic::Slow => bad_gateway(),
        }
    }

    fn malformed(status: StatusCode, description: &str) -> Response {
        let status = if status == StatusCode::BAD_REQUEST { StatusCode::OK } else { status };
        Self::failure(status, 3, description)
    }

    fn answer(
        app: &App,
        _headers: &HeaderMap,
        _query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        let fields = match Self::authorised_fields(app, body) {
            Ok(fields) => fields,
            Err(refused) => return refused,
        };
        if let Err(message) = Self::check(fields) {
            return Self::failure(StatusCode::OK, 3, message);
        }
        let mobile = get(fields, "MobileNumber").unwrap_or_default();
        match app.state.admit(Self::GATEWAY, mobile) {
            Admission::Admitted => {}
            Admission::OverLimit => return Self::failure(StatusCode::OK, 2, "OTP limit reached for this remitter"),
            Admission::Full(refused) => return Self::full(refused),
        }
        let state = match Self::issue(app, mobile, false) {
            Ok(state) => state,
            Err(refused) => return refused,
        };
        let message = "OTP has been send to the remitter mobile number.";
        reply(
            StatusCode::OK,
            json!({"status": true, "response_code": 1, "message": message, "stateresp": state, "Status": "True", "Value": message}),
        )
    }
}
