-- The failed deliveries by age, so the console's overview counts a day's
-- failures from an index range (deliveries_finished holds both outcomes).
CREATE INDEX deliveries_failed ON deliveries (created_at) WHERE status = 'failed';
