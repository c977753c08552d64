//! # otp-sandbox
//!
//! A local, stateful emulator of the four send-OTP APIs otp-rs speaks — PhonePe, Paytm,
//! iServeU and AOPay — on one loopback port, in the spirit of stripe-mock but stricter: it
//! checks what the real gateway checks (PhonePe's X-VERIFY, Paytm's Basic credentials,
//! iServeU's headers and field rules, AOPay's RegistrationID and fields) and answers with the
//! gateway's own documented codes and body shapes. It never sends an SMS: every OTP "sent" is
//! recorded in an inbox, readable from the library and at `GET /__sandbox/otps?mobile=…`, and
//! shown live in a browser at `GET /__sandbox/` ([`Sandbox::inbox_url`]; docs/sandbox.md).
//!
//! State: per gateway and number, the 6th send within 10 minutes is refused with the gateway's
//! limit code; AOPay OTPs expire after 90 seconds. Magic numbers (`9000000001` … `9000000006`)
//! give deterministic error answers whatever the credentials; see [`magic`]. At most
//! [`SandboxConfig::max_numbers`] numbers are kept, and one with an unexpired OTP or a send
//! inside the limit window is never evicted: when all are, a send to a new number is refused
//! with HTTP 503 (each client's `provider_unavailable`, retryable).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use otp_sandbox::{Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let base_url = sandbox.base_url(); // e.g. http://127.0.0.1:41234 — point a client at it
//! assert!(base_url.starts_with("http://127.0.0.1:"));
//! assert!(sandbox.otps("9876543210").is_empty());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
// A refusal is the gateway's answer itself (`Err(Response)`), returned at once by a handler:
// its size on a path that ends the request does not matter.
#![allow(clippy::result_large_err)]

mod answer;
mod app;
mod gateways;
mod inbox;
pub mod magic;
mod server;
mod state;

pub use app::SandboxConfig;
// Each gateway's credentials struct, `Credentials` (one of each) and `credentials` (the
// defaults), from the one list of gateways.
pub use gateways::exports::*;
#[doc(hidden)]
#[cfg(feature = "test-util")]
pub use server::status_for_fuzzing;
pub use server::Sandbox;
pub use state::{OtpStatus, SentOtp, DEFAULT_MAX_NUMBERS};
