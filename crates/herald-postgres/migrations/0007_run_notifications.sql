-- A code monitor run's split over notifications: a JSON array of
-- {event_id, event_type, part, parts, results}. Runs logged before it have none.
ALTER TABLE monitor_runs ADD COLUMN notifications text NOT NULL DEFAULT '[]';
