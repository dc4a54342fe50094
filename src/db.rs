//! PostgreSQL: the connection pool and the embedded migrations.

use anyhow::Context;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Builds the pool. Connections are opened lazily, so a database that is down at start-up
/// makes requests fail (and the pipeline retry) instead of the process refusing to start.
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let pg: tokio_postgres::Config = url.parse().context("DATABASE_URL is not a valid URL")?;
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .build()
        .context("building the PostgreSQL pool")
}

/// Applies every pending migration; safe to run concurrently from several processes
/// (refinery serialises on its history table).
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls)
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
