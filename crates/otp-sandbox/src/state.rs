//! The sandbox's memory: recent sends per gateway and number, and the SMS inbox.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use otp_core::Gateway;
use serde::Serialize;

/// Sends allowed per gateway and number within [`LIMIT_WINDOW`].
pub const LIMIT: usize = 5;
/// The window of the send limit.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(600);
/// How long a PhonePe, Paytm or iServeU OTP stays verifiable by default: the gateways' own
/// validity, defined once in otp-core.
pub const OTP_VALIDITY: Duration = otp_core::Gateway::PhonePe.otp_validity();

/// An OTP the sandbox "sent".
#[derive(Debug, Clone, Serialize)]
pub struct SentOtp {
    /// Its number in the order of sends (from 1; a reset does not restart it): the inbox page
    /// updates a row by it.
    pub id: u64,
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
    /// When it stops being valid (RFC 3339, UTC).
    pub expires_at: Option<String>,
    /// Whether it has expired.
    pub expired: bool,
    /// How long it stays valid from when it was read, in milliseconds (0 once expired; `None`:
    /// no expiry): a countdown that needs no clock in common with the sandbox.
    pub valid_for_ms: Option<u64>,
    /// Where its verification stands.
    pub status: OtpStatus,
    #[serde(skip)]
    pub(crate) expires: Option<Instant>,
    #[serde(skip)]
    pub(crate) sent: Instant,
    /// What the second step needs to check, kept out of the inbox's JSON.
    #[serde(skip)]
    pub(crate) check: Check,
}

/// Where an OTP's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OtpStatus {
    /// Issued, unexpired, neither verified nor spent.
    Pending,
    /// Its code was verified (it cannot be again).
    Verified,
    /// Out of wrong tries before it was verified.
    Spent,
    /// Past its validity unverified.
    Expired,
}

/// A change of the inbox, for the inbox page's event stream.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// An OTP was sent.
    Sent(SentOtp),
    /// An OTP was verified, spent or expired.
    Updated(SentOtp),
    /// Everything was forgotten.
    Reset,
}

/// How many changes the event stream holds for a subscriber that has not read them: one that
/// falls further behind is told it lagged (the page then reads the whole inbox again), and a
/// send never waits for it.
pub const EVENTS_CAPACITY: usize = 256;

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
    /// Spent by its right code (not by wrong tries).
    pub(crate) verified: bool,
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

impl SentOtp {
    /// The OTP as read at `now`: whether it expired, how long it has left, its status.
    fn read_at(&self, now: Instant) -> SentOtp {
        let left = self.expires.map(|expires| expires.saturating_duration_since(now));
        let expired = left.is_some_and(|left| left.is_zero());
        let status = match (&self.check, expired) {
            (Check { verified: true, .. }, _) => OtpStatus::Verified,
            (Check { spent: true, .. }, _) => OtpStatus::Spent,
            (_, true) => OtpStatus::Expired,
            _ => OtpStatus::Pending,
        };
        let valid_for_ms = left.map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        SentOtp { expired, valid_for_ms, status, ..self.clone() }
    }
}

fn gateway_name<S: serde::Serializer>(gateway: &Gateway, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(gateway.as_str())
}

/// How many OTPs one number keeps (older ones are dropped with their references): every OTP
/// the limit lets each gateway send it within one window.
pub const OTPS_PER_NUMBER: usize = LIMIT * Gateway::ALL.len();
/// The default cap on the numbers the sandbox keeps. When every place is held by a number
/// with something live, a send to a new number is refused (HTTP 503) rather than evicting one.
pub const DEFAULT_MAX_NUMBERS: usize = 25_000;
/// The longest anything is kept after a number's last activity, whatever the validity
/// configured ("no expiry" included).
const MAX_RETENTION: Duration = Duration::from_secs(86_400);

/// One number's sends and OTPs.
#[derive(Default)]
struct Number {
    /// Its key in `Inner::by_activity`.
    activity: Option<(Instant, u64)>,
    /// Its key in `Inner::by_live_until`: until when it may hold something live (an unexpired
    /// OTP or a send inside the limit window). It only ever moves later, so it is never
    /// earlier than the truth, and eviction never drops a live number.
    live_until: Option<(Instant, u64)>,
    /// Send times per gateway, within the limit window.
    sends: Vec<(Gateway, VecDeque<Instant>)>,
    /// Its OTPs, oldest first, at most [`OTPS_PER_NUMBER`].
    otps: VecDeque<SentOtp>,
}

struct Inner {
    numbers: HashMap<String, Number>,
    /// Numbers by last activity, oldest first: the order of expiry by retention (and of the
    /// inbox without a number, newest last).
    by_activity: BTreeMap<(Instant, u64), String>,
    /// Numbers by the end of their live entries, earliest first: the only candidate for
    /// eviction is the first, and only once that end has passed.
    by_live_until: BTreeMap<(Instant, u64), String>,
    /// (gateway, reference) → the number it was issued to.
    references: HashMap<(Gateway, String), String>,
    next_tick: u64,
    max_numbers: usize,
    limit_window: Duration,
    retention: Duration,
    /// Sends to a new number refused because every place was held by a live number.
    refused_full: u64,
    /// The last OTP id given.
    last_id: u64,
    /// Pending OTPs by expiry (expiry, id, number): the next to announce as expired first.
    /// One entry per kept OTP at most, dropped with it.
    expiring: BTreeSet<(Instant, u64, String)>,
}

/// A send to a new number, refused: every place is held by a number with something live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full {
    /// The most numbers kept.
    pub(crate) max_numbers: usize,
    /// When the first place may free (the earliest end of a number's live entries).
    pub(crate) retry_after: Duration,
}

/// Whether a send may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Admitted,
    /// The number's own limit (the gateway's limit answer).
    OverLimit,
    /// A new number, and no place for it (HTTP 503).
    Full(Full),
}

/// Shared, thread-safe, bounded state: every entry expires with its window or validity, and
/// at most `max_numbers` numbers are kept. A new number takes the place of one with nothing
/// live left, never of a live one: when there is none, it is refused.
pub struct State {
    inner: Mutex<Inner>,
    /// Every change, for the inbox page's event streams (bounded; see [`EVENTS_CAPACITY`]).
    changes: tokio::sync::broadcast::Sender<Change>,
    /// Woken when an OTP expires earlier than any pending one did: the expiry announcer's
    /// alarm is then too late.
    pub(crate) earlier_expiry: tokio::sync::Notify,
}

impl Default for State {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_NUMBERS, LIMIT_WINDOW, LIMIT_WINDOW.max(OTP_VALIDITY))
    }
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }

    /// Drops the numbers idle for the retention, live or not (the one bound on time).
    fn sweep(&mut self, now: Instant) {
        while let Some((&(last, _), _)) = self.by_activity.first_key_value() {
            if now.saturating_duration_since(last) < self.retention {
                break;
            }
            if let Some((_, mobile)) = self.by_activity.pop_first() {
                self.forget(&mobile);
            }
        }
    }

    fn forget(&mut self, mobile: &str) {
        if let Some(number) = self.numbers.remove(mobile) {
            if let Some(key) = number.activity {
                self.by_activity.remove(&key);
            }
            if let Some(key) = number.live_until {
                self.by_live_until.remove(&key);
            }
            for otp in number.otps {
                if let Some(expires) = otp.expires {
                    self.expiring.remove(&(expires, otp.id, otp.mobile));
                }
                if let Some(reference) = otp.reference {
                    self.references.remove(&(otp.gateway, reference));
                }
            }
        }
    }

    /// A place for `mobile`: a number already kept has one; a new one at the cap takes the
    /// place of the number whose live entries ended first, if they have ended.
    fn make_room(&mut self, mobile: &str, now: Instant) -> Result<(), Full> {
        if self.numbers.len() < self.max_numbers || self.numbers.contains_key(mobile) {
            return Ok(());
        }
        let Some((&(until, _), _)) = self.by_live_until.first_key_value() else {
            // Every kept number has a key here: with none kept, the cap is not reached.
            return Ok(());
        };
        if until > now {
            self.refused_full += 1;
            return Err(Full { max_numbers: self.max_numbers, retry_after: until - now });
        }
        if let Some((_, evicted)) = self.by_live_until.pop_first() {
            self.forget(&evicted);
        }
        Ok(())
    }

    /// The number's entry, marked active now (created, with nothing live, if new).
    fn touch(&mut self, mobile: &str, now: Instant) -> &mut Number {
        let tick = self.tick();
        let number = self.numbers.entry(mobile.to_owned()).or_default();
        if let Some(previous) = number.activity.replace((now, tick)) {
            self.by_activity.remove(&previous);
        }
        if number.live_until.is_none() {
            number.live_until = Some((now, tick));
            self.by_live_until.insert((now, tick), mobile.to_owned());
        }
        self.by_activity.insert((now, tick), mobile.to_owned());
        // The borrow of `numbers` above ended with the inserts into the indexes.
        self.numbers.entry(mobile.to_owned()).or_default()
    }

    /// Marks the number live until `until` (`None`: no end), if that is later than now marked.
    /// Capped at the retention: by then the number is dropped anyway.
    fn live_until(&mut self, mobile: &str, now: Instant, until: Option<Instant>) {
        let cap = now.checked_add(self.retention);
        let Some(until) = (match (until, cap) {
            (Some(until), Some(cap)) => Some(until.min(cap)),
            (until, cap) => until.or(cap),
        }) else {
            return;
        };
        let tick = self.tick();
        let Some(number) = self.numbers.get_mut(mobile) else { return };
        if number.live_until.is_some_and(|(current, _)| current >= until) {
            return;
        }
        if let Some(previous) = number.live_until.replace((until, tick)) {
            self.by_live_until.remove(&previous);
        }
        self.by_live_until.insert((until, tick), mobile.to_owned());
    }
}

impl State {
    /// State keeping at most `max_numbers` numbers, each for `retention` after its last
    /// activity, with the send limit counted over `limit_window`.
    pub fn new(max_numbers: usize, limit_window: Duration, retention: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                numbers: HashMap::new(),
                by_activity: BTreeMap::new(),
                by_live_until: BTreeMap::new(),
                references: HashMap::new(),
                next_tick: 0,
                max_numbers: max_numbers.max(1),
                limit_window,
                retention: retention.min(MAX_RETENTION),
                refused_full: 0,
                last_id: 0,
                expiring: BTreeSet::new(),
            }),
            changes: tokio::sync::broadcast::channel(EVENTS_CAPACITY).0,
            earlier_expiry: tokio::sync::Notify::new(),
        }
    }

    /// The inbox's changes from now on.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells every event stream, if any; never waits for one (a full stream lags instead).
    fn publish(&self, change: impl FnOnce() -> Change) {
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(change());
        }
    }

    /// Announces the OTPs whose validity ended by `now`, and returns when the next one ends.
    pub(crate) fn announce_expired(&self, now: Instant) -> Option<Instant> {
        let mut expired = Vec::new();
        let next = {
            let mut inner = self.lock();
            while let Some(first) = inner.expiring.first() {
                if first.0 > now {
                    break;
                }
                let Some((_, id, mobile)) = inner.expiring.pop_first() else { break };
                let otp = inner.numbers.get(&mobile).and_then(|number| number.otps.iter().find(|otp| otp.id == id));
                expired.extend(otp.map(|otp| otp.read_at(now)));
            }
            inner.expiring.first().map(|(expires, _, _)| *expires)
        };
        for otp in expired {
            self.publish(|| Change::Updated(otp));
        }
        next
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a send attempt: admitted, over the number's limit, or refused for want of a
    /// place (a new number when every kept one is live; nothing is kept for it then).
    pub(crate) fn admit(&self, gateway: Gateway, mobile: &str) -> Admission {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep(now);
        if let Err(full) = inner.make_room(mobile, now) {
            return Admission::Full(full);
        }
        let window = inner.limit_window;
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
            while sends.front().is_some_and(|t| now.duration_since(*t) >= window) {
                sends.pop_front();
            }
            if sends.len() >= LIMIT {
                false
            } else {
                sends.push_back(now);
                true
            }
        };
        if !admitted {
            return Admission::OverLimit;
        }
        inner.live_until(mobile, now, now.checked_add(window));
        Admission::Admitted
    }

    /// How many sends to a new number were refused because every place was held by a live
    /// number.
    pub(crate) fn refused_full(&self) -> u64 {
        self.lock().refused_full
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
    ) -> Result<SentOtp, Full> {
        let now = SystemTime::now();
        let instant = Instant::now();
        // A century is "never" here; `Duration::MAX` must not overflow the clock arithmetic.
        let validity = validity.map(|v| v.min(Duration::from_secs(100 * 365 * 86_400)));
        let mut sent = SentOtp {
            id: 0,
            gateway,
            mobile: mobile.to_owned(),
            otp,
            reference,
            sent_at: otp_core::rfc3339_utc(now),
            expires_at: validity.map(|v| otp_core::rfc3339_utc(now + v)),
            expired: false,
            valid_for_ms: None,
            status: OtpStatus::Pending,
            expires: validity.and_then(|v| instant.checked_add(v)),
            sent: instant,
            check,
        };
        let mut inner = self.lock();
        inner.sweep(instant);
        // After `admit`, the number has a place; a send that skips it (a magic number's) may not.
        inner.make_room(mobile, instant)?;
        inner.last_id += 1;
        sent.id = inner.last_id;
        let number = inner.touch(mobile, instant);
        number.otps.push_back(sent.clone());
        let dropped = if number.otps.len() > OTPS_PER_NUMBER { number.otps.pop_front() } else { None };
        if let Some(dropped) = dropped {
            if let Some(expires) = dropped.expires {
                inner.expiring.remove(&(expires, dropped.id, dropped.mobile));
            }
            if let Some(reference) = dropped.reference {
                inner.references.remove(&(dropped.gateway, reference));
            }
        }
        if let Some(reference) = &sent.reference {
            inner.references.insert((gateway, reference.clone()), mobile.to_owned());
        }
        inner.live_until(mobile, instant, sent.expires);
        let earliest = match sent.expires {
            Some(expires) => {
                inner.expiring.insert((expires, sent.id, sent.mobile.clone()));
                inner.expiring.first().is_some_and(|(first, id, _)| (*first, *id) == (expires, sent.id))
            }
            None => false,
        };
        drop(inner);
        if earliest {
            self.earlier_expiry.notify_one();
        }
        self.publish(|| Change::Sent(sent.read_at(instant)));
        Ok(sent)
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
        inner.by_live_until.clear();
        inner.references.clear();
        inner.expiring.clear();
        drop(inner);
        self.publish(|| Change::Reset);
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
        let verdict = if issued.otp == code {
            issued.check.verified = true;
            Verdict::Verified
        } else {
            issued.check.wrong_tries += 1;
            Verdict::Wrong
        };
        if issued.check.verified || issued.check.wrong_tries >= MAX_WRONG_TRIES {
            issued.check.spent = true;
            let ended = issued.read_at(now);
            if let Some(expires) = ended.expires {
                inner.expiring.remove(&(expires, ended.id, ended.mobile.clone()));
            }
            drop(inner);
            self.publish(|| Change::Updated(ended));
        }
        verdict
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
        otps.into_iter().map(|otp| otp.read_at(now)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use futures_util::FutureExt as _;

    use super::*;

    /// Any one gateway: the state keeps every gateway's entries alike.
    const GATEWAY: Gateway = Gateway::ALL[0];

    /// A send and its OTP, valid for `validity`; whether it was admitted.
    fn send_valid_for(state: &State, mobile: &str, validity: Option<Duration>) -> Admission {
        let admission = state.admit(GATEWAY, mobile);
        if admission == Admission::Admitted {
            let reference = Some(format!("ref-{mobile}"));
            state.record(GATEWAY, mobile, reference, validity, "123456".into(), Check::default()).unwrap();
        }
        admission
    }

    fn send(state: &State, mobile: &str) -> Admission {
        send_valid_for(state, mobile, None)
    }

    fn assert_indexes_match(state: &State) {
        let inner = state.lock();
        let numbers = inner.numbers.len();
        assert_eq!(inner.by_activity.len(), numbers, "the activity index is bounded too");
        assert_eq!(inner.by_live_until.len(), numbers, "and the live index");
        assert!(inner.references.len() <= numbers * OTPS_PER_NUMBER, "and the reference index");
    }

    #[test]
    fn three_hundred_thousand_distinct_numbers_with_nothing_live_stay_under_the_cap() {
        // A zero window and zero validity: each number is dead as soon as it is sent to, so
        // each new one takes the place of the one whose life ended first.
        let state = State::new(10_000, Duration::ZERO, Duration::from_secs(600));
        for i in 0..300_000u32 {
            assert_eq!(send_valid_for(&state, &format!("7{i:09}"), Some(Duration::ZERO)), Admission::Admitted);
            if i % 50_000 == 0 {
                assert!(state.sizes().0 <= 10_000, "{:?} after {i}", state.sizes());
            }
        }
        assert_eq!(state.sizes(), (10_000, 10_000));
        assert_indexes_match(&state);
        assert_eq!(state.lock().references.len(), 10_000);
        assert!(state.otps(Some("7000000000"), 1).is_empty(), "the first to end made room first");
        assert_eq!(state.otps(Some("7000299999"), 1).len(), 1);
        assert_eq!(state.refused_full(), 0);
    }

    #[test]
    fn a_flood_of_new_numbers_is_refused_and_every_live_number_kept() {
        let state = State::new(1_000, LIMIT_WINDOW, LIMIT_WINDOW);
        for i in 0..1_000u32 {
            assert_eq!(send(&state, &format!("8{i:09}")), Admission::Admitted);
        }
        for i in 0..100_000u32 {
            match send(&state, &format!("7{i:09}")) {
                Admission::Full(full) => {
                    assert_eq!(full.max_numbers, 1_000);
                    assert!(full.retry_after > Duration::from_secs(590) && full.retry_after <= LIMIT_WINDOW);
                }
                other => panic!("new number #{i}: {other:?}"),
            }
        }
        assert_eq!(state.sizes(), (1_000, 1_000));
        assert_indexes_match(&state);
        assert_eq!(state.refused_full(), 100_000);
        // The kept numbers are still served, their limit counted.
        for _ in 1..LIMIT {
            assert_eq!(send(&state, "8000000000"), Admission::Admitted);
        }
        assert_eq!(send(&state, "8000000000"), Admission::OverLimit);
        assert_eq!(state.otps(Some("8000000999"), 1).len(), 1);
    }

    #[test]
    fn a_number_with_nothing_live_makes_room_however_recent_and_a_live_one_never_does() {
        let window = Duration::from_millis(200);
        let state = State::new(2, window, Duration::from_secs(600));
        // The older activity, but an OTP valid for ten minutes.
        assert_eq!(send_valid_for(&state, "7000000001", Some(Duration::from_secs(600))), Admission::Admitted);
        // More recent, but nothing live once the window and its 10 ms OTP are over.
        assert_eq!(send_valid_for(&state, "7000000002", Some(Duration::from_millis(10))), Admission::Admitted);
        assert!(matches!(send(&state, "7000000003"), Admission::Full(_)));
        std::thread::sleep(window + Duration::from_millis(100));
        assert_eq!(send(&state, "7000000003"), Admission::Admitted);
        assert_eq!(state.otps(Some("7000000001"), 1).len(), 1, "the live number stayed");
        assert!(state.otps(Some("7000000002"), 1).is_empty(), "the dead one made room");
        assert!(matches!(send(&state, "7000000004"), Admission::Full(_)), "both kept numbers are live");
        assert_indexes_match(&state);
    }

    #[test]
    fn a_send_over_its_limit_does_not_keep_a_number_live() {
        let window = Duration::from_millis(400);
        let state = State::new(1, window, Duration::from_secs(600));
        for _ in 0..LIMIT {
            assert_eq!(send_valid_for(&state, "7000000001", Some(Duration::ZERO)), Admission::Admitted);
        }
        std::thread::sleep(Duration::from_millis(250));
        // Refused, inside the window: it marks activity (for retention), not life.
        assert_eq!(state.admit(GATEWAY, "7000000001"), Admission::OverLimit);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(send(&state, "7000000002"), Admission::Admitted, "the window of the admitted sends is over");
    }

    #[test]
    fn a_recorded_otp_without_a_send_needs_a_place_too() {
        let state = State::new(1, LIMIT_WINDOW, LIMIT_WINDOW);
        assert_eq!(send(&state, "7000000001"), Admission::Admitted);
        let recorded = state.record(GATEWAY, "9000000005", None, None, "1".into(), Check::default());
        assert!(recorded.is_err());
        assert_eq!(state.sizes(), (1, 1));
        assert_eq!(state.refused_full(), 1);
    }

    #[test]
    fn entries_expire_with_their_window_without_another_send_to_the_same_number() {
        let state = State::new(1_000, Duration::from_millis(50), Duration::from_millis(50));
        send(&state, "7000000001");
        send(&state, "7000000002");
        std::thread::sleep(Duration::from_millis(80));
        send(&state, "7000000003");
        assert_eq!(state.sizes(), (1, 1), "the two idle numbers were swept by another number's send");
        assert_eq!(state.lock().references.len(), 1);
        assert_indexes_match(&state);
    }

    #[test]
    fn retention_drops_even_a_number_whose_otp_never_expires() {
        let state = State::new(1, Duration::from_millis(10), Duration::from_millis(200));
        assert_eq!(send_valid_for(&state, "7000000001", None), Admission::Admitted);
        assert!(matches!(send(&state, "7000000002"), Admission::Full(_)));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(send(&state, "7000000002"), Admission::Admitted);
        assert!(state.otps(Some("7000000001"), 1).is_empty());
    }

    #[test]
    fn a_reset_makes_room() {
        let state = State::new(1, LIMIT_WINDOW, LIMIT_WINDOW);
        assert_eq!(send(&state, "7000000001"), Admission::Admitted);
        assert!(matches!(send(&state, "7000000002"), Admission::Full(_)));
        state.reset();
        assert_eq!(send(&state, "7000000002"), Admission::Admitted);
        assert_indexes_match(&state);
    }

    fn next(changes: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
        changes.try_recv().unwrap()
    }

    #[test]
    fn a_send_a_verification_an_expiry_and_a_reset_each_announce_a_change() {
        let state = State::new(10, LIMIT_WINDOW, Duration::from_secs(600));
        let mut changes = state.subscribe();
        let issue = |mobile: &str, reference: &str, validity: Duration| {
            let check = Check::default();
            state.record(GATEWAY, mobile, Some(reference.into()), Some(validity), "123456".into(), check).unwrap()
        };
        let first = issue("7000000001", "r1", Duration::from_secs(600));
        let Change::Sent(sent) = next(&mut changes) else { panic!("a send is announced") };
        assert_eq!((sent.id, sent.status, sent.mobile.as_str()), (first.id, OtpStatus::Pending, "7000000001"));
        assert!(sent.valid_for_ms.is_some_and(|ms| ms > 599_000), "{sent:?}");

        assert_eq!(state.verify(GATEWAY, Find::LatestReference("r1"), "000000", None), Verdict::Wrong);
        assert!(changes.try_recv().is_err(), "a wrong try that leaves tries is no change of status");
        assert_eq!(state.verify(GATEWAY, Find::LatestReference("r1"), "123456", None), Verdict::Verified);
        let Change::Updated(verified) = next(&mut changes) else { panic!("a verification is announced") };
        assert_eq!((verified.id, verified.status), (first.id, OtpStatus::Verified));

        issue("7000000002", "r2", Duration::from_secs(600));
        next(&mut changes);
        for _ in 0..MAX_WRONG_TRIES {
            state.verify(GATEWAY, Find::LatestReference("r2"), "000000", None);
        }
        let Change::Updated(spent) = next(&mut changes) else { panic!("the last wrong try is announced") };
        assert_eq!(spent.status, OtpStatus::Spent);

        let short = issue("7000000003", "r3", Duration::from_millis(20));
        next(&mut changes);
        assert!(state.earlier_expiry.notified().now_or_never().is_some(), "the earliest expiry wakes the announcer");
        let next_expiry = state.announce_expired(Instant::now());
        assert!(changes.try_recv().is_err(), "nothing expired yet");
        assert!(next_expiry.is_some());
        std::thread::sleep(Duration::from_millis(30));
        let after = state.announce_expired(Instant::now());
        let Change::Updated(expired) = next(&mut changes) else { panic!("an expiry is announced") };
        assert_eq!((expired.id, expired.status, expired.valid_for_ms), (short.id, OtpStatus::Expired, Some(0)));
        assert_eq!(after, None, "verified and spent OTPs are not waited on; the expired one was announced once");
        assert_eq!(state.otps(Some("7000000003"), 1)[0].status, OtpStatus::Expired, "the inbox says the same");

        state.reset();
        assert!(matches!(next(&mut changes), Change::Reset));
        assert!(state.lock().expiring.is_empty());
    }

    #[test]
    fn the_expiry_index_drops_what_the_state_drops() {
        let state = State::new(1, Duration::ZERO, Duration::from_secs(600));
        for i in 0..(OTPS_PER_NUMBER + 3) {
            let validity = Some(Duration::from_secs(600));
            state.record(GATEWAY, "7000000001", Some(format!("r{i}")), validity, "1".into(), Check::default()).unwrap();
        }
        assert_eq!(state.lock().expiring.len(), OTPS_PER_NUMBER, "an OTP pushed out of its number goes");
        // A new number takes the place of the dead one (zero window, but live OTPs: refused).
        assert!(matches!(send_valid_for(&state, "7000000002", Some(Duration::ZERO)), Admission::Full(_)));
        state.reset();
        assert_eq!(send_valid_for(&state, "7000000002", Some(Duration::ZERO)), Admission::Admitted);
        assert_eq!(send_valid_for(&state, "7000000003", Some(Duration::ZERO)), Admission::Admitted);
        assert_eq!(state.lock().expiring.len(), 1, "the evicted number's OTP went with it");
    }

    #[test]
    fn a_number_keeps_at_most_its_latest_otps() {
        let state = State::new(10, LIMIT_WINDOW, Duration::from_secs(600));
        for i in 0..(OTPS_PER_NUMBER + 5) {
            let recorded =
                state.record(GATEWAY, "7000000001", Some(format!("r{i}")), None, "1".into(), Check::default());
            assert!(recorded.is_ok());
        }
        assert_eq!(state.sizes(), (1, OTPS_PER_NUMBER));
        assert_eq!(state.lock().references.len(), OTPS_PER_NUMBER);
        assert_eq!(
            state.otps(Some("7000000001"), 1)[0].reference.as_deref(),
            Some(format!("r{}", OTPS_PER_NUMBER + 4).as_str())
        );
    }
}
