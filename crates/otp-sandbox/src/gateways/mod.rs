//! The emulated gateways: what one is ([`Profile`]), the one list of them ([`registry!`]), and
//! the routes and handler every one of them is served by. Each gateway's file holds the rest:
//! its routes' paths, its checks and answers for the send and the second step, its magic
//! answers and its default credentials.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use otp_core::Gateway;
use serde_json::{Map, Value};

use crate::answer::Answer;
use crate::app::{App, SandboxConfig};
use crate::magic::{self, Magic};

/// One emulated gateway: everything the shared handler and the send's steps need of it.
pub(crate) trait Profile: 'static {
    /// Which gateway it is (its OTPs and limits are kept under it).
    const GATEWAY: Gateway;
    /// The send's route, as the gateway documents it.
    const SEND: &'static str;
    /// The second step's route (verify, or register with the code).
    const VERIFY: &'static str;

    /// The number a send is for, read leniently (for magic numbers).
    fn mobile(body: &Map<String, Value>) -> Option<String>;

    /// The deterministic answer of a magic number (never [`Magic::Slow`]) to a send; also its
    /// answer over the number's send limit ([`Magic::OtpLimit`]).
    fn magic(app: &App, magic: Magic, mobile: &str) -> Response;

    /// What [`Profile::magic`] answers, in a few words: a column of the inbox page's table of
    /// magic numbers (and of README's, which a test holds to it).
    fn magic_answer(magic: Magic) -> &'static str;

    /// The answer to a body that could not be read, or not as the gateway wants it.
    fn malformed(status: StatusCode, description: &str) -> Response;

    /// The body of the 503 for a sandbox full of live numbers, in the gateway's shape with none
    /// of its codes (see [`crate::answer::full`]).
    fn full(message: &str) -> Value;

    /// How long its OTPs stay valid.
    fn validity(config: &SandboxConfig) -> Duration {
        config.otp_validity
    }

    /// The credentials' checks, first on either route (`path`, the route's): the request's
    /// fields once they pass (PhonePe's: its signed payload), the gateway's refusal otherwise.
    fn authorise<'a>(app: &App, request: &'a Request, path: &str) -> Result<Cow<'a, Map<String, Value>>, Response>;

    /// Every other check the real gateway makes on a send, then the answer.
    fn send(app: &App, request: &Request, fields: &Map<String, Value>) -> Answer;

    /// Every other check of the second step, then the code checked against the OTPs issued.
    fn verify(app: &App, request: &Request, fields: &Map<String, Value>) -> Answer;
}

/// A request to a gateway route, read once by the handler.
pub(crate) struct Request {
    headers: HeaderMap,
    query: Vec<(String, String)>,
    /// The body as a JSON object; `None` when it is not one.
    pub(crate) body: Option<Map<String, Value>>,
}

impl Request {
    /// A header's value, trimmed; `None` when absent, empty or not text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Whether the query carries `name` with a value.
    pub(crate) fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(key, value)| key == name && !value.is_empty())
    }

    /// The body when it is an object of strings only (iServeU, AOPay).
    pub(crate) fn fields(&self) -> Option<&Map<String, Value>> {
        self.body.as_ref().filter(|map| map.values().all(Value::is_string))
    }
}

/// A gateway's credentials: a struct with public fields, a setter per field and a `Debug`
/// that redacts secrets, and its defaults as constants in a `defaults` module (re-exported in
/// [`credentials`](exports::credentials)). Each field is `id` (text, shown), `secret` (text,
/// redacted) or `index` (a number, shown), then `= DEFAULT_NAME: value`.
macro_rules! credentials {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$field_meta:meta])* $kind:ident $field:ident = $constant:ident: $value:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $($(#[$field_meta])* pub $field: credentials!(@type $kind),)+
        }

        /// The sandbox's defaults, re-exported in [`crate::credentials`].
        pub mod defaults {
            $(
                #[doc = concat!("The default `", stringify!($field), "` of [`", stringify!($name), "`](super::", stringify!($name), ").")]
                pub const $constant: credentials!(@constant $kind) = $value;
            )+
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: defaults::$constant.into(),)+ }
            }
        }

        impl $name {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $field(mut self, value: credentials!(@argument $kind)) -> Self {
                    self.$field = value.into();
                    self
                }
            )+
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), credentials!(@show $kind self.$field)))+
                    .finish()
            }
        }
    };
    // Each kind spelled out: a misspelt `secret` is an error, never a field that prints.
    (@type id) => { String };
    (@type secret) => { String };
    (@type index) => { u32 };
    (@constant id) => { &str };
    (@constant secret) => { &str };
    (@constant index) => { u32 };
    (@argument id) => { impl Into<String> };
    (@argument secret) => { impl Into<String> };
    (@argument index) => { u32 };
    (@show id $value:expr) => { &$value };
    (@show secret $value:expr) => { &"[redacted]" };
    (@show index $value:expr) => { &$value };
}

/// The one list of gateways: `module: Profile(Credentials)`, each in `gateways/<module>.rs`.
/// From it follow the modules, their routes, [`Credentials`](exports::Credentials) (a field
/// per gateway, with its defaults) and its builder on [`SandboxConfig`], and the re-exports.
macro_rules! registry {
    ($($module:ident: $profile:ident($credentials:ident),)+) => {
        $(pub(crate) mod $module;)+

        /// What the crate root re-exports.
        pub mod exports {
            $(pub use super::$module::$credentials;)+

            /// The sandbox's default credentials (README's sandbox section); each gateway's file has its own.
            pub mod credentials {
                $(pub use crate::gateways::$module::defaults::*;)+
            }

            /// Every gateway's send and second-step paths, in the registry's order (for tests
            /// that must cover every route: a gateway added here reaches them).
            pub const ROUTES: &[(otp_core::Gateway, &str, &str)] = &[$((
                <super::$module::$profile as super::Profile>::GATEWAY,
                <super::$module::$profile as super::Profile>::SEND,
                <super::$module::$profile as super::Profile>::VERIFY,
            ),)+];

            /// The credentials the sandbox accepts: one set per gateway, each defaulting to its
            /// constants in [`credentials`].
            #[derive(Clone, Debug, Default, PartialEq, Eq)]
            #[non_exhaustive]
            pub struct Credentials {
                $(
                    #[doc = concat!("What the `", stringify!($module), "` routes check.")]
                    pub $module: $credentials,
                )+
            }
        }

        impl SandboxConfig {
            $(
                #[doc = concat!("The credentials the `", stringify!($module), "` routes accept.")]
                pub fn $module(mut self, credentials: $module::$credentials) -> Self {
                    self.credentials.$module = credentials;
                    self
                }
            )+
        }

        /// Every registered gateway, in the registry's order.
        #[cfg(test)]
        const REGISTERED: &[Gateway] = &[$(<$module::$profile as Profile>::GATEWAY,)+];

        /// The magic numbers, what each stands for and what each gateway answers, from
        /// [`magic::NUMBERS`] and each gateway's [`Profile::magic_answer`]: the inbox page's table.
        pub(crate) fn magic_table() -> Value {
            let gateways = [$(<$module::$profile as Profile>::GATEWAY.as_str(),)+];
            let numbers: Vec<Value> = magic::NUMBERS
                .iter()
                .map(|(mobile, magic)| {
                    let answers = [$(<$module::$profile as Profile>::magic_answer(*magic),)+];
                    serde_json::json!({"mobile": mobile, "case": magic.summary(), "answers": answers})
                })
                .collect();
            serde_json::json!({"gateways": gateways, "numbers": numbers})
        }

        /// Every registered gateway's two routes.
        pub(crate) fn routes() -> Router<Arc<App>> {
            let router = Router::new();
            $(let router = mount::<$module::$profile>(router);)+
            router
        }
    };
}

registry! {
    phonepe: PhonePe(PhonePeCredentials),
    paytm: Paytm(PaytmCredentials),
    iserveu: IServeU(IServeUCredentials),
    aopay: AOPay(AOPayCredentials),
}

fn mount<G: Profile>(router: Router<Arc<App>>) -> Router<Arc<App>> {
    use crate::server::method_not_allowed;
    router
        .route(G::SEND, post(handle::<G, true>).fallback(method_not_allowed))
        .route(G::VERIFY, post(handle::<G, false>).fallback(method_not_allowed))
}

/// A step's checks after the credentials', and its answer.
type Step = fn(&App, &Request, &Map<String, Value>) -> Answer;

/// A request to the send (`SEND`) or the second step: for a send, its magic number first
/// (whatever the credentials), then the gateway's checks, credentials first.
async fn handle<G: Profile, const SEND: bool>(
    AxumState(app): AxumState<Arc<App>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match read::<G>(query, headers, body) {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let (path, step): (_, Step) = if SEND { (G::SEND, G::send) } else { (G::VERIFY, G::verify) };
    // Magic numbers are the send's only: the second step checks codes against what was issued.
    let mobile = if SEND { request.body.as_ref().and_then(G::mobile) } else { None };
    match mobile.as_deref().and_then(magic::lookup) {
        // The slow number answers normally once its delay has passed.
        Some(Magic::Slow) => tokio::time::sleep(app.config.slow_answer_delay).await,
        Some(magic) => return G::magic(&app, magic, mobile.as_deref().unwrap_or_default()),
        None => {}
    }
    G::authorise(&app, &request, path)
        .and_then(|fields| step(&app, &request, &fields))
        .unwrap_or_else(|refused| refused)
}

/// The request, once its body was read whole and it says it is JSON; the gateway's
/// [`Profile::malformed`] answer otherwise.
fn read<G: Profile>(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Request, Response> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(G::malformed(rejection.status(), "the request body is over 64 KiB"))
        }
        Err(rejection) => {
            // Say what went wrong (a broken chunked encoding, a connection closed mid-body).
            let description = format!("the request body could not be read: {}", rejection.body_text());
            return Err(G::malformed(rejection.status(), &description));
        }
    };
    let json_content = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_content {
        return Err(G::malformed(StatusCode::BAD_REQUEST, "Content-Type must be application/json"));
    }
    // The body is parsed once, here; a query the URL grammar refuses counts as no query.
    let body = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let query = query.map(|Query(pairs)| pairs).unwrap_or_default();
    Ok(Request { headers, query, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_is_registered_once() {
        let mut registered = REGISTERED.to_vec();
        registered.sort();
        registered.dedup();
        assert_eq!(registered.len(), REGISTERED.len(), "a gateway registered twice: {REGISTERED:?}");
        let mut all = Gateway::ALL.to_vec();
        all.sort();
        assert_eq!(registered, all, "every gateway needs one line in `registry!`");
    }

    #[test]
    fn the_default_credentials_are_the_published_constants_and_secrets_never_print() {
        use crate::credentials as default;
        let credentials = exports::Credentials::default();
        assert_eq!(credentials.phonepe.salt_key, default::PHONEPE_SALT_KEY);
        assert_eq!(credentials.phonepe.salt_index, default::PHONEPE_SALT_INDEX);
        assert_eq!(credentials.paytm.client_secret, default::PAYTM_CLIENT_SECRET);
        assert_eq!(credentials.iserveu.username, default::ISERVEU_USERNAME);
        assert_eq!(credentials.aopay.registration_id, default::AOPAY_REGISTRATION_ID);
        let printed = format!("{:?}", SandboxConfig::default());
        for secret in [default::PHONEPE_SALT_KEY, default::PAYTM_CLIENT_SECRET, default::ISERVEU_CLIENT_SECRET] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains(default::PHONEPE_MERCHANT_ID) && printed.contains("[redacted]"), "{printed}");
    }

    /// The magic table as README and magic.rs's docs write it: a column per gateway, and
    /// `same` where every gateway answers alike.
    fn magic_markdown() -> Vec<String> {
        let table = magic_table();
        let gateways: Vec<&str> =
            table["gateways"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let mut lines =
            vec![format!("| mobile | {} |", gateways.join(" | ")), format!("|---{}|", "|---".repeat(gateways.len()))];
        for row in table["numbers"].as_array().into_iter().flatten() {
            let answers: Vec<&str> =
                row["answers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let alike = answers.iter().all(|answer| *answer == answers[0]);
            let cells: Vec<&str> =
                answers.iter().enumerate().map(|(i, answer)| if alike && i > 0 { "same" } else { answer }).collect();
            lines.push(format!("| {} | {} |", row["mobile"].as_str().unwrap_or_default(), cells.join(" | ")));
        }
        lines
    }

    #[test]
    fn readme_and_the_magic_docs_show_the_table_the_sandbox_serves() {
        let expected = magic_markdown();
        assert_eq!(expected.len(), magic::NUMBERS.len() + 2);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (file, prefix) in [("../../README.md", ""), ("src/magic.rs", "//! ")] {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix(prefix)).collect();
            let start = lines.iter().position(|line| *line == expected[0]);
            let found = start
                .map(|start| lines[start..].iter().take(expected.len()).map(|l| l.to_string()).collect::<Vec<_>>());
            assert_eq!(found.as_ref(), Some(&expected), "{file}'s magic table is not the one the sandbox serves");
        }
    }
}
