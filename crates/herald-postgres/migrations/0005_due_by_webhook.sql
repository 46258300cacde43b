-- One webhook's work queue: claims that must skip saturated webhooks seek each
-- other webhook here instead of walking past the skipped ones' backlog.
CREATE INDEX deliveries_due_by_webhook ON deliveries (webhook_id, next_attempt_at, id) WHERE status = 'pending';
