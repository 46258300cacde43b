-- Each webhook's own flow limits, which the engine enforces on each node
-- (NULL: no limit of its own).
ALTER TABLE webhooks
    ADD COLUMN max_in_flight integer CHECK (max_in_flight > 0),
    ADD COLUMN max_per_second integer CHECK (max_per_second > 0);
