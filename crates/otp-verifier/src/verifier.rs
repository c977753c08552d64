//! The verifier: start, check, resend and cancel, with the guard in front of every send.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otp_core::{
    Error, ErrorKind, Gateway, MobileNumber, OtpCode, Outcome, Reached, SecretString, SendReceipt, VerifyReceipt,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tracing::field::Empty;
use tracing::Instrument as _;
use zeroize::Zeroizing;

use crate::events::{Event, EventKind, EventSink};
use crate::id::{random_bytes, VerificationId};
use crate::rules::{Context, GuardRules, Subject};
use crate::store::{
    Admission, Claim, Counted, Ending, Generation, GuardKey, Lifetimes, Loaded, Lookup, State, Store, Ticket, TryTaken,
};
use crate::MemoryStore;

/// One span per operation, its fields filled in as it ends (docs/telemetry.md).
macro_rules! verifier_span {
    ($name:literal, $verifier:expr) => {
        tracing::info_span!(
            $name,
            otp.gateway = $verifier.gateway.gateway().as_str(),
            otp.outcome = Empty,
            error.type = Empty,
            otp.guard.rule = Empty,
            otp.test_number = Empty
        )
    };
}

/// What the verifier needs of a gateway client: `otp::GatewayClient` implements it (feature
/// `verifier` of `otp`), so applications rarely write their own.
pub trait SessionGateway: Clone + Send + Sync + 'static {
    /// What a start sends, kept in the session for resends and checks. Its serialised form is
    /// personal data in clear: stores seal it (Redis) or keep it in process memory.
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a check sends.
    type VerifyRequest: Send + Sync;

    /// The gateway this client sends through.
    fn gateway(&self) -> Gateway;

    /// How long the gateway's OTP stays valid: the default session lifetime.
    fn otp_validity(&self) -> Duration;

    /// The number a request sends to.
    fn mobile(request: &Self::Request) -> &MobileNumber;

    /// Checks `request` as the gateway's send would (`invalid_request` when it would refuse
    /// it), without sending: the verifier calls it before the guard counts anything, so a
    /// request that could never be sent costs no place in any limit and leaves no trace.
    fn validate(request: &Self::Request) -> Result<(), Error>;

    /// Sends one OTP.
    fn send(&self, request: &Self::Request) -> impl Future<Output = Result<SendReceipt, Error>> + Send;

    /// The check of `code` for a session that sent `request` and got `sent`; `invalid_request`
    /// when the gateway has no verify call for this OTP (a transaction OTP).
    fn verify_request(request: &Self::Request, sent: &Sent, code: OtpCode) -> Result<Self::VerifyRequest, Error>;

    /// Verifies one code.
    fn verify(&self, request: &Self::VerifyRequest) -> impl Future<Output = Result<VerifyReceipt, Error>> + Send;

    /// Whether `request` may be sent again for a resend: `invalid_request` where the gateway
    /// wants a new request instead (iServeU: a new `externalRefNumber` per transaction OTP).
    fn check_resend(request: &Self::Request) -> Result<(), Error> {
        let _ = request;
        Ok(())
    }
}

/// What the latest send of a session returned: what its check needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sent {
    /// The gateway's reference (PhonePe `otpToken`, Paytm `state_token`, AOPay `stateresp`).
    pub reference: Option<SecretString>,
    /// How the send succeeded (AOPay: sent for registration, or for a transaction).
    pub outcome: Outcome,
}

/// How long a finished verification's tombstone is kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an idempotency key replays its first call's answer.
pub const IDEMPOTENCY_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long an idempotency key's first call may run: longer than any send's deadline, so only a
/// call whose process died outlives it. Its key is then abandoned — refused, never run again,
/// for the key's lifetime — since that call may have sent.
const IDEMPOTENCY_LEASE: Duration = Duration::from_secs(120);
/// How many due sessions one claim of a sweep takes (a sweep claims until none is left).
const SWEEP_BATCH: usize = 500;

/// A session as stored: what a resend and a check need (personal data: sealed in Redis).
#[derive(Serialize, Deserialize)]
struct SessionData<R> {
    request: R,
    sent: Sent,
    record: Record,
}

/// What status tells about a verification, and all its tombstone keeps: no number, request,
/// reference or credential. Times in ms since the Unix epoch, by the instance's clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    gateway: Gateway,
    outcome: Outcome,
    sends: u32,
    created_ms: u64,
    last_send_ms: u64,
    expires_ms: u64,
    ended_ms: Option<u64>,
    test: bool,
    /// `Context::tenant` of the start (records written before tenants were kept have none).
    #[serde(default)]
    tenant: Option<Box<str>>,
}

impl Record {
    fn marks(&self) -> Marks {
        Marks { test: self.test, tenant: self.tenant.clone() }
    }
}

/// What every event of a verification carries from its start: a test number's mark, the tenant.
#[derive(Clone)]
struct Marks {
    test: bool,
    tenant: Option<Box<str>>,
}

/// A started (or resent) verification.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Started {
    /// The session's id: hand it to the client for the check.
    pub id: VerificationId,
    /// The gateway that sent.
    pub gateway: Gateway,
    /// How the send succeeded.
    pub outcome: Outcome,
    /// When the session ends (by this process's clock).
    pub expires_at: SystemTime,
    /// The least time before a resend is admitted (the cooldown).
    pub resend_after: Duration,
    /// A test number's verification: no gateway was called.
    pub test: bool,
    /// This is the answer of an earlier call with the same idempotency key: nothing was sent now.
    pub replayed: bool,
}

/// The answer to a check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Check {
    /// The code matched; the session is over. The gateway's credential (PhonePe
    /// `userAuthToken`, Paytm's access token), when it issues one, is never stored.
    Verified {
        /// The number this session sent to and has now verified: trust this one, never a
        /// number the client sends alongside the id (masked when printed).
        mobile: MobileNumber,
        /// The credential, a secret.
        credential: Option<SecretString>,
    },
    /// The code did not match (or was the code of an earlier send, replaced by a resend
    /// meanwhile); this many more codes will be checked.
    WrongOtp {
        /// Tries left in this session (0: the session is spent).
        tries_left: u32,
    },
    /// The code expired before the right one came: start a new verification.
    Expired,
    /// The session was approved already; its credential is never handed out twice.
    AlreadyApproved,
    /// The application cancelled it.
    Canceled,
    /// Every try was used on wrong codes.
    MaxAttemptsReached,
    /// No such verification (never started here, or past its retention).
    NotFound,
}

impl Check {
    /// The stable name: `verified`, `wrong_otp`, `otp_expired` (as the CLI and docs/gateways/verify.md say),
    /// `already_approved`, `canceled`, `max_attempts_reached`, `not_found`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Check::Verified { .. } => "verified",
            Check::WrongOtp { .. } => "wrong_otp",
            Check::Expired => "otp_expired",
            Check::AlreadyApproved => "already_approved",
            Check::Canceled => "canceled",
            Check::MaxAttemptsReached => "max_attempts_reached",
            Check::NotFound => "not_found",
        }
    }

    fn finished(state: State) -> Self {
        match state {
            State::Approved => Check::AlreadyApproved,
            State::Canceled => Check::Canceled,
            State::MaxAttemptsReached => Check::MaxAttemptsReached,
            State::Expired | State::Pending => Check::Expired,
        }
    }
}

/// Where a verification stands.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// Its id.
    pub id: VerificationId,
    /// Its state.
    pub state: State,
    /// Its gateway.
    pub gateway: Gateway,
    /// The number (masked when printed) while it is pending; a tombstone keeps none.
    pub mobile: Option<MobileNumber>,
    /// How its last send succeeded.
    pub outcome: Outcome,
    /// Codes it will still check (0 once finished).
    pub tries_left: u32,
    /// Codes sent (a start and its resends).
    pub sends: u32,
    /// When it was started.
    pub created_at: SystemTime,
    /// When its code stops being checked.
    pub expires_at: SystemTime,
    /// When the cooldown admits a resend, while it is pending (other limits may still refuse).
    pub resend_available_at: Option<SystemTime>,
    /// When it finished (approved, cancelled, out of tries, expired at a check); `None` while
    /// pending, and for one that ran out its lifetime unchecked (see `expires_at`).
    pub ended_at: Option<SystemTime>,
    /// A test number's verification.
    pub test: bool,
}

/// Verification sessions over one gateway client, with the send guard in front of every send.
/// Cheap to clone; clones (and every verifier built on clones of one store) share sessions
/// and limits.
#[derive(Clone)]
pub struct Verifier<G, S = MemoryStore> {
    gateway: G,
    store: S,
    rules: GuardRules,
    lifetime: Duration,
    retention: Duration,
    guard_fail_open: bool,
    /// The guard that stands in, in this process, while a shared store cannot be reached and
    /// fail-open is on: never no guard.
    local_guard: MemoryStore,
    test_numbers: Arc<HashMap<MobileNumber, OtpCode>>,
    events: Option<Arc<dyn EventSink>>,
}

/// Which guard counted a send, so that an unsent one is given back to the same.
enum CountedBy {
    Store,
    LocalGuard,
}

impl<G: SessionGateway + std::fmt::Debug, S: Store + std::fmt::Debug> std::fmt::Debug for Verifier<G, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("gateway", &self.gateway)
            .field("store", &self.store)
            .field("rules", &self.rules)
            .field("lifetime", &self.lifetime)
            .field("retention", &self.retention)
            .field("guard_fail_open", &self.guard_fail_open)
            .field("test_numbers", &self.test_numbers.len())
            .field("events", &self.events.is_some())
            .finish()
    }
}

/// What an idempotency key replays: the first call's answer.
#[derive(Serialize, Deserialize)]
enum Answer {
    Started { id: String, gateway: Gateway, outcome: Outcome, expires_ms: u64, resend_after_ms: u64, test: bool },
    Failed { kind: String, reached: String, retryable: bool, description: String },
}

impl<G: SessionGateway, S: Store> Verifier<G, S> {
    /// A verifier with the default rules; sessions live as long as the gateway's OTP, and
    /// finished ones are remembered for [`DEFAULT_RETENTION`].
    pub fn new(gateway: G, store: S) -> Self {
        let lifetime = gateway.otp_validity();
        Self {
            gateway,
            store,
            rules: GuardRules::default(),
            lifetime,
            retention: DEFAULT_RETENTION,
            guard_fail_open: false,
            local_guard: MemoryStore::new(),
            test_numbers: Arc::default(),
            events: None,
        }
    }

    /// When the store cannot be reached at all for a guard decision (refused or dropped
    /// connections, timeouts), decide in this process instead: a memory guard with the same
    /// rules stands in (shared by this verifier's clones, not by other processes), so a send is
    /// never unguarded. Off by default: such a failure refuses the start as `transport`,
    /// nothing sent. A store that answers with an error (a script error, out of memory, busy)
    /// never fails open. Only the guard fails open: the session still needs the store, so with
    /// the store wholly down the OTP goes out and the start then fails (`transport`,
    /// `Reached::Yes`) with no session to check it against — this helps only a store that
    /// fails now and then; `otp.guard.fail_open` counts every send the local guard decided.
    pub fn with_guard_fail_open(mut self, fail_open: bool) -> Self {
        self.guard_fail_open = fail_open;
        self
    }

    /// Other guard rules; refused when a window is zero or longer than 31 days.
    pub fn with_rules(mut self, rules: GuardRules) -> Result<Self, Error> {
        rules.check()?;
        self.rules = rules;
        Ok(self)
    }

    /// Another session lifetime (at least 1 s). Longer than the gateway keeps its OTP only
    /// delays the `otp_expired` the gateway will answer anyway.
    pub fn with_session_lifetime(mut self, lifetime: Duration) -> Result<Self, Error> {
        if lifetime < Duration::from_secs(1) {
            return Err(Error::configuration("a session lifetime must be at least 1 s"));
        }
        self.lifetime = lifetime;
        Ok(self)
    }

    /// How long a finished verification's tombstone (its state and times, nothing personal)
    /// answers `status` and `check` after its session ended (at least 1 s; default 24 h).
    pub fn with_retention(mut self, retention: Duration) -> Result<Self, Error> {
        if retention < Duration::from_secs(1) {
            return Err(Error::configuration("a retention must be at least 1 s"));
        }
        self.retention = retention;
        Ok(self)
    }

    /// Numbers with a fixed code, for app-store reviewers and staging: a start for one calls no
    /// gateway (a synthetic reference), its check compares the code in constant time, the
    /// guard counts it like any number, and spans, status and events mark it `test`. None by
    /// default: list them explicitly, never in production unless a reviewer needs one.
    pub fn with_test_numbers(mut self, numbers: impl IntoIterator<Item = (MobileNumber, OtpCode)>) -> Self {
        self.test_numbers = Arc::new(numbers.into_iter().collect());
        self
    }

    /// Where every state change is reported (an audit trail, webhooks). Emitting never blocks
    /// or fails a verification: see [`EventSink`]. A session that runs out its lifetime is
    /// reported by [`Verifier::sweep_expired`].
    pub fn with_events(mut self, sink: impl EventSink) -> Self {
        self.events = Some(Arc::new(sink));
        self
    }

    /// The rules in force.
    pub fn rules(&self) -> &GuardRules {
        &self.rules
    }

    fn lifetimes(&self) -> Lifetimes {
        Lifetimes { session: self.lifetime, retention: self.retention }
    }

    /// Starts a verification: the guard admits the send (or refuses it as `rate_limited`,
    /// nothing sent), the gateway sends, and the session is stored. With an idempotency key in
    /// `context`, a retry answers the first call's result (`Started::replayed`).
    pub async fn start(&self, request: G::Request, context: &Context) -> Result<Started, Error> {
        let span = verifier_span!("otp.verifier.start", self);
        async {
            match &context.idempotency_key {
                None => self.start_once(request, context).await,
                Some(key) => {
                    let fingerprint = encode(&request)?;
                    self.idempotent(format!("start:{key}"), &fingerprint, self.start_once(request, context)).await
                }
            }
        }
        .instrument(span.clone())
        .await
        .inspect(|started| record_outcome(&span, started.outcome.as_str()))
        .inspect_err(|error| record_error(&span, error))
    }

    async fn start_once(&self, request: G::Request, context: &Context) -> Result<Started, Error> {
        let id = VerificationId::random()?;
        let gateway = self.gateway.gateway();
        let mobile = *G::mobile(&request);
        let test = self.test_numbers.contains_key(&mobile);
        let marks = Marks { test, tenant: context.tenant.clone() };
        let sent = match self.guarded_send(&request, context, None).await {
            Ok(sent) => sent,
            Err(error) => {
                let rule = error.guard_rule();
                let (kind, outcome) = (EventKind::SendFailed, Some(error.kind().as_str()));
                self.record(self.event(kind, &id, Some(mobile), outcome, rule, &marks)).await;
                return Err(error);
            }
        };
        let now = now_ms();
        let record = Record {
            gateway,
            outcome: sent.outcome,
            sends: 1,
            created_ms: now,
            last_send_ms: now,
            expires_ms: now.saturating_add(millis(self.lifetime)),
            ended_ms: None,
            test,
            tenant: marks.tenant.clone(),
        };
        let outcome = sent.outcome;
        let payload = encode(&SessionData { request, sent, record: record.clone() })?;
        let event = self.event(EventKind::Started, &id, Some(mobile), Some(outcome.as_str()), None, &marks);
        self.store.put_session(&id, &payload, &encode(&record)?, self.lifetimes(), event.as_ref()).await.map_err(
            |error| {
                Error::store_unavailable(
                    Reached::Yes,
                    "the OTP was sent but its session could not be stored: start again after the cooldown",
                )
                .with_source(error)
            },
        )?;
        self.notify(event);
        Ok(self.started(id, &record))
    }

    /// Where a verification stands; `None` for an id never started here or past its retention.
    pub async fn status(&self, id: &VerificationId) -> Result<Option<Status>, Error> {
        Ok(match self.store.load_session(id).await? {
            Lookup::Live { loaded, record } => {
                let session: SessionData<G::Request> = decode(&loaded.payload)?;
                let record = decode_record(&record)?;
                let cooldown_ends = record.last_send_ms.saturating_add(millis(self.rules.cooldown));
                Some(Status {
                    id: id.clone(),
                    state: State::Pending,
                    gateway: record.gateway,
                    mobile: Some(*G::mobile(&session.request)),
                    outcome: record.outcome,
                    tries_left: self.rules.max_wrong_tries.saturating_sub(loaded.tries_used),
                    sends: record.sends,
                    created_at: system_time(record.created_ms),
                    expires_at: system_time(record.expires_ms),
                    resend_available_at: Some(system_time(cooldown_ends)),
                    ended_at: None,
                    test: record.test,
                })
            }
            Lookup::Finished { state, record } => {
                let record = decode_record(&record)?;
                Some(Status {
                    id: id.clone(),
                    state,
                    gateway: record.gateway,
                    mobile: None,
                    outcome: record.outcome,
                    tries_left: 0,
                    sends: record.sends,
                    created_at: system_time(record.created_ms),
                    expires_at: system_time(record.expires_ms),
                    resend_available_at: None,
                    ended_at: record.ended_ms.map(system_time),
                    test: record.test,
                })
            }
            Lookup::Unknown => None,
        })
    }

    /// Checks a code. A wrong code uses one of the session's tries, counted before the gateway
    /// is asked, so concurrent checks never take more than the limit; a code that did not reach
    /// the gateway gives its try back. A check ends only the session generation it read: a
    /// resend that replaced the session meanwhile survives it. A finished session answers its
    /// state without a gateway call.
    pub async fn check(&self, id: &VerificationId, code: OtpCode) -> Result<Check, Error> {
        let span = verifier_span!("otp.verifier.check", self);
        async {
            let max_tries = self.rules.max_wrong_tries;
            let ticket = new_ticket()?;
            let Loaded { payload, tries_used, generation } = match self.store.take_try(id, max_tries, ticket).await? {
                TryTaken::Taken(loaded) => loaded,
                TryTaken::Spent => return Ok(Check::MaxAttemptsReached),
                TryTaken::Finished(state) => return Ok(Check::finished(state)),
                TryTaken::Unknown => return Ok(Check::NotFound),
            };
            let session: SessionData<G::Request> = match decode(&payload) {
                Ok(session) => session,
                Err(error) => {
                    // Unreadable: ended (a minimal tombstone), so it stops costing tries.
                    let record = self.unreadable_record();
                    let _ = self.end(id, Generation::Any, State::Expired, &record, None).await;
                    return Err(error);
                }
            };
            let mobile = *G::mobile(&session.request);
            let test = session.record.test;
            let marks = session.record.marks();
            if test {
                tracing::Span::current().record("otp.test_number", true);
            }
            let tries_left = max_tries.saturating_sub(tries_used);
            let verified = if test {
                self.check_test_code(&mobile, &code)
            } else {
                let request = match G::verify_request(&session.request, &session.sent, code) {
                    Ok(request) => request,
                    Err(error) => {
                        self.give_back_try(id, ticket).await;
                        return Err(error);
                    }
                };
                self.gateway.verify(&request).await.map(|receipt| receipt.credential)
            };
            let record = &session.record;
            match verified {
                Ok(credential) => {
                    // Verified is final, whatever a resend did meanwhile.
                    let event = self.event(EventKind::Approved, id, Some(mobile), Some("verified"), None, &marks);
                    match self.end(id, Generation::Any, State::Approved, record, event.as_ref()).await {
                        Ending::Ended => {
                            self.notify(event);
                            Ok(Check::Verified { mobile, credential })
                        }
                        // Another check of the same code won the race: only one hands out the credential.
                        Ending::Finished(State::Approved) => Ok(Check::AlreadyApproved),
                        Ending::Finished(state) => Ok(Check::finished(state)),
                        Ending::Newer | Ending::Unknown => Ok(Check::Verified { mobile, credential }),
                    }
                }
                Err(error) if error.kind() == ErrorKind::WrongOtp => {
                    Ok(self.wrong_code(id, mobile, &marks, record, tries_left).await)
                }
                Err(error) if error.kind() == ErrorKind::OtpExpired => {
                    let event = self.event(EventKind::Expired, id, Some(mobile), Some("otp_expired"), None, &marks);
                    match self.end(id, Generation::Only(generation), State::Expired, record, event.as_ref()).await {
                        Ending::Ended => {
                            self.notify(event);
                            Ok(Check::Expired)
                        }
                        // A resend claimed or replaced the session while this code was judged:
                        // the code was the old send's, wrong for the session now.
                        Ending::Newer => Ok(self.wrong_code(id, mobile, &marks, record, tries_left).await),
                        Ending::Finished(state) => Ok(Check::finished(state)),
                        Ending::Unknown => Ok(Check::NotFound),
                    }
                }
                Err(error) => {
                    // Unanswered, the code was not judged: the try is given back. Answered or
                    // maybe answered, it stays used (the gateway may have counted it).
                    if error.reached_provider() == Reached::No {
                        self.give_back_try(id, ticket).await;
                    }
                    Err(error)
                }
            }
        }
        .instrument(span.clone())
        .await
        .inspect(|check| record_outcome(&span, check.as_str()))
        .inspect_err(|error| record_error(&span, error))
    }

    /// A wrong code's answer and event; the last try used ends the session. Tries belong to the
    /// session, not to a send (a resend keeps them), so that ending applies whatever a resend
    /// did meanwhile: no code of any send can be checked now.
    async fn wrong_code(
        &self,
        id: &VerificationId,
        mobile: MobileNumber,
        marks: &Marks,
        record: &Record,
        tries_left: u32,
    ) -> Check {
        self.record(self.event(EventKind::WrongCode, id, Some(mobile), Some("wrong_otp"), None, marks)).await;
        if tries_left == 0 {
            let event = self.event(EventKind::MaxAttemptsReached, id, Some(mobile), Some("wrong_otp"), None, marks);
            let spent = State::MaxAttemptsReached;
            if self.end(id, Generation::Any, spent, record, event.as_ref()).await == Ending::Ended {
                self.notify(event);
            }
        }
        Check::WrongOtp { tries_left }
    }

    /// A test number's code against its fixed one, in constant time.
    fn check_test_code(&self, mobile: &MobileNumber, code: &OtpCode) -> Result<Option<SecretString>, Error> {
        metrics::counter!("otp.verifier.test_number_checks", "otp.gateway" => self.gateway.gateway().as_str())
            .increment(1);
        let matches = self.test_numbers.get(mobile).is_some_and(|fixed| {
            let (fixed, given) = (fixed.expose_secret().as_bytes(), code.expose_secret().as_bytes());
            fixed.len() == given.len() && bool::from(fixed.ct_eq(given))
        });
        if matches {
            Ok(None)
        } else {
            Err(Error::replayed(ErrorKind::WrongOtp, Reached::No, false, "the code is not the test number's"))
        }
    }

    /// Sends a new code for a session, under the same guard as a start; the new reference
    /// replaces the old one (PhonePe verifies only the latest). The id stays the same. A
    /// finished session is not resent (`otp_expired`, nothing sent); its state is `status`'s.
    pub async fn resend(&self, id: &VerificationId, context: &Context) -> Result<Started, Error> {
        let span = verifier_span!("otp.verifier.resend", self);
        async {
            match &context.idempotency_key {
                None => self.resend_once(id, context).await,
                Some(key) => {
                    let scoped = format!("resend:{}:{key}", id.as_str());
                    self.idempotent(scoped, id.as_str().as_bytes(), self.resend_once(id, context)).await
                }
            }
        }
        .instrument(span.clone())
        .await
        .inspect(|started| record_outcome(&span, started.outcome.as_str()))
        .inspect_err(|error| record_error(&span, error))
    }

    async fn resend_once(&self, id: &VerificationId, context: &Context) -> Result<Started, Error> {
        let loaded =
            match self.store.load_session(id).await? {
                Lookup::Live { loaded, .. } => loaded,
                Lookup::Finished { state, .. } => {
                    return Err(Error::session_expired(
                        Reached::No,
                        format!("this verification is {}: start a new one; nothing was sent", state.as_str()),
                    ))
                }
                Lookup::Unknown => return Err(Error::session_expired(
                    Reached::No,
                    "no such verification (never started, or past its retention): start a new one; nothing was sent",
                )),
            };
        if loaded.tries_used >= self.rules.max_wrong_tries {
            // Spent: no check can ever use a new code, so none is sent.
            return Err(Error::session_expired(
                Reached::No,
                "this verification is spent (every try used): start a new one; nothing was sent",
            ));
        }
        let session: SessionData<G::Request> = decode(&loaded.payload)?;
        G::check_resend(&session.request)?;
        let mobile = *G::mobile(&session.request);
        let marks = session.record.marks();
        let sent = match self.guarded_send(&session.request, context, Some(id)).await {
            Ok(sent) => sent,
            Err(error) => {
                let rule = error.guard_rule();
                let (kind, outcome) = (EventKind::SendFailed, Some(error.kind().as_str()));
                self.record(self.event(kind, id, Some(mobile), outcome, rule, &marks)).await;
                return Err(error);
            }
        };
        let now = now_ms();
        let record = Record {
            outcome: sent.outcome,
            sends: session.record.sends.saturating_add(1),
            last_send_ms: now,
            expires_ms: now.saturating_add(millis(self.lifetime)),
            ..session.record
        };
        let payload = encode(&SessionData { request: session.request, sent, record: record.clone() })?;
        let event = self.event(EventKind::Resent, id, Some(mobile), Some(record.outcome.as_str()), None, &marks);
        let replaced = self
            .store
            .replace_session(id, &payload, &encode(&record)?, self.lifetimes(), new_ticket()?, event.as_ref())
            .await
            .map_err(|error| {
                Error::store_unavailable(Reached::Yes, "the OTP was sent but its session could not be updated")
                    .with_source(error)
            })?;
        if !replaced {
            return Err(Error::session_expired(
                Reached::Yes,
                "the session ended (verified or cancelled) while its new code was being sent",
            ));
        }
        self.notify(event);
        Ok(self.started(id.clone(), &record))
    }

    /// Reports `verification.expired` for every session of the store that ran out its lifetime
    /// while pending, and answers how many. Each such session is claimed in one atomic step of
    /// the store, so however many instances sweep one store at once, each session is reported
    /// exactly once, by whichever claimed it; one that ended otherwise (approved, cancelled, …)
    /// or was extended by a resend is not. Call it every few seconds from one task per instance
    /// (an event comes that much after the lifetime's end); it reports every verifier's
    /// sessions on this store, each with its own gateway. The event has no number: the
    /// session's tombstone keeps none.
    ///
    /// A session that no sweep claimed within the retention after its lifetime is not reported.
    pub async fn sweep_expired(&self) -> Result<usize, Error> {
        let mut reported = 0;
        loop {
            let claimed = self.store.claim_expired(SWEEP_BATCH, self.retention, new_ticket()?).await?;
            let mut events = Vec::new();
            for swept in &claimed.expired {
                let (gateway, marks, at) = match decode_record(&swept.record) {
                    Ok(record) => (record.gateway, record.marks(), system_time(record.expires_ms)),
                    Err(_) => (self.gateway.gateway(), Marks { test: false, tenant: None }, SystemTime::now()),
                };
                metrics::counter!("otp.verifier.expired_swept", "otp.gateway" => gateway.as_str()).increment(1);
                if self.wants_events() {
                    let mut event = Event::new(EventKind::Expired, &swept.id, gateway);
                    event.outcome = Some("otp_expired");
                    event.test = marks.test;
                    event.tenant = marks.tenant.map(String::from);
                    event.at = at;
                    events.push(event);
                }
            }
            if self.store.keeps_events() {
                self.store.append_events(&events).await;
            }
            for event in events {
                self.notify(Some(event));
            }
            reported += claimed.expired.len();
            if claimed.claimed < SWEEP_BATCH {
                return Ok(reported);
            }
        }
    }

    /// Cancels a pending verification: later checks answer `canceled`. Answers the state it is
    /// in now — `Canceled` (now or before), or the state it had already finished in (an
    /// approved one stays approved) — or `None` for an unknown id.
    pub async fn cancel(&self, id: &VerificationId) -> Result<Option<State>, Error> {
        let (record, mobile) = match self.store.load_session(id).await? {
            Lookup::Live { loaded, record } => {
                let mobile = decode::<G::Request>(&loaded.payload).ok().map(|s| *G::mobile(&s.request));
                (decode_record(&record)?, mobile)
            }
            Lookup::Finished { state, .. } => return Ok(Some(state)),
            Lookup::Unknown => return Ok(None),
        };
        let event = self.event(EventKind::Canceled, id, mobile, None, None, &record.marks());
        let ended = encode(&self.ended(&record))?;
        Ok(Some(
            match self
                .store
                .end_session(id, Generation::Any, State::Canceled, &ended, self.retention, event.as_ref())
                .await?
            {
                Ending::Ended => {
                    self.notify(event);
                    State::Canceled
                }
                Ending::Finished(state) => state,
                Ending::Newer | Ending::Unknown => State::Canceled,
            },
        ))
    }

    fn started(&self, id: VerificationId, record: &Record) -> Started {
        Started {
            id,
            gateway: record.gateway,
            outcome: record.outcome,
            expires_at: system_time(record.expires_ms),
            resend_after: self.rules.cooldown,
            test: record.test,
            replayed: false,
        }
    }

    fn ended(&self, record: &Record) -> Record {
        Record { ended_ms: Some(now_ms()), ..record.clone() }
    }

    fn unreadable_record(&self) -> Record {
        let now = now_ms();
        Record {
            gateway: self.gateway.gateway(),
            outcome: Outcome::Sent,
            sends: 0,
            created_ms: now,
            last_send_ms: now,
            expires_ms: now,
            ended_ms: Some(now),
            test: false,
            tenant: None,
        }
    }

    /// Ends a session's `generation` in `state`, its record kept as the tombstone. Should the
    /// store fail now, the session only lingers until its lifetime ends, and the gateway
    /// refuses its spent code.
    async fn end(
        &self,
        id: &VerificationId,
        generation: Generation,
        state: State,
        record: &Record,
        event: Option<&Event>,
    ) -> Ending {
        let ended = match encode(&self.ended(record)) {
            Ok(ended) => ended,
            Err(error) => {
                tracing::warn!(error = %error, "a finished verification's record could not be written");
                return Ending::Ended;
            }
        };
        match self.store.end_session(id, generation, state, &ended, self.retention, event).await {
            Ok(ending) => ending,
            Err(error) => {
                tracing::warn!(error = %error, "a finished verification session could not be ended; it expires on its own");
                Ending::Ended
            }
        }
    }

    /// Returns a try the gateway never judged. Should the store fail now, the try stays used
    /// (the stricter side) and the caller still gets the error that matters.
    async fn give_back_try(&self, id: &VerificationId, ticket: Ticket) {
        if let Err(error) = self.store.refund_try(id, ticket).await {
            tracing::warn!(error = %error, "an unjudged try could not be given back; it stays counted");
        }
    }

    /// Whether anything takes events: a sink here, or the store's own record of them.
    fn wants_events(&self) -> bool {
        self.events.is_some() || self.store.keeps_events()
    }

    /// A state change's event, built only when something takes it.
    fn event(
        &self,
        kind: EventKind,
        id: &VerificationId,
        mobile: Option<MobileNumber>,
        outcome: Option<&'static str>,
        rule: Option<&'static str>,
        marks: &Marks,
    ) -> Option<Event> {
        self.wants_events().then(|| {
            let mut event = Event::new(kind, id, self.gateway.gateway());
            event.mobile = mobile;
            event.outcome = outcome;
            event.rule = rule;
            event.test = marks.test;
            event.tenant = marks.tenant.as_deref().map(String::from);
            event
        })
    }

    /// Hands an event the store has recorded (or does not keep) to this verifier's sink.
    fn notify(&self, event: Option<Event>) {
        if let (Some(sink), Some(event)) = (&self.events, event) {
            sink.emit(event);
        }
    }

    /// An event of a change no store step makes: recorded by the store (when it keeps events)
    /// before the call returns, then handed to the sink.
    async fn record(&self, event: Option<Event>) {
        if let Some(event) = &event {
            if self.store.keeps_events() {
                self.store.append_events(std::slice::from_ref(event)).await;
            }
        }
        self.notify(event);
    }

    /// Runs `call` once per idempotency key: a retry with the same key and request answers the
    /// first call's result; with another request it is refused; while the first runs, it is
    /// refused as retryable. A first call that sent nothing lets the key go, so a retry may try.
    async fn idempotent(
        &self,
        key: String,
        request: &[u8],
        call: impl Future<Output = Result<Started, Error>>,
    ) -> Result<Started, Error> {
        match self.store.claim_key(&key, request, IDEMPOTENCY_LEASE, IDEMPOTENCY_KEY_LIFETIME).await? {
            Claim::Fresh => {}
            Claim::InProgress => {
                return Err(Error::guard_refused("idempotency_in_progress", Duration::from_secs(1)));
            }
            Claim::Abandoned => {
                return Err(Error::replayed(
                    ErrorKind::InvalidRequest,
                    Reached::Maybe,
                    false,
                    "the first call with this idempotency key never finished (its process stopped) and may have \
                     sent an OTP: nothing was sent now; look the verification up, or start again with a new key",
                ));
            }
            Claim::Reused => {
                return Err(Error::invalid_input(
                    "idempotency key reused with another request: a new request needs a new key; nothing was sent",
                ))
            }
            Claim::Done(answer) => {
                metrics::counter!("otp.verifier.idempotent_replays", "otp.gateway" => self.gateway.gateway().as_str())
                    .increment(1);
                return replay(&answer);
            }
        }
        let result = call.await;
        let stored = match &result {
            Err(error) if error.reached_provider() == Reached::No => self.store.forget_key(&key).await,
            Ok(started) => {
                let answer = Answer::Started {
                    id: started.id.as_str().to_owned(),
                    gateway: started.gateway,
                    outcome: started.outcome,
                    expires_ms: started.expires_at.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0),
                    resend_after_ms: millis(started.resend_after),
                    test: started.test,
                };
                self.store.finish_key(&key, &encode(&answer)?, IDEMPOTENCY_KEY_LIFETIME).await
            }
            Err(error) => {
                let answer = Answer::Failed {
                    kind: error.kind().as_str().to_owned(),
                    reached: reached_name(error.reached_provider()).to_owned(),
                    retryable: error.is_retryable(),
                    description: error.description().to_owned(),
                };
                self.store.finish_key(&key, &encode(&answer)?, IDEMPOTENCY_KEY_LIFETIME).await
            }
        };
        if let Err(error) = stored {
            tracing::warn!(error = %error, "an idempotency key's answer could not be stored; a retry may be refused as in progress until its lease ends");
        }
        result
    }

    /// The guard, then the send. The request is checked first, so one that could never be
    /// sent is counted nowhere; a send that never left this process gives its place back. A
    /// resend (`resending`) claims its session's next generation once admitted, before it sends.
    /// A test number is counted like any number, and sent nowhere.
    async fn guarded_send(
        &self,
        request: &G::Request,
        context: &Context,
        resending: Option<&VerificationId>,
    ) -> Result<Sent, Error> {
        let gateway = self.gateway.gateway();
        G::validate(request).map_err(|error| error.with_gateway(gateway))?;
        let mobile = G::mobile(request);
        let client_ip = self.rules.client_subject(context.client_ip);
        let mut counted = vec![
            Counted { key: GuardKey::Number(mobile), limits: self.rules.limits_for(Subject::Number) },
            Counted { key: GuardKey::ClientIp(client_ip), limits: self.rules.limits_for(Subject::ClientIp) },
        ];
        if let Some(key) = &context.caller_key {
            counted.push(Counted { key: GuardKey::CallerKey(key), limits: self.rules.limits_for(Subject::CallerKey) });
        }
        let ticket = new_ticket()?;
        let counted_by = self.admit(&counted, ticket).await.map_err(|error| error.with_gateway(gateway))?;
        if let Some(id) = resending {
            let claimed = match self.store.claim_resend(id, new_ticket()?).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::session_expired(
                    Reached::No,
                    "the verification ended (verified or cancelled) before its new code was sent; nothing was sent",
                )),
                Err(error) => Err(error),
            };
            if let Err(error) = claimed {
                self.release(&counted, ticket, counted_by).await;
                return Err(error.with_gateway(gateway));
            }
        }
        if self.test_numbers.contains_key(mobile) {
            tracing::Span::current().record("otp.test_number", true);
            metrics::counter!("otp.verifier.test_number_sends", "otp.gateway" => gateway.as_str()).increment(1);
            let reference: [u8; 16] = random_bytes()?;
            return Ok(Sent {
                reference: Some(SecretString::new(format!("test-{}", hex::encode(reference)))),
                outcome: Outcome::Sent,
            });
        }
        match self.gateway.send(request).await {
            Ok(receipt) => Ok(Sent { reference: receipt.reference, outcome: receipt.outcome }),
            Err(error) => {
                if error.reached_provider() == Reached::No {
                    self.release(&counted, ticket, counted_by).await;
                }
                Err(error)
            }
        }
    }

    /// Gives an unsent send's place back to the guard that counted it.
    async fn release(&self, counted: &[Counted<'_>], ticket: Ticket, counted_by: CountedBy) {
        let released = match counted_by {
            CountedBy::Store => self.store.release(counted, ticket).await,
            CountedBy::LocalGuard => self.local_guard.release(counted, ticket).await,
        };
        if let Err(error) = released {
            tracing::warn!(error = %error, "an unsent OTP's place in the guard could not be given back");
        }
    }

    /// One guard decision: the store's, or (fail-open, store unreachable) the local guard's.
    async fn admit(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<CountedBy, Error> {
        let gateway = self.gateway.gateway();
        let (admission, counted_by) = match self.store.admit(counted, ticket).await {
            Ok(admission) => (admission, CountedBy::Store),
            Err(error) if self.guard_fail_open && self.store.unreachable(&error) => {
                metrics::counter!("otp.guard.fail_open", "otp.gateway" => gateway.as_str()).increment(1);
                tracing::warn!(error = %error, "the send guard's store cannot be reached; this process's guard decides (fail-open is on)");
                (self.local_guard.admit(counted, ticket).await?, CountedBy::LocalGuard)
            }
            Err(error) => return Err(error),
        };
        match admission {
            Admission::Admitted => Ok(counted_by),
            Admission::Refused { rule, retry_after } => {
                metrics::counter!("otp.guard.refusals", "rule" => rule.as_str(), "otp.gateway" => gateway.as_str())
                    .increment(1);
                tracing::Span::current().record("otp.guard.rule", rule.as_str());
                Err(Error::guard_refused(rule.as_str(), retry_after))
            }
            Admission::Full => Err(Error::store_unavailable(
                Reached::No,
                "the verification store is full of live limits and sessions: nothing was sent; try again later",
            )),
        }
    }
}

/// A finished record as the verifier writes one, for the benchmark of tombstones' memory.
#[cfg(feature = "test-util")]
pub(crate) fn sample_record() -> Result<Zeroizing<Vec<u8>>, Error> {
    let now = now_ms();
    encode(&Record {
        gateway: Gateway::PhonePe,
        outcome: Outcome::Sent,
        sends: 1,
        created_ms: now,
        last_send_ms: now,
        expires_ms: now + 600_000,
        ended_ms: Some(now + 30_000),
        test: false,
        // As `otp serve` labels every verification.
        tenant: Some("checkout".into()),
    })
}

/// The first call's answer, again.
fn replay(answer: &[u8]) -> Result<Started, Error> {
    let answer: Answer = serde_json::from_slice(answer)
        .map_err(|_| Error::store_unavailable(Reached::No, "an idempotency key's stored answer could not be read"))?;
    match answer {
        Answer::Started { id, gateway, outcome, expires_ms, resend_after_ms, test } => Ok(Started {
            id: VerificationId::parse(&id)?,
            gateway,
            outcome,
            expires_at: system_time(expires_ms),
            resend_after: Duration::from_millis(resend_after_ms),
            test,
            replayed: true,
        }),
        Answer::Failed { kind, reached, retryable, description } => {
            let kind = ErrorKind::from_name(&kind).unwrap_or(ErrorKind::UnexpectedResponse);
            let reached = if reached == "yes" { Reached::Yes } else { Reached::Maybe };
            Err(Error::replayed(
                kind,
                reached,
                retryable,
                format!("the first call with this idempotency key failed: {description}"),
            ))
        }
    }
}

/// How a stored failure says whether it reached the provider. A call that did not is never
/// stored (its key is forgotten, so a retry really tries), so only these two are kept; anything
/// else `Reached` may gain is as uncertain as "maybe".
fn reached_name(reached: Reached) -> &'static str {
    if reached == Reached::Yes {
        "yes"
    } else {
        "maybe"
    }
}

fn new_ticket() -> Result<Ticket, Error> {
    Ok(u128::from_le_bytes(random_bytes()?))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

fn millis(duration: Duration) -> u64 {
    crate::memory::millis(duration)
}

fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn record_outcome(span: &tracing::Span, outcome: &'static str) {
    span.record("otp.outcome", outcome);
}

fn record_error(span: &tracing::Span, error: &Error) {
    span.record("error.type", error.kind().as_str());
}

fn encode<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, Error> {
    serde_json::to_vec(value)
        .map(Zeroizing::new)
        .map_err(|e| Error::configuration(format!("a verification session could not be encoded: {e}")))
}

fn decode<R: DeserializeOwned>(payload: &[u8]) -> Result<SessionData<R>, Error> {
    // serde_json's message may quote the payload; the error keeps only its category.
    serde_json::from_slice(payload).map_err(|e| {
        Error::store_unavailable(
            Reached::No,
            format!("a stored verification session could not be read ({:?}); nothing was sent", e.classify()),
        )
    })
}

fn decode_record(record: &[u8]) -> Result<Record, Error> {
    serde_json::from_slice(record).map_err(|e| {
        Error::store_unavailable(Reached::No, format!("a verification's record could not be read ({:?})", e.classify()))
    })
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The tombstone benchmark's record is one the verifier would read back as a finished one,
    /// with what `otp serve` keeps in it (a tenant): its size is a real record's.
    #[test]
    fn the_benchmarks_sample_record_is_a_real_finished_record() {
        let record = super::decode_record(&super::sample_record().unwrap()).unwrap();
        assert_eq!(record.tenant.as_deref(), Some("checkout"));
        // A 10-minute session approved after 30 s: times of a real record's digits.
        let since_created = |ms: u64| ms.checked_sub(record.created_ms);
        assert_eq!(
            (since_created(record.expires_ms), record.ended_ms.and_then(since_created)),
            (Some(600_000), Some(30_000))
        );
    }
}
