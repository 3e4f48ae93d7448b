-- Every awesome.action.completed event the audit log received.
CREATE TABLE awesome_audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL
);
