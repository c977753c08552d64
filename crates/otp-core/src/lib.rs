//! # otp-core
//!
//! The foundation of otp-rs, the Rust SDK for sending one-time passwords through Indian payment
//! gateways (PhonePe, Paytm, iServeU, AOPay). Gateway crates build on it; applications usually
//! depend on the `otp` umbrella crate instead.
//!
//! - [`MobileNumber`]: an Indian mobile number, valid by construction, masked when printed.
//! - [`SecretString`] and [`IdentityNumber`]: values that print `[redacted]` or masked.
//! - [`SendReceipt`] and [`Error`]: the unified result of a send, with a stable [`ErrorKind`],
//!   the provider's code, message and HTTP status kept, and [`Error::is_retryable`].
//! - [`Transport`]: the one HTTP path — deadlines, a response size cap, no redirects, https
//!   only (loopback excepted), SMS-safe retries, tracing with masked numbers.
//! - [`CodeTable`]: a gateway's documented codes, generated from its `spec/codes.toml`;
//!   [`CodeText`] reads a code sent as a string or a number.
//! - [`operation`]: the seam a gateway implements per call ([`operation::Operation`]) and the
//!   one path that runs it ([`operation::execute`]).
//! - [`profile`]: the seam a gateway implements once ([`profile::GatewayProfile`]): what it
//!   is beside its calls (its requests, settings, OTP validity, how its verify follows from
//!   its send, its resend rule), from which the `otp` umbrella generates its dispatch.
//!
//! ```
//! use otp_core::{ErrorKind, MobileNumber, SecretString};
//!
//! let mobile: MobileNumber = "+91 98765-43210".parse()?;
//! assert_eq!(mobile.expose_digits(), "9876543210");
//! assert_eq!(mobile.to_string(), "XXXXXX3210");
//!
//! let salt_key = SecretString::new("099eb0cd-02cf-4e2a-8aca-3e6c6aff0399");
//! assert_eq!(format!("{salt_key:?}"), "[redacted]");
//!
//! let refused = MobileNumber::parse("12345").map_err(otp_core::Error::from).unwrap_err();
//! assert_eq!(refused.kind(), ErrorKind::InvalidRequest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
// A wildcard arm over `Gateway` (or any of our enums) would let a new variant through
// unnoticed: every match names its variants.
#![warn(clippy::wildcard_enum_match_arm)]

mod client;
mod codes;
mod config;
mod date;
mod endpoint;
mod error;
mod gateway;
pub mod http;
mod mobile;
pub mod operation;
pub mod profile;
mod receipt;
mod retry;
mod secret;
#[cfg(feature = "serde")]
mod serde_impls;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod validate;
mod values;

pub use client::ClientOptions;
pub use codes::{status_fallback, CodeEntry, CodeResult, CodeTable, CodeText, ProviderAnswer, ReferenceRule};
pub use config::RequiredSettings;
pub use date::{rfc3339_utc, Date};
pub use endpoint::{BaseUrl, Environment, KnownHosts, UnknownEnvironment};
pub use error::{Error, ErrorKind, ProviderResponse, Reached};
pub use gateway::{Gateway, UnknownGateway};
#[cfg(any(feature = "rustls", feature = "native-tls"))]
pub use http::RootCertificate;
pub use http::{HttpOptions, RawResponse, Transport, WireRequest};
pub use mobile::{mask_digit_runs, MobileNumber, MobileNumberError};
pub use receipt::{Outcome, SendReceipt, VerifyReceipt};
pub use retry::RetryPolicy;
pub use secret::{mask_identity_number, ClientSecret, IdentityNumber, OtpCode, SaltKey, SecretString, SecretText};
pub use values::{Amount, Coordinates, Pincode};

/// Re-exported so that callers can inject a client without naming reqwest's version.
pub use reqwest;
/// The wiped-on-drop buffer of request and answer bodies ([`WireRequest`], [`RawResponse`]),
/// re-exported so that gateway crates name it without naming zeroize's version.
pub use zeroize::Zeroizing;
