//! One event per state change of a verification, for an audit trail and for webhooks.
//!
//! An event carries the verification's id, its gateway, the masked number, what happened
//! (an outcome or an error kind), the guard rule where one refused, and the time — never a
//! code, a reference, a credential, a full number or an address.
//!
//! Emitting never blocks or fails a verification: a sink takes an event or drops it at once.
//! [`ChannelSink`] hands events to a bounded channel and, when the consumer cannot keep up,
//! drops the newest with `otp.events.dropped` counted and a log line at most once a minute.
//! A store that keeps events (`RedisStore::with_event_stream`, feature `redis`) records them
//! with the change itself, and drops one only when it cannot be written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otp_core::{Gateway, MobileNumber};

use crate::id::VerificationId;

/// What happened to a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A start sent its code.
    Started,
    /// A resend sent a new code.
    Resent,
    /// A start or resend failed (refused by the guard, or by the gateway).
    SendFailed,
    /// A wrong code was checked.
    WrongCode,
    /// The right code was checked.
    Approved,
    /// Every try was used on wrong codes.
    MaxAttemptsReached,
    /// The code expired before the right one came (the gateway said so, or the session ran out).
    Expired,
    /// The application cancelled it.
    Canceled,
}

impl EventKind {
    /// Every kind, in a stable order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Started,
        EventKind::Resent,
        EventKind::SendFailed,
        EventKind::WrongCode,
        EventKind::Approved,
        EventKind::MaxAttemptsReached,
        EventKind::Expired,
        EventKind::Canceled,
    ];

    /// The stable name: `verification.started`, `verification.resent`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "verification.started",
            EventKind::Resent => "verification.resent",
            EventKind::SendFailed => "verification.send_failed",
            EventKind::WrongCode => "verification.wrong_code",
            EventKind::Approved => "verification.approved",
            EventKind::MaxAttemptsReached => "verification.max_attempts_reached",
            EventKind::Expired => "verification.expired",
            EventKind::Canceled => "verification.canceled",
        }
    }
}

/// One state change. `Debug` and [`Event::to_json`] show the number masked only.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The verification.
    pub id: VerificationId,
    /// Its gateway.
    pub gateway: Gateway,
    /// The number, masked when printed (`XXXXXX3210`); `None` where the event comes from a
    /// tombstone, which keeps no number.
    pub mobile: Option<MobileNumber>,
    /// The outcome (`sent`, `verified`, `wrong_otp`, …) or the error kind of a failure.
    pub outcome: Option<&'static str>,
    /// The guard rule that refused, when one did.
    pub rule: Option<&'static str>,
    /// A test number's verification (no gateway was called).
    pub test: bool,
    /// The tenant its start was labelled with (`Context::tenant`).
    pub tenant: Option<String>,
    /// When it happened (this process's clock).
    pub at: SystemTime,
}

impl Event {
    pub(crate) fn new(kind: EventKind, id: &VerificationId, gateway: Gateway) -> Self {
        Self {
            kind,
            id: id.clone(),
            gateway,
            mobile: None,
            outcome: None,
            rule: None,
            test: false,
            tenant: None,
            at: SystemTime::now(),
        }
    }

    /// The event as one JSON object: `type`, `id`, `gateway`, `to` (masked), `outcome`, `rule`,
    /// `test`, `tenant`, `at` (milliseconds since the Unix epoch).
    pub fn to_json(&self) -> serde_json::Value {
        let at = self.at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        serde_json::json!({
            "type": self.kind.as_str(),
            "id": self.id.as_str(),
            "gateway": self.gateway.as_str(),
            "to": self.mobile.map(|m| m.masked().to_string()),
            "outcome": self.outcome,
            "rule": self.rule,
            "test": self.test,
            "tenant": self.tenant,
            "at": at,
        })
    }
}

/// Where events go. `emit` must return at once: drop what cannot be taken now.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event, or drops it.
    fn emit(&self, event: Event);
}

/// Any function of an event is a sink (it runs on the verifying task: keep it short).
impl<F: Fn(Event) + Send + Sync + 'static> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// Events into a bounded tokio channel; when it is full, the event is dropped, counted by
/// `otp.events.dropped` and logged at most once a minute.
#[derive(Clone)]
pub struct ChannelSink {
    sender: tokio::sync::mpsc::Sender<Event>,
    drops: Arc<Drops>,
}

impl std::fmt::Debug for ChannelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSink").field("capacity", &self.sender.max_capacity()).finish()
    }
}

impl ChannelSink {
    /// A sink and the receiver its events arrive at, holding at most `capacity` (at least 1).
    pub fn new(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<Event>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(capacity.max(1));
        (Self { sender, drops: Arc::new(Drops::new("channel")) }, receiver)
    }
}

impl EventSink for ChannelSink {
    fn emit(&self, event: Event) {
        if self.sender.try_send(event).is_err() {
            self.drops.dropped(1, "full");
        }
    }
}

const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// A sink's dropped events: counted (`otp.events.dropped`, by sink and reason) and logged at
/// most once a minute, so a sink that cannot keep up never floods the log it would report to.
pub(crate) struct Drops {
    sink: &'static str,
    logged_s: AtomicU64,
}

impl Drops {
    pub(crate) fn new(sink: &'static str) -> Self {
        Self { sink, logged_s: AtomicU64::new(0) }
    }

    /// `reason`: `full` (the sink's buffer), `store_failed` (its store refused or could not be reached).
    pub(crate) fn dropped(&self, events: u64, reason: &'static str) {
        metrics::counter!("otp.events.dropped", "sink" => self.sink, "reason" => reason).increment(events);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if self.log_due(now) {
            tracing::warn!(
                sink = self.sink,
                reason,
                "verification events are being dropped: the sink does not keep up (logged at most once a minute)"
            );
        }
    }

    /// Whether a drop at `now_s` is logged: the first, then one a minute at most, however many
    /// tasks drop at once (one of them wins the minute).
    fn log_due(&self, now_s: u64) -> bool {
        let last = self.logged_s.load(Ordering::Relaxed);
        now_s.saturating_sub(last) >= DROP_LOG_EVERY.as_secs()
            && self.logged_s.compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// The metrics a test's local recorder took since its last snapshot, each as `name label=value,…`
/// with its value, by name.
#[cfg(test)]
pub(crate) fn counted(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> Vec<(String, metrics_util::debugging::DebugValue)> {
    let mut rows: Vec<(String, metrics_util::debugging::DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            (format!("{} {}", key.key().name(), labels.join(",")), value)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_has_its_own_name_and_an_event_shows_the_number_masked() {
        let names: std::collections::BTreeSet<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
        let id = VerificationId::random().unwrap();
        let mut event = Event::new(EventKind::Approved, &id, Gateway::Paytm);
        event.mobile = Some("9876543210".parse().unwrap());
        let text = format!("{event:?} {}", event.to_json());
        assert!(!text.contains("9876543210") && text.contains("XXXXXX3210"), "{text}");
        assert_eq!(event.to_json()["type"], "verification.approved");
    }

    /// The two a full channel could not take are dropped and counted, by sink and reason.
    #[test]
    fn a_full_channel_drops_counts_and_never_blocks() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let (sink, mut receiver) = ChannelSink::new(1);
        assert_eq!(format!("{sink:?}"), "ChannelSink { capacity: 1 }");
        let id = VerificationId::random().unwrap();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                sink.emit(Event::new(EventKind::Started, &id, Gateway::Paytm));
            }
        });
        assert!(receiver.try_recv().is_ok());
        assert!(receiver.try_recv().is_err(), "the two that did not fit were dropped");
        assert_eq!(
            counted(&snapshotter),
            [("otp.events.dropped sink=channel,reason=full".to_owned(), DebugValue::Counter(2))]
        );
    }

    #[test]
    fn drops_are_logged_first_then_once_a_minute() {
        let drops = Drops::new("channel");
        let start = 1_800_000_000;
        assert!(drops.log_due(start), "the first drop is logged");
        assert!(!drops.log_due(start), "not again that second");
        assert!(!drops.log_due(start + 59));
        assert!(drops.log_due(start + 60), "a minute later");
        assert!(!drops.log_due(start + 61));
    }

    #[test]
    fn a_function_is_a_sink() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = {
            let seen = Arc::clone(&seen);
            move |event: Event| seen.lock().unwrap().push(event.kind)
        };
        let id = VerificationId::random().unwrap();
        EventSink::emit(&sink, Event::new(EventKind::Canceled, &id, Gateway::Paytm));
        assert_eq!(*seen.lock().unwrap(), [EventKind::Canceled]);
    }
}
