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
//! unified [`SendReceipt`] or [`Error`] whatever the gateway.
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

// The application's surface, and nothing of the implementers' (the operation seam, the
// transport, code tables, validation helpers): those live in otp-core for gateway crates.
#[cfg(any(feature = "rustls", feature = "native-tls"))]
pub use otp_core::RootCertificate;
pub use otp_core::{
    mask_digit_runs, Amount, ClientOptions, ClientSecret, Coordinates, Environment, Error, ErrorKind, Gateway,
    HttpOptions, IdentityNumber, MobileNumber, MobileNumberError, OtpCode, Outcome, Pincode, ProviderResponse, Reached,
    RetryPolicy, SaltKey, SecretString, SendReceipt, UnknownEnvironment, UnknownGateway, VerifyReceipt,
};

#[cfg(feature = "aopay")]
pub use otp_aopay as aopay;
#[cfg(feature = "iserveu")]
pub use otp_iserveu as iserveu;
#[cfg(feature = "paytm")]
pub use otp_paytm as paytm;
#[cfg(feature = "phonepe")]
pub use otp_phonepe as phonepe;

/// The one list of gateways: each line is a cargo feature, the variant of [`GatewayClient`],
/// [`SendOtpRequest`] and [`VerifyRequest`], and the gateway crate's client, send request,
/// and verify request with the client's method that sends it. Everything that
/// dispatches on the gateway at run time is generated from it.
macro_rules! gateways {
    ($($feature:literal => $variant:ident($krate:ident::{$client:ident, $request:ident, $verify:ident => $verify_fn:ident}),)*) => {
        /// A client of whichever gateway configuration chose. Cheap to clone; clones share one pool.
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum GatewayClient {
            $(
                #[doc = concat!("A ", stringify!($variant), " client.")]
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
                #[doc = concat!("A ", stringify!($variant), " request.")]
                #[cfg(feature = $feature)]
                $variant($krate::$request),
            )*
        }

        /// A verify request for one gateway: the second step of each (verify.md).
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

            /// Sends one OTP. A request for another gateway than the client's is refused as
            /// `invalid_request` before anything is sent.
            pub async fn send_otp(&self, request: &SendOtpRequest) -> Result<SendReceipt, Error> {
                #[allow(unreachable_patterns)] // With one gateway enabled, the mismatch arm cannot match.
                match (self, request) {
                    $(
                        #[cfg(feature = $feature)]
                        (GatewayClient::$variant(client), SendOtpRequest::$variant(request)) => {
                            client.send_otp(request).await
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
        }

        impl GatewayClient {
            /// Verifies a code (PhonePe verify, Paytm validate, iServeU registration, AOPay
            /// RegisterRemitter). Never retried automatically. A request for another gateway
            /// than the client's is refused as `invalid_request` before anything is sent.
            pub async fn verify_otp(&self, request: &VerifyRequest) -> Result<VerifyReceipt, Error> {
                #[allow(unreachable_patterns)] // With one gateway enabled, the mismatch arm cannot match.
                match (self, request) {
                    $(
                        #[cfg(feature = $feature)]
                        (GatewayClient::$variant(client), VerifyRequest::$variant(request)) => {
                            client.$verify_fn(request).await
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
    "phonepe" => PhonePe(otp_phonepe::{PhonePeClient, SendOtpRequest, VerifyOtpRequest => verify_otp}),
    "paytm" => Paytm(otp_paytm::{PaytmClient, SendOtpRequest, VerifyOtpRequest => verify_otp}),
    "iserveu" => IServeU(otp_iserveu::{IServeUClient, SendOtpRequest, CompleteRegistrationRequest => complete_registration}),
    "aopay" => AOPay(otp_aopay::{AOPayClient, SendOtpRequest, RegisterRemitterRequest => register_remitter}),
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
