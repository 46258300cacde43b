-- The cap on unverified requests in a receiver's log: the oldest beyond it
-- are deleted when a new one is logged, and counted here.
ALTER TABLE receivers ADD COLUMN unverified_dropped bigint NOT NULL DEFAULT 0;
-- A receiver's unverified rows, newest first, for the cap.
CREATE INDEX receiver_requests_unverified ON receiver_requests (receiver_id, id) WHERE NOT verified;
