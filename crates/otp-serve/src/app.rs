//! What every handler shares: the keys, the id tags, and one verifier per enabled gateway over
//! the one store.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use otp::verifier::{
    Check, Context, MemoryStore, RedisStore, Started, State, Status, StoreKey, Verification, VerificationId, Verifier,
};
use otp::{Error, Gateway, GatewayClient, OtpCode};

use crate::auth::Keys;
use crate::config::{ConfigError, ServeConfig, StoreKind, StoreSecret};
use crate::ids::Tags;
use crate::webhooks::{EventLog, MemoryLog};

/// One verifier per gateway, all on clones of one store: the guard counts a number's sends
/// whichever gateway sends them.
pub(crate) enum Verifiers {
    Memory(BTreeMap<Gateway, Verifier<MemoryStore>>),
    Redis(BTreeMap<Gateway, Verifier<RedisStore>>),
}

/// Runs `$call` on the verifier of `$gateway` (`None` when that gateway is not enabled).
macro_rules! on_verifier {
    ($verifiers:expr, $gateway:expr, |$verifier:ident| $call:expr) => {
        match $verifiers {
            Verifiers::Memory(map) => match map.get(&$gateway) {
                Some($verifier) => Some($call),
                None => None,
            },
            Verifiers::Redis(map) => match map.get(&$gateway) {
                Some($verifier) => Some($call),
                None => None,
            },
        }
    };
}

impl Verifiers {
    pub(crate) async fn start(
        &self,
        gateway: Gateway,
        verification: Verification,
        context: &Context,
    ) -> Option<Result<Started, Error>> {
        on_verifier!(self, gateway, |verifier| verifier.start(verification, context).await)
    }

    pub(crate) async fn status(&self, gateway: Gateway, id: &VerificationId) -> Option<Result<Option<Status>, Error>> {
        on_verifier!(self, gateway, |verifier| verifier.status(id).await)
    }

    pub(crate) async fn check(
        &self,
        gateway: Gateway,
        id: &VerificationId,
        code: OtpCode,
    ) -> Option<Result<Check, Error>> {
        on_verifier!(self, gateway, |verifier| verifier.check(id, code).await)
    }

    pub(crate) async fn resend(
        &self,
        gateway: Gateway,
        id: &VerificationId,
        context: &Context,
    ) -> Option<Result<Started, Error>> {
        on_verifier!(self, gateway, |verifier| verifier.resend(id, context).await)
    }

    pub(crate) async fn cancel(&self, gateway: Gateway, id: &VerificationId) -> Option<Result<Option<State>, Error>> {
        on_verifier!(self, gateway, |verifier| verifier.cancel(id).await)
    }

    /// Whether the store answers: a status of an id nobody holds is one read.
    pub(crate) async fn probe(&self) -> Result<(), Error> {
        let id = random_id()?;
        let first = match self {
            Verifiers::Memory(_) => return Ok(()),
            Verifiers::Redis(map) => map.values().next(),
        };
        match first {
            Some(verifier) => verifier.status(&id).await.map(drop),
            None => Ok(()),
        }
    }

    /// Reports the store's sessions that ran out their lifetime (`verification.expired`): one
    /// verifier's sweep covers every gateway's sessions on the store.
    pub(crate) async fn sweep(&self) -> Result<usize, Error> {
        match self {
            Verifiers::Memory(map) => match map.values().next() {
                Some(verifier) => verifier.sweep_expired().await,
                None => Ok(0),
            },
            Verifiers::Redis(map) => match map.values().next() {
                Some(verifier) => verifier.sweep_expired().await,
                None => Ok(0),
            },
        }
    }

    pub(crate) fn gateways(&self) -> Vec<Gateway> {
        match self {
            Verifiers::Memory(map) => map.keys().copied().collect(),
            Verifiers::Redis(map) => map.keys().copied().collect(),
        }
    }
}

/// A verification id no verification has (128 random bits, as the verifier's own).
fn random_id() -> Result<VerificationId, Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::configuration(format!("the operating system's random source failed: {e}")))?;
    VerificationId::parse(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the handlers share.
pub(crate) struct App {
    pub(crate) keys: Keys,
    pub(crate) tags: Tags,
    pub(crate) verifiers: Verifiers,
    /// Where every event is kept: what webhooks deliver and `GET /v1/events` reads.
    pub(crate) events: EventLog,
    /// Places for the starts and resends in flight.
    pub(crate) sends: std::sync::Arc<tokio::sync::Semaphore>,
    pub(crate) max_in_flight_sends: usize,
    pub(crate) enabled: Vec<Gateway>,
    /// Each gateway's session lifetime: a start's `resend_available_at` is its send's time
    /// (its expiry less the lifetime) plus the cooldown, the same for a first answer and a replay.
    pub(crate) lifetimes: BTreeMap<Gateway, Duration>,
    pub(crate) cooldown: Duration,
    pub(crate) max_wrong_tries: u32,
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Whether `/metrics` is on the API's address (else on its own).
    pub(crate) metrics_here: bool,
}

impl App {
    /// The verifiers of `clients` on the configured store.
    pub(crate) async fn new(
        config: &ServeConfig,
        clients: Vec<GatewayClient>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, ConfigError> {
        let store_key = match &config.store_key {
            Some(key) => key.clone(),
            None => StoreSecret::random().map_err(|e| ConfigError::new("store.key_env", e.description().to_owned()))?,
        };
        let mut lifetimes = BTreeMap::new();
        let mut enabled = Vec::new();
        for client in &clients {
            let gateway = client.gateway();
            let validity = <GatewayClient as otp::verifier::SessionGateway>::otp_validity(client);
            lifetimes.insert(gateway, config.session_lifetime.unwrap_or(validity));
            enabled.push(gateway);
        }
        // Every event is kept for webhooks and the audit trail: by the Redis store in its stream
        // (with each change), or in process beside the memory store.
        let (verifiers, events) = match &config.store {
            StoreKind::Memory => {
                let store = MemoryStore::new();
                let log = MemoryLog::new(config.events_max_len);
                (Verifiers::Memory(verifiers(config, clients, &store, Some(&log))?), EventLog::Memory(log))
            }
            StoreKind::Redis { url } => {
                let key = store_key_of(&store_key)?;
                let store = RedisStore::open(url, key)
                    .map_err(|e| ConfigError::new("store.url", e.description().to_owned()))?;
                let store = recording(prefixed(store, config)?, config)?;
                (Verifiers::Redis(verifiers(config, clients, &store, None)?), EventLog::Redis(store))
            }
            StoreKind::Cluster { nodes } => {
                let key = store_key_of(&store_key)?;
                let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                let store = RedisStore::connect_cluster(&nodes, key)
                    .await
                    .map_err(|e| ConfigError::new("store.nodes", e.description().to_owned()))?;
                let store = recording(prefixed(store, config)?, config)?;
                (Verifiers::Redis(verifiers(config, clients, &store, None)?), EventLog::Redis(store))
            }
        };
        Ok(Self {
            keys: Keys::new(config.api_keys.clone()),
            tags: Tags::new(store_key.expose()),
            verifiers,
            events,
            sends: std::sync::Arc::new(tokio::sync::Semaphore::new(config.max_in_flight_sends)),
            max_in_flight_sends: config.max_in_flight_sends,
            enabled,
            lifetimes,
            cooldown: config.guard.cooldown,
            max_wrong_tries: config.guard.max_wrong_tries,
            metrics,
            metrics_here: config.metrics_listen.is_none(),
        })
    }

    /// A place for one start or resend, or `overloaded` when this replica has as many in
    /// flight as it takes: shed before anything is counted or sent, so a slow gateway makes
    /// callers retry elsewhere rather than queue here past their own deadlines.
    pub(crate) fn send_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, crate::problem::Problem> {
        self.sends.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("otp.serve.sends_shed").increment(1);
            crate::problem::Problem::overloaded(self.max_in_flight_sends)
        })
    }

    pub(crate) fn lifetime(&self, gateway: Gateway) -> Duration {
        self.lifetimes.get(&gateway).copied().unwrap_or_default()
    }
}

fn store_key_of(secret: &StoreSecret) -> Result<StoreKey, ConfigError> {
    StoreKey::from_bytes(secret.expose()).map_err(|e| ConfigError::new("store.key_env", e.description().to_owned()))
}

fn prefixed(store: RedisStore, config: &ServeConfig) -> Result<RedisStore, ConfigError> {
    match &config.key_prefix {
        Some(prefix) => {
            store.key_prefix(prefix).map_err(|e| ConfigError::new("store.key_prefix", e.description().to_owned()))
        }
        None => Ok(store),
    }
}

fn recording(store: RedisStore, config: &ServeConfig) -> Result<RedisStore, ConfigError> {
    store
        .with_event_stream(config.events_max_len)
        .map_err(|e| ConfigError::new("store.events_max_len", e.description().to_owned()))
}

fn verifiers<S: otp::verifier::Store>(
    config: &ServeConfig,
    clients: Vec<GatewayClient>,
    store: &S,
    log: Option<&MemoryLog>,
) -> Result<BTreeMap<Gateway, Verifier<S>>, ConfigError> {
    let mut verifiers = BTreeMap::new();
    for client in clients {
        let gateway = client.gateway();
        let mut verifier = Verifier::new(client, store.clone())
            .with_rules(config.guard.clone())
            .map_err(|e| ConfigError::new("guard", e.description().to_owned()))?
            .with_retention(config.retention)
            .map_err(|e| ConfigError::new("retention_s", e.description().to_owned()))?
            .with_guard_fail_open(config.guard_fail_open)
            .with_test_numbers(config.test_numbers.iter().cloned());
        if let Some(log) = log {
            verifier = verifier.with_events(log.clone());
        }
        if let Some(lifetime) = config.session_lifetime {
            verifier = verifier
                .with_session_lifetime(lifetime)
                .map_err(|e| ConfigError::new("guard.session_lifetime_s", e.description().to_owned()))?;
        }
        verifiers.insert(gateway, verifier);
    }
    Ok(verifiers)
}
