//! The OpenAPI 3.1 document, derived from the handlers and their types, with every route's
//! problem codes (from [`ROUTE_PROBLEMS`], the one list) grouped by HTTP status and listed in
//! `x-problem-codes`. Committed as `docs/openapi.json`; a test keeps the two equal.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref};
use utoipa::{Modify, OpenApi};

use crate::audit::{EventBody, EventPage};
use crate::body::{CheckRequest, Health, ResendRequest, StatusName, VerificationBody};
use crate::gateways::{StartRequest, START_CODES};
use crate::problem::{Code, MayHaveSent, ProblemBody, ProviderBody};

/// Every route's problem codes: what the document lists and the route walk of the tests must
/// produce.
pub(crate) const ROUTE_PROBLEMS: &[(&str, &str, &[Code])] = &[
    ("/v1/verifications", "post", START_CODES),
    (
        "/v1/verifications/{id}",
        "get",
        &[Code::Unauthenticated, Code::Forbidden, Code::NotFound, Code::StoreUnavailable],
    ),
    (
        "/v1/verifications/{id}/check",
        "post",
        &[
            Code::MalformedRequest,
            Code::InvalidRequest,
            Code::Unauthenticated,
            Code::Forbidden,
            Code::NotFound,
            Code::WrongOtp,
            Code::OtpExpired,
            Code::MaxAttemptsReached,
            Code::Canceled,
            Code::AlreadyApproved,
            Code::RateLimited,
            Code::Blocked,
            Code::Rejected,
            Code::GatewayAuthentication,
            Code::ProviderUnavailable,
            Code::Transport,
            Code::UnexpectedResponse,
            Code::Timeout,
            Code::StoreUnavailable,
        ],
    ),
    (
        "/v1/verifications/{id}/resend",
        "post",
        &[
            Code::MalformedRequest,
            Code::InvalidRequest,
            Code::Unauthenticated,
            Code::Forbidden,
            Code::NotFound,
            Code::OtpExpired,
            Code::MaxAttemptsReached,
            Code::Canceled,
            Code::AlreadyApproved,
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
        ],
    ),
    (
        "/v1/verifications/{id}/cancel",
        "post",
        // It reads no body, but its bounds hold on every request: a body over 16 KiB is refused.
        &[
            Code::MalformedRequest,
            Code::Unauthenticated,
            Code::Forbidden,
            Code::NotFound,
            Code::AlreadyApproved,
            Code::StoreUnavailable,
        ],
    ),
    (
        "/v1/events",
        "get",
        &[Code::MalformedRequest, Code::InvalidRequest, Code::Unauthenticated, Code::Forbidden, Code::StoreUnavailable],
    ),
    ("/readyz", "get", &[Code::StoreUnavailable]),
    ("/metrics", "get", &[Code::NotFound]),
];

/// What a code means on `path`, for the document's response descriptions.
fn meaning(path: &str, code: Code) -> &'static str {
    match (path, code) {
        ("/metrics", Code::NotFound) => {
            "metrics are not served here: they have their own address (`metrics_listen`), or the application installed its own recorder"
        }
        _ => general_meaning(code),
    }
}

/// What a code means on any route.
fn general_meaning(code: Code) -> &'static str {
    match code {
        Code::MalformedRequest => {
            "not JSON, a wrong type, an unknown field, parameter or gateway, or a body over 16 KiB"
        }
        Code::InvalidRequest => {
            "a value refused (the number, a device id, an amount, the idempotency key, a page's limit or cursor …), in its words"
        }
        Code::Unauthenticated => "no API key, or an unknown one (with `WWW-Authenticate: Bearer`)",
        Code::Forbidden => "the key lacks this route's scope",
        Code::NotFound => "no such verification for this tenant: unknown, another tenant's, or past its retention",
        Code::WrongOtp => "the code did not match; `tries_left` more will be checked",
        Code::OtpExpired => "the code expired: start a new verification",
        Code::MaxAttemptsReached => "every try was used: start a new verification",
        Code::Canceled => "the verification was cancelled",
        Code::AlreadyApproved => "the verification was approved already (its credential is never handed out twice)",
        Code::IdempotencyKeyReused => "the `Idempotency-Key` was used with another request",
        Code::IdempotencyInProgress => "the first call with this `Idempotency-Key` is still running (`Retry-After`)",
        Code::RateLimited => "the send guard (`rule`) or the gateway's own limit (`provider`) refused (`Retry-After`)",
        Code::Blocked => "the gateway refused this number",
        Code::Rejected => "the gateway declined the request",
        Code::GatewayAuthentication => "the gateway refused the service's own credentials",
        Code::ProviderUnavailable => "the gateway failed",
        Code::Transport => {
            "the connection to the gateway failed or broke (`may_have_sent` says whether an OTP may have gone out)"
        }
        Code::UnexpectedResponse => "the gateway's answer could not be understood",
        Code::Timeout => "no complete answer from the gateway in time (`may_have_sent`)",
        Code::StoreUnavailable => "the session store cannot be reached (`Retry-After`)",
        Code::Overloaded => {
            "this replica has as many sends in flight as it takes: nothing was counted or sent (`Retry-After`)"
        }
        Code::MethodNotAllowed => "the route does not answer this method",
        Code::Internal => "a fault of the service itself",
    }
}

/// The document's problem responses and security scheme.
struct Problems;

impl Modify for Problems {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key of the config's [[api_keys]]."))
                    .build(),
            ),
        );
        for (path, method, codes) in ROUTE_PROBLEMS {
            let Some(item) = document.paths.paths.get_mut(*path) else { continue };
            let operation = match *method {
                "get" => item.get.as_mut(),
                _ => item.post.as_mut(),
            };
            let Some(operation) = operation else { continue };
            let mut by_status: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
            for code in codes.iter() {
                by_status.entry(code.status()).or_default().push(*code);
            }
            for (status, codes) in by_status {
                let description: Vec<String> =
                    codes.iter().map(|c| format!("`{}`: {}", c.as_str(), meaning(path, *c))).collect();
                let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
                let mut response = ResponseBuilder::new()
                    .description(description.join("; "))
                    .content("application/problem+json", content);
                if status == 429 || status == 503 || codes.contains(&Code::IdempotencyInProgress) {
                    let seconds = ObjectBuilder::new().schema_type(Type::Integer);
                    let header = HeaderBuilder::new()
                        .schema(seconds)
                        .description(Some("Seconds to wait before trying again."))
                        .build();
                    response = response.header("Retry-After", header);
                }
                if status == 401 {
                    let header = HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .description(Some("`Bearer realm=\"otp\"`"))
                        .build();
                    response = response.header("WWW-Authenticate", header);
                }
                operation.responses.responses.insert(status.to_string(), response.build().into());
            }
            let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
            let extensions = ExtensionsBuilder::new().add("x-problem-codes", serde_json::json!(names)).build();
            match &mut operation.extensions {
                Some(existing) => existing.merge(extensions),
                None => operation.extensions = Some(extensions),
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "otp serve",
        description = "Verification sessions over the Indian payment gateways' OTP APIs: start, status, check, resend, cancel. Every refusal is application/problem+json (RFC 9457) with a stable `code`; each operation lists its codes in `x-problem-codes`."
    ),
    paths(
        crate::routes::start,
        crate::routes::status,
        crate::routes::check,
        crate::routes::resend,
        crate::routes::cancel,
        crate::audit::events,
        crate::routes::livez,
        crate::routes::readyz,
        crate::routes::metrics,
        crate::routes::openapi,
    ),
    components(schemas(StartRequest, VerificationBody, StatusName, CheckRequest, ResendRequest, Health, ProblemBody, ProviderBody, MayHaveSent, EventPage, EventBody)),
    modifiers(&Problems),
    tags((name = "verifications", description = "A verification's whole life."), (name = "events", description = "The audit trail of a tenant's verifications, and webhooks' dead letters."), (name = "operations", description = "Health, metrics and this document."))
)]
struct ApiDoc;

/// The OpenAPI 3.1 document, as `/openapi.json` serves it (and `docs/openapi.json` holds it).
pub fn document() -> String {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            text.push('\n');
            text
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_route_lists_its_problem_codes_by_status() {
        let document: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for (path, method, codes) in ROUTE_PROBLEMS {
            let operation = &document["paths"][path][method];
            let listed: Vec<&str> =
                operation["x-problem-codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            assert_eq!(listed, codes.iter().map(|c| c.as_str()).collect::<Vec<_>>(), "{method} {path}");
            for code in codes.iter() {
                let response = &operation["responses"][code.status().to_string()];
                assert!(
                    response["description"].as_str().unwrap().contains(code.as_str()),
                    "{method} {path} {}",
                    code.as_str()
                );
            }
        }
        let start = &document["paths"]["/v1/verifications"]["post"];
        assert_eq!(start["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"], "integer");
        assert_eq!(
            start["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/StartRequest"
        );
        assert!(document["components"]["schemas"]["Problem"]["properties"]["may_have_sent"].is_object());
    }
}
