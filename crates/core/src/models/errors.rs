//! The stable error codes of the HTTP API and the WebSocket protocol, and the one mapping of
//! each to its HTTP status.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What went wrong, as a client branches on it. Serialised in `snake_case`, e.g.
/// `invalid_query`; the same code means the same thing over HTTP and the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Requests a client can fix.
    /// The body or frame is not JSON, or not the JSON this route takes.
    InvalidJson,
    /// The query string has an unknown, malformed or out-of-range parameter.
    InvalidQuery,
    /// A path segment is not of its type.
    InvalidPath,
    /// The body could not be read.
    InvalidBody,
    /// A pagination cursor that this server did not issue.
    InvalidCursor,
    /// Fields of a request body are invalid; `details.errors` names each.
    InvalidRequest,
    /// An alert rule that cannot be kept.
    InvalidRule,
    /// A webhook subscription that cannot be kept.
    InvalidWebhook,
    /// An API key request that cannot be honoured.
    InvalidKey,
    /// A topic query that does not parse or is refused; `details.position` (characters from
    /// 0) and `details.expected` say where and what.
    InvalidTopicQuery,
    /// A topic that cannot be kept (name, status or days out of range).
    InvalidTopic,
    /// A digest schedule that cannot be kept (cadence, time, time zone, channels).
    InvalidDigest,
    /// A saved view that cannot be kept (name, filters, period, panels, topic).
    InvalidView,
    /// A label that cannot be kept (kind, value, post, topic), or an undo of one that cannot.
    InvalidLabel,
    /// A sentiment calibration that cannot be put in use: unknown, or not better than the
    /// shipped models.
    InvalidCalibration,
    /// A search whose facets would check more posts one by one than a request may (a broad
    /// `NEAR`); narrow it with words, a time range or filters.
    QueryTooBroad,
    /// Events that are not valid; `details.errors` names each.
    InvalidEvent,
    /// A request that carries nothing (no events, no texts).
    EmptyBatch,
    /// More texts in one request than it may carry.
    TooManyTexts,
    /// A text over its size limit.
    TextTooLong,
    /// JSON nested deeper than the server reads.
    JsonTooDeep,
    /// A `Host` the server does not answer to (`http.allowed_hosts`).
    HostNotAllowed,
    /// A token asked of a server that runs without authentication.
    AuthDisabled,
    /// A path spelt other than canonically (encoded characters, `//`, dot segments).
    NonCanonicalPath,
    /// A WebSocket upgrade without the headers it needs.
    BadHandshake,
    /// JSON, but not a message of the WebSocket protocol.
    InvalidMessage,
    /// A WebSocket message `type` that names no client message.
    UnknownType,
    /// A topic name that is not one of the topics.
    UnknownTopic,
    /// A filter field with an unknown or oversized value.
    InvalidFilter,
    /// A subscription over the session's topic limit.
    TooManyTopics,
    /// A binary WebSocket frame (the protocol is text).
    UnsupportedFrame,
    // Who is asking.
    /// No credentials.
    Unauthorized,
    /// Credentials that are not shaped like a key or a token.
    MalformedCredentials,
    /// A key that does not exist or whose secret does not match.
    InvalidApiKey,
    /// A revoked key, or a token issued for one.
    RevokedApiKey,
    /// A token with a bad signature or claims.
    InvalidToken,
    /// An expired token.
    TokenExpired,
    /// A caller whose role does not allow the route.
    Forbidden,
    /// A browser origin that is not allowed.
    OriginNotAllowed,
    /// Events outside the sending key's scope; `details.errors` names each.
    OutOfScope,
    // What is asked for.
    /// No such resource.
    NotFound,
    /// No such route.
    RouteNotFound,
    /// A state change the resource's current state does not allow.
    InvalidTransition,
    /// A name another live resource has (a topic's).
    NameTaken,
    /// A deployment holds as many of a resource as it may (`topics.max_topics`).
    LimitReached,
    /// A body over its size limit.
    PayloadTooLarge,
    /// More events in one request than it may carry.
    TooManyEvents,
    /// A query string over its size limit.
    QueryTooLong,
    /// The request body did not arrive within `limits.body_timeout_secs`.
    BodyTimeout,
    /// A `Content-Type` the route does not take.
    UnsupportedMediaType,
    /// Over a rate limit; `RateLimit-*` headers say when to retry.
    RateLimited,
    // The server.
    /// An unexpected failure, logged on the server.
    Internal,
    /// A backing service (PostgreSQL, Redis, the key store) is down; retry.
    Unavailable,
    /// A shared budget is spent for now (the API's connections, the analyzer's share, memory
    /// for request bodies, the stream's backlog); retry after `Retry-After`.
    Busy,
    /// The WebSocket session limit is reached.
    TooManySessions,
    /// A query ran past the API's statement timeout.
    QueryTimeout,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | InvalidQuery | InvalidPath | InvalidBody | InvalidCursor
            | InvalidEvent | EmptyBatch | TooManyTexts | TextTooLong | JsonTooDeep
            | HostNotAllowed | AuthDisabled | InvalidRequest | InvalidRule | InvalidWebhook
            | InvalidKey | InvalidTopicQuery | InvalidTopic | InvalidDigest | InvalidView
            | InvalidLabel | InvalidCalibration | QueryTooBroad | NonCanonicalPath
            | BadHandshake | InvalidMessage | UnknownType | UnknownTopic | InvalidFilter
            | TooManyTopics | UnsupportedFrame => 400,
            Unauthorized | MalformedCredentials | InvalidApiKey | RevokedApiKey | InvalidToken
            | TokenExpired => 401,
            Forbidden | OriginNotAllowed | OutOfScope => 403,
            NotFound | RouteNotFound => 404,
            BodyTimeout => 408,
            InvalidTransition | NameTaken | LimitReached => 409,
            PayloadTooLarge | TooManyEvents => 413,
            QueryTooLong => 414,
            UnsupportedMediaType => 415,
            RateLimited => 429,
            Internal => 500,
            Unavailable | Busy | TooManySessions => 503,
            QueryTimeout => 504,
        }
    }

    /// The code as sent, e.g. `invalid_query` (also the `reason` label of refusal metrics).
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            InvalidQuery => "invalid_query",
            InvalidPath => "invalid_path",
            InvalidBody => "invalid_body",
            InvalidCursor => "invalid_cursor",
            InvalidRequest => "invalid_request",
            InvalidRule => "invalid_rule",
            InvalidWebhook => "invalid_webhook",
            InvalidKey => "invalid_key",
            InvalidTopicQuery => "invalid_topic_query",
            InvalidTopic => "invalid_topic",
            InvalidDigest => "invalid_digest",
            InvalidView => "invalid_view",
            InvalidLabel => "invalid_label",
            InvalidCalibration => "invalid_calibration",
            QueryTooBroad => "query_too_broad",
            InvalidEvent => "invalid_event",
            EmptyBatch => "empty_batch",
            TooManyTexts => "too_many_texts",
            TextTooLong => "text_too_long",
            JsonTooDeep => "json_too_deep",
            HostNotAllowed => "host_not_allowed",
            AuthDisabled => "auth_disabled",
            NonCanonicalPath => "non_canonical_path",
            BadHandshake => "bad_handshake",
            InvalidMessage => "invalid_message",
            UnknownType => "unknown_type",
            UnknownTopic => "unknown_topic",
            InvalidFilter => "invalid_filter",
            TooManyTopics => "too_many_topics",
            UnsupportedFrame => "unsupported_frame",
            Unauthorized => "unauthorized",
            MalformedCredentials => "malformed_credentials",
            InvalidApiKey => "invalid_api_key",
            RevokedApiKey => "revoked_api_key",
            InvalidToken => "invalid_token",
            TokenExpired => "token_expired",
            Forbidden => "forbidden",
            OriginNotAllowed => "origin_not_allowed",
            OutOfScope => "out_of_scope",
            NotFound => "not_found",
            RouteNotFound => "route_not_found",
            InvalidTransition => "invalid_transition",
            NameTaken => "name_taken",
            LimitReached => "limit_reached",
            PayloadTooLarge => "payload_too_large",
            TooManyEvents => "too_many_events",
            QueryTooLong => "query_too_long",
            BodyTimeout => "body_timeout",
            UnsupportedMediaType => "unsupported_media_type",
            RateLimited => "rate_limited",
            Internal => "internal",
            Unavailable => "unavailable",
            Busy => "busy",
            TooManySessions => "too_many_sessions",
            QueryTimeout => "query_timeout",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sent_name_is_the_serialised_one() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::NonCanonicalPath,
            ErrorCode::TooManySessions,
            ErrorCode::QueryTimeout,
            ErrorCode::RevokedApiKey,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn only_server_faults_are_5xx() {
        assert_eq!(ErrorCode::InvalidQuery.status(), 400);
        assert_eq!(ErrorCode::TokenExpired.status(), 401);
        assert_eq!(ErrorCode::Busy.status(), 503);
        assert!(ErrorCode::UnknownTopic.status() < 500);
    }
}
