//! The second step (sandbox.md, verify.md): each gateway's verify or registration call, with
//! the same credential checks as its send, checking the code against the OTP the sandbox
//! issued. Magic numbers do not apply here: these routes keep `Emulated`'s default `mobile`
//! (none), so no number is looked up.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use otp_core::Gateway;
use serde_json::{json, Map, Value};

use crate::app::{random_text, App};
use crate::gateways::{
    get, header, is_wire_mobile, reply, string_map, unavailable, AOPay, Emulated, IServeU, Paytm, PhonePe,
};
use crate::state::{Find, Verdict};

/// A fresh credential for a verified code (PhonePe's userAuthToken, Paytm's access token).
fn credential() -> Option<String> {
    random_text(32, b"0123456789abcdef")
}

pub(crate) struct PhonePeVerify;

impl Emulated for PhonePeVerify {
    const GATEWAY: Gateway = Gateway::PhonePe;
    const PATH: &'static str = "/v3/merchant/otp/verify";

    fn malformed(status: StatusCode, description: &str) -> Response {
        PhonePe::malformed(status, description)
    }

    fn answer(
        app: &App,
        headers: &HeaderMap,
        _query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        let payload = match PhonePe::signed_payload(app, headers, body, Self::PATH) {
            Ok(payload) => payload,
            Err(refused) => return refused,
        };
        let (Some(token), Some(code)) = (get(&payload, "otpToken"), get(&payload, "otp")) else {
            return Self::malformed(StatusCode::BAD_REQUEST, "otpToken and otp are mandatory");
        };
        let failure = |code: &str, message: &str| PhonePe::failure(StatusCode::OK, code, message);
        match app.state.verify(Self::GATEWAY, Find::LatestReference(token), code, None) {
            Verdict::Verified => {
                let Some(user_auth_token) = credential() else { return unavailable() };
                reply(
                    StatusCode::OK,
                    json!({"success": true, "code": "SUCCESS", "message": "Your request has been successfully completed.",
                           "data": {"merchantId": app.config.phonepe_merchant_id, "userAuthToken": user_auth_token}}),
                )
            }
            Verdict::Wrong => failure("OTP_VERIFY_FAILED", "OTP verification failed"),
            Verdict::Spent => failure("OTP_ALREADY_VERIFIED", "OTP already verified or too many attempts"),
            Verdict::Expired => failure("OTP_EXPIRED", "OTP expired"),
            Verdict::Unknown | Verdict::DeviceMismatch => failure("INVALID_OTP_TOKEN", "Invalid OTP token"),
        }
    }
}

pub(crate) struct PaytmVerify;

impl Emulated for PaytmVerify {
    const GATEWAY: Gateway = Gateway::Paytm;
    const PATH: &'static str = "/v4/signin/validate/otp/sv1";

    fn malformed(status: StatusCode, description: &str) -> Response {
        Paytm::malformed(status, description)
    }

    fn answer(
        app: &App,
        headers: &HeaderMap,
        query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        if let Err(refused) = Paytm::authorised(app, headers, query) {
            return refused;
        }
        let Some(body) = body else { return Self::malformed(StatusCode::BAD_REQUEST, "") };
        let (Some(state_token), Some(code)) = (get(body, "state_token"), get(body, "otp")) else {
            return Self::malformed(StatusCode::BAD_REQUEST, "");
        };
        let device = header(headers, "x-device-identifier");
        let failure = |code: &str, message: &str| Paytm::failure(StatusCode::OK, code, message);
        match app.state.verify(Self::GATEWAY, Find::LatestReference(state_token), code, device) {
            Verdict::Verified => {
                let (Some(access), Some(refresh)) = (credential(), credential()) else { return unavailable() };
                reply(
                    StatusCode::OK,
                    json!({"status": "SUCCESS", "message": "Success", "responseCode": "BE1400001",
                           "tokens": {"access_token": access, "refresh_token": refresh, "expires": "3600", "scope": "paytm"},
                           "encryptedUserId": "sandbox-user"}),
                )
            }
            Verdict::Wrong => failure("403", "Invalid OTP entered"),
            Verdict::DeviceMismatch => {
                Paytm::failure(StatusCode::BAD_REQUEST, "BE1423013", "Device identifier does not match the send's")
            }
            Verdict::Spent | Verdict::Expired | Verdict::Unknown => failure("1006", "Your session has expired"),
        }
    }
}

pub(crate) struct IServeURegistration;

impl Emulated for IServeURegistration {
    const GATEWAY: Gateway = Gateway::IServeU;
    const PATH: &'static str = "/common/dmt-lite/unified/customer/process-customer-registration";

    fn malformed(status: StatusCode, description: &str) -> Response {
        IServeU::malformed(status, description)
    }

    fn answer(
        app: &App,
        headers: &HeaderMap,
        _query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        if let Err(refused) = IServeU::authorised(app, headers) {
            return refused;
        }
        let Some(fields) = string_map(body) else {
            return IServeU::invalid("request body must be a JSON object of strings");
        };
        let Some(mobile) = get(fields, "mobileNumber").filter(|m| is_wire_mobile(m)) else {
            return IServeU::invalid("mobileNumber is invalid");
        };
        if get(fields, "name").is_none() {
            return IServeU::invalid("name is mandatory");
        }
        if get(fields, "username") != Some(app.config.iserveu_username.as_str()) {
            return IServeU::invalid("username is invalid");
        }
        let code = get(fields, "otp").unwrap_or_default();
        match app.state.verify(Self::GATEWAY, Find::RegistrationFor(mobile), code, None) {
            Verdict::Verified => IServeU::status(StatusCode::OK, "0", "Customer Registered Successfully."),
            Verdict::Expired => IServeU::invalid("OTP expired"),
            Verdict::Wrong | Verdict::Spent | Verdict::Unknown | Verdict::DeviceMismatch => {
                IServeU::invalid("Invalid OTP")
            }
        }
    }
}

pub(crate) struct AOPayRegistration;

impl Emulated for AOPayRegistration {
    const GATEWAY: Gateway = Gateway::AOPay;
    const PATH: &'static str = "/api/AOP/DMTV1/RegisterRemitter";

    fn malformed(status: StatusCode, description: &str) -> Response {
        AOPay::malformed(status, description)
    }

    fn answer(
        app: &App,
        _headers: &HeaderMap,
        _query: &[(String, String)],
        body: Option<&Map<String, Value>>,
    ) -> Response {
        let fields = match AOPay::authorised_fields(app, body) {
            Ok(fields) => fields,
            Err(refused) => return refused,
        };
        let (Some(mobile), Some(state), Some(code)) =
            (get(fields, "MobileNumber").filter(|m| is_wire_mobile(m)), get(fields, "Stateresp"), get(fields, "OTP"))
        else {
            return AOPay::failure(StatusCode::OK, 3, "MobileNumber, OTP and Stateresp are mandatory");
        };
        match app.state.verify(Self::GATEWAY, Find::RegistrationReference { reference: state, mobile }, code, None) {
            Verdict::Verified => reply(
                StatusCode::OK,
                json!({"status": true, "response_code": 1, "message": "Remitter registered successfully.",
                       "data": {"fname": "Sandbox", "lname": "Remitter", "mobile": mobile, "status": "Active",
                                "limit": "25000", "remaining_limit": "25000"}}),
            ),
            Verdict::Expired => AOPay::failure(StatusCode::OK, 2, "OTP expired"),
            _ => AOPay::failure(StatusCode::OK, 2, "Invalid OTP"),
        }
    }
}
