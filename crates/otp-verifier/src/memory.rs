//! The in-process store: one mutex around bounded maps. A guard decision holds the lock for a
//! few microseconds and never across an await, so one lock is simpler than sharding and not
//! what limits a gateway-bound service (figures: `cargo xtask bench`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use otp_core::Error;
use zeroize::Zeroizing;

use crate::events::Event;
use crate::id::VerificationId;
use crate::store::{
    Admission, Claim, Claimed, Counted, Ending, Generation, GuardKey, Lifetimes, Loaded, Lookup, Sealed, State, Store,
    Swept, Ticket, TryTaken,
};

/// The default most guard subjects (numbers, addresses, caller keys) kept: about 145 MiB when
/// full of subjects with one send each, 330 MiB when every one is at 10 sends (`cargo xtask
/// bench` measures the bytes per subject: docs/bench/verifier.txt). Only admitted
/// sends that went out fill it — an invalid or unsent request counts nowhere — and a number
/// stays a subject for 24 hours, an address for one: holding it full takes about 250,000 real
/// SMS a day to distinct numbers from tens of thousands of addresses, more than a merchant's
/// gateway contract sends in a day. Then new numbers are refused, never a live limit forgotten.
pub const DEFAULT_MAX_GUARD_KEYS: usize = 500_000;
/// The default most live sessions kept. Finished sessions' tombstones and idempotency keys are
/// bounded at four times as many each; when full, the oldest go first (a forgotten tombstone
/// answers "not found" instead of its state, a forgotten key no longer replays its answer).
pub const DEFAULT_MAX_SESSIONS: usize = 250_000;

/// How often a full store says so in the log (every refusal is counted by `otp.guard.full`).
const FULL_LOG_EVERY_MS: u64 = 60_000;

/// Sessions and guard counters in this process (the default store). Clones share one store:
/// give every `Verifier` of the process a clone, and the limits hold across all of them.
///
/// Bounded: at most `max_guard_keys` counted subjects and `max_sessions` sessions. The store
/// never forgets a live limit: only a subject with nothing left inside any of its windows
/// makes room, and only an expired session. When the bound is full of live subjects (or
/// sessions), a send that needs a new one is refused, unsent (fail closed: `transport`,
/// retryable), counted by `otp.guard.full` and logged at most once a minute: raise the bound.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<Tables>,
    epoch: Instant,
    max_guard_keys: usize,
    max_sessions: usize,
}

#[derive(Default)]
struct Tables {
    logs: HashMap<LogKey, Log>,
    /// (the moment nothing of the log is inside any window any more, subject): the subjects
    /// that may be forgotten come first, and only once that moment has passed.
    log_expiry: BTreeSet<(u64, LogKey)>,
    sessions: HashMap<[u8; 16], Session>,
    /// (expiry in ms, id): the session closest to expiry comes first.
    session_expiry: BTreeSet<(u64, [u8; 16])>,
    /// Finished sessions: state and record only, until their retention ends.
    tombstones: HashMap<[u8; 16], Tombstone>,
    tombstone_expiry: BTreeSet<(u64, [u8; 16])>,
    /// (expiry in ms, id): the sessions that ran out their lifetime pending and whose
    /// `expired` event no sweep has claimed yet. Each has its tombstone, and goes with it: at
    /// most as many as there are tombstones.
    unswept: BTreeSet<(u64, [u8; 16])>,
    /// Idempotency keys (their keyed hashes are not needed in one process: the key itself).
    keys: HashMap<Box<str>, KeyEntry>,
    key_expiry: BTreeSet<(u64, Box<str>)>,
    /// When a full store last said so in the log (ms), if ever.
    full_logged_ms: Option<u64>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum LogKey {
    Number([u8; 10]),
    ClientIp(IpAddr),
    CallerKey(Box<str>),
}

/// The sends of one subject within its longest window: a sliding log, so every window is exact.
/// Each send keeps its time and the low 64 bits of its ticket: enough to tell apart the few
/// sends of one subject (tickets are random), half the memory of the whole ticket.
struct Log {
    sends: VecDeque<(u64, u64)>,
    /// The longest window counted on this subject (ms).
    keep_ms: u64,
}

impl Log {
    /// When its newest send leaves the longest window: from then on it limits nothing.
    fn expires_ms(&self) -> Option<u64> {
        self.sends.back().map(|&(at, _)| at.saturating_add(self.keep_ms))
    }
}

struct Session {
    payload: Zeroizing<Vec<u8>>,
    tries_used: u32,
    /// Raised by a resend's claim before it sends and again when it replaces the payload.
    generation: u64,
    /// The generation the payload was written at: what a check reads, so a check of the old
    /// send's code, read between a resend's claim and its replacement, ends nothing.
    payload_generation: u64,
    expires_ms: u64,
    record: Zeroizing<Vec<u8>>,
    retention_ms: u64,
}

struct Tombstone {
    state: State,
    record: Zeroizing<Vec<u8>>,
    until_ms: u64,
    /// When it ran out its lifetime, while no sweep has claimed its `expired` event.
    unswept_ms: Option<u64>,
}

struct KeyEntry {
    request: Zeroizing<Vec<u8>>,
    answer: Option<Zeroizing<Vec<u8>>>,
    /// Until when its first call may still be running.
    leased_until_ms: u64,
    until_ms: u64,
}

impl Session {
    fn loaded(&self) -> Loaded {
        Loaded { payload: self.payload.clone(), tries_used: self.tries_used, generation: self.payload_generation }
    }
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
                state: Mutex::new(Tables::default()),
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

    #[cfg(feature = "test-util")]
    pub(crate) fn tombstones(&self) -> usize {
        self.lock().tombstones.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Nothing panics while holding the lock; should something, the maps are still whole.
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        millis(self.shared.epoch.elapsed())
    }

    fn bounds(&self) -> Bounds {
        Bounds { max_guard_keys: self.shared.max_guard_keys, max_sessions: self.shared.max_sessions }
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

/// The bounds a decision works within.
#[derive(Clone, Copy)]
struct Bounds {
    max_guard_keys: usize,
    max_sessions: usize,
}

impl Tables {
    /// The guard decision at `now` (ms): refused by the rule with the longest wait (the first
    /// of equals), refused as full when a new subject or session has no room that an expired
    /// one can make, or admitted and written to every subject's log.
    fn admit(&mut self, counted: &[Counted<'_>], ticket: Ticket, now: u64, bounds: Bounds) -> Admission {
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
        let new_subjects = keys.iter().filter(|key| !self.logs.contains_key(key)).count();
        if self.logs.len() + new_subjects > bounds.max_guard_keys {
            self.forget_spent_logs(now);
        }
        if self.sessions.len() >= bounds.max_sessions {
            self.forget_expired_sessions(now, bounds.max_tombstones());
        }
        if self.logs.len() + new_subjects > bounds.max_guard_keys || self.sessions.len() >= bounds.max_sessions {
            self.say_full(now);
            return Admission::Full;
        }
        for (subject, key) in counted.iter().zip(keys) {
            let keep_ms = millis(subject.longest_window());
            if let Some(expires) = self.logs.get(&key).and_then(Log::expires_ms) {
                self.log_expiry.remove(&(expires, key.clone()));
            }
            let log = self.logs.entry(key.clone()).or_insert_with(|| Log { sends: VecDeque::new(), keep_ms });
            // Verifiers with other rules may share a store: keep for the longest of them.
            log.keep_ms = log.keep_ms.max(keep_ms);
            while log.sends.front().is_some_and(|&(at, _)| at.saturating_add(log.keep_ms) <= now) {
                log.sends.pop_front();
            }
            log.sends.push_back((now, ticket as u64));
            let expires = now.saturating_add(log.keep_ms);
            self.log_expiry.insert((expires, key));
        }
        Admission::Admitted
    }

    /// Forgets the subjects none of whose sends is inside any window any more: they limit
    /// nothing, so forgetting them changes no decision.
    fn forget_spent_logs(&mut self, now: u64) {
        while let Some(&(expires, _)) = self.log_expiry.first() {
            if expires > now {
                break;
            }
            if let Some((_, key)) = self.log_expiry.pop_first() {
                self.logs.remove(&key);
            }
        }
    }

    /// Turns every live session whose lifetime has ended into an `expired` tombstone.
    fn forget_expired_sessions(&mut self, now: u64, max_tombstones: usize) {
        while self.session_expiry.first().is_some_and(|&(expires, _)| expires <= now) {
            // Taken out first: every turn makes progress, whatever the session table holds.
            let Some((_, id)) = self.session_expiry.pop_first() else { break };
            self.finish(&id, State::Expired, None, max_tombstones);
        }
    }

    /// Claims up to `limit` sessions that ran out their lifetime pending, each once: their
    /// ids and records. Live sessions past their lifetime become tombstones first, as any
    /// access would turn them.
    fn claim_expired(&mut self, now: u64, limit: usize, max_tombstones: usize) -> Vec<Swept> {
        while self.unswept.len() < limit && self.session_expiry.first().is_some_and(|&(expires, _)| expires <= now) {
            let Some((_, id)) = self.session_expiry.pop_first() else { break };
            self.finish(&id, State::Expired, None, max_tombstones);
        }
        let mut claimed = Vec::new();
        while claimed.len() < limit {
            let Some((_, id)) = self.unswept.pop_first() else { break };
            if let Some(tombstone) = self.tombstones.get_mut(&id) {
                tombstone.unswept_ms = None;
                claimed.push(Swept { id: VerificationId::from_bytes(id), record: tombstone.record.clone() });
            }
        }
        claimed
    }

    fn say_full(&mut self, now: u64) {
        metrics::counter!("otp.guard.full").increment(1);
        if self.full_logged_ms.is_none_or(|at| now.saturating_sub(at) >= FULL_LOG_EVERY_MS) {
            self.full_logged_ms = Some(now);
            tracing::error!(
                guard_keys = self.logs.len(),
                sessions = self.sessions.len(),
                "the memory store is full of live limits or sessions: new numbers are refused unsent until some expire; raise MemoryStore::with_bounds"
            );
        }
    }

    /// Takes `ticket`'s send out of each subject's log, and forgets a subject left empty.
    fn release(&mut self, counted: &[Counted<'_>], ticket: Ticket) {
        for subject in counted {
            let key = log_key(subject.key);
            let Some(log) = self.logs.get_mut(&key) else { continue };
            let before = log.expires_ms();
            log.sends.retain(|&(_, t)| t != ticket as u64);
            let after = log.expires_ms();
            if before == after {
                continue;
            }
            if let Some(expires) = before {
                self.log_expiry.remove(&(expires, key.clone()));
            }
            match after {
                Some(expires) => {
                    self.log_expiry.insert((expires, key));
                }
                None => {
                    self.logs.remove(&key);
                }
            }
        }
    }

    fn remove_session(&mut self, id: &[u8; 16]) -> Option<Session> {
        let session = self.sessions.remove(id)?;
        self.session_expiry.remove(&(session.expires_ms, *id));
        Some(session)
    }

    /// Ends a live session in `state`: its payload is dropped (and wiped), its record (`record`,
    /// or the one it had) kept as its tombstone until its retention ends. Without a `record`
    /// it ran out its lifetime, and waits for a sweep to report it expired.
    fn finish(&mut self, id: &[u8; 16], state: State, record: Option<&[u8]>, max_tombstones: usize) {
        let Some(session) = self.remove_session(id) else { return };
        let until_ms = session.expires_ms.saturating_add(session.retention_ms);
        let unswept_ms = record.is_none().then_some(session.expires_ms);
        let record = record.map_or(session.record, |r| Zeroizing::new(r.to_vec()));
        self.remove_tombstone(id);
        while self.tombstones.len() >= max_tombstones {
            let Some((_, oldest)) = self.tombstone_expiry.pop_first() else { break };
            // An unswept tombstone forgotten to make room takes its `expired` event with it.
            if let Some(Tombstone { unswept_ms: Some(expired_ms), .. }) = self.tombstones.remove(&oldest) {
                self.unswept.remove(&(expired_ms, oldest));
            }
        }
        self.tombstone_expiry.insert((until_ms, *id));
        if let Some(expired_ms) = unswept_ms {
            self.unswept.insert((expired_ms, *id));
        }
        self.tombstones.insert(*id, Tombstone { state, record, until_ms, unswept_ms });
    }

    fn remove_tombstone(&mut self, id: &[u8; 16]) {
        if let Some(tombstone) = self.tombstones.remove(id) {
            self.tombstone_expiry.remove(&(tombstone.until_ms, *id));
            if let Some(expired_ms) = tombstone.unswept_ms {
                self.unswept.remove(&(expired_ms, *id));
            }
        }
    }

    /// The live session, turning it into an `expired` tombstone when its lifetime has ended.
    fn live_session(&mut self, id: &[u8; 16], now: u64, max_tombstones: usize) -> Option<&mut Session> {
        if self.sessions.get(id).is_some_and(|s| s.expires_ms <= now) {
            self.finish(id, State::Expired, None, max_tombstones);
        }
        self.sessions.get_mut(id)
    }

    /// The tombstone, dropped when its retention has ended.
    fn tombstone(&mut self, id: &[u8; 16], now: u64) -> Option<&Tombstone> {
        if self.tombstones.get(id).is_some_and(|t| t.until_ms <= now) {
            self.remove_tombstone(id);
        }
        self.tombstones.get(id)
    }

    /// Stores a session. A full table was refused at the guard, before the send; only starts
    /// admitted together while it filled can pass the bound, by at most their number, so a live
    /// session is never dropped to make room.
    fn insert_session(&mut self, id: [u8; 16], session: Session, now: u64, bounds: Bounds) {
        self.remove_session(&id);
        if self.sessions.len() >= bounds.max_sessions {
            self.forget_expired_sessions(now, bounds.max_tombstones());
        }
        self.session_expiry.insert((session.expires_ms, id));
        self.sessions.insert(id, session);
    }

    fn forget_expired_keys(&mut self, now: u64) {
        while let Some((until, _)) = self.key_expiry.first() {
            if *until > now {
                break;
            }
            if let Some((_, key)) = self.key_expiry.pop_first() {
                self.keys.remove(&key);
            }
        }
    }
}

impl Bounds {
    fn max_tombstones(self) -> usize {
        self.max_sessions.saturating_mul(4)
    }
}

impl Sealed for MemoryStore {}

impl Store for MemoryStore {
    async fn admit(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<Admission, Error> {
        let now = self.now_ms();
        Ok(self.lock().admit(counted, ticket, now, self.bounds()))
    }

    async fn release(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<(), Error> {
        self.lock().release(counted, ticket);
        Ok(())
    }

    async fn put_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        record: &[u8],
        lifetimes: Lifetimes,
        _event: Option<&Event>,
    ) -> Result<(), Error> {
        let now = self.now_ms();
        let session = Session {
            payload: Zeroizing::new(payload.to_vec()),
            tries_used: 0,
            generation: 0,
            payload_generation: 0,
            expires_ms: now.saturating_add(millis(lifetimes.session)),
            record: Zeroizing::new(record.to_vec()),
            retention_ms: millis(lifetimes.retention),
        };
        let mut state = self.lock();
        if !state.sessions.contains_key(id.as_bytes()) && !state.tombstones.contains_key(id.as_bytes()) {
            state.insert_session(*id.as_bytes(), session, now, self.bounds());
        }
        Ok(())
    }

    async fn load_session(&self, id: &VerificationId) -> Result<Lookup, Error> {
        let now = self.now_ms();
        let max_tombstones = self.bounds().max_tombstones();
        let mut state = self.lock();
        if let Some(session) = state.live_session(id.as_bytes(), now, max_tombstones) {
            let (loaded, record) = (session.loaded(), session.record.clone());
            return Ok(Lookup::Live { loaded, record });
        }
        Ok(match state.tombstone(id.as_bytes(), now) {
            Some(tombstone) => Lookup::Finished { state: tombstone.state, record: tombstone.record.clone() },
            None => Lookup::Unknown,
        })
    }

    async fn claim_resend(&self, id: &VerificationId, _ticket: Ticket) -> Result<bool, Error> {
        // One process, no replays: the ticket matters only where a client may retry a call.
        let now = self.now_ms();
        let max_tombstones = self.bounds().max_tombstones();
        Ok(self.lock().live_session(id.as_bytes(), now, max_tombstones).map(|s| s.generation += 1).is_some())
    }

    async fn replace_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        record: &[u8],
        lifetimes: Lifetimes,
        _ticket: Ticket,
        _event: Option<&Event>,
    ) -> Result<bool, Error> {
        let now = self.now_ms();
        let bounds = self.bounds();
        let mut state = self.lock();
        let Some(live) = state.live_session(id.as_bytes(), now, bounds.max_tombstones()) else {
            return Ok(false);
        };
        let session = Session {
            payload: Zeroizing::new(payload.to_vec()),
            tries_used: live.tries_used,
            generation: live.generation + 1,
            payload_generation: live.generation + 1,
            expires_ms: now.saturating_add(millis(lifetimes.session)),
            record: Zeroizing::new(record.to_vec()),
            retention_ms: millis(lifetimes.retention),
        };
        state.insert_session(*id.as_bytes(), session, now, bounds);
        Ok(true)
    }

    async fn take_try(&self, id: &VerificationId, max_tries: u32, _ticket: Ticket) -> Result<TryTaken, Error> {
        let now = self.now_ms();
        let max_tombstones = self.bounds().max_tombstones();
        let mut state = self.lock();
        if let Some(session) = state.live_session(id.as_bytes(), now, max_tombstones) {
            if session.tries_used >= max_tries {
                return Ok(TryTaken::Spent);
            }
            session.tries_used += 1;
            return Ok(TryTaken::Taken(session.loaded()));
        }
        Ok(match state.tombstone(id.as_bytes(), now) {
            Some(tombstone) => TryTaken::Finished(tombstone.state),
            None => TryTaken::Unknown,
        })
    }

    async fn refund_try(&self, id: &VerificationId, _ticket: Ticket) -> Result<(), Error> {
        let now = self.now_ms();
        let max_tombstones = self.bounds().max_tombstones();
        if let Some(session) = self.lock().live_session(id.as_bytes(), now, max_tombstones) {
            session.tries_used = session.tries_used.saturating_sub(1);
        }
        Ok(())
    }

    async fn end_session(
        &self,
        id: &VerificationId,
        generation: Generation,
        state: State,
        record: &[u8],
        retention: Duration,
        _event: Option<&Event>,
    ) -> Result<Ending, Error> {
        let now = self.now_ms();
        let max_tombstones = self.bounds().max_tombstones();
        let mut tables = self.lock();
        let Some(session) = tables.live_session(id.as_bytes(), now, max_tombstones) else {
            return Ok(match tables.tombstone(id.as_bytes(), now) {
                Some(tombstone) => Ending::Finished(tombstone.state),
                None => Ending::Unknown,
            });
        };
        if let Generation::Only(read) = generation {
            if session.generation != read {
                return Ok(Ending::Newer);
            }
        }
        // Kept `retention` from now: a session ended early is remembered as long as one that ran out.
        let expires = std::mem::replace(&mut session.expires_ms, now);
        session.retention_ms = millis(retention);
        // Its place in the expiry index moves with it, so that nothing stale is left there.
        tables.session_expiry.remove(&(expires, *id.as_bytes()));
        tables.session_expiry.insert((now, *id.as_bytes()));
        tables.finish(id.as_bytes(), state, Some(record), max_tombstones);
        Ok(Ending::Ended)
    }

    async fn claim_expired(&self, limit: usize, _retention: Duration, _ticket: Ticket) -> Result<Claimed, Error> {
        // One mutex section: clones of this store (every verifier of the process) claim each once.
        let now = self.now_ms();
        let max_tombstones = self.bounds().max_tombstones();
        let expired = self.lock().claim_expired(now, limit.max(1), max_tombstones);
        Ok(Claimed { claimed: expired.len(), expired })
    }

    async fn claim_key(&self, key: &str, request: &[u8], lease: Duration, lifetime: Duration) -> Result<Claim, Error> {
        let now = self.now_ms();
        let max_keys = self.bounds().max_tombstones();
        let mut tables = self.lock();
        tables.forget_expired_keys(now);
        if let Some(entry) = tables.keys.get(key) {
            return Ok(if entry.request.as_slice() != request {
                Claim::Reused
            } else {
                match &entry.answer {
                    Some(answer) => Claim::Done(answer.clone()),
                    None if now < entry.leased_until_ms => Claim::InProgress,
                    None => Claim::Abandoned,
                }
            });
        }
        while tables.keys.len() >= max_keys {
            let Some((_, oldest)) = tables.key_expiry.pop_first() else { break };
            tables.keys.remove(&oldest);
        }
        let until_ms = now.saturating_add(millis(lifetime));
        tables.key_expiry.insert((until_ms, key.into()));
        let leased_until_ms = now.saturating_add(millis(lease));
        let entry = KeyEntry { request: Zeroizing::new(request.to_vec()), answer: None, leased_until_ms, until_ms };
        tables.keys.insert(key.into(), entry);
        Ok(Claim::Fresh)
    }

    async fn finish_key(&self, key: &str, answer: &[u8], ttl: Duration) -> Result<(), Error> {
        let until_ms = self.now_ms().saturating_add(millis(ttl));
        let mut tables = self.lock();
        let Some(entry) = tables.keys.get_mut(key) else { return Ok(()) };
        entry.answer = Some(Zeroizing::new(answer.to_vec()));
        let before = std::mem::replace(&mut entry.until_ms, until_ms);
        tables.key_expiry.remove(&(before, key.into()));
        tables.key_expiry.insert((until_ms, key.into()));
        Ok(())
    }

    async fn forget_key(&self, key: &str) -> Result<(), Error> {
        let mut tables = self.lock();
        if let Some(entry) = tables.keys.remove(key) {
            tables.key_expiry.remove(&(entry.until_ms, key.into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::{GuardRules, Subject};
    use otp_core::MobileNumber;

    const ROOMY: Bounds = Bounds { max_guard_keys: 10, max_sessions: 10 };

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
        let mut state = Tables::default();
        let counted = only(&number(1), &[(crate::GuardRule::Cooldown, 100, 1)]);
        assert_eq!(state.admit(&counted, 1, 1_000, ROOMY), Admission::Admitted);
        let refused = Admission::Refused { rule: crate::GuardRule::Cooldown, retry_after: Duration::from_millis(1) };
        assert_eq!(state.admit(&counted, 2, 1_099, ROOMY), refused);
        assert_eq!(state.admit(&counted, 3, 1_100, ROOMY), Admission::Admitted);
    }

    #[test]
    fn a_refusal_names_the_rule_with_the_longest_wait_and_the_first_of_equals() {
        use crate::GuardRule::{Cooldown, NumberShortWindow};
        let mut state = Tables::default();
        let counted = only(&number(1), &[(Cooldown, 100, 1), (NumberShortWindow, 1_000, 1)]);
        assert_eq!(state.admit(&counted, 1, 0, ROOMY), Admission::Admitted);
        let longest = Admission::Refused { rule: NumberShortWindow, retry_after: Duration::from_millis(950) };
        assert_eq!(state.admit(&counted, 2, 50, ROOMY), longest);
        let tied = only(&number(2), &[(Cooldown, 100, 1), (NumberShortWindow, 100, 1)]);
        assert_eq!(state.admit(&tied, 3, 0, ROOMY), Admission::Admitted);
        let first = Admission::Refused { rule: Cooldown, retry_after: Duration::from_millis(50) };
        assert_eq!(state.admit(&tied, 4, 50, ROOMY), first);
    }

    #[test]
    fn debug_and_len_count_what_the_store_holds_and_nothing_else() {
        let store = MemoryStore::new();
        assert!(store.is_empty());
        let mut state = store.lock();
        assert_eq!(
            state.admit(&only(&number(1), &[(crate::GuardRule::Cooldown, 100, 1)]), 1, 0, ROOMY),
            Admission::Admitted
        );
        drop(state);
        assert!(!store.is_empty());
        assert_eq!(format!("{store:?}"), "MemoryStore { guard_keys: 1, sessions: 0 }");
    }

    #[test]
    fn a_full_store_forgets_only_subjects_with_nothing_inside_a_window_and_else_refuses() {
        use crate::GuardRule::{Cooldown, NumberLongWindow};
        let bounds = Bounds { max_guard_keys: 3, max_sessions: 10 };
        let mut state = Tables::default();
        // A cooldown of 100 ms and 2 per 1,000 ms: each subject is live for 1,000 ms after its send.
        let limits = [(Cooldown, 100, 1), (NumberLongWindow, 1_000, 2)];
        for i in 0..3 {
            assert_eq!(state.admit(&only(&number(i), &limits), i as u128, i as u64, bounds), Admission::Admitted);
        }
        // Full of live subjects: a new one is refused, and nobody is forgotten.
        assert_eq!(state.admit(&only(&number(3), &limits), 3, 500, bounds), Admission::Full);
        assert_eq!(state.logs.len(), 3);
        // A known subject is still counted (and still limited) while the store is full.
        assert_eq!(state.admit(&only(&number(0), &limits), 4, 600, bounds), Admission::Admitted);
        assert!(matches!(
            state.admit(&only(&number(0), &limits), 5, 700, bounds),
            Admission::Refused { rule: NumberLongWindow, .. }
        ));
        // At 1,001 number 1's send (at 1) has left every window: it alone makes room.
        assert_eq!(state.admit(&only(&number(3), &limits), 6, 1_001, bounds), Admission::Admitted);
        let held: Vec<bool> = (0..4).map(|i| state.logs.contains_key(&log_key(GuardKey::Number(&number(i))))).collect();
        assert_eq!(held, [true, false, true, true]);
    }

    #[test]
    fn spent_subjects_are_forgotten_only_when_room_is_needed() {
        let bounds = Bounds { max_guard_keys: 3, max_sessions: 10 };
        let mut state = Tables::default();
        let limits = [(crate::GuardRule::Cooldown, 100, 1)];
        for i in 0..2 {
            assert_eq!(state.admit(&only(&number(i), &limits), i as u128, 0, bounds), Admission::Admitted);
        }
        // Both are spent at 1,000, but a third subject still fits: nothing is forgotten.
        assert_eq!(state.admit(&only(&number(2), &limits), 2, 1_000, bounds), Admission::Admitted);
        assert_eq!(state.logs.len(), 3);
        // A fourth needs room: the spent ones make it.
        assert_eq!(state.admit(&only(&number(3), &limits), 3, 1_000, bounds), Admission::Admitted);
        assert_eq!(state.logs.len(), 2);
    }

    #[test]
    fn a_store_full_of_live_sessions_refuses_new_sends_and_drops_none() {
        let bounds = Bounds { max_guard_keys: 10, max_sessions: 2 };
        let mut state = Tables::default();
        let session = |expires_ms| Session {
            payload: Zeroizing::new(vec![1]),
            tries_used: 0,
            generation: 0,
            payload_generation: 0,
            expires_ms,
            record: Zeroizing::new(vec![2]),
            retention_ms: 10,
        };
        state.insert_session([1; 16], session(1_000), 0, bounds);
        state.insert_session([2; 16], session(2_000), 0, bounds);
        let limits = [(crate::GuardRule::Cooldown, 100, 1)];
        assert_eq!(state.admit(&only(&number(1), &limits), 1, 500, bounds), Admission::Full);
        assert_eq!(state.sessions.len(), 2);
        // Once the first has expired, it makes room.
        assert_eq!(state.admit(&only(&number(1), &limits), 2, 1_000, bounds), Admission::Admitted);
        assert!(!state.sessions.contains_key(&[1; 16]) && state.sessions.contains_key(&[2; 16]));
        assert_eq!(state.tombstones.get(&[1; 16]).map(|t| t.state), Some(State::Expired), "it left a tombstone");
    }

    #[tokio::test]
    async fn an_emptied_subject_is_forgotten_when_its_send_is_given_back() {
        let store = MemoryStore::new();
        for i in 0..100 {
            assert_eq!(admit(&store, &number(i), i as u128).await, Admission::Admitted);
            let rules = GuardRules::default();
            let mobile = number(i);
            let counted = [Counted { key: GuardKey::Number(&mobile), limits: rules.limits_for(Subject::Number) }];
            store.release(&counted, i as u128).await.unwrap();
        }
        assert!(store.is_empty(), "{store:?}");
        assert!(store.lock().log_expiry.is_empty());
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
    async fn a_session_lives_and_leaves_a_tombstone() {
        crate::store::behaviour::a_session_lives_and_leaves_a_tombstone(MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn an_idempotency_key_is_claimed_once() {
        crate::store::behaviour::an_idempotency_key_is_claimed_once(MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn a_session_that_runs_out_is_claimed_once() {
        crate::store::behaviour::a_session_that_runs_out_is_claimed_once(MemoryStore::new()).await;
    }

    /// A session ended before its lifetime leaves nothing in the expiry index: a full store
    /// making room later finds only what is really there (it once spun on a stale entry).
    #[tokio::test]
    async fn a_session_ended_early_leaves_no_stale_expiry_behind() {
        let store = MemoryStore::with_bounds(10, 1);
        let short = Lifetimes { session: Duration::from_millis(30), retention: Duration::from_secs(60) };
        let long = Lifetimes { session: Duration::from_secs(60), retention: Duration::from_secs(60) };
        let early = VerificationId::random().unwrap();
        store.put_session(&early, b"p", b"r", short, None).await.unwrap();
        store.end_session(&early, Generation::Any, State::Approved, b"r", Duration::from_secs(60), None).await.unwrap();
        store.put_session(&VerificationId::random().unwrap(), b"p", b"r", long, None).await.unwrap();
        assert_eq!(store.lock().session_expiry.len(), 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(admit(&store, &number(1), 1).await, Admission::Full, "the one live session stays");
        assert!(store.claim_expired(10, Duration::from_secs(60), 2).await.unwrap().expired.is_empty());
    }

    #[tokio::test]
    async fn an_unswept_tombstone_forgotten_to_make_room_takes_its_index_entry_with_it() {
        let store = MemoryStore::with_bounds(10, 1);
        let short = Lifetimes { session: Duration::from_millis(10), retention: Duration::from_secs(60) };
        for _ in 0..10 {
            store.put_session(&VerificationId::random().unwrap(), b"p", b"r", short, None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        // Ten ran out; four tombstones fit (four per live session): the index holds those four.
        let unswept = store.lock().unswept.len();
        assert!(unswept <= 4, "{unswept}");
        let claimed = store.claim_expired(100, Duration::from_secs(60), 1).await.unwrap();
        assert_eq!(claimed.expired.len(), 4);
        assert!(store.lock().unswept.is_empty());
    }

    #[tokio::test]
    async fn tombstones_are_bounded_and_the_oldest_goes_first() {
        let store = MemoryStore::with_bounds(10, 1);
        let lifetimes = Lifetimes { session: Duration::from_secs(60), retention: Duration::from_secs(60) };
        let ids: Vec<VerificationId> = (0..5).map(|_| VerificationId::random().unwrap()).collect();
        for id in &ids {
            store.put_session(id, b"p", b"r", lifetimes, None).await.unwrap();
            let ending = store.end_session(id, Generation::Any, State::Approved, b"r2", Duration::from_secs(60), None);
            assert_eq!(ending.await.unwrap(), Ending::Ended);
        }
        // Four tombstones per live session allowed: one of the earliest to end made room.
        let mut kept = 0;
        for id in &ids {
            match store.load_session(id).await.unwrap() {
                Lookup::Finished { state: State::Approved, .. } => kept += 1,
                Lookup::Unknown => {}
                _ => panic!("a tombstone turned into something else"),
            }
        }
        assert_eq!(kept, 4);
        assert!(matches!(store.load_session(&ids[4]).await.unwrap(), Lookup::Finished { .. }), "the newest stays");
        // The count the bench reports (bytes per tombstone) is this one.
        #[cfg(feature = "test-util")]
        assert_eq!(crate::test_util::tombstones(&store), 4);
    }

    /// The memory store is never "unreachable", whatever the error: the guard never fails
    /// open on it.
    #[test]
    fn the_memory_store_is_never_unreachable() {
        let store = MemoryStore::new();
        for error in [Error::store_unavailable(otp_core::Reached::No, "x"), Error::configuration("y")] {
            assert!(!store.unreachable(&error), "{error}");
        }
    }

    /// An idempotency key is gone at its expiry's millisecond, as a Redis key with that TTL.
    #[test]
    fn an_idempotency_key_is_forgotten_at_its_expiry_to_the_millisecond() {
        let mut state = Tables::default();
        let entry =
            KeyEntry { request: Zeroizing::new(b"r".to_vec()), answer: None, leased_until_ms: 50, until_ms: 100 };
        state.keys.insert("k".into(), entry);
        state.key_expiry.insert((100, "k".into()));
        state.forget_expired_keys(99);
        assert!(state.keys.contains_key("k"));
        state.forget_expired_keys(100);
        assert!(state.keys.is_empty() && state.key_expiry.is_empty());
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
