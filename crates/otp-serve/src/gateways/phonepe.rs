//! PhonePe: "Trigger OTP" (wallet linking), X-VERIFY signed, checked by "Verify OTP and link".

use otp::phonepe;
use otp::verifier::Verification;
use otp::Gateway;
use serde::Deserialize;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::{params, schemas_of, Common, Profile, Refusal};

pub(crate) static PROFILE: Profile = Profile {
    gateway: Gateway::PhonePe,
    title: "PhonePe",
    verification,
    schemas,
};

/// PhonePe's own fields of a start, every one optional.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The customer's email (`email`).
    email: Option<String>,
    /// The customer's name (`shortName`, at most 100 characters).
    short_name: Option<String>,
    /// `requestType`: the linking the OTP is for (`WALLET` or `CREDIT` on the wire).
    #[schema(inline)]
    request_type: Option<RequestType>,
    /// Sent as `X-DEVICE-ID` (at most 64 characters); the check repeats it.
    device_id: Option<String>,
}

/// PhonePe's `requestType`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum RequestType {
    /// Direct debit.
    Wallet,
    /// M2C, instant payout.
    Credit,
}

fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas_of::<Params>(PROFILE.title, schemas);
}

fn verification(common: Common, value: serde_json::Value) -> Result<Verification, Refusal> {
    let given: Params = params(value)?;
    let mut request = phonepe::SendOtpRequest::new(common.to);
    if let Some(email) = given.email {
        request = request.email(email);
    }
    if let Some(name) = given.short_name {
        request = request.short_name(name);
    }
    if let Some(kind) = given.request_type {
        request = request.request_type(match kind {
            RequestType::Wallet => phonepe::RequestType::Wallet,
            RequestType::Credit => phonepe::RequestType::Credit,
        });
    }
    if let Some(device_id) = given.device_id {
        request = request.device_id(device_id);
    }
    request.validate()?;
    let verification = Verification::new(request);
    Ok(match common.customer_name {
        Some(name) => verification.customer_name(name),
        None => verification,
    })
}

