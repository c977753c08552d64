//! Paytm: "Send OTP", Basic-authenticated, checked by "Validate OTP" with the same device id.

use otp::paytm;
use otp::verifier::Verification;
use otp::Gateway;
use serde::Deserialize;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::{params, schemas_of, Common, Profile, Refusal};

pub(crate) static PROFILE: Profile = Profile {
    gateway: Gateway::Paytm,
    title: "Paytm",
    verification,
    schemas,
};

/// Paytm's own fields of a start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `x-device-identifier`: an Android id, iOS vendor id or web cookie id (at most 128
    /// characters); the check repeats it.
    device_id: String,
    /// The scopes to ask for (at least one: `paytm`, `wallet`, … as Paytm shared them).
    scopes: Vec<String>,
    /// The app's SMS auto-read hash (`autoReadHash`).
    auto_read_hash: Option<String>,
    /// The `locale` query parameter (default `en-IN`); the check repeats it.
    locale: Option<String>,
}

fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas_of::<Params>(PROFILE.title, schemas);
}

fn verification(common: Common, value: serde_json::Value) -> Result<Verification, Refusal> {
    let given: Params = params(value)?;
    let mut request = paytm::SendOtpRequest::new(common.to, given.device_id);
    for scope in given.scopes {
        request = request.scope(scope);
    }
    if let Some(hash) = given.auto_read_hash {
        request = request.auto_read_hash(hash);
    }
    if let Some(locale) = given.locale {
        request = request.locale(locale);
    }
    request.validate()?;
    let verification = Verification::new(request);
    Ok(match common.customer_name {
        Some(name) => verification.customer_name(name),
        None => verification,
    })
}

