//! The JSON the routes answer and take (besides a start's, in `gateways`).

use std::time::{Duration, SystemTime};

use otp::verifier::{Started, State, Status};
use otp::{Gateway, MobileNumber};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// A verification's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    /// Sent, waiting for the right code.
    Pending,
    /// The right code was checked.
    Approved,
    /// Cancelled.
    Canceled,
    /// Its lifetime ended (or the gateway said the code expired) before the right code came.
    Expired,
    /// Every try was used on wrong codes.
    MaxAttemptsReached,
}

impl StatusName {
    pub(crate) fn of(state: State) -> Self {
        match state {
            State::Pending => StatusName::Pending,
            State::Approved => StatusName::Approved,
            State::Canceled => StatusName::Canceled,
            State::MaxAttemptsReached => StatusName::MaxAttemptsReached,
            // State is non-exhaustive: a state this service does not know yet is over.
            _ => StatusName::Expired,
        }
    }
}

fn gateway_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Gateway::ALL.iter().map(|g| g.as_str())))
        .description(Some("The gateway that sends."))
}

/// A verification, as every 2xx answer of the verification routes carries it.
// `Debug` hides the credential (a comment, not a doc: docs become the schema's description).
#[derive(Clone, Serialize, ToSchema)]
#[schema(as = Verification)]
pub struct VerificationBody {
    /// Its id (opaque; only the tenant that started it can use it).
    pub id: String,
    /// Where it stands.
    pub status: StatusName,
    /// The gateway that sends.
    #[schema(schema_with = gateway_schema)]
    pub gateway: String,
    /// The number, masked (`XXXXXX3210`); `null` once it is over (nothing of it is kept).
    pub to: Option<String>,
    /// How its last send succeeded: `sent`, or `sent_for_registration` (an AOPay remitter to register).
    #[schema(example = "sent")]
    pub outcome: String,
    /// Codes it will still check (0 once it is over).
    pub tries_left: u32,
    /// Codes sent: the start and its resends.
    pub sends: u32,
    /// When its code stops being checked (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-11-22T10:10:00Z")]
    pub expires_at: String,
    /// When the cooldown lets a resend through, while it is pending (RFC 3339, UTC; other
    /// limits may still refuse one).
    #[schema(format = DateTime)]
    pub resend_available_at: Option<String>,
    /// A configured test number's: no gateway was called.
    pub test: bool,
    /// An approved check's credential from the gateway (PhonePe's `userAuthToken`, Paytm's
    /// access token), to a key with `credentials:read`: a secret, handed out once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// An approved check whose gateway returned a credential this key may not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_returned: Option<bool>,
}

impl std::fmt::Debug for VerificationBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationBody")
            .field("id", &self.id.chars().take(4).collect::<String>())
            .field("status", &self.status)
            .field("gateway", &self.gateway)
            .field("to", &self.to)
            .field("outcome", &self.outcome)
            .field("tries_left", &self.tries_left)
            .field("sends", &self.sends)
            .field("expires_at", &self.expires_at)
            .field("resend_available_at", &self.resend_available_at)
            .field("test", &self.test)
            .field("credential", &self.credential.as_ref().map(|_| "[redacted]"))
            .field("credential_returned", &self.credential_returned)
            .finish()
    }
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    otp_core::rfc3339_utc(time)
}

impl VerificationBody {
    /// A start's or resend's answer, from what the verifier answered: the same for its first
    /// call and every replay of it.
    pub(crate) fn started(
        id: String,
        started: &Started,
        mobile: Option<&MobileNumber>,
        lifetime: Duration,
        cooldown: Duration,
        tries_left: u32,
        sends: u32,
    ) -> Self {
        // The send's time is its expiry less the lifetime: the verifier's own arithmetic.
        let sent_at = started.expires_at.checked_sub(lifetime).unwrap_or(started.expires_at);
        Self {
            id,
            status: StatusName::Pending,
            gateway: started.gateway.as_str().to_owned(),
            to: mobile.map(|m| m.masked()),
            outcome: started.outcome.as_str().to_owned(),
            tries_left,
            sends,
            expires_at: rfc3339(started.expires_at),
            resend_available_at: Some(rfc3339(sent_at + cooldown)),
            test: started.test,
            credential: None,
            credential_returned: None,
        }
    }

    /// `status`'s answer.
    pub(crate) fn status(id: String, status: &Status) -> Self {
        Self {
            id,
            status: StatusName::of(status.state),
            gateway: status.gateway.as_str().to_owned(),
            to: status.mobile.map(|m| m.masked()),
            outcome: status.outcome.as_str().to_owned(),
            tries_left: status.tries_left,
            sends: status.sends,
            expires_at: rfc3339(status.expires_at),
            resend_available_at: status.resend_available_at.map(rfc3339),
            test: status.test,
            credential: None,
            credential_returned: None,
        }
    }
}

/// A check's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The code the customer typed (digits; Paytm's are exactly 6).
    #[schema(example = "123456")]
    pub code: String,
}

/// A resend's body: the guard counts a resend like a start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// The end user's IP address, as the calling backend saw it.
    #[schema(example = "203.0.113.7")]
    pub client_ip: String,
    /// Also counted by the guard: an account or device id (1 to 256 bytes).
    pub caller_key: Option<String>,
}

/// `/livez`'s and `/readyz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (live) or `ready`.
    #[schema(example = "ready")]
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_credential_and_most_of_the_id() {
        let body = VerificationBody {
            id: "abcdefghijklmnopqrstuv.x.tag".to_owned(),
            status: StatusName::Approved,
            gateway: Gateway::ALL[0].as_str().to_owned(),
            to: Some("XXXXXX3210".to_owned()),
            outcome: "sent".to_owned(),
            tries_left: 0,
            sends: 1,
            expires_at: rfc3339(SystemTime::UNIX_EPOCH),
            resend_available_at: None,
            test: false,
            credential: Some("token-secret-1".to_owned()),
            credential_returned: None,
        };
        let shown = format!("{body:?}");
        assert!(
            !shown.contains("token-secret-1") && !shown.contains("abcdefgh") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
