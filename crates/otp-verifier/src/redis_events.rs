//! Events into a Redis Stream (feature `redis`): what webhook delivery reads with a consumer group.
//!
//! One stream per store, `{prefix}:{e}:events` (a hash tag of its own: one Cluster slot), each
//! entry appended with `XADD … MAXLEN ~ N`, so the stream is bounded by its length rather than
//! a TTL (a consumer group that falls behind keeps its place). An entry holds the fields of
//! [`Event::to_json`] (`to` masked, absent fields left out) with the verification's id sealed
//! like every value the store writes: Redis alone shows no id, number, code or reference.
//!
//! Emitting never blocks or fails a verification: [`RedisEventStream::emit`] hands the event to
//! a bounded buffer, and one task per sink appends what is there in pipelined batches (one round
//! trip per batch, off the verification's path). A full buffer or a Redis that refuses drops
//! events, counted by `otp.events.dropped` and logged at most once a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use otp_core::{Error, Reached};
use tokio::sync::{mpsc, oneshot};

use crate::events::{Drops, Event, EventSink};
use crate::redis_store::RedisStore;

/// How many events a [`RedisEventStream`] holds for its task by default.
pub const DEFAULT_EVENT_BUFFER: usize = 10_000;
/// The most events one round trip appends.
const BATCH: usize = 256;

/// An [`EventSink`] appending every event to its store's Redis Stream (`RedisStore::event_stream`).
/// Cheap to clone: clones share one buffer and one appending task, which ends once every clone
/// is dropped (after appending what it holds). Events are appended at most once: those still in
/// the buffer when the process or its runtime stops are lost ([`RedisEventStream::flush`] first).
#[derive(Clone)]
pub struct RedisEventStream {
    sender: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

enum Item {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

struct Shared {
    drops: Drops,
    appended: AtomicU64,
    round_trips: AtomicU64,
    max_len: usize,
}

/// What a [`RedisEventStream`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// Events appended to the stream.
    pub appended: u64,
    /// Events dropped: the buffer was full, or Redis refused or could not be reached.
    pub dropped: u64,
    /// Round trips (pipelined batches of appends) made.
    pub round_trips: u64,
}

impl std::fmt::Debug for RedisEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventStream")
            .field("max_len", &self.shared.max_len)
            .field("buffer", &self.sender.max_capacity())
            .finish()
    }
}

impl RedisEventStream {
    /// What it has appended and dropped so far.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            appended: self.shared.appended.load(Ordering::Relaxed),
            dropped: self.shared.drops.total(),
            round_trips: self.shared.round_trips.load(Ordering::Relaxed),
        }
    }

    /// Waits until every event emitted before this call has been appended (or dropped).
    pub async fn flush(&self) {
        let (done, appended) = oneshot::channel();
        if self.sender.send(Item::Flush(done)).await.is_ok() {
            let _ = appended.await;
        }
    }
}

impl EventSink for RedisEventStream {
    fn emit(&self, event: Event) {
        match self.sender.try_send(Item::Event(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.shared.drops.dropped(1, "full"),
            Err(mpsc::error::TrySendError::Closed(_)) => self.shared.drops.dropped(1, "closed"),
        }
    }
}

/// The fields of an entry, in [`Event::to_json`]'s order; `test` and `at` are its non-text ones.
const FIELDS: [&str; 8] = ["type", "id", "gateway", "to", "outcome", "rule", "test", "at"];

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
    /// A sink appending every event to this store's stream, trimmed to about `max_len` entries
    /// (`MAXLEN ~`: Redis trims whole nodes, so up to about 100 more are kept), with a buffer of
    /// [`DEFAULT_EVENT_BUFFER`] events. Needs a tokio runtime (its appending task runs there).
    pub fn event_stream(&self, max_len: usize) -> Result<RedisEventStream, Error> {
        self.event_stream_with_buffer(max_len, DEFAULT_EVENT_BUFFER)
    }

    /// [`RedisStore::event_stream`] holding at most `buffer` events not yet appended.
    pub fn event_stream_with_buffer(&self, max_len: usize, buffer: usize) -> Result<RedisEventStream, Error> {
        if max_len == 0 {
            return Err(Error::configuration("an event stream keeps at least one entry (max_len ≥ 1)"));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::configuration("a Redis event stream needs a tokio runtime for its appending task"))?;
        let (sender, receiver) = mpsc::channel(buffer.max(1));
        let shared = Arc::new(Shared {
            drops: Drops::new("redis_stream"),
            appended: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            max_len,
        });
        runtime.spawn(append(self.clone(), receiver, shared.clone()));
        Ok(RedisEventStream { sender, shared })
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

    /// Acknowledges entries [`RedisStore::read_events`] handed to `group`: they leave its pending list.
    pub async fn ack_events(&self, group: &str, entries: &[StreamedEvent]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut ack = redis::cmd("XACK");
        ack.arg(self.stream_key()).arg(group);
        for entry in entries {
            ack.arg(&entry.entry_id);
        }
        self.query::<u64>(&ack).await.map(drop)
    }

    /// One entry's fields as XADD takes them: text as it is, `test` and `at` as their JSON
    /// text, absent ones left out; the id sealed.
    fn entry(&self, stream: &str, max_len: usize, event: &Event) -> Result<redis::Cmd, Error> {
        let json = event.to_json();
        let mut command = redis::cmd("XADD");
        command.arg(stream).arg("MAXLEN").arg("~").arg(max_len).arg("*");
        for name in FIELDS {
            match json.get(name) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(text)) if name == "id" => {
                    let sealed = self.seal(&id_name(stream), text.as_bytes())?;
                    command.arg(name).arg(URL_SAFE_NO_PAD.encode(sealed));
                }
                Some(serde_json::Value::String(text)) => {
                    command.arg(name).arg(text.as_str());
                }
                Some(other) => {
                    command.arg(name).arg(other.to_string());
                }
            }
        }
        Ok(command)
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

/// The sink's task: appends what the buffer holds, up to a batch per round trip, until every
/// sender is gone and the buffer is empty.
async fn append(store: RedisStore, mut receiver: mpsc::Receiver<Item>, shared: Arc<Shared>) {
    let stream = store.stream_key();
    let mut items = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut items, BATCH).await > 0 {
        let mut pipeline = redis::pipe();
        let mut events = 0u64;
        let mut flushed = Vec::new();
        for item in items.drain(..) {
            match item {
                Item::Event(event) => match store.entry(&stream, shared.max_len, &event) {
                    Ok(command) => {
                        pipeline.add_command(command).ignore();
                        events += 1;
                    }
                    Err(_) => shared.drops.dropped(1, "store_failed"),
                },
                Item::Flush(done) => flushed.push(done),
            }
        }
        if events > 0 {
            shared.round_trips.fetch_add(1, Ordering::Relaxed);
            match store.query_pipeline(&pipeline).await {
                Ok(()) => {
                    shared.appended.fetch_add(events, Ordering::Relaxed);
                    metrics::counter!("otp.events.appended", "sink" => "redis_stream").increment(events);
                }
                // Not retried: a batch whose answer was lost may have been appended, and appends
                // are at most once (a retry could write an event twice).
                Err(_) => shared.drops.dropped(events, "store_failed"),
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::EventKind;
    use crate::id::VerificationId;
    use crate::test_util::RedisServer;
    use crate::StoreKey;
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

    #[tokio::test]
    async fn an_entry_reads_back_as_the_event_with_its_id_sealed_and_the_number_masked() {
        let server = server();
        let store = store(&server);
        let sink = store.event_stream(1_000).unwrap();
        let mut refused = event(EventKind::SendFailed);
        (refused.mobile, refused.outcome, refused.rule, refused.test) =
            (None, Some("rate_limited"), Some("cooldown"), true);
        let sent = [event(EventKind::Started), refused];
        for event in &sent {
            sink.emit(event.clone());
        }
        sink.flush().await;
        assert_eq!(sink.stats(), StreamStats { appended: 2, dropped: 0, round_trips: 1 }, "one batch");
        let read = store.read_events("webhooks", "w1", 10).await.unwrap();
        assert_eq!(read.len(), 2);
        for (streamed, event) in read.iter().zip(&sent) {
            assert_eq!(streamed.to_json(), event.to_json());
        }
        assert!(store.read_events("webhooks", "w1", 10).await.unwrap().is_empty(), "delivered once to the group");
        assert_eq!(store.read_events("audit", "a1", 10).await.unwrap().len(), 2, "every group reads them all");
        store.ack_events("webhooks", &read).await.unwrap();

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
        let store = store(&server);
        let sink = store.event_stream(100).unwrap();
        for _ in 0..2_000 {
            sink.emit(event(EventKind::WrongCode));
        }
        sink.flush().await;
        assert_eq!(sink.stats().appended, 2_000);
        let client = redis::Client::open(server.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let length: u64 = redis::cmd("XLEN").arg("otp:{e}:events").query_async(&mut connection).await.unwrap();
        // `~` trims whole nodes of 100 entries (stream-node-max-entries).
        assert!((100..=200).contains(&length), "{length}");
    }

    /// A sink that cannot keep up drops at once and never waits: on one thread its task cannot
    /// run while the verifying code emits, so all but the buffer's worth are dropped.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_buffer_drops_without_blocking_and_a_refusing_redis_drops_too() {
        let mut server = server();
        let store = store(&server);
        let sink = store.event_stream_with_buffer(1_000, 10).unwrap();
        for _ in 0..1_000 {
            sink.emit(event(EventKind::Started));
        }
        assert_eq!(sink.stats().dropped, 990);
        sink.flush().await;
        assert_eq!(sink.stats(), StreamStats { appended: 10, dropped: 990, round_trips: 1 });
        server.stop();
        sink.emit(event(EventKind::Approved));
        sink.flush().await;
        assert_eq!((sink.stats().appended, sink.stats().dropped), (10, 991), "Redis down: dropped, counted");
    }

    #[tokio::test]
    async fn a_stream_needs_an_entry_and_appends_what_it_holds_after_its_last_clone_goes() {
        let server = server();
        let store = store(&server);
        assert!(store.event_stream(0).unwrap_err().is_configuration());
        let sink = store.event_stream(10).unwrap();
        let clone = sink.clone();
        drop(sink);
        clone.emit(event(EventKind::Canceled));
        drop(clone);
        let mut read = Vec::new();
        for _ in 0..500 {
            read.extend(store.read_events("g", "c", 10).await.unwrap());
            if !read.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(read.len(), 1);
    }

    #[test]
    fn a_stream_outside_a_runtime_is_refused_not_a_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = runtime.block_on(async {
            RedisStore::open("redis://127.0.0.1:1/", StoreKey::from_bytes(&[5; 32]).unwrap()).unwrap()
        });
        assert!(store.event_stream(10).unwrap_err().is_configuration());
    }
}
