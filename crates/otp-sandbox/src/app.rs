//! What every part of the sandbox shares: its configuration and its state.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use otp_core::SecretString;
use sha2::{Digest, Sha256};

use crate::state::State;
use crate::Credentials;

/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the sandbox accepts (each gateway's credentials) and how it behaves: validity, limits,
/// bounds, the slow magic number's delay. Each setting has a builder method.
#[derive(Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// The credentials each gateway's routes accept (the defaults are in [`credentials`](crate::credentials)).
    pub credentials: Credentials,
    /// How long `9000000004` waits before answering (35 s: longer than the default timeout).
    pub slow_answer_delay: Duration,
    /// How long an AOPay OTP stays valid (90 s, as AOPay documents).
    pub aopay_otp_validity: Duration,
    /// How long a PhonePe, Paytm or iServeU OTP stays verifiable (10 minutes).
    pub otp_validity: Duration,
    /// Every OTP issued is this code (e.g. `123456`, iServeU's staging value) instead of a
    /// random one: for manual tests. Random 6 digits from the OS's generator otherwise.
    pub fixed_otp: Option<String>,
    /// The window of the per-number send limit (10 minutes): the 6th send inside it is refused.
    pub limit_window: Duration,
    /// The most numbers kept ([`DEFAULT_MAX_NUMBERS`](crate::DEFAULT_MAX_NUMBERS), 25,000). A new
    /// number takes the place of one with nothing live left (no unexpired OTP, no send inside
    /// the limit window); when every kept number is live, its send is refused with HTTP 503.
    pub max_numbers: usize,
    /// The most connections open at once (1,000); more are closed as they arrive.
    pub max_connections: usize,
    /// When set, every `/__sandbox/*` route (inbox, reset, metrics, health, the page's data and
    /// events) needs `Authorization: Bearer <token>` (the events also take a ticket obtained
    /// with it): for a sandbox other machines can reach. The page itself, which holds no data,
    /// is served to anyone. The running sandbox keeps only its SHA-256 digest. An empty token
    /// admits nobody.
    pub admin_token: Option<SecretString>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("credentials", &self.credentials)
            .field("slow_answer_delay", &self.slow_answer_delay)
            .field("aopay_otp_validity", &self.aopay_otp_validity)
            .field("otp_validity", &self.otp_validity)
            .field("limit_window", &self.limit_window)
            .field("fixed_otp", &self.fixed_otp.as_ref().map(|_| "[set]"))
            .field("max_numbers", &self.max_numbers)
            .field("max_connections", &self.max_connections)
            .field("admin_token", &self.admin_token)
            .finish_non_exhaustive()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            credentials: Credentials::default(),
            slow_answer_delay: Duration::from_secs(35),
            aopay_otp_validity: crate::gateways::aopay::OTP_VALIDITY,
            otp_validity: crate::state::OTP_VALIDITY,
            fixed_otp: None,
            limit_window: crate::state::LIMIT_WINDOW,
            max_numbers: crate::state::DEFAULT_MAX_NUMBERS,
            max_connections: 1_000,
            admin_token: None,
        }
    }
}

impl SandboxConfig {
    /// The slow magic number's delay (tests use a short one).
    pub fn slow_answer_delay(mut self, delay: Duration) -> Self {
        self.slow_answer_delay = delay;
        self
    }

    /// How long an AOPay OTP stays valid (tests use a short one).
    pub fn aopay_otp_validity(mut self, validity: Duration) -> Self {
        self.aopay_otp_validity = validity;
        self
    }

    /// How long a PhonePe, Paytm or iServeU OTP stays verifiable (tests use a short one).
    pub fn otp_validity(mut self, validity: Duration) -> Self {
        self.otp_validity = validity;
        self
    }

    /// The window of the per-number send limit (tests use a short one).
    pub fn limit_window(mut self, window: Duration) -> Self {
        self.limit_window = window;
        self
    }

    /// The most numbers kept; a send to a new number when all are live is refused (503).
    pub fn max_numbers(mut self, numbers: usize) -> Self {
        self.max_numbers = numbers;
        self
    }

    /// The most connections open at once; more are closed as they arrive.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Requires this token on every `/__sandbox/*` route.
    pub fn admin_token(mut self, token: impl Into<SecretString>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Issues this code every time instead of a random one.
    pub fn fixed_otp(mut self, code: impl Into<String>) -> Self {
        self.fixed_otp = Some(code.into());
        self
    }
}

/// What every handler shares.
pub(crate) struct App {
    pub(crate) config: SandboxConfig,
    pub(crate) state: State,
    /// TCP connections accepted so far: lets tests and benchmarks see a client's pooling.
    pub(crate) connections: AtomicU64,
    /// The sandbox's own metrics, in a recorder of its own (an application's global recorder,
    /// if any, never sees them, nor they the application's).
    pub(crate) metrics: metrics_exporter_prometheus::PrometheusRecorder,
    /// The SHA-256 of the admin token (the token itself is not kept): a presented token's
    /// digest is compared with it in constant time, so neither its bytes nor its length show
    /// in the time an answer takes.
    pub(crate) admin_digest: Option<[u8; 32]>,
    /// The key that signs the inbox page's event tickets: random per process, so a restart
    /// voids every ticket. `None` when the OS gives no randomness (no ticket is issued then).
    pub(crate) ticket_key: Option<[u8; 32]>,
    /// Set once the sandbox stops: the accept loop ends, and so do the event streams (which
    /// would otherwise hold their connections open through the drain).
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

impl App {
    pub(crate) fn new(mut config: SandboxConfig) -> Self {
        // Counters live for the limit window, OTPs for their validity: keep a number that long.
        let retention = config.limit_window.max(config.otp_validity).max(config.aopay_otp_validity);
        let state = State::new(config.max_numbers, config.limit_window, retention);
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        // Taken out of the config: the clear token is zeroed as it drops here.
        let admin_digest = config.admin_token.take().map(|token| Sha256::digest(token.expose_secret()).into());
        let mut key = [0u8; 32];
        let ticket_key = getrandom::getrandom(&mut key).ok().map(|()| key);
        let stopping = tokio::sync::watch::channel(false).0;
        Self { config, state, connections: AtomicU64::new(0), metrics, admin_digest, ticket_key, stopping }
    }
}

/// Random text from the operating system's cryptographic generator: OTPs and references must
/// not be guessable, even in a sandbox that other jobs share. `None` when the OS cannot give
/// randomness (the request then fails with a 500 rather than issuing a predictable code).
pub(crate) fn random_text(length: usize, alphabet: &[u8]) -> Option<String> {
    let mut bytes = vec![0u8; length];
    getrandom::getrandom(&mut bytes).ok()?;
    // A byte modulo a 10- or 16-letter alphabet: the small bias is irrelevant here.
    Some(bytes.iter().map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()])).collect())
}

impl App {
    /// The code to issue: the fixed one, or 6 random digits.
    pub(crate) fn issue_otp(&self) -> Option<String> {
        match &self.config.fixed_otp {
            Some(code) => Some(code.clone()),
            None => random_text(6, b"0123456789"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_is_never_printed_and_the_running_sandbox_keeps_only_its_digest() {
        let token = "0123456789abcdef-token";
        let config = SandboxConfig::default().admin_token(token);
        let printed = format!("{config:?}");
        assert!(!printed.contains("0123456789abcdef") && printed.contains("[redacted]"), "{printed}");
        let app = App::new(config);
        assert!(app.config.admin_token.is_none(), "the clear token is not kept");
        let digest: [u8; 32] = Sha256::digest(token).into();
        assert_eq!(app.admin_digest, Some(digest));
    }
}
