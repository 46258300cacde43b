-- An event and its deliveries are written in one transaction, and only
-- retention deletes events: after their deliveries, and only an event no
-- delivery names (purge.rs). The foreign key from deliveries to events can
-- therefore never refuse anything, yet its check ran for every delivery
-- inserted, a trigger and a locking read of the event's row: about 15 µs of
-- the database's CPU per delivery (BENCHMARKS.md). The index on event_id
-- stays; retention uses it.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
