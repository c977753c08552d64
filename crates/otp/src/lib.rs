//! # otp
//!
//! One dependency for applications that send one-time passwords through the Indian payment
//! gateways they already have contracts with: mobile numbers, secrets, the unified result and
//! error model, HTTP options, and, behind one feature each, the gateway crates; a consumer that
//! enables one gateway compiles no other. (What a gateway crate needs to implement its calls
//! lives in `otp-core`, not here.)
//!
//! | feature | gives | crate |
//! |---|---|---|
//! | `phonepe` | [`phonepe`]: PhonePe "Trigger OTP", X-VERIFY signed | `otp-phonepe` |
//! | `paytm` | [`paytm`]: Paytm "Send OTP" (`/v4/signin/otp/sv1/`) | `otp-paytm` |
//! | `iserveu` | [`iserveu`]: iServeU DMT-lite unified send OTP | `otp-iserveu` |
//! | `aopay` | [`aopay`]: AOPay DMTV1 "Transaction Send OTP" | `otp-aopay` |
//! | `full` | all four | |
//! | `verifier` | [`verifier`]: verification sessions and the send guard over [`GatewayClient`], in memory | `otp-verifier` |
//! | `redis` | `verifier` with its Redis store, for many instances | `otp-verifier`, `redis` |
//! | `serde` | `Serialize`/`Deserialize` of [`SendOtpRequest`] (in clear: for sealed storage; read back only through its checks) | |
//! | `sandbox` | [`sandbox`]: the offline emulator and clients pointed at it | `otp-sandbox` |
//! | `rustls` (default) / `native-tls` | the TLS backend of the one reqwest stack | |
//!
//! Applications that pick the gateway from configuration at run time hold a [`GatewayClient`]
//! and build a [`SendOtpRequest`] of the same gateway; [`GatewayClient::send_otp`] returns the
//! unified [`SendReceipt`] or [`Error`] whatever the gateway. The second step follows from
//! the send: [`SendOtpRequest::verify_request`] builds the gateway's [`VerifyRequest`] from the
//! receipt, the customer's code and [`VerifyExtras`], for [`GatewayClient::verify_otp`] (the
//! verifier does this for you). What each gateway is (its settings, OTP validity, second step,
//! resend rule) is its crate's `GatewayProfile`; everything here dispatches through it.
//!
//! ```
//! # #[cfg(feature = "paytm")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = otp_sandbox::Sandbox::start(Default::default()).await?;
//! # let base_url = sandbox.base_url();
//! use otp::{paytm, Environment, ErrorKind, GatewayClient, MobileNumber, SendOtpRequest};
//!
//! // Built once at start-up from configuration, then shared: clients are cheap to clone.
//! let client: GatewayClient = paytm::PaytmClient::builder()
//!     .client_id("sandbox-client")
//!     .client_secret("sandbox-secret")
//!     .environment(Environment::Custom(base_url)) // or Environment::Production
//!     .build()?
//!     .into();
//!
//! let mobile: MobileNumber = "+91 98765 43210".parse()?;
//! let request = SendOtpRequest::from(paytm::SendOtpRequest::new(mobile, "device-0042").scope("paytm"));
//! match client.send_otp(&request).await {
//!     Ok(receipt) => println!("sent: {:?}, keep {:?} for the verify step", receipt.outcome, receipt.reference),
//!     Err(error) if error.kind() == ErrorKind::RateLimited => println!("ask the customer to wait"),
//!     Err(error) => return Err(error.into()),
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "paytm"))]
//! # fn main() {}
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
// A wildcard arm over `Gateway` would give a new gateway some other gateway's behaviour
// silently: every match names every gateway.
#![warn(clippy::wildcard_enum_match_arm)]

// The application's surface, and nothing of the implementers' (the operation seam, the
// transport, code tables, validation helpers): those live in otp-core for gateway crates.
pub use otp_core::profile::{Setting, VerifyExtras};
#[cfg(any(feature = "rustls", feature = "native-tls"))]
pub use otp_core::RootCertificate;
pub use otp_core::{
    mask_digit_runs, Amount, ClientOptions, ClientSecret, Coordinates, Environment, Error, ErrorKind, Gateway,
    HttpOptions, IdentityNumber, MobileNumber, MobileNumberError, OtpCode, Outcome, Pincode, ProviderResponse, Reached,
    RetryPolicy, SaltKey, SecretString, SendReceipt, UnknownEnvironment, UnknownGateway, VerifyReceipt,
};

use std::time::Duration;

#[allow(unused_imports)] // With no gateway enabled, the generated code names no profile.
use otp_core::profile::GatewayProfile;

/// The one list of gateways: each line is a cargo feature and the module that re-exports the
/// gateway crate under it, the variant of [`GatewayClient`], [`SendOtpRequest`] and
/// [`VerifyRequest`], and the gateway crate's client with its send and verify request types.
/// The client's [`GatewayProfile`](otp_core::profile::GatewayProfile) says the rest (its
/// settings, its OTP validity, how its verify follows from its send, its resend rule), and the
/// compiler checks that the two request types are the profile's.
/// Everything in this crate that dispatches on the gateway is generated from it: the enums,
/// their methods, the verifier's `SessionGateway` (through those methods) and the sandbox's
/// clients (through [`GatewayClient::from_settings`]). A `Gateway` without a line here is a
/// compile error ([`GatewayClient::from_settings`] matches every `Gateway`).
macro_rules! gateways {
    ($($feature:literal as $module:ident => $variant:ident($krate:ident::{$client:ident, $request:ident, $verify:ident}),)*) => {
        $(
            #[cfg(feature = $feature)]
            pub use $krate as $module;
        )*

        /// A client of whichever gateway configuration chose. Cheap to clone; clones share one pool.
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum GatewayClient {
            $(
                #[doc = concat!("A ", stringify!($variant), " client (`", stringify!($krate), "::", stringify!($client), "`).")]
                #[cfg(feature = $feature)]
                $variant($krate::$client),
            )*
        }

        /// A send-OTP request for one gateway: each gateway asks for different fields.
        #[derive(Debug, Clone)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[non_exhaustive]
        pub enum SendOtpRequest {
            $(
                #[doc = concat!("A ", stringify!($variant), " request (`", stringify!($krate), "::", stringify!($request), "`).")]
                #[cfg(feature = $feature)]
                $variant($krate::$request),
            )*
        }

        /// A verify request for one gateway: the second step of each (docs/gateways/verify.md).
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum VerifyRequest {
            $(
                #[doc = concat!("A ", stringify!($variant), " verify request (`", stringify!($krate), "::", stringify!($verify), "`).")]
                #[cfg(feature = $feature)]
                $variant($krate::$verify),
            )*
        }

        impl GatewayClient {
            /// The gateway this client sends through.
            pub fn gateway(&self) -> Gateway {
                match *self {
                    $(#[cfg(feature = $feature)] GatewayClient::$variant(_) => Gateway::$variant,)*
                }
            }

            /// How long this gateway's OTP stays valid ([`Gateway::otp_validity`]): the
            /// verifier's default session lifetime.
            pub fn otp_validity(&self) -> Duration {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        GatewayClient::$variant(_) => <$krate::$client as GatewayProfile>::OTP_VALIDITY,
                    )*
                }
            }

            /// A client of `gateway` built from named settings: `settings(name)` is asked for
            /// each of [`GatewayClient::settings`]' names (`None` when absent: the error then
            /// names every missing required one). A gateway whose feature is off is a
            /// configuration error. This is how `otp::sandbox::client` builds its clients, and
            /// how a CLI builds one from `OTP_<GATEWAY>_<NAME>` variables ([`Setting::env_var`]).
            #[allow(unused_variables)] // With a gateway's feature off, its arm reads no settings.
            pub fn from_settings(
                gateway: Gateway,
                settings: &mut dyn FnMut(&'static str) -> Option<String>,
                options: ClientOptions,
            ) -> Result<Self, Error> {
                match gateway {
                    $(
                        #[cfg(feature = $feature)]
                        Gateway::$variant => {
                            <$krate::$client as GatewayProfile>::from_settings(settings, options).map(GatewayClient::$variant)
                        }
                        #[cfg(not(feature = $feature))]
                        Gateway::$variant => Err(Error::configuration(concat!(
                            "the ", $feature, " feature of otp is not enabled"
                        ))
                        .with_gateway(gateway)),
                    )*
                }
            }

            /// The settings a client of `gateway` is built from (its builder's, in order), or
            /// `None` when the gateway's feature is off.
            pub fn settings(gateway: Gateway) -> Option<&'static [Setting]> {
                match gateway {
                    $(
                        #[cfg(feature = $feature)]
                        Gateway::$variant => Some(<$krate::$client as GatewayProfile>::SETTINGS),
                        #[cfg(not(feature = $feature))]
                        Gateway::$variant => None,
                    )*
                }
            }

            /// Sends one OTP. A request for another gateway than the client's is refused as
            /// `invalid_request` before anything is sent.
            pub async fn send_otp(&self, request: &SendOtpRequest) -> Result<SendReceipt, Error> {
                #[allow(unreachable_patterns)] // With one gateway enabled, the mismatch arm cannot match.
                match (self, request) {
                    $(
                        #[cfg(feature = $feature)]
                        (GatewayClient::$variant(client), SendOtpRequest::$variant(request)) => {
                            otp_core::operation::execute(client, request).await
                        }
                    )*
                    (client, request) => Err(Error::invalid_input(format!(
                        "a {} request cannot be sent through a {} client",
                        request.gateway(),
                        client.gateway()
                    ))
                    .with_gateway(client.gateway())),
                }
            }

            /// Verifies a code (PhonePe verify, Paytm validate, iServeU registration, AOPay
            /// RegisterRemitter). Never retried automatically. A request for another gateway
            /// than the client's is refused as `invalid_request` before anything is sent.
            pub async fn verify_otp(&self, request: &VerifyRequest) -> Result<VerifyReceipt, Error> {
                #[allow(unreachable_patterns)] // With one gateway enabled, the mismatch arm cannot match.
                match (self, request) {
                    $(
                        #[cfg(feature = $feature)]
                        (GatewayClient::$variant(client), VerifyRequest::$variant(request)) => {
                            otp_core::operation::execute(client, request).await
                        }
                    )*
                    (client, request) => Err(Error::invalid_input(format!(
                        "a {} verify request cannot be sent through a {} client",
                        request.gateway(),
                        client.gateway()
                    ))
                    .with_gateway(client.gateway())),
                }
            }
        }

        impl VerifyRequest {
            /// The gateway this request is for.
            pub fn gateway(&self) -> Gateway {
                match *self {
                    $(#[cfg(feature = $feature)] VerifyRequest::$variant(_) => Gateway::$variant,)*
                }
            }

            /// Checks the request as its gateway would, without sending: `invalid_request`
            /// (nothing sent) when the gateway would refuse it. Verifying runs the same checks.
            pub fn validate(&self) -> Result<(), Error> {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        VerifyRequest::$variant(ref request) => otp_core::operation::Request::validate(request)
                            .map_err(|error| error.with_gateway(Gateway::$variant)),
                    )*
                }
            }
        }

        impl SendOtpRequest {
            /// The gateway this request is for.
            pub fn gateway(&self) -> Gateway {
                match *self {
                    $(#[cfg(feature = $feature)] SendOtpRequest::$variant(_) => Gateway::$variant,)*
                }
            }

            /// The number the OTP goes to.
            pub fn mobile(&self) -> &MobileNumber {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        SendOtpRequest::$variant(ref request) => <$krate::$client as GatewayProfile>::mobile(request),
                    )*
                }
            }

            /// Checks the request as its gateway would, without sending: `invalid_request`
            /// (nothing sent) when the gateway would refuse it. Sending runs the same checks;
            /// call this to refuse a request early, before anything is counted or stored.
            pub fn validate(&self) -> Result<(), Error> {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        SendOtpRequest::$variant(ref request) => otp_core::operation::Request::validate(request)
                            .map_err(|error| error.with_gateway(Gateway::$variant)),
                    )*
                }
            }

            /// Checks, without sending, what [`SendOtpRequest::verify_request`] will take from
            /// this request and `extras` (all but the send's reference and the code): refuse a
            /// verification that could never be checked before it costs an OTP. iServeU's
            /// registration needs the customer's name; a KYC id given for AOPay is checked.
            #[allow(unused_variables)] // With no gateway enabled, nothing reads `extras`.
            pub fn validate_verify(&self, extras: &VerifyExtras) -> Result<(), Error> {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        SendOtpRequest::$variant(ref request) => {
                            <$krate::$client as GatewayProfile>::validate_verify(request, extras)
                                .map_err(|error| error.with_gateway(Gateway::$variant))
                        }
                    )*
                }
            }

            /// The second step of this send: the verify request for the `code` the customer
            /// typed, from the send's receipt (`receipt_reference` and `outcome`, as
            /// [`SendReceipt`] has them) and the customer's `extras`. The one definition of how
            /// each gateway's check follows from its send, used by the verifier and by
            /// `otp send --verify`. `invalid_request`, nothing sent, where the gateway has no
            /// such call (an iServeU or AOPay transaction OTP, consumed by a payment) or
            /// something it needs is missing (the reference; iServeU: the customer's name).
            #[allow(unused_variables)] // With no gateway enabled, nothing reads the arguments.
            pub fn verify_request(
                &self,
                receipt_reference: Option<&SecretString>,
                outcome: Outcome,
                code: OtpCode,
                extras: &VerifyExtras,
            ) -> Result<VerifyRequest, Error> {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        SendOtpRequest::$variant(ref request) => <$krate::$client as GatewayProfile>::verify_request(
                            request,
                            receipt_reference,
                            outcome,
                            code,
                            extras,
                        )
                        .map(VerifyRequest::$variant)
                        .map_err(|error| error.with_gateway(Gateway::$variant)),
                    )*
                }
            }

            /// Whether this request may be sent again as a resend: `invalid_request` where the
            /// gateway wants a new request instead (an iServeU transaction OTP wants a new
            /// `externalRefNumber`).
            pub fn check_resend(&self) -> Result<(), Error> {
                match *self {
                    $(
                        #[cfg(feature = $feature)]
                        SendOtpRequest::$variant(ref request) => <$krate::$client as GatewayProfile>::check_resend(request)
                            .map_err(|error| error.with_gateway(Gateway::$variant)),
                    )*
                }
            }
        }

        $(
            #[cfg(feature = $feature)]
            impl From<$krate::$client> for GatewayClient {
                fn from(client: $krate::$client) -> Self {
                    GatewayClient::$variant(client)
                }
            }

            #[cfg(feature = $feature)]
            impl From<$krate::$request> for SendOtpRequest {
                fn from(request: $krate::$request) -> Self {
                    SendOtpRequest::$variant(request)
                }
            }

            #[cfg(feature = $feature)]
            impl From<$krate::$verify> for VerifyRequest {
                fn from(request: $krate::$verify) -> Self {
                    VerifyRequest::$variant(request)
                }
            }
        )*
    };
}

gateways! {
    "phonepe" as phonepe => PhonePe(otp_phonepe::{PhonePeClient, SendOtpRequest, VerifyOtpRequest}),
    "paytm" as paytm => Paytm(otp_paytm::{PaytmClient, SendOtpRequest, VerifyOtpRequest}),
    "iserveu" as iserveu => IServeU(otp_iserveu::{IServeUClient, SendOtpRequest, CompleteRegistrationRequest}),
    "aopay" as aopay => AOPay(otp_aopay::{AOPayClient, SendOtpRequest, RegisterRemitterRequest}),
}

#[cfg(feature = "sandbox")]
pub mod sandbox;
#[cfg(feature = "verifier")]
pub mod verifier;

// iServeU has two request types (registration, transaction) behind its one SendOtpRequest.
#[cfg(feature = "iserveu")]
impl From<otp_iserveu::RegistrationOtpRequest> for SendOtpRequest {
    fn from(request: otp_iserveu::RegistrationOtpRequest) -> Self {
        SendOtpRequest::IServeU(request.into())
    }
}

#[cfg(feature = "iserveu")]
impl From<otp_iserveu::TransactionOtpRequest> for SendOtpRequest {
    fn from(request: otp_iserveu::TransactionOtpRequest) -> Self {
        SendOtpRequest::IServeU(request.into())
    }
}

/// The README's Rust snippets, compiled by `cargo test` so they stay true.
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
