//! `/api/v1/webhooks`: endpoints (the signing secret shown once, rotated with an overlap),
//! the event types they may filter on, each endpoint's delivery log with its attempts,
//! replaying a delivery and a test ping. Operators only: an endpoint receives every event it
//! asks for, private channels' included.

use accounts::api::Operator;
use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

use crate::store::{self, AttemptRow, DeliveryRow, EndpointFields, EndpointRow};
use crate::{Webhooks, deliver, signing};

/// The event a test ping sends; delivered only to the endpoint pinged, whatever its filter.
pub const PING: &str = "webhook.ping";

/// An outgoing endpoint.
#[payload(response)]
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Its id.
    pub id: i64,
    /// Where deliveries are `POST`ed.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The events it takes (`GET /api/v1/webhooks/event-types`); empty: every event.
    pub event_types: Vec<String>,
    /// Whether deliveries are sent to it.
    pub enabled: bool,
    /// Why it was disabled, when it is.
    pub disabled_reason: Option<String>,
    /// Since when its deliveries have been failing (RFC 3339), if they are.
    pub failing_since: Option<String>,
    /// Until when the secret before the last rotation still signs too (RFC 3339).
    pub previous_secret_until: Option<String>,
    /// Who registered it (`None`: the admin token).
    pub owner_id: Option<i64>,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When it was last changed (RFC 3339).
    pub updated_at: String,
}

impl Endpoint {
    fn of(row: &EndpointRow) -> Endpoint {
        let now = store::now_ms();
        Endpoint {
            id: row.id,
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: row.event_types.clone(),
            enabled: row.disabled_ms.is_none(),
            disabled_reason: row.disabled_reason.clone(),
            failing_since: row.failing_since_ms.map(store::rfc3339),
            previous_secret_until: row
                .previous_until_ms
                .filter(|until| *until > now)
                .map(store::rfc3339),
            owner_id: row.owner_id,
            created_at: store::rfc3339(row.created_ms),
            updated_at: store::rfc3339(row.updated_ms),
        }
    }
}

/// A new endpoint, with its signing secret.
#[payload(response)]
#[derive(Debug)]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The signing secret (`whsec_…`), shown only now: give it to the receiver's Standard
    /// Webhooks library to verify `webhook-signature`.
    pub secret: String,
}

/// `POST /api/v1/webhooks`' body.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where to `POST` deliveries: an `http` or `https` URL of a public address (or one the
    /// operator allows in `[plugins.webhooks] allow_addresses`).
    pub url: String,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
    /// The events to send (names from `GET /api/v1/webhooks/event-types`); empty or absent:
    /// every event.
    pub event_types: Option<Vec<String>>,
}

/// `PATCH /api/v1/webhooks/{id}`'s body: what to change.
#[payload(request)]
#[derive(Debug)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New event types (empty: every event).
    pub event_types: Option<Vec<String>>,
    /// `false` stops deliveries: those pending wait, and events that happen meanwhile are
    /// not sent to it. `true` resumes them and forgets past failures.
    pub enabled: Option<bool>,
}

/// Path of an endpoint.
#[payload(request)]
#[derive(Debug)]
pub struct EndpointPath {
    /// The endpoint's id.
    pub id: i64,
}

/// Path of a delivery.
#[payload(request)]
#[derive(Debug)]
pub struct DeliveryPath {
    /// The endpoint's id.
    pub id: i64,
    /// The delivery's id.
    pub delivery_id: i64,
}

/// Every endpoint.
#[payload(response)]
#[derive(Debug)]
pub struct Endpoints {
    /// By id.
    pub endpoints: Vec<Endpoint>,
}

/// An event an endpoint may take.
#[payload(response)]
#[derive(Debug)]
pub struct EventType {
    /// Its name, the `type` of the delivered body.
    pub name: String,
    /// The plugin that sends it.
    pub plugin: String,
}

/// The events endpoints may take.
#[payload(response)]
#[derive(Debug)]
pub struct EventTypes {
    /// By name.
    pub event_types: Vec<EventType>,
}

fn endpoint_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no webhook endpoint {id}")).with_code("endpoint_not_found")
}

/// The events of every compiled-in plugin's `webhooks = [..]`, by name.
fn catalog(plugin: &Webhooks) -> Result<Vec<EventType>, ApiError> {
    let context = plugin.context()?;
    let mut types: Vec<EventType> = context
        .plugins()
        .descriptors()
        .iter()
        .flat_map(|descriptor| {
            descriptor.webhooks.iter().map(|name| EventType {
                name: (*name).to_string(),
                plugin: descriptor.name.to_string(),
            })
        })
        .collect();
    types.sort_by(|a, b| a.name.cmp(&b.name));
    types.dedup_by(|a, b| a.name == b.name);
    Ok(types)
}

/// The events endpoints may filter on: each plugin's `webhooks = [..]` (the chat's
/// `channels.event` among them). A test ping is `webhook.ping`, sent whatever the filter.
#[route(GET, "/api/v1/webhooks/event-types")]
async fn event_types(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
) -> Result<Json<EventTypes>, ApiError> {
    Ok(Json(EventTypes {
        event_types: catalog(&plugin)?,
    }))
}

/// Checks a URL: parsed, `http` or `https`, and, when its host is an address, an allowed one
/// (a name is checked on the address it resolves to, at each delivery).
fn check_url(
    plugin: &Webhooks,
    config: &crate::WebhooksConfig,
    url: &str,
) -> Result<String, ApiError> {
    let url = url.trim();
    let parsed = plexichat::reqwest::Url::parse(url)
        .map_err(|error| ApiError::invalid_field("url", format!("`url` is not a URL: {error}")))?;
    if url.len() > 2000 {
        return Err(ApiError::invalid_field(
            "url",
            "`url` is at most 2000 characters",
        ));
    }
    let client = plugin
        .clients
        .get(plugin.context()?, config)
        .map_err(|problem| ApiError::unavailable(format!("`allow_addresses`: {problem}")))?;
    client.check_url(&parsed).map_err(|problem| {
        ApiError::invalid_field(
            "url",
            format!("{problem}; an operator allows such addresses with `[plugins.webhooks] allow_addresses`"),
        )
    })?;
    Ok(parsed.to_string())
}

fn check_description(description: Option<&str>) -> Result<String, ApiError> {
    let description = description.unwrap_or("").trim();
    if description.chars().count() > 500 {
        return Err(ApiError::invalid_field(
            "description",
            "`description` is at most 500 characters",
        ));
    }
    Ok(description.to_string())
}

fn check_event_types(
    plugin: &Webhooks,
    types: Option<Vec<String>>,
) -> Result<Vec<String>, ApiError> {
    let types = types.unwrap_or_default();
    if types.is_empty() {
        return Ok(types);
    }
    let known = catalog(plugin)?;
    let mut checked: Vec<String> = Vec::new();
    for name in types {
        if !known.iter().any(|known| known.name == name) {
            let names: Vec<&str> = known.iter().map(|known| known.name.as_str()).collect();
            return Err(ApiError::invalid_field(
                "event_types",
                format!(
                    "`{name}` is not an event this server sends; it sends: {}",
                    names.join(", ")
                ),
            )
            .with_code("unknown_event_type"));
        }
        if !checked.contains(&name) {
            checked.push(name);
        }
    }
    Ok(checked)
}

/// Registers an endpoint (201), with its signing secret, shown only in this answer. Its
/// deliveries are `POST`s of `{type, timestamp, data}` signed per Standard Webhooks
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[route(POST, "/api/v1/webhooks")]
async fn create_endpoint(
    plugin: PluginState<Webhooks>,
    config: PluginConfig<Webhooks>,
    operator: Operator,
    Json(body): Json<NewEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let pool = plugin.db()?.pool().clone();
    let url = check_url(&plugin, &config, &body.url)?;
    let description = check_description(body.description.as_deref())?;
    let event_types = check_event_types(&plugin, body.event_types)?;
    let secret = signing::new_secret();
    let row = store::insert_endpoint(
        &pool,
        &EndpointFields {
            url: &url,
            description: &description,
            event_types: &event_types,
        },
        &secret,
        operator.user_id,
        store::now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            endpoint: Endpoint::of(&row),
            secret,
        }),
    ))
}

/// Every endpoint.
#[route(GET, "/api/v1/webhooks")]
async fn list_endpoints(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
) -> Result<Json<Endpoints>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    let rows = store::endpoints(&pool).await?;
    Ok(Json(Endpoints {
        endpoints: rows.iter().map(Endpoint::of).collect(),
    }))
}

/// 409 `endpoint_disabled` for a disabled endpoint, which is sent nothing.
fn enabled(endpoint: &EndpointRow) -> Result<(), ApiError> {
    match endpoint.disabled_ms {
        None => Ok(()),
        Some(_) => Err(disabled()),
    }
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "the endpoint is disabled; enable it first (`PATCH` with `enabled: true`)",
    )
    .with_code("endpoint_disabled")
}

async fn existing(pool: &AnyPool, id: i64) -> Result<EndpointRow, ApiError> {
    store::endpoint(pool, id)
        .await?
        .ok_or_else(|| endpoint_not_found(id))
}

/// One endpoint.
#[route(GET, "/api/v1/webhooks/{id}")]
async fn get_endpoint(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
    Path(path): Path<EndpointPath>,
) -> Result<Json<Endpoint>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    Ok(Json(Endpoint::of(&existing(&pool, path.id).await?)))
}

/// Changes an endpoint's URL, description or events, or disables it (pending deliveries
/// wait; events meanwhile are not sent to it) or enables it (they resume, and its past
/// failures are forgotten).
#[route(PATCH, "/api/v1/webhooks/{id}")]
async fn update_endpoint(
    plugin: PluginState<Webhooks>,
    config: PluginConfig<Webhooks>,
    _operator: Operator,
    Path(path): Path<EndpointPath>,
    Json(patch): Json<EndpointPatch>,
) -> Result<Json<Endpoint>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    let row = existing(&pool, path.id).await?;
    let url = match &patch.url {
        Some(url) => check_url(&plugin, &config, url)?,
        None => row.url.clone(),
    };
    let description = match &patch.description {
        Some(description) => check_description(Some(description))?,
        None => row.description.clone(),
    };
    let event_types = match patch.event_types {
        Some(types) => check_event_types(&plugin, Some(types))?,
        None => row.event_types.clone(),
    };
    store::update_endpoint(
        &pool,
        path.id,
        &EndpointFields {
            url: &url,
            description: &description,
            event_types: &event_types,
        },
        patch.enabled,
        store::now_ms(),
    )
    .await?;
    Ok(Json(Endpoint::of(&existing(&pool, path.id).await?)))
}

/// Removes an endpoint with its deliveries and their log (204).
#[route(DELETE, "/api/v1/webhooks/{id}")]
async fn delete_endpoint(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
    Path(path): Path<EndpointPath>,
) -> Result<StatusCode, ApiError> {
    let pool = plugin.db()?.pool().clone();
    if !store::delete_endpoint(&pool, path.id).await? {
        return Err(endpoint_not_found(path.id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/secret/rotate`'s body.
#[payload(request)]
#[derive(Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Hours the current secret keeps signing beside the new one (24 unless given; 0 ends
    /// it now), for receivers to switch without a failed delivery.
    #[schemars(range(min = 0, max = 720))]
    pub overlap_hours: Option<u32>,
}

/// A new signing secret.
#[payload(response)]
#[derive(Debug)]
pub struct RotatedSecret {
    /// The new secret, shown only now.
    pub secret: String,
    /// Until when the previous secret also signs (RFC 3339); deliveries carry both
    /// signatures until then.
    pub previous_secret_until: String,
}

/// Replaces the endpoint's signing secret. For `overlap_hours` deliveries are signed with
/// both (`webhook-signature: v1,<new> v1,<old>`), so a receiver verifying with either passes.
#[route(POST, "/api/v1/webhooks/{id}/secret/rotate")]
async fn rotate_secret(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
    Path(path): Path<EndpointPath>,
    body: Option<Json<RotateBody>>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    let hours = body.and_then(|Json(body)| body.overlap_hours).unwrap_or(24);
    if hours > 720 {
        return Err(ApiError::invalid_field(
            "overlap_hours",
            "`overlap_hours` is 0 to 720",
        ));
    }
    let now = store::now_ms();
    let until = now + i64::from(hours) * 3_600_000;
    let secret = signing::new_secret();
    if !store::rotate_secret(&pool, path.id, &secret, until, now).await? {
        return Err(endpoint_not_found(path.id));
    }
    Ok(Json(RotatedSecret {
        secret,
        previous_secret_until: store::rfc3339(until),
    }))
}

/// One attempt of a delivery.
#[payload(response)]
#[derive(Debug)]
pub struct Attempt {
    /// Its number (1 for the first).
    pub attempt: i64,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub latency_ms: i64,
    /// The status the endpoint answered, if it answered.
    pub status_code: Option<i64>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The first kilobyte of the answer.
    pub response: Option<String>,
    /// `succeeded`, `retrying` or `failed`.
    pub outcome: String,
}

impl Attempt {
    fn of(row: AttemptRow) -> Attempt {
        Attempt {
            attempt: row.attempt,
            started_at: store::rfc3339(row.started_ms),
            latency_ms: row.latency_ms,
            status_code: row.status_code,
            error: row.error,
            response: row.response,
            outcome: row.outcome,
        }
    }
}

/// One event's delivery to one endpoint.
#[payload(response)]
#[derive(Debug)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The `webhook-id` it is sent with: the same for every attempt and replay, for the
    /// receiver to drop a duplicate.
    pub message_id: String,
    /// The event's name (`type` in the body).
    pub event_type: String,
    /// `pending` (waiting for its next attempt, or being sent), `succeeded` or `failed`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (RFC 3339), while it is pending.
    pub next_attempt_at: Option<String>,
    /// The status the endpoint last answered.
    pub response_status: Option<i64>,
    /// What last went wrong.
    pub error: Option<String>,
    /// The first kilobyte of the last answer.
    pub response: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: Option<i64>,
    /// When the event happened (RFC 3339).
    pub created_at: String,
    /// When it succeeded or failed for good (RFC 3339).
    pub finished_at: Option<String>,
}

impl Delivery {
    fn of(row: &DeliveryRow) -> Delivery {
        Delivery {
            id: row.id,
            endpoint_id: row.endpoint_id,
            message_id: row.event_id.clone(),
            event_type: row.event.clone(),
            status: row.status.clone(),
            attempts: row.attempts,
            next_attempt_at: (row.status == "pending")
                .then(|| row.claimed_until_ms.or(row.next_attempt_ms))
                .flatten()
                .map(store::rfc3339),
            response_status: row.last_status_code,
            error: row.last_error.clone(),
            response: row.last_response.clone(),
            latency_ms: row.last_latency_ms,
            created_at: store::rfc3339(row.created_ms),
            finished_at: row.finished_ms.map(store::rfc3339),
        }
    }
}

/// A delivery with its body and every attempt.
#[payload(response)]
#[derive(Debug)]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The body sent, as JSON.
    pub payload: Value,
    /// Its attempts, first first.
    pub attempt_log: Vec<Attempt>,
}

/// `GET /api/v1/webhooks/{id}/deliveries`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct DeliveriesQuery {
    /// Only those with this status: `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// Those older than this delivery id (the next page).
    pub before: Option<i64>,
    /// At most this many (50 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A page of deliveries.
#[payload(response)]
#[derive(Debug)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// An endpoint's deliveries, newest first.
#[route(GET, "/api/v1/webhooks/{id}/deliveries")]
async fn list_deliveries(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
    Path(path): Path<EndpointPath>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    existing(&pool, path.id).await?;
    if let Some(status) = &query.status
        && !["pending", "succeeded", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::invalid_field(
            "status",
            "`status` is `pending`, `succeeded` or `failed`",
        ));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "`limit` is 1 to 200"));
    }
    let rows = store::deliveries(
        &pool,
        path.id,
        query.status.as_deref(),
        query.before,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let deliveries: Vec<Delivery> = rows.iter().take(limit as usize).map(Delivery::of).collect();
    Ok(Json(DeliveryPage {
        next_before: more
            .then(|| deliveries.last().map(|last| last.id))
            .flatten(),
        deliveries,
    }))
}

async fn detail(pool: &AnyPool, endpoint_id: i64, id: i64) -> Result<DeliveryDetail, ApiError> {
    let row = store::delivery(pool, endpoint_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("endpoint {endpoint_id} has no delivery {id}"))
                .with_code("delivery_not_found")
        })?;
    let attempts = store::attempts(pool, id).await?;
    Ok(DeliveryDetail {
        delivery: Delivery::of(&row),
        payload: plexichat::serde_json::from_str(&row.body)
            .unwrap_or(Value::String(row.body.clone())),
        attempt_log: attempts.into_iter().map(Attempt::of).collect(),
    })
}

/// One delivery, with the body sent and every attempt (status, latency, the answer's first
/// kilobyte).
#[route(GET, "/api/v1/webhooks/{id}/deliveries/{delivery_id}")]
async fn get_delivery(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
    Path(path): Path<DeliveryPath>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let pool = plugin.db()?.pool().clone();
    Ok(Json(detail(&pool, path.id, path.delivery_id).await?))
}

/// Sends a delivery's event again (202): a new delivery of the same message (same
/// `webhook-id`, for the receiver to recognise it), due now, with its own attempts.
#[route(POST, "/api/v1/webhooks/{id}/deliveries/{delivery_id}/replay")]
async fn replay_delivery(
    plugin: PluginState<Webhooks>,
    _operator: Operator,
    Path(path): Path<DeliveryPath>,
) -> Result<(StatusCode, Json<DeliveryDetail>), ApiError> {
    let db = plugin.db()?;
    let pool = db.pool().clone();
    let endpoint = existing(&pool, path.id).await?;
    enabled(&endpoint)?;
    let mut transaction = db.begin_write().await?;
    let id = store::replay(&mut transaction, path.id, path.delivery_id, store::now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "endpoint {} has no delivery {}",
                path.id, path.delivery_id
            ))
            .with_code("delivery_not_found")
        })?;
    transaction.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(detail(&pool, path.id, id).await?),
    ))
}

/// Sends a `webhook.ping` event to the endpoint now, whatever its filter, and answers the
/// delivery with the attempt's result (a failed ping is retried like any delivery).
#[route(POST, "/api/v1/webhooks/{id}/ping")]
async fn ping(
    plugin: PluginState<Webhooks>,
    operator: Operator,
    Path(path): Path<EndpointPath>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let context = plugin.context()?.clone();
    let db = plugin.db()?;
    let pool = db.pool().clone();
    let endpoint = existing(&pool, path.id).await?;
    enabled(&endpoint)?;
    let now = store::now_ms();
    let event_id = format!(
        "ping_{}",
        data_encoding::BASE32_NOPAD
            .encode(&signing::random_bytes::<16>())
            .to_lowercase()
    );
    let body = store::body(
        PING,
        now,
        &json!({ "endpoint_id": path.id, "by": operator.user_id }),
    );
    let message = store::NewMessage {
        event_id: &event_id,
        event: PING,
        body: &body,
    };
    let id = deliver::send_now(&context, &plugin, path.id, message)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(disabled)?;
    Ok(Json(detail(&pool, path.id, id).await?))
}
