//! PostgreSQL: the connection pool and the embedded migrations.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, NoTls, Row};

use crate::config::DatabaseSettings;

pub mod alerts;
pub mod audit;
pub mod batch;
pub mod calibration;
pub mod cascades;
pub mod deletions;
pub mod digests;
pub mod export_jobs;
pub mod forecast;
pub mod keys;
pub mod labels;
pub mod lock;
pub mod posts;
pub mod query;
pub mod relevance;
pub mod retags;
pub mod retention;
pub mod review;
pub mod rollup_keys;
pub mod rollups;
pub mod saved_searches;
pub mod saved_views;
pub mod search;
pub mod statistics;
pub mod stories;
mod table;
mod text;
pub mod topics;
pub mod virality;
pub mod webhooks;

/// Whether the server answers a statement on `client`.
pub async fn ping(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    client.simple_query("SELECT 1").await.map(|_| ())
}

/// Takes the transaction's lock named `lock`, so that creations of one kind take turns and a
/// cap checked against the row of `counts` (which this returns) holds for concurrent requests
/// of every process.
pub(crate) async fn count_in_turns(
    tx: &tokio_postgres::Transaction<'_>,
    lock: &'static str,
    counts: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    let take = format!("SELECT pg_advisory_xact_lock(hashtext('{lock}'))");
    tx.execute(&take, &[]).await?;
    tx.query_one(counts, params).await
}

/// The caps a creation is checked against: the rows of the one creating (as `counts` finds
/// them for its `$1`) and every row.
#[derive(Debug, Clone, Copy)]
pub struct Caps<'a> {
    /// Who creates, as the rows name their creator; `None` counts no rows of its own (an
    /// administrator, capped only by the total).
    pub owner: Option<&'a str>,
    pub per_owner: i64,
    pub total: i64,
}

/// Which cap a new row would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Owner(i64),
    Deployment(i64),
}

/// Runs `insert` in a transaction once [`count_in_turns`] has found room below both `caps`:
/// `counts` answers the owner's rows (its `$1`) and every row, in that order. The row `insert`
/// answers, or the cap that is full (nothing is written then).
pub(crate) async fn insert_in_turns(
    client: &mut deadpool_postgres::ClientWrapper,
    lock: &'static str,
    counts: &str,
    caps: Caps<'_>,
    insert: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Result<Row, Limit>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let row = count_in_turns(&tx, lock, counts, &[&caps.owner]).await?;
    let (own, all): (i64, i64) = (row.get(0), row.get(1));
    if own >= caps.per_owner {
        return Ok(Err(Limit::Owner(caps.per_owner)));
    }
    if all >= caps.total {
        return Ok(Err(Limit::Deployment(caps.total)));
    }
    let row = tx.query_one(insert, params).await?;
    tx.commit().await?;
    Ok(Ok(row))
}

/// The rows `sql` answers, each read with `read`.
pub(crate) async fn read_rows<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: impl FnMut(&Row) -> T,
) -> Result<Vec<T>, tokio_postgres::Error> {
    Ok(client.query(sql, params).await?.iter().map(read).collect())
}

/// The row `sql` answers, if any, read with `read`.
pub(crate) async fn read_opt<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: impl FnOnce(&Row) -> T,
) -> Result<Option<T>, tokio_postgres::Error> {
    Ok(client.query_opt(sql, params).await?.as_ref().map(read))
}

mod embedded {
    // The path is from the core crate's manifest (crates/core): the migrations are the
    // repository's.
    refinery::embed_migrations!("../../migrations");
}

/// Builds the pool. Connections are opened lazily, so a database that is down at start-up
/// makes requests fail (and the pipeline retry) instead of the process refusing to start.
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let pg: tokio_postgres::Config = url.parse().context("DATABASE_URL is not a valid URL")?;
    build(pg, size, Duration::from_secs(10))
}

/// The pipeline's pool: [`pool`] with `settings.pool_size` connections, whose sessions
/// PostgreSQL ends once idle inside a transaction for `idle_transaction_timeout_ms`.
pub fn pipeline_pool(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let mut pg: tokio_postgres::Config = settings
        .url
        .parse()
        .context("DATABASE_URL is not a valid URL")?;
    add_options(&mut pg, &idle_transaction_option(settings));
    build(pg, settings.pool_size, Duration::from_secs(10))
}

/// The server setting that ends a session left idle in a transaction (see
/// `DatabaseSettings::idle_transaction_timeout_ms`); 0 leaves the server's own.
fn idle_transaction_option(settings: &DatabaseSettings) -> String {
    match settings.idle_transaction_timeout_ms {
        0 => String::new(),
        ms => format!("-c idle_in_transaction_session_timeout={ms}"),
    }
}

/// Appends `options` to the connection's startup options, after any the URL gave.
fn add_options(pg: &mut tokio_postgres::Config, options: &str) {
    let all = format!("{} {options}", pg.get_options().unwrap_or(""));
    pg.options(all.trim());
}

/// The HTTP API's own pool: `settings.api_pool_size` connections (half the cores when 0), ended
/// as the pipeline's when idle in a transaction, on which PostgreSQL cancels any statement after `api_statement_timeout_ms`, never compiles one
/// (JIT compilation costs more than the API's short queries save from it) and never runs one
/// on parallel workers (one API query takes one core, not all of them). A request waits at
/// most `api_wait_ms` for a connection.
pub fn api_pool(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    api_pool_of(settings, api_pool_size(settings))
}

/// A pool of `size` connections as [`api_pool`]'s.
fn api_pool_of(settings: &DatabaseSettings, size: usize) -> anyhow::Result<Pool> {
    let mut pg: tokio_postgres::Config = settings
        .url
        .parse()
        .context("DATABASE_URL is not a valid URL")?;
    let options = format!(
        "-c statement_timeout={} -c jit=off -c max_parallel_workers_per_gather=0 {}",
        settings.api_statement_timeout_ms.max(1),
        idle_transaction_option(settings)
    );
    add_options(&mut pg, &options);
    build(pg, size, Duration::from_millis(settings.api_wait_ms.max(1)))
}

/// Whether PostgreSQL refused the statement itself (a data exception, an integrity violation,
/// a statement it cannot run, a limit exceeded), so that the same statement would be refused
/// again; any other failure (a lost connection, a shutdown, a deadlock, a read-only standby
/// after a failover) rolled the transaction back and may pass when tried again.
pub fn refused(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        ["22", "23", "42", "54"]
            .iter()
            .any(|class| c.code().starts_with(class))
    })
}

/// `e` with its cause: PostgreSQL's own message and code, or the error beneath a connection
/// failure (a bare "db error" says neither).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// The HTTP API's connections: [`api_pool`], with a duty cycle. A connection that was held
/// for `t` rests `t × (1/share − 1)` before the next request may take it, so API queries keep
/// a connection busy at most `database.api_busy_share` of the time: with one connection per
/// two cores, the API's queries can never take more than that share of one core from the
/// pipeline, however hard it is called. A query of a few milliseconds rests as long again.
///
/// One more connection is kept for [`ApiPool::get_reserved`]: administrators' changes and
/// their audit records, so that callers whose reads keep every other connection busy or
/// resting cannot keep an administrator from revoking their key. It does not rest: such
/// changes are few and small, and one is three uses in a row (the record, the change, the
/// outcome).
#[derive(Clone)]
pub struct ApiPool {
    pool: Pool,
    reserve: Pool,
    rest_factor: f64,
}

impl ApiPool {
    /// The API's pool under `settings`.
    pub fn new(settings: &DatabaseSettings) -> anyhow::Result<ApiPool> {
        let share = settings.api_busy_share.clamp(0.01, 1.0);
        Ok(ApiPool {
            pool: api_pool(settings)?,
            reserve: api_pool_of(settings, 1)?,
            rest_factor: 1.0 / share - 1.0,
        })
    }

    /// A connection, waiting at most `database.api_wait_ms` for one.
    pub async fn get(&self) -> Result<ApiConnection, deadpool_postgres::PoolError> {
        Ok(ApiConnection::taken(
            self.pool.get().await?,
            self.rest_factor,
        ))
    }

    /// The reserved connection, waiting at most `database.api_wait_ms` for it.
    pub async fn get_reserved(&self) -> Result<ApiConnection, deadpool_postgres::PoolError> {
        Ok(ApiConnection::taken(self.reserve.get().await?, 0.0))
    }
}

/// What a caller is told of the connection time it took: its use and the rest after it.
pub type OnRelease = Box<dyn FnOnce(Duration) + Send + Sync>;

/// A connection of the [`ApiPool`]; dropping it starts its rest.
pub struct ApiConnection {
    conn: Option<deadpool_postgres::Object>,
    taken: std::time::Instant,
    rest_factor: f64,
    on_release: Option<OnRelease>,
}

impl ApiConnection {
    fn taken(conn: deadpool_postgres::Object, rest_factor: f64) -> ApiConnection {
        ApiConnection {
            conn: Some(conn),
            taken: std::time::Instant::now(),
            rest_factor,
            on_release: None,
        }
    }

    /// Calls `f` with the connection time this use takes (held, and resting after) when it
    /// is given back: what a caller's budget of the API's connections is charged.
    pub fn on_release(mut self, f: OnRelease) -> ApiConnection {
        self.on_release = Some(f);
        self
    }

    /// Gives the connection back without its rest: for work that reads while nothing else
    /// needs the database (the pipeline has nothing in flight).
    pub fn skip_rest(&mut self) {
        self.rest_factor = 0.0;
    }
}

impl std::ops::Deref for ApiConnection {
    type Target = deadpool_postgres::ClientWrapper;

    fn deref(&self) -> &Self::Target {
        self.conn
            .as_ref()
            .expect("a connection is held until dropped")
    }
}

impl std::ops::DerefMut for ApiConnection {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn
            .as_mut()
            .expect("a connection is held until dropped")
    }
}

impl Drop for ApiConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let held = self.taken.elapsed();
        let rest = held.mul_f64(self.rest_factor);
        if let Some(f) = self.on_release.take() {
            f(held + rest);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !rest.is_zero() => {
                runtime.spawn(async move {
                    tokio::time::sleep(rest).await;
                    drop(conn);
                });
            }
            _ => drop(conn),
        }
    }
}

/// The API pool's size in force.
pub fn api_pool_size(settings: &DatabaseSettings) -> usize {
    match settings.api_pool_size {
        0 => (crate::config::Settings::threads_or_cores(0) / 2).max(1),
        n => n,
    }
}

/// The session settings every connection of Pulse's starts with, after any the URL gave: times
/// in UTC. A bucket of the time series, an hour of a story's growth or a day of rollup keys is
/// then the same whatever the server's `TimeZone` (one in India put hourly buckets at :30), and
/// the statements that cut time name UTC as well, so neither alone has to hold.
pub const SESSION_OPTIONS: &str = "-c TimeZone=UTC";

fn build(mut pg: tokio_postgres::Config, size: usize, wait: Duration) -> anyhow::Result<Pool> {
    add_options(&mut pg, SESSION_OPTIONS);
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(5)))
        .wait_timeout(Some(wait))
        .build()
        .context("building the PostgreSQL pool")
}

/// How long the start waits to reach PostgreSQL before it says so and stops.
const MIGRATION_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies every pending migration; safe to run concurrently from several processes
/// (refinery serialises on its history table).
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let mut pg: tokio_postgres::Config = url.parse().context("DATABASE_URL is not a valid URL")?;
    // A host that drops packets would otherwise hold the start for the system's TCP timeout
    // (minutes) with nothing said; the URL's own `connect_timeout` wins.
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(MIGRATION_CONNECT_TIMEOUT);
    }
    let (mut client, connection) = pg
        .connect(NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))?;
    let driver = tokio::spawn(connection);
    // Two processes starting at once would race on CREATE TABLE; an advisory lock makes the
    // second wait for the first.
    client
        .execute("SELECT pg_advisory_lock(7274351)", &[])
        .await
        .context("taking the migration lock")?;
    let report = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .context("applying migrations")?;
    client
        .execute("SELECT pg_advisory_unlock(7274351)", &[])
        .await
        .context("releasing the migration lock")?;
    drop(client);
    let _ = driver.await;
    Ok(report.applied_migrations().len())
}

/// The URL with any password replaced, for logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("redis://h:6379"), "redis://h:6379");
    }
}
