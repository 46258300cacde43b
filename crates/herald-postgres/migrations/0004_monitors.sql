-- Code monitors: watched repositories, monitors, the heads each monitor has
-- searched in each repository, and the log of runs. A monitor's actions are
-- webhooks (in the scope `code-monitor:<id>`); `actions` lists them.

CREATE TABLE monitor_repositories (
    id                uuid PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    source_display    text NOT NULL,
    source_sealed     bytea NOT NULL,
    branches          text[],   -- NULL: the default branch
    fetch_interval_ms bigint,   -- NULL: the server's default
    heads             text,     -- JSON object ref -> commit; NULL before a fetch
    last_fetched_at   bigint,
    last_error        text,
    created_at        bigint NOT NULL,
    updated_at        bigint NOT NULL
);

CREATE TABLE monitors (
    id          uuid PRIMARY KEY,
    description text NOT NULL,
    query       text NOT NULL,
    enabled     boolean NOT NULL,
    actions     text NOT NULL,  -- JSON array of {webhook_id, kind, include_results}
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);
CREATE INDEX monitors_by_created_at ON monitors (created_at, id);

CREATE TABLE monitor_heads (
    monitor_id    uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    repository_id uuid NOT NULL REFERENCES monitor_repositories (id) ON DELETE CASCADE,
    heads         text NOT NULL,  -- JSON object ref -> commit
    updated_at    bigint NOT NULL,
    PRIMARY KEY (monitor_id, repository_id)
);
CREATE INDEX monitor_heads_by_repository ON monitor_heads (repository_id);

-- Runs outlive their repository, so the repository is not a foreign key.
CREATE TABLE monitor_runs (
    id              uuid PRIMARY KEY,
    monitor_id      uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    repository_id   uuid NOT NULL,
    repository_name text NOT NULL,
    started_at      bigint NOT NULL,
    finished_at     bigint NOT NULL,
    commits_scanned bigint NOT NULL,
    matches         bigint NOT NULL,
    commits         text[] NOT NULL,
    truncated       boolean NOT NULL,
    error           text,
    event_ids       uuid[] NOT NULL
);
CREATE INDEX monitor_runs_by_monitor ON monitor_runs (monitor_id, id);
