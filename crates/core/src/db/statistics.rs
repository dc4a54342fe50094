//! Planner statistics of the tables the store's statement reads, kept fresh while they are
//! young.
//!
//! The store's statement is prepared once per connection and PostgreSQL caches its plan. A
//! plan made while a table was nearly empty (a new install, or the first minute after a
//! `TRUNCATE`) scans it whole, which is cheapest at that size and stays in the cache while
//! the table grows, until an `ANALYZE` invalidates it. Autovacuum analyses a table once
//! about a tenth of it changed, but only looks every minute, so a young table can grow a
//! hundredfold under a plan made for its first rows (a batch of 20 posts then took 10 ms
//! instead of 1). Analysing each table whenever it has doubled since its last analysis keeps
//! the plans right at every size for a handful of `ANALYZE`s per table; past a few thousand
//! rows autovacuum's own rule comes first and this finds nothing to do.

use tokio_postgres::GenericClient;

/// The tables the store's statement looks rows up in, each with the columns it looks them
/// up by: only those are analysed here, which costs a fraction of a whole-table `ANALYZE`
/// (posts carry texts and JSON) and still updates the table's size the planner works from.
const TABLES: [(&str, &str); 4] = [
    ("posts", "id, producer"),
    ("engagements", "key, post_id"),
    ("post_deletions", "post_id"),
    ("metric_rollups", "dimension, key, minute"),
];

/// Fewest rows that make a table worth analysing here.
const MIN_ROWS: f64 = 500.0;

/// Analyses the key columns of each of [`TABLES`] that has grown to at least twice the
/// rows of its last analysis (and to [`MIN_ROWS`]); returns their names. A table another
/// session is analysing is skipped, so several processes never queue up behind each other.
pub async fn analyze_grown(
    client: &impl GenericClient,
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    let names: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
    let rows = client
        .query(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
             WHERE s.schemaname = current_schema() AND s.relname = ANY($1)
               AND s.n_live_tup >= greatest($2, 2 * c.reltuples)",
            &[&names, &MIN_ROWS],
        )
        .await?;
    let grown: Vec<&'static str> = TABLES
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| rows.iter().any(|r| r.get::<_, &str>(0) == *t))
        .collect();
    for (table, columns) in TABLES.iter().filter(|(t, _)| grown.contains(t)) {
        // Names come from TABLES, never from input.
        client
            .batch_execute(&format!("ANALYZE (SKIP_LOCKED) {table} ({columns})"))
            .await?;
    }
    Ok(grown)
}
