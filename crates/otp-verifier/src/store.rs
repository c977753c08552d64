//! What a store does for the verifier: each decision that reads and writes is one atomic step.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use otp_core::{Error, MobileNumber};
use zeroize::Zeroizing;

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

/// A stored session: its payload, the tries its checks have used, and its generation (raised
/// by every resend, so a check ends only the generation it read).
pub struct Loaded {
    pub(crate) payload: Zeroizing<Vec<u8>>,
    pub(crate) tries_used: u32,
    pub(crate) generation: u64,
}

/// The answer to "take one try of this session".
pub enum TryTaken {
    /// A try is reserved; the session as it stands with the try counted.
    Taken(Loaded),
    /// The session is over: every try used, or no such session (never, expired, verified or
    /// cancelled). A check answers the same for both.
    Over,
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

    /// Stores a new session (ids are random: a second call with the same id changes nothing).
    #[doc(hidden)]
    fn put_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        lifetime: Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    #[doc(hidden)]
    fn load_session(&self, id: &VerificationId) -> impl Future<Output = Result<Option<Loaded>, Error>> + Send;

    /// Raises the generation of a session that still exists, before a resend sends: a check
    /// of the code sent before then ends no session from now on. False when it is gone. The
    /// ticket makes a replay a no-op.
    #[doc(hidden)]
    fn claim_resend(&self, id: &VerificationId, ticket: Ticket) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Replaces the payload and lifetime of a session that still exists, keeping its tries and
    /// raising its generation again (a check that read the session between the claim and now
    /// read the old send's payload); false when it is gone. The ticket makes a replay a no-op.
    #[doc(hidden)]
    fn replace_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        lifetime: Duration,
        ticket: Ticket,
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

    /// Ends the session if it is of `generation`: true when it is gone now.
    #[doc(hidden)]
    fn end_session(
        &self,
        id: &VerificationId,
        generation: Generation,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Whether `error` (from this store) means the store could not be reached at all — the
    /// only failure for which the guard may fail open. A store that answered (with a script
    /// error, out of memory, busy) is not unreachable.
    #[doc(hidden)]
    fn unreachable(&self, error: &Error) -> bool {
        let _ = error;
        false
    }
}
