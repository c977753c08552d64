//! Webhooks: every verification event delivered to its tenant's endpoints, signed as Standard
//! Webhooks specify, at least once, across replicas.
//!
//! On Redis the events are the store's stream, appended with each state change (the verifier
//! does that). Each endpoint is one consumer group on it (`webhooks:<name>`), shared by every
//! replica: a replica reads new entries for the group, delivers them, and acknowledges each
//! after a 2xx. A failed delivery stays pending in the group; once it has been idle for its
//! backoff (exponential from `first` up to `max`, with a jitter fixed by the entry so every
//! replica agrees), one replica claims it — a claim only one of racing replicas wins — and
//! tries again. What a dead replica held is claimed the same way. An event still failing when
//! it is older than `give_up_after` (24 h) moves to the dead letters (one script: acknowledged
//! and copied once). One endpoint's slow or failing receiver holds only its own lanes: each
//! endpoint has its own reader, HTTP client and at most `max_in_flight` deliveries at once.
//!
//! On the memory store the same happens in process, from an in-memory log the verifiers write
//! their events to: the same signatures, lanes, backoff and dead letters, lost on restart.
//!
//! A delivery is one POST of `{"type", "timestamp", "data": {…}}` with `webhook-id` (`msg_` and
//! the entry's id: the same for every try of an event), `webhook-timestamp` (seconds, this try)
//! and `webhook-signature` (`v1,` and the base64 HMAC-SHA-256 of `id.timestamp.body` under the
//! endpoint's `whsec_` secret). Redirects are not followed (a 3xx is a failure), the answer's
//! body is read up to 64 KiB and never logged, and each try has the endpoint's timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use otp::verifier::{Event, EventKind, EventSink, RedisStore, StreamedEvent, VerificationId};
use otp::{Error, Gateway};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::config::ConfigError;
use crate::ids::Tags;

/// How long a receiver has to answer one try, by default.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How many deliveries to one endpoint a replica runs at once, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// How much of a receiver's answer is read (then dropped, never logged).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How often a replica with nothing to deliver looks again.
const POLL: Duration = Duration::from_millis(100);
/// How long a replica waits after the store failed a read before reading again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Entries read or claimed at once per endpoint.
const BATCH: usize = 64;
/// The consumer that holds failed entries while they wait for their next try.
const PARKED: &str = "parked";

/// An endpoint's `whsec_` secret (Standard Webhooks: `whsec_` and base64 of 24 to 64 bytes).
/// `Debug` shows nothing.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    /// From its text, `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim().strip_prefix("whsec_").ok_or("a webhook secret starts with whsec_")?;
        // Padded or not, as the official libraries take it.
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes =
            Zeroizing::new(lenient.decode(encoded).map_err(|_| "a webhook secret is whsec_ and base64".to_owned())?);
        if !(24..=64).contains(&bytes.len()) {
            return Err("a webhook secret holds 24 to 64 bytes".to_owned());
        }
        Ok(Self(bytes))
    }

    /// `v1,<base64 HMAC-SHA-256 of "id.timestamp.body">`.
    fn sign(&self, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = keyed(&self.0);
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[allow(clippy::expect_used)] // See the message: it holds by construction.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC-SHA-256 takes a key of any length")
}

/// One tenant's receiver of verification events.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub(crate) name: String,
    pub(crate) tenant: String,
    pub(crate) url: String,
    pub(crate) secret: WebhookSecret,
    /// Event types delivered (`verification.approved`, …); empty: every type.
    pub(crate) events: BTreeSet<String>,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
}

impl WebhookEndpoint {
    /// `name` (1 to 64 letters, digits, `-`, `_`, `.`: its consumer group, its metrics label)
    /// delivers `tenant`'s events to `url`: `https://…`, or `http://` to a loopback address
    /// only (a receiver on the same host, as in tests). Every event type, the default timeout
    /// and concurrency.
    pub fn new(name: &str, tenant: &str, url: &str, secret: WebhookSecret) -> Result<Self, String> {
        if !crate::auth::plain_name(name) {
            return Err("a webhook's name is 1 to 64 letters, digits, -, _ or .".to_owned());
        }
        if !crate::auth::plain_name(tenant) {
            return Err("a tenant is 1 to 64 letters, digits, -, _ or .".to_owned());
        }
        check_url(url)?;
        Ok(Self {
            name: name.to_owned(),
            tenant: tenant.to_owned(),
            url: url.to_owned(),
            secret,
            events: BTreeSet::new(),
            timeout: DEFAULT_WEBHOOK_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        })
    }

    /// Delivers only these event types (`verification.approved`, …).
    pub fn events<'a>(mut self, types: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        for name in types {
            if !EventKind::ALL.iter().any(|kind| kind.as_str() == name) {
                let known: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
                return Err(format!("{name} is not an event type ({})", known.join(", ")));
            }
            self.events.insert(name.to_owned());
        }
        Ok(self)
    }

    /// Each try's deadline (1 ms to 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, String> {
        if timeout.is_zero() || timeout > Duration::from_secs(60) {
            return Err("a webhook's timeout is 1 ms to 60 s".to_owned());
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// At most this many deliveries at once from each replica (1 to 256).
    pub fn max_in_flight(mut self, lanes: usize) -> Result<Self, String> {
        if !(1..=256).contains(&lanes) {
            return Err("a webhook's max_in_flight is 1 to 256".to_owned());
        }
        self.max_in_flight = lanes;
        Ok(self)
    }

    fn wants(&self, event: &Map<String, Value>) -> bool {
        let tenant = event.get("tenant").and_then(Value::as_str);
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        tenant == Some(self.tenant.as_str()) && (self.events.is_empty() || self.events.contains(kind))
    }

    fn group(&self) -> String {
        format!("webhooks:{}", self.name)
    }
}

/// https, or http to a loopback address; no credentials in it.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| format!("{url:?} is not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a webhook URL carries no credentials (the signature authenticates)".to_owned());
    }
    let host = parsed.host_str().unwrap_or("");
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    let loopback = ip.is_ok_and(|ip| ip.is_loopback()) || host.eq_ignore_ascii_case("localhost");
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("a webhook URL is https (http only to a loopback address)".to_owned()),
    }
}

/// When failed deliveries are tried again: after `first`, then four times longer each time up
/// to `max`, each wait ±20 % by the entry (so every replica computes the same), until the event
/// is older than `give_up_after`: then it is a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    first: Duration,
    max: Duration,
    give_up_after: Duration,
}

impl Default for RetrySchedule {
    /// 5 s, 20 s, 80 s, … up to 2 h between tries, for 24 h.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(2 * 3600),
            give_up_after: Duration::from_secs(86_400),
        }
    }
}

impl RetrySchedule {
    /// A schedule of its own (`first` ≤ `max` ≤ `give_up_after`, `first` at least 1 ms).
    pub fn new(first: Duration, max: Duration, give_up_after: Duration) -> Result<Self, String> {
        if first.is_zero() || first > max || max > give_up_after {
            return Err("a retry schedule needs 0 < first ≤ max ≤ give_up_after".to_owned());
        }
        Ok(Self { first, max, give_up_after })
    }

    /// The wait after the `deliveries`-th hand-out of `entry_id` before it is claimed again.
    fn backoff(&self, deliveries: u64, entry_id: &str) -> Duration {
        let exponent = deliveries.saturating_sub(1).min(20) as u32;
        let wait = self.first.saturating_mul(4u32.saturating_pow(exponent)).min(self.max);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (entry_id, deliveries).hash(&mut hasher);
        // ±20 %, the same on every replica (DefaultHasher's keys are fixed).
        let jitter = 0.8 + (hasher.finish() % 401) as f64 / 1000.0;
        wait.mul_f64(jitter).max(Duration::from_millis(1))
    }
}

/// The entry's time: its id is `<ms>-<seq>`.
fn entry_ms(entry_id: &str) -> u64 {
    entry_id.split('-').next().and_then(|ms| ms.parse().ok()).unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// An event read for delivery, with how many times it has been handed out (this one included).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) entry_id: String,
    pub(crate) event: Map<String, Value>,
    deliveries: u64,
}

/// Where events are read from: the Redis store's stream, or the in-process log.
#[derive(Clone)]
pub(crate) enum EventLog {
    Redis(RedisStore),
    Memory(MemoryLog),
}

fn object(streamed: &StreamedEvent) -> Map<String, Value> {
    match streamed.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl EventLog {
    async fn ensure_group(&self, group: &str) -> Result<(), Error> {
        match self {
            EventLog::Redis(store) => store.create_event_group(group, false).await,
            EventLog::Memory(log) => {
                log.ensure_group(group);
                Ok(())
            }
        }
    }

    async fn read_new(&self, group: &str, consumer: &str) -> Result<Vec<Entry>, Error> {
        match self {
            EventLog::Redis(store) => Ok(store
                .read_events(group, consumer, BATCH)
                .await?
                .iter()
                .map(|e| Entry { entry_id: e.entry_id.clone(), event: object(e), deliveries: 1 })
                .collect()),
            EventLog::Memory(log) => Ok(log.read_new(group)),
        }
    }

    /// Pending entries whose backoff has passed, claimed for `consumer`. A failed entry is
    /// parked ([`PARKED`]) when its try fails, so its wait counts from the failure; any other
    /// pending entry is in flight at a replica, or was when that replica died: it is taken
    /// over only once idle longer than a try can take (`in_flight`) as well.
    async fn due(
        &self,
        group: &str,
        consumer: &str,
        schedule: &RetrySchedule,
        in_flight: Duration,
    ) -> Result<Vec<Entry>, Error> {
        match self {
            EventLog::Redis(store) => {
                let mut due = Vec::new();
                for pending in store.pending_events(group, schedule.first.mul_f64(0.8), BATCH).await? {
                    let mut wait = schedule.backoff(pending.deliveries, &pending.entry_id);
                    if pending.consumer != PARKED {
                        wait = wait.max(in_flight);
                    }
                    if pending.idle < wait {
                        continue;
                    }
                    for claimed in store.claim_events(group, consumer, wait, &[pending.entry_id.as_str()]).await? {
                        let deliveries = pending.deliveries.saturating_add(1);
                        due.push(Entry { entry_id: claimed.entry_id.clone(), event: object(&claimed), deliveries });
                    }
                }
                Ok(due)
            }
            EventLog::Memory(log) => Ok(log.due(group, schedule)),
        }
    }

    /// Sets a failed entry aside until its backoff has passed.
    async fn park(&self, group: &str, entry: &Entry) -> Result<(), Error> {
        match self {
            EventLog::Redis(store) => store.park_events(group, PARKED, &[entry.entry_id.as_str()]).await,
            EventLog::Memory(log) => {
                log.park(group, &entry.entry_id);
                Ok(())
            }
        }
    }

    async fn ack(&self, group: &str, entry: &Entry) -> Result<(), Error> {
        match self {
            EventLog::Redis(store) => store.ack_events(group, [entry.entry_id.as_str()]).await,
            EventLog::Memory(log) => {
                log.ack(group, &entry.entry_id);
                Ok(())
            }
        }
    }

    async fn dead_letter(&self, group: &str, entry: &Entry, reason: &str) -> Result<(), Error> {
        match self {
            EventLog::Redis(store) => {
                store.dead_letter(group, &entry.entry_id, reason, entry.deliveries).await.map(drop)
            }
            EventLog::Memory(log) => {
                log.dead_letter(group, entry, reason);
                Ok(())
            }
        }
    }

    /// Up to `count` events (or dead letters) after `cursor`, oldest first.
    pub(crate) async fn page(&self, failed: bool, cursor: Option<&str>, count: usize) -> Result<Vec<Entry>, Error> {
        match self {
            EventLog::Redis(store) => {
                let read = if failed {
                    store.dead_letters_after(cursor, count).await?
                } else {
                    store.events_after(cursor, count).await?
                };
                Ok(read
                    .iter()
                    .map(|e| Entry { entry_id: e.entry_id.clone(), event: object(e), deliveries: 0 })
                    .collect())
            }
            EventLog::Memory(log) => Ok(log.page(failed, cursor, count)),
        }
    }
}

/// The memory store's events, in process: a bounded log (the oldest go first) with consumer
/// groups as the Redis stream has them. Lost on restart.
#[derive(Clone)]
pub(crate) struct MemoryLog {
    state: Arc<Mutex<LogState>>,
    max_len: usize,
}

#[derive(Default)]
struct LogState {
    entries: VecDeque<(String, Map<String, Value>)>,
    /// The sequence number of `entries[0]`.
    first: u64,
    groups: HashMap<String, GroupState>,
    dead: VecDeque<(String, Map<String, Value>)>,
    dead_next: u64,
}

struct GroupState {
    next: u64,
    /// Sequence → (deliveries, last handed out or parked, parked).
    pending: BTreeMap<u64, (u64, Instant, bool)>,
}

fn sequence(entry_id: &str) -> Option<u64> {
    entry_id.split('-').nth(1).and_then(|seq| seq.parse().ok())
}

impl MemoryLog {
    pub(crate) fn new(max_len: usize) -> Self {
        Self { state: Arc::new(Mutex::new(LogState::default())), max_len: max_len.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A panic while holding the lock left whole entries; go on with them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ensure_group(&self, group: &str) {
        let mut state = self.lock();
        let next = state.first + state.entries.len() as u64;
        state.groups.entry(group.to_owned()).or_insert(GroupState { next, pending: BTreeMap::new() });
    }

    fn read_new(&self, group: &str) -> Vec<Entry> {
        let mut state = self.lock();
        let (first, len) = (state.first, state.entries.len() as u64);
        let Some(group) = state.groups.get_mut(group) else { return Vec::new() };
        let from = group.next.max(first);
        let to = (from + BATCH as u64).min(first + len);
        let now = Instant::now();
        for seq in from..to {
            group.pending.insert(seq, (1, now, false));
        }
        group.next = to;
        let taken = (from..to).filter_map(|seq| state.entries.get((seq - first) as usize));
        taken.map(|(id, event)| Entry { entry_id: id.clone(), event: event.clone(), deliveries: 1 }).collect()
    }

    fn due(&self, group: &str, schedule: &RetrySchedule) -> Vec<Entry> {
        let mut state = self.lock();
        let first = state.first;
        let LogState { entries, groups, .. } = &mut *state;
        let Some(group) = groups.get_mut(group) else { return Vec::new() };
        let now = Instant::now();
        let mut due = Vec::new();
        let mut trimmed = Vec::new();
        for (&seq, (deliveries, handed, parked)) in group.pending.iter_mut() {
            let Some((id, event)) = seq.checked_sub(first).and_then(|at| entries.get(at as usize)) else {
                trimmed.push(seq);
                continue;
            };
            // In one process an entry not parked is in flight here: never handed out twice.
            if *parked && now.duration_since(*handed) >= schedule.backoff(*deliveries, id) && due.len() < BATCH {
                *deliveries += 1;
                *handed = now;
                *parked = false;
                due.push(Entry { entry_id: id.clone(), event: event.clone(), deliveries: *deliveries });
            }
        }
        for seq in trimmed {
            group.pending.remove(&seq);
        }
        due
    }

    fn park(&self, group: &str, entry_id: &str) {
        if let (Some(group), Some(seq)) = (self.lock().groups.get_mut(group), sequence(entry_id)) {
            if let Some((_, handed, parked)) = group.pending.get_mut(&seq) {
                (*handed, *parked) = (Instant::now(), true);
            }
        }
    }

    fn ack(&self, group: &str, entry_id: &str) {
        if let (Some(group), Some(seq)) = (self.lock().groups.get_mut(group), sequence(entry_id)) {
            group.pending.remove(&seq);
        }
    }

    fn dead_letter(&self, group_name: &str, entry: &Entry, reason: &str) {
        let mut state = self.lock();
        let Some(seq) = sequence(&entry.entry_id) else { return };
        let Some(group) = state.groups.get_mut(group_name) else { return };
        if group.pending.remove(&seq).is_none() {
            return;
        }
        let mut letter = entry.event.clone();
        letter.insert("group".to_owned(), json!(group_name));
        letter.insert("reason".to_owned(), json!(reason));
        letter.insert("deliveries".to_owned(), json!(entry.deliveries.to_string()));
        letter.insert("entry".to_owned(), json!(entry.entry_id));
        let id = format!("{}-{}", now_ms(), state.dead_next);
        state.dead_next += 1;
        state.dead.push_back((id, letter));
        if state.dead.len() > self.max_len {
            state.dead.pop_front();
        }
    }

    fn page(&self, failed: bool, cursor: Option<&str>, count: usize) -> Vec<Entry> {
        let state = self.lock();
        let list = if failed { &state.dead } else { &state.entries };
        let after = cursor.and_then(sequence);
        list.iter()
            .filter(|(id, _)| after.is_none_or(|after| sequence(id).is_some_and(|seq| seq > after)))
            .take(count)
            .map(|(id, event)| Entry { entry_id: id.clone(), event: event.clone(), deliveries: 0 })
            .collect()
    }
}

impl EventSink for MemoryLog {
    fn emit(&self, event: Event) {
        let Value::Object(map) = event.to_json() else { return };
        let mut state = self.lock();
        let seq = state.first + state.entries.len() as u64;
        state.entries.push_back((format!("{}-{seq}", now_ms()), map));
        if state.entries.len() > self.max_len {
            state.entries.pop_front();
            state.first += 1;
        }
    }
}

/// A replica's webhook delivery: one reader per endpoint and its lanes, until `stop`. Each
/// endpoint's group is made before this returns (so before the service listens: no event of
/// its first requests is missed); a store that cannot be reached now is tried again by the
/// reader.
pub(crate) async fn spawn(
    endpoints: &[WebhookEndpoint],
    log: &EventLog,
    tags: &Tags,
    schedule: RetrySchedule,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, ConfigError> {
    let consumer = consumer_name()?;
    let mut tasks = Vec::new();
    for endpoint in endpoints {
        if let Err(error) = log.ensure_group(&endpoint.group()).await {
            tracing::warn!(endpoint = %endpoint.name, %error, "webhook delivery waits for the store");
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(endpoint.timeout)
            .connect_timeout(endpoint.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("otp-serve/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()
            .map_err(|e| ConfigError::new("webhooks", format!("the webhook client could not be built ({e})")))?;
        let worker = Worker {
            endpoint: Arc::new(endpoint.clone()),
            log: log.clone(),
            tags: tags.clone(),
            schedule,
            client,
            consumer: consumer.clone(),
        };
        tasks.push(tokio::spawn(worker.run(stop.clone())));
    }
    Ok(tasks)
}

/// This replica's name in every group: random, so a restarted replica's pending entries are
/// claimed as a dead one's.
fn consumer_name() -> Result<String, ConfigError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ConfigError::new("webhooks", format!("the operating system's random source failed: {e}")))?;
    Ok(format!("replica-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

#[derive(Clone)]
struct Worker {
    endpoint: Arc<WebhookEndpoint>,
    log: EventLog,
    tags: Tags,
    schedule: RetrySchedule,
    client: reqwest::Client,
    consumer: String,
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let group = self.endpoint.group();
        while let Err(error) = self.log.ensure_group(&group).await {
            tracing::warn!(endpoint = %self.endpoint.name, %error, "webhook delivery waits for the store");
            if pause(&mut stop, Duration::from_secs(1)).await {
                return;
            }
        }
        let mut lanes = Vec::new();
        let mut running = Vec::new();
        for _ in 0..self.endpoint.max_in_flight {
            let (sender, receiver) = mpsc::channel::<Entry>(BATCH);
            lanes.push(sender);
            running.push(tokio::spawn(self.clone().lane(receiver)));
        }
        loop {
            if *stop.borrow() {
                break;
            }
            let mut failed = false;
            let mut batch = match self.log.read_new(&group, &self.consumer).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(endpoint = %self.endpoint.name, %error, "webhook delivery could not read events");
                    failed = true;
                    Vec::new()
                }
            };
            // A try takes at most its timeout; a quarter second more covers the hand-over.
            let in_flight = self.endpoint.timeout + Duration::from_millis(250);
            match self.log.due(&group, &self.consumer, &self.schedule, in_flight).await {
                Ok(due) => batch.extend(due),
                Err(error) => {
                    tracing::warn!(endpoint = %self.endpoint.name, %error, "webhook retries could not be read");
                    failed = true;
                }
            }
            if batch.is_empty() {
                // A store that fails is asked again once a second, not at the poll's pace (and
                // its warning logged as often).
                if pause(&mut stop, if failed { STORE_RETRY } else { POLL }).await {
                    break;
                }
                continue;
            }
            for entry in batch {
                if !self.endpoint.wants(&entry.event) {
                    // Another tenant's, or a type this endpoint does not take: done here.
                    let _ = self.log.ack(&group, &entry).await;
                    continue;
                }
                // One lane per verification: its events leave this replica in order.
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                entry.event.get("id").and_then(Value::as_str).unwrap_or("").hash(&mut hasher);
                let lane = (hasher.finish() % lanes.len() as u64) as usize;
                if let Some(sender) = lanes.get(lane) {
                    let _ = sender.send(entry).await;
                }
            }
        }
        // Deliveries in flight finish (within their timeout); what is queued stays pending for
        // another replica.
        drop(lanes);
        for lane in running {
            let _ = lane.await;
        }
    }

    async fn lane(self, mut receiver: mpsc::Receiver<Entry>) {
        let group = self.endpoint.group();
        let name = self.endpoint.name.clone();
        while let Some(entry) = receiver.recv().await {
            let outcome = match self.body(&entry) {
                Some((kind, body)) => self.deliver(&entry, &body).await.map(|()| kind),
                // Not deliverable at all (no tenant, an unreadable id): nothing a retry changes.
                None => Err("unreadable".to_owned()),
            };
            match outcome {
                Ok(kind) => {
                    if let Err(error) = self.log.ack(&group, &entry).await {
                        // Delivered; a replica may deliver it again (same webhook-id).
                        tracing::warn!(endpoint = %name, %error, "a delivered webhook could not be acknowledged");
                    }
                    metrics::counter!("otp.webhooks.delivered", "endpoint" => name.clone(), "type" => kind)
                        .increment(1);
                    let at = entry.event.get("at").and_then(Value::as_u64).unwrap_or_else(now_ms);
                    let delay = now_ms().saturating_sub(at) as f64 / 1000.0;
                    metrics::histogram!("otp.webhooks.delay", "endpoint" => name.clone()).record(delay);
                }
                Err(reason) => {
                    metrics::counter!("otp.webhooks.failed_attempts", "endpoint" => name.clone(), "reason" => reason.clone())
                        .increment(1);
                    let age = Duration::from_millis(now_ms().saturating_sub(entry_ms(&entry.entry_id)));
                    let next = self.schedule.backoff(entry.deliveries, &entry.entry_id);
                    if reason == "unreadable" || age + next > self.schedule.give_up_after {
                        self.give_up(&group, &entry, &reason).await;
                    } else if let Err(error) = self.log.park(&group, &entry).await {
                        // Still pending: claimed again once idle past a try's time.
                        tracing::warn!(endpoint = %name, %error, "a failed webhook could not be set aside");
                    }
                }
            }
        }
    }

    async fn give_up(&self, group: &str, entry: &Entry, reason: &str) {
        let kind = entry.event.get("type").and_then(Value::as_str).unwrap_or("?").to_owned();
        match self.log.dead_letter(group, entry, reason).await {
            Ok(()) => {
                metrics::counter!("otp.webhooks.dead_lettered", "endpoint" => self.endpoint.name.clone()).increment(1);
                tracing::warn!(
                    endpoint = %self.endpoint.name,
                    event = %kind,
                    reason,
                    deliveries = entry.deliveries,
                    "a webhook was not delivered in time: it is a dead letter (GET /v1/events?status=failed)"
                );
            }
            Err(error) => tracing::warn!(endpoint = %self.endpoint.name, %error, "a dead letter could not be written"),
        }
    }

    /// The event's type and the delivery's body; `None` for an event no tenant owns here.
    fn body(&self, entry: &Entry) -> Option<(&'static str, Vec<u8>)> {
        let public = public_event(&self.tags, &entry.event)?;
        let kind = EventKind::ALL.iter().find(|kind| Some(kind.as_str()) == public["type"].as_str())?.as_str();
        let timestamp = public["at"].clone();
        let body = json!({ "type": kind, "timestamp": timestamp, "data": public });
        serde_json::to_vec(&body).ok().map(|body| (kind, body))
    }

    /// One try: a 2xx is delivered; anything else says why not.
    async fn deliver(&self, entry: &Entry, body: &[u8]) -> Result<(), String> {
        let msg_id = format!("msg_{}", entry.entry_id);
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let signature = self.endpoint.secret.sign(&msg_id, timestamp, body);
        let sent = self
            .client
            .post(&self.endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Err("timeout".to_owned()),
            Err(error) if error.is_connect() => return Err("connect".to_owned()),
            Err(_) => return Err("transport".to_owned()),
        };
        let status = response.status();
        // Read a little of the answer (so the connection can be kept), never log it.
        let mut read = 0;
        while read < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("http_{}", status.as_u16()))
        }
    }
}

/// An event as a tenant sees it: its public id, times in RFC 3339, no tenant field. `None`
/// for an event without a tenant or whose id cannot be read.
pub(crate) fn public_event(tags: &Tags, event: &Map<String, Value>) -> Option<Value> {
    let tenant = event.get("tenant")?.as_str()?;
    let gateway =
        Gateway::ALL.into_iter().find(|g| Some(g.as_str()) == event.get("gateway").and_then(Value::as_str))?;
    let id = VerificationId::parse(event.get("id")?.as_str()?).ok()?;
    let at = event.get("at").and_then(Value::as_u64).unwrap_or(0);
    let at = crate::body::rfc3339(UNIX_EPOCH + Duration::from_millis(at));
    Some(json!({
        "type": event.get("type").cloned().unwrap_or(Value::Null),
        "id": tags.public_id(tenant, gateway, &id),
        "gateway": gateway.as_str(),
        "to": event.get("to").cloned().unwrap_or(Value::Null),
        "outcome": event.get("outcome").cloned().unwrap_or(Value::Null),
        "rule": event.get("rule").cloned().unwrap_or(Value::Null),
        "test": event.get("test").cloned().unwrap_or(Value::Bool(false)),
        "at": at,
    }))
}

/// Waits `wait` or until told to stop: true when stopping.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_is_the_standard_webhooks_one() {
        // Standard Webhooks' own test vector.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(format!("{secret:?}").contains("redacted"));
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "too short");
    }

    #[test]
    fn an_endpoint_is_https_or_loopback_http_without_credentials() {
        let secret = || WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        for ok in ["https://hooks.example.com/otp", "http://127.0.0.1:9000/h", "http://[::1]:9/h", "http://localhost/h"]
        {
            assert!(WebhookEndpoint::new("e", "t", ok, secret()).is_ok(), "{ok}");
        }
        for refused in ["http://hooks.example.com/otp", "http://10.0.0.1/h", "ftp://x/", "https://u:p@x/", "nope"] {
            assert!(WebhookEndpoint::new("e", "t", refused, secret()).is_err(), "{refused}");
        }
        assert!(WebhookEndpoint::new("a b", "t", "https://x/", secret()).is_err());
        let endpoint = WebhookEndpoint::new("e", "t", "https://x/", secret()).unwrap();
        assert!(endpoint.clone().events(["verification.nope"]).is_err());
        let approved = endpoint.events(["verification.approved"]).unwrap();
        let event = |kind: &str, tenant: &str| {
            let Value::Object(map) = json!({ "type": kind, "tenant": tenant }) else { unreachable!() };
            map
        };
        assert!(approved.wants(&event("verification.approved", "t")));
        assert!(!approved.wants(&event("verification.started", "t")));
        assert!(!approved.wants(&event("verification.approved", "other")));
    }

    #[test]
    fn backoff_grows_fourfold_to_its_cap_with_a_jitter_every_replica_agrees_on() {
        let schedule = RetrySchedule::default();
        let first = schedule.backoff(1, "1-0");
        assert!((4_000..=6_000).contains(&first.as_millis()), "{first:?}");
        let second = schedule.backoff(2, "1-0");
        assert!((16_000..=24_000).contains(&second.as_millis()), "{second:?}");
        assert!(schedule.backoff(30, "1-0") <= Duration::from_secs(2 * 3600).mul_f64(1.2));
        assert_eq!(schedule.backoff(3, "7-1"), schedule.backoff(3, "7-1"));
        assert!(RetrySchedule::new(Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2)).is_err());
        assert!(RetrySchedule::new(Duration::from_secs(3), Duration::from_secs(1), Duration::from_secs(2)).is_err());
    }
}
