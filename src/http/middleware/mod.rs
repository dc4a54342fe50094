//! What every request passes through before and after its handler: [`guard`] (one spelling
//! per path, a Host this server answers to, authentication, the matched route's policy, rate
//! limits, body limits and budgets, the audit of admin changes), the request id and the
//! browser-facing headers. Tables kept per caller are bounded by [`callers`].

pub mod body_budget;
pub mod body_limits;
pub mod callers;
pub mod canonical;
pub mod connections;
pub mod guard;
pub mod peer;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
