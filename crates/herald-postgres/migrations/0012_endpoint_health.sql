-- The health of each webhook's endpoint, which the engine moves (the rule is
-- herald_store::health), and the webhook's own health settings
-- (disable_after 0: never; NULL: the node's setting).
ALTER TABLE webhooks
    ADD COLUMN health_state text NOT NULL DEFAULT 'healthy'
        CHECK (health_state IN ('healthy', 'paused', 'probing', 'throttled', 'disabled')),
    ADD COLUMN health_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN health_pauses integer NOT NULL DEFAULT 0,
    ADD COLUMN health_until bigint,
    ADD COLUMN health_failing_since bigint,
    ADD COLUMN health_last_error text,
    ADD COLUMN health_last_success bigint,
    ADD COLUMN health_disabled_reason text,
    ADD COLUMN failing_after integer,
    ADD COLUMN disable_after integer;

-- Claims look up the few webhooks whose health gates them.
CREATE INDEX webhooks_unhealthy ON webhooks (id) WHERE health_state <> 'healthy';
