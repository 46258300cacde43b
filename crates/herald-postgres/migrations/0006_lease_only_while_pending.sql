-- Only a pending delivery holds a lease: every move away from pending clears
-- the token. Recording an attempt matches on the token alone because of this;
-- naming the status too would let the planner answer the lookup by id from a
-- partial index on pending deliveries (a walk of the whole index per row),
-- which it picks when its statistics are stale, as they are right after a purge.
ALTER TABLE deliveries ADD CONSTRAINT deliveries_lease_only_while_pending
    CHECK (lease_token IS NULL OR status = 'pending');
