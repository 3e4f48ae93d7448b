-- The endpoint's last disabled period, kept when it is enabled again: an event written during
-- it is not sent to the endpoint, however late the worker reads it from the outbox. NULL for
-- an endpoint never enabled again after being disabled.
ALTER TABLE webhooks_endpoints ADD COLUMN paused_from_ms BIGINT;
ALTER TABLE webhooks_endpoints ADD COLUMN paused_until_ms BIGINT;
