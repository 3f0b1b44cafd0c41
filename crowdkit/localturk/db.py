"""localturk's own SQLite state: HITs, assignments, workers, qualifications, money.

This is the fake marketplace's database, not a study's ledger. One connection is shared by
the server threads behind one lock: a local test service sees a handful of requests a
second, and serialising them makes every operation atomic without further thought.
Money is stored as decimal strings, times as Unix seconds (REAL).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

SCHEMA_VERSION = "2"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hit_types (
    hit_type_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    keywords TEXT NOT NULL,
    reward TEXT NOT NULL,
    assignment_duration INTEGER NOT NULL,
    auto_approval_delay INTEGER NOT NULL,
    qualification_requirements TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hits (
    hit_id TEXT PRIMARY KEY,
    hit_type_id TEXT NOT NULL REFERENCES hit_types(hit_type_id),
    question TEXT NOT NULL,
    max_assignments INTEGER NOT NULL,
    expiration REAL NOT NULL,
    requester_annotation TEXT,
    created REAL NOT NULL,
    disposed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hits_by_age ON hits(created);
CREATE TABLE IF NOT EXISTS assignments (
    assignment_id TEXT PRIMARY KEY,
    hit_id TEXT NOT NULL REFERENCES hits(hit_id),
    worker_id TEXT NOT NULL,
    status TEXT NOT NULL,
    accept_time REAL NOT NULL,
    deadline REAL NOT NULL,
    submit_time REAL,
    auto_approval_time REAL,
    approval_time REAL,
    rejection_time REAL,
    answer TEXT,
    requester_feedback TEXT
);
CREATE INDEX IF NOT EXISTS assignments_by_hit ON assignments(hit_id, status);
CREATE INDEX IF NOT EXISTS assignments_due ON assignments(status, auto_approval_time);
CREATE INDEX IF NOT EXISTS assignments_deadline ON assignments(status, deadline);
CREATE INDEX IF NOT EXISTS assignments_by_worker ON assignments(worker_id);
CREATE TABLE IF NOT EXISTS request_tokens (
    scope TEXT NOT NULL,
    token TEXT NOT NULL,
    created REAL NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (scope, token)
);
CREATE TABLE IF NOT EXISTS qualification_types (
    qualification_type_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    keywords TEXT NOT NULL,
    status TEXT NOT NULL,
    retry_delay INTEGER,
    test TEXT,
    answer_key TEXT,
    test_duration INTEGER,
    auto_granted INTEGER NOT NULL,
    auto_granted_value INTEGER,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS qualifications (
    qualification_type_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    integer_value INTEGER NOT NULL,
    status TEXT NOT NULL,
    grant_time REAL NOT NULL,
    PRIMARY KEY (qualification_type_id, worker_id)
);
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY,
    country TEXT,
    subdivision TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    amount TEXT NOT NULL,
    hit_id TEXT,
    assignment_id TEXT,
    worker_id TEXT
);
CREATE TABLE IF NOT EXISTS bonuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    assignment_id TEXT NOT NULL,
    hit_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    reason TEXT NOT NULL,
    grant_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_blocks (
    worker_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted_qualification_types (
    qualification_type_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    deleted REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS qualification_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    qualification_type_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    status TEXT NOT NULL,
    submit_time REAL NOT NULL,
    resolved_time REAL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS requests_by_worker ON qualification_requests(worker_id);
CREATE TABLE IF NOT EXISTS notification_settings (
    hit_type_id TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    transport TEXT NOT NULL,
    version TEXT NOT NULL,
    event_types TEXT NOT NULL,
    active INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS event_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    hit_type_id TEXT,
    transport TEXT NOT NULL,
    destination TEXT NOT NULL,
    test INTEGER NOT NULL,
    body TEXT NOT NULL,
    delivery TEXT
);
"""

# Columns added after schema version 1: (table, column, definition). A database written by
# an earlier localturk gets them on open, so `crowdkit serve` keeps its old state.
ADDED_COLUMNS = [
    ("hits", "reviewing", "INTEGER NOT NULL DEFAULT 0"),
    ("hits", "expiry_notified", "REAL"),
    ("hits", "reviewable_notified", "INTEGER NOT NULL DEFAULT 0"),
    ("hits", "assignment_review_policy", "TEXT"),
    ("hits", "hit_review_policy", "TEXT"),
    ("hit_types", "deleted", "INTEGER NOT NULL DEFAULT 0"),
]

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(first: str = "3") -> str:
    """A 30-character id of capitals and digits, the shape of MTurk's HIT and assignment ids."""
    return first + "".join(secrets.choice(_ID_ALPHABET) for _ in range(29))


class TurkDB:
    """The connection, its lock, the money balance and the (shiftable) clock.

    `clock` returns Unix seconds (default `time.time`). On top of it sits an offset kept in
    the database, so tests can jump ahead (expire HITs, pass auto-approval) without
    sleeping, and a restart never moves the marketplace's time backwards.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        starting_balance: Decimal,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or time.time
        self._lock = threading.RLock()
        self._after_commit: list[Callable[[], None]] = []
        self._conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent on a crash
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self.transaction() as db:
            db.executescript_in_tx(SCHEMA)
            db._add_columns()
            if db.meta("schema_version") is None:
                db.set_meta("schema_version", SCHEMA_VERSION)
                db.set_meta("clock_offset", "0")
                db.set_meta("funds", str(starting_balance))
                db.execute(
                    "INSERT INTO payments (time, kind, amount) VALUES (?, 'deposit', ?)",
                    (self._clock(), str(starting_balance)),
                )
            db.set_meta("schema_version", SCHEMA_VERSION)
        self._offset = float(self.meta("clock_offset") or 0)

    # --- connection -----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[TurkDB]:
        """Run a block atomically: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""
        with self._lock:
            if self._conn.in_transaction:  # nested: the outer block commits
                yield self
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._after_commit.clear()
                raise
            self._conn.execute("COMMIT")
            done, self._after_commit = self._after_commit, []
        for callback in done:  # outside the lock: a callback may take its time
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current transaction commits (never if it rolls back);
        how event notifications leave only for changes that happened."""
        with self._lock:
            if self._conn.in_transaction:
                self._after_commit.append(callback)
                return
        callback()

    def _add_columns(self) -> None:
        for table, column, definition in ADDED_COLUMNS:
            have = {row["name"] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def executescript_in_tx(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    def execute(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def one(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def existing(self, sql: str, params: tuple | list = ()) -> sqlite3.Row:
        """The row of a query that must find one (a row just written)."""
        row = self.one(sql, params)
        if row is None:
            raise LookupError(f"no row for {sql!r} with {params!r}")
        return row

    def all(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- meta, money, time ----------------------------------------------------------
    def next_rowid(self, table: str) -> int:
        """A rowid never given out before in `table`, for listings paged by rowid.

        SQLite hands the next insert max(rowid) + 1, so after the last row is deleted its
        rowid comes back, and a new row would sort behind a NextToken already given out
        (MTurk's pages skip nothing). The high-water mark is kept in meta.
        """
        if table not in ("qualification_types", "worker_blocks"):
            raise ValueError(table)
        top = self.one(f"SELECT COALESCE(MAX(rowid), 0) AS top FROM {table}")
        seen = int(self.meta(f"rowid:{table}") or 0)
        rowid = max(int(top["top"]) if top else 0, seen) + 1
        self.set_meta(f"rowid:{table}", str(rowid))
        return rowid

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def funds(self) -> Decimal:
        """Money in the account: the starting balance less everything paid out."""
        return Decimal(self.meta("funds") or "0")

    def pay(self, kind: str, amount: Decimal, when: float, **refs: str | None) -> None:
        """Take `amount` out of the account and log why (reward, fee, bonus, bonus_fee)."""
        self.execute(
            "INSERT INTO payments (time, kind, amount, hit_id, assignment_id, worker_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (when, kind, str(amount), refs.get("hit_id"), refs.get("assignment_id"),
             refs.get("worker_id")),
        )
        self.set_meta("funds", str(self.funds() - amount))

    def now(self) -> float:
        """The marketplace's time: the clock plus the offset tests have added."""
        return self._clock() + self._offset

    def advance_clock(self, seconds: float) -> float:
        """Move the marketplace's time forward (never back) and keep it across restarts."""
        if seconds < 0:
            raise ValueError("the localturk clock only moves forward")
        with self.transaction():
            self._offset += seconds
            self.set_meta("clock_offset", repr(self._offset))
        return self.now()
