//! What a successful send returns.

use std::fmt;

use crate::{Gateway, SecretString};

/// How a send succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The provider accepted and sent the OTP.
    Sent,
    /// The OTP was sent, but to register the customer first (AOPay code 0).
    SentForRegistration,
    /// Verify: the code matched.
    Verified,
}

impl Outcome {
    /// The stable snake_case name (`sent`, `sent_for_registration`, `verified`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::SentForRegistration => "sent_for_registration",
            Outcome::Verified => "verified",
        }
    }

    /// The outcome with this stable name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Outcome::Sent, Outcome::SentForRegistration, Outcome::Verified].into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider's answer that an OTP went out.
///
/// The `reference` is what the verify step needs (PhonePe `otpToken`, Paytm `state_token`,
/// AOPay `stateresp`, the iServeU `externalRefNumber` sent). It is a [`SecretString`]: PhonePe
/// forbids handing its token to the client app, so it never shows in `Debug`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SendReceipt {
    /// The gateway that answered.
    pub gateway: Gateway,
    /// Sent, or sent for registration.
    pub outcome: Outcome,
    /// The reference for the verify step, when the gateway gives one.
    pub reference: Option<SecretString>,
    /// The provider's own code, verbatim (`SUCCESS`, `BE1400001`, `"0"`, `1`).
    pub provider_code: String,
    /// The provider's message, when it gave one.
    pub message: Option<String>,
    /// The HTTP status of the answer.
    pub http_status: u16,
}

/// A provider's answer that the code matched.
///
/// The `credential` is what the gateway hands back for its next calls (PhonePe's
/// `userAuthToken`, Paytm's access token); it is a [`SecretString`] and never shows in `Debug`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyReceipt {
    /// The gateway that answered.
    pub gateway: Gateway,
    /// Always [`Outcome::Verified`].
    pub outcome: Outcome,
    /// The gateway's credential for its next calls, when it returns one.
    pub credential: Option<SecretString>,
    /// The provider's own code, verbatim.
    pub provider_code: String,
    /// The provider's message, when it gave one.
    pub message: Option<String>,
    /// The HTTP status of the answer.
    pub http_status: u16,
}
