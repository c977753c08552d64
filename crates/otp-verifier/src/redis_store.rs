//! The Redis store (feature `redis`): sessions and guard counters shared by every instance.
//!
//! Every decision that reads and writes is one Lua script, timed by the server's `TIME`, so
//! instances' clocks may drift. Every key has a TTL. Keys are keyed hashes (HMAC-SHA-256) in a
//! hash tag, values are sealed (XChaCha20-Poly1305, bound to their key name): a read of Redis
//! alone shows no number, address, caller key, code, reference or token.
//!
//! On Redis Cluster ([`RedisStore::connect_cluster`]): every guard key shares one hash tag, so a
//! decision over a number, an address and a caller key is one script on one slot; sessions
//! each have their own tag and spread over the shards. The guard's shard carries every decision
//! (tens of thousands a second, far above any OTP traffic); sessions carry the rest.
//!
//! Sessions pending are also listed in one expiry set (`{prefix}:{x}:expiries`, scored by the
//! end of their lifetime), from which `Verifier::sweep_expired` claims the ones that ran out,
//! each once: on one server the session scripts keep it in the same step; on a Cluster it is
//! its own slot and is written by a call of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use otp_core::{Error, Reached};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, Script, ScriptInvocation};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::events::Event;
use crate::id::{random_bytes, VerificationId};
use crate::memory::millis;
use crate::redis_events::StreamEvents;
use crate::rules::GuardRule;
use crate::store::{
    Admission, Claim, Claimed, Counted, Ending, Generation, GuardKey, Lifetimes, Loaded, Lookup, Sealed, State, Store,
    Swept, Ticket, TryTaken,
};

/// The secret the Redis store derives its keyed-hash key and its sealing key from: at least 32
/// random bytes, the same on every instance. `Debug` shows nothing of it. Changing it renames
/// every key: counters start afresh and open sessions end (there is no rotation with overlap).
#[derive(Clone)]
pub struct StoreKey(Zeroizing<Vec<u8>>);

impl StoreKey {
    /// At least 32 bytes from a secret manager (not a password: it is used as is).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 32 {
            return Err(Error::configuration("a store key needs at least 32 random bytes"));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut mac = keyed_hash(&self.0);
        mac.update(label);
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

#[allow(clippy::expect_used)] // See the message: it holds by construction.
fn keyed_hash(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC-SHA-256 takes a key of any length")
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

/// Sessions and guard counters in Redis 6.2+ or Valkey — one server ([`RedisStore::open`]) or a
/// Redis Cluster ([`RedisStore::connect_cluster`]) — shared by every instance that uses the
/// same servers, key prefix and [`StoreKey`]. Cheap to clone (one multiplexed connection).
///
/// When Redis cannot be reached every operation fails with kind `transport` and sends nothing;
/// the connection manager reconnects on its own. Every script is safe to run twice with the
/// same arguments (a client retry after a lost reply, as the cluster client makes): a replay
/// changes nothing the first run did not. The guard fails open only when the verifier is told
/// to (`Verifier::with_guard_fail_open`), and only while Redis cannot be reached.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    keys: Arc<Keys>,
    /// Set by [`RedisStore::with_event_stream`]: the store records every event in its stream.
    pub(crate) events: Option<Arc<StreamEvents>>,
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Keys {
    prefix: Box<str>,
    hash: Zeroizing<[u8; 32]>,
    seal: XChaCha20Poly1305,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.keys.prefix).finish_non_exhaustive()
    }
}

/// How long a command may wait for Redis before the operation fails as `transport`.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

impl RedisStore {
    /// A store on the server at `url` (`redis://host:6379/0`, `rediss://…` needs redis' TLS
    /// features). Connects on first use, so an application starts while Redis is down and its
    /// verifications answer `transport` until Redis is back.
    pub fn open(url: &str, key: StoreKey) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::configuration(format!("the Redis address is not valid ({:?})", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_RESPONSE_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::configuration(format!("the Redis connection could not be set up ({:?})", e.kind())))?;
        Ok(Self::with_connection(connection, key))
    }

    /// A store on a connection manager the application configured itself.
    pub fn with_connection(connection: ConnectionManager, key: StoreKey) -> Self {
        Self::on(Connection::Single(connection), key)
    }

    /// A store on a Redis Cluster, given some of its nodes (`redis://10.0.0.1:6379`, …).
    /// Connects now: a cluster that cannot be reached is a `transport` error here.
    pub async fn connect_cluster(nodes: &[&str], key: StoreKey) -> Result<Self, Error> {
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(DEFAULT_RESPONSE_TIMEOUT)
            .response_timeout(DEFAULT_RESPONSE_TIMEOUT)
            .build()
            .map_err(|e| Error::configuration(format!("the Redis Cluster addresses are not valid ({:?})", e.kind())))?;
        let connection = client.get_async_connection().await.map_err(unreachable)?;
        Ok(Self::on(Connection::Cluster(connection), key))
    }

    fn on(connection: Connection, key: StoreKey) -> Self {
        let seal = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&*key.derive(b"otp-verifier seal v1")));
        let keys = Keys { prefix: "otp".into(), hash: key.derive(b"otp-verifier key hash v1"), seal };
        Self { connection, keys: Arc::new(keys), events: None }
    }

    /// [`RedisStore::invoke`] for the other modules' scripts.
    pub(crate) async fn invoke_script<T: FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> Result<T, Error> {
        self.invoke(invocation).await
    }

    /// Runs one script call: one round trip, on whichever connection this store has.
    async fn invoke<T: FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> Result<T, Error> {
        match &self.connection {
            Connection::Single(connection) => invocation.invoke_async(&mut connection.clone()).await,
            Connection::Cluster(connection) => invocation.invoke_async(&mut connection.clone()).await,
        }
        .map_err(unreachable)
    }

    /// The prefix of every key (default `otp`), to share one Redis between applications.
    pub fn key_prefix(mut self, prefix: &str) -> Result<Self, Error> {
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
        {
            return Err(Error::configuration("a key prefix is 1 to 64 visible ASCII characters without braces"));
        }
        let keys = Keys { prefix: prefix.into(), hash: self.keys.hash.clone(), seal: self.keys.seal.clone() };
        self.keys = Arc::new(keys);
        Ok(self)
    }

    /// The hex of a keyed hash of `kind` and `data` (128 bits).
    fn hashed(&self, kind: char, data: &[&[u8]]) -> String {
        let mut mac = keyed_hash(&*self.keys.hash);
        mac.update(&[kind as u8]);
        for part in data {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// `{prefix}:{g}:{kind}:<hex>`. Every guard key shares the hash tag `{g}`: a decision
    /// counts the number, the client address and the caller key in one script, and Redis
    /// Cluster runs a script only over keys of one slot.
    fn guard_key(&self, key: GuardKey<'_>) -> String {
        let (kind, hex) = match key {
            GuardKey::Number(mobile) => ('n', self.hashed('n', &[mobile.expose_digits().as_bytes()])),
            GuardKey::ClientIp(ip) => ('i', self.hashed('i', &[ip.to_string().as_bytes()])),
            GuardKey::CallerKey(key) => ('c', self.hashed('c', &[key.as_bytes()])),
        };
        format!("{}:{{g}}:{kind}:{hex}", self.keys.prefix)
    }

    /// `{prefix}:s:{<hex>}` (the live part) and `{prefix}:r:{<hex>}` (the record, which outlives
    /// it as the tombstone): each session is its own hash tag, so sessions spread over a
    /// cluster and one session's two keys are one slot.
    fn session_keys(&self, id: &VerificationId) -> (String, String) {
        self.session_keys_of(&self.session_hash(id))
    }

    /// The keyed hash naming a session's keys, and its member in the expiry set.
    fn session_hash(&self, id: &VerificationId) -> String {
        self.hashed('s', &[id.as_bytes()])
    }

    fn session_keys_of(&self, hex: &str) -> (String, String) {
        (format!("{}:s:{{{hex}}}", self.keys.prefix), format!("{}:r:{{{hex}}}", self.keys.prefix))
    }

    /// `{prefix}:{x}:expiries`: every pending session's hash, scored by when its lifetime ends
    /// (ms, the server's clock), for the sweeper. One key, in a hash tag of its own: on a
    /// Cluster it is one slot, apart from the sessions.
    fn expiry_key(&self) -> String {
        format!("{}:{{x}}:expiries", self.keys.prefix)
    }

    /// `{prefix}:{x}:claim:<ticket>`: what one sweep claimed, so that its replay answers the same.
    fn sweep_claim_key(&self, ticket: Ticket) -> String {
        format!("{}:{{x}}:claim:{}", self.keys.prefix, ticket_text(ticket))
    }

    /// `{prefix}:{e}:events`: the stream of events (`RedisStore::event_stream`), one key in a
    /// hash tag of its own.
    pub(crate) fn stream_key(&self) -> String {
        format!("{}:{{e}}:events", self.keys.prefix)
    }

    /// On one server the session scripts keep the expiry set in the same step; on a Cluster the
    /// set is on another slot than the session, so it is written by a call of its own.
    fn single_server(&self) -> bool {
        matches!(self.connection, Connection::Single(_))
    }

    /// Runs one command (or pipeline) on whichever connection this store has.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, Error> {
        match &self.connection {
            Connection::Single(connection) => command.query_async(&mut connection.clone()).await,
            Connection::Cluster(connection) => command.query_async(&mut connection.clone()).await,
        }
        .map_err(unreachable)
    }

    /// Runs a pipeline (commands on one slot: one round trip) and ignores its answers.
    pub(crate) async fn query_pipeline(&self, pipeline: &redis::Pipeline) -> Result<(), Error> {
        match &self.connection {
            Connection::Single(connection) => pipeline.query_async::<()>(&mut connection.clone()).await,
            Connection::Cluster(connection) => pipeline.query_async::<()>(&mut connection.clone()).await,
        }
        .map_err(unreachable)
    }

    /// `{prefix}:k:{<hex>}`: an idempotency key, as a keyed hash.
    fn idempotency_key(&self, key: &str) -> String {
        format!("{}:k:{{{}}}", self.keys.prefix, self.hashed('k', &[key.as_bytes()]))
    }

    /// Opens a sealed record (or answer) that a script handed back, if any.
    fn open_optional(&self, key: &str, value: Option<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, Error> {
        match value {
            Some(value) => self.open_sealed(key, &value),
            None => Err(Error::store_unavailable(Reached::No, "a verification record is missing its value")),
        }
    }

    /// nonce ‖ ciphertext, authenticated together with the key name it is stored under.
    pub(crate) fn seal(&self, key: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let nonce: [u8; 24] = random_bytes()?;
        let sealed = self
            .keys
            .seal
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: payload, aad: key.as_bytes() })
            .map_err(|_| Error::configuration("a session could not be sealed"))?;
        let mut value = Vec::with_capacity(24 + sealed.len());
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        Ok(value)
    }

    pub(crate) fn open_sealed(&self, key: &str, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let refused = || {
            Error::store_unavailable(
                Reached::No,
                "a stored session could not be opened: another store key, or it was altered",
            )
        };
        let (nonce, sealed) = value.split_at_checked(24).ok_or_else(refused)?;
        self.keys
            .seal
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: key.as_bytes() })
            .map(Zeroizing::new)
            .map_err(|_| refused())
    }
}

fn unreachable(error: redis::RedisError) -> Error {
    Error::store_unavailable(
        Reached::No,
        format!("the verification store (Redis) failed ({:?}); nothing was sent", error.kind()),
    )
    .with_source(error)
}

/// The guard decision: for every rule, the sends of its key inside the window ending now; all
/// admit, so the send is written to every key, old entries trimmed, TTL renewed.
/// ARGV: ticket, rule count, then per rule (key index, window ms, limit, rule index), then per
/// key the ms to keep. Answers {1} or {0, rule index, ms to wait}. A replay of an admitted call
/// (its ticket already written) answers admitted and writes nothing.
const ADMIT: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {1, 0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rules = tonumber(ARGV[2])
local refused, longest = -1, 0
for i = 0, rules - 1 do
  local at = 3 + i * 4
  local key = KEYS[tonumber(ARGV[at])]
  local window = tonumber(ARGV[at + 1])
  local limit = tonumber(ARGV[at + 2])
  local wait = 0
  if limit == 0 then
    wait = window
  else
    local inside = redis.call('ZRANGEBYSCORE', key, now - window + 1, '+inf', 'WITHSCORES')
    local count = #inside / 2
    if count >= limit then
      wait = math.max(tonumber(inside[(count - limit) * 2 + 2]) + window - now, 1)
    end
  end
  if wait > longest then
    longest = wait
    refused = tonumber(ARGV[at + 3])
  end
end
if refused >= 0 then
  return {0, refused, longest}
end
local keep_at = 3 + rules * 4
for k = 1, #KEYS do
  local keep = tonumber(ARGV[keep_at + k - 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - keep)
  redis.call('ZADD', KEYS[k], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[k], keep)
end
return {1, 0, 0}
";

// A session is two keys in one hash tag: the live part `s` (payload `v`, tries `t`,
// generation `g`, the generation `p` the payload was written at — what checks read; a session
// written before `p` existed reads `g` — and per-call marks), whose TTL is the session's lifetime, and its record `r`
// (state `st` as an index of `State::ALL`, the sealed record `z`), kept for the lifetime and
// the retention after it. A record whose state is still 0 (pending) without a live part has
// run out its lifetime: expired. KEYS[1] is the live part, KEYS[2] the record.

/// Reserves one try for the call `ARGV[2]`: {0} unknown, {1} every try used, {2, tries used,
/// the payload's generation, payload}, {3, 0, 0, false, state} finished. The try is marked with the call's
/// ticket (`r:<ticket>`), so a replay answers what the first run did without a second try.
const TAKE_TRY: &str = r"
local st = redis.call('HGET', KEYS[2], 'st')
if not st then
  return {0, 0, 0, false, 0}
end
local v = redis.call('HGET', KEYS[1], 'v')
if st ~= '0' or not v then
  if st == '0' then st = '3' end
  return {3, 0, 0, false, tonumber(st)}
end
local g = tonumber(redis.call('HGET', KEYS[1], 'p') or redis.call('HGET', KEYS[1], 'g') or '0')
local mark = 'r:' .. ARGV[2]
local taken = redis.call('HGET', KEYS[1], mark)
if taken then
  return {2, tonumber(taken), g, v, 0}
end
local used = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if used >= tonumber(ARGV[1]) then
  return {1, used, g, false, 0}
end
used = redis.call('HINCRBY', KEYS[1], 't', 1)
redis.call('HSET', KEYS[1], mark, used)
return {2, used, g, v, 0}
";

/// Gives back the try the call `ARGV[1]` took, once: its mark goes with it.
const REFUND_TRY: &str = r"
if redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1]) == 1 then
  local used = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
  if used > 0 then
    redis.call('HINCRBY', KEYS[1], 't', -1)
  end
end
return 0
";

/// Raises a live session's generation for the resend `ARGV[1]`: 1, or 0 when it is not live.
/// The claiming call's ticket (`w`) makes a replay a no-op.
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[1], 'w') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'w', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'g', 1)
end
return 1
";

/// The expiry set's one write, shared by the scripts below: the session `member` is due at
/// now + `lifetime` (the server's clock, as its live part's TTL); members more than a
/// `retention` past their expiry go (their records are gone: nothing left to report), and the
/// set is kept as long as its newest member's record. So the set never holds more than the
/// sessions whose records Redis still keeps, swept or not.
macro_rules! schedule_lua {
    () => {
        r"
local function schedule(set, member, lifetime, retention)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. (now - retention))
  redis.call('ZADD', set, now + lifetime, member)
  if redis.call('PTTL', set) < lifetime + retention then
    redis.call('PEXPIRE', set, lifetime + retention)
  end
end
"
    };
}

/// The event stream's one write, shared by the session scripts: on one server, with events on,
/// KEYS[4] is the stream and ARGV from `at` its bound then the entry's fields.
macro_rules! append_lua {
    () => {
        r"
local function append(at)
  if KEYS[4] then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[at], '*', unpack(ARGV, at + 1))
  end
end
"
    };
}

/// Replaces a live session's payload (ARGV[1]), lifetime (ARGV[2]) and record (ARGV[3], kept
/// ARGV[2] + ARGV[4]) for the resend ARGV[5], keeping its tries and raising its generation: 1,
/// or 0 when it is not live. The writing call's ticket (`u`) makes a replay a no-op that
/// answers 2 (replaced, by this call's first run: nothing appended or counted again). With the
/// expiry set as KEYS[3] (one server), its member ARGV[6] is due again at the new lifetime's end,
/// and the `resent` event is appended (`append_lua!`, from ARGV[7]).
const REPLACE: &str = concat!(
    schedule_lua!(),
    append_lua!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[1], 'u') == ARGV[5] then
  return 2
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'u', ARGV[5])
redis.call('HSET', KEYS[1], 'p', redis.call('HINCRBY', KEYS[1], 'g', 1))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'z', ARGV[3])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[4]))
if KEYS[3] then
  schedule(KEYS[3], ARGV[6], tonumber(ARGV[2]), tonumber(ARGV[4]))
end
append(7)
return 1
"
);

/// A new session: tries at 0, generation 0, the lifetime (ARGV[2]) as its TTL; its record
/// (ARGV[3]) pending with its sealed id (ARGV[5], for the sweeper's event), kept ARGV[2] +
/// ARGV[4]. Ids are random, so a record already there is this call's own first run: left as it
/// is (2). With the expiry set as KEYS[3] (one server), its member ARGV[6] is due at the
/// lifetime's end, and the `started` event is appended (`append_lua!`, from ARGV[7]).
const PUT: &str = concat!(
    schedule_lua!(),
    append_lua!(),
    r"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 2
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', 0, 'g', 0, 'p', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'st', 0, 'z', ARGV[3], 'i', ARGV[5])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[4]))
if KEYS[3] then
  schedule(KEYS[3], ARGV[6], tonumber(ARGV[2]), tonumber(ARGV[4]))
end
append(7)
return 1
"
);

/// The expiry set alone (a Cluster, where it is on another slot than the session; and a sweep
/// putting back a session still live): KEYS[1] the set, ARGV member, ms until due, retention.
const SCHEDULE: &str = concat!(
    schedule_lua!(),
    r"
schedule(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"
);

/// Claims up to ARGV[1] members of the expiry set (KEYS[1]) due before now, by the server's
/// clock, taking them out in the same step: each is claimed by one sweep alone, however many
/// run. What it took is kept ARGV[2] ms under the sweep's ticket (KEYS[2]), so that a replay
/// answers the same members instead of losing them.
const CLAIM_EXPIRED: &str = r"
local done = redis.call('LRANGE', KEYS[2], 0, -1)
if #done > 0 then
  return done
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
  redis.call('RPUSH', KEYS[2], unpack(due))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return due
";

/// What a claimed session is now (it only reads, so a replay answers the same): {0} gone with
/// its retention, {1} ended otherwise (or never to expire), {2, ms} still live for ms (a
/// resend extended it, or another clock ran ahead), {3, 0, sealed id, record} ran out pending.
const SWEPT: &str = r"
local st = redis.call('HGET', KEYS[2], 'st')
if not st then
  return {0, 0, false, false}
end
if st ~= '0' then
  return {1, 0, false, false}
end
local left = redis.call('PTTL', KEYS[1])
if left == -1 then
  return {1, 0, false, false}
end
if left >= 0 then
  return {2, math.max(left, 1), false, false}
end
return {3, 0, redis.call('HGET', KEYS[2], 'i'), redis.call('HGET', KEYS[2], 'z')}
";

/// {0} unknown; {1, tries used, the payload's generation, payload, 0, record} live; {2, 0, 0, false, state,
/// record} finished.
const LOAD: &str = r"
local st = redis.call('HGET', KEYS[2], 'st')
if not st then
  return {0, 0, 0, false, 0, false}
end
local z = redis.call('HGET', KEYS[2], 'z')
local v = redis.call('HGET', KEYS[1], 'v')
if st == '0' and v then
  local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
  local g = tonumber(redis.call('HGET', KEYS[1], 'p') or redis.call('HGET', KEYS[1], 'g') or '0')
  return {1, t, g, v, 0, z}
end
if st == '0' then st = '3' end
return {2, 0, 0, false, tonumber(st), z}
";

/// Ends a live session of generation ARGV[1] (`*`: any) in state ARGV[2] with the record
/// ARGV[3], kept ARGV[4] ms: {1} ended, {2} a newer generation lives on, {3, state} already
/// finished (a replay finds its own ending), {0} unknown. With the expiry set as KEYS[3] (one
/// server), its member ARGV[5] goes: nothing is left to sweep; and the ending's event is
/// appended (`append_lua!`, from ARGV[6]).
const END: &str = concat!(
    append_lua!(),
    r"
local st = redis.call('HGET', KEYS[2], 'st')
if not st then
  return {0, 0}
end
if st ~= '0' or redis.call('EXISTS', KEYS[1]) == 0 then
  if st == '0' then st = '3' end
  return {3, tonumber(st)}
end
if ARGV[1] ~= '*' and (redis.call('HGET', KEYS[1], 'g') or '0') ~= ARGV[1] then
  return {2, 0}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'st', ARGV[2], 'z', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if KEYS[3] then
  redis.call('ZREM', KEYS[3], ARGV[5])
end
append(6)
return {1, 0}
"
);

/// Claims an idempotency key for the request fingerprint ARGV[1], leased ARGV[2] ms (until `l`,
/// by the server's clock) and kept ARGV[3] ms: {0} fresh, {1} in progress, {2, answer} done,
/// {3} reused for another request, {4} abandoned (leased out unfinished: never fresh again).
const KEY_CLAIM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HGET', KEYS[1], 'f')
if not f then
  redis.call('HSET', KEYS[1], 'f', ARGV[1], 'l', now + tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {0, false}
end
if f ~= ARGV[1] then
  return {3, false}
end
local a = redis.call('HGET', KEYS[1], 'a')
if a then
  return {2, a}
end
local l = tonumber(redis.call('HGET', KEYS[1], 'l') or '0')
if l ~= 0 and now >= l then
  return {4, false}
end
return {1, false}
";

/// Records a claimed key's answer (ARGV[1]), kept ARGV[2] ms.
const KEY_FINISH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'a', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

const KEY_FORGET: &str = r"
return redis.call('DEL', KEYS[1])
";

/// Gives an unsent send's place back in every log it was written to.
const RELEASE: &str = r"
for k = 1, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[1])
end
return 1
";

/// The scripts, hashed once: `invoke_async` sends EVALSHA and loads a script only when Redis
/// has forgotten it (a restart). Every operation is one script call, one round trip, so
/// `INFO commandstats` (evalsha + eval) counts the store's round trips exactly.
struct Scripts {
    admit: Script,
    take_try: Script,
    refund_try: Script,
    claim: Script,
    replace: Script,
    put: Script,
    load: Script,
    end: Script,
    release: Script,
    schedule: Script,
    claim_expired: Script,
    swept: Script,
    key_claim: Script,
    key_finish: Script,
    key_forget: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        admit: Script::new(ADMIT),
        take_try: Script::new(TAKE_TRY),
        refund_try: Script::new(REFUND_TRY),
        claim: Script::new(CLAIM),
        replace: Script::new(REPLACE),
        put: Script::new(PUT),
        load: Script::new(LOAD),
        end: Script::new(END),
        release: Script::new(RELEASE),
        schedule: Script::new(SCHEDULE),
        claim_expired: Script::new(CLAIM_EXPIRED),
        swept: Script::new(SWEPT),
        key_claim: Script::new(KEY_CLAIM),
        key_finish: Script::new(KEY_FINISH),
        key_forget: Script::new(KEY_FORGET),
    })
}

/// A rule's place in `GuardRule::ALL`, which the script hands back in a refusal.
fn rule_index(rule: GuardRule) -> usize {
    rule as usize
}

impl Sealed for RedisStore {}

impl Store for RedisStore {
    async fn admit(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<Admission, Error> {
        let script = &scripts().admit;
        let mut invocation = script.prepare_invoke();
        for subject in counted {
            invocation.key(self.guard_key(subject.key));
        }
        let rules: usize = counted.iter().map(|c| c.limits.len()).sum();
        invocation.arg(ticket_text(ticket)).arg(rules);
        for (index, subject) in counted.iter().enumerate() {
            for &(rule, limit) in &subject.limits {
                invocation.arg(index + 1).arg(millis(limit.window).max(1)).arg(limit.count).arg(rule_index(rule));
            }
        }
        for subject in counted {
            invocation.arg(millis(subject.longest_window()).max(1));
        }
        let (admitted, rule, wait): (i64, usize, u64) = self.invoke(&invocation).await?;
        if admitted == 1 {
            return Ok(Admission::Admitted);
        }
        let rule = GuardRule::ALL.get(rule).copied().ok_or_else(|| {
            Error::store_unavailable(Reached::No, "the guard script named no known rule; nothing was sent")
        })?;
        Ok(Admission::Refused { rule, retry_after: Duration::from_millis(wait) })
    }

    async fn release(&self, counted: &[Counted<'_>], ticket: Ticket) -> Result<(), Error> {
        let mut invocation = scripts().release.prepare_invoke();
        for subject in counted {
            invocation.key(self.guard_key(subject.key));
        }
        invocation.arg(ticket_text(ticket));
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn put_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        record: &[u8],
        lifetimes: Lifetimes,
        event: Option<&Event>,
    ) -> Result<(), Error> {
        let hex = self.session_hash(id);
        let (live, kept) = self.session_keys_of(&hex);
        let lifetime = millis(lifetimes.session).max(1);
        let mut invocation = scripts().put.prepare_invoke();
        invocation
            .key(&live)
            .key(&kept)
            .arg(self.seal(&live, payload)?)
            .arg(lifetime)
            .arg(self.seal(&kept, record)?)
            .arg(millis(lifetimes.retention))
            .arg(self.seal(&id_field(&kept), id.as_str().as_bytes())?);
        if self.single_server() {
            invocation.key(self.expiry_key()).arg(&hex);
            let in_script = self.event_in_script(&mut invocation, event);
            let put = self.invoke::<i64>(&invocation).await?;
            self.count_in_script(in_script && put == 1);
            return Ok(());
        }
        // Two slots: the session and its place in the expiry set, at once. Should only the
        // schedule land, the sweeper finds no record and skips it.
        let (put, scheduled) =
            both(self.invoke::<i64>(&invocation), self.schedule(&hex, lifetime, lifetimes.retention)).await;
        let put = put?;
        scheduled?;
        if put == 1 {
            self.append_entries(one(event)).await;
        }
        Ok(())
    }

    async fn load_session(&self, id: &VerificationId) -> Result<Lookup, Error> {
        let (live, kept) = self.session_keys(id);
        let mut invocation = scripts().load.prepare_invoke();
        invocation.key(&live).key(&kept);
        type Answer = (i64, u32, u64, Option<Vec<u8>>, i64, Option<Vec<u8>>);
        let (found, tries_used, generation, payload, state, record): Answer = self.invoke(&invocation).await?;
        match found {
            1 => {
                let payload = self.open_optional(&live, payload)?;
                let record = self.open_optional(&kept, record)?;
                Ok(Lookup::Live { loaded: Loaded { payload, tries_used, generation }, record })
            }
            2 => Ok(Lookup::Finished { state: known_state(state)?, record: self.open_optional(&kept, record)? }),
            _ => Ok(Lookup::Unknown),
        }
    }

    async fn claim_resend(&self, id: &VerificationId, ticket: Ticket) -> Result<bool, Error> {
        let (live, _) = self.session_keys(id);
        let mut invocation = scripts().claim.prepare_invoke();
        invocation.key(live).arg(ticket_text(ticket));
        Ok(self.invoke::<i64>(&invocation).await? == 1)
    }

    async fn replace_session(
        &self,
        id: &VerificationId,
        payload: &[u8],
        record: &[u8],
        lifetimes: Lifetimes,
        ticket: Ticket,
        event: Option<&Event>,
    ) -> Result<bool, Error> {
        let hex = self.session_hash(id);
        let (live, kept) = self.session_keys_of(&hex);
        let lifetime = millis(lifetimes.session).max(1);
        let mut invocation = scripts().replace.prepare_invoke();
        invocation
            .key(&live)
            .key(&kept)
            .arg(self.seal(&live, payload)?)
            .arg(lifetime)
            .arg(self.seal(&kept, record)?)
            .arg(millis(lifetimes.retention))
            .arg(ticket_text(ticket));
        if self.single_server() {
            invocation.key(self.expiry_key()).arg(&hex);
            let in_script = self.event_in_script(&mut invocation, event);
            let replaced = self.invoke::<i64>(&invocation).await?;
            self.count_in_script(in_script && replaced == 1);
            return Ok(replaced != 0);
        }
        let replaced = self.invoke::<i64>(&invocation).await?;
        if replaced == 1 {
            // Until this lands, a sweep that claims the old expiry finds the session live and
            // puts it back: late, never early.
            self.schedule(&hex, lifetime, lifetimes.retention).await?;
            self.append_entries(one(event)).await;
        }
        Ok(replaced != 0)
    }

    async fn take_try(&self, id: &VerificationId, max_tries: u32, ticket: Ticket) -> Result<TryTaken, Error> {
        let (live, kept) = self.session_keys(id);
        let mut invocation = scripts().take_try.prepare_invoke();
        invocation.key(&live).key(&kept).arg(max_tries).arg(ticket_text(ticket));
        let (found, tries_used, generation, payload, state): (i64, u32, u64, Option<Vec<u8>>, i64) =
            self.invoke(&invocation).await?;
        Ok(match found {
            2 => TryTaken::Taken(Loaded { payload: self.open_optional(&live, payload)?, tries_used, generation }),
            1 => TryTaken::Spent,
            3 => TryTaken::Finished(known_state(state)?),
            _ => TryTaken::Unknown,
        })
    }

    async fn refund_try(&self, id: &VerificationId, ticket: Ticket) -> Result<(), Error> {
        let (live, _) = self.session_keys(id);
        let mut invocation = scripts().refund_try.prepare_invoke();
        invocation.key(live).arg(ticket_text(ticket));
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn end_session(
        &self,
        id: &VerificationId,
        generation: Generation,
        state: State,
        record: &[u8],
        retention: Duration,
        event: Option<&Event>,
    ) -> Result<Ending, Error> {
        let hex = self.session_hash(id);
        let (live, kept) = self.session_keys_of(&hex);
        let mut invocation = scripts().end.prepare_invoke();
        invocation.key(&live).key(&kept);
        match generation {
            Generation::Any => invocation.arg("*"),
            Generation::Only(generation) => invocation.arg(generation.to_string()),
        };
        invocation.arg(state.index()).arg(self.seal(&kept, record)?).arg(millis(retention).max(1));
        // On a Cluster an ended session's member stays until its expiry: the sweep that claims
        // it finds it no longer pending, and a check costs no third round trip.
        let mut in_script = false;
        if self.single_server() {
            invocation.key(self.expiry_key()).arg(&hex);
            in_script = self.event_in_script(&mut invocation, event);
        }
        let (ended, finished): (i64, i64) = self.invoke(&invocation).await?;
        if ended == 1 {
            if in_script {
                self.count_in_script(true);
            } else if !self.single_server() {
                self.append_entries(one(event)).await;
            }
        }
        Ok(match ended {
            1 => Ending::Ended,
            2 => Ending::Newer,
            3 => Ending::Finished(known_state(finished)?),
            _ => Ending::Unknown,
        })
    }

    async fn claim_expired(&self, limit: usize, retention: Duration, ticket: Ticket) -> Result<Claimed, Error> {
        let mut invocation = scripts().claim_expired.prepare_invoke();
        invocation
            .key(self.expiry_key())
            .key(self.sweep_claim_key(ticket))
            .arg(limit.clamp(1, MAX_SWEEP_BATCH))
            .arg(millis(SWEEP_CLAIM_KEPT));
        let members: Vec<String> = self.invoke(&invocation).await?;
        let claimed = members.len();
        let mut expired = Vec::new();
        // Each claimed session is this sweep's alone; what it is now is read on its own slot,
        // a few at once (one connection pipelines them).
        for chunk in members.chunks(SWEEP_CONCURRENCY) {
            let answers = join_all(chunk.iter().map(|hex| self.swept(hex))).await;
            for (hex, answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(Sweep::Expired(swept)) => expired.push(swept),
                    Ok(Sweep::Skip) => {}
                    Ok(Sweep::LiveFor(ms)) => self.put_back(hex, ms, retention).await,
                    Err(error) => {
                        tracing::warn!(error = %error, "a claimed session could not be read; it is put back for the next sweep");
                        self.put_back(hex, 1, retention).await;
                    }
                }
            }
        }
        Ok(Claimed { claimed, expired })
    }

    async fn claim_key(&self, key: &str, request: &[u8], lease: Duration, lifetime: Duration) -> Result<Claim, Error> {
        let name = self.idempotency_key(key);
        let mut invocation = scripts().key_claim.prepare_invoke();
        // A keyed hash: an unkeyed one of a request holding a number could be reversed by trying
        // every number.
        invocation.key(&name).arg(self.hashed('f', &[request])).arg(millis(lease).max(1)).arg(millis(lifetime).max(1));
        let (claim, answer): (i64, Option<Vec<u8>>) = self.invoke(&invocation).await?;
        Ok(match claim {
            0 => Claim::Fresh,
            1 => Claim::InProgress,
            2 => Claim::Done(self.open_optional(&name, answer)?),
            4 => Claim::Abandoned,
            _ => Claim::Reused,
        })
    }

    async fn finish_key(&self, key: &str, answer: &[u8], ttl: Duration) -> Result<(), Error> {
        let name = self.idempotency_key(key);
        let mut invocation = scripts().key_finish.prepare_invoke();
        invocation.key(&name).arg(self.seal(&name, answer)?).arg(millis(ttl).max(1));
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn forget_key(&self, key: &str) -> Result<(), Error> {
        self.invoke::<i64>(&scripts().key_forget.key(self.idempotency_key(key))).await.map(drop)
    }

    fn keeps_events(&self) -> bool {
        self.events.is_some()
    }

    async fn append_events(&self, events: &[Event]) {
        self.append_entries(events).await;
    }

    fn unreachable(&self, error: &Error) -> bool {
        std::error::Error::source(error).and_then(|source| source.downcast_ref::<redis::RedisError>()).is_some_and(
            // redis-rs answers every timeout, refusal and dropped connection as an I/O error.
            |error| {
                error.is_io_error() || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown)
            },
        )
    }
}

/// The most sessions one sweep's claim takes (Lua's `unpack` takes a few thousand at most).
const MAX_SWEEP_BATCH: usize = 1_000;
/// How many claimed sessions a sweep reads at once.
const SWEEP_CONCURRENCY: usize = 64;
/// How long a sweep's claim is kept for a replay of it (a client retry after a lost reply).
const SWEEP_CLAIM_KEPT: Duration = Duration::from_secs(60);

/// What a claimed member of the expiry set turned out to be.
enum Sweep {
    /// Ran out its lifetime pending: its `expired` event is this sweep's to emit.
    Expired(Swept),
    /// Ended otherwise, gone with its retention, or not ours to read: nothing to report.
    Skip,
    /// Still live for this many ms (a resend extended it, or the set's clock ran ahead).
    LiveFor(u64),
}

impl RedisStore {
    /// On one server, adds the stream and `event`'s entry to a session script (KEYS[4], then
    /// its bound and fields: `append_lua!`); true when the event rides in the script. An entry
    /// that cannot be built is dropped (counted) and the change goes ahead without it.
    fn event_in_script(&self, invocation: &mut ScriptInvocation<'_>, event: Option<&Event>) -> bool {
        let (Some(stream), Some(event)) = (&self.events, event) else { return false };
        match self.entry_fields(event) {
            Ok(fields) => {
                invocation.key(self.stream_key()).arg(stream.max_len).arg(fields);
                true
            }
            Err(_) => {
                stream.dropped(1);
                false
            }
        }
    }

    /// Counts an event a script appended with its change.
    fn count_in_script(&self, appended: bool) {
        if let (true, Some(stream)) = (appended, &self.events) {
            stream.appended(1);
        }
    }

    /// Schedules `hex` due in `ms` (the expiry set's own call: a Cluster, or a put-back).
    async fn schedule(&self, hex: &str, ms: u64, retention: Duration) -> Result<(), Error> {
        let mut invocation = scripts().schedule.prepare_invoke();
        invocation.key(self.expiry_key()).arg(hex).arg(ms).arg(millis(retention));
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    /// Puts a claimed session back for a later sweep; should that fail, its event is lost.
    async fn put_back(&self, hex: &str, ms: u64, retention: Duration) {
        if let Err(error) = self.schedule(hex, ms, retention).await {
            tracing::warn!(error = %error, "a claimed session could not be put back: its expired event may be lost");
        }
    }

    /// What the claimed session `hex` is now.
    async fn swept(&self, hex: &str) -> Result<Sweep, Error> {
        // A member is a keyed hash this store wrote; anything else names no session.
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Sweep::Skip);
        }
        let (live, kept) = self.session_keys_of(hex);
        let mut invocation = scripts().swept.prepare_invoke();
        invocation.key(&live).key(&kept);
        let (found, left, id, record): (i64, u64, Option<Vec<u8>>, Option<Vec<u8>>) = self.invoke(&invocation).await?;
        Ok(match found {
            2 => Sweep::LiveFor(left),
            3 => {
                // A record written before ids were kept for the sweeper has none: nothing to name.
                let Some(id) = id else { return Ok(Sweep::Skip) };
                let id = self.open_sealed(&id_field(&kept), &id)?;
                let id = std::str::from_utf8(&id)
                    .ok()
                    .and_then(|text| VerificationId::parse(text).ok())
                    .ok_or_else(|| Error::store_unavailable(Reached::No, "a swept session's id could not be read"))?;
                Sweep::Expired(Swept { id, record: self.open_optional(&kept, record)? })
            }
            _ => Sweep::Skip,
        })
    }
}

/// An optional event as the slice appends take.
fn one(event: Option<&Event>) -> &[Event] {
    event.map_or(&[], std::slice::from_ref)
}

/// The name a record's sealed id is bound to (its own, so that it cannot pass for the record).
fn id_field(record_key: &str) -> String {
    format!("{record_key}#i")
}

/// Two futures at once on this task (the multiplexed connection pipelines their commands).
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut first, mut second) = (None, None);
    std::future::poll_fn(|cx| {
        if first.is_none() {
            if let Poll::Ready(output) = a.as_mut().poll(cx) {
                first = Some(output);
            }
        }
        if second.is_none() {
            if let Poll::Ready(output) = b.as_mut().poll(cx) {
                second = Some(output);
            }
        }
        match (first.take(), second.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (first, second) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// Many futures of one kind at once on this task, their outputs in order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A state the scripts handed back, as its index in `State::ALL`.
fn known_state(index: i64) -> Result<State, Error> {
    State::from_index(index).ok_or_else(|| {
        Error::store_unavailable(
            Reached::No,
            "the store answered a verification state it does not know; nothing was sent",
        )
    })
}

/// A ticket as the scripts store it: 32 hex digits.
fn ticket_text(ticket: Ticket) -> String {
    format!("{ticket:032x}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // `open` connects lazily: these need no server (and a runtime only to build the manager).
    fn store(key: u8) -> RedisStore {
        RedisStore::open("redis://127.0.0.1:1/", StoreKey::from_bytes(&[key; 32]).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_store_key_needs_32_bytes_and_neither_it_nor_the_store_shows_it() {
        assert!(StoreKey::from_bytes(&[1; 31]).unwrap_err().is_configuration());
        let key = StoreKey::from_bytes(&[1; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "StoreKey([redacted])");
        assert_eq!(format!("{:?}", store(1).key_prefix("app7").unwrap()), "RedisStore { prefix: \"app7\", .. }");
    }

    /// Unreachable: an I/O error of any kind (a timeout, a refusal, a dropped connection, any
    /// other) or a Cluster that is down; an answer Redis gave (a script's error) is not.
    #[tokio::test]
    async fn only_io_errors_and_a_cluster_down_are_unreachable() {
        let store = store(1);
        let wrapped = |error: redis::RedisError| super::unreachable(error);
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::Other,
        ] {
            let error = wrapped(std::io::Error::new(kind, "x").into());
            assert!(store.unreachable(&error), "{kind:?}");
        }
        let down = redis::ErrorKind::Server(redis::ServerErrorKind::ClusterDown);
        assert!(store.unreachable(&wrapped((down, "CLUSTERDOWN").into())));
        let answered = redis::ErrorKind::Server(redis::ServerErrorKind::NoScript);
        assert!(!store.unreachable(&wrapped((answered, "NOSCRIPT").into())));
    }

    #[tokio::test]
    async fn a_key_prefix_is_1_to_64_visible_characters_without_braces() {
        for good in ["a", "app-7:v2", &"p".repeat(64)] {
            assert!(store(1).key_prefix(good).is_ok(), "{good}");
        }
        for bad in ["", &"p".repeat(65), "a b", "a{", "b}", "é"] {
            assert!(store(1).key_prefix(bad).unwrap_err().is_configuration(), "{bad}");
        }
    }

    #[tokio::test]
    async fn keys_are_keyed_hashes_in_a_hash_tag_that_differ_by_subject_and_key() {
        let (a, b) = (store(1), store(2));
        let mobile: otp_core::MobileNumber = "9876543210".parse().unwrap();
        let number = a.guard_key(GuardKey::Number(&mobile));
        assert!(number.starts_with("otp:{g}:n:") && number.len() == 10 + 32, "{number}");
        assert!(!number.contains("9876543210"));
        assert_eq!(number, a.guard_key(GuardKey::Number(&mobile)), "stable");
        assert_ne!(number, b.guard_key(GuardKey::Number(&mobile)), "another store key, other names");
        let ip = a.guard_key(GuardKey::ClientIp("203.0.113.1".parse().unwrap()));
        let caller = a.guard_key(GuardKey::CallerKey("9876543210"));
        assert!(ip.starts_with("otp:{g}:i:") && caller.starts_with("otp:{g}:c:"));
        assert_ne!(&caller[10..], &number[10..], "the same text as another kind of subject hashes apart");
        let prefixed = store(1).key_prefix("app7").unwrap();
        assert!(prefixed.guard_key(GuardKey::Number(&mobile)).starts_with("app7:{g}:n:"));
        let id = VerificationId::random().unwrap();
        let (session, record) = a.session_keys(&id);
        assert!(session.starts_with("otp:s:{") && session.ends_with('}') && session.len() == 7 + 32 + 1, "{session}");
        assert!(!session.contains(id.as_str()));
        assert_eq!(record, session.replacen("otp:s:", "otp:r:", 1), "one hash tag: one slot");
        let key = a.idempotency_key("order-42");
        assert!(key.starts_with("otp:k:{") && !key.contains("order-42"), "{key}");
    }

    #[tokio::test]
    async fn a_sealed_value_opens_only_under_its_key_name_and_store_key_unaltered() {
        let (a, b) = (store(1), store(2));
        let sealed = a.seal("otp:s:{x}", b"payload").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"payload"));
        assert_ne!(sealed, a.seal("otp:s:{x}", b"payload").unwrap(), "a fresh nonce each time");
        assert_eq!(&a.open_sealed("otp:s:{x}", &sealed).unwrap()[..], b"payload");
        assert!(a.open_sealed("otp:s:{y}", &sealed).is_err(), "moved to another key");
        assert!(b.open_sealed("otp:s:{x}", &sealed).is_err(), "another store key");
        let mut altered = sealed.clone();
        altered[30] ^= 1;
        assert!(a.open_sealed("otp:s:{x}", &altered).is_err());
        let error = a.open_sealed("otp:s:{x}", &sealed[..10]).unwrap_err();
        assert_eq!((error.kind(), error.reached_provider()), (otp_core::ErrorKind::Transport, Reached::No));
    }
}

/// Every script run twice with the same arguments, as a client retry after a lost reply runs
/// it: the second run changes nothing the first did not (a real redis-server); and the store
/// behaviour every store shows.
#[cfg(all(test, feature = "test-util"))]
mod replays {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::{GuardRules, Limit, Subject};
    use crate::test_util::RedisServer;

    const HOUR: Duration = Duration::from_secs(3600);
    const LIFETIMES: Lifetimes = Lifetimes { session: HOUR, retention: HOUR };

    async fn store() -> (RedisServer, RedisStore) {
        let server = RedisServer::start().unwrap_or_else(|e| panic!("this test needs a real redis-server: {e}"));
        let store = RedisStore::open(&server.url(), StoreKey::from_bytes(&[3; 32]).unwrap()).unwrap();
        (server, store)
    }

    fn tries(taken: TryTaken) -> Option<(u32, u64)> {
        match taken {
            TryTaken::Taken(loaded) => Some((loaded.tries_used, loaded.generation)),
            _ => None,
        }
    }

    fn generation(lookup: Lookup) -> Option<(Vec<u8>, u64)> {
        match lookup {
            Lookup::Live { loaded, .. } => Some((loaded.payload.to_vec(), loaded.generation)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_session_lives_and_leaves_a_tombstone() {
        let (_server, store) = store().await;
        crate::store::behaviour::a_session_lives_and_leaves_a_tombstone(store).await;
    }

    #[tokio::test]
    async fn an_idempotency_key_is_claimed_once() {
        let (_server, store) = store().await;
        crate::store::behaviour::an_idempotency_key_is_claimed_once(store).await;
    }

    #[tokio::test]
    async fn a_session_that_runs_out_is_claimed_once() {
        let (_server, store) = store().await;
        crate::store::behaviour::a_session_that_runs_out_is_claimed_once(store).await;
    }

    /// On a Cluster the expiry set is written by calls of its own, apart from the session's
    /// scripts: the same behaviour, and an ended session left in the set is skipped by the sweep.
    #[tokio::test]
    async fn on_a_cluster_a_session_that_runs_out_is_claimed_once() {
        let cluster = crate::test_util::RedisCluster::start()
            .unwrap_or_else(|e| panic!("this test needs a real Redis Cluster (redis-server and redis-cli): {e}"));
        let urls = cluster.urls();
        let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
        let store = RedisStore::connect_cluster(&nodes, StoreKey::from_bytes(&[3; 32]).unwrap()).await.unwrap();
        assert!(!store.single_server());
        crate::store::behaviour::a_session_that_runs_out_is_claimed_once(store.clone()).await;
        crate::store::behaviour::a_session_lives_and_leaves_a_tombstone(store).await;
    }

    /// A record's sealed id is bound to that record: copied into another session's record, it
    /// does not open there, so a sweep can never report one session's expiry under another's id.
    #[tokio::test]
    async fn a_records_id_copied_into_another_record_does_not_open_there() {
        let (server, store) = store().await;
        let short = Lifetimes { session: Duration::from_millis(50), retention: HOUR };
        let (first, second) = (VerificationId::random().unwrap(), VerificationId::random().unwrap());
        for id in [&first, &second] {
            store.put_session(id, b"p", b"r", short, None).await.unwrap();
        }
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let (_, first_record) = store.session_keys(&first);
        let (_, second_record) = store.session_keys(&second);
        let sealed: Vec<u8> =
            redis::cmd("HGET").arg(&first_record).arg("i").query_async(&mut connection).await.unwrap();
        let () =
            redis::cmd("HSET").arg(&second_record).arg("i").arg(sealed).query_async(&mut connection).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let swept = store.claim_expired(10, HOUR, 1).await.unwrap();
        let reported: Vec<&VerificationId> = swept.expired.iter().map(|swept| &swept.id).collect();
        assert_eq!(reported, [&first], "the second's record names no one it can prove");
    }

    #[tokio::test]
    async fn a_sweep_replayed_answers_its_own_claim_and_the_expiry_set_follows_the_sessions() {
        let (server, store) = store().await;
        let short = Lifetimes { session: Duration::from_millis(50), retention: HOUR };
        let ids: Vec<VerificationId> = (0..3).map(|_| VerificationId::random().unwrap()).collect();
        for id in &ids {
            store.put_session(id, b"p", b"r", short, None).await.unwrap();
        }
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let members: Vec<(String, u64)> = redis::cmd("ZRANGE")
            .arg(store.expiry_key())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(members.len(), 3);
        let live_ttl: i64 =
            redis::cmd("PTTL").arg(store.session_keys(&ids[0]).0).query_async(&mut connection).await.unwrap();
        let set_ttl: i64 = redis::cmd("PTTL").arg(store.expiry_key()).query_async(&mut connection).await.unwrap();
        assert!(live_ttl > 0 && set_ttl > live_ttl, "the set outlives its members' records: {set_ttl} {live_ttl}");
        // An ended session leaves the set in the same step.
        store.end_session(&ids[2], Generation::Any, State::Canceled, b"x", HOUR, None).await.unwrap();
        let left: u64 = redis::cmd("ZCARD").arg(store.expiry_key()).query_async(&mut connection).await.unwrap();
        assert_eq!(left, 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let first = store.claim_expired(10, HOUR, 9).await.unwrap();
        let replay = store.claim_expired(10, HOUR, 9).await.unwrap();
        let other = store.claim_expired(10, HOUR, 10).await.unwrap();
        let ids_of = |claimed: &Claimed| -> Vec<String> {
            let mut ids: Vec<String> = claimed.expired.iter().map(|s| s.id.as_str().to_owned()).collect();
            ids.sort();
            ids
        };
        let mut expected: Vec<String> = ids[..2].iter().map(|id| id.as_str().to_owned()).collect();
        expected.sort();
        assert_eq!(ids_of(&first), expected);
        assert_eq!(ids_of(&replay), expected, "the replay answers the first run's claim");
        assert_eq!(other.claimed, 0, "another sweep finds nothing left");
        let left: u64 = redis::cmd("ZCARD").arg(store.expiry_key()).query_async(&mut connection).await.unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn members_a_retention_past_their_expiry_are_trimmed_by_the_next_session() {
        let (server, store) = store().await;
        let brief = Lifetimes { session: Duration::from_millis(20), retention: Duration::from_millis(20) };
        store.put_session(&VerificationId::random().unwrap(), b"p", b"r", brief, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        store.put_session(&VerificationId::random().unwrap(), b"p", b"r", brief, None).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let left: u64 = redis::cmd("ZCARD").arg(store.expiry_key()).query_async(&mut connection).await.unwrap();
        assert_eq!(left, 1, "the unswept one whose record is gone was trimmed");
    }

    #[tokio::test]
    async fn an_admission_replayed_is_counted_once_and_a_release_replayed_frees_one_place() {
        let (_server, store) = store().await;
        let mobile: otp_core::MobileNumber = "9876543210".parse().unwrap();
        let rules = GuardRules::default().cooldown(Duration::ZERO).number_short_window(Limit::new(2, HOUR));
        let counted = [Counted { key: GuardKey::Number(&mobile), limits: rules.limits_for(Subject::Number) }];
        assert_eq!(store.admit(&counted, 1).await.unwrap(), Admission::Admitted);
        assert_eq!(store.admit(&counted, 1).await.unwrap(), Admission::Admitted, "the replay answers as the first");
        // Counted once: a second send still fits the limit of 2, a third does not.
        assert_eq!(store.admit(&counted, 2).await.unwrap(), Admission::Admitted);
        assert!(matches!(store.admit(&counted, 3).await.unwrap(), Admission::Refused { .. }));
        store.release(&counted, 2).await.unwrap();
        store.release(&counted, 2).await.unwrap();
        assert_eq!(store.admit(&counted, 4).await.unwrap(), Admission::Admitted, "one place given back");
        assert!(matches!(store.admit(&counted, 5).await.unwrap(), Admission::Refused { .. }), "and only one");
    }

    #[tokio::test]
    async fn a_try_taken_or_refunded_twice_by_one_call_counts_once() {
        let (_server, store) = store().await;
        let id = VerificationId::random().unwrap();
        store.put_session(&id, b"first", b"r", LIFETIMES, None).await.unwrap();
        assert_eq!(tries(store.take_try(&id, 5, 10).await.unwrap()), Some((1, 0)));
        assert_eq!(tries(store.take_try(&id, 5, 10).await.unwrap()), Some((1, 0)), "the replay took nothing");
        assert_eq!(tries(store.take_try(&id, 5, 11).await.unwrap()), Some((2, 0)));
        store.refund_try(&id, 10).await.unwrap();
        store.refund_try(&id, 10).await.unwrap();
        store.refund_try(&id, 99).await.unwrap();
        assert_eq!(tries(store.take_try(&id, 5, 12).await.unwrap()), Some((2, 0)), "one try given back, once");
        let mut last = 12;
        for ticket in 13..16 {
            assert!(tries(store.take_try(&id, 5, ticket).await.unwrap()).is_some());
            last = ticket;
        }
        assert!(matches!(store.take_try(&id, 5, 20).await.unwrap(), TryTaken::Spent));
        assert_eq!(
            tries(store.take_try(&id, 5, last).await.unwrap()),
            Some((5, 0)),
            "the last one's replay still answers it"
        );
    }

    #[tokio::test]
    async fn a_claim_replace_or_ending_replayed_changes_nothing_more() {
        let (_server, store) = store().await;
        let id = VerificationId::random().unwrap();
        store.put_session(&id, b"a", b"r", LIFETIMES, None).await.unwrap();
        assert!(store.claim_resend(&id, 7).await.unwrap());
        assert!(store.claim_resend(&id, 7).await.unwrap());
        assert!(store.replace_session(&id, b"b", b"r", LIFETIMES, 7, None).await.unwrap());
        assert!(store.replace_session(&id, b"b", b"r", LIFETIMES, 7, None).await.unwrap());
        assert_eq!(
            generation(store.load_session(&id).await.unwrap()),
            Some((b"b".to_vec(), 2)),
            "claimed once, replaced once"
        );
        let end = || store.end_session(&id, Generation::Only(2), State::Approved, b"done", HOUR, None);
        assert_eq!(end().await.unwrap(), Ending::Ended);
        assert_eq!(end().await.unwrap(), Ending::Finished(State::Approved), "the replay finds its own ending");
    }

    #[tokio::test]
    async fn only_a_store_that_cannot_be_reached_is_unreachable() {
        let (mut server, store) = store().await;
        let id = VerificationId::random().unwrap();
        server.stop();
        let down = store.load_session(&id).await.err().unwrap();
        assert!(store.unreachable(&down), "{down}");
        let other = Error::store_unavailable(Reached::No, "a script error");
        assert!(!store.unreachable(&other));
    }
}
