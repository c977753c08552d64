//! `GET /v1/events`: the audit trail of a tenant's verifications, and its dead letters.
//!
//! Events are read from where webhooks read them (the store's stream, or the memory log),
//! oldest first, paged by an opaque cursor; only the caller's tenant's events are shown, with
//! the ids its keys use. A page scans a bounded number of entries, so a tenant with few events
//! among many may get a short (even empty) page with a `next_cursor`: follow it.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use otp::verifier::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::auth::{Caller, Scope};
use crate::observe::Noted;
use crate::problem::{Code, Problem};
use crate::webhooks::public_event;

/// The most events one page holds.
pub(crate) const MAX_PAGE: usize = 100;
/// The most entries one page reads through, the caller's or not.
const MAX_SCAN: usize = 5_000;
const SCAN_STEP: usize = 500;

/// Which events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Where the previous page ended (its `next_cursor`); absent: from the oldest kept.
    #[param(pattern = r"^[0-9]{1,20}-[0-9]{1,20}$")]
    pub cursor: Option<String>,
    /// At most this many events (1 to 100; default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// Only this verification's events (an id as its start answered it).
    pub verification_id: Option<String>,
    /// Only events of this type (`verification.approved`, …).
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = event_types)]
    pub kind: Option<String>,
    /// `failed`: the dead letters (events no webhook took within 24 h) instead.
    #[param(schema_with = failed_only)]
    pub status: Option<String>,
}

/// The event types, from the verifier's one list of them.
fn event_types() -> utoipa::openapi::schema::Object {
    let names: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(names))
        .description(Some("Only events of this type."))
        .build()
}

fn failed_only() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["failed"]))
        .description(Some("`failed`: the dead letters (events no webhook took within 24 h) instead."))
        .build()
}

/// One event, as webhooks deliver its `data`, with its place in the trail.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventBody {
    /// This event's place: a `cursor` that lists what came after it.
    pub cursor: String,
    /// `verification.started`, `.resent`, `.send_failed`, `.wrong_code`, `.approved`,
    /// `.max_attempts_reached`, `.expired` or `.canceled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The verification's id.
    pub id: String,
    /// Its gateway.
    pub gateway: String,
    /// The number, masked; absent for `expired` (its tombstone keeps none).
    pub to: Option<String>,
    /// The outcome, or the error kind of a failure.
    pub outcome: Option<String>,
    /// The guard rule that refused a send.
    pub rule: Option<String>,
    /// A test number's.
    pub test: bool,
    /// When it happened (RFC 3339).
    pub at: String,
    /// A dead letter's webhook (its name).
    pub webhook: Option<String>,
    /// A dead letter's reason: its last try's failure (`http_500`, `timeout`, …).
    pub reason: Option<String>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventPage)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<EventBody>,
    /// Where the next page starts; absent when this page reached the newest event.
    pub next_cursor: Option<String>,
}

/// The audit trail: the caller's tenant's verification events, oldest first.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    operation_id = "events",
    params(EventsQuery),
    responses((status = 200, description = "A page of events.", body = EventPage)),
    security(("api_key" = ["verifications:read"]))
)]
pub(crate) async fn events(
    AxumState(app): AxumState<Arc<App>>,
    caller: Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let mut noted = Noted::default();
    let result = page(&app, &caller, query).await;
    if result.is_ok() {
        noted.outcome = Some("listed");
    }
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    crate::observe::note(&mut response, noted);
    response
}

async fn page(
    app: &App,
    caller: &Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::VerificationsRead)?;
    let Query(query) =
        query.map_err(|rejection| Problem::malformed(format!("the query: {}", rejection.body_text())))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::new(Code::InvalidRequest, format!("limit is 1 to {MAX_PAGE}")));
    }
    if let Some(kind) = &query.kind {
        if !EventKind::ALL.iter().any(|known| known.as_str() == kind) {
            return Err(Problem::new(Code::InvalidRequest, format!("{kind:?} is not an event type")));
        }
    }
    if let Some(cursor) = &query.cursor {
        let mut parts = cursor.splitn(2, '-');
        let digits = |part: Option<&str>| {
            part.is_some_and(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
        };
        if !(digits(parts.next()) && digits(parts.next())) {
            return Err(Problem::new(Code::InvalidRequest, "cursor is a next_cursor this route answered"));
        }
    }
    let failed = match query.status.as_deref() {
        None => false,
        Some("failed") => true,
        Some(_) => return Err(Problem::new(Code::InvalidRequest, "status is failed, or absent")),
    };
    // Another tenant's id, or no id at all, matches nothing: the same empty answer.
    let only = match &query.verification_id {
        Some(text) => match app.tags.read(&caller.tenant, text) {
            Some((_, id)) => Some(id.as_str().to_owned()),
            None => return Ok(listed(Vec::new(), None)),
        },
        None => None,
    };
    let mut cursor = query.cursor.clone();
    let mut events = Vec::new();
    let mut scanned = 0;
    loop {
        let entries =
            app.events.page(failed, cursor.as_deref(), SCAN_STEP).await.map_err(|error| Problem::from_error(&error))?;
        let reached_end = entries.len() < SCAN_STEP;
        for entry in entries {
            scanned += 1;
            cursor = Some(entry.entry_id.clone());
            let event = &entry.event;
            let ours = event.get("tenant").and_then(Value::as_str) == Some(caller.tenant.as_str());
            let kind_ok =
                query.kind.as_deref().is_none_or(|kind| event.get("type").and_then(Value::as_str) == Some(kind));
            let id_ok = only.as_deref().is_none_or(|id| event.get("id").and_then(Value::as_str) == Some(id));
            if !(ours && kind_ok && id_ok) {
                continue;
            }
            if let Some(public) = public_event(&app.tags, event) {
                events.push(body(&entry.entry_id, &public, event));
            }
            if events.len() == limit {
                return Ok(listed(events, cursor));
            }
        }
        if reached_end {
            return Ok(listed(events, None));
        }
        if scanned >= MAX_SCAN {
            return Ok(listed(events, cursor));
        }
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn body(cursor: &str, public: &Value, raw: &serde_json::Map<String, Value>) -> EventBody {
    EventBody {
        cursor: cursor.to_owned(),
        kind: text(&public["type"]).unwrap_or_default(),
        id: text(&public["id"]).unwrap_or_default(),
        gateway: text(&public["gateway"]).unwrap_or_default(),
        to: text(&public["to"]),
        outcome: text(&public["outcome"]),
        rule: text(&public["rule"]),
        test: public["test"].as_bool().unwrap_or(false),
        at: text(&public["at"]).unwrap_or_default(),
        webhook: raw.get("group").and_then(Value::as_str).map(|g| g.trim_start_matches("webhooks:").to_owned()),
        reason: raw.get("reason").and_then(Value::as_str).map(str::to_owned),
    }
}

fn listed(events: Vec<EventBody>, next_cursor: Option<String>) -> Response {
    (StatusCode::OK, Json(EventPage { events, next_cursor })).into_response()
}
