//! The service's configuration: one TOML file (docs/serve.md has its reference), or built in
//! code by an application that embeds the service. A config error names the key.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use otp::sandbox::SandboxConfig;
use otp::verifier::{GuardRules, Limit, MemoryStore, Verifier};
use otp::{ClientOptions, Environment, GatewayClient, MobileNumber, OtpCode, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::auth::{plain_name, ApiKey, NewApiKey, Scope};
use crate::tls::TlsIdentity;
use crate::webhooks::{RetrySchedule, WebhookEndpoint, WebhookSecret};

/// A configuration the service refuses, naming the key (`store.key_env`,
/// `gateways.<name>.base_url`, `api_keys[1].sha256`, …) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }

    /// The key that is wrong (`""` when the file as a whole is: unreadable, not TOML).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.message)
        } else {
            write!(f, "config: {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where a config's secrets come from besides the file itself: environment variables, and the
/// directory that relative `*_file` paths are read from.
#[derive(Clone)]
pub struct SecretSource {
    vars: Arc<Lookup>,
    dir: PathBuf,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSource").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl SecretSource {
    /// The process environment, and paths relative to the working directory.
    pub fn process() -> Self {
        Self { vars: Arc::new(|name| std::env::var(name).ok()), dir: PathBuf::from(".") }
    }

    /// These variables only (tests, or an application with its own secret store).
    pub fn vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        Self { vars: Arc::new(move |name| vars.get(name).cloned()), dir: PathBuf::from(".") }
    }

    /// Relative `*_file` paths are read from `dir`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    pub(crate) fn var(&self, name: &str) -> Option<Zeroizing<String>> {
        (self.vars)(name).map(Zeroizing::new).filter(|value| !value.trim().is_empty())
    }

    pub(crate) fn file(&self, key: &str, path: &str) -> Result<Zeroizing<String>, ConfigError> {
        let path = self.dir.join(path);
        let text = std::fs::read_to_string(&path)
            .map(Zeroizing::new)
            .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))?;
        // A file's trailing newline is not part of the secret.
        Ok(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned()))
    }
}

/// Where verifications and guard counters live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// In this process (one replica; bounded).
    Memory,
    /// One Redis (or Valkey) server: every replica sharing it answers for every verification.
    Redis {
        /// `redis://host:6379/0`.
        url: String,
    },
    /// A Redis Cluster, given some of its nodes.
    Cluster {
        /// `redis://10.0.0.1:6379`, …
        nodes: Vec<String>,
    },
}

/// The store key: at least 32 random bytes, from which the store derives its keyed hashes and
/// sealing key and the service its id tags. `Debug` shows nothing.
#[derive(Clone)]
pub struct StoreSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for StoreSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreSecret([redacted])")
    }
}

impl StoreSecret {
    /// At least 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 32 {
            return Err(format!("a store key needs at least 32 bytes (this one has {})", bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// The base64 of at least 32 bytes (standard or URL-safe alphabet, padded or not).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let text = text.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(Zeroizing::new)
            .ok_or("the store key must be base64 (e.g. `openssl rand -base64 32`)")?;
        Self::from_bytes(&bytes)
    }

    /// 32 random bytes: for a memory store, whose ids need not outlive the process.
    pub(crate) fn random() -> Result<Self, otp::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        getrandom::getrandom(&mut bytes)
            .map_err(|e| otp::Error::configuration(format!("the operating system's random source failed: {e}")))?;
        Ok(Self(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// The default listen address of `--sandbox` and of a config without `listen`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// The default connection cap: as many are served; as many again get a one-second header
/// timeout and no keep-alive; beyond that a connection is closed as it arrives.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The default header read timeout (also the idle time allowed between kept-alive requests).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How many starts and resends one replica runs at once by default: at a 300 ms gateway that is
/// about 1,700 a second; beyond it a send is shed unsent rather than queued behind the others.
pub const DEFAULT_MAX_IN_FLIGHT_SENDS: usize = 512;
/// How many events the store keeps for webhooks and the audit trail, by default.
pub const DEFAULT_EVENTS_MAX_LEN: usize = 1_000_000;
/// The largest request body served; larger ones are `malformed_request`.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The environment variable the store key is read from unless `store.key_env` or
/// `store.key_file` says otherwise.
pub const DEFAULT_STORE_KEY_ENV: &str = "OTP_SERVE_STORE_KEY";

/// Everything `otp serve` runs with. Made from TOML ([`ServeConfig::from_toml`],
/// [`ServeConfig::from_file`]), for `--sandbox` ([`ServeConfig::sandbox`]), or in code
/// ([`ServeConfig::new`] and the setters).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// `tls_cert` and `tls_key`: the API (and `/metrics` on its own address) over HTTPS.
    pub(crate) tls: Option<TlsIdentity>,
    pub(crate) behind_proxy: bool,
    pub(crate) retention: Duration,
    pub(crate) store: StoreKind,
    pub(crate) store_key: Option<StoreSecret>,
    pub(crate) key_prefix: Option<String>,
    pub(crate) api_keys: Vec<ApiKey>,
    pub(crate) gateways: Vec<GatewayClient>,
    /// `--sandbox`: the embedded sandbox is every gateway (its clients are made once it runs).
    pub(crate) sandbox: Option<SandboxConfig>,
    /// `--sandbox`'s development key, shown once at start.
    pub(crate) dev_key: Option<SecretString>,
    pub(crate) guard: GuardRules,
    pub(crate) guard_fail_open: bool,
    pub(crate) session_lifetime: Option<Duration>,
    pub(crate) test_numbers: Vec<(MobileNumber, OtpCode)>,
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    /// Starts and resends in flight at once; more are shed unsent (`overloaded`).
    pub(crate) max_in_flight_sends: usize,
    /// Each tenant's event receivers.
    pub(crate) webhooks: Vec<WebhookEndpoint>,
    pub(crate) webhook_retries: RetrySchedule,
    /// How many events the store's stream (or the memory log) keeps.
    pub(crate) events_max_len: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeConfig {
    /// Loopback port 8080, the memory store with a random key, the default guard rules and
    /// retention, and no keys or gateways yet (the service refuses to start without both).
    pub fn new() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            metrics_listen: None,
            tls: None,
            webhooks: Vec::new(),
            webhook_retries: RetrySchedule::default(),
            events_max_len: DEFAULT_EVENTS_MAX_LEN,
            behind_proxy: false,
            retention: otp::verifier::DEFAULT_RETENTION,
            store: StoreKind::Memory,
            store_key: None,
            key_prefix: None,
            api_keys: Vec::new(),
            gateways: Vec::new(),
            sandbox: None,
            dev_key: None,
            guard: GuardRules::default(),
            guard_fail_open: false,
            session_lifetime: None,
            test_numbers: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_in_flight_sends: DEFAULT_MAX_IN_FLIGHT_SENDS,
        }
    }

    /// `otp serve --sandbox`: the embedded sandbox as every gateway, the memory store,
    /// loopback only, and one random development key with every scope (tenant `sandbox`),
    /// which the service prints once as `api_key: …` (see [`crate::Server::banner`]).
    pub fn sandbox() -> Result<Self, ConfigError> {
        Self::sandbox_with(SandboxConfig::default())
    }

    /// `--sandbox` with the sandbox configured as given (a short slow-answer delay, a fixed
    /// code, …).
    pub fn sandbox_with(sandbox: SandboxConfig) -> Result<Self, ConfigError> {
        let key = NewApiKey::generate().map_err(|e| ConfigError::new("api_keys", e.description().to_owned()))?;
        let api_key =
            ApiKey::from_key("dev", "sandbox", &key.key, &Scope::ALL).map_err(|e| ConfigError::new("api_keys", e))?;
        let mut config = Self::new();
        config.api_keys.push(api_key);
        config.sandbox = Some(sandbox);
        config.dev_key = Some(key.key);
        Ok(config)
    }

    /// Reads the TOML file at `path`; relative `*_file` paths are read from its directory,
    /// variables from the process environment.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::from_toml_with(&text, &SecretSource::process().dir(dir))
    }

    /// Reads TOML text, with secrets from the process environment.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with(text, &SecretSource::process())
    }

    /// Reads TOML text, with secrets from `secrets`.
    pub fn from_toml_with(text: &str, secrets: &SecretSource) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|error| {
            let key = error.path().to_string();
            let inner = error.into_inner();
            // The message and line only: toml's own rendering quotes the line, which may hold a secret.
            let line = inner.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = match line {
                Some(line) => format!("{} (line {line})", inner.message().trim()),
                None => inner.message().trim().to_owned(),
            };
            ConfigError::new(if key == "." { String::new() } else { key }, message)
        })?;
        raw.resolve(secrets)
    }

    /// Listens here instead (`--addr`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Delivers a tenant's events to this endpoint.
    pub fn webhook(mut self, endpoint: WebhookEndpoint) -> Self {
        self.webhooks.push(endpoint);
        self
    }

    /// Tries failed webhook deliveries again on this schedule (default: 5 s, fourfold, up to
    /// 2 h between tries, for 24 h).
    pub fn webhook_retries(mut self, schedule: RetrySchedule) -> Self {
        self.webhook_retries = schedule;
        self
    }

    /// Keeps about this many events for webhooks and `GET /v1/events` (at least 1).
    pub fn events_max_len(mut self, entries: usize) -> Self {
        self.events_max_len = entries.max(1);
        self
    }

    /// Serves over HTTPS with this certificate and key ([`TlsIdentity::from_pem`]).
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// Serves `/metrics` on this address only, instead of on the API's.
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// Admits this key.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_keys.push(key);
        self
    }

    /// Serves verifications through this client (one per gateway; a later one of the same
    /// gateway replaces an earlier).
    pub fn gateway(mut self, client: GatewayClient) -> Self {
        self.gateways.retain(|c| c.gateway() != client.gateway());
        self.gateways.push(client);
        self
    }

    /// Keeps verifications in this process.
    pub fn memory_store(mut self) -> Self {
        self.store = StoreKind::Memory;
        self
    }

    /// Keeps verifications in Redis at `url`, under `key` (the same on every replica).
    pub fn redis_store(mut self, url: impl Into<String>, key: StoreSecret) -> Self {
        self.store = StoreKind::Redis { url: url.into() };
        self.store_key = Some(key);
        self
    }

    /// The store key (a memory store makes a random one without it).
    pub fn store_key(mut self, key: StoreSecret) -> Self {
        self.store_key = Some(key);
        self
    }

    /// The send guard's rules.
    pub fn guard_rules(mut self, rules: GuardRules) -> Self {
        self.guard = rules;
        self
    }

    /// Lets the guard decide in this process while a Redis store cannot be reached (off by
    /// default: such starts fail as `store_unavailable`, nothing sent).
    pub fn guard_fail_open(mut self, fail_open: bool) -> Self {
        self.guard_fail_open = fail_open;
        self
    }

    /// Every session lives this long (default: its gateway's OTP validity).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = Some(lifetime);
        self
    }

    /// How long a finished verification still answers its state (default 24 h).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// A number with a fixed code, which no gateway is asked to send to.
    pub fn test_number(mut self, to: MobileNumber, code: OtpCode) -> Self {
        self.test_numbers.push((to, code));
        self
    }

    /// The connection cap.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Sheds starts and resends beyond this many in flight at once (at least 1), unsent.
    pub fn max_in_flight_sends(mut self, sends: usize) -> Self {
        self.max_in_flight_sends = sends.max(1);
        self
    }

    /// The header read timeout.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Whether this is `--sandbox`'s configuration.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox.is_some()
    }

    /// What must hold before anything listens: named like the file's keys.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.sandbox.is_some() {
            if !self.listen.ip().is_loopback() {
                return Err(ConfigError::new("listen", "--sandbox listens on a loopback address only"));
            }
        } else if self.gateways.is_empty() {
            return Err(ConfigError::new("gateways", "enable at least one gateway ([gateways.<name>])"));
        }
        if !self.listen.ip().is_loopback() && !self.behind_proxy && self.tls.is_none() {
            return Err(ConfigError::new(
                "listen",
                "a non-loopback address needs TLS (tls_cert and tls_key) or behind_proxy = true (a proxy or load balancer in front terminates TLS)",
            ));
        }
        if self.api_keys.is_empty() {
            return Err(ConfigError::new(
                "api_keys",
                "list at least one key ([[api_keys]]; `otp serve hash-key` makes one)",
            ));
        }
        if matches!(self.store, StoreKind::Redis { .. } | StoreKind::Cluster { .. }) && self.store_key.is_none() {
            return Err(ConfigError::new("store.key_env", "a Redis store needs its store key"));
        }
        if self.retention < Duration::from_secs(1) {
            return Err(ConfigError::new("retention_s", "at least 1"));
        }
        check_rules("guard", &self.guard)?;
        if let Some(lifetime) = self.session_lifetime {
            check_lifetime(lifetime)?;
        }
        Ok(())
    }
}

/// A verifier to ask whether rules are acceptable: its own checks are the one definition.
/// (`None` only if no gateway could make a client; the service checks again as it starts.)
fn probe() -> Option<Verifier> {
    let options = ClientOptions::new().environment(Environment::Custom("http://127.0.0.1:9".to_owned()));
    otp::Gateway::ALL
        .into_iter()
        .find_map(|gateway| otp::sandbox::client(gateway, options.clone()).ok())
        .map(|client| Verifier::new(client, MemoryStore::new()))
}

fn check_rules(key: &str, rules: &GuardRules) -> Result<(), ConfigError> {
    match probe() {
        Some(verifier) => {
            verifier.with_rules(rules.clone()).map(drop).map_err(|e| ConfigError::new(key, e.description().to_owned()))
        }
        None => Ok(()),
    }
}

fn check_lifetime(lifetime: Duration) -> Result<(), ConfigError> {
    match probe() {
        Some(verifier) => verifier
            .with_session_lifetime(lifetime)
            .map(drop)
            .map_err(|e| ConfigError::new("guard.session_lifetime_s", e.description().to_owned())),
        None => Ok(()),
    }
}

// The file's shape. Every table refuses keys it does not know, so a typo is an error, not a
// default silently kept.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    metrics_listen: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    #[serde(default)]
    behind_proxy: bool,
    retention_s: Option<u64>,
    store: Option<RawStore>,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    #[serde(default)]
    gateways: BTreeMap<String, toml::Table>,
    guard: Option<RawGuard>,
    #[serde(default)]
    test_numbers: Vec<RawTestNumber>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    http: Option<RawHttp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: String,
    tenant: String,
    url: String,
    secret_env: Option<String>,
    secret_file: Option<String>,
    events: Option<Vec<String>>,
    timeout_s: Option<f64>,
    max_in_flight: Option<usize>,
}

impl RawWebhook {
    fn resolve(self, at: usize, secrets: &SecretSource) -> Result<WebhookEndpoint, ConfigError> {
        let key = |name: &str| format!("webhooks[{at}].{name}");
        let text = match (&self.secret_env, &self.secret_file) {
            (Some(var), None) => secrets
                .var(var)
                .ok_or_else(|| ConfigError::new(key("secret_env"), format!("the variable {var} is not set")))?,
            (None, Some(path)) => secrets.file(&key("secret_file"), path)?,
            _ => {
                return Err(ConfigError::new(key("secret_env"), "give the whsec_ secret as secret_env or secret_file"))
            }
        };
        let secret = WebhookSecret::parse(&text).map_err(|e| ConfigError::new(key("secret_env"), e))?;
        let mut endpoint = WebhookEndpoint::new(&self.name, &self.tenant, &self.url, secret).map_err(|e| {
            let field = if e.contains("URL") {
                "url"
            } else if e.contains("tenant") {
                "tenant"
            } else {
                "name"
            };
            ConfigError::new(key(field), e)
        })?;
        if let Some(events) = &self.events {
            endpoint =
                endpoint.events(events.iter().map(String::as_str)).map_err(|e| ConfigError::new(key("events"), e))?;
        }
        if let Some(seconds) = self.timeout_s {
            let timeout = Duration::try_from_secs_f64(seconds)
                .map_err(|_| ConfigError::new(key("timeout_s"), "a number of seconds"))?;
            endpoint = endpoint.timeout(timeout).map_err(|e| ConfigError::new(key("timeout_s"), e))?;
        }
        if let Some(lanes) = self.max_in_flight {
            endpoint = endpoint.max_in_flight(lanes).map_err(|e| ConfigError::new(key("max_in_flight"), e))?;
        }
        Ok(endpoint)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    kind: String,
    url: Option<String>,
    nodes: Option<Vec<String>>,
    key_env: Option<String>,
    key_file: Option<String>,
    key_prefix: Option<String>,
    events_max_len: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    name: String,
    tenant: String,
    sha256: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuard {
    cooldown_s: Option<u64>,
    max_wrong_tries: Option<u32>,
    number_short_window: Option<RawLimit>,
    number_long_window: Option<RawLimit>,
    per_client_ip: Option<RawLimit>,
    per_caller_key: Option<RawLimit>,
    ipv6_prefix: Option<u8>,
    session_lifetime_s: Option<u64>,
    #[serde(default)]
    fail_open: bool,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    count: u32,
    window_s: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestNumber {
    to: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_connections: Option<usize>,
    header_read_timeout_s: Option<u64>,
    max_in_flight_sends: Option<usize>,
}

fn address(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.trim().parse().map_err(|_| ConfigError::new(key, "an IP address and port, like 127.0.0.1:8080 or [::]:8080"))
}

impl RawConfig {
    fn resolve(self, secrets: &SecretSource) -> Result<ServeConfig, ConfigError> {
        let mut config = ServeConfig::new();
        if let Some(listen) = &self.listen {
            config.listen = address("listen", listen)?;
        }
        if let Some(listen) = &self.metrics_listen {
            config.metrics_listen = Some(address("metrics_listen", listen)?);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = secrets.file("tls_cert", cert)?;
                let private = secrets.file("tls_key", key)?;
                config.tls = Some(TlsIdentity::from_pem(chain.as_bytes(), private.as_bytes())?);
            }
            (Some(_), None) => return Err(ConfigError::new("tls_key", "tls_cert needs its tls_key")),
            (None, Some(_)) => return Err(ConfigError::new("tls_cert", "tls_key needs its tls_cert")),
            (None, None) => {}
        }
        let mut names = std::collections::BTreeSet::new();
        for (at, raw) in self.webhooks.into_iter().enumerate() {
            let endpoint = raw.resolve(at, secrets)?;
            if !names.insert(endpoint.name.clone()) {
                return Err(ConfigError::new(format!("webhooks[{at}].name"), "each webhook has a name of its own"));
            }
            config.webhooks.push(endpoint);
        }
        config.behind_proxy = self.behind_proxy;
        if let Some(retention) = self.retention_s {
            config.retention = Duration::from_secs(retention);
        }
        if let Some(store) = self.store {
            store.resolve(&mut config, secrets)?;
        }
        if config.store == StoreKind::Memory && config.store_key.is_none() {
            // A memory store's key may still come from the default variable (stable ids across
            // restarts mean nothing there, but an operator may set it anyway).
            if let Some(text) = secrets.var(DEFAULT_STORE_KEY_ENV) {
                config.store_key =
                    Some(StoreSecret::from_base64(&text).map_err(|e| ConfigError::new("store.key_env", e))?);
            }
        }
        for (index, key) in self.api_keys.iter().enumerate() {
            let at = |field: &str| format!("api_keys[{index}].{field}");
            let mut scopes = Vec::with_capacity(key.scopes.len());
            for (n, name) in key.scopes.iter().enumerate() {
                let scope = Scope::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                    ConfigError::new(
                        format!("api_keys[{index}].scopes[{n}]"),
                        format!("unknown scope {name:?}: expected one of {}", known.join(", ")),
                    )
                })?;
                scopes.push(scope);
            }
            let field = if !plain_name(&key.name) {
                "name"
            } else if !plain_name(&key.tenant) {
                "tenant"
            } else if scopes.is_empty() {
                "scopes"
            } else {
                "sha256"
            };
            let api_key = ApiKey::from_digest(&key.name, &key.tenant, &key.sha256, &scopes)
                .map_err(|e| ConfigError::new(at(field), e))?;
            if let Some(earlier) = config.api_keys.iter().position(|k| k.name() == api_key.name()) {
                return Err(ConfigError::new(at("name"), format!("the same name as api_keys[{earlier}]")));
            }
            config.api_keys.push(api_key);
        }
        let digests: Vec<String> = self.api_keys.iter().map(|k| k.sha256.trim().to_ascii_lowercase()).collect();
        for (index, digest) in digests.iter().enumerate() {
            if let Some(earlier) = digests[..index].iter().position(|d| d == digest) {
                return Err(ConfigError::new(
                    format!("api_keys[{index}].sha256"),
                    format!("the same key as api_keys[{earlier}]"),
                ));
            }
        }
        for (name, table) in &self.gateways {
            config.gateways.push(crate::gateways::client_from_config(name, table, secrets)?);
        }
        if let Some(guard) = self.guard {
            guard.resolve(&mut config)?;
        }
        for (index, number) in self.test_numbers.iter().enumerate() {
            let to = MobileNumber::parse(&number.to).map_err(|e| {
                ConfigError::new(format!("test_numbers[{index}].to"), otp::Error::from(e).description().to_owned())
            })?;
            let code = OtpCode::parse(&number.code)
                .map_err(|e| ConfigError::new(format!("test_numbers[{index}].code"), e.description().to_owned()))?;
            config.test_numbers.push((to, code));
        }
        if let Some(http) = self.http {
            if let Some(connections) = http.max_connections {
                if connections == 0 {
                    return Err(ConfigError::new("http.max_connections", "at least 1"));
                }
                config.max_connections = connections;
            }
            if let Some(timeout) = http.header_read_timeout_s {
                if timeout == 0 {
                    return Err(ConfigError::new("http.header_read_timeout_s", "at least 1"));
                }
                config.header_read_timeout = Duration::from_secs(timeout);
            }
            if let Some(sends) = http.max_in_flight_sends {
                if sends == 0 {
                    return Err(ConfigError::new("http.max_in_flight_sends", "at least 1"));
                }
                config.max_in_flight_sends = sends;
            }
        }
        config.check()?;
        Ok(config)
    }
}

impl RawStore {
    fn resolve(self, config: &mut ServeConfig, secrets: &SecretSource) -> Result<(), ConfigError> {
        if let Some(entries) = self.events_max_len {
            if entries == 0 {
                return Err(ConfigError::new("store.events_max_len", "keep at least one event"));
            }
            config.events_max_len = entries;
        }
        config.store = match self.kind.as_str() {
            "memory" => {
                if self.url.is_some() || self.nodes.is_some() {
                    return Err(ConfigError::new("store.kind", "a memory store takes no url or nodes"));
                }
                StoreKind::Memory
            }
            "redis" => {
                let url =
                    self.url.ok_or_else(|| ConfigError::new("store.url", "a Redis store needs url = \"redis://…\""))?;
                if self.nodes.is_some() {
                    return Err(ConfigError::new("store.nodes", "nodes are for kind = \"cluster\""));
                }
                StoreKind::Redis { url }
            }
            "cluster" => {
                let nodes = self.nodes.filter(|n| !n.is_empty()).ok_or_else(|| {
                    ConfigError::new("store.nodes", "a Redis Cluster store needs nodes = [\"redis://…\", …]")
                })?;
                if self.url.is_some() {
                    return Err(ConfigError::new("store.url", "a cluster is given by its nodes"));
                }
                StoreKind::Cluster { nodes }
            }
            other => {
                return Err(ConfigError::new(
                    "store.kind",
                    format!("unknown store {other:?}: expected memory, redis or cluster"),
                ))
            }
        };
        let key = match (&self.key_env, &self.key_file) {
            (Some(_), Some(_)) => return Err(ConfigError::new("store.key_file", "give key_env or key_file, not both")),
            (None, Some(path)) => Some(("store.key_file", secrets.file("store.key_file", path)?)),
            (env, None) => {
                let name = env.as_deref().unwrap_or(DEFAULT_STORE_KEY_ENV);
                match secrets.var(name) {
                    Some(value) => Some(("store.key_env", value)),
                    None if config.store == StoreKind::Memory && env.is_none() => None,
                    None => {
                        return Err(ConfigError::new(
                            "store.key_env",
                            format!(
                                "set {name} to the base64 of at least 32 random bytes (e.g. `openssl rand -base64 32`)"
                            ),
                        ))
                    }
                }
            }
        };
        if let Some((key, text)) = key {
            config.store_key = Some(StoreSecret::from_base64(&text).map_err(|e| ConfigError::new(key, e))?);
        }
        if let Some(prefix) = self.key_prefix {
            config.key_prefix = Some(prefix);
        }
        Ok(())
    }
}

impl RawGuard {
    fn resolve(self, config: &mut ServeConfig) -> Result<(), ConfigError> {
        let limit = |raw: RawLimit| Limit::new(raw.count, Duration::from_secs(raw.window_s));
        let mut rules = GuardRules::default();
        // Each rule is checked on its own, so that a refusal names its key.
        let mut apply = |key: &str, change: &dyn Fn(GuardRules) -> GuardRules| -> Result<(), ConfigError> {
            check_rules(key, &change(GuardRules::default()))?;
            rules = change(rules.clone());
            Ok(())
        };
        if let Some(cooldown) = self.cooldown_s {
            apply("guard.cooldown_s", &|r| r.cooldown(Duration::from_secs(cooldown)))?;
        }
        if let Some(tries) = self.max_wrong_tries {
            if tries == 0 {
                return Err(ConfigError::new("guard.max_wrong_tries", "at least 1"));
            }
            apply("guard.max_wrong_tries", &|r| r.max_wrong_tries(tries))?;
        }
        if let Some(raw) = self.number_short_window {
            apply("guard.number_short_window", &|r| r.number_short_window(limit(raw)))?;
        }
        if let Some(raw) = self.number_long_window {
            apply("guard.number_long_window", &|r| r.number_long_window(limit(raw)))?;
        }
        if let Some(raw) = self.per_client_ip {
            apply("guard.per_client_ip", &|r| r.per_client_ip(limit(raw)))?;
        }
        if let Some(raw) = self.per_caller_key {
            apply("guard.per_caller_key", &|r| r.per_caller_key(limit(raw)))?;
        }
        if let Some(bits) = self.ipv6_prefix {
            apply("guard.ipv6_prefix", &|r| r.ipv6_prefix(bits))?;
        }
        config.guard = rules;
        config.guard_fail_open = self.fail_open;
        if let Some(lifetime) = self.session_lifetime_s {
            let lifetime = Duration::from_secs(lifetime);
            check_lifetime(lifetime)?;
            config.session_lifetime = Some(lifetime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    const DIGEST: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

    fn base() -> String {
        format!(
            "[[api_keys]]\nname = \"a\"\ntenant = \"t\"\nsha256 = \"{DIGEST}\"\nscopes = [\"verifications:write\"]\n"
        )
    }

    fn error(text: &str) -> ConfigError {
        ServeConfig::from_toml_with(text, &SecretSource::vars([])).unwrap_err()
    }

    #[test]
    fn a_config_error_names_its_key() {
        assert_eq!(error("listen = 8080").key(), "listen");
        assert_eq!(error("listen = \"localhost\"").key(), "listen");
        assert_eq!(error("lisen = \"127.0.0.1:1\"").key(), "lisen", "an unknown key is named");
        assert!(error("lisen = \"127.0.0.1:1\"").message().contains("unknown field"));
        assert_eq!(error("listen = ").key(), "", "not TOML at all");
        assert_eq!(error("[store]\nkind = \"disk\"").key(), "store.kind");
        assert_eq!(error("[store]\nkind = \"redis\"").key(), "store.url");
        assert_eq!(error("[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:1/\"").key(), "store.key_env");
        assert_eq!(error("[store]\nkind = \"memory\"\nkey_file = \"/nonexistent/key\"").key(), "store.key_file");
        assert_eq!(error("[store]\nkind = \"memory\"\ncolour = 1").key(), "store.colour");
        assert_eq!(
            error("[[api_keys]]\nname = \"a\"\ntenant = \"t\"\nsha256 = \"abc\"\nscopes = [\"verifications:write\"]")
                .key(),
            "api_keys[0].sha256"
        );
        assert_eq!(error(&base().replace("verifications:write", "everything")).key(), "api_keys[0].scopes[0]");
        assert_eq!(
            error(&format!("{}{}", base(), base().replace("name = \"a\"", "name = \"b\""))).key(),
            "api_keys[1].sha256"
        );
        assert_eq!(error(&format!("{}[guard]\ncooldown_s = 100000", base())).key(), "guard.cooldown_s");
        assert_eq!(
            error(&format!("{}[guard]\nper_client_ip = {{ count = 5, window_s = 0 }}", base())).key(),
            "guard.per_client_ip"
        );
        assert_eq!(error(&format!("{}[guard]\nipv6_prefix = 12", base())).key(), "guard.ipv6_prefix");
        assert_eq!(error(&format!("{}[guard]\nsession_lifetime_s = 0", base())).key(), "guard.session_lifetime_s");
        assert_eq!(
            error(&format!("{}[[test_numbers]]\nto = \"12\"\ncode = \"123456\"", base())).key(),
            "test_numbers[0].to"
        );
        assert_eq!(
            error(&format!("{}[[test_numbers]]\nto = \"9999999999\"\ncode = \"12a\"", base())).key(),
            "test_numbers[0].code"
        );
        assert_eq!(error(&format!("{}[gateways.nowhere]\nenvironment = \"uat\"", base())).key(), "gateways.nowhere");
        assert_eq!(error(&base()).key(), "gateways", "no gateway enabled");
        assert_eq!(error("tls_cert = \"cert.pem\"").key(), "tls_key", "half a pair");
        assert_eq!(error("[[webhooks]]\ntenant = \"t\"").key(), "webhooks[0]");
        assert_eq!(error("[http]\nmax_connections = 0").key(), "http.max_connections");
        let shown = error("listen = 8080").to_string();
        assert!(shown.starts_with("config: listen: ") && shown.contains("line 1"), "{shown}");
    }

    #[test]
    fn the_store_key_comes_from_its_variable_or_file_and_must_be_32_bytes() {
        let dir = std::env::temp_dir().join(format!("otp-serve-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key"), format!("{KEY}\n")).unwrap();
        std::fs::write(dir.join("short"), "c2hvcnQ=").unwrap();
        let redis = "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:1/\"\n";
        let with = |text: &str, vars: Vec<(String, String)>| {
            let mut raw: RawConfig = toml::from_str(text).unwrap();
            let mut config = ServeConfig::new();
            raw.store.take().unwrap().resolve(&mut config, &SecretSource::vars(vars).dir(&dir)).map(|_| config)
        };
        let config = with(redis, vec![(DEFAULT_STORE_KEY_ENV.into(), KEY.into())]).unwrap();
        assert_eq!(config.store_key.unwrap().expose(), b"0123456789abcdef0123456789abcdef");
        let config = with(&format!("{redis}key_env = \"MY_KEY\""), vec![("MY_KEY".into(), KEY.into())]).unwrap();
        assert!(config.store_key.is_some());
        let config = with(&format!("{redis}key_file = \"key\""), vec![]).unwrap();
        assert_eq!(config.store_key.unwrap().expose().len(), 32, "the trailing newline is not the key's");
        assert_eq!(with(&format!("{redis}key_file = \"short\""), vec![]).unwrap_err().key(), "store.key_file");
        let short = with(redis, vec![(DEFAULT_STORE_KEY_ENV.into(), "c2hvcnQ=".into())]).unwrap_err();
        assert!(short.to_string().contains("at least 32 bytes"), "{short}");
        assert_eq!(
            with(&format!("{redis}key_env = \"A\"\nkey_file = \"key\""), vec![]).unwrap_err().key(),
            "store.key_file"
        );
        assert!(
            with("[store]\nkind = \"memory\"", vec![]).unwrap().store_key.is_none(),
            "a memory store may go without"
        );
        assert!(!format!("{:?}", StoreSecret::from_base64(KEY).unwrap()).contains(KEY));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_public_address_needs_a_proxy_and_sandbox_stays_on_loopback() {
        let mut config = ServeConfig::sandbox().unwrap();
        assert!(config.check().is_ok());
        assert!(config.dev_key.is_some() && config.is_sandbox());
        config.listen = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(config.check().unwrap_err().key(), "listen");
        let shown = format!("{:?}", ServeConfig::sandbox().unwrap());
        assert!(!shown.contains("otp_sk_"), "{shown}");
    }
}
