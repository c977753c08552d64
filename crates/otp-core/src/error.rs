//! One error type for every gateway, with a stable kind.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::Gateway;

/// Why a send did not succeed. The names are stable: the CLI prints them and scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed input or configuration, refused locally (nothing sent) or by the provider.
    InvalidRequest,
    /// Credentials, signature, permission or scope refused.
    Authentication,
    /// Too many OTPs for this number or merchant.
    RateLimited,
    /// The customer is blocked or blacklisted by the provider.
    Blocked,
    /// The provider declined for another or an unknown reason.
    Rejected,
    /// The provider failed (5xx, its own "internal error" codes).
    ProviderUnavailable,
    /// No complete answer in time: the OTP may or may not have gone out.
    Timeout,
    /// The connection failed or broke.
    Transport,
    /// An answer that cannot be understood (not the documented shape, over the size cap, a redirect).
    UnexpectedResponse,
    /// Verify: the code did not match; the same OTP may be tried again.
    WrongOtp,
    /// Verify: this OTP can no longer be verified (expired, already used, unknown reference,
    /// too many wrong tries): send a new one.
    OtpExpired,
}

impl ErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Authentication,
        ErrorKind::RateLimited,
        ErrorKind::Blocked,
        ErrorKind::Rejected,
        ErrorKind::ProviderUnavailable,
        ErrorKind::Timeout,
        ErrorKind::Transport,
        ErrorKind::UnexpectedResponse,
        ErrorKind::WrongOtp,
        ErrorKind::OtpExpired,
    ];

    /// The stable snake_case name (`rate_limited`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Blocked => "blocked",
            ErrorKind::Rejected => "rejected",
            ErrorKind::ProviderUnavailable => "provider_unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::UnexpectedResponse => "unexpected_response",
            ErrorKind::WrongOtp => "wrong_otp",
            ErrorKind::OtpExpired => "otp_expired",
        }
    }

    /// The kind with this stable name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the request can have reached the provider, which decides whether resending is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reached {
    /// Nothing left this process, or the connection could not be opened: no OTP went out.
    No,
    /// The request may have been written: an OTP may have gone out.
    Maybe,
    /// The provider answered.
    Yes,
}

/// What the provider answered, kept for the caller.
#[derive(Clone)]
#[non_exhaustive]
pub struct ProviderResponse {
    /// The HTTP status.
    pub http_status: u16,
    /// The provider's own code, verbatim, when the body carried one.
    pub code: Option<String>,
    /// The provider's message, when the body carried one.
    pub message: Option<String>,
    /// Whether the code is one the gateway documents.
    pub code_recognised: bool,
    /// The `Retry-After` the provider asked for, in seconds form.
    pub retry_after: Option<Duration>,
    /// The raw body as received (at most the size cap). Not shown in `Debug`.
    pub body: Bytes,
}

impl fmt::Debug for ProviderResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderResponse")
            .field("http_status", &self.http_status)
            .field("code", &self.code)
            .field("message", &self.message.as_deref().map(crate::mask_digit_runs))
            .field("code_recognised", &self.code_recognised)
            .field("retry_after", &self.retry_after)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error of every operation in otp-rs.
///
/// [`Error::kind`] is stable and coarse (what to do about it); the provider's code, message
/// and HTTP status are kept ([`Error::provider_response`]); the underlying error is kept as
/// [`std::error::Error::source`].
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    gateway: Option<Gateway>,
    retryable: bool,
    reached: Reached,
    configuration: bool,
    description: Cow<'static, str>,
    provider: Option<ProviderResponse>,
    source: Option<BoxError>,
    /// The send guard's refusal: which rule, and when a send would be admitted.
    guard: Option<(&'static str, Duration)>,
}

impl Error {
    fn new(kind: ErrorKind, reached: Reached, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                gateway: None,
                retryable: false,
                reached,
                configuration: false,
                description: description.into(),
                provider: None,
                source: None,
                guard: None,
            }),
        }
    }

    /// Input refused before anything was sent (a bad field, a combination the gateway forbids).
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn invalid_input(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidRequest, Reached::No, description)
    }

    /// Configuration refused before anything was sent (missing credential, bad base URL).
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn configuration(description: impl Into<Cow<'static, str>>) -> Self {
        let mut error = Self::new(ErrorKind::InvalidRequest, Reached::No, description);
        error.inner.configuration = true;
        error
    }

    /// The provider answered and the answer decides the kind.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn provider(
        kind: ErrorKind,
        retryable: bool,
        response: ProviderResponse,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut error = Self::new(kind, Reached::Yes, description);
        error.inner.retryable = retryable;
        error.inner.provider = Some(response);
        error
    }

    /// The connection could not be opened: nothing was sent, so it is retryable.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn connect(source: impl Into<BoxError>) -> Self {
        let mut error = Self::new(ErrorKind::Transport, Reached::No, "could not connect to the provider");
        error.inner.retryable = true;
        error.with_source(source)
    }

    /// The connection broke after the request may have been written.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn transport(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Transport, Reached::Maybe, description)
    }

    /// The deadline passed before a complete answer arrived.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn timeout(deadline: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            Reached::Maybe,
            format!("no complete answer within {} ms; the OTP may or may not have been sent", deadline.as_millis()),
        )
    }

    /// The send got no turn among the client's requests in flight soon enough to still get its
    /// answer, and was refused before anything was written: nothing was sent, so trying again
    /// later is safe.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn shed(waited: Duration) -> Self {
        let mut error = Self::new(
            ErrorKind::Timeout,
            Reached::No,
            format!(
                "no turn to send after waiting {} ms (all of the client's max_concurrent_requests were in flight); nothing was sent",
                waited.as_millis()
            ),
        );
        error.inner.retryable = true;
        error
    }

    /// A timeout described in other words (an injected client's own timeout).
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn timed_out(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Timeout, Reached::Maybe, description)
    }

    /// An answer that cannot be understood.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn unexpected(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::UnexpectedResponse, Reached::Yes, description)
    }

    /// A verification's send guard refused (otp-verifier): `rule` names the rule, nothing was
    /// sent, and a send would be admitted after `retry_after`.
    #[doc(hidden)] // For otp-verifier, not application API.
    pub fn guard_refused(rule: &'static str, retry_after: Duration) -> Self {
        let description =
            format!("refused by the send guard ({rule}); try again in {} s", retry_after.as_secs().max(1));
        let mut error = Self::new(ErrorKind::RateLimited, Reached::No, description);
        error.inner.retryable = true;
        error.inner.guard = Some((rule, retry_after));
        error
    }

    /// The session store (Redis) could not be reached or answered wrongly. `reached` says
    /// whether an OTP went out before it failed (a start whose session could not be kept).
    #[doc(hidden)] // For otp-verifier, not application API.
    pub fn store_unavailable(reached: Reached, description: impl Into<Cow<'static, str>>) -> Self {
        let mut error = Self::new(ErrorKind::Transport, reached, description);
        error.inner.retryable = reached == Reached::No;
        error
    }

    /// A verification session that no longer exists (expired, verified, spent or cancelled):
    /// start a new one. `reached` says whether a resend's OTP went out before it was found gone.
    #[doc(hidden)] // For otp-verifier, not application API.
    pub fn session_expired(reached: Reached, description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::OtpExpired, reached, description)
    }

    /// The error an earlier call with the same idempotency key ended in, answered again
    /// (otp-verifier): its kind, whether its OTP may have gone out, and whether trying again
    /// helps, as the first call said; the provider's own answer is not kept.
    #[doc(hidden)] // For otp-verifier, not application API.
    pub fn replayed(
        kind: ErrorKind,
        reached: Reached,
        retryable: bool,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut error = Self::new(kind, reached, description);
        error.inner.retryable = retryable;
        error
    }

    /// Attaches the underlying error.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Attaches the provider's answer (for an unexpected response that still had a status).
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn with_provider_response(mut self, response: ProviderResponse) -> Self {
        self.inner.provider = Some(response);
        self
    }

    /// Names the gateway the error came from.
    #[doc(hidden)] // For gateway crates and the CLI, not application API.
    pub fn with_gateway(mut self, gateway: Gateway) -> Self {
        self.inner.gateway = Some(gateway);
        self
    }

    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The gateway, when the error came from a send.
    pub fn gateway(&self) -> Option<Gateway> {
        self.inner.gateway
    }

    /// Whether the same send may succeed if tried again later. True for: a documented code
    /// its gateway's table marks retryable (a throttle such as PhonePe `TOO_MANY_REQUESTS`, or
    /// the provider's own "internal error" codes), an undocumented answer with a 5xx status
    /// (provider unavailable), a connection that could not be opened, a send refused before it
    /// was written for want of an in-flight turn, a refusal by the verifier's send guard (after
    /// [`Error::retry_after`]), and a session store that failed before anything was sent.
    /// False for everything else. Retrying a provider failure may still deliver a
    /// second OTP; see [`Error::reached_provider`].
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable
    }

    /// Whether the request can have reached the provider.
    pub fn reached_provider(&self) -> Reached {
        self.inner.reached
    }

    /// Whether this is a configuration error (missing credential, refused base URL).
    pub fn is_configuration(&self) -> bool {
        self.inner.configuration
    }

    /// The provider's answer, when there was one.
    pub fn provider_response(&self) -> Option<&ProviderResponse> {
        self.inner.provider.as_ref()
    }

    /// When to try again: the send guard's wait, else the provider's `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.guard {
            Some((_, wait)) => Some(wait),
            None => self.inner.provider.as_ref().and_then(|p| p.retry_after),
        }
    }

    /// The send guard rule that refused, when the guard refused: `cooldown`,
    /// `number_short_window`, `number_long_window`, `client_ip` or `caller_key`.
    pub fn guard_rule(&self) -> Option<&'static str> {
        self.inner.guard.map(|(rule, _)| rule)
    }

    /// The provider's own code, verbatim.
    pub fn provider_code(&self) -> Option<&str> {
        self.inner.provider.as_ref().and_then(|p| p.code.as_deref())
    }

    /// The provider's message.
    pub fn provider_message(&self) -> Option<&str> {
        self.inner.provider.as_ref().and_then(|p| p.message.as_deref())
    }

    /// The HTTP status of the provider's answer.
    pub fn http_status(&self) -> Option<u16> {
        self.inner.provider.as_ref().map(|p| p.http_status)
    }

    /// What went wrong, in this SDK's words (the provider's message is separate).
    pub fn description(&self) -> &str {
        &self.inner.description
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("gateway", &self.inner.gateway)
            .field("retryable", &self.inner.retryable)
            .field("reached", &self.inner.reached)
            .field("configuration", &self.inner.configuration)
            .field("description", &self.inner.description)
            .field("provider", &self.inner.provider)
            .field("source", &self.inner.source)
            .field("guard", &self.inner.guard)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.kind)?;
        if let Some(gateway) = self.inner.gateway {
            write!(f, " ({gateway})")?;
        }
        write!(f, ": {}", self.inner.description)?;
        if let Some(provider) = &self.inner.provider {
            write!(f, " [HTTP {}", provider.http_status)?;
            if let Some(code) = &provider.code {
                write!(f, ", code {code}")?;
            }
            if let Some(message) = &provider.message {
                // A provider may echo the customer's number: masked like every other number.
                write!(f, ": {}", crate::mask_digit_runs(message))?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<crate::MobileNumberError> for Error {
    fn from(error: crate::MobileNumberError) -> Self {
        Error::invalid_input(format!("invalid mobile number: {error}")).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_the_names_of_the_gateway_docs() {
        let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "invalid_request",
                "authentication",
                "rate_limited",
                "blocked",
                "rejected",
                "provider_unavailable",
                "timeout",
                "transport",
                "unexpected_response",
                "wrong_otp",
                "otp_expired"
            ]
        );
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::from_name("sent"), None);
    }

    #[test]
    fn keeps_provider_details_and_source() {
        let response = ProviderResponse {
            http_status: 429,
            code: Some("TOO_MANY_REQUESTS".into()),
            message: Some("slow down".into()),
            code_recognised: true,
            retry_after: None,
            body: Bytes::from_static(b"{\"secret\":\"x\"}"),
        };
        let io = std::io::Error::other("inner");
        let error = Error::provider(ErrorKind::RateLimited, true, response, "throttled")
            .with_gateway(Gateway::PhonePe)
            .with_source(io);
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert!(error.is_retryable());
        assert_eq!(error.provider_code(), Some("TOO_MANY_REQUESTS"));
        assert_eq!(error.http_status(), Some(429));
        assert_eq!(error.reached_provider(), Reached::Yes);
        assert_eq!(error.source().map(|s| s.to_string()).as_deref(), Some("inner"));
        assert_eq!(
            error.to_string(),
            "rate_limited (phonepe): throttled [HTTP 429, code TOO_MANY_REQUESTS: slow down]"
        );
        let debug = format!("{error:?}");
        assert!(debug.contains("<14 bytes>"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn connect_failures_are_retryable_and_unsent() {
        let error = Error::connect(std::io::Error::other("refused"));
        assert_eq!(error.kind(), ErrorKind::Transport);
        assert!(error.is_retryable());
        assert_eq!(error.reached_provider(), Reached::No);
        let timeout = Error::timeout(Duration::from_secs(1));
        assert!(!timeout.is_retryable());
        assert_eq!(timeout.reached_provider(), Reached::Maybe);
    }
}
