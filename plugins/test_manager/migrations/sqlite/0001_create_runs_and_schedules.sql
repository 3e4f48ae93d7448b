-- Every finished run of a plugin test: the history and the statistics' source.
CREATE TABLE test_manager_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    plugin TEXT NOT NULL,
    test TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    message TEXT NOT NULL,
    error TEXT,
    started_at TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    finished_at TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    abandoned INTEGER NOT NULL,
    schedule_id INTEGER
);
CREATE INDEX test_manager_runs_by_test ON test_manager_runs (plugin, test, started_ms);
CREATE INDEX test_manager_runs_by_time ON test_manager_runs (started_ms);

-- Schedules: a test (or all of a plugin's tests, when `test` is NULL) run on a rule.
CREATE TABLE test_manager_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin TEXT NOT NULL,
    test TEXT,
    expression TEXT NOT NULL,
    timezone TEXT NOT NULL,
    priority TEXT NOT NULL,
    timeout_ms INTEGER,
    enabled INTEGER NOT NULL,
    anchor_ms INTEGER NOT NULL,
    next_run_ms INTEGER,
    last_run_ms INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX test_manager_schedules_due ON test_manager_schedules (enabled, next_run_ms);
