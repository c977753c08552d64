//! iServeU: the DMT-lite unified send OTP, a registration OTP (checked by completing the
//! customer's registration, with `customer_name`) or a transaction OTP (consumed by the money
//! transfer, so its check is `invalid_request`).

use otp::verifier::Verification;
use otp::{iserveu, Amount, Coordinates, IdentityNumber};
use otp::{Error, Gateway};
use serde::Deserialize;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::{params, schemas_of, Common, Profile, Refusal};

pub(crate) static PROFILE: Profile = Profile {
    gateway: Gateway::IServeU,
    title: "IServeU",
    verification,
    schemas,
};

/// iServeU's own fields of a start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `otpType`: a registration OTP (1) or a transaction OTP (2).
    #[schema(inline)]
    otp_type: OtpType,
    /// `ovdType`: the identity document's type (such as `AADHAAR`).
    ovd_type: String,
    /// `ovdData`: the document's number (required for a registration).
    ovd_data: Option<String>,
    /// `externalRefNumber`: 6 to 22 letters, digits, `-` and `_` (required for a transaction).
    external_ref: Option<String>,
    /// `requestedAmount`, as text (`"100"`, `"99.50"`; a transaction's only).
    amount: Option<String>,
    /// `latLong`'s latitude (with `longitude`).
    latitude: Option<String>,
    /// `latLong`'s longitude (with `latitude`).
    longitude: Option<String>,
    /// `publicIP`: the customer's address (IPv4 or IPv6).
    public_ip: Option<String>,
    /// `username`, for this request instead of the configured one.
    username: Option<String>,
    /// `paramA`, echoed back (at most 256 characters).
    param_a: Option<String>,
    /// `paramB`, echoed back.
    param_b: Option<String>,
    /// `paramC`, echoed back.
    param_c: Option<String>,
}

/// iServeU's `otpType`.
#[derive(Deserialize, ToSchema, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OtpType {
    /// A customer registration's OTP (1).
    Registration,
    /// A money transfer's OTP (2).
    Transaction,
}

fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas_of::<Params>(PROFILE.title, schemas);
}

/// The fields both kinds of request take, applied to either (each is its own type).
macro_rules! with_common {
    ($request:expr, $coordinates:expr, $public_ip:expr, $given:expr) => {{
        let mut request = $request;
        if let Some(coordinates) = $coordinates {
            request = request.coordinates(coordinates);
        }
        if let Some(ip) = $public_ip {
            request = request.public_ip(ip);
        }
        if let Some(username) = $given.username {
            request = request.username(username);
        }
        request.params($given.param_a, $given.param_b, $given.param_c)
    }};
}

fn verification(common: Common, value: serde_json::Value) -> Result<Verification, Refusal> {
    let given: Params = params(value)?;
    let coordinates = match (&given.latitude, &given.longitude) {
        (Some(latitude), Some(longitude)) => Some(Coordinates::new(latitude, longitude)?),
        (None, None) => None,
        _ => return Err(Error::invalid_input("latitude and longitude come together").into()),
    };
    let public_ip = match &given.public_ip {
        Some(ip) => Some(
            ip.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| Error::invalid_input("public_ip must be an IPv4 or IPv6 address"))?,
        ),
        None => None,
    };
    let ovd_data = given.ovd_data.as_deref().map(IdentityNumber::new);
    let request: iserveu::SendOtpRequest = match given.otp_type {
        OtpType::Registration => {
            if given.amount.is_some() {
                return Err(Error::invalid_input("amount applies to transaction OTPs only").into());
            }
            let ovd_data =
                ovd_data.ok_or_else(|| Error::invalid_input("ovd_data is required for a registration OTP"))?;
            let request = iserveu::RegistrationOtpRequest::new(common.to, &given.ovd_type, ovd_data);
            let request = match &given.external_ref {
                Some(reference) => request.external_ref(reference),
                None => request,
            };
            with_common!(request, coordinates, public_ip, given).into()
        }
        OtpType::Transaction => {
            let reference = given
                .external_ref
                .clone()
                .ok_or_else(|| Error::invalid_input("external_ref is required for a transaction OTP"))?;
            let amount = given
                .amount
                .as_deref()
                .ok_or_else(|| Error::invalid_input("amount is required for a transaction OTP"))?;
            let request =
                iserveu::TransactionOtpRequest::new(common.to, &given.ovd_type, reference, Amount::parse(amount)?);
            let request = match ovd_data {
                Some(ovd) => request.ovd_data(ovd),
                None => request,
            };
            with_common!(request, coordinates, public_ip, given).into()
        }
    };
    let verification = Verification::new(request);
    Ok(match common.customer_name {
        Some(name) => verification.customer_name(name),
        None => verification,
    })
}

