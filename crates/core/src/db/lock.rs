//! The virality tracker's own connection: the one holding the tracker's advisory lock, so the
//! lock lives exactly as long as the connection.

use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::causes::causes;
use tokio_postgres::NoTls;

/// A PostgreSQL connection of the tracker's own: the one holding the advisory lock while this
/// process tracks, so the lock lives exactly as long as the connection. Dropping it closes
/// the connection (and releases the lock) at once.
pub struct PgSession {
    pub client: Arc<tokio::sync::Mutex<tokio_postgres::Client>>,
    pub driver: tokio::task::JoinHandle<()>,
}

impl PgSession {
    /// Opens a connection with TCP keepalives on both ends, so that when the tracking process
    /// or its machine vanishes the server drops the session (and the lock) in about 25 s
    /// instead of holding it on a dead socket for the system default of hours.
    pub async fn open(url: &str) -> anyhow::Result<PgSession> {
        let mut config: tokio_postgres::Config = url.parse()?;
        let options = format!(
            "{} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 {}",
            config.get_options().unwrap_or_default(),
            super::SESSION_OPTIONS
        );
        config
            .options(options.trim())
            .application_name("pulse virality tracker")
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %causes(&e), "virality tracker connection ended");
            }
        });
        Ok(PgSession {
            client: Arc::new(tokio::sync::Mutex::new(client)),
            driver,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.driver.is_finished()
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub type Conn = Arc<tokio::sync::Mutex<tokio_postgres::Client>>;

/// Tries the session-level advisory lock `key` on `conn`; held until the connection closes.
pub async fn try_advisory_lock(conn: &Conn, key: i64) -> anyhow::Result<bool> {
    Ok(conn
        .lock()
        .await
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .get(0))
}
