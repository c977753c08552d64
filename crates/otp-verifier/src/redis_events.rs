//! Events into a Redis Stream (feature `redis`): what webhook delivery reads with a consumer group.
//!
//! One stream per store, `{prefix}:{e}:events` (a hash tag of its own: one Cluster slot), each
//! entry appended with `XADD … MAXLEN ~ N`, so the stream is bounded by its length rather than
//! a TTL (a consumer group that falls behind keeps its place). An entry holds the fields of
//! [`Event::to_json`] (`to` masked, absent fields left out) with the verification's id sealed
//! like every value the store writes: Redis alone shows no id, number, code or reference.
//!
//! A store made with [`RedisStore::with_event_stream`] records the event of each state change
//! itself. On one server the event of a start, a resend and an ending (approved, cancelled,
//! out of tries, expired at a check) is appended by the very script that makes the change:
//! both happen or neither, and a replay of the script appends nothing twice. A wrong code, a
//! failed send and a sweep's expiries change no session, so their events are appended right
//! after, before the call returns; so is every event on a Cluster, where the stream is on
//! another slot than the session. Those appends never fail a verification: an append that
//! fails is dropped, counted by `otp.events.dropped` and logged at most once a minute.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use otp_core::{Error, Reached};

use crate::events::{Drops, Event};
use crate::memory::millis;
use crate::redis_store::RedisStore;

/// What a store with an event stream keeps of it: the stream's bound and its drops.
pub(crate) struct StreamEvents {
    pub(crate) max_len: usize,
    drops: Drops,
}

impl StreamEvents {
    /// Counts `events` appended.
    pub(crate) fn appended(&self, events: usize) {
        metrics::counter!("otp.events.appended", "sink" => "redis_stream").increment(events as u64);
    }

    /// Counts `events` that could not be appended.
    pub(crate) fn dropped(&self, events: usize) {
        self.drops.dropped(events as u64, "store_failed");
    }
}

/// The fields of an entry, in [`Event::to_json`]'s order; `test` and `at` are its non-text ones.
const FIELDS: [&str; 9] = ["type", "id", "gateway", "to", "outcome", "rule", "test", "tenant", "at"];

/// A stream entry as Redis answers it: its id and its fields.
type Entry = (String, Vec<(String, Vec<u8>)>);

/// An entry a consumer group handed out and has not had acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingEvent {
    /// The stream's id of the entry.
    pub entry_id: String,
    /// The consumer holding it.
    pub consumer: String,
    /// How long since it was last handed out (or parked).
    pub idle: Duration,
    /// How many times it has been handed out.
    pub deliveries: u64,
}

/// How many dead letters a store without an event stream of its own bound keeps.
const DEFAULT_DEAD_LETTERS: usize = 100_000;

/// Acknowledges ARGV[2] in group ARGV[1] of the stream KEYS[1]; if it was pending, copies the
/// entry, with the group, ARGV[4] (reason), ARGV[5] (deliveries) and the entry's id, to the
/// dead letters KEYS[2] (MAXLEN ~ ARGV[3]): 1, or 0 when it was not pending (a replay).
const DEAD_LETTER: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local fields = {'group', ARGV[1], 'reason', ARGV[4], 'deliveries', ARGV[5], 'entry', ARGV[2]}
local found = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if found[1] then
  for _, value in ipairs(found[1][2]) do
    table.insert(fields, value)
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
return 1
";

fn dead_letter_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(DEAD_LETTER))
}

/// One entry read back from the stream.
#[derive(Clone)]
#[non_exhaustive]
pub struct StreamedEvent {
    /// The stream's id of the entry (`<ms>-<seq>`), what [`RedisStore::ack_events`] takes.
    pub entry_id: String,
    event: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for StreamedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The id names a customer's session: shown as the verifier's own Debug shows one.
        let kind = self.event.get("type").and_then(|v| v.as_str()).unwrap_or("?");
        f.debug_struct("StreamedEvent").field("entry_id", &self.entry_id).field("type", &kind).finish_non_exhaustive()
    }
}

impl StreamedEvent {
    /// The event as [`Event::to_json`] gave it when it was emitted (the id opened again).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.event.clone())
    }
}

impl RedisStore {
    /// This store, recording every verification event in its stream, trimmed to about `max_len`
    /// entries (`MAXLEN ~`: Redis trims whole nodes, so up to about 100 more are kept). Entries
    /// past the bound are trimmed whether or not a consumer group has read them: size it for the
    /// longest outage of the readers.
    pub fn with_event_stream(mut self, max_len: usize) -> Result<Self, Error> {
        if max_len == 0 {
            return Err(Error::configuration("an event stream keeps at least one entry (max_len ≥ 1)"));
        }
        self.events = Some(Arc::new(StreamEvents { max_len, drops: Drops::new("redis_stream") }));
        Ok(self)
    }

    /// Reads up to `count` entries not yet delivered to `group` (made on first use, from the
    /// stream's start), for `consumer`, without waiting. They stay pending in the group until
    /// [`RedisStore::ack_events`] acknowledges them.
    pub async fn read_events(&self, group: &str, consumer: &str, count: usize) -> Result<Vec<StreamedEvent>, Error> {
        let stream = self.stream_key();
        let mut create = redis::cmd("XGROUP");
        create.arg("CREATE").arg(&stream).arg(group).arg("0").arg("MKSTREAM");
        match self.query::<()>(&create).await {
            Ok(()) => {}
            // The group is there already: the one answer that is not a failure.
            Err(error) if busy_group(&error) => {}
            Err(error) => return Err(error),
        }
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(group).arg(consumer).arg("COUNT").arg(count.max(1)).arg("STREAMS").arg(&stream).arg(">");
        type Reply = Option<Vec<(String, Vec<(String, Vec<(String, Vec<u8>)>)>)>>;
        let reply: Reply = self.query(&read).await?;
        let entries = reply.into_iter().flatten().flat_map(|(_, entries)| entries);
        entries.map(|(entry_id, fields)| self.streamed(&stream, entry_id, fields)).collect()
    }

    /// Acknowledges entries (by [`StreamedEvent::entry_id`]) handed to `group`: they leave its
    /// pending list.
    pub async fn ack_events<'a>(&self, group: &str, entry_ids: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        let mut ack = redis::cmd("XACK");
        ack.arg(self.stream_key()).arg(group);
        let mut any = false;
        for entry_id in entry_ids {
            ack.arg(entry_id);
            any = true;
        }
        if !any {
            return Ok(());
        }
        self.query::<u64>(&ack).await.map(drop)
    }

    /// Makes `group` on the stream unless it exists: reading from the stream's start, or from
    /// entries appended after now (`from_start` false: a new webhook endpoint gets no backlog).
    pub async fn create_event_group(&self, group: &str, from_start: bool) -> Result<(), Error> {
        let mut create = redis::cmd("XGROUP");
        create.arg("CREATE").arg(self.stream_key()).arg(group).arg(if from_start { "0" } else { "$" }).arg("MKSTREAM");
        match self.query::<()>(&create).await {
            Ok(()) => Ok(()),
            // The group is there already: the one answer that is not a failure.
            Err(error) if busy_group(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Entries handed to `group` and not acknowledged for at least `min_idle` (a consumer failed
    /// them or died), oldest first, with how many times each was handed out.
    pub async fn pending_events(
        &self,
        group: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<PendingEvent>, Error> {
        let mut pending = redis::cmd("XPENDING");
        pending.arg(self.stream_key()).arg(group).arg("IDLE").arg(millis(min_idle)).arg("-").arg("+").arg(count.max(1));
        let reply: Vec<(String, String, u64, u64)> = self.query(&pending).await?;
        Ok(reply
            .into_iter()
            .map(|(entry_id, consumer, idle_ms, deliveries)| PendingEvent {
                entry_id,
                consumer,
                idle: Duration::from_millis(idle_ms),
                deliveries,
            })
            .collect())
    }

    /// Takes pending entries of `group` over for `consumer` — each only if it is still idle for
    /// `min_idle`, so of replicas racing for one, one wins — handing them out once more.
    /// Entries the stream has trimmed meanwhile leave the group and are not returned.
    pub async fn claim_events(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        entry_ids: &[&str],
    ) -> Result<Vec<StreamedEvent>, Error> {
        if entry_ids.is_empty() {
            return Ok(Vec::new());
        }
        let stream = self.stream_key();
        let mut claim = redis::cmd("XCLAIM");
        claim.arg(&stream).arg(group).arg(consumer).arg(millis(min_idle)).arg(entry_ids);
        let reply: Vec<Option<Entry>> = self.query(&claim).await?;
        reply.into_iter().flatten().map(|(entry_id, fields)| self.streamed(&stream, entry_id, fields)).collect()
    }

    /// Hands pending entries of `group` to `consumer` without delivering them (`XCLAIM … JUSTID`):
    /// their idle time starts again and their delivery count stays. What a consumer that failed
    /// a delivery does, so that its wait is measured from the failure and others can tell a
    /// parked entry from one in flight.
    pub async fn park_events(&self, group: &str, consumer: &str, entry_ids: &[&str]) -> Result<(), Error> {
        if entry_ids.is_empty() {
            return Ok(());
        }
        let mut claim = redis::cmd("XCLAIM");
        claim.arg(self.stream_key()).arg(group).arg(consumer).arg(0).arg(entry_ids).arg("JUSTID");
        self.query::<Vec<String>>(&claim).await.map(drop)
    }

    /// Up to `count` entries after `cursor` (an entry id; `None`: from the start), oldest first:
    /// the audit trail, read without a group.
    pub async fn events_after(&self, cursor: Option<&str>, count: usize) -> Result<Vec<StreamedEvent>, Error> {
        let stream = self.stream_key();
        self.range(&stream, cursor, count).await
    }

    /// Moves the entry `entry_id` out of `group`'s pending list into the dead letters (`{prefix}:{e}:dead`,
    /// bounded like the stream) with why and after how many deliveries, in one script: a
    /// replay (the entry no longer pending) writes nothing twice. False when it was not pending.
    pub async fn dead_letter(&self, group: &str, entry_id: &str, reason: &str, deliveries: u64) -> Result<bool, Error> {
        let max_len = self.events.as_ref().map_or(DEFAULT_DEAD_LETTERS, |stream| stream.max_len);
        let mut invocation = dead_letter_script().prepare_invoke();
        invocation
            .key(self.stream_key())
            .key(self.dead_letter_key())
            .arg(group)
            .arg(entry_id)
            .arg(max_len)
            .arg(reason)
            .arg(deliveries);
        Ok(self.invoke_script::<i64>(&invocation).await? == 1)
    }

    /// Up to `count` dead letters after `cursor`, oldest first; each carries the event's fields
    /// and `group`, `reason`, `deliveries` and `entry` (the event's entry in the stream).
    pub async fn dead_letters_after(&self, cursor: Option<&str>, count: usize) -> Result<Vec<StreamedEvent>, Error> {
        self.range(&self.dead_letter_key(), cursor, count).await
    }

    async fn range(&self, key: &str, cursor: Option<&str>, count: usize) -> Result<Vec<StreamedEvent>, Error> {
        let mut range = redis::cmd("XRANGE");
        range.arg(key);
        match cursor {
            Some(cursor) => range.arg(format!("({cursor}")),
            None => range.arg("-"),
        };
        range.arg("+").arg("COUNT").arg(count.max(1));
        let reply: Vec<Entry> = self.query(&range).await?;
        let stream = self.stream_key();
        reply.into_iter().map(|(entry_id, fields)| self.streamed(&stream, entry_id, fields)).collect()
    }

    /// `{prefix}:{e}:dead`: the dead letters, in the stream's hash tag (one Cluster slot).
    fn dead_letter_key(&self) -> String {
        format!("{}:dead", self.stream_key().trim_end_matches(":events"))
    }

    /// One entry's fields as XADD takes them, name then value: text as it is, `test` and `at`
    /// as their JSON text, absent ones left out; the id sealed.
    pub(crate) fn entry_fields(&self, event: &Event) -> Result<Vec<Vec<u8>>, Error> {
        let json = event.to_json();
        let mut fields = Vec::with_capacity(2 * FIELDS.len());
        for name in FIELDS {
            let value = match json.get(name) {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(text)) if name == "id" => {
                    URL_SAFE_NO_PAD.encode(self.seal(&id_name(&self.stream_key()), text.as_bytes())?)
                }
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            };
            fields.push(name.as_bytes().to_vec());
            fields.push(value.into_bytes());
        }
        Ok(fields)
    }

    /// Appends `events` in one pipelined round trip, after the change they report. Not retried:
    /// a batch whose answer was lost may have been appended.
    pub(crate) async fn append_entries(&self, events: &[Event]) {
        let Some(stream) = &self.events else { return };
        if events.is_empty() {
            return;
        }
        let key = self.stream_key();
        let mut pipeline = redis::pipe();
        let mut built = 0;
        for event in events {
            match self.entry_fields(event) {
                Ok(fields) => {
                    let mut command = redis::cmd("XADD");
                    command.arg(&key).arg("MAXLEN").arg("~").arg(stream.max_len).arg("*").arg(fields);
                    pipeline.add_command(command).ignore();
                    built += 1;
                }
                Err(_) => stream.dropped(1),
            }
        }
        if built == 0 {
            return;
        }
        match self.query_pipeline(&pipeline).await {
            Ok(()) => stream.appended(built),
            Err(_) => stream.dropped(built),
        }
    }

    fn streamed(&self, stream: &str, entry_id: String, fields: Vec<(String, Vec<u8>)>) -> Result<StreamedEvent, Error> {
        let unreadable = || Error::store_unavailable(Reached::No, "an event in the stream could not be read");
        let mut event = serde_json::Map::new();
        for name in FIELDS {
            event.insert(name.to_owned(), serde_json::Value::Null);
        }
        for (name, value) in fields {
            let text = String::from_utf8(value).map_err(|_| unreadable())?;
            let value = match name.as_str() {
                "id" => {
                    let sealed = URL_SAFE_NO_PAD.decode(text.as_bytes()).map_err(|_| unreadable())?;
                    let id = self.open_sealed(&id_name(stream), &sealed)?;
                    serde_json::Value::String(String::from_utf8(id.to_vec()).map_err(|_| unreadable())?)
                }
                "test" | "at" => serde_json::from_str(&text).map_err(|_| unreadable())?,
                _ => serde_json::Value::String(text),
            };
            event.insert(name, value);
        }
        Ok(StreamedEvent { entry_id, event })
    }
}

fn busy_group(error: &Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(|error| error.code() == Some("BUSYGROUP"))
}

/// The name an entry's sealed id is bound to: this stream's, so it opens nowhere else.
fn id_name(stream: &str) -> String {
    format!("{stream}#id")
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::EventKind;
    use crate::id::VerificationId;
    use crate::store::Store as _;
    use crate::test_util::RedisServer;
    use crate::StoreKey;
    use metrics_util::debugging::DebugValue;
    use otp_core::Gateway;

    fn server() -> RedisServer {
        RedisServer::start().unwrap_or_else(|e| panic!("this test needs a real redis-server: {e}"))
    }

    fn store(server: &RedisServer) -> RedisStore {
        RedisStore::open(&server.url(), StoreKey::from_bytes(&[5; 32]).unwrap()).unwrap()
    }

    fn event(kind: EventKind) -> Event {
        let mut event = Event::new(kind, &VerificationId::random().unwrap(), Gateway::Paytm);
        event.mobile = Some("9876543210".parse().unwrap());
        event.outcome = Some("sent");
        event
    }

    fn recording(server: &RedisServer, max_len: usize) -> RedisStore {
        store(server).with_event_stream(max_len).unwrap()
    }

    async fn stream_length(server: &RedisServer) -> u64 {
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("XLEN").arg("otp:{e}:events").query_async(&mut connection).await.unwrap()
    }

    #[tokio::test]
    async fn an_entry_reads_back_as_the_event_with_its_id_sealed_and_the_number_masked() {
        let server = server();
        let store = recording(&server, 1_000);
        let mut refused = event(EventKind::SendFailed);
        (refused.mobile, refused.outcome, refused.rule, refused.test) =
            (None, Some("rate_limited"), Some("cooldown"), true);
        let sent = [event(EventKind::Started), refused];
        let before = server.calls(&["xadd"]).unwrap();
        store.append_entries(&sent).await;
        assert_eq!(server.calls(&["xadd"]).unwrap() - before, 2);
        let read = store.read_events("webhooks", "w1", 10).await.unwrap();
        assert_eq!(read.len(), 2);
        for (streamed, event) in read.iter().zip(&sent) {
            assert_eq!(streamed.to_json(), event.to_json());
        }
        assert!(store.read_events("webhooks", "w1", 10).await.unwrap().is_empty(), "delivered once to the group");
        assert_eq!(store.read_events("audit", "a1", 10).await.unwrap().len(), 2, "every group reads them all");
        store.ack_events("webhooks", read.iter().map(|e| e.entry_id.as_str())).await.unwrap();

        // What Redis holds: no id, no full number; the masked one.
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
        let raw: Entries =
            redis::cmd("XRANGE").arg("otp:{e}:events").arg("-").arg("+").query_async(&mut connection).await.unwrap();
        let text: String = raw
            .iter()
            .flat_map(|(_, fields)| fields.iter().map(|(n, v)| format!("{n}={} ", String::from_utf8_lossy(v))))
            .collect();
        for event in &sent {
            assert!(!text.contains(event.id.as_str()), "{text}");
        }
        assert!(!text.contains("9876543210") && text.contains("to=XXXXXX3210"), "{text}");
        assert!(text.contains("type=verification.started") && text.contains("rule=cooldown"), "{text}");
        // Under another store key the ids do not open.
        let stranger = RedisStore::open(&server.url(), StoreKey::from_bytes(&[6; 32]).unwrap()).unwrap();
        assert!(stranger.read_events("other", "o1", 10).await.is_err());
    }

    #[tokio::test]
    async fn the_stream_is_trimmed_to_about_its_max_len() {
        let server = server();
        let store = recording(&server, 100);
        let events: Vec<Event> = (0..2_000).map(|_| event(EventKind::WrongCode)).collect();
        for batch in events.chunks(250) {
            store.append_entries(batch).await;
        }
        let length = stream_length(&server).await;
        // `~` trims whole nodes of 100 entries (stream-node-max-entries).
        assert!((100..=200).contains(&length), "{length}");
    }

    #[tokio::test]
    async fn a_stream_needs_an_entry_and_a_store_without_one_appends_nothing() {
        let server = server();
        assert!(store(&server).with_event_stream(0).unwrap_err().is_configuration());
        let plain = store(&server);
        assert!(!plain.keeps_events() && recording(&server, 1).keeps_events());
        plain.append_entries(&[event(EventKind::Started)]).await;
        let id = VerificationId::random().unwrap();
        let started = event(EventKind::Started);
        plain.put_session(&id, b"p", b"r", LIFETIMES, Some(&started)).await.unwrap();
        assert_eq!(stream_length(&server).await, 0);
    }

    #[tokio::test]
    async fn a_redis_that_is_gone_drops_the_events_and_fails_nothing() {
        let mut server = server();
        let store = recording(&server, 10);
        server.stop();
        let appended = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            store.append_entries(&[event(EventKind::WrongCode)]),
        )
        .await;
        assert!(appended.is_ok(), "an append that cannot be made returns");
    }

    const LIFETIMES: crate::store::Lifetimes = crate::store::Lifetimes {
        session: std::time::Duration::from_secs(60),
        retention: std::time::Duration::from_secs(60),
    };

    /// On one server, the change and its event are one script: each XADD Redis runs comes from
    /// a script (`[0 lua]` in MONITOR), none from the client, and a replayed script (the same
    /// call again) appends nothing twice; a change that does not happen appends nothing. The
    /// `otp.events.appended` counter says the same (a snapshot reads what was counted since the
    /// last): three, not one per call.
    #[test]
    fn on_one_server_each_change_appends_its_event_in_its_own_script_once() {
        use metrics_util::debugging::DebuggingRecorder;
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let appended = move || crate::events::counted(&snapshotter);
        metrics::with_local_recorder(&recorder, || runtime.block_on(each_change_appends_once(appended)));
    }

    async fn each_change_appends_once(appended: impl Fn() -> Vec<(String, DebugValue)>) {
        use crate::store::{Ending, Generation, State, Store};
        let counted = |events| vec![("otp.events.appended sink=redis_stream".to_owned(), DebugValue::Counter(events))];
        let server = server();
        let store = recording(&server, 1_000);
        let id = VerificationId::random().unwrap();
        let kinds = [EventKind::Started, EventKind::Resent, EventKind::Approved, EventKind::Canceled];
        let [started, resent, approved, canceled] = kinds.map(|kind| Event::new(kind, &id, Gateway::Paytm));
        let monitor = server.monitor().unwrap();
        store.put_session(&id, b"p", b"r", LIFETIMES, Some(&started)).await.unwrap();
        assert_eq!(appended(), counted(1), "the start's event, counted");
        store.put_session(&id, b"p", b"r", LIFETIMES, Some(&started)).await.unwrap();
        assert_eq!(appended(), counted(0), "a replayed put appends and counts nothing");
        for _ in 0..2 {
            assert!(store.replace_session(&id, b"p2", b"r2", LIFETIMES, 9, Some(&resent)).await.unwrap());
        }
        let newer =
            store.end_session(&id, Generation::Only(0), State::Expired, b"x", LIFETIMES.retention, Some(&approved));
        assert_eq!(newer.await.unwrap(), Ending::Newer, "generation 0 was replaced: no ending, no event");
        for _ in 0..2 {
            let ending =
                store.end_session(&id, Generation::Any, State::Approved, b"x", LIFETIMES.retention, Some(&approved));
            ending.await.unwrap();
        }
        let late = store.end_session(&id, Generation::Any, State::Canceled, b"x", LIFETIMES.retention, Some(&canceled));
        assert_eq!(late.await.unwrap(), Ending::Finished(State::Approved));
        let lines = monitor.finish().unwrap();
        let xadds: Vec<&String> = lines.iter().filter(|line| line.contains("\"XADD\"")).collect();
        assert_eq!(xadds.len(), 3, "started, resent, approved: once each {xadds:#?}");
        assert!(xadds.iter().all(|line| line.contains("[0 lua]")), "each from its script: {xadds:#?}");
        let read = store.read_events("g", "c", 10).await.unwrap();
        let types: Vec<serde_json::Value> = read.iter().map(|entry| entry.to_json()["type"].clone()).collect();
        assert_eq!(types, ["verification.started", "verification.resent", "verification.approved"]);
        assert_eq!(appended(), counted(2), "then the resend's and the approval's, none dropped");
    }

    /// Events a Redis that cannot be reached did not take are counted as dropped, by sink and
    /// reason (the change itself answered its own error already).
    #[test]
    fn events_a_stopped_redis_did_not_take_are_counted_as_dropped() {
        use metrics_util::debugging::DebuggingRecorder;
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let mut server = server();
                let store = recording(&server, 1_000);
                store.append_entries(&[event(EventKind::Started)]).await;
                server.stop();
                store.append_entries(&[event(EventKind::Approved), event(EventKind::Canceled)]).await;
            })
        });
        assert_eq!(
            crate::events::counted(&snapshotter),
            [
                ("otp.events.appended sink=redis_stream".to_owned(), DebugValue::Counter(1)),
                ("otp.events.dropped sink=redis_stream,reason=store_failed".to_owned(), DebugValue::Counter(2)),
            ]
        );
    }

    /// Reading makes the group when it is missing; any other failure of that step is the
    /// read's error, not read past (here: a user not allowed to manage groups), and so is
    /// making it explicitly.
    #[tokio::test]
    async fn a_read_fails_when_its_group_cannot_be_made_for_any_reason_but_existing() {
        let server = server();
        let store = recording(&server, 1_000);
        store.append_entries(&[event(EventKind::Started)]).await;
        assert_eq!(store.read_events("hooks", "r1", 10).await.unwrap().len(), 1, "made on first use");
        assert!(store.read_events("hooks", "r1", 10).await.unwrap().is_empty(), "there already: read on");
        let admin = redis::Client::open(server.url()).unwrap();
        let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("ACL")
            .arg(&["SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all", "-xgroup"][..])
            .query_async(&mut admin)
            .await
            .unwrap();
        let url = format!("redis://reader:pw@127.0.0.1:{}/", server.port());
        let reader = RedisStore::open(&url, StoreKey::from_bytes(&[5; 32]).unwrap()).unwrap().with_event_stream(1_000);
        let reader = reader.unwrap();
        let error = reader.read_events("hooks", "r2", 10).await.unwrap_err();
        assert!(error.to_string().contains("NoPerm"), "{error}");
        let error = reader.create_event_group("hooks", false).await.unwrap_err();
        assert!(error.to_string().contains("NoPerm"), "making a group that exists is refused too: {error}");
        store.create_event_group("hooks", false).await.expect("there already: fine for a user who may make it");
    }

    /// An entry's id is sealed to its own stream's name: copied into another store's stream
    /// (the same store key, another prefix), it does not open there.
    #[tokio::test]
    async fn an_entry_copied_into_another_stream_does_not_open_there() {
        let server = server();
        let (ours, theirs) = (recording(&server, 1_000), store(&server).key_prefix("app7").unwrap());
        let theirs = theirs.with_event_stream(1_000).unwrap();
        ours.append_entries(&[event(EventKind::Started)]).await;
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let entries: Vec<Entry> =
            redis::cmd("XRANGE").arg("otp:{e}:events").arg("-").arg("+").query_async(&mut connection).await.unwrap();
        let mut copy = redis::cmd("XADD");
        copy.arg("app7:{e}:events").arg("*");
        for (name, value) in &entries[0].1 {
            copy.arg(name).arg(value);
        }
        let _: String = copy.query_async(&mut connection).await.unwrap();
        assert_eq!(ours.events_after(None, 10).await.unwrap().len(), 1, "it opens in its own stream");
        let error = theirs.events_after(None, 10).await.unwrap_err();
        assert!(error.to_string().contains("could not be opened"), "{error}");
    }

    /// On a Cluster the event goes right after its change; the same call made again (a caller's
    /// retry with the same ticket) finds its own change and appends nothing twice.
    #[tokio::test]
    async fn on_a_cluster_a_call_made_twice_appends_its_event_once() {
        use crate::store::{Generation, State, Store};
        let cluster = crate::test_util::RedisCluster::start()
            .unwrap_or_else(|e| panic!("this test needs a real Redis Cluster (redis-server and redis-cli): {e}"));
        let urls = cluster.urls();
        let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
        let key = StoreKey::from_bytes(&[5; 32]).unwrap();
        let store = RedisStore::connect_cluster(&nodes, key).await.unwrap().with_event_stream(1_000).unwrap();
        let id = VerificationId::random().unwrap();
        let kinds = [EventKind::Started, EventKind::Resent, EventKind::Approved];
        let [started, resent, approved] = kinds.map(|kind| Event::new(kind, &id, Gateway::Paytm));
        for _ in 0..2 {
            store.put_session(&id, b"p", b"r", LIFETIMES, Some(&started)).await.unwrap();
            assert!(store.replace_session(&id, b"p2", b"r2", LIFETIMES, 9, Some(&resent)).await.unwrap());
        }
        for _ in 0..2 {
            let ending =
                store.end_session(&id, Generation::Any, State::Approved, b"x", LIFETIMES.retention, Some(&approved));
            ending.await.unwrap();
        }
        let read = store.read_events("g", "c", 10).await.unwrap();
        let types: Vec<serde_json::Value> = read.iter().map(|entry| entry.to_json()["type"].clone()).collect();
        assert_eq!(types, ["verification.started", "verification.resent", "verification.approved"]);
    }

    /// What webhook delivery does with a group: new entries only for a new group; a failed
    /// delivery stays pending and is claimed again by one of two racing replicas; after the
    /// last try it moves to the dead letters once, with the event readable there.
    #[tokio::test]
    async fn a_group_hands_out_claims_again_and_dead_letters_each_entry_once() {
        let server = server();
        let store = recording(&server, 1_000);
        store.append_entries(&[event(EventKind::Started)]).await;
        store.create_event_group("hooks", false).await.unwrap();
        store.create_event_group("hooks", false).await.unwrap();
        let later = [event(EventKind::Approved), event(EventKind::Canceled)];
        store.append_entries(&later).await;
        let read = store.read_events("hooks", "r1", 10).await.unwrap();
        let types: Vec<serde_json::Value> = read.iter().map(|e| e.to_json()["type"].clone()).collect();
        assert_eq!(types, ["verification.approved", "verification.canceled"], "no backlog for a new group");
        store.ack_events("hooks", [read[1].entry_id.as_str()]).await.unwrap();

        let none = store.pending_events("hooks", std::time::Duration::from_secs(60), 10).await.unwrap();
        assert!(none.is_empty(), "not idle long enough: {none:?}");
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let idle = std::time::Duration::from_millis(20);
        let pending = store.pending_events("hooks", idle, 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].entry_id.as_str(), pending[0].deliveries), (read[0].entry_id.as_str(), 1));
        let ids = [pending[0].entry_id.as_str()];
        let (first, second) =
            tokio::join!(store.claim_events("hooks", "r2", idle, &ids), store.claim_events("hooks", "r3", idle, &ids));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.len() + second.len(), 1, "one replica wins the claim");
        let claimed = first.into_iter().chain(second).next().unwrap();
        assert_eq!(claimed.to_json(), read[0].to_json());
        let held = &store.pending_events("hooks", std::time::Duration::ZERO, 10).await.unwrap()[0];
        assert_eq!(held.deliveries, 2);
        assert!(["r2", "r3"].contains(&held.consumer.as_str()), "held by the claim's winner: {held:?}");
        store.park_events("hooks", "parked", &[claimed.entry_id.as_str()]).await.unwrap();
        let parked = &store.pending_events("hooks", std::time::Duration::ZERO, 10).await.unwrap()[0];
        assert_eq!((parked.deliveries, parked.consumer.as_str()), (2, "parked"), "parked: the count stays");
        assert!(parked.idle < std::time::Duration::from_millis(20), "its idle time starts again: {parked:?}");

        assert!(store.dead_letter("hooks", &claimed.entry_id, "http_500", 2).await.unwrap());
        assert!(
            !store.dead_letter("hooks", &claimed.entry_id, "http_500", 2).await.unwrap(),
            "a replay writes nothing"
        );
        assert!(store.pending_events("hooks", std::time::Duration::ZERO, 10).await.unwrap().is_empty());
        let dead = store.dead_letters_after(None, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        let letter = dead[0].to_json();
        assert_eq!(letter["type"], "verification.approved");
        assert_eq!(letter["id"], later[0].id.as_str(), "the id opens from the dead letter too");
        assert_eq!((letter["group"].as_str(), letter["reason"].as_str()), (Some("hooks"), Some("http_500")));
        assert_eq!(letter["entry"].as_str(), Some(claimed.entry_id.as_str()));
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let kept: u64 = redis::cmd("XLEN").arg("otp:{e}:dead").query_async(&mut connection).await.unwrap();
        assert_eq!(kept, 1, "in the stream's hash tag (one Cluster slot), beside it");

        // The audit trail pages by cursor.
        let page = store.events_after(None, 2).await.unwrap();
        assert_eq!(page.len(), 2);
        let rest = store.events_after(Some(&page[1].entry_id), 10).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].to_json()["type"], "verification.canceled");
    }
}
