//! Settings the tests share, so that a test names what it needs rather than the fields.

use pulse::config::Settings;

/// Alerts on, their rules evaluated every `every_secs`, so a test sees one fire in about a
/// second.
pub fn quick_alerts(s: &mut Settings, every_secs: f64) {
    s.alerts.enabled = true;
    s.alerts.evaluate_every_secs = every_secs;
}

/// Authentication on, access tokens signed with `secret`; rate limits off, as in every test
/// that does not test them.
pub fn authenticated(s: &mut Settings, secret: &str) {
    s.auth.open = false;
    s.auth.jwt_secret = pulse::config::Secret(secret.into());
    s.limits.rate_limits = false;
}

/// Webhook deliveries polled for and retried every 50 ms.
pub fn quick_webhooks(s: &mut Settings) {
    s.webhooks.base_delay_ms = 50;
    s.webhooks.poll_ms = 50;
}

/// Rate limits on, each client address allowed `burst` requests at once and `per_sec` after.
pub fn address_budget(s: &mut Settings, burst: f64, per_sec: f64) {
    s.limits.rate_limits = true;
    s.limits.per_ip_burst = burst;
    s.limits.per_ip_per_sec = per_sec;
}

/// Cascades scored every 100 ms, so a test reads a share's effect at once.
pub fn quick_scores(s: &mut Settings) {
    s.virality.score_interval_ms = 100;
}

/// Rate limits on, each key allowed `burst` events at once through `POST /events` and
/// `per_sec` after.
pub fn key_event_budget(s: &mut Settings, burst: f64, per_sec: f64) {
    s.limits.rate_limits = true;
    s.limits.per_key_events_burst = burst;
    s.limits.per_key_events_per_sec = per_sec;
}

/// Rate limits on, each network (a /24 or /64) allowed `burst` requests at once and
/// `per_sec` after.
pub fn network_budget(s: &mut Settings, burst: f64, per_sec: f64) {
    s.limits.rate_limits = true;
    s.limits.per_network_burst = burst;
    s.limits.per_network_per_sec = per_sec;
}

/// One API connection, each caller's share of its time `share` with `burst_secs` of credit;
/// the request budgets so large that only the database's may refuse.
pub fn database_share(s: &mut Settings, share: f64, burst_secs: f64) {
    s.limits.rate_limits = true;
    s.limits.per_key_per_sec = 1e6;
    s.limits.per_key_burst = 1e6;
    s.database.api_busy_share = 1.0;
    s.database.api_pool_size = 1;
    s.limits.per_caller_db_share = share;
    s.limits.per_caller_db_burst_secs = burst_secs;
}

/// Sockets whose client stops reading are shut after `write_timeout_secs`, their send
/// buffers small enough to fill at once; the idle timeout long, so only the write timeout
/// ends them.
pub fn stalled_sockets_shut(s: &mut Settings, write_timeout_secs: u64) {
    s.ws.write_timeout_secs = write_timeout_secs;
    s.ws.send_buffer_bytes = 4_096;
    s.ws.client_timeout_secs = 3_600;
}

/// The intake's backlog limits: `entries` waiting and the oldest waiting `secs` (0: no
/// limit), each producer held to its fair share once the oldest waited
/// `fair_share_after_secs`.
pub fn backlog_limits(s: &mut Settings, entries: u64, secs: f64, fair_share_after_secs: f64) {
    s.ingest.max_backlog = entries;
    s.ingest.max_backlog_secs = secs;
    s.ingest.fair_share_after_secs = fair_share_after_secs;
}
