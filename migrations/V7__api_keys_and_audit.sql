-- API keys (only an Argon2 hash of each secret is kept) and the audit log of admin actions.

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('ingest', 'analyst', 'admin')),
    hash         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    revoked_at   timestamptz,
    revoked_by   text,
    last_used_at timestamptz
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    actor_role text,
    action     text NOT NULL,
    target     text,
    outcome    text NOT NULL CHECK (outcome IN ('attempted', 'succeeded', 'failed', 'denied')),
    status     smallint,
    payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id text,
    ip         text
);

CREATE INDEX audit_log_action ON audit_log (action, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);
