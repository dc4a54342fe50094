//! Retention's deletes: per table family, rows older than its days, in batches; and deleted
//! topics once nothing names them, whatever their age.

use std::time::Duration;

use deadpool_postgres::Pool;

use crate::config::StoreSettings;
use crate::telemetry::names;

/// What is deleted after how many days, by table.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub raw_days: u32,
    pub history_days: u32,
    pub audit_days: u32,
    pub rollup_days: u32,
    /// Rows per delete statement.
    pub batch: i64,
}

impl RetentionPolicy {
    /// The policy of the settings.
    pub fn of(settings: &StoreSettings) -> RetentionPolicy {
        RetentionPolicy {
            raw_days: settings.retention_days,
            history_days: settings.history_retention_days,
            audit_days: settings.audit_retention_days,
            rollup_days: settings.rollup_retention_days,
            batch: settings.retention_batch.max(1),
        }
    }
}

/// One family of rows: its table (the metric label), its delete statement (`$1` days, `$2`
/// batch) and how many days it keeps.
struct Sweep {
    table: &'static str,
    sql: &'static str,
    days: u32,
}

fn sweeps(policy: &RetentionPolicy) -> [Sweep; 14] {
    let raw = policy.raw_days;
    let history = policy.history_days;
    [
        // A deleted post's labels and feedback go with its row: while the row says the post is
        // deleted they are listed nowhere (a note may quote it), and with the row gone nothing
        // would say so.
        Sweep {
            table: "posts",
            sql: "WITH gone AS (DELETE FROM posts WHERE id IN (SELECT id FROM posts \
                      WHERE ingested_at < now() - make_interval(days => $1) LIMIT $2) \
                      RETURNING id, deleted_at IS NOT NULL AS deleted), \
                  labels AS (DELETE FROM post_labels l USING gone \
                      WHERE l.post_id = gone.id AND gone.deleted), \
                  feedback AS (DELETE FROM virality_feedback f USING gone \
                      WHERE f.post_id = gone.id AND gone.deleted) \
                  SELECT 1 FROM gone",
            days: raw,
        },
        Sweep {
            table: "engagements",
            sql: "DELETE FROM engagements WHERE key IN (SELECT key FROM engagements \
                  WHERE ingested_at < now() - make_interval(days => $1) LIMIT $2)",
            days: raw,
        },
        Sweep {
            table: "post_deletions",
            sql: "DELETE FROM post_deletions WHERE post_id IN (SELECT post_id FROM post_deletions \
                  WHERE ingested_at < now() - make_interval(days => $1) LIMIT $2)",
            days: raw,
        },
        Sweep {
            table: "term_rollups",
            sql: "DELETE FROM term_rollups WHERE (minute, term) IN (SELECT minute, term \
                  FROM term_rollups WHERE minute < now() - make_interval(days => $1) LIMIT $2)",
            days: raw,
        },
        Sweep {
            table: "alerts",
            sql: "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE status = 'resolved' \
                  AND resolved_at < now() - make_interval(days => $1) LIMIT $2)",
            days: history,
        },
        Sweep {
            table: "webhook_deliveries",
            sql: "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                  WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1) \
                  LIMIT $2)",
            days: history,
        },
        // A scheduled digest's row also says its period was made: one a returning process
        // could still catch up on (`digests.catch_up`, at most 100 periods) stays, or the
        // period would be made and sent again.
        Sweep {
            table: "digests",
            sql: "DELETE FROM digests WHERE id IN (SELECT d.id FROM digests d \
                  LEFT JOIN digest_schedules s ON s.id = d.schedule_id \
                  WHERE d.created_at < now() - make_interval(days => $1) \
                  AND (d.manual OR s.id IS NULL OR d.period_to < now() - CASE s.cadence \
                  WHEN 'weekly' THEN interval '707 days' ELSE interval '101 days' END) LIMIT $2)",
            days: history,
        },
        Sweep {
            table: "virality_cascades",
            sql: "DELETE FROM virality_cascades WHERE post_id IN (SELECT post_id \
                  FROM virality_cascades WHERE status = 'finished' \
                  AND last_activity_at < now() - make_interval(days => $1) LIMIT $2)",
            days: history,
        },
        Sweep {
            table: "virality_predictions",
            sql:
                "DELETE FROM virality_predictions WHERE id IN (SELECT id FROM virality_predictions \
                  WHERE recorded_at < now() - make_interval(days => $1) LIMIT $2)",
            days: history,
        },
        // Feedback corrects a cascade's outcome for as long as the cascade is kept (a finished
        // one, the history's days after its last share, however long after the post went), so
        // a post's row goes once no cascade of it is left and its latest report is as old.
        Sweep {
            table: "virality_feedback",
            sql: "DELETE FROM virality_feedback WHERE id IN (SELECT f.id FROM virality_feedback f \
                  WHERE f.updated_at < now() - make_interval(days => $1) AND NOT EXISTS \
                  (SELECT 1 FROM virality_cascades c WHERE c.post_id = f.post_id) LIMIT $2)",
            days: history,
        },
        Sweep {
            table: "virality_momentum",
            sql: "DELETE FROM virality_momentum WHERE (dimension, key) IN (SELECT dimension, key \
                  FROM virality_momentum WHERE updated_at < now() - make_interval(days => $1) \
                  LIMIT $2)",
            days: history,
        },
        Sweep {
            table: "metric_rollups",
            sql: "DELETE FROM metric_rollups WHERE (dimension, key, minute) IN \
                  (SELECT dimension, key, minute FROM metric_rollups \
                  WHERE minute < now() - make_interval(days => $1) LIMIT $2)",
            days: policy.rollup_days,
        },
        Sweep {
            table: "rollup_keys",
            sql: "DELETE FROM rollup_keys WHERE (day, dimension, key) IN \
                  (SELECT day, dimension, key FROM rollup_keys \
                  WHERE day < ((now() - make_interval(days => $1)) AT TIME ZONE 'UTC')::date LIMIT $2)",
            days: policy.rollup_days,
        },
        Sweep {
            table: "audit_log",
            sql: "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log \
                  WHERE at < now() - make_interval(days => $1) LIMIT $2)",
            days: policy.audit_days,
        },
    ]
}

/// Pause between two delete batches, leaving room for the store's writes.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// Deletes expired rows batch by batch until none are left; returns how many went.
pub async fn sweep(pool: &Pool, policy: &RetentionPolicy) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    let mut total = 0;
    for sweep in sweeps(policy).into_iter().filter(|s| s.days > 0) {
        let days = i32::try_from(sweep.days).unwrap_or(i32::MAX);
        let statement = client.prepare_cached(sweep.sql).await?;
        loop {
            let deleted = client.execute(&statement, &[&days, &policy.batch]).await?;
            total += deleted;
            metrics::counter!(names::RETENTION_DELETED, "table" => sweep.table).increment(deleted);
            if deleted < policy.batch as u64 {
                break;
            }
            tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
        }
    }
    let mut client = client;
    loop {
        let purged = super::topics::purge_deleted(&mut client, policy.batch).await?;
        total += purged;
        metrics::counter!(names::RETENTION_DELETED, "table" => "topics").increment(purged);
        if purged < policy.batch as u64 {
            break;
        }
        tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digests kept for a returning process are those of the longest catch-up allowed.
    #[test]
    fn digests_are_kept_as_long_as_the_longest_catch_up() {
        let policy = RetentionPolicy::of(&StoreSettings::default());
        let digests = sweeps(&policy)
            .into_iter()
            .find(|s| s.table == "digests")
            .unwrap();
        let periods = crate::config::MAX_CATCH_UP + 1;
        for days in [7 * periods, periods] {
            let kept = format!("interval '{days} days'");
            assert!(digests.sql.contains(&kept), "{kept}: {}", digests.sql);
        }
    }
}
