//! What a successful send returns.

use std::fmt;

use crate::{mask_digit_runs, Gateway, SecretString};

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
/// forbids handing its token to the client app, so it never shows in `Debug`. Nor does a number
/// the provider's message echoes: `Debug` masks its digit runs ([`mask_digit_runs`]).
#[derive(Clone)]
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
/// `userAuthToken`, Paytm's access token); it is a [`SecretString`] and never shows in `Debug`,
/// and the message shows with its digit runs masked ([`mask_digit_runs`]).
#[derive(Clone)]
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

/// Both receipts' `Debug`: every field, the secret redacted (its own `Debug`), the message with
/// its digit runs masked as human output masks them (a provider may echo the number).
macro_rules! receipt_debug {
    ($($receipt:ident { $secret:ident }),*) => {$(
        impl fmt::Debug for $receipt {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($receipt))
                    .field("gateway", &self.gateway)
                    .field("outcome", &self.outcome)
                    .field(stringify!($secret), &self.$secret)
                    .field("provider_code", &self.provider_code)
                    .field("message", &self.message.as_deref().map(mask_digit_runs))
                    .field("http_status", &self.http_status)
                    .finish()
            }
        }
    )*};
}

receipt_debug!(SendReceipt { reference }, VerifyReceipt { credential });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_messages_numbers_and_redacts_the_secrets() {
        let message = Some("OTP sent to 9876543210, ref 1234".to_owned());
        let sent = SendReceipt {
            gateway: Gateway::Paytm,
            outcome: Outcome::Sent,
            reference: Some(SecretString::new("state-token-42")),
            provider_code: "BE1400001".into(),
            message: message.clone(),
            http_status: 200,
        };
        assert_eq!(
            format!("{sent:?}"),
            "SendReceipt { gateway: Paytm, outcome: Sent, reference: Some([redacted]), provider_code: \"BE1400001\", \
             message: Some(\"OTP sent to XXXXXX3210, ref 1234\"), http_status: 200 }"
        );
        let verified = VerifyReceipt {
            gateway: Gateway::Paytm,
            outcome: Outcome::Verified,
            credential: Some(SecretString::new("user-auth-token")),
            provider_code: "SUCCESS".into(),
            message,
            http_status: 200,
        };
        let debug = format!("{verified:#?}");
        assert!(debug.contains("XXXXXX3210") && debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("9876543210") && !debug.contains("user-auth-token"), "{debug}");
        let quiet = SendReceipt { message: None, reference: None, ..sent };
        assert!(format!("{quiet:?}").contains("reference: None, provider_code: \"BE1400001\", message: None"));
    }
}
