//! The sandbox's memory: recent sends per gateway and number, and the SMS inbox.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use otp_core::Gateway;
use serde::Serialize;

/// Sends allowed per gateway and number within [`LIMIT_WINDOW`].
pub const LIMIT: usize = 5;
/// The window of the send limit.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(600);
/// How long an AOPay OTP stays valid by default.
pub const AOPAY_VALIDITY: Duration = Duration::from_secs(90);
/// The inbox keeps at most this many OTPs (oldest dropped), so a long soak stays bounded.
const INBOX_CAP: usize = 10_000;

/// An OTP the sandbox "sent".
#[derive(Debug, Clone, Serialize)]
pub struct SentOtp {
    /// `phonepe`, `paytm`, `iserveu` or `aopay`.
    #[serde(serialize_with = "gateway_name")]
    pub gateway: Gateway,
    /// The 10-digit number.
    pub mobile: String,
    /// The 6-digit code.
    pub otp: String,
    /// The reference the gateway answered with (or the iServeU external reference).
    pub reference: Option<String>,
    /// When it was sent (RFC 3339, UTC).
    pub sent_at: String,
    /// When it stops being valid (AOPay only; RFC 3339, UTC).
    pub expires_at: Option<String>,
    /// Whether it has expired.
    pub expired: bool,
    #[serde(skip)]
    pub(crate) expires: Option<Instant>,
}

fn gateway_name<S: serde::Serializer>(gateway: &Gateway, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(gateway.as_str())
}

#[derive(Default)]
struct Inner {
    recent: HashMap<(Gateway, String), VecDeque<Instant>>,
    inbox: VecDeque<SentOtp>,
}

/// Shared, thread-safe state.
#[derive(Default)]
pub struct State {
    inner: Mutex<Inner>,
}

impl State {
    /// Counts a send attempt; false when it is over the limit (and so refused).
    pub fn admit(&self, gateway: Gateway, mobile: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let sends = inner.recent.entry((gateway, mobile.to_owned())).or_default();
        while sends.front().is_some_and(|t| now.duration_since(*t) >= LIMIT_WINDOW) {
            sends.pop_front();
        }
        if sends.len() >= LIMIT {
            return false;
        }
        sends.push_back(now);
        true
    }

    /// Records an OTP as sent and returns it; `validity` for gateways whose OTPs expire.
    pub fn record(
        &self,
        gateway: Gateway,
        mobile: &str,
        reference: Option<String>,
        validity: Option<Duration>,
    ) -> SentOtp {
        let now = SystemTime::now();
        // A century is "never" here; `Duration::MAX` must not overflow the clock arithmetic.
        let validity = validity.map(|v| v.min(Duration::from_secs(100 * 365 * 86_400)));
        let otp = SentOtp {
            gateway,
            mobile: mobile.to_owned(),
            otp: format!("{:06}", fastrand::u32(0..1_000_000)),
            reference,
            sent_at: otp_core::rfc3339_utc(now),
            expires_at: validity.map(|v| otp_core::rfc3339_utc(now + v)),
            expired: false,
            expires: validity.map(|v| Instant::now() + v),
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.inbox.len() >= INBOX_CAP {
            inner.inbox.pop_front();
        }
        inner.inbox.push_back(otp.clone());
        otp
    }

    /// The OTPs sent to a number (every number when `None`), newest first.
    pub fn otps(&self, mobile: Option<&str>) -> Vec<SentOtp> {
        let now = Instant::now();
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .inbox
            .iter()
            .rev()
            .filter(|otp| mobile.is_none_or(|m| otp.mobile == m))
            .map(|otp| SentOtp { expired: otp.expires.is_some_and(|e| now >= e), ..otp.clone() })
            .collect()
    }
}
