"""The ledger's SQLite schema, version by version, and how a migration is run.

`MIGRATIONS[n]` takes a database from version n - 1 to version n; `crowdkit.ledger` applies
the missing ones in one transaction when a writer opens an older ledger.
"""

from __future__ import annotations

SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE images (
    key          TEXT PRIMARY KEY,             -- "<sha256>.<ext>": what the worker's page sees
    path         TEXT NOT NULL,                -- relative to the study directory
    bytes        INTEGER NOT NULL,
    content_type TEXT NOT NULL
);
CREATE TABLE tasks (                           -- the design's hash is meta.design_hash
    task_id     TEXT PRIMARY KEY,
    position    INTEGER NOT NULL UNIQUE,
    public_json TEXT NOT NULL,                 -- crowdkit.tasks.PublicTask
    key_json    TEXT NOT NULL,                 -- crowdkit.tasks.AnswerKey (never sent out)
    created_at  TEXT NOT NULL
);
CREATE TABLE hits (
    target          TEXT NOT NULL CHECK (target IN ('local', 'sandbox', 'live')),
    request_token   TEXT NOT NULL,
    task_id         TEXT NOT NULL REFERENCES tasks(task_id),
    part            INTEGER NOT NULL DEFAULT 0,   -- which of a task's split HITs
    max_assignments INTEGER NOT NULL CHECK (max_assignments > 0),
    reward          TEXT NOT NULL,                -- decimal string, never a float
    hit_id          TEXT UNIQUE,                  -- NULL until the create call answered
    hit_type_id     TEXT,
    status          TEXT NOT NULL
                    CHECK (status IN ('intent', 'created', 'expired', 'deleted', 'failed')),
    expiration      TEXT,
    error           TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (target, request_token)
);
CREATE TABLE assignments (
    assignment_id      TEXT PRIMARY KEY,
    hit_id             TEXT NOT NULL REFERENCES hits(hit_id),
    worker_id          TEXT NOT NULL,
    status             TEXT NOT NULL,            -- Submitted, Approved or Rejected (MTurk's)
    answer_xml         TEXT,                     -- verbatim, as MTurk returned it
    accept_time        TEXT,
    submit_time        TEXT,
    auto_approval_time TEXT,
    parse_status       TEXT CHECK (parse_status IN ('ok', 'invalid')),
    parse_error        TEXT,
    first_seen_at      TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX assignments_by_hit ON assignments(hit_id);
CREATE INDEX assignments_by_worker ON assignments(worker_id);
CREATE TABLE reviews (
    assignment_id TEXT PRIMARY KEY REFERENCES assignments(assignment_id),
    decision      TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    message       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed')),
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE bonuses (
    request_token TEXT PRIMARY KEY,
    assignment_id TEXT NOT NULL REFERENCES assignments(assignment_id),
    worker_id     TEXT NOT NULL,
    amount        TEXT NOT NULL,                 -- decimal string, never a float
    reason        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed')),
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE qualification_types (
    target                TEXT NOT NULL,
    name                  TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('study', 'excluded', 'expert')),
    qualification_type_id TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    PRIMARY KEY (target, name)
);
CREATE TABLE qualification_grants (
    target                TEXT NOT NULL,
    qualification_type_id TEXT NOT NULL,
    worker_id             TEXT NOT NULL,
    value                 INTEGER NOT NULL DEFAULT 1,
    status                TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed')),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    PRIMARY KEY (target, qualification_type_id, worker_id)
);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL                         -- JSON
);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"""

# v2: what lets a study grow and keeps it its own. The study's random id and the secret of
# its image keys are meta rows (`study_id`, `image_secret`) that crowdkit.ledger adds when it
# migrates; these tables record the calls that change a posted study.
SCHEMA_V2 = """
CREATE TABLE hit_additions (                   -- CreateAdditionalAssignmentsForHIT
    request_token TEXT PRIMARY KEY,            -- its UniqueRequestToken
    target        TEXT NOT NULL,
    hit_id        TEXT NOT NULL REFERENCES hits(hit_id),
    before        INTEGER NOT NULL,            -- the HIT's MaxAssignments before the call
    added         INTEGER NOT NULL CHECK (added > 0),
    status        TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed')),
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE hit_extensions (                  -- UpdateExpirationForHIT, later in time
    hit_id     TEXT NOT NULL REFERENCES hits(hit_id),
    expire_at  TEXT NOT NULL,                  -- ISO 8601 UTC: the new expiration
    status     TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed')),
    error      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (hit_id, expire_at)
);
CREATE TABLE worker_blocks (                   -- CreateWorkerBlock / DeleteWorkerBlock
    target        TEXT NOT NULL,
    worker_id     TEXT NOT NULL,
    blocked       INTEGER NOT NULL CHECK (blocked IN (0, 1)),  -- what was asked last
    reason        TEXT NOT NULL,
    assignment_id TEXT,                        -- the rejected answer, for review's blocks
    status        TEXT NOT NULL CHECK (status IN ('intent', 'done', 'failed')),
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (target, worker_id)
);
"""

# Forward migrations: MIGRATIONS[n] takes a database from version n - 1 to version n.
MIGRATIONS: dict[int, str] = {1: SCHEMA_V1, 2: SCHEMA_V2}
SCHEMA_VERSION = max(MIGRATIONS)


def split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        is_trigger = text.upper().startswith("CREATE TRIGGER")
        if text.endswith(";") and (not is_trigger or text.upper().endswith("END;")):
            statements.append(text)
            current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements
