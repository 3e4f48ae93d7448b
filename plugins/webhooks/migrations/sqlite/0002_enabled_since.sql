-- When the endpoint began taking events: its creation, or the operator enabling it again.
-- An event written before then is not fanned out to it, however late the worker reads it.
ALTER TABLE webhooks_endpoints ADD COLUMN enabled_ms BIGINT NOT NULL DEFAULT 0;
UPDATE webhooks_endpoints SET enabled_ms = created_ms;
