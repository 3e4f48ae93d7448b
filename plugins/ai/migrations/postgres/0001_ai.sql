-- Tokens used per day (UTC), calling plugin, person (0: none) and model: what quotas and
-- `GET /api/v1/ai/usage` read. One row per combination, added to after each request.
CREATE TABLE ai_usage (
    day TEXT NOT NULL,
    plugin TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    PRIMARY KEY (day, plugin, user_id, model)
);
CREATE INDEX ai_usage_by_user ON ai_usage (user_id, day);
