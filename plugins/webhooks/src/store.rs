//! The webhooks tables, on either engine: literal SQL with bound parameters. Times are Unix
//! milliseconds.

use plexichat::lifecycle::{OutboxEntry, WriteTransaction};
use plexichat::serde_json::{self, Value, json};
use plexichat::sqlx::{self, AnyConnection, AnyPool, Row, any::AnyRow};
use plexichat::storage::Engine;
pub(crate) use plexichat::storage::{now_millis as now_ms, rfc3339_millis as rfc3339};

/// An endpoint, as stored. No `Debug`: it holds the signing secrets.
#[derive(Clone)]
pub(crate) struct EndpointRow {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until_ms: Option<i64>,
    pub owner_id: Option<i64>,
    pub disabled_ms: Option<i64>,
    pub disabled_reason: Option<String>,
    pub failing_since_ms: Option<i64>,
    /// Its last disabled period, once it was enabled again: events written then are not
    /// sent to it.
    pub paused_from_ms: Option<i64>,
    pub paused_until_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl EndpointRow {
    /// Whether it takes events named `event`.
    pub(crate) fn wants(&self, event: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|wanted| wanted == event)
    }

    /// Whether `ms` falls in its last disabled period. Times are the servers' clocks, so an
    /// event written within their skew of the period's ends may be taken for one side or
    /// the other; everything well inside the period is skipped, everything outside sent.
    pub(crate) fn paused_at(&self, ms: i64) -> bool {
        matches!(
            (self.paused_from_ms, self.paused_until_ms),
            (Some(from), Some(until)) if from <= ms && ms < until
        )
    }

    /// The secrets that sign at `now`: the current one, and the previous one while its
    /// overlap lasts.
    pub(crate) fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_until_ms)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

const ENDPOINT_COLUMNS: &str = "e.id, e.url, e.description, e.event_types, e.secret, e.previous_secret, e.previous_until_ms, e.owner_id, e.disabled_ms, e.disabled_reason, e.failing_since_ms, e.paused_from_ms, e.paused_until_ms, e.created_ms, e.updated_ms";

fn endpoint_row(row: &AnyRow) -> Result<EndpointRow, sqlx::Error> {
    let types: String = row.try_get("event_types")?;
    Ok(EndpointRow {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        event_types: serde_json::from_str(&types).unwrap_or_default(),
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_until_ms: row.try_get("previous_until_ms")?,
        owner_id: row.try_get("owner_id")?,
        disabled_ms: row.try_get("disabled_ms")?,
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since_ms: row.try_get("failing_since_ms")?,
        paused_from_ms: row.try_get("paused_from_ms")?,
        paused_until_ms: row.try_get("paused_until_ms")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

/// What a new endpoint or a change to one sets.
pub(crate) struct EndpointFields<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a [String],
}

pub(crate) async fn insert_endpoint(
    pool: &AnyPool,
    fields: &EndpointFields<'_>,
    secret: &str,
    owner_id: Option<i64>,
    now: i64,
) -> Result<EndpointRow, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO webhooks_endpoints (url, description, event_types, secret, owner_id, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(fields.url)
    .bind(fields.description)
    .bind(json!(fields.event_types).to_string())
    .bind(secret)
    .bind(owner_id)
    .bind(now)
    .fetch_one(pool)
    .await?;
    let id: i64 = row.try_get("id")?;
    endpoint(pool, id).await?.ok_or(sqlx::Error::RowNotFound)
}

pub(crate) async fn endpoint(pool: &AnyPool, id: i64) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhooks_endpoints e WHERE e.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(endpoint_row)
    .transpose()
}

pub(crate) async fn endpoints(pool: &AnyPool) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhooks_endpoints e ORDER BY e.id"
    )))
    .fetch_all(pool)
    .await?
    .iter()
    .map(endpoint_row)
    .collect()
}

pub(crate) async fn update_endpoint(
    pool: &AnyPool,
    id: i64,
    fields: &EndpointFields<'_>,
    enabled: Option<bool>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks_endpoints SET url = $2, description = $3, event_types = $4, updated_ms = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(fields.url)
    .bind(fields.description)
    .bind(json!(fields.event_types).to_string())
    .bind(now)
    .execute(pool)
    .await?;
    match enabled {
        // Enabled again: its failures so far are forgiven, and what happened while it was
        // disabled stays undelivered (every expression reads the row as it was).
        Some(true) => {
            sqlx::query(
                "UPDATE webhooks_endpoints SET disabled_ms = NULL, disabled_reason = NULL, failing_since_ms = NULL, \
                 paused_from_ms = CASE WHEN disabled_ms IS NULL THEN paused_from_ms ELSE disabled_ms END, \
                 paused_until_ms = CASE WHEN disabled_ms IS NULL THEN paused_until_ms ELSE $2 END \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
        }
        Some(false) => {
            sqlx::query(
                "UPDATE webhooks_endpoints SET disabled_ms = $2, disabled_reason = 'disabled by an operator' WHERE id = $1 AND disabled_ms IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
        }
        None => {}
    }
    Ok(())
}

pub(crate) async fn delete_endpoint(pool: &AnyPool, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhooks_endpoints WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Makes `secret` the endpoint's, the current one signing beside it until `overlap_until`.
pub(crate) async fn rotate_secret(
    pool: &AnyPool,
    id: i64,
    secret: &str,
    overlap_until: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhooks_endpoints SET previous_secret = secret, previous_until_ms = $3, secret = $2, updated_ms = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(secret)
    .bind(overlap_until)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The body every endpoint receives for `entry`: `{type, timestamp, data}`, as the Standard
/// Webhooks specification recommends.
pub(crate) fn body(event: &str, created_ms: i64, data: &Value) -> String {
    json!({ "type": event, "timestamp": rfc3339(created_ms), "data": data }).to_string()
}

async fn insert_message(
    connection: &mut AnyConnection,
    event_id: &str,
    event: &str,
    body: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhooks_messages (event_id, event, body, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(event_id)
    .bind(event)
    .bind(body)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?
    .try_get("id")
}

async fn insert_delivery(
    connection: &mut AnyConnection,
    endpoint_id: i64,
    message_id: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhooks_deliveries (endpoint_id, message_id, status, attempts, next_attempt_ms, created_ms) \
         VALUES ($1, $2, 'pending', 0, $3, $3) RETURNING id",
    )
    .bind(endpoint_id)
    .bind(message_id)
    .bind(now)
    .fetch_one(&mut *connection)
    .await?
    .try_get("id")
}

/// Records, in the transaction that took `entries` from the outbox, one delivery per enabled
/// endpoint that wants each, unless it was written while the endpoint was disabled (the
/// worker may read an event after the endpoint was disabled and enabled again); answers how
/// many.
pub(crate) async fn fan_out(
    transaction: &mut WriteTransaction,
    entries: &[OutboxEntry],
    now: i64,
) -> Result<usize, sqlx::Error> {
    let endpoints: Vec<EndpointRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhooks_endpoints e WHERE e.disabled_ms IS NULL ORDER BY e.id"
    )))
    .fetch_all(&mut ***transaction)
    .await?
    .iter()
    .map(endpoint_row)
    .collect::<Result<_, _>>()?;
    let mut count = 0;
    for entry in entries {
        let wanting: Vec<&EndpointRow> = endpoints
            .iter()
            .filter(|endpoint| {
                endpoint.wants(&entry.event) && !endpoint.paused_at(entry.created_at)
            })
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let body = body(&entry.event, entry.created_at, &entry.payload);
        let message = insert_message(
            &mut *transaction,
            &entry.event_id,
            &entry.event,
            &body,
            entry.created_at,
        )
        .await?;
        for endpoint in wanting {
            insert_delivery(&mut *transaction, endpoint.id, message, now).await?;
            count += 1;
        }
    }
    Ok(count)
}

/// A message written for one endpoint only (a test ping).
pub(crate) struct NewMessage<'a> {
    pub event_id: &'a str,
    pub event: &'a str,
    pub body: &'a str,
}

/// A message of its own for one endpoint, due at `now`; answers the delivery's id.
pub(crate) async fn enqueue_one(
    transaction: &mut WriteTransaction,
    endpoint_id: i64,
    message: &NewMessage<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let id = insert_message(
        &mut *transaction,
        message.event_id,
        message.event,
        message.body,
        now,
    )
    .await?;
    insert_delivery(&mut *transaction, endpoint_id, id, now).await
}

/// A new delivery of an earlier delivery's message to the same endpoint, due now.
pub(crate) async fn replay(
    transaction: &mut WriteTransaction,
    endpoint_id: i64,
    delivery_id: i64,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT message_id FROM webhooks_deliveries WHERE id = $1 AND endpoint_id = $2",
    )
    .bind(delivery_id)
    .bind(endpoint_id)
    .fetch_optional(&mut ***transaction)
    .await?
    else {
        return Ok(None);
    };
    let message: i64 = row.try_get("message_id")?;
    insert_delivery(&mut *transaction, endpoint_id, message, now)
        .await
        .map(Some)
}

/// A delivery claimed for one attempt, with what sending it needs.
pub(crate) struct Claimed {
    pub id: i64,
    pub claim: String,
    /// Its number, counting this one.
    pub attempt: i64,
    pub endpoint: EndpointRow,
    pub event_id: String,
    pub body: String,
}

/// Claims up to `limit` due deliveries of enabled endpoints (or, with `only`, that one
/// delivery whatever its time) until `lease_until`, counting the attempt.
pub(crate) async fn claim(
    transaction: &mut WriteTransaction,
    engine: Engine,
    claim: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    only: Option<i64>,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match engine {
        Engine::Postgres => " FOR UPDATE OF d SKIP LOCKED",
        Engine::Sqlite => "",
    };
    let ids: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE webhooks_deliveries SET claim = $1, claimed_until_ms = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT d.id FROM webhooks_deliveries d JOIN webhooks_endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'pending' AND ($5 = 0 OR d.id = $5) AND ($5 <> 0 OR d.next_attempt_ms <= $3) AND (d.claimed_until_ms IS NULL OR d.claimed_until_ms < $3) \
         AND e.disabled_ms IS NULL ORDER BY d.next_attempt_ms, d.id LIMIT $4{lock}) RETURNING id"
    )))
    .bind(claim)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .bind(only.unwrap_or(0))
    .fetch_all(&mut ***transaction)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS}, d.attempts, m.event_id AS message_event_id, m.body \
             FROM webhooks_deliveries d JOIN webhooks_endpoints e ON e.id = d.endpoint_id \
             JOIN webhooks_messages m ON m.id = d.message_id WHERE d.id = $1"
        )))
        .bind(id)
        .fetch_one(&mut ***transaction)
        .await?;
        claimed.push(Claimed {
            id,
            claim: claim.to_string(),
            attempt: row.try_get("attempts")?,
            endpoint: endpoint_row(&row)?,
            event_id: row.try_get("message_event_id")?,
            body: row.try_get("body")?,
        });
    }
    Ok(claimed)
}

/// What one attempt came to.
pub(crate) struct Outcome {
    /// `succeeded`, `retrying` or `failed`.
    pub status: &'static str,
    pub next_attempt_ms: Option<i64>,
    pub started_ms: i64,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// Records `outcome` of `claimed`'s attempt, if the claim is still its own: the same claim
/// and the same attempt number (a claim that outlived its lease was taken over, even by the
/// same worker, and the attempt that took it over records instead).
/// Answers whether it was recorded.
pub(crate) async fn record(
    transaction: &mut WriteTransaction,
    claimed: &Claimed,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let finished = (outcome.status != "retrying").then_some(now);
    let status = if outcome.status == "retrying" {
        "pending"
    } else {
        outcome.status
    };
    let done = sqlx::query(
        "UPDATE webhooks_deliveries SET status = $3, next_attempt_ms = $4, claim = NULL, claimed_until_ms = NULL, \
         last_status_code = $5, last_error = $6, last_response = $7, last_latency_ms = $8, finished_ms = $9 \
         WHERE id = $1 AND claim = $2 AND attempts = $10",
    )
    .bind(claimed.id)
    .bind(&claimed.claim)
    .bind(status)
    .bind(outcome.next_attempt_ms)
    .bind(outcome.status_code)
    .bind(&outcome.error)
    .bind(&outcome.response)
    .bind(outcome.latency_ms)
    .bind(finished)
    .bind(claimed.attempt)
    .execute(&mut ***transaction)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO webhooks_attempts (delivery_id, attempt, started_ms, latency_ms, status_code, error, response, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(claimed.id)
    .bind(claimed.attempt)
    .bind(outcome.started_ms)
    .bind(outcome.latency_ms)
    .bind(outcome.status_code)
    .bind(&outcome.error)
    .bind(&outcome.response)
    .bind(outcome.status)
    .execute(&mut ***transaction)
    .await?;
    Ok(true)
}

/// Clears the endpoint's failing streak after a success.
pub(crate) async fn endpoint_succeeded(
    transaction: &mut WriteTransaction,
    endpoint_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks_endpoints SET failing_since_ms = NULL WHERE id = $1 AND failing_since_ms IS NOT NULL",
    )
    .bind(endpoint_id)
    .execute(&mut ***transaction)
    .await?;
    Ok(())
}

/// Starts the endpoint's failing streak if none runs; answers when it started.
pub(crate) async fn endpoint_failed(
    transaction: &mut WriteTransaction,
    endpoint_id: i64,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks_endpoints SET failing_since_ms = COALESCE(failing_since_ms, $2) WHERE id = $1 RETURNING failing_since_ms",
    )
    .bind(endpoint_id)
    .bind(now)
    .fetch_optional(&mut ***transaction)
    .await?
    .map_or(Ok(now), |row| row.try_get("failing_since_ms"))
}

/// Disables the endpoint, if it is not already; answers whether this did.
pub(crate) async fn disable(
    transaction: &mut WriteTransaction,
    endpoint_id: i64,
    reason: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhooks_endpoints SET disabled_ms = $2, disabled_reason = $3 WHERE id = $1 AND disabled_ms IS NULL",
    )
    .bind(endpoint_id)
    .bind(now)
    .bind(reason)
    .execute(&mut ***transaction)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// When the next pending delivery of an enabled endpoint is due, if any.
pub(crate) async fn next_due(pool: &AnyPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "SELECT MIN(COALESCE(d.claimed_until_ms, d.next_attempt_ms)) AS due FROM webhooks_deliveries d \
         JOIN webhooks_endpoints e ON e.id = d.endpoint_id WHERE d.status = 'pending' AND e.disabled_ms IS NULL",
    )
    .fetch_one(pool)
    .await?
    .try_get("due")
}

/// A delivery, as the log shows it.
pub(crate) struct DeliveryRow {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: String,
    pub event: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_ms: Option<i64>,
    pub claimed_until_ms: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub body: String,
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, m.event_id, m.event, d.status, d.attempts, d.next_attempt_ms, d.claimed_until_ms, d.last_status_code, d.last_error, d.last_response, d.last_latency_ms, d.created_ms, d.finished_ms, m.body";

fn delivery_row(row: &AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event: row.try_get("event")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        claimed_until_ms: row.try_get("claimed_until_ms")?,
        last_status_code: row.try_get("last_status_code")?,
        last_error: row.try_get("last_error")?,
        last_response: row.try_get("last_response")?,
        last_latency_ms: row.try_get("last_latency_ms")?,
        created_ms: row.try_get("created_ms")?,
        finished_ms: row.try_get("finished_ms")?,
        body: row.try_get("body")?,
    })
}

/// An endpoint's deliveries, newest first: those before `before` (an id), of `status` if
/// given.
pub(crate) async fn deliveries(
    pool: &AnyPool,
    endpoint_id: i64,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhooks_deliveries d JOIN webhooks_messages m ON m.id = d.message_id \
         WHERE d.endpoint_id = $1 AND d.id < $2 AND ($3 = '' OR d.status = $3) ORDER BY d.id DESC LIMIT $4"
    )))
    .bind(endpoint_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(status.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(delivery_row)
    .collect()
}

pub(crate) async fn delivery(
    pool: &AnyPool,
    endpoint_id: i64,
    id: i64,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhooks_deliveries d JOIN webhooks_messages m ON m.id = d.message_id \
         WHERE d.endpoint_id = $1 AND d.id = $2"
    )))
    .bind(endpoint_id)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(delivery_row)
    .transpose()
}

/// One attempt, as stored.
pub(crate) struct AttemptRow {
    pub attempt: i64,
    pub started_ms: i64,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub outcome: String,
}

pub(crate) async fn attempts(
    pool: &AnyPool,
    delivery_id: i64,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query(
        "SELECT attempt, started_ms, latency_ms, status_code, error, response, outcome \
         FROM webhooks_attempts WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        Ok(AttemptRow {
            attempt: row.try_get("attempt")?,
            started_ms: row.try_get("started_ms")?,
            latency_ms: row.try_get("latency_ms")?,
            status_code: row.try_get("status_code")?,
            error: row.try_get("error")?,
            response: row.try_get("response")?,
            outcome: row.try_get("outcome")?,
        })
    })
    .collect()
}

/// Forgets finished deliveries older than `before`, and messages no delivery needs.
pub(crate) async fn prune(pool: &AnyPool, before: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhooks_deliveries WHERE status <> 'pending' AND finished_ms < $1")
        .bind(before)
        .execute(pool)
        .await?;
    sqlx::query(
        "DELETE FROM webhooks_messages WHERE created_ms < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhooks_deliveries d WHERE d.message_id = webhooks_messages.id)",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(())
}

/// An incoming hook, as stored.
#[derive(Clone)]
pub(crate) struct HookRow {
    pub id: i64,
    pub channel_id: i64,
    pub owner_id: i64,
    pub description: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

const HOOK_COLUMNS: &str = "id, channel_id, owner_id, description, created_ms, last_used_ms";

fn hook_row(row: &AnyRow) -> Result<HookRow, sqlx::Error> {
    Ok(HookRow {
        id: row.try_get("id")?,
        channel_id: row.try_get("channel_id")?,
        owner_id: row.try_get("owner_id")?,
        description: row.try_get("description")?,
        created_ms: row.try_get("created_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
    })
}

pub(crate) async fn insert_hook(
    pool: &AnyPool,
    digest: &str,
    channel_id: i64,
    owner_id: i64,
    description: &str,
    now: i64,
) -> Result<HookRow, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhooks_incoming (token_digest, channel_id, owner_id, description, created_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {HOOK_COLUMNS}"
    )))
    .bind(digest)
    .bind(channel_id)
    .bind(owner_id)
    .bind(description)
    .bind(now)
    .fetch_one(pool)
    .await
    .and_then(|row| hook_row(&row))
}

pub(crate) async fn hook_by_digest(
    pool: &AnyPool,
    digest: &str,
) -> Result<Option<HookRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {HOOK_COLUMNS} FROM webhooks_incoming WHERE token_digest = $1"
    )))
    .bind(digest)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(hook_row)
    .transpose()
}

/// Hooks, by id: `owner`'s, or everyone's.
pub(crate) async fn hooks(pool: &AnyPool, owner: Option<i64>) -> Result<Vec<HookRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {HOOK_COLUMNS} FROM webhooks_incoming WHERE $1 = 0 OR owner_id = $1 ORDER BY id"
    )))
    .bind(owner.unwrap_or(0))
    .fetch_all(pool)
    .await?
    .iter()
    .map(hook_row)
    .collect()
}

pub(crate) async fn hook(pool: &AnyPool, id: i64) -> Result<Option<HookRow>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {HOOK_COLUMNS} FROM webhooks_incoming WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(hook_row)
    .transpose()
}

pub(crate) async fn delete_hook(pool: &AnyPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhooks_incoming WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn touch_hook(pool: &AnyPool, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhooks_incoming SET last_used_ms = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}
