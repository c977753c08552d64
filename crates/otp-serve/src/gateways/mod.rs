//! What the service knows of each gateway, one file each beside this one: its start `params`
//! (their schema, and how they become the SDK's request through its checking constructors),
//! and its config table (credentials, by the CLI's variable names).
//!
//! The files are found by `build.rs` — every `src/gateways/<name>.rs` but this one is a
//! gateway's profile, exposing `pub(crate) static PROFILE: Profile` — so that no file here
//! lists the gateways, and a test (`every_gateway_has_one_profile`) fails until a new gateway
//! of `Gateway::ALL` has its file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use otp::verifier::Verification;
use otp::{ClientOptions, Environment, Error, Gateway, GatewayClient, HttpOptions, MobileNumber};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::openapi::schema::{Discriminator, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use zeroize::Zeroizing;

use crate::config::{ConfigError, SecretSource};
use crate::problem::{Code, Problem};

include!(concat!(env!("OUT_DIR"), "/gateway_profiles.rs"));

/// What a start gives a gateway's profile besides its `params`.
pub(crate) struct Common {
    pub(crate) to: MobileNumber,
    pub(crate) customer_name: Option<String>,
}

/// Why a start's `params` were refused.
pub(crate) enum Refusal {
    /// Not the schema's shape (a wrong type, an unknown or missing field): `malformed_request`.
    Malformed(String),
    /// A value the SDK refuses: `invalid_request`, in its words.
    Invalid(Error),
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Invalid(error)
    }
}

/// All the service knows of one gateway.
pub(crate) struct Profile {
    pub(crate) gateway: Gateway,
    /// The gateway's name as schema names take it (`…Params`, `…Start`).
    pub(crate) title: &'static str,
    /// Its verification, from a start's common fields and `params`.
    pub(crate) verification: fn(Common, serde_json::Value) -> Result<Verification, Refusal>,
    /// Its `params` schema and what it refers to.
    pub(crate) schemas: fn(&mut Vec<(String, RefOr<Schema>)>),
}

/// The profile of `gateway`.
pub(crate) fn profile(gateway: Gateway) -> Option<&'static Profile> {
    PROFILES.iter().copied().find(|profile| profile.gateway == gateway)
}

/// The params schema of a profile, pushed under `<title>Params`.
pub(crate) fn schemas_of<T: ToSchema>(title: &str, schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((format!("{title}Params"), T::schema()));
    T::schemas(schemas);
}

/// A profile's `params`, read strictly; the error names the field (`params.device_id: …`).
pub(crate) fn params<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Refusal> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." { "params".to_owned() } else { format!("params.{path}") };
        Refusal::Malformed(format!("{at}: {}", otp::mask_digit_runs(&error.into_inner().to_string())))
    })
}

/// A start's body, as the handler reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    gateway: String,
    to: String,
    client_ip: String,
    caller_key: Option<String>,
    customer_name: Option<String>,
    params: Option<serde_json::Value>,
}

/// A start, read and checked.
pub(crate) struct Start {
    pub(crate) gateway: Gateway,
    pub(crate) client_ip: IpAddr,
    pub(crate) caller_key: Option<String>,
    pub(crate) mobile: MobileNumber,
    pub(crate) verification: Verification,
}

/// Reads a start's body: `malformed_request` unless it is the schema's shape (an enabled
/// gateway among them), `invalid_request` for a value the SDK refuses.
pub(crate) fn read_start(body: &[u8], enabled: &[Gateway]) -> Result<Start, Problem> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let start: StartBody = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let message = otp::mask_digit_runs(&error.into_inner().to_string()).into_owned();
        Problem::malformed(if path == "." { message } else { format!("{path}: {message}") })
    })?;
    reader.end().map_err(|_| Problem::malformed("the body must be one JSON object"))?;
    let gateway =
        Gateway::ALL.into_iter().find(|g| g.as_str() == start.gateway && enabled.contains(g)).ok_or_else(|| {
            let names: Vec<&str> = enabled.iter().map(|g| g.as_str()).collect();
            Problem::malformed(format!(
                "gateway: not a gateway this service sends through: expected one of {}",
                names.join(", ")
            ))
        })?;
    let profile = profile(gateway).ok_or_else(|| Problem::malformed("gateway: not served"))?;
    let invalid = |error: Error| Problem::from_error(&error.with_gateway(gateway));
    let mobile = MobileNumber::parse(&start.to).map_err(|e| invalid(Error::from(e)))?;
    let client_ip: IpAddr = start.client_ip.trim().parse().map_err(|_| {
        invalid(Error::invalid_input(
            "client_ip must be an IPv4 or IPv6 address: the end user's, as the calling backend saw it",
        ))
    })?;
    let common = Common { to: mobile, customer_name: start.customer_name };
    let params = start.params.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    let verification = (profile.verification)(common, params).map_err(|refusal| match refusal {
        Refusal::Malformed(detail) => Problem::malformed(detail),
        Refusal::Invalid(error) => invalid(error),
    })?;
    // What the verifier would refuse before its guard, refused here in the same words.
    <GatewayClient as otp::verifier::SessionGateway>::validate(&verification).map_err(invalid)?;
    Ok(Start { gateway, client_ip, caller_key: start.caller_key, mobile, verification })
}

/// The start body's schema: one per gateway, a `oneOf` with `gateway` as discriminator.
pub struct StartRequest;

impl PartialSchema for StartRequest {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        let mut discriminator = Discriminator::new("gateway");
        for profile in sorted_profiles() {
            let name = format!("{}Start", profile.title);
            one_of = one_of.item(Ref::from_schema_name(&name));
            discriminator.mapping.insert(profile.gateway.as_str().to_owned(), format!("#/components/schemas/{name}"));
        }
        one_of.discriminator(Some(discriminator)).into()
    }
}

impl ToSchema for StartRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("StartRequest")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for profile in sorted_profiles() {
            (profile.schemas)(schemas);
            schemas.push((format!("{}Start", profile.title), start_schema(profile)));
        }
    }
}

/// The profiles in `Gateway::ALL`'s order.
fn sorted_profiles() -> Vec<&'static Profile> {
    Gateway::ALL.into_iter().filter_map(profile).collect()
}

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

/// A string that may also be `null`, which a start reads as absent.
fn nullable_text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])).description(Some(description))
}

/// Whether a gateway's `params` have a required field: then `params` itself is required, as
/// an absent or `null` one is read as `{}`, which lacks it (`malformed_request`).
fn params_required(profile: &Profile) -> bool {
    let mut schemas = Vec::new();
    (profile.schemas)(&mut schemas);
    let params = format!("{}Params", profile.title);
    schemas.iter().any(|(name, schema)| {
        *name == params && matches!(schema, RefOr::T(Schema::Object(object)) if !object.required.is_empty())
    })
}

fn start_schema(profile: &Profile) -> RefOr<Schema> {
    let gateway = profile.gateway.as_str();
    let params = Ref::from_schema_name(format!("{}Params", profile.title));
    let (params, params_required): (RefOr<Schema>, bool) = if params_required(profile) {
        (params.into(), true)
    } else {
        (OneOfBuilder::new().item(ObjectBuilder::new().schema_type(Type::Null)).item(params).into(), false)
    };
    let schema = ObjectBuilder::new()
        .title(Some(format!("{} start", profile.title)))
        .property("gateway", text("The gateway that sends.").enum_values(Some([gateway])))
        .required("gateway")
        .property("to", text("The mobile number, in any spelling the SDK accepts (`9876543210`, `+91 98765 43210`, `09876543210`)."))
        .required("to")
        .property(
            "client_ip",
            text("The end user's IP address as the calling backend saw it (the guard's per-IP limit counts it; the service never uses its own peer address).")
                .examples(["203.0.113.7"]),
        )
        .required("client_ip")
        .property("caller_key", nullable_text("Also counted by the guard: an account or device id (1 to 256 bytes).").max_length(Some(256)))
        .property("customer_name", nullable_text("The customer's name, which an iServeU registration is completed with."))
        .property("params", params)
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    if params_required { schema.required("params") } else { schema }.into()
}

/// The generic keys of a `[gateways.<name>]` table (a profile adds its credentials).
const TABLE_KEYS: [&str; 5] = ["environment", "base_url", "timeout_s", "connect_timeout_s", "max_concurrent_requests"];

/// A gateway's client from its `[gateways.<name>]` table.
pub(crate) fn client_from_config(
    name: &str,
    table: &toml::Table,
    secrets: &SecretSource,
) -> Result<GatewayClient, ConfigError> {
    let at = |key: &str| format!("gateways.{name}.{key}");
    let gateway = Gateway::ALL.into_iter().find(|g| g.as_str() == name).and_then(profile).ok_or_else(|| {
        let names: Vec<&str> = sorted_profiles().iter().map(|p| p.gateway.as_str()).collect();
        ConfigError::new(format!("gateways.{name}"), format!("unknown gateway: expected one of {}", names.join(", ")))
    })?;
    // The gateway's settings and their variables are its profile's (the CLI reads the same).
    let settings = GatewayClient::settings(gateway.gateway)
        .ok_or_else(|| ConfigError::new(format!("gateways.{name}"), "this gateway is not built into this binary"))?;
    for key in table.keys() {
        let known = TABLE_KEYS.contains(&key.as_str())
            || settings.iter().any(|c| c.name == key || format!("{}_file", c.name) == *key);
        if !known {
            let mut keys: Vec<String> = TABLE_KEYS.iter().map(|k| (*k).to_owned()).collect();
            keys.extend(settings.iter().flat_map(|c| [c.name.to_owned(), format!("{}_file", c.name)]));
            return Err(ConfigError::new(at(key), format!("unknown key: expected one of {}", keys.join(", "))));
        }
    }
    let string = |key: &str| -> Result<Option<&str>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(ConfigError::new(at(key), "must be a string")),
        }
    };
    let seconds = |key: &str| -> Result<Option<Duration>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n > 0 => Ok(Some(Duration::from_secs(n.unsigned_abs()))),
            Some(_) => Err(ConfigError::new(at(key), "must be a positive number of seconds")),
        }
    };
    let environment = match (string("environment")?, string("base_url")?) {
        (Some(_), Some(_)) => return Err(ConfigError::new(at("base_url"), "give environment or base_url, not both")),
        (Some(environment), None) => environment.parse::<Environment>().map_err(|_| {
            ConfigError::new(at("environment"), "expected \"uat\" or \"production\" (or give base_url)")
        })?,
        (None, Some(url)) => Environment::Custom(url.to_owned()),
        (None, None) => {
            return Err(ConfigError::new(
                at("environment"),
                "give environment = \"uat\" or \"production\", or base_url",
            ))
        }
    };
    let mut http = HttpOptions::default();
    if let Some(timeout) = seconds("timeout_s")? {
        http = http.timeout(timeout);
    }
    if let Some(timeout) = seconds("connect_timeout_s")? {
        http = http.connect_timeout(timeout);
    }
    match table.get("max_concurrent_requests") {
        None => {}
        Some(toml::Value::Integer(n)) if *n > 0 => {
            http = http.max_concurrent_requests(usize::try_from(*n).unwrap_or(usize::MAX));
        }
        Some(_) => return Err(ConfigError::new(at("max_concurrent_requests"), "must be a positive number")),
    }
    let mut resolved: BTreeMap<&'static str, Zeroizing<String>> = BTreeMap::new();
    for setting in settings {
        let (key, env) = (setting.name, setting.env_var(gateway.gateway));
        let file_key = format!("{key}_file");
        let inline = match table.get(key) {
            None => None,
            Some(toml::Value::String(text)) => Some(Zeroizing::new(text.clone())),
            Some(toml::Value::Integer(n)) => Some(Zeroizing::new(n.to_string())),
            Some(_) => return Err(ConfigError::new(at(key), "must be a string")),
        };
        let value = match (inline, string(&file_key)?) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(at(&file_key), format!("give {key} or {file_key}, not both")))
            }
            (Some(value), None) => value,
            (None, Some(path)) => secrets.file(&at(&file_key), path)?,
            (None, None) => match secrets.var(&env) {
                Some(value) => value,
                // An optional setting (iServeU's username, which requests may carry) may be absent.
                None if !setting.required => continue,
                None => {
                    return Err(ConfigError::new(
                        at(key),
                        format!("missing: set {env} (or give {key} or {file_key} here)"),
                    ))
                }
            },
        };
        if value.trim().is_empty() {
            return Err(ConfigError::new(at(key), "must not be blank"));
        }
        resolved.insert(key, value);
    }
    let options = ClientOptions::new().environment(environment).http(http);
    let mut setting = |name: &'static str| resolved.get(name).map(|value| value.trim().to_owned());
    GatewayClient::from_settings(gateway.gateway, &mut setting, options)
        .map_err(|e| ConfigError::new(format!("gateways.{name}"), otp::mask_digit_runs(e.description()).into_owned()))
}

/// The problem codes a start through any gateway can answer with (for the OpenAPI document).
pub(crate) const START_CODES: &[Code] = &[
    Code::MalformedRequest,
    Code::InvalidRequest,
    Code::Unauthenticated,
    Code::Forbidden,
    Code::IdempotencyKeyReused,
    Code::IdempotencyInProgress,
    Code::RateLimited,
    Code::Blocked,
    Code::Rejected,
    Code::GatewayAuthentication,
    Code::ProviderUnavailable,
    Code::Transport,
    Code::UnexpectedResponse,
    Code::Timeout,
    Code::StoreUnavailable,
    Code::Overloaded,
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_gateway_has_one_profile() {
        for gateway in Gateway::ALL {
            let found = PROFILES.iter().filter(|p| p.gateway == gateway).count();
            assert_eq!(found, 1, "{gateway}: add src/gateways/{gateway}.rs with its PROFILE");
        }
        assert_eq!(PROFILES.len(), Gateway::ALL.len());
        let titles: std::collections::BTreeSet<&str> = PROFILES.iter().map(|p| p.title).collect();
        assert_eq!(titles.len(), PROFILES.len(), "schema names are each gateway's own");
    }

    #[test]
    fn a_start_is_read_strictly() {
        let all = Gateway::ALL;
        let refused = |body: &str| read_start(body.as_bytes(), &all).err().map(|p| p.code);
        assert_eq!(refused("not json"), Some(Code::MalformedRequest));
        assert_eq!(refused("{} {}"), Some(Code::MalformedRequest));
        assert_eq!(
            refused(r#"{"gateway": "nowhere", "to": "9876543210", "client_ip": "203.0.113.7"}"#),
            Some(Code::MalformedRequest)
        );
        let gateway = all[0].as_str();
        let body = |to: &str, ip: &str, extra: &str| {
            format!(r#"{{"gateway": "{gateway}", "to": {to}, "client_ip": {ip}{extra}}}"#)
        };
        assert_eq!(
            refused(&body("9876543210", "\"203.0.113.7\"", "")),
            Some(Code::MalformedRequest),
            "a number is a string"
        );
        assert_eq!(refused(&body("\"98765\"", "\"203.0.113.7\"", "")), Some(Code::InvalidRequest));
        assert_eq!(refused(&body("\"9876543210\"", "\"not an ip\"", "")), Some(Code::InvalidRequest));
        assert_eq!(
            refused(&body("\"9876543210\"", "\"203.0.113.7\"", r#", "colour": 1"#)),
            Some(Code::MalformedRequest)
        );
        assert_eq!(
            refused(&body("\"9876543210\"", "\"203.0.113.7\"", r#", "params": 7"#)),
            Some(Code::MalformedRequest)
        );
        let problem = read_start(body("9876543210", "\"203.0.113.7\"", "").as_bytes(), &all).err().unwrap();
        assert!(!problem.body(String::new()).detail.contains("9876543210"), "digit runs are masked");
        let only_one = [all[1]];
        assert_eq!(
            read_start(body("\"9876543210\"", "\"203.0.113.7\"", "").as_bytes(), &only_one).err().map(|p| p.code),
            Some(Code::MalformedRequest),
            "a gateway this service does not enable"
        );
    }

    #[test]
    fn the_start_schema_is_one_of_per_gateway_with_gateway_as_discriminator() {
        let json = serde_json::to_value(StartRequest::schema()).unwrap();
        assert_eq!(json["discriminator"]["propertyName"], "gateway");
        assert_eq!(json["oneOf"].as_array().unwrap().len(), Gateway::ALL.len());
        let mut schemas = Vec::new();
        StartRequest::schemas(&mut schemas);
        for gateway in Gateway::ALL {
            let title = profile(gateway).unwrap().title;
            let start = schemas.iter().find(|(name, _)| *name == format!("{title}Start")).unwrap();
            let start = serde_json::to_value(&start.1).unwrap();
            assert_eq!(start["properties"]["gateway"]["enum"][0], gateway.as_str());
            assert!(schemas.iter().any(|(name, _)| *name == format!("{title}Params")), "{gateway}");
        }
    }
}
