//! The in-process store: one mutex around bounded maps. A guard decision holds the lock for a
//! few microseconds and never across an await, so one lock is simpler than sharding and not
//! what limits a gateway-bound service (figures: `cargo xtask bench`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use otp_core::Error;

use crate::id::VerificationId;
use crate::store::{Admission, Counted, GuardKey, Sealed, Store, Ticket, TryTaken};

/// The default most guard subjects (numbers, addresses, caller keys) kept: about 80 MiB when
/// full (measured by `cargo xtask bench`).
pub const DEFAULT_MAX_GUARD_KEYS: usize = 250_000;
/// The default most sessions kept.
pub const DEFAULT_MAX_SESSIONS: usize = 250_000;

/// Sessions and guard counters in this process (the default store). Clones share one store:
/// give every `Verifier` of the process a clone, and the limits hold across all of them.
///
/// Bounded: at most `max_guard_keys` counted subjects and `max_sessions` sessions. A full
/// table drops what is least useful first: sessions closest to expiry (expired ones first),
/// and the subjects whose last send is oldest. Limits stay exact while the table holds every
/// subject sent to within the longest window (24 h by default); beyond that the oldest are
/// forgotten, and `otp.guard.evictions` counts each one so the bound can be raised.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    epoch: Instant,
    max_guard_keys: usize,
    max_sessions: usize,
}

#[derive(Default)]
struct State {
    logs: HashMap<LogKey, Log>,
    /// (last send in ms, subject): the least recently sent subject comes first.
    log_activity: BTreeSet<(u64, LogKey)>,
    sessions: HashMap<[u8; 16], Session>,
    /// (expiry in ms, id): the session closest to expiry comes first.
    session_expiry: BTreeSet<(u64, [u8; 16])>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum LogKey {
    Number([u8; 10]),
    ClientIp(IpAddr),
    CallerKey(Box<str>),
}

/// The sends of one subject within its longest window: a sliding log, so every window is exact.
struct Log {
    sends: VecDeque<(u64, Ticket)>,
    last_ms: u64,
}

struct Session {
    payload: Vec<u8>,
    tries_used: u32,
    expires_ms: u64,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("guard_keys", &state.logs.len())
            .field("sessions", &state.sessions.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default bounds.
    pub fn new() -> Self {
        Self::with_bounds(DEFAULT_MAX_GUARD_KEYS, DEFAULT_MAX_SESSIONS)
    }

    /// A store keeping at most this many guard subjects and sessions (each at least 1).
    pub fn with_bounds(max_guard_keys: usize, max_sessions: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                epoch: Instant::now(),
                max_guard_keys: max_guard_keys.max(1),
                max_sessions: max_sessions.max(1),
            }),
        }
    }

    /// How many guard subjects and sessions it holds now.
    pub fn len(&self) -> (usize, usize) {
        let state = self.lock();
        (state.logs.len(), state.sessions.len())
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should something, the maps are still whole.
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        millis(self.shared.epoch.elapsed())
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn log_key(key: GuardKey<'_>) -> LogKey {
    match key {
        GuardKey::Number(mobile) => {
            let mut digits = [0u8; 10];
            digits.copy_from_slice(mobile.expose_digits().as_bytes());
            LogKey::Number(digits)
        }
        GuardKey::ClientIp(ip) => LogKey::ClientIp(ip),
        GuardKey::CallerKey(key) => LogKey::CallerKey(key.into()),
    }
}

/// The guard decision for one log at `now`: `Some(wait)` when `count` sends already fall in
/// the window. The send that must leave the window first is the `count - limit`-th oldest in it.
pub(crate) fn wait_for(sends_in_window: &[u64], limit: u32, window_ms: u64, now: u64) -> Option<u64> {
    let limit = limit as usize;
    if limit == 0 {
        return Some(window_ms.max(1));
    }
    if sends_in_window.len() < limit {
        return None;
    }
    let blocking = sends_in_window[sends_in_window.len() - limit];
    Some((blocking + window_ms).saturating_sub(now).max(1))
}

impl State {
    /// The guard decision at `now` (ms): refused by the rule with the longest wait (the first
    /// of equals), or admitted and written to every subject's log.
    fn admit(&mut self, counted: &[Counted<'_>], ticket: Ticket, now: u64, max_guard_keys: usize) -> Admission {
        let keys: Vec<LogKey> = counted.iter().map(|c| log_key(c.key)).collect();
        let mut refusal: Option<(crate::GuardRule, u64)> = None;
        for (subject, key) in counted.iter().zip(&keys) {
            let Some(log) = self.logs.get(key) else { continue };
            for &(rule, limit) in &subject.limits {
                let window_ms = millis(limit.window);
                let inside: Vec<u64> = log.sends.iter().map(|&(at, _)| at).filter(|&at| at + window_ms > now).collect();
                if let Some(wait) = wait_for(&inside, limit.count, window_ms, now) {
                    if refusal.is_none_or(|(_, longest)| wait > longest) {
                        refusal = Some((rule, wait));
                    }
                }
            }
        }
        if let Some((rule, wait)) = refusal {
            return Admission::Refused { rule, retry_after: Duration::from_millis(wait) };
        }
        for (subject, key) in counted.iter().zip(keys) {
            let keep_ms = millis(subject.longest_window());
            if !self.logs.contains_key(&key) && self.logs.len() >= max_guard_keys {
                self.evict_least_recent_log();
            }
            let previous = self.logs.get(&key).map(|log| log.last_ms);
            if let Some(last_ms) = previous {
                self.log_activity.remove(&(last_ms, key.clone()));
            }
            let log = self.logs.entry(key.clone()).or_insert_with(|| Log { sends: VecDeque::new(), last_ms: now });
            while log.sends.front().is_some_and(|&(at, _)| at + keep_ms <= now) {
                log.sends.pop_front();
            }
            log.sends.push_back((now, ticket));
            log.last_ms = now;
            self.log_activity.insert((now, key));
        }
        Admission::Admitted
    }

    fn evict_least_recent_log(&mut self) {
        if let Some((_, key)) = self.log_activity.pop_first() {
            self.logs.remove(&key);
            metrics::counter!("otp.guard.evictions").increment(1);
        }
    }

    fn remove_session(&mut self, id: &[u8; 16]) -> Option<Session> {
        let session = self.sessions.remove(id)?;
        self.session_expiry.remove(&(session.expires_ms, *id));
        Some(session)
    }

    /// The live session, removing it when it has expired.
    fn live_session(&mut self, id: &[u8; 16], now: u64) -> Option<&mut Session> {
        if self.sessions.get(id).is_some_and(|s| s.expires_ms <= now) {
            self.remove_session(id);
        }
        self.sessions.get_mut(id)
    }

    fn insert_session(&mut self, id: [u8; 16], session: Session, max_sessions: usize) {
        self.remove_session(&id);
        while self.sessions.len() >= max_sessions {
            match self.session_expiry.pop_first() {
                Some((_, oldest)) => {
                    self.sessions.remove(&oldest);
                }
                None => break,
            }
        }
        self.session_expiry.insert((session.expires_ms, id));
        self.sessions.insert(id, session);
    }
}

impl Sealed for MemoryStore {}

impl Store for MemoryStore {
    async fn admit(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<Admission, Error> {
        let now = self.now_ms();
        Ok(self.lock().admit(counted, ticket, now, self.shared.max_guard_keys))
    }

    async fn release(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<(), Error> {
        let mut state = self.lock();
        for subject in counted {
            if let Some(log) = state.logs.get_mut(&log_key(subject.key)) {
                log.sends.retain(|&(_, t)| t != ticket);
            }
        }
        Ok(())
    }

    async fn put_session(&self, id: &VerificationId, payload: &[u8], lifetime: Duration) -> Result<(), Error> {
        let expires_ms = self.now_ms().saturating_add(millis(lifetime));
        let session = Session { payload: payload.to_vec(), tries_used: 0, expires_ms };
        self.lock().insert_session(*id.as_bytes(), session, self.shared.max_sessions);
        Ok(())
    }

    async fn load_session(&self, id: &VerificationId) -> Result<Option<Vec<u8>>, Error> {
        let now = self.now_ms();
        Ok(self.lock().live_session(id.as_bytes(), now).map(|s| s.payload.clone()))
    }

    async fn replace_session(&self, id: &VerificationId, payload: &[u8], lifetime: Duration) -> Result<bool, Error> {
        let now = self.now_ms();
        let mut state = self.lock();
        let Some(tries_used) = state.live_session(id.as_bytes(), now).map(|s| s.tries_used) else {
            return Ok(false);
        };
        let session =
            Session { payload: payload.to_vec(), tries_used, expires_ms: now.saturating_add(millis(lifetime)) };
        state.insert_session(*id.as_bytes(), session, self.shared.max_sessions);
        Ok(true)
    }

    async fn take_try(&self, id: &VerificationId, max_tries: u32) -> Result<TryTaken, Error> {
        let now = self.now_ms();
        let mut state = self.lock();
        let Some(session) = state.live_session(id.as_bytes(), now) else { return Ok(TryTaken::Over) };
        if session.tries_used >= max_tries {
            return Ok(TryTaken::Over);
        }
        session.tries_used += 1;
        Ok(TryTaken::Taken { payload: session.payload.clone(), tries_used: session.tries_used })
    }

    async fn refund_try(&self, id: &VerificationId) -> Result<(), Error> {
        let now = self.now_ms();
        if let Some(session) = self.lock().live_session(id.as_bytes(), now) {
            session.tries_used = session.tries_used.saturating_sub(1);
        }
        Ok(())
    }

    async fn remove_session(&self, id: &VerificationId) -> Result<(), Error> {
        self.lock().remove_session(id.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::{GuardRules, Subject};
    use otp_core::MobileNumber;

    fn number(i: usize) -> MobileNumber {
        format!("98765{i:05}").parse().unwrap()
    }

    async fn admit(store: &MemoryStore, mobile: &MobileNumber, ticket: Ticket) -> Admission {
        let rules = GuardRules::default();
        let counted = [Counted { key: GuardKey::Number(mobile), limits: rules.limits_for(Subject::Number) }];
        store.admit(&counted, ticket).await.unwrap()
    }

    fn only(mobile: &MobileNumber, limits: &[(crate::GuardRule, u64, u32)]) -> [Counted<'static>; 1] {
        let mobile: &'static MobileNumber = Box::leak(Box::new(*mobile));
        let limits = limits
            .iter()
            .map(|&(rule, ms, count)| (rule, crate::Limit::new(count, Duration::from_millis(ms))))
            .collect();
        [Counted { key: GuardKey::Number(mobile), limits }]
    }

    #[test]
    fn a_send_leaves_the_window_the_moment_the_window_has_passed() {
        let mut state = State::default();
        let counted = only(&number(1), &[(crate::GuardRule::Cooldown, 100, 1)]);
        assert_eq!(state.admit(&counted, 1, 1_000, 10), Admission::Admitted);
        let refused = Admission::Refused { rule: crate::GuardRule::Cooldown, retry_after: Duration::from_millis(1) };
        assert_eq!(state.admit(&counted, 2, 1_099, 10), refused);
        assert_eq!(state.admit(&counted, 3, 1_100, 10), Admission::Admitted);
    }

    #[test]
    fn a_refusal_names_the_rule_with_the_longest_wait_and_the_first_of_equals() {
        use crate::GuardRule::{Cooldown, NumberShortWindow};
        let mut state = State::default();
        let counted = only(&number(1), &[(Cooldown, 100, 1), (NumberShortWindow, 1_000, 1)]);
        assert_eq!(state.admit(&counted, 1, 0, 10), Admission::Admitted);
        let longest = Admission::Refused { rule: NumberShortWindow, retry_after: Duration::from_millis(950) };
        assert_eq!(state.admit(&counted, 2, 50, 10), longest);
        let tied = only(&number(2), &[(Cooldown, 100, 1), (NumberShortWindow, 100, 1)]);
        assert_eq!(state.admit(&tied, 3, 0, 10), Admission::Admitted);
        let first = Admission::Refused { rule: Cooldown, retry_after: Duration::from_millis(50) };
        assert_eq!(state.admit(&tied, 4, 50, 10), first);
    }

    #[test]
    fn debug_and_len_count_what_the_store_holds_and_nothing_else() {
        let store = MemoryStore::new();
        assert!(store.is_empty());
        let mut state = store.lock();
        assert_eq!(
            state.admit(&only(&number(1), &[(crate::GuardRule::Cooldown, 100, 1)]), 1, 0, 10),
            Admission::Admitted
        );
        drop(state);
        assert!(!store.is_empty());
        assert_eq!(format!("{store:?}"), "MemoryStore { guard_keys: 1, sessions: 0 }");
    }

    #[tokio::test]
    async fn a_full_store_forgets_the_least_recently_sent_subject_first() {
        let store = MemoryStore::with_bounds(3, 10);
        for i in 0..3 {
            assert_eq!(admit(&store, &number(i), i as u128).await, Admission::Admitted);
        }
        // Number 0 is the least recently sent: a fourth subject pushes it out.
        assert_eq!(admit(&store, &number(3), 3).await, Admission::Admitted);
        assert_eq!(store.len().0, 3);
        assert_eq!(admit(&store, &number(0), 4).await, Admission::Admitted, "forgotten, so admitted again");
        // Numbers 2 and 3 are still held to their cooldown.
        assert!(matches!(
            admit(&store, &number(3), 5).await,
            Admission::Refused { rule: crate::GuardRule::Cooldown, .. }
        ));
        assert_eq!(store.len().0, 3);
    }

    #[tokio::test]
    async fn a_released_send_gives_its_place_back_and_only_its_own() {
        let store = MemoryStore::new();
        let mobile = number(1);
        let rules = GuardRules::default().cooldown(Duration::ZERO);
        let counted = [Counted { key: GuardKey::Number(&mobile), limits: rules.limits_for(Subject::Number) }];
        for ticket in 0..5 {
            assert_eq!(store.admit(&counted, ticket).await.unwrap(), Admission::Admitted);
        }
        assert!(matches!(store.admit(&counted, 5).await.unwrap(), Admission::Refused { .. }));
        store.release(&counted, 99).await.unwrap();
        assert!(
            matches!(store.admit(&counted, 6).await.unwrap(), Admission::Refused { .. }),
            "an unknown ticket frees nothing"
        );
        store.release(&counted, 2).await.unwrap();
        assert_eq!(store.admit(&counted, 7).await.unwrap(), Admission::Admitted);
    }

    #[tokio::test]
    async fn sessions_are_bounded_count_tries_and_expire() {
        let store = MemoryStore::with_bounds(10, 2);
        let ids: Vec<VerificationId> = (0..3).map(|_| VerificationId::random().unwrap()).collect();
        store.put_session(&ids[0], b"a", Duration::from_secs(60)).await.unwrap();
        store.put_session(&ids[1], b"b", Duration::from_secs(30)).await.unwrap();
        store.put_session(&ids[2], b"c", Duration::from_secs(90)).await.unwrap();
        // The one closest to expiry made room.
        assert_eq!(store.load_session(&ids[1]).await.unwrap(), None);
        assert_eq!(store.load_session(&ids[0]).await.unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(store.len().1, 2);

        for used in 1..=2 {
            assert!(
                matches!(store.take_try(&ids[0], 2).await.unwrap(), TryTaken::Taken { tries_used, .. } if tries_used == used)
            );
        }
        assert!(matches!(store.take_try(&ids[0], 2).await.unwrap(), TryTaken::Over));
        store.refund_try(&ids[0]).await.unwrap();
        assert!(matches!(store.take_try(&ids[0], 2).await.unwrap(), TryTaken::Taken { tries_used: 2, .. }));
        // A replaced session keeps its tries.
        assert!(store.replace_session(&ids[0], b"a2", Duration::from_secs(60)).await.unwrap());
        assert!(matches!(store.take_try(&ids[0], 2).await.unwrap(), TryTaken::Over));
        store.remove_session(&ids[0]).await.unwrap();
        assert!(matches!(store.take_try(&ids[0], 2).await.unwrap(), TryTaken::Over));
        assert!(!store.replace_session(&ids[0], b"a3", Duration::from_secs(60)).await.unwrap());

        store.put_session(&ids[1], b"b", Duration::from_millis(20)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(matches!(store.take_try(&ids[1], 2).await.unwrap(), TryTaken::Over));
    }

    #[test]
    fn the_wait_is_until_the_send_that_must_leave_the_window_leaves_it() {
        // 5 per 100 ms, sends at 10, 20, 30, 40, 50; at 60 the one at 10 leaves at 110.
        assert_eq!(wait_for(&[10, 20, 30, 40, 50], 5, 100, 60), Some(50));
        assert_eq!(wait_for(&[10, 20, 30, 40], 5, 100, 60), None);
        // A cooldown is one send per window: the newest decides.
        assert_eq!(wait_for(&[10, 20], 1, 30, 25), Some(25));
        // A limit of 0 refuses every send.
        assert_eq!(wait_for(&[], 0, 30, 25), Some(30));
    }
}
