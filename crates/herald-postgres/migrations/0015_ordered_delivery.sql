-- Ordered delivery (herald_store::ordered_key): each webhook's ordering mode,
-- each event's ordering key, and on each delivery the key it is ordered under
-- (NULL: not ordered) with its place in that key's line. A delivery waiting
-- behind an earlier one of its key has no due time, so claims never see it;
-- the oldest waiting one falls due when the one before it finishes.
ALTER TABLE webhooks
    ADD COLUMN ordering text NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'key'));
ALTER TABLE events ADD COLUMN ordering_key text;
ALTER TABLE deliveries
    ADD COLUMN ordering_key text,
    ADD COLUMN ordering_seq bigint;

-- A pending delivery has a due time unless it waits in its key's line; a
-- finished one has none.
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_check,
    ADD CONSTRAINT deliveries_due_unless_waiting CHECK (
        CASE WHEN status = 'pending'
             THEN next_attempt_at IS NOT NULL OR ordering_key IS NOT NULL
             ELSE next_attempt_at IS NULL
        END
    );

-- A key's pending deliveries in publish order: one seek finds its head or
-- its last, whatever the backlog or the number of keys.
CREATE INDEX deliveries_by_ordering_key ON deliveries (webhook_id, ordering_key, ordering_seq)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
