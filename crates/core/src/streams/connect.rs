//! Redis clients. The ingester gets a dedicated connection for its blocking XREADGROUP so a
//! read that waits for entries never delays XACK, XADD or health checks on the shared one.

use std::time::Duration;

use anyhow::Context;
use fred::prelude::*;

/// How long a non-blocking command may take before it is failed and retried by its caller.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a (re)connection attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between reconnection attempts after Redis goes away.
pub const MAX_RECONNECT_DELAY_MS: u32 = 2_000;

/// Connects a client that reconnects forever with exponential backoff.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<Client> {
    let config = Config::from_url(url).context("REDIS_URL is not a valid Redis URL")?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = CONNECT_TIMEOUT;
            c.max_command_attempts = 1;
            c.tcp = TcpConfig {
                nodelay: Some(true),
                ..Default::default()
            };
        })
        .with_performance_config(|p| {
            p.default_command_timeout = COMMAND_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            50,
            MAX_RECONNECT_DELAY_MS,
            2,
        ))
        .build()
        .context("building the Redis client")?;
    client
        .init()
        .await
        .with_context(|| format!("connecting to Redis at {} ({name})", crate::db::redact(url)))?;
    Ok(client)
}
