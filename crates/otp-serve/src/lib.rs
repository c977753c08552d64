//! # otp-serve
//!
//! `otp serve`: the verification sessions of `otp::verifier` — the send guard, start, status,
//! check, resend, cancel, idempotency keys, test numbers — as a small JSON service for
//! backends in any language. Run several replicas on one Redis (or Redis Cluster) and any of
//! them answers for any verification; or one process on the memory store. docs/serve.md is
//! the runbook; `/openapi.json` (and docs/openapi.json) the API.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use otp_serve::{ServeConfig, Server};
//!
//! // `otp serve --sandbox --addr 127.0.0.1:0`: the embedded sandbox is every gateway, the
//! // store is in memory, and one development key is made.
//! let config = ServeConfig::sandbox()?.listen("127.0.0.1:0".parse()?);
//! let server = Server::start(config).await?;
//! let banner = server.banner(); // what the CLI prints, a line each
//! assert!(banner[0].starts_with("listening: http://127.0.0.1:"));
//! assert!(banner[1].starts_with("api_key: otp_sk_"));
//! assert!(banner[2].starts_with("sandbox: http://127.0.0.1:"));
//! assert!(banner[3].starts_with("inbox: http://127.0.0.1:") && banner[3].ends_with("/__sandbox/"));
//! server.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(())
//! # }
//! ```
//!
//! The CLI's subcommand is one call of [`run`] each:
//!
//! ```no_run
//! # async fn cli(path: &str, addr: Option<std::net::SocketAddr>) -> Result<(), otp_serve::ServeError> {
//! use otp_serve::{run, shutdown_signal, ServeConfig};
//! // otp serve --config otp-serve.toml [--addr HOST:PORT]
//! let config = ServeConfig::from_file(path)?;
//! let config = match addr { Some(addr) => config.listen(addr), None => config };
//! run(config, |line| println!("{line}"), shutdown_signal()).await?;
//! // otp serve --sandbox
//! run(ServeConfig::sandbox()?, |line| println!("{line}"), shutdown_signal()).await
//! # }
//! ```
//!
//! ## Verification ids and tenants
//!
//! Every API key belongs to a tenant, and a verification to the tenant whose key started it.
//! Its public id is `<verifier id>.<gateway>.<tag>`, the tag being 96 bits of HMAC-SHA-256,
//! under a key derived from the store key, of the tenant, the gateway and the verifier's id:
//! an id is read only when its tag is the caller's tenant's, so another tenant's id answers
//! 404 exactly as an unknown one, before the store is asked. Idempotency keys are scoped to
//! the tenant the same way (the verifier sees a keyed hash of tenant and key).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod app;
mod audit;
mod auth;
mod body;
mod config;
mod gateways;
mod ids;
mod logging;
mod observe;
mod openapi;
mod problem;
mod routes;
mod server;
mod tls;
mod webhooks;

pub use audit::{EventBody, EventPage, EventsQuery};
pub use auth::{ApiKey, NewApiKey, Scope};
pub use body::{CheckRequest, ResendRequest, StatusName, VerificationBody};
pub use config::{
    ConfigError, SecretSource, ServeConfig, StoreKind, StoreSecret, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_STORE_KEY_ENV, MAX_BODY_BYTES,
};
pub use gateways::StartRequest;
pub use logging::{init_logging, subscriber, LogFormat, DEFAULT_FILTER};
pub use openapi::document as openapi_document;
pub use problem::{Code, MayHaveSent, ProblemBody, ProviderBody};
pub use server::{metrics_handle, run, shutdown_signal, ServeError, Server, DRAIN};
pub use tls::TlsIdentity;
pub use webhooks::{RetrySchedule, WebhookEndpoint, WebhookSecret, DEFAULT_MAX_IN_FLIGHT, DEFAULT_WEBHOOK_TIMEOUT};
