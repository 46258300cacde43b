-- Bulk work done in short statements of a bounded batch each. A deleted
-- webhook or receiver stays, hidden from every read (and a webhook from
-- fan-out and claims), until its rows are deleted in batches; the last batch
-- deletes it. A disabled webhook's pending deliveries created up to
-- `failing_until` are being failed in batches; claims skip it meanwhile.
ALTER TABLE webhooks ADD COLUMN deleting boolean NOT NULL DEFAULT false;
ALTER TABLE webhooks ADD COLUMN failing_until bigint;
ALTER TABLE receivers ADD COLUMN deleting boolean NOT NULL DEFAULT false;
