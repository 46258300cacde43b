-- Herald's first schema. Never edit a migration that has shipped: add another.
--
-- Every time is a bigint of milliseconds since the Unix epoch, taken from the
-- database's clock by herald_now_ms(), so every node agrees on lease expiry.

-- The transaction's start time: one statement, or one group-committed batch,
-- sees a single instant.
CREATE FUNCTION herald_now_ms() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM now()) * 1000)::bigint $$;

-- Each claim draws a fresh token, so a stale holder can never match a later claim.
CREATE SEQUENCE lease_tokens AS bigint;

CREATE TABLE webhooks (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    url_display     text NOT NULL,
    url_sealed      bytea NOT NULL,
    secret_sealed   bytea NOT NULL,
    event_types     text[] NOT NULL,
    project         text,            -- NULL: global
    enabled         boolean NOT NULL,
    disabled_reason text,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks (project);

CREATE TABLE events (
    id          uuid PRIMARY KEY,
    event_type  text NOT NULL,
    project     text,
    payload     bytea NOT NULL,  -- the exact bytes that are signed and sent
    properties  text NOT NULL,   -- JSON object of strings; text, because jsonb refuses \u0000
    created_at  bigint NOT NULL
);
CREATE INDEX events_by_created_at ON events (created_at, id);

CREATE TABLE deliveries (
    id                   uuid PRIMARY KEY,
    event_id             uuid NOT NULL REFERENCES events (id),
    webhook_id           uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type           text NOT NULL,  -- copied from the event for listing
    status               text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts             integer NOT NULL DEFAULT 0,
    failures_in_schedule integer NOT NULL DEFAULT 0,
    next_attempt_at      bigint,         -- pending only: due time, or the end of the lease
    lease_token          bigint,         -- the current claim, if any
    last_status_code     integer,
    last_error           text,
    created_at           bigint NOT NULL,
    updated_at           bigint NOT NULL,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The work queue: claims walk it in due order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
-- The delivery log of a webhook, newest first; also serves deletes of a webhook.
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
-- Whether an event is still needed, and foreign key checks when purging events.
CREATE INDEX deliveries_by_event ON deliveries (event_id);
-- Retention: finished deliveries by age.
CREATE INDEX deliveries_finished ON deliveries (created_at) WHERE status <> 'pending';

CREATE TABLE attempts (
    id               uuid PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY,  -- log order
    delivery_id      uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number           integer NOT NULL,
    started_at       bigint NOT NULL,  -- measured by the node that made the attempt
    duration_ms      integer NOT NULL,
    request_url      text NOT NULL,
    request_headers  text NOT NULL,    -- JSON array of [name, value]
    response_status  integer,
    response_headers text NOT NULL,    -- JSON array of [name, value]
    response_body    bytea,            -- UTF-8; bytea, because text refuses NUL
    error            text
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, seq);

CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    event_id    uuid NOT NULL,
    deliveries  integer NOT NULL,
    created_at  bigint NOT NULL
);
CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at);
