//! Verification sessions and the send guard over a [`GatewayClient`] (feature `verifier`;
//! `redis` adds [`RedisStore`]): the `otp-verifier` crate, with the gateway filled in.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sandbox = otp::sandbox::Sandbox::start(Default::default()).await?;
//! # let options = otp::ClientOptions::new().environment(otp::Environment::Custom(sandbox.base_url()));
//! # let client = otp::sandbox::client(otp::Gateway::PhonePe, options)?;
//! use otp::verifier::{Check, Context, MemoryStore, Verifier};
//! use otp::{phonepe, OtpCode};
//!
//! let verifier = Verifier::new(client, MemoryStore::new());
//! let context = Context::new("203.0.113.7".parse()?);
//! let request = phonepe::SendOtpRequest::new("9876543210".parse()?);
//! let started = verifier.start(request.into(), &context).await?;
//! # let code = sandbox.otps("9876543210")[0].otp.clone();
//! let checked = verifier.check(&started.id, OtpCode::parse(&code)?).await?;
//! assert!(matches!(checked, Check::Verified { .. }));
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use otp_verifier::{
    ChannelSink, Check, Context, Event, EventKind, EventSink, GuardRule, GuardRules, Limit, MemoryStore, Sent,
    SessionGateway, Started, State, Status, Store, VerificationId, DEFAULT_RETENTION, IDEMPOTENCY_KEY_LIFETIME,
};
#[cfg(feature = "redis")]
pub use otp_verifier::{PendingEvent, RedisStore, StoreKey, StreamedEvent};

use crate::{
    Error, Gateway, GatewayClient, MobileNumber, OtpCode, SendOtpRequest, SendReceipt, VerifyExtras, VerifyReceipt,
    VerifyRequest,
};

/// Verification sessions over a [`GatewayClient`], in a [`MemoryStore`] unless another is named.
pub type Verifier<S = MemoryStore> = otp_verifier::Verifier<GatewayClient, S>;

/// What a verification sends, and what its check needs that the send does not carry.
///
/// Made from any gateway's send request (`.into()`). The check is the gateway's second step,
/// built from the send, its receipt, the code and the extras given here
/// ([`SendOtpRequest::verify_request`]). iServeU completes a *registration* with the
/// customer's name: give it with [`Verification::customer_name`] (non-blank, at most 100
/// characters) or the start is refused as `invalid_request`, nothing sent or counted. AOPay's
/// RegisterRemitter takes the remitter's KYC id when given ([`Verification::kyc_id`], at most 64
/// characters, checked at the start too). A resend sends the same request again, so an iServeU
/// *transaction* OTP (which needs a new `externalRefNumber` each time) is refused a resend,
/// unsent: start a new verification. `Debug` shows no number, name, KYC id, address or
/// identity number. A stored verification is read back only through the same checks as a start.
#[derive(Clone, Deserialize)]
#[serde(try_from = "VerificationWire")]
pub struct Verification {
    request: SendOtpRequest,
    extras: VerifyExtras,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification").field("request", &self.request).field("extras", &self.extras).finish()
    }
}

impl Verification {
    /// A verification that sends `request`.
    pub fn new(request: impl Into<SendOtpRequest>) -> Self {
        Self { request: request.into(), extras: VerifyExtras::new() }
    }

    /// The customer's name, which iServeU's registration call takes with the code.
    pub fn customer_name(mut self, name: impl Into<String>) -> Self {
        self.extras = self.extras.customer_name(name);
        self
    }

    /// The remitter's KYC id (from AOPay's e-KYC), which AOPay's RegisterRemitter takes.
    pub fn kyc_id(mut self, kyc_id: impl Into<String>) -> Self {
        self.extras = self.extras.kyc_id(kyc_id);
        self
    }

    /// The send request.
    pub fn request(&self) -> &SendOtpRequest {
        &self.request
    }

    /// What the check takes besides the send, its receipt and the code.
    pub fn extras(&self) -> &VerifyExtras {
        &self.extras
    }
}

/// A verification as stored: the request and each extra by name.
#[derive(Serialize)]
struct VerificationRef<'a> {
    request: &'a SendOtpRequest,
    customer_name: Option<&'a str>,
    kyc_id: Option<&'a str>,
}

impl Serialize for Verification {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        VerificationRef {
            request: &self.request,
            customer_name: self.extras.customer_name.as_deref(),
            kyc_id: self.extras.kyc_id.as_deref(),
        }
        .serialize(serializer)
    }
}

/// What a stored verification is read as before its checks let it through. (A session stored
/// before `kyc_id` existed reads it as absent.)
#[derive(Deserialize)]
struct VerificationWire {
    request: SendOtpRequest,
    customer_name: Option<String>,
    kyc_id: Option<String>,
}

impl TryFrom<VerificationWire> for Verification {
    type Error = Error;

    fn try_from(wire: VerificationWire) -> Result<Self, Error> {
        let mut extras = VerifyExtras::new();
        extras.customer_name = wire.customer_name;
        extras.kyc_id = wire.kyc_id;
        let verification = Verification { request: wire.request, extras };
        <GatewayClient as SessionGateway>::validate(&verification)?;
        Ok(verification)
    }
}

impl<T: Into<SendOtpRequest>> From<T> for Verification {
    fn from(request: T) -> Self {
        Self::new(request)
    }
}

/// Each method is the gateway's profile, through the dispatch `gateways!` generates: nothing
/// here knows a gateway.
impl SessionGateway for GatewayClient {
    type Request = Verification;
    type VerifyRequest = VerifyRequest;

    fn gateway(&self) -> Gateway {
        GatewayClient::gateway(self)
    }

    fn otp_validity(&self) -> Duration {
        GatewayClient::otp_validity(self)
    }

    fn mobile(verification: &Verification) -> &MobileNumber {
        verification.request.mobile()
    }

    fn validate(verification: &Verification) -> Result<(), Error> {
        verification.request.validate()?;
        // What the check will send besides the send's reference and the code, checked now: a
        // session that could never be checked must not cost an OTP or a place in the guard.
        verification.request.validate_verify(&verification.extras)
    }

    async fn send(&self, verification: &Verification) -> Result<SendReceipt, Error> {
        self.send_otp(&verification.request).await
    }

    fn verify_request(verification: &Verification, sent: &Sent, code: OtpCode) -> Result<VerifyRequest, Error> {
        verification.request.verify_request(sent.reference.as_ref(), sent.outcome, code, &verification.extras)
    }

    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyReceipt, Error> {
        self.verify_otp(request).await
    }

    fn check_resend(verification: &Verification) -> Result<(), Error> {
        verification.request.check_resend()
    }
}
