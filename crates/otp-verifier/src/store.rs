//! What a store does for the verifier: each decision that reads and writes is one atomic step.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use otp_core::{Error, MobileNumber};
use zeroize::Zeroizing;

use crate::events::Event;
use crate::id::VerificationId;
use crate::rules::{GuardRule, Limit};

/// Who a send is counted against. Stores keep these only hashed (Redis) or in process memory.
/// A client address is already canonical (IPv4-mapped IPv6 as IPv4, IPv6 cut to its prefix).
#[derive(Clone, Copy)]
pub enum GuardKey<'a> {
    Number(&'a MobileNumber),
    ClientIp(IpAddr),
    CallerKey(&'a str),
}

/// One subject of a guard decision and the limits on it.
pub struct Counted<'a> {
    pub(crate) key: GuardKey<'a>,
    pub(crate) limits: Vec<(GuardRule, Limit)>,
}

impl Counted<'_> {
    /// How long this subject's log must be kept: its longest window.
    pub(crate) fn longest_window(&self) -> Duration {
        self.limits.iter().map(|(_, l)| l.window).max().unwrap_or_default()
    }
}

/// The guard's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted in every window; the send may go.
    Admitted,
    /// Refused by `rule`; every rule admits again after `retry_after`.
    Refused { rule: GuardRule, retry_after: Duration },
    /// The store is full of live limits (memory): a new subject cannot be counted without
    /// forgetting a live one, so the send is refused instead.
    Full,
}

/// A live session as stored: its payload, the tries its checks have used, and the generation
/// its payload was written at (a resend raises the session's generation when it claims it and
/// again when it replaces the payload, so a check ends only the generation whose code it
/// judged: one read between a claim and its replacement judged the old send's code).
pub struct Loaded {
    pub(crate) payload: Zeroizing<Vec<u8>>,
    pub(crate) tries_used: u32,
    pub(crate) generation: u64,
}

/// Where a verification stands, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Sent, waiting for the right code.
    Pending,
    /// The right code was checked.
    Approved,
    /// Cancelled by the application.
    Canceled,
    /// Its lifetime ended (or the gateway said the code expired) before the right code came.
    Expired,
    /// Every try was used on wrong codes.
    MaxAttemptsReached,
}

impl State {
    /// Every state, in a stable order (the Redis scripts store a state as its index).
    pub const ALL: [State; 5] =
        [State::Pending, State::Approved, State::Canceled, State::Expired, State::MaxAttemptsReached];

    /// The stable name: `pending`, `approved`, `canceled`, `expired`, `max_attempts_reached`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Canceled => "canceled",
            State::Expired => "expired",
            State::MaxAttemptsReached => "max_attempts_reached",
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // The Redis scripts store states by index.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_index(index: i64) -> Option<Self> {
        usize::try_from(index).ok().and_then(|i| Self::ALL.get(i).copied())
    }
}

/// What the store holds for an id.
pub enum Lookup {
    /// A live session and its record.
    Live { loaded: Loaded, record: Zeroizing<Vec<u8>> },
    /// A finished one (its tombstone: the state and the record, no payload).
    Finished { state: State, record: Zeroizing<Vec<u8>> },
    /// Never started, or past its retention.
    Unknown,
}

/// The answer to "take one try of this session".
pub enum TryTaken {
    /// A try is reserved; the session as it stands with the try counted.
    Taken(Loaded),
    /// Live, but every try is used (a check raced the one that spent it).
    Spent,
    /// Finished in this state.
    Finished(State),
    /// Never started, or past its retention.
    Unknown,
}

/// The answer to "end this session".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Ended now, in the state asked for.
    Ended,
    /// A newer generation (a resend) lives on; nothing changed.
    Newer,
    /// It had already finished, in this state.
    Finished(State),
    /// Never started, or past its retention.
    Unknown,
}

/// A unique mark of one call: of an admitted send, so exactly that send can be given back; of
/// a try or a replacement, so that a replayed script call (a client retry after a lost reply)
/// changes nothing the first did not.
pub type Ticket = u128;

/// Which generation of a session an ending applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Whatever it is now (a verified session ends, whatever was resent meanwhile).
    Any,
    /// Only this one: a newer generation (a resend in between) survives.
    Only(u64),
}

/// How long a session lives, and how long its tombstone is kept after that.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub(crate) session: Duration,
    pub(crate) retention: Duration,
}

/// What an idempotency key's first call left.
pub enum Claim {
    /// The key is new: this call goes ahead (and must `finish` or `forget` it).
    Fresh,
    /// The first call with this key is still running.
    InProgress,
    /// The first call's lease ran out before it finished (its process stopped): it may have
    /// sent, so the key never goes ahead again.
    Abandoned,
    /// The first call finished with this answer (sealed in Redis, as every value).
    Done(Zeroizing<Vec<u8>>),
    /// The key was used for a different request.
    Reused,
}

/// A session a sweep claimed that ran out its lifetime pending: its id and its record.
pub struct Swept {
    pub(crate) id: VerificationId,
    pub(crate) record: Zeroizing<Vec<u8>>,
}

/// What one claim of due sessions took: how many it claimed (each by this call alone), and
/// those of them that ran out their lifetime pending (the rest had ended otherwise, or are
/// gone with their retention).
pub struct Claimed {
    pub(crate) claimed: usize,
    pub(crate) expired: Vec<Swept>,
}

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// Where sessions and guard counters live: [`MemoryStore`](crate::MemoryStore), or
/// `RedisStore` (feature `redis`). Sealed: the verifier's guarantees rest on each method being
/// one atomic step, which these two provide.
pub trait Store: Sealed + Clone + Send + Sync + 'static {
    #[doc(hidden)]
    fn admit(&self, counted: &[Counted<'_>], ticket: Ticket) -> impl Future<Output = Result<Admission, Error>> + Send;

    #[doc(hidden)]
    fn release(&self, counted: &[Counted<'_>], ticket: Ticket) -> impl Future<Output = Result<(), Error>> + Send;

    /// Stores a new session and its record (ids are random: a second call with the same id
    /// changes nothing), with its `started` event where the store keeps events.
    #[doc(hidden)]
    fn put_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        record: &[u8],
        lifetimes: Lifetimes,
        event: Option<&Event>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    #[doc(hidden)]
    fn load_session(&self, id: &VerificationId) -> impl Future<Output = Result<Lookup, Error>> + Send;

    /// Raises the generation of a session that is still live, before a resend sends: a check
    /// of the code sent before then ends no session from now on. False when it is not live.
    /// The ticket makes a replay a no-op.
    #[doc(hidden)]
    fn claim_resend(&self, id: &VerificationId, ticket: Ticket) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Replaces the payload, record and lifetime of a session that is still live, keeping its
    /// tries and raising its generation again (a check that read the session between the claim
    /// and now read the old send's payload); false when it is not live. The ticket makes a
    /// replay a no-op. `event` (`resent`) is recorded only when the session was replaced.
    #[doc(hidden)]
    fn replace_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        record: &[u8],
        lifetimes: Lifetimes,
        ticket: Ticket,
        event: Option<&Event>,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    #[doc(hidden)]
    fn take_try(
        &self,
        id: &VerificationId,
        max_tries: u32,
        ticket: Ticket,
    ) -> impl Future<Output = Result<TryTaken, Error>> + Send;

    /// Gives back the try `ticket` took, once.
    #[doc(hidden)]
    fn refund_try(&self, id: &VerificationId, ticket: Ticket) -> impl Future<Output = Result<(), Error>> + Send;

    /// Ends a live session of `generation` in `state`: its payload goes, its record (`record`,
    /// no personal data) stays for `retention` as its tombstone. `event` is recorded only when
    /// this call ended it ([`Ending::Ended`]).
    #[doc(hidden)]
    fn end_session(
        &self,
        id: &VerificationId,
        generation: Generation,
        state: State,
        record: &[u8],
        retention: Duration,
        event: Option<&Event>,
    ) -> impl Future<Output = Result<Ending, Error>> + Send;

    /// Claims up to `limit` sessions whose lifetime has ended, each for exactly one caller
    /// however many instances sweep the store at once. `retention` bounds the store's index
    /// of expiries (what it keeps of a session it cannot claim yet); the ticket makes a replay
    /// answer the first run's claim.
    #[doc(hidden)]
    fn claim_expired(
        &self,
        limit: usize,
        retention: Duration,
        ticket: Ticket,
    ) -> impl Future<Output = Result<Claimed, Error>> + Send;

    /// Claims an idempotency key for a call with this request (compared whole in memory, as
    /// a keyed hash in Redis), leased for `lease` until the call finishes, and kept `lifetime`:
    /// a claim whose lease ran out unfinished is abandoned, never fresh again (its call may
    /// have sent).
    #[doc(hidden)]
    fn claim_key(
        &self,
        key: &str,
        request: &[u8],
        lease: Duration,
        lifetime: Duration,
    ) -> impl Future<Output = Result<Claim, Error>> + Send;

    /// Records the answer of the call that claimed `key` (what replays answer).
    #[doc(hidden)]
    fn finish_key(&self, key: &str, answer: &[u8], ttl: Duration) -> impl Future<Output = Result<(), Error>> + Send;

    /// Lets `key` go: its call sent nothing, so a retry may try again.
    #[doc(hidden)]
    fn forget_key(&self, key: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether this store keeps a record of events (a Redis Stream): then the verifier hands it
    /// each state change's event — with the step that makes the change where the store can
    /// write both at once, through [`Store::append_events`] otherwise.
    #[doc(hidden)]
    fn keeps_events(&self) -> bool {
        false
    }

    /// Records events of changes that have no store step of their own (a wrong code, a failed
    /// send, a sweep's expiries) before the call that made them returns. Never fails: what
    /// cannot be written is dropped, counted and logged.
    #[doc(hidden)]
    fn append_events(&self, events: &[Event]) -> impl Future<Output = ()> + Send {
        let _ = events;
        std::future::ready(())
    }

    /// Whether `error` (from this store) means the store could not be reached at all — the
    /// only failure for which the guard may fail open. A store that answered (with a script
    /// error, out of memory, busy) is not unreachable.
    #[doc(hidden)]
    fn unreachable(&self, error: &Error) -> bool {
        let _ = error;
        false
    }
}

/// The behaviour every store must show, run by each store's tests (OpenDAL's behaviour tests
/// are the model): a new store that forgets one of these fails its own test run.
#[cfg(test)]
pub(crate) mod behaviour {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;

    const MINUTE: Duration = Duration::from_secs(60);

    fn tries(taken: TryTaken) -> Result<(u32, u64), &'static str> {
        match taken {
            TryTaken::Taken(loaded) => Ok((loaded.tries_used, loaded.generation)),
            TryTaken::Spent => Err("spent"),
            TryTaken::Finished(state) => Err(state.as_str()),
            TryTaken::Unknown => Err("unknown"),
        }
    }

    fn live(lookup: Lookup) -> (Vec<u8>, u32, u64, Vec<u8>) {
        match lookup {
            Lookup::Live { loaded, record } => {
                (loaded.payload.to_vec(), loaded.tries_used, loaded.generation, record.to_vec())
            }
            Lookup::Finished { state, .. } => panic!("finished: {}", state.as_str()),
            Lookup::Unknown => panic!("unknown"),
        }
    }

    pub(crate) async fn a_session_lives_and_leaves_a_tombstone<S: Store>(store: S) {
        let lifetimes = Lifetimes { session: MINUTE, retention: MINUTE };
        let id = VerificationId::random().unwrap();
        assert!(matches!(store.load_session(&id).await.unwrap(), Lookup::Unknown));
        assert!(matches!(store.take_try(&id, 5, 1).await.unwrap(), TryTaken::Unknown));
        assert_eq!(
            store.end_session(&id, Generation::Any, State::Canceled, b"x", MINUTE, None).await.unwrap(),
            Ending::Unknown
        );
        store.put_session(&id, b"first", b"rec1", lifetimes, None).await.unwrap();
        store.put_session(&id, b"again", b"rec?", lifetimes, None).await.unwrap();
        assert_eq!(
            live(store.load_session(&id).await.unwrap()),
            (b"first".to_vec(), 0, 0, b"rec1".to_vec()),
            "put once"
        );

        assert_eq!(tries(store.take_try(&id, 2, 10).await.unwrap()), Ok((1, 0)));
        assert_eq!(tries(store.take_try(&id, 2, 11).await.unwrap()), Ok((2, 0)));
        assert_eq!(tries(store.take_try(&id, 2, 12).await.unwrap()), Err("spent"));
        store.refund_try(&id, 11).await.unwrap();
        assert_eq!(tries(store.take_try(&id, 2, 13).await.unwrap()), Ok((2, 0)));

        // A resend claims the next generation and its replacement the one after; tries stay. A
        // check that reads the session in between reads the old payload's generation: its
        // ending (the old code judged expired by a gateway that knows of the new send) ends
        // nothing, and the resend's replacement lands.
        assert!(store.claim_resend(&id, 20).await.unwrap());
        assert_eq!(tries(store.take_try(&id, 3, 14).await.unwrap()), Ok((3, 0)), "the old payload's generation");
        store.refund_try(&id, 14).await.unwrap();
        assert_eq!(
            store.end_session(&id, Generation::Only(0), State::Expired, b"x", MINUTE, None).await.unwrap(),
            Ending::Newer,
            "a resend is on its way"
        );
        assert!(store.replace_session(&id, b"second", b"rec2", lifetimes, 21, None).await.unwrap());
        assert_eq!(live(store.load_session(&id).await.unwrap()), (b"second".to_vec(), 2, 2, b"rec2".to_vec()));
        assert_eq!(
            store.end_session(&id, Generation::Only(1), State::Expired, b"x", MINUTE, None).await.unwrap(),
            Ending::Newer
        );
        assert_eq!(
            store.end_session(&id, Generation::Only(2), State::Approved, b"done", MINUTE, None).await.unwrap(),
            Ending::Ended
        );
        match store.load_session(&id).await.unwrap() {
            Lookup::Finished { state, record } => {
                assert_eq!((state, record.as_slice()), (State::Approved, &b"done"[..]))
            }
            _ => panic!("an approved session leaves its tombstone"),
        }
        assert_eq!(tries(store.take_try(&id, 2, 30).await.unwrap()), Err("approved"));
        assert_eq!(
            store.end_session(&id, Generation::Any, State::Canceled, b"x", MINUTE, None).await.unwrap(),
            Ending::Finished(State::Approved),
            "a finished session stays as it ended"
        );
        assert!(!store.claim_resend(&id, 31).await.unwrap());
        assert!(!store.replace_session(&id, b"third", b"rec3", lifetimes, 32, None).await.unwrap());

        // A session that runs out its lifetime is expired, and its tombstone goes with its retention.
        let short = Lifetimes { session: Duration::from_millis(30), retention: Duration::from_millis(300) };
        let id = VerificationId::random().unwrap();
        store.put_session(&id, b"p", b"r", short, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(store.load_session(&id).await.unwrap(), Lookup::Finished { state: State::Expired, .. }));
        assert_eq!(tries(store.take_try(&id, 2, 40).await.unwrap()), Err("expired"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(matches!(store.load_session(&id).await.unwrap(), Lookup::Unknown));
    }

    fn ids(claimed: &Claimed) -> HashSet<VerificationId> {
        claimed.expired.iter().map(|swept| swept.id.clone()).collect()
    }

    /// A session that runs out its lifetime pending is claimed once, with its record; one that
    /// ended otherwise, or was extended by a resend, is not (yet).
    pub(crate) async fn a_session_that_runs_out_is_claimed_once<S: Store>(store: S) {
        let short = Lifetimes { session: Duration::from_millis(200), retention: MINUTE };
        let (ran_out, ended, extended, looked_at) = (
            VerificationId::random().unwrap(),
            VerificationId::random().unwrap(),
            VerificationId::random().unwrap(),
            VerificationId::random().unwrap(),
        );
        for id in [&ran_out, &ended, &extended, &looked_at] {
            store.put_session(id, b"p", b"rec", short, None).await.unwrap();
        }
        let nothing = store.claim_expired(10, MINUTE, 1).await.unwrap();
        assert_eq!((nothing.claimed, nothing.expired.len()), (0, 0), "nothing is due yet");
        store.end_session(&ended, Generation::Any, State::Approved, b"done", MINUTE, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.claim_resend(&extended, 2).await.unwrap());
        let long = Lifetimes { session: MINUTE, retention: MINUTE };
        assert!(store.replace_session(&extended, b"p2", b"rec2", long, 3, None).await.unwrap());
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Read after its lifetime (the memory store turns it into a tombstone then): still claimed once.
        assert!(matches!(
            store.load_session(&looked_at).await.unwrap(),
            Lookup::Finished { state: State::Expired, .. }
        ));

        let first = store.claim_expired(10, MINUTE, 4).await.unwrap();
        assert_eq!(ids(&first), HashSet::from([ran_out.clone(), looked_at.clone()]));
        assert!(first.expired.iter().all(|swept| swept.record.as_slice() == b"rec"), "each with its record");
        let again = store.claim_expired(10, MINUTE, 5).await.unwrap();
        assert!(again.expired.is_empty(), "claimed once");
        assert!(matches!(store.load_session(&ran_out).await.unwrap(), Lookup::Finished { state: State::Expired, .. }));
        assert!(matches!(store.load_session(&extended).await.unwrap(), Lookup::Live { .. }), "the resend lives on");

        // A limit claims that many, the next claim the rest.
        let ids_due: Vec<VerificationId> = (0..5).map(|_| VerificationId::random().unwrap()).collect();
        let tiny = Lifetimes { session: Duration::from_millis(30), retention: MINUTE };
        for id in &ids_due {
            store.put_session(id, b"p", b"r", tiny, None).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
        let some = store.claim_expired(3, MINUTE, 6).await.unwrap();
        let rest = store.claim_expired(3, MINUTE, 7).await.unwrap();
        assert_eq!((some.claimed, some.expired.len(), rest.expired.len()), (3, 3, 2));
        let all: HashSet<VerificationId> = ids(&some).union(&ids(&rest)).cloned().collect();
        assert_eq!(all, ids_due.into_iter().collect());
    }

    pub(crate) async fn an_idempotency_key_is_claimed_once<S: Store>(store: S) {
        let claim = |key: &'static str, request: &'static [u8], lease: Duration| {
            let store = store.clone();
            async move { store.claim_key(key, request, lease, MINUTE).await.unwrap() }
        };
        assert!(matches!(claim("k1", b"request", MINUTE).await, Claim::Fresh));
        assert!(matches!(claim("k1", b"request", MINUTE).await, Claim::InProgress));
        assert!(matches!(claim("k1", b"another", MINUTE).await, Claim::Reused));
        store.finish_key("k1", b"answer", MINUTE).await.unwrap();
        match claim("k1", b"request", MINUTE).await {
            Claim::Done(answer) => assert_eq!(answer.as_slice(), b"answer"),
            _ => panic!("a finished key answers its first call's answer"),
        }
        assert!(matches!(claim("k2", b"request", MINUTE).await, Claim::Fresh), "keys apart");
        store.forget_key("k2").await.unwrap();
        assert!(matches!(claim("k2", b"request", MINUTE).await, Claim::Fresh), "forgotten");
        // A lease that ends unfinished (its call's process died) abandons the key: its call may
        // have sent, so no retry goes ahead under it — until the key's lifetime ends.
        assert!(matches!(claim("k3", b"request", Duration::from_millis(30)).await, Claim::Fresh));
        assert!(matches!(claim("k3", b"request", MINUTE).await, Claim::InProgress));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(claim("k3", b"request", MINUTE).await, Claim::Abandoned));
        assert!(matches!(claim("k3", b"another", MINUTE).await, Claim::Reused), "a reuse says so still");
        let brief = store.claim_key("k4", b"request", Duration::from_millis(10), Duration::from_millis(40));
        assert!(matches!(brief.await.unwrap(), Claim::Fresh));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(matches!(claim("k4", b"request", MINUTE).await, Claim::Fresh), "gone with its lifetime");
    }
}
