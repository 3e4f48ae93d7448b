//! The delivery worker: takes events from the outbox into deliveries, claims due deliveries
//! with a lease, sends each (signed, bounded in time and in what it reads back), and records
//! the attempt with what comes next: done, a retry after a backoff (or the endpoint's
//! `Retry-After`), or failed. An endpoint failing for `disable_after_minutes` is disabled.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use plexichat::http_client::{self, Destinations, Method, OutboundError, RestrictedClient};
use plexichat::lifecycle::WriteTransaction;
use plexichat::prelude::*;
use plexichat::reqwest::header::{CONTENT_TYPE, HeaderValue};
use plexichat::reqwest::{Response, Url};
use tokio::task::JoinSet;

use crate::store::{self, Claimed, Outcome};
use crate::{EndpointDisabled, Webhooks, WebhooksConfig, signing};

/// Events taken from the outbox per transaction.
const TAKE: u32 = 200;
/// How often the worker looks for work other processes made (this process's outbox writes
/// and its own retries wake it sooner).
const POLL: Duration = Duration::from_secs(1);
/// The most of an answer read; the rest is not waited for.
const READ_AT_MOST: usize = 64 * 1024;
/// The most of an answer kept in the log.
const KEEP: usize = 1024;

/// The client endpoints are called with, rebuilt when the allowed addresses change.
#[derive(Default)]
pub(crate) struct Clients {
    current: Mutex<Option<(Destinations, RestrictedClient<Webhooks>)>>,
}

impl Clients {
    pub(crate) fn get(
        &self,
        context: &PluginContext<Webhooks>,
        config: &WebhooksConfig,
    ) -> Result<RestrictedClient<Webhooks>, String> {
        let destinations = config.destinations()?;
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*current {
            Some((built_for, client)) if *built_for == destinations => Ok(client.clone()),
            _ => {
                let client = context.http().restricted(destinations.clone());
                *current = Some((destinations, client.clone()));
                Ok(client)
            }
        }
    }
}

/// The worker: runs until the plugin stops. Each pass, in one write transaction (on SQLite
/// every write transaction waits for the one writer, which the chat's posts want too, so a
/// pass takes one turn, not three): takes what the outbox holds into deliveries, records the
/// attempts that finished, and claims due deliveries for the free slots, which it then sends
/// at once. Attempts in flight when it stops are abandoned; their claims expire and another
/// pass sends them again.
pub(crate) async fn run(task: TaskContext<Webhooks>) -> Result<(), BoxError> {
    let context = task.context().clone();
    let db = context.db();
    let outbox = context.outbox();
    let mut waiter = outbox.waiter();
    let mut running: JoinSet<Attempted> = JoinSet::new();
    let claim = format!(
        "w{}",
        data_encoding::HEXLOWER.encode(&signing::random_bytes::<8>())
    );
    let webhooks = context
        .instance()
        .ok_or("the webhooks plugin has no instance")?;
    let mut finished = Vec::new();
    loop {
        let config = context.config::<Webhooks>().unwrap_or_default();
        while let Some(done) = running.try_join_next() {
            finished.extend(done.ok());
        }
        let waiting = outbox.pending().await? > 0;
        let free = i64::from(config.concurrency).saturating_sub(running.len() as i64);
        let due_now = store::next_due(db.pool())
            .await?
            .is_some_and(|due| due <= store::now_ms());
        if waiting || !finished.is_empty() || (free > 0 && due_now) {
            let mut transaction = db.begin_write().await?;
            // After the write turn came: a lease counts from when the claim is made.
            let now = store::now_ms();
            let mut took = 0;
            if waiting {
                let entries = outbox.take(&mut transaction, TAKE).await?;
                store::fan_out(&mut transaction, &entries, now).await?;
                took = entries.len();
            }
            let disabled = record_in(
                &mut transaction,
                &context,
                &config,
                std::mem::take(&mut finished),
            )
            .await?;
            let claimed = if free > 0 {
                store::claim(
                    &mut transaction,
                    db.engine(),
                    &claim,
                    now,
                    lease_until(now, &config),
                    free,
                    None,
                )
                .await?
            } else {
                Vec::new()
            };
            transaction.commit().await?;
            announce(&context, disabled).await;
            for claimed in claimed {
                let (context, webhooks, config) =
                    (context.clone(), webhooks.clone(), config.clone());
                running.spawn(async move { perform(&context, &webhooks, claimed, &config).await });
            }
            if took == TAKE as usize {
                // There may be more than one take's worth.
                continue;
            }
        }
        let wait = match store::next_due(db.pool()).await? {
            _ if running.len() >= config.concurrency as usize => POLL,
            Some(due) => Duration::from_millis(u64::try_from(due - store::now_ms()).unwrap_or(0))
                .clamp(Duration::from_millis(5), POLL),
            None => POLL,
        };
        tokio::select! {
            () = task.cancelled() => {
                running.abort_all();
                return Ok(());
            }
            () = waiter.wait(wait) => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                finished.extend(done.ok());
            }
        }
    }
}

/// When a claim made at `now` ends: the attempt's time limit and a margin for recording it.
/// A worker that dies holding one delays that delivery by at most this.
fn lease_until(now: i64, config: &WebhooksConfig) -> i64 {
    now + (i64::from(config.timeout_seconds) + 10) * 1000
}

/// An attempt made, to record.
pub(crate) struct Attempted {
    claimed: Claimed,
    outcome: Outcome,
    /// The endpoint answered 410 Gone.
    gone: bool,
}

/// Sends `claimed` once: what came of it, and what comes next.
async fn perform(
    context: &PluginContext<Webhooks>,
    webhooks: &Webhooks,
    claimed: Claimed,
    config: &WebhooksConfig,
) -> Attempted {
    let started_ms = store::now_ms();
    let started = Instant::now();
    let sent = match webhooks.clients.get(context, config) {
        Ok(client) => send(&client, &claimed, config, started_ms).await,
        // The operator's mistake, not the receiver's: worth another attempt once fixed.
        Err(problem) => Err(Failure::Retry(format!(
            "[plugins.webhooks] allow_addresses is not valid: {problem}"
        ))),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let mut outcome = Outcome {
        status: "succeeded",
        next_attempt_ms: None,
        started_ms,
        latency_ms,
        status_code: None,
        error: None,
        response: None,
    };
    let mut gone = false;
    match sent {
        Ok(answer) => {
            outcome.status_code = Some(i64::from(answer.status.as_u16()));
            outcome.response = Some(answer.snippet);
            if !answer.status.is_success() {
                let retry = retryable(answer.status);
                gone = answer.status == StatusCode::GONE;
                outcome.error = Some(match (answer.status.is_redirection(), retry) {
                    (true, _) => "the endpoint redirected; redirects are not followed".into(),
                    (false, true) => format!("the endpoint answered {}", answer.status),
                    (false, false) => format!(
                        "the endpoint answered {}, which is not retried",
                        answer.status
                    ),
                });
                fail(&mut outcome, &claimed, config, retry, answer.retry_after);
            }
        }
        Err(Failure::Retry(error)) => {
            outcome.error = Some(error);
            fail(&mut outcome, &claimed, config, true, None);
        }
        Err(Failure::Final(error)) => {
            outcome.error = Some(error);
            fail(&mut outcome, &claimed, config, false, None);
        }
    }
    Attempted {
        claimed,
        outcome,
        gone,
    }
}

/// Records `attempts` in `transaction`, with what they mean for their endpoints: a success
/// ends a failing streak; a failure starts one, and disables the endpoint when it answered
/// 410 or the streak is older than `disable_after_minutes`. Answers the endpoints disabled,
/// whose events are in the outbox and go on the bus once the transaction commits
/// ([`announce`]). An attempt whose claim expired meanwhile is not recorded: the worker that
/// took the delivery over records its own.
async fn record_in(
    transaction: &mut WriteTransaction,
    context: &PluginContext<Webhooks>,
    config: &WebhooksConfig,
    attempts: Vec<Attempted>,
) -> Result<Vec<EndpointDisabled>, BoxError> {
    let now = store::now_ms();
    let mut disabled = Vec::new();
    for Attempted {
        claimed,
        outcome,
        gone,
    } in &attempts
    {
        if !store::record(transaction, claimed, outcome, now).await? {
            continue;
        }
        if outcome.status == "succeeded" {
            store::endpoint_succeeded(transaction, claimed.endpoint.id).await?;
            continue;
        }
        let since = store::endpoint_failed(transaction, claimed.endpoint.id, now).await?;
        let limit = i64::from(config.disable_after_minutes) * 60_000;
        let reason = if *gone {
            "it answered 410 Gone".to_string()
        } else if now - since >= limit {
            format!("its deliveries have failed since {}", store::rfc3339(since))
        } else {
            continue;
        };
        if store::disable(transaction, claimed.endpoint.id, &reason, now).await? {
            let event = EndpointDisabled {
                endpoint_id: claimed.endpoint.id,
                origin: origin(&claimed.endpoint.url),
                owner_id: claimed.endpoint.owner_id,
                reason,
            };
            context.outbox().write(transaction, &event).await?;
            disabled.push(event);
        }
    }
    Ok(disabled)
}

/// `scheme://host:port` of `url`, without its path, query or credentials.
fn origin(url: &str) -> String {
    Url::parse(url).map_or_else(
        |_| "(not a URL)".to_string(),
        |url| url.origin().ascii_serialization(),
    )
}

/// Logs and publishes the endpoints disabled by a committed transaction.
async fn announce(context: &PluginContext<Webhooks>, disabled: Vec<EndpointDisabled>) {
    for event in disabled {
        plexichat::tracing::warn!(
            endpoint = event.endpoint_id,
            reason = %event.reason,
            "webhooks: an endpoint was disabled"
        );
        context.publish(&event).await;
    }
}

/// Sets `outcome` to a retry (when `retry` and attempts are left) or a failure.
fn fail(
    outcome: &mut Outcome,
    claimed: &Claimed,
    config: &WebhooksConfig,
    retry: bool,
    retry_after: Option<Duration>,
) {
    if retry && claimed.attempt < i64::from(config.max_attempts) {
        let wait = retry_after
            .map(|wait| wait.min(Duration::from_secs(u64::from(config.retry_max_seconds))))
            .unwrap_or_else(|| backoff(config, claimed.attempt));
        outcome.status = "retrying";
        outcome.next_attempt_ms = Some(store::now_ms() + wait.as_millis() as i64);
    } else {
        outcome.status = "failed";
    }
}

/// Whether an answer with `status` is worth another attempt: timeouts, throttling and server
/// errors. Any other refusal (a 4xx, a redirect) would be refused again.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The wait after attempt `attempt` failed: `retry_base_seconds` doubling per attempt up to
/// `retry_max_seconds`, then a random part of the second half of it taken off ("equal
/// jitter"), so that endpoints that fail together are not retried together.
pub(crate) fn backoff(config: &WebhooksConfig, attempt: i64) -> Duration {
    let base = f64::from(config.retry_base_seconds);
    let exponent = i32::try_from(attempt.saturating_sub(1))
        .unwrap_or(i32::MAX)
        .min(40);
    let full = (base * 2f64.powi(exponent)).min(f64::from(config.retry_max_seconds));
    let random = f64::from(u32::from_le_bytes(signing::random_bytes::<4>())) / f64::from(u32::MAX);
    Duration::from_secs_f64(full / 2.0 + full / 2.0 * random)
}

/// What the endpoint answered.
struct Answer {
    status: StatusCode,
    snippet: String,
    retry_after: Option<Duration>,
}

/// Why an attempt got no answer.
enum Failure {
    /// Worth another attempt (a timeout, a refused connection).
    Retry(String),
    /// Not (the destination is not allowed).
    Final(String),
}

async fn send(
    client: &RestrictedClient<Webhooks>,
    claimed: &Claimed,
    config: &WebhooksConfig,
    now_ms: i64,
) -> Result<Answer, Failure> {
    let url = Url::parse(&claimed.endpoint.url)
        .map_err(|error| Failure::Final(format!("the endpoint's URL is not valid: {error}")))?;
    let timestamp = now_ms / 1000;
    let signature = signing::signature(
        &claimed.endpoint.signing_secrets(now_ms),
        &claimed.event_id,
        timestamp,
        claimed.body.as_bytes(),
    );
    let request = client
        .request(Method::POST, url)
        .timeout(Duration::from_secs(u64::from(config.timeout_seconds)))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("webhook-id", &claimed.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(claimed.body.clone());
    let response = client.send(request).await.map_err(|error| match error {
        OutboundError::Refused(refused) => Failure::Final(format!(
            "{refused}: add it to `[plugins.webhooks] allow_addresses` to allow it"
        )),
        OutboundError::InvalidUrl(problem) => Failure::Final(problem),
        OutboundError::Transport(error) if error.is_timeout() => {
            Failure::Retry(format!("no answer within {} s", config.timeout_seconds))
        }
        OutboundError::Transport(error) => Failure::Retry(describe(&error)),
    })?;
    let status = response.status();
    let retry_after = http_client::retry_after(response.headers());
    let snippet = snippet(response).await;
    Ok(Answer {
        status,
        snippet,
        retry_after,
    })
}

/// A transport error without the URL (which may carry a credential of the receiver's) and
/// with its causes.
fn describe(error: &plexichat::reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The first [`KEEP`] bytes of the answer's body as text, reading at most [`READ_AT_MOST`].
async fn snippet(mut response: Response) -> String {
    let mut kept = Vec::new();
    let mut read = 0;
    while read < READ_AT_MOST {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Forgets finished deliveries past `keep_days`, hourly.
pub(crate) async fn prune(task: TaskContext<Webhooks>) -> Result<(), BoxError> {
    loop {
        let config = task.config::<Webhooks>().unwrap_or_default();
        let keep = i64::from(config.keep_days) * 86_400_000;
        store::prune(task.db().pool(), store::now_ms() - keep).await?;
        if !task.sleep(Duration::from_secs(3600)).await {
            return Ok(());
        }
    }
}

/// Writes a message of its own for one endpoint (a test ping) and sends it at once: the
/// delivery is claimed in the transaction that writes it, so no worker can take it first and
/// the caller can answer with the attempt's result. Answers the delivery's id; `None` when
/// the endpoint was disabled meanwhile (nothing is written then).
pub(crate) async fn send_now(
    context: &PluginContext<Webhooks>,
    webhooks: &Webhooks,
    endpoint_id: i64,
    message: store::NewMessage<'_>,
) -> Result<Option<i64>, BoxError> {
    let config = context.config::<Webhooks>().unwrap_or_default();
    let claim = format!(
        "p{}",
        data_encoding::HEXLOWER.encode(&signing::random_bytes::<8>())
    );
    let db = context.db();
    let mut transaction = db.begin_write().await?;
    let now = store::now_ms();
    let id = store::enqueue_one(&mut transaction, endpoint_id, &message, now).await?;
    let lease = lease_until(now, &config);
    let claimed = store::claim(
        &mut transaction,
        db.engine(),
        &claim,
        now,
        lease,
        1,
        Some(id),
    )
    .await?
    .pop();
    // Claims skip disabled endpoints: this one was disabled since the caller looked. Dropping
    // the transaction takes the message back.
    let Some(claimed) = claimed else {
        return Ok(None);
    };
    transaction.commit().await?;
    let attempted = perform(context, webhooks, claimed, &config).await;
    let mut transaction = db.begin_write().await?;
    let disabled = record_in(&mut transaction, context, &config, vec![attempted]).await?;
    transaction.commit().await?;
    announce(context, disabled).await;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_limit_with_jitter() {
        let config = WebhooksConfig {
            retry_base_seconds: 10,
            retry_max_seconds: 100,
            ..WebhooksConfig::default()
        };
        for (attempt, full) in [
            (1, 10.0),
            (2, 20.0),
            (3, 40.0),
            (4, 80.0),
            (5, 100.0),
            (60, 100.0),
        ] {
            for _ in 0..20 {
                let wait = backoff(&config, attempt).as_secs_f64();
                assert!(
                    wait >= full / 2.0 - 1e-9 && wait <= full + 1e-9,
                    "attempt {attempt}: {wait}"
                );
            }
        }
    }

    #[test]
    fn only_timeouts_throttling_and_server_errors_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [301, 400, 401, 404, 410, 422] {
            assert!(!retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
