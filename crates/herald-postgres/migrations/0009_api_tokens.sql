-- API tokens: the SHA-256 digest of each token (never the token), its scope,
-- and the times it was created, last used (at most once a minute) and expires.
-- Times are milliseconds by the database's clock, like every other.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    digest       bytea NOT NULL UNIQUE,
    scope        text NOT NULL,
    created_at   bigint NOT NULL,
    last_used_at bigint,
    expires_at   bigint
);
