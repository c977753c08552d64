//! AOPay: DMTV1 "Transaction Send OTP". An answer "sent for registration" is checked by
//! RegisterRemitter; a transaction OTP is consumed by AOPay's transfer, so its check is
//! `invalid_request`.

use otp::aopay;
use otp::verifier::Verification;
use otp::{Amount, Coordinates, Pincode};
use otp::Gateway;
use serde::Deserialize;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::{params, schemas_of, Common, Profile, Refusal};

pub(crate) static PROFILE: Profile = Profile {
    gateway: Gateway::AOPay,
    title: "AOPay",
    verification,
    schemas,
};

/// AOPay's own fields of a start: every one but `kyc_id` required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `BeneID`: letters and digits, at most 32.
    bene_id: String,
    /// `Txntype`: `imps` or `neft`.
    txn_type: String,
    /// `Amount`, as text (`"100"`, `"99.50"`).
    amount: String,
    /// `Pincode`: 6 digits.
    pincode: String,
    /// `Address`: at most 200 characters.
    address: String,
    /// `DOB`: `DD/MM/YYYY`.
    dob: String,
    /// `Latitude`, decimal.
    latitude: String,
    /// `Longitute` (sic), decimal.
    longitude: String,
    /// `KycId` for RegisterRemitter, when the remitter has one.
    kyc_id: Option<String>,
}

fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas_of::<Params>(PROFILE.title, schemas);
}

fn verification(common: Common, value: serde_json::Value) -> Result<Verification, Refusal> {
    let given: Params = params(value)?;
    let remitter = aopay::Remitter::new(
        given.address,
        Pincode::parse(&given.pincode)?,
        aopay::DateOfBirth::parse(&given.dob)?,
        Coordinates::new(&given.latitude, &given.longitude)?,
    )?;
    let amount = Amount::parse(&given.amount)?;
    let request = aopay::SendOtpRequest::new(common.to, given.bene_id, given.txn_type.parse()?, amount, remitter)?;
    let mut verification = Verification::new(request);
    if let Some(kyc_id) = given.kyc_id {
        verification = verification.kyc_id(kyc_id);
    }
    Ok(match common.customer_name {
        Some(name) => verification.customer_name(name),
        None => verification,
    })
}

