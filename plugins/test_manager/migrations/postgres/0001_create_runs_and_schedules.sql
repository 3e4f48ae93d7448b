-- Every finished run of a plugin test: the history and the statistics' source.
CREATE TABLE test_manager_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    plugin TEXT NOT NULL,
    test TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    message TEXT NOT NULL,
    error TEXT,
    started_at TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    finished_at TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    abandoned BIGINT NOT NULL,
    schedule_id BIGINT
);
CREATE INDEX test_manager_runs_by_test ON test_manager_runs (plugin, test, started_ms);
CREATE INDEX test_manager_runs_by_time ON test_manager_runs (started_ms);

-- Schedules: a test (or all of a plugin's tests, when `test` is NULL) run on a rule.
CREATE TABLE test_manager_schedules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plugin TEXT NOT NULL,
    test TEXT,
    expression TEXT NOT NULL,
    timezone TEXT NOT NULL,
    priority TEXT NOT NULL,
    timeout_ms BIGINT,
    enabled BIGINT NOT NULL,
    anchor_ms BIGINT NOT NULL,
    next_run_ms BIGINT,
    last_run_ms BIGINT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX test_manager_schedules_due ON test_manager_schedules (enabled, next_run_ms);
