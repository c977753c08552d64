//! The verifier: start, check, resend and cancel, with the guard in front of every send.

use std::future::Future;
use std::time::{Duration, SystemTime};

use otp_core::{
    Error, ErrorKind, Gateway, MobileNumber, OtpCode, Outcome, Reached, SecretString, SendReceipt, VerifyReceipt,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::field::Empty;
use tracing::Instrument as _;
use zeroize::Zeroizing;

use crate::id::{random_bytes, VerificationId};
use crate::rules::{Context, GuardRules, Subject};
use crate::store::{Admission, Counted, Generation, GuardKey, Loaded, Store, Ticket, TryTaken};
use crate::MemoryStore;

/// One span per operation, its fields filled in as it ends (docs/telemetry.md).
macro_rules! verifier_span {
    ($name:literal, $verifier:expr) => {
        tracing::info_span!(
            $name,
            otp.gateway = $verifier.gateway.gateway().as_str(),
            otp.outcome = Empty,
            error.type = Empty,
            otp.guard.rule = Empty
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

/// A session as stored.
#[derive(Serialize, Deserialize)]
struct SessionData<R> {
    request: R,
    sent: Sent,
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
    /// The session is over: expired, spent, verified, cancelled or unknown. Start a new one.
    Expired,
}

impl Check {
    /// The stable name: `verified`, `wrong_otp`, `otp_expired` (as the CLI and verify.md say).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Check::Verified { .. } => "verified",
            Check::WrongOtp { .. } => "wrong_otp",
            Check::Expired => "otp_expired",
        }
    }
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
    guard_fail_open: bool,
    /// The guard that stands in, in this process, while a shared store cannot be reached and
    /// fail-open is on: never no guard.
    local_guard: MemoryStore,
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
            .field("guard_fail_open", &self.guard_fail_open)
            .finish()
    }
}

impl<G: SessionGateway, S: Store> Verifier<G, S> {
    /// A verifier with the default rules; sessions live as long as the gateway's OTP.
    pub fn new(gateway: G, store: S) -> Self {
        let lifetime = gateway.otp_validity();
        Self {
            gateway,
            store,
            rules: GuardRules::default(),
            lifetime,
            guard_fail_open: false,
            local_guard: MemoryStore::new(),
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

    /// The rules in force.
    pub fn rules(&self) -> &GuardRules {
        &self.rules
    }

    /// Starts a verification: the guard admits the send (or refuses it as `rate_limited`,
    /// nothing sent), the gateway sends, and the session is stored.
    pub async fn start(&self, request: G::Request, context: &Context) -> Result<Started, Error> {
        let span = verifier_span!("otp.verifier.start", self);
        async {
            let id = VerificationId::random()?;
            let sent = self.guarded_send(&request, context, None).await?;
            let outcome = sent.outcome;
            let payload = encode(&SessionData { request, sent })?;
            self.store.put_session(&id, &payload, self.lifetime).await.map_err(|error| {
                Error::store_unavailable(
                    Reached::Yes,
                    "the OTP was sent but its session could not be stored: start again after the cooldown",
                )
                .with_source(error)
            })?;
            Ok(self.started(id, outcome))
        }
        .instrument(span.clone())
        .await
        .inspect(|started| record_outcome(&span, started.outcome.as_str()))
        .inspect_err(|error| record_error(&span, error))
    }

    /// Checks a code. A wrong code uses one of the session's tries, counted before the gateway
    /// is asked, so concurrent checks never take more than the limit; a code that did not reach
    /// the gateway gives its try back. A check ends only the session generation it read: a
    /// resend that replaced the session meanwhile survives it.
    pub async fn check(&self, id: &VerificationId, code: OtpCode) -> Result<Check, Error> {
        let span = verifier_span!("otp.verifier.check", self);
        async {
            let max_tries = self.rules.max_wrong_tries;
            let ticket = new_ticket()?;
            let Loaded { payload, tries_used, generation } = match self.store.take_try(id, max_tries, ticket).await? {
                TryTaken::Taken(loaded) => loaded,
                TryTaken::Over => return Ok(Check::Expired),
            };
            let session: SessionData<G::Request> = match decode(&payload) {
                Ok(session) => session,
                Err(error) => {
                    self.end(id, Generation::Any).await;
                    return Err(error);
                }
            };
            let request = match G::verify_request(&session.request, &session.sent, code) {
                Ok(request) => request,
                Err(error) => {
                    self.give_back_try(id, ticket).await;
                    return Err(error);
                }
            };
            let tries_left = max_tries.saturating_sub(tries_used);
            match self.gateway.verify(&request).await {
                Ok(receipt) => {
                    // Verified is final, whatever a resend did meanwhile.
                    self.end(id, Generation::Any).await;
                    Ok(Check::Verified { mobile: *G::mobile(&session.request), credential: receipt.credential })
                }
                Err(error) if error.kind() == ErrorKind::WrongOtp => Ok(Check::WrongOtp { tries_left }),
                Err(error) if error.kind() == ErrorKind::OtpExpired => {
                    if self.end(id, Generation::Only(generation)).await {
                        Ok(Check::Expired)
                    } else {
                        // A resend replaced the session while this code was judged: the code
                        // was the old send's, and the new one is still to be checked.
                        Ok(Check::WrongOtp { tries_left })
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

    /// Sends a new code for a session, under the same guard as a start; the new reference
    /// replaces the old one (PhonePe verifies only the latest). The id stays the same.
    pub async fn resend(&self, id: &VerificationId, context: &Context) -> Result<Started, Error> {
        let span = verifier_span!("otp.verifier.resend", self);
        async {
            let gone = || {
                Error::session_expired(
                    Reached::No,
                    "no such verification (expired, verified, spent or cancelled): start a new one",
                )
            };
            let loaded = self.store.load_session(id).await?.ok_or_else(gone)?;
            if loaded.tries_used >= self.rules.max_wrong_tries {
                // Spent: no check can ever use a new code, so none is sent.
                return Err(Error::session_expired(
                    Reached::No,
                    "this verification is spent (every try used): start a new one; nothing was sent",
                ));
            }
            let session: SessionData<G::Request> = decode(&loaded.payload)?;
            G::check_resend(&session.request)?;
            let sent = self.guarded_send(&session.request, context, Some(id)).await?;
            let outcome = sent.outcome;
            let payload = encode(&SessionData { request: session.request, sent })?;
            let replaced =
                self.store.replace_session(id, &payload, self.lifetime, new_ticket()?).await.map_err(|error| {
                    Error::store_unavailable(Reached::Yes, "the OTP was sent but its session could not be updated")
                        .with_source(error)
                })?;
            if !replaced {
                return Err(Error::session_expired(
                    Reached::Yes,
                    "the session ended (verified or cancelled) while its new code was being sent",
                ));
            }
            Ok(self.started(id.clone(), outcome))
        }
        .instrument(span.clone())
        .await
        .inspect(|started| record_outcome(&span, started.outcome.as_str()))
        .inspect_err(|error| record_error(&span, error))
    }

    /// Forgets a session: later checks answer expired.
    pub async fn cancel(&self, id: &VerificationId) -> Result<(), Error> {
        self.store.end_session(id, Generation::Any).await.map(drop)
    }

    fn started(&self, id: VerificationId, outcome: Outcome) -> Started {
        Started {
            id,
            gateway: self.gateway.gateway(),
            outcome,
            expires_at: SystemTime::now() + self.lifetime,
            resend_after: self.rules.cooldown,
        }
    }

    /// Ends a verified, expired or unreadable session (only `generation`'s): true when it is
    /// over now, false when a newer generation lives on. Should the store fail now, the session
    /// only lingers until its lifetime ends, and the gateway refuses its spent code.
    async fn end(&self, id: &VerificationId, generation: Generation) -> bool {
        match self.store.end_session(id, generation).await {
            Ok(ended) => ended,
            Err(error) => {
                tracing::warn!(error = %error, "a finished verification session could not be removed; it expires on its own");
                true
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

    /// The guard, then the send. The request is checked first, so one that could never be
    /// sent is counted nowhere; a send that never left this process gives its place back. A
    /// resend (`resending`) claims its session's next generation once admitted, before it sends.
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

fn new_ticket() -> Result<Ticket, Error> {
    Ok(u128::from_le_bytes(random_bytes()?))
}

fn record_outcome(span: &tracing::Span, outcome: &'static str) {
    span.record("otp.outcome", outcome);
}

fn record_error(span: &tracing::Span, error: &Error) {
    span.record("error.type", error.kind().as_str());
}

fn encode<R: Serialize>(session: &SessionData<R>) -> Result<Zeroizing<Vec<u8>>, Error> {
    serde_json::to_vec(session)
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
