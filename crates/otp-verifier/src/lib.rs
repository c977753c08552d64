//! # otp-verifier
//!
//! Verification sessions over the gateways of otp-rs, and a send guard that holds across every
//! instance of an application (docs/verifier.md, docs/security.md): an application *starts* a
//! verification for a number, later *checks* the code the customer typed, may *resend*, and
//! never stores a gateway token, counts wrong tries or enforces cooldowns itself.
//!
//! Applications use it through `otp` (features `verifier`, and `redis` for the Redis store),
//! whose `GatewayClient` is a [`SessionGateway`]:
//!
//! ```
//! use otp_core::{Error, OtpCode};
//! use otp_verifier::{Check, Context, MemoryStore, SessionGateway, VerificationId, Verifier};
//!
//! // Built once at start-up; clones share the store (or use a RedisStore shared by every process).
//! fn verifier<G: SessionGateway>(client: G) -> Verifier<G> {
//!     Verifier::new(client, MemoryStore::new())
//! }
//!
//! // POST /otp/start: the id goes to the app, and comes back with the code.
//! async fn start<G: SessionGateway>(verifier: &Verifier<G>, request: G::Request, ip: std::net::IpAddr) -> Result<String, Error> {
//!     let started = verifier.start(request, &Context::new(ip)).await?; // rate_limited: nothing sent
//!     Ok(started.id.as_str().to_owned())
//! }
//!
//! // POST /otp/check
//! async fn check<G: SessionGateway>(verifier: &Verifier<G>, id: &str, code: &str) -> Result<&'static str, Error> {
//!     let id = VerificationId::parse(id)?;
//!     Ok(match verifier.check(&id, OtpCode::parse(code)?).await? {
//!         // Trust the number the session verified, not one the app sends alongside the id.
//!         Check::Verified { mobile: _, credential: _ } => "continue (the credential is a secret)",
//!         Check::WrongOtp { tries_left: 0 } | Check::Expired => "send a new code",
//!         Check::WrongOtp { .. } => "check the code and try again",
//!         _ => "send a new code",
//!     })
//! }
//! ```
//!
//! ## The guard: sliding logs, exact in every window
//!
//! Each counted subject (a number, a client address, a caller key) keeps the times of its
//! admitted sends within its longest window: at most the limit of entries (10 for a number by
//! default), so memory per subject is small and fixed. A send is admitted when, for every rule,
//! fewer than the limit fall in the window ending now; then it is written to every log in the
//! same atomic step. This is exact for *any* window, which the spec asks for: a fixed window
//! lets twice the limit through around its boundary, and GCRA (a token bucket) admits a burst
//! and then one send per interval, so more than the limit can fall in one window. The cost of
//! exactness is a few timestamps per subject, which the limits keep small. A refusal says which
//! rule refused and when every rule admits again (`retry_after`, from the send that must leave
//! the window first). A send that fails before anything left the process gives its place back.
//!
//! Wrong tries are counted the same way: a check reserves a try *before* it asks the gateway,
//! atomically, so concurrent checks of one session never take more than the limit.
//!
//! ## Stores
//!
//! - [`MemoryStore`]: one process, bounded, the default.
//! - `RedisStore` (feature `redis`): every decision one Lua script with the server's clock,
//!   a TTL on every key, keys that are keyed hashes, values sealed with XChaCha20-Poly1305.
//!
//! ## Events
//!
//! [`Verifier::with_events`] reports every state change to an [`EventSink`] in this process
//! (a [`ChannelSink`], or any function). A store made with `RedisStore::with_event_stream`
//! (feature `redis`) also records each one in its Redis Stream — on one server in the same
//! script as the change — which webhook delivery reads with a consumer group.
//! [`Verifier::sweep_expired`], run every few seconds by
//! each instance, reports the sessions that ran out their lifetime, each exactly once
//! (docs/verifier.md).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod events;
mod id;
mod memory;
#[cfg(feature = "redis")]
mod redis_events;
#[cfg(feature = "redis")]
mod redis_store;
mod rules;
mod store;
#[cfg(feature = "test-util")]
pub mod test_util;
mod verifier;

pub use events::{ChannelSink, Event, EventKind, EventSink};
pub use id::VerificationId;
pub use memory::{MemoryStore, DEFAULT_MAX_GUARD_KEYS, DEFAULT_MAX_SESSIONS};
#[cfg(feature = "redis")]
pub use redis_events::{PendingEvent, StreamedEvent};
#[cfg(feature = "redis")]
pub use redis_store::{RedisStore, StoreKey};
pub use rules::{Context, GuardRule, GuardRules, Limit};
pub use store::{State, Store};
pub use verifier::{
    Check, Sent, SessionGateway, Started, Status, Verifier, DEFAULT_RETENTION, IDEMPOTENCY_KEY_LIFETIME,
};
