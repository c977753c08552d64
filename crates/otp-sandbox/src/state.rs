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
/// How long a PhonePe, Paytm or iServeU OTP stays verifiable by default.
pub const OTP_VALIDITY: Duration = Duration::from_secs(600);
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
    /// What the second step needs to check, kept out of the inbox's JSON.
    #[serde(skip)]
    pub(crate) check: Check,
}

/// What a verification of an issued OTP checks, and how far it got.
#[derive(Debug, Clone, Default)]
pub(crate) struct Check {
    /// The device id the send carried (Paytm's must match).
    pub(crate) device_id: Option<String>,
    /// A registration OTP (iServeU otpType 1, AOPay code 0): the only kind a registration call
    /// consumes.
    pub(crate) registration: bool,
    pub(crate) wrong_tries: u32,
    pub(crate) spent: bool,
}

/// Wrong codes an OTP takes before it is spent.
pub const MAX_WRONG_TRIES: u32 = 5;

/// Which issued OTP a verification is for.
pub(crate) enum Find<'a> {
    /// The one issued with this reference; only the latest for its number verifies.
    LatestReference(&'a str),
    /// The registration OTP issued with this reference to this number (AOPay code 0).
    RegistrationReference { reference: &'a str, mobile: &'a str },
    /// The latest registration OTP sent to this number (iServeU).
    RegistrationFor(&'a str),
}

/// How a verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Verified,
    Wrong,
    /// Used, or out of tries.
    Spent,
    Expired,
    /// No such reference, or not the latest one for the number.
    Unknown,
    /// Paytm: another device than the send's.
    DeviceMismatch,
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

    /// Records an OTP as sent and returns it, valid for `validity`; `otp` is the code issued.
    pub(crate) fn record(
        &self,
        gateway: Gateway,
        mobile: &str,
        reference: Option<String>,
        validity: Option<Duration>,
        otp: String,
        check: Check,
    ) -> SentOtp {
        let now = SystemTime::now();
        // A century is "never" here; `Duration::MAX` must not overflow the clock arithmetic.
        let validity = validity.map(|v| v.min(Duration::from_secs(100 * 365 * 86_400)));
        let otp = SentOtp {
            gateway,
            mobile: mobile.to_owned(),
            otp,
            reference,
            sent_at: otp_core::rfc3339_utc(now),
            expires_at: validity.map(|v| otp_core::rfc3339_utc(now + v)),
            expired: false,
            expires: validity.map(|v| Instant::now() + v),
            check,
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.inbox.len() >= INBOX_CAP {
            inner.inbox.pop_front();
        }
        inner.inbox.push_back(otp.clone());
        otp
    }

    /// Checks `code` against the issued OTP that `find` names, counting a wrong try and
    /// spending the OTP once verified or out of tries. `device_id` is checked when given.
    pub(crate) fn verify(&self, gateway: Gateway, find: Find<'_>, code: &str, device_id: Option<&str>) -> Verdict {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inbox = &mut inner.inbox;
        let position = match find {
            Find::LatestReference(reference) => {
                inbox.iter().rposition(|o| o.gateway == gateway && o.reference.as_deref() == Some(reference))
            }
            Find::RegistrationReference { reference, mobile } => inbox.iter().rposition(|o| {
                o.gateway == gateway
                    && o.reference.as_deref() == Some(reference)
                    && o.mobile == mobile
                    && o.check.registration
            }),
            Find::RegistrationFor(mobile) => {
                inbox.iter().rposition(|o| o.gateway == gateway && o.mobile == mobile && o.check.registration)
            }
        };
        let Some(position) = position else { return Verdict::Unknown };
        if let Find::LatestReference(_) = find {
            let mobile = &inbox[position].mobile;
            if inbox.iter().skip(position + 1).any(|o| o.gateway == gateway && &o.mobile == mobile) {
                return Verdict::Unknown;
            }
        }
        let issued = &mut inbox[position];
        if device_id.is_some() && issued.check.device_id.as_deref() != device_id {
            return Verdict::DeviceMismatch;
        }
        if issued.check.spent {
            return Verdict::Spent;
        }
        if issued.expires.is_some_and(|expires| now >= expires) {
            return Verdict::Expired;
        }
        if issued.otp == code {
            issued.check.spent = true;
            return Verdict::Verified;
        }
        issued.check.wrong_tries += 1;
        if issued.check.wrong_tries >= MAX_WRONG_TRIES {
            issued.check.spent = true;
        }
        Verdict::Wrong
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
