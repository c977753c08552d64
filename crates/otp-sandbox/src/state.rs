//! The sandbox's memory: recent sends per gateway and number, and the SMS inbox.

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    #[serde(skip)]
    pub(crate) sent: Instant,
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

/// How many OTPs one number keeps (older ones are dropped with their references).
pub const OTPS_PER_NUMBER: usize = 20;
/// The default cap on the numbers the sandbox keeps (oldest activity evicted first).
pub const DEFAULT_MAX_NUMBERS: usize = 25_000;
/// The longest anything is kept after a number's last activity, whatever the validity
/// configured ("no expiry" included).
const MAX_RETENTION: Duration = Duration::from_secs(86_400);

/// One number's sends and OTPs.
#[derive(Default)]
struct Number {
    /// Its key in `Inner::by_activity`.
    activity: Option<(Instant, u64)>,
    /// Send times per gateway, within the limit window.
    sends: Vec<(Gateway, VecDeque<Instant>)>,
    /// Its OTPs, oldest first, at most [`OTPS_PER_NUMBER`].
    otps: VecDeque<SentOtp>,
}

struct Inner {
    numbers: HashMap<String, Number>,
    /// Numbers by last activity, oldest first: the order of expiry and of eviction.
    by_activity: BTreeMap<(Instant, u64), String>,
    /// (gateway, reference) → the number it was issued to.
    references: HashMap<(Gateway, String), String>,
    next_tick: u64,
    max_numbers: usize,
    retention: Duration,
}

/// Shared, thread-safe, bounded state: every entry expires with its window or validity, and
/// at most `max_numbers` numbers are kept, the least recently active evicted first.
pub struct State {
    inner: Mutex<Inner>,
}

impl Default for State {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_NUMBERS, LIMIT_WINDOW.max(OTP_VALIDITY))
    }
}

impl Inner {
    /// Drops what has expired, then the least recently active numbers over the cap.
    fn sweep(&mut self, now: Instant) {
        while let Some(entry) = self.by_activity.first_entry() {
            let (last, _) = *entry.key();
            let expired = now.saturating_duration_since(last) >= self.retention;
            if !expired && self.numbers.len() <= self.max_numbers {
                break;
            }
            let mobile = entry.remove();
            self.forget(&mobile);
        }
    }

    fn forget(&mut self, mobile: &str) {
        if let Some(number) = self.numbers.remove(mobile) {
            for otp in number.otps {
                if let Some(reference) = otp.reference {
                    self.references.remove(&(otp.gateway, reference));
                }
            }
        }
    }

    /// The number's entry, marked active now (created if new).
    fn touch(&mut self, mobile: &str, now: Instant) -> &mut Number {
        let tick = self.next_tick;
        self.next_tick += 1;
        let number = self.numbers.entry(mobile.to_owned()).or_default();
        if let Some(previous) = number.activity.replace((now, tick)) {
            self.by_activity.remove(&previous);
        }
        self.by_activity.insert((now, tick), mobile.to_owned());
        // The borrow of `numbers` above ended with the insert into `by_activity`.
        self.numbers.entry(mobile.to_owned()).or_default()
    }
}

impl State {
    /// State keeping at most `max_numbers` numbers, each for `retention` after its last activity.
    pub fn new(max_numbers: usize, retention: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                numbers: HashMap::new(),
                by_activity: BTreeMap::new(),
                references: HashMap::new(),
                next_tick: 0,
                max_numbers: max_numbers.max(1),
                retention: retention.min(MAX_RETENTION),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a send attempt; false when it is over the limit (and so refused).
    pub fn admit(&self, gateway: Gateway, mobile: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep(now);
        let number = inner.touch(mobile, now);
        let admitted = {
            let index = match number.sends.iter().position(|(g, _)| *g == gateway) {
                Some(index) => index,
                None => {
                    number.sends.push((gateway, VecDeque::new()));
                    number.sends.len() - 1
                }
            };
            let sends = &mut number.sends[index].1;
            while sends.front().is_some_and(|t| now.duration_since(*t) >= LIMIT_WINDOW) {
                sends.pop_front();
            }
            if sends.len() >= LIMIT {
                false
            } else {
                sends.push_back(now);
                true
            }
        };
        inner.sweep(now);
        admitted
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
        let instant = Instant::now();
        // A century is "never" here; `Duration::MAX` must not overflow the clock arithmetic.
        let validity = validity.map(|v| v.min(Duration::from_secs(100 * 365 * 86_400)));
        let sent = SentOtp {
            gateway,
            mobile: mobile.to_owned(),
            otp,
            reference,
            sent_at: otp_core::rfc3339_utc(now),
            expires_at: validity.map(|v| otp_core::rfc3339_utc(now + v)),
            expired: false,
            expires: validity.and_then(|v| instant.checked_add(v)),
            sent: instant,
            check,
        };
        let mut inner = self.lock();
        let number = inner.touch(mobile, instant);
        number.otps.push_back(sent.clone());
        let dropped = if number.otps.len() > OTPS_PER_NUMBER { number.otps.pop_front() } else { None };
        if let Some(reference) = dropped.and_then(|otp| otp.reference.map(|r| (otp.gateway, r))) {
            inner.references.remove(&reference);
        }
        if let Some(reference) = &sent.reference {
            inner.references.insert((gateway, reference.clone()), mobile.to_owned());
        }
        inner.sweep(instant);
        sent
    }

    /// How many numbers and OTPs are kept now.
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.numbers.len(), inner.numbers.values().map(|n| n.otps.len()).sum())
    }

    /// Forgets everything: for test isolation.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.numbers.clear();
        inner.by_activity.clear();
        inner.references.clear();
    }

    /// Checks `code` against the issued OTP that `find` names, counting a wrong try and
    /// spending the OTP once verified or out of tries. `device_id` is checked when given.
    pub(crate) fn verify(&self, gateway: Gateway, find: Find<'_>, code: &str, device_id: Option<&str>) -> Verdict {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep(now);
        let mobile = match find {
            Find::LatestReference(reference) => inner.references.get(&(gateway, reference.to_owned())).cloned(),
            Find::RegistrationFor(mobile) | Find::RegistrationReference { mobile, .. } => Some(mobile.to_owned()),
        };
        let Some(otps) = mobile.and_then(|mobile| inner.numbers.get_mut(&mobile)).map(|n| &mut n.otps) else {
            return Verdict::Unknown;
        };
        let position = match find {
            Find::LatestReference(reference) => {
                otps.iter().rposition(|o| o.gateway == gateway && o.reference.as_deref() == Some(reference))
            }
            Find::RegistrationFor(_) => otps.iter().rposition(|o| o.gateway == gateway && o.check.registration),
            Find::RegistrationReference { reference, .. } => otps.iter().rposition(|o| {
                o.gateway == gateway && o.reference.as_deref() == Some(reference) && o.check.registration
            }),
        };
        let Some(position) = position else { return Verdict::Unknown };
        if let Find::LatestReference(_) = find {
            // Only the latest reference issued to the number verifies.
            if otps.iter().skip(position + 1).any(|o| o.gateway == gateway) {
                return Verdict::Unknown;
            }
        }
        let issued = &mut otps[position];
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

    /// The OTPs sent to a number, newest first; without a number, the `limit` newest of all.
    pub fn otps(&self, mobile: Option<&str>, limit: usize) -> Vec<SentOtp> {
        let now = Instant::now();
        let inner = self.lock();
        let mut otps: Vec<&SentOtp> = match mobile {
            Some(mobile) => inner.numbers.get(mobile).map(|n| n.otps.iter().rev().collect()).unwrap_or_default(),
            None => {
                // The newest OTPs are among the `limit` most recently active numbers.
                let mut recent: Vec<&SentOtp> = inner
                    .by_activity
                    .values()
                    .rev()
                    .take(limit)
                    .filter_map(|mobile| inner.numbers.get(mobile))
                    .flat_map(|number| number.otps.iter())
                    .collect();
                recent.sort_by_key(|otp| std::cmp::Reverse(otp.sent));
                recent
            }
        };
        otps.truncate(limit);
        otps.into_iter().map(|otp| SentOtp { expired: otp.expires.is_some_and(|e| now >= e), ..otp.clone() }).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;

    fn send(state: &State, mobile: &str) {
        assert!(state.admit(Gateway::AOPay, mobile));
        state.record(Gateway::AOPay, mobile, Some(format!("ref-{mobile}")), None, "123456".into(), Check::default());
    }

    #[test]
    fn three_hundred_thousand_distinct_numbers_stay_under_the_cap() {
        let state = State::new(10_000, Duration::from_secs(600));
        for i in 0..300_000u32 {
            send(&state, &format!("7{i:09}"));
            if i % 50_000 == 0 {
                assert!(state.sizes().0 <= 10_000, "{:?} after {i}", state.sizes());
            }
        }
        assert_eq!(state.sizes(), (10_000, 10_000));
        let inner = state.lock();
        assert_eq!(inner.by_activity.len(), 10_000, "the activity index is bounded too");
        assert_eq!(inner.references.len(), 10_000, "and the reference index");
    }

    #[test]
    fn entries_expire_with_their_window_without_another_send_to_the_same_number() {
        let state = State::new(1_000, Duration::from_millis(50));
        send(&state, "7000000001");
        send(&state, "7000000002");
        std::thread::sleep(Duration::from_millis(80));
        send(&state, "7000000003");
        assert_eq!(state.sizes(), (1, 1), "the two idle numbers were swept by another number's send");
        assert_eq!(state.lock().references.len(), 1);
    }

    #[test]
    fn a_number_keeps_at_most_its_latest_otps() {
        let state = State::new(10, Duration::from_secs(600));
        for i in 0..(OTPS_PER_NUMBER + 5) {
            state.record(Gateway::PhonePe, "7000000001", Some(format!("r{i}")), None, "1".into(), Check::default());
        }
        assert_eq!(state.sizes(), (1, OTPS_PER_NUMBER));
        assert_eq!(state.lock().references.len(), OTPS_PER_NUMBER);
        assert_eq!(state.otps(Some("7000000001"), 1)[0].reference.as_deref(), Some("r24"));
    }
}
