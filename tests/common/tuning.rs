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
