//! # otp-phonepe
//!
//! Send OTPs through PhonePe's wallet-linking **"Trigger OTP"** API
//! (`POST /v3/merchant/otp/send`), signed with `X-VERIFY`, on otp-core's HTTP path.
//!
//! The payload (`merchantId`, `mobileNumber` and the optional fields given) is sent as
//! `{"request": "<base64 of the JSON>"}` with
//! `X-VERIFY: sha256hex(base64 + "/v3/merchant/otp/send" + salt key) + "###" + salt index`.
//! The `otpToken` PhonePe returns is the receipt's reference: a secret that PhonePe requires
//! to stay on your server.
//!
//! ```no_run
//! use otp_phonepe::{PhonePeClient, RequestType, SendOtpRequest};
//! use otp_core::{Environment, MobileNumber};
//!
//! # async fn run() -> Result<(), otp_core::Error> {
//! let client = PhonePeClient::builder()
//!     .merchant_id("MERCHANTUAT")
//!     .salt_key(std::env::var("PHONEPE_SALT_KEY").unwrap_or_default())
//!     .salt_index(1)
//!     .environment(Environment::Uat)
//!     .build()?;
//! let request = SendOtpRequest::new(MobileNumber::parse("+91 98765 43210")?)
//!     .short_name("Nishant")
//!     .request_type(RequestType::Wallet);
//! match client.send_otp(&request).await {
//!     Ok(receipt) => {
//!         let otp_token = receipt.reference.expect("PhonePe always returns an otpToken");
//!         // Keep otp_token server-side for the verify call.
//! #       let _ = otp_token;
//!     }
//!     Err(error) if error.is_retryable() => { /* try again later */ }
//!     Err(error) => return Err(error),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Response codes
//!
//! A documented code decides the result whatever the HTTP status; anything else falls back
//! to the HTTP status (see otp-core). Generated from `spec/codes.toml`:
//!
#![doc = include_str!("generated/codes.md")]
//!
//! ## Verify codes
//!
//! The second step's codes (docs/gateways/verify.md), from `spec/verify_codes.toml`:
//!
#![doc = include_str!("generated/verify_codes.md")]
#![forbid(unsafe_code)]
#![warn(clippy::wildcard_enum_match_arm)] // A new variant must be handled where it is matched.

mod client;
mod generated;
mod profile;
mod request;

pub use client::{x_verify, PhonePeClient, PhonePeClientBuilder, API_PATH, HOSTS, VERIFY_API_PATH};
pub use generated::codes::{CODES, EXAMPLES};
pub use generated::verify_codes::{VERIFY_CODES, VERIFY_EXAMPLES};
pub use request::{RequestType, SendOtpRequest, VerifyOtpRequest, MAX_DEVICE_ID_CHARS};
