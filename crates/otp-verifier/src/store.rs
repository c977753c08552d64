//! What a store does for the verifier: each decision that reads and writes is one atomic step.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use otp_core::{Error, MobileNumber};

use crate::id::VerificationId;
use crate::rules::{GuardRule, Limit};

/// Who a send is counted against. Stores keep these only hashed (Redis) or in process memory.
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
}

/// The answer to "take one try of this session".
#[derive(Debug)]
pub enum TryTaken {
    /// A try is reserved; the session's payload, and how many tries are now used.
    Taken { payload: Vec<u8>, tries_used: u32 },
    /// The session is over: every try used, or no such session (never, expired, verified or
    /// cancelled). A check answers the same for both.
    Over,
}

/// A unique mark of one admitted send, so that exactly that send can be given back.
pub type Ticket = u128;

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

    #[doc(hidden)]
    fn put_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        lifetime: Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    #[doc(hidden)]
    fn load_session(&self, id: &VerificationId) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;

    /// Replaces the payload and lifetime of a session that still exists; false when it is gone.
    #[doc(hidden)]
    fn replace_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        lifetime: Duration,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    #[doc(hidden)]
    fn take_try(&self, id: &VerificationId, max_tries: u32) -> impl Future<Output = Result<TryTaken, Error>> + Send;

    #[doc(hidden)]
    fn refund_try(&self, id: &VerificationId) -> impl Future<Output = Result<(), Error>> + Send;

    #[doc(hidden)]
    fn remove_session(&self, id: &VerificationId) -> impl Future<Output = Result<(), Error>> + Send;
}
