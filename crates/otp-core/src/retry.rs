//! An SMS-safe retry policy.
//!
//! Sending an OTP is not idempotent: a second request that reaches the provider may text the
//! customer twice. So the policy retries only when no OTP can have gone out — the connection
//! could not be opened (DNS, connect, TLS), or the provider refused because the merchant is
//! throttled (PhonePe `TOO_MANY_REQUESTS`, an HTTP 429 without a documented code). A timeout,
//! a broken connection or a 5xx after the request was written is never retried.

use std::time::Duration;

use crate::{Error, ErrorKind, Reached};

/// When and how often to retry. Off by default ([`RetryPolicy::none`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    overall_deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

impl RetryPolicy {
    /// One attempt, never a retry.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            overall_deadline: Duration::from_secs(60),
        }
    }

    /// Up to `max_attempts` attempts in all (at least 1), with exponential backoff and full
    /// jitter starting at 200 ms and capped at 2 s, `Retry-After` honoured up to 10 s, and every
    /// attempt within 60 s of the first.
    pub fn safe(max_attempts: u32) -> Self {
        Self { max_attempts: max_attempts.max(1), ..Self::none() }
    }

    /// The first backoff; each later one doubles, up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The longest `Retry-After` that is honoured (a longer one is cut to this).
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// One deadline that covers every attempt and every wait, from the first attempt.
    pub fn overall_deadline(mut self, deadline: Duration) -> Self {
        self.overall_deadline = deadline;
        self
    }

    /// The number of attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The deadline over all attempts.
    pub fn deadline(&self) -> Duration {
        self.overall_deadline
    }

    /// Whether this error may be retried without risking a second OTP.
    pub fn may_retry(&self, error: &Error) -> bool {
        if error.reached_provider() == Reached::No && error.kind() == ErrorKind::Transport {
            return true;
        }
        match error.provider_response() {
            Some(provider) if error.kind() == ErrorKind::RateLimited => {
                // A documented throttle code says so itself; an undocumented 429 is a throttle.
                error.is_retryable() || (!provider.code_recognised && provider.http_status == 429)
            }
            _ => false,
        }
    }

    /// How long to wait before attempt `next_attempt` (2 for the first retry).
    pub fn delay(&self, next_attempt: u32, error: &Error) -> Duration {
        if let Some(after) = error.provider_response().and_then(|p| p.retry_after) {
            return after.min(self.max_retry_after);
        }
        let exponent = next_attempt.saturating_sub(2).min(20);
        let ceiling = self.initial_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        // Full jitter: spread clients that failed together over the whole window.
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(ceiling_ms / 2..=ceiling_ms.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProviderResponse;

    fn provider(status: u16, code: &str, recognised: bool, retry_after: Option<u64>) -> ProviderResponse {
        ProviderResponse {
            http_status: status,
            code: Some(code.into()),
            message: None,
            code_recognised: recognised,
            retry_after: retry_after.map(Duration::from_secs),
            body: Default::default(),
        }
    }

    #[test]
    fn retries_only_what_cannot_have_sent_an_otp() {
        let policy = RetryPolicy::safe(3);
        assert!(policy.may_retry(&Error::connect(std::io::Error::other("refused"))));
        assert!(!policy.may_retry(&Error::timeout(Duration::from_secs(1))));
        assert!(!policy.may_retry(&Error::transport("reset mid-answer")));
        assert!(!policy.may_retry(&Error::invalid_input("bad")));
        let unavailable = Error::provider(
            ErrorKind::ProviderUnavailable,
            true,
            provider(500, "INTERNAL_SERVER_ERROR", true, None),
            "x",
        );
        assert!(!policy.may_retry(&unavailable), "a 5xx may have sent the OTP");
        let throttled =
            Error::provider(ErrorKind::RateLimited, true, provider(429, "TOO_MANY_REQUESTS", true, None), "x");
        assert!(policy.may_retry(&throttled));
        let limit =
            Error::provider(ErrorKind::RateLimited, false, provider(200, "OTP_LIMIT_EXCEEDED", true, None), "x");
        assert!(!policy.may_retry(&limit), "a per-number limit does not pass by waiting");
        let bare_429 = Error::provider(ErrorKind::RateLimited, false, provider(429, "???", false, None), "x");
        assert!(policy.may_retry(&bare_429));
    }

    #[test]
    fn delays_grow_are_capped_and_honour_retry_after() {
        let policy = RetryPolicy::safe(10).backoff(Duration::from_millis(100), Duration::from_millis(400));
        let error = Error::connect(std::io::Error::other("refused"));
        for _ in 0..100 {
            let first = policy.delay(2, &error);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let late = policy.delay(9, &error);
            assert!(late >= Duration::from_millis(200) && late <= Duration::from_millis(400), "{late:?}");
        }
        let asked = Error::provider(ErrorKind::RateLimited, true, provider(429, "X", true, Some(3)), "x");
        assert_eq!(policy.delay(2, &asked), Duration::from_secs(3));
        let greedy = Error::provider(ErrorKind::RateLimited, true, provider(429, "X", true, Some(3600)), "x");
        assert_eq!(policy.delay(2, &greedy), Duration::from_secs(10), "capped");
    }

    #[test]
    fn none_is_the_default_and_safe_needs_one_attempt() {
        assert_eq!(RetryPolicy::default().max_attempts(), 1);
        assert_eq!(RetryPolicy::safe(0).max_attempts(), 1);
    }
}
