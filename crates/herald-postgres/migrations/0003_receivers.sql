-- Incoming webhook receivers, the log of the requests code hosts send them,
-- the host delivery ids seen (dedupe), and the changeset records pull/merge
-- request activity keeps up to date.

CREATE TABLE receivers (
    id                          uuid PRIMARY KEY,
    name                        text,
    kind                        text NOT NULL,
    urn                         text NOT NULL,
    credentials_sealed          bytea NOT NULL,
    previous_credentials_sealed bytea,
    previous_valid_until        bigint,
    github_legacy_sha1          boolean NOT NULL,
    gitlab_standard_webhooks    boolean NOT NULL,
    created_at                  bigint NOT NULL,
    updated_at                  bigint NOT NULL
);

CREATE TABLE receiver_requests (
    id             uuid PRIMARY KEY,
    receiver_id    uuid NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    received_at    bigint NOT NULL,
    headers        text NOT NULL,   -- JSON array of [name, value], redacted
    body           bytea NOT NULL,
    body_truncated boolean NOT NULL,
    verified       boolean NOT NULL,
    verification   text NOT NULL,
    status_code    integer NOT NULL,
    event_name     text,
    delivery_id    text,
    outcome        text NOT NULL,
    message        text,
    event_ids      uuid[] NOT NULL
);
-- A receiver's log, newest first; also serves deletes of a receiver.
CREATE INDEX receiver_requests_by_receiver ON receiver_requests (receiver_id, id);
-- Retention.
CREATE INDEX receiver_requests_by_received_at ON receiver_requests (received_at);

CREATE TABLE receiver_delivery_ids (
    receiver_id uuid NOT NULL REFERENCES receivers (id) ON DELETE CASCADE,
    delivery_id text NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (receiver_id, delivery_id)
);
CREATE INDEX receiver_delivery_ids_by_created_at ON receiver_delivery_ids (created_at);

CREATE TABLE changeset_records (
    urn         text NOT NULL,
    repository  text NOT NULL,
    external_id text NOT NULL,
    head_sha    text,
    head_prefix text,            -- the head's first 7 characters, lower-case
    state       text NOT NULL,   -- the caller's JSON, as text like every stored JSON here
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (urn, repository, external_id)
);
-- Commit checks find their changesets by head commit.
CREATE INDEX changeset_records_by_head ON changeset_records (urn, repository, head_prefix);
