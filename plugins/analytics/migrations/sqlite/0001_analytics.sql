-- Daily rollups: per day (UTC), recording plugin, metric and dimensions (a JSON object with
-- sorted keys), how many records and the sum of their values.
CREATE TABLE analytics_daily (
    day TEXT NOT NULL,
    plugin TEXT NOT NULL,
    metric TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    count BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (plugin, metric, day, dimensions)
);
CREATE INDEX analytics_daily_by_day ON analytics_daily (day);
