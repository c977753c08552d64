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
    SessionGateway, Started, State, Status, Store, VerificationId, DEFAULT_RETENTION,
};
#[cfg(feature = "redis")]
pub use otp_verifier::{RedisStore, StoreKey};

use crate::{
    Error, Gateway, GatewayClient, MobileNumber, OtpCode, SendOtpRequest, SendReceipt, VerifyReceipt, VerifyRequest,
};

/// Verification sessions over a [`GatewayClient`], in a [`MemoryStore`] unless another is named.
pub type Verifier<S = MemoryStore> = otp_verifier::Verifier<GatewayClient, S>;

/// What a verification sends, and what its check needs that the send does not carry.
///
/// Made from any gateway's send request (`.into()`). iServeU completes a *registration* with
/// the customer's name: give it with [`Verification::customer_name`] (non-blank, at most 100
/// characters) or the start is refused as `invalid_request`, nothing sent or counted.
/// AOPay's RegisterRemitter takes the remitter's KYC id when there is one: [`Verification::kyc_id`].
/// A resend sends the same request again, so an iServeU *transaction* OTP (which needs a new
/// `externalRefNumber` each time) is refused a resend, unsent: start a new verification.
/// `Debug` shows no number, name, address, identity number or KYC id. A stored verification is
/// read back only through the same checks as a start.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "VerificationWire")]
pub struct Verification {
    request: SendOtpRequest,
    customer_name: Option<String>,
    kyc_id: Option<String>,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("request", &self.request)
            .field("customer_name", &self.customer_name.as_ref().map(|_| "[redacted]"))
            .field("kyc_id", &self.kyc_id.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Verification {
    /// A verification that sends `request`.
    pub fn new(request: impl Into<SendOtpRequest>) -> Self {
        Self { request: request.into(), customer_name: None, kyc_id: None }
    }

    /// The customer's name, which iServeU's registration call takes with the code.
    pub fn customer_name(mut self, name: impl Into<String>) -> Self {
        self.customer_name = Some(name.into());
        self
    }

    /// The remitter's KYC id, which AOPay's RegisterRemitter takes with the code.
    pub fn kyc_id(mut self, kyc_id: impl Into<String>) -> Self {
        self.kyc_id = Some(kyc_id.into());
        self
    }

    /// The send request.
    pub fn request(&self) -> &SendOtpRequest {
        &self.request
    }
}

/// What a stored verification is read as before its checks let it through.
#[derive(Deserialize)]
struct VerificationWire {
    request: SendOtpRequest,
    customer_name: Option<String>,
    #[serde(default)]
    kyc_id: Option<String>,
}

impl TryFrom<VerificationWire> for Verification {
    type Error = Error;

    fn try_from(wire: VerificationWire) -> Result<Self, Error> {
        let verification =
            Verification { request: wire.request, customer_name: wire.customer_name, kyc_id: wire.kyc_id };
        <GatewayClient as SessionGateway>::validate(&verification)?;
        Ok(verification)
    }
}

impl<T: Into<SendOtpRequest>> From<T> for Verification {
    fn from(request: T) -> Self {
        Self::new(request)
    }
}

/// The registration call a check of an iServeU registration OTP makes.
#[cfg(feature = "iserveu")]
fn iserveu_completion(
    verification: &Verification,
    request: &crate::iserveu::RegistrationOtpRequest,
    code: OtpCode,
) -> Result<crate::iserveu::CompleteRegistrationRequest, Error> {
    let name = verification.customer_name.as_deref().ok_or_else(|| {
        Error::invalid_input(
            "iServeU completes a registration with the customer's name: give it with Verification::customer_name",
        )
    })?;
    Ok(crate::iserveu::CompleteRegistrationRequest::new(*request.mobile(), code, name))
}

#[cfg(any(feature = "phonepe", feature = "paytm", feature = "aopay"))]
fn reference(sent: &Sent) -> Result<crate::SecretString, Error> {
    sent.reference.clone().ok_or_else(|| Error::invalid_input("the send returned no reference to verify against"))
}

impl SessionGateway for GatewayClient {
    type Request = Verification;
    type VerifyRequest = VerifyRequest;

    fn gateway(&self) -> Gateway {
        GatewayClient::gateway(self)
    }

    fn otp_validity(&self) -> Duration {
        match GatewayClient::gateway(self) {
            // AOPay: 90 s (verify.md); PhonePe, Paytm, iServeU: 10 minutes (sessions.md).
            Gateway::AOPay => Duration::from_secs(90),
            _ => Duration::from_secs(600),
        }
    }

    fn mobile(verification: &Verification) -> &MobileNumber {
        match verification.request {
            #[cfg(feature = "phonepe")]
            SendOtpRequest::PhonePe(ref request) => request.mobile(),
            #[cfg(feature = "paytm")]
            SendOtpRequest::Paytm(ref request) => request.mobile(),
            #[cfg(feature = "iserveu")]
            SendOtpRequest::IServeU(ref request) => request.mobile(),
            #[cfg(feature = "aopay")]
            SendOtpRequest::AOPay(ref request) => request.mobile(),
        }
    }

    fn validate(verification: &Verification) -> Result<(), Error> {
        verification.request.validate()?;
        // What the check will send besides the send's reference and the code, checked now: a
        // session that could never be checked must not cost an OTP or a place in the guard.
        #[cfg(feature = "iserveu")]
        if let SendOtpRequest::IServeU(crate::iserveu::SendOtpRequest::Registration(ref request)) = verification.request
        {
            // Any valid code: the code is the one thing the check adds, and it is checked when made.
            let completion = iserveu_completion(verification, request, OtpCode::parse("000000")?)?;
            otp_core::operation::Request::validate(&completion)?;
        }
        Ok(())
    }

    async fn send(&self, verification: &Verification) -> Result<SendReceipt, Error> {
        self.send_otp(&verification.request).await
    }

    fn verify_request(verification: &Verification, sent: &Sent, code: OtpCode) -> Result<VerifyRequest, Error> {
        #[allow(unused_variables)] // With no gateway enabled, nothing reads them.
        let (sent, code) = (sent, code);
        match verification.request {
            #[cfg(feature = "phonepe")]
            SendOtpRequest::PhonePe(ref request) => {
                let mut verify = crate::phonepe::VerifyOtpRequest::new(reference(sent)?, code);
                if let Some(device_id) = request.device_id_header() {
                    verify = verify.device_id(device_id);
                }
                Ok(verify.into())
            }
            #[cfg(feature = "paytm")]
            SendOtpRequest::Paytm(ref request) => {
                let verify = crate::paytm::VerifyOtpRequest::new(reference(sent)?, code, request.device_identifier())?;
                Ok(verify.locale(request.locale_param()).into())
            }
            #[cfg(feature = "iserveu")]
            SendOtpRequest::IServeU(crate::iserveu::SendOtpRequest::Registration(ref request)) => {
                Ok(iserveu_completion(verification, request, code)?.into())
            }
            #[cfg(feature = "iserveu")]
            SendOtpRequest::IServeU(_) => Err(Error::invalid_input(
                "an iServeU transaction OTP is checked by iServeU's money-transfer call with the same externalRefNumber, not here",
            )),
            #[cfg(feature = "aopay")]
            SendOtpRequest::AOPay(ref request) if sent.outcome == crate::Outcome::SentForRegistration => {
                let verify = crate::aopay::RegisterRemitterRequest::new(*request.mobile(), code, reference(sent)?);
                Ok(match &verification.kyc_id {
                    Some(kyc_id) => verify.kyc_id(kyc_id),
                    None => verify,
                }
                .into())
            }
            #[cfg(feature = "aopay")]
            SendOtpRequest::AOPay(_) => Err(Error::invalid_input(
                "an AOPay transaction OTP is checked by AOPay's transfer call, not here",
            )),
        }
    }

    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyReceipt, Error> {
        self.verify_otp(request).await
    }

    fn check_resend(verification: &Verification) -> Result<(), Error> {
        match verification.request {
            #[cfg(feature = "iserveu")]
            SendOtpRequest::IServeU(crate::iserveu::SendOtpRequest::Transaction(_)) => Err(Error::invalid_input(
                "iServeU wants a new externalRefNumber for every transaction OTP: start a new verification instead of resending",
            )),
            _ => Ok(()),
        }
    }
}
