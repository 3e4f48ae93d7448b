//! The rollups: records summed per day, plugin, metric and dimensions and added to
//! `analytics_daily`; and the queries over them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use plexichat::analytics::{
    AnalyticsError, AnalyticsFeed, AnalyticsFuture, AnalyticsProvider, AnalyticsQuery,
    AnalyticsRecord, AnalyticsRow, MAX_DIMENSIONS, valid_name,
};
use plexichat::lifecycle::Db;
use plexichat::prelude::*;
use plexichat::sqlx::{self, Row};
use tokio::sync::Mutex;

use crate::Analytics;

/// The most records summed in one transaction.
const BATCH: usize = 8192;
/// The longest range a query may cover, in days.
pub(crate) const MAX_DAYS: i64 = 3660;

/// A day (UTC) of a time in milliseconds since the epoch, `YYYY-MM-DD`.
fn day_of(at: i64) -> String {
    jiff::Timestamp::from_millisecond(at)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// Drains the feed: waits for a record, gathers more for up to `flush_seconds` (or
/// [`BATCH`]), and writes their sums. On stop it writes what is queued.
pub(crate) async fn run(
    task: TaskContext<Analytics>,
    feed: Arc<Mutex<AnalyticsFeed>>,
) -> Result<(), BoxError> {
    let mut feed = feed.lock().await;
    let db = task.db();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let config = task.config::<Analytics>().unwrap_or_default();
        let first = tokio::select! {
            () = task.cancelled() => None,
            record = feed.recv() => record,
        };
        let Some(first) = first else {
            // Stopping: what is already queued is written, not lost.
            while let Ok(record) = feed.try_recv() {
                batch.push(record);
            }
            write(&db, &batch).await?;
            return Ok(());
        };
        batch.push(first);
        let until =
            tokio::time::Instant::now() + Duration::from_secs(u64::from(config.flush_seconds));
        while batch.len() < BATCH {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                () = task.cancelled() => break,
                record = feed.recv() => match record {
                    Some(record) => batch.push(record),
                    None => break,
                },
            }
        }
        // A failed write is tried again (the database may be restarting), then given up
        // with the error, which restarts the task.
        let mut tries = 0;
        while let Err(error) = write(&db, &batch).await {
            tries += 1;
            if tries == 3 {
                return Err(error);
            }
            plexichat::tracing::warn!(%error, "analytics: writing rollups failed; retrying");
            if !task.sleep(Duration::from_secs(1)).await {
                break;
            }
        }
        batch.clear();
    }
}

/// Adds the sums of `records` to the rollups, in one transaction.
async fn write(db: &Db<Analytics>, records: &[AnalyticsRecord]) -> Result<(), BoxError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut sums: HashMap<(String, &str, &str, &str), (i64, i64)> = HashMap::new();
    for record in records {
        let sum = sums
            .entry((
                day_of(record.at),
                record.plugin,
                record.metric,
                &record.dimensions,
            ))
            .or_default();
        sum.0 += 1;
        sum.1 = sum.1.saturating_add(record.value);
    }
    let sums: Vec<_> = sums.into_iter().collect();
    let together = async {
        let mut transaction = db.begin_write().await?;
        for (key, sum) in &sums {
            add(&mut transaction, key, *sum).await?;
        }
        transaction.commit().await
    };
    let Err(error) = together.await else {
        return Ok(());
    };
    // One row the database refuses must not cost the others: each is tried on its own, and
    // what still fails is logged and left out.
    plexichat::tracing::warn!(%error, "analytics: writing a batch failed; writing its rows one by one");
    let mut failed = 0;
    for (key, sum) in &sums {
        let mut transaction = db.begin_write().await?;
        match add(&mut transaction, key, *sum).await {
            Ok(()) => transaction.commit().await?,
            Err(error) => {
                failed += 1;
                plexichat::tracing::warn!(%error, plugin = key.1, metric = key.2, "analytics: a rollup row was refused");
            }
        }
    }
    if failed == sums.len() {
        return Err(error.into());
    }
    Ok(())
}

/// Adds one sum to its rollup row.
async fn add(
    connection: &mut sqlx::AnyConnection,
    (day, plugin, metric, dimensions): &(String, &str, &str, &str),
    (count, total): (i64, i64),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO analytics_daily (day, plugin, metric, dimensions, count, total) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (plugin, metric, day, dimensions) DO UPDATE SET \
         count = analytics_daily.count + excluded.count, \
         total = analytics_daily.total + excluded.total",
    )
    .bind(day.as_str())
    .bind(*plugin)
    .bind(*metric)
    .bind(*dimensions)
    .bind(count)
    .bind(total)
    .execute(connection)
    .await
    .map(|_| ())
}

/// Forgets rollups older than `keep_days`, daily.
pub(crate) async fn prune(task: TaskContext<Analytics>) -> Result<(), BoxError> {
    loop {
        let config = task.config::<Analytics>().unwrap_or_default();
        let keep = i64::from(config.keep_days) * 86_400_000;
        let before = day_of(plexichat::storage::now_millis() - keep);
        sqlx::query("DELETE FROM analytics_daily WHERE day < $1")
            .bind(before)
            .execute(task.db().pool())
            .await?;
        if !task.sleep(Duration::from_secs(86_400)).await {
            return Ok(());
        }
    }
}

/// The provider's query side.
pub(crate) struct Store {
    db: Db<Analytics>,
}

impl Store {
    pub(crate) fn new(db: Db<Analytics>) -> Store {
        Store { db }
    }

    /// The sums of `metric` of `plugin` per day, added up by the database.
    async fn per_day(
        &self,
        plugin: &str,
        metric: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<AnalyticsRow>, AnalyticsError> {
        check(metric, from, to)?;
        let rows = sqlx::query(
            "SELECT day, CAST(SUM(count) AS BIGINT) AS count, CAST(SUM(total) AS BIGINT) AS total \
             FROM analytics_daily WHERE plugin = $1 AND metric = $2 AND day >= $3 AND day <= $4 \
             GROUP BY day ORDER BY day",
        )
        .bind(plugin)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|row| {
                Ok(AnalyticsRow {
                    day: row.try_get("day").map_err(storage)?,
                    group: BTreeMap::new(),
                    count: row.try_get("count").map_err(storage)?,
                    total: row.try_get("total").map_err(storage)?,
                })
            })
            .collect()
    }

    /// Every row of `metric` of `plugin` from `from` to `to`: (day, dimensions, count, total).
    async fn rows(
        &self,
        plugin: &str,
        metric: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, BTreeMap<String, String>, i64, i64)>, AnalyticsError> {
        check(metric, from, to)?;
        let rows = sqlx::query(
            "SELECT day, dimensions, count, total FROM analytics_daily \
             WHERE plugin = $1 AND metric = $2 AND day >= $3 AND day <= $4 ORDER BY day",
        )
        .bind(plugin)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(self.db.pool())
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|row| {
                let dimensions: String = row.try_get("dimensions").map_err(storage)?;
                let dimensions: BTreeMap<String, String> =
                    plexichat::serde_json::from_str(&dimensions)
                        .map_err(|error| AnalyticsError::Storage(error.to_string()))?;
                Ok((
                    row.try_get("day").map_err(storage)?,
                    dimensions,
                    row.try_get("count").map_err(storage)?,
                    row.try_get("total").map_err(storage)?,
                ))
            })
            .collect()
    }
}

/// Checks a query's metric and range.
fn check(metric: &str, from: &str, to: &str) -> Result<(), AnalyticsError> {
    check_range(from, to)?;
    if !valid_name(metric) {
        return Err(AnalyticsError::Invalid {
            field: "metric",
            message: format!(
                "`{metric}` is not a metric name (lowercase letters, digits, `_`, `.`)"
            ),
        });
    }
    Ok(())
}

fn storage(error: sqlx::Error) -> AnalyticsError {
    AnalyticsError::Storage(error.to_string())
}

/// Checks a range of days: both dates, in order, at most [`MAX_DAYS`] long.
pub(crate) fn check_range(from: &str, to: &str) -> Result<(), AnalyticsError> {
    let date = |field: &'static str, text: &str| {
        text.parse::<jiff::civil::Date>()
            .ok()
            .filter(|_| text.len() == 10)
            .ok_or_else(|| AnalyticsError::Invalid {
                field,
                message: format!("`{text}` is not a date; write YYYY-MM-DD"),
            })
    };
    let (first, last) = (date("from", from)?, date("to", to)?);
    if first > last {
        return Err(AnalyticsError::Invalid {
            field: "from",
            message: format!("{from} is after `to` ({to})"),
        });
    }
    let days = (last - first).get_days();
    if i64::from(days) >= MAX_DAYS {
        return Err(AnalyticsError::Invalid {
            field: "to",
            message: format!("the range covers more than {MAX_DAYS} days"),
        });
    }
    Ok(())
}

impl AnalyticsProvider for Store {
    fn query(&self, query: AnalyticsQuery) -> AnalyticsFuture<'_, Vec<AnalyticsRow>> {
        Box::pin(async move {
            if query.group_by.len() > MAX_DIMENSIONS {
                return Err(AnalyticsError::Invalid {
                    field: "group_by",
                    message: format!("at most {MAX_DIMENSIONS} dimensions"),
                });
            }
            if let Some(bad) = query.group_by.iter().find(|key| !valid_name(key)) {
                return Err(AnalyticsError::Invalid {
                    field: "group_by",
                    message: format!("`{bad}` is not a dimension name"),
                });
            }
            if query.group_by.is_empty() {
                return self
                    .per_day(&query.plugin, &query.metric, &query.from, &query.to)
                    .await;
            }
            let rows = self
                .rows(&query.plugin, &query.metric, &query.from, &query.to)
                .await?;
            let mut grouped: BTreeMap<(String, BTreeMap<String, String>), (i64, i64)> =
                BTreeMap::new();
            for (day, dimensions, count, total) in rows {
                let group = query
                    .group_by
                    .iter()
                    .map(|key| {
                        let value = dimensions.get(key).cloned().unwrap_or_default();
                        (key.clone(), value)
                    })
                    .collect();
                let sum = grouped.entry((day, group)).or_default();
                sum.0 += count;
                sum.1 = sum.1.saturating_add(total);
            }
            Ok(grouped
                .into_iter()
                .map(|((day, group), (count, total))| AnalyticsRow {
                    day,
                    group,
                    count,
                    total,
                })
                .collect())
        })
    }

    fn distinct(
        &self,
        plugin: String,
        metric: String,
        dimension: String,
        from: String,
        to: String,
    ) -> AnalyticsFuture<'_, Vec<(String, i64)>> {
        Box::pin(async move {
            let rows = self.rows(&plugin, &metric, &from, &to).await?;
            let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (day, dimensions, _, _) in rows {
                let values = seen.entry(day).or_default();
                if let Some(value) = dimensions.get(&dimension).filter(|value| !value.is_empty()) {
                    values.insert(value.clone());
                }
            }
            Ok(seen
                .into_iter()
                .map(|(day, values)| (day, i64::try_from(values.len()).unwrap_or(i64::MAX)))
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(86_400_000 - 1), "1970-01-01");
        assert_eq!(day_of(1_796_688_000_000), "2026-12-08");
    }

    #[test]
    fn ranges_are_checked_and_named() {
        assert!(check_range("2026-01-01", "2026-01-31").is_ok());
        let field = |error: AnalyticsError| match error {
            AnalyticsError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(check_range("yesterday", "2026-01-31").unwrap_err()),
            "from"
        );
        assert_eq!(
            field(check_range("2026-01-01", "2026-1-3").unwrap_err()),
            "to"
        );
        assert_eq!(
            field(check_range("2026-02-01", "2026-01-31").unwrap_err()),
            "from"
        );
        assert_eq!(
            field(check_range("2000-01-01", "2026-01-31").unwrap_err()),
            "to"
        );
    }
}
