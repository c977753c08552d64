//! What every part of the sandbox shares: its configuration and its state.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::credentials as default;
use crate::state::State;

/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Credentials the sandbox accepts, and how slow its slow magic number is.
#[derive(Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// PhonePe `merchantId`.
    pub phonepe_merchant_id: String,
    /// PhonePe salt key.
    pub phonepe_salt_key: String,
    /// PhonePe salt index.
    pub phonepe_salt_index: u32,
    /// Paytm client id.
    pub paytm_client_id: String,
    /// Paytm client secret.
    pub paytm_client_secret: String,
    /// iServeU `client_id`.
    pub iserveu_client_id: String,
    /// iServeU `client_secret`.
    pub iserveu_client_secret: String,
    /// iServeU `username`.
    pub iserveu_username: String,
    /// AOPay `RegistrationID`.
    pub aopay_registration_id: String,
    /// How long `9000000004` waits before answering (35 s: longer than the default timeout).
    pub slow_answer_delay: Duration,
    /// How long an AOPay OTP stays valid (90 s, as AOPay documents).
    pub aopay_otp_validity: Duration,
    /// How long a PhonePe, Paytm or iServeU OTP stays verifiable (10 minutes).
    pub otp_validity: Duration,
    /// Every OTP issued is this code (e.g. `123456`, iServeU's staging value) instead of a
    /// random one: for manual tests. Random 6 digits from the OS's generator otherwise.
    pub fixed_otp: Option<String>,
    /// The most numbers kept ([`DEFAULT_MAX_NUMBERS`](crate::DEFAULT_MAX_NUMBERS), 25,000); the
    /// least recently active is forgotten first.
    pub max_numbers: usize,
    /// The most connections open at once (1,000); more are closed as they arrive.
    pub max_connections: usize,
    /// When set, every `/__sandbox/*` route (inbox, reset, health) needs
    /// `Authorization: Bearer <token>`: for a sandbox other machines can reach.
    pub admin_token: Option<String>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("phonepe_merchant_id", &self.phonepe_merchant_id)
            .field("paytm_client_id", &self.paytm_client_id)
            .field("iserveu_client_id", &self.iserveu_client_id)
            .field("aopay_registration_id", &self.aopay_registration_id)
            .field("slow_answer_delay", &self.slow_answer_delay)
            .field("aopay_otp_validity", &self.aopay_otp_validity)
            .field("otp_validity", &self.otp_validity)
            .field("fixed_otp", &self.fixed_otp.as_ref().map(|_| "[set]"))
            .field("max_numbers", &self.max_numbers)
            .field("max_connections", &self.max_connections)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            phonepe_merchant_id: default::PHONEPE_MERCHANT_ID.into(),
            phonepe_salt_key: default::PHONEPE_SALT_KEY.into(),
            phonepe_salt_index: default::PHONEPE_SALT_INDEX,
            paytm_client_id: default::PAYTM_CLIENT_ID.into(),
            paytm_client_secret: default::PAYTM_CLIENT_SECRET.into(),
            iserveu_client_id: default::ISERVEU_CLIENT_ID.into(),
            iserveu_client_secret: default::ISERVEU_CLIENT_SECRET.into(),
            iserveu_username: default::ISERVEU_USERNAME.into(),
            aopay_registration_id: default::AOPAY_REGISTRATION_ID.into(),
            slow_answer_delay: Duration::from_secs(35),
            aopay_otp_validity: crate::state::AOPAY_VALIDITY,
            otp_validity: crate::state::OTP_VALIDITY,
            fixed_otp: None,
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

    /// The most numbers kept; the least recently active is forgotten first.
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
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
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
}

impl App {
    pub(crate) fn new(config: SandboxConfig) -> Self {
        // Counters live for the limit window, OTPs for their validity: keep a number that long.
        let retention = crate::state::LIMIT_WINDOW.max(config.otp_validity).max(config.aopay_otp_validity);
        let state = State::new(config.max_numbers, retention);
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        Self { config, state, connections: AtomicU64::new(0), metrics }
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
