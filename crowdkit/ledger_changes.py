"""The ledger's record of changes to a posted study: more assignments, more time, blocks.

Each change is a remote call, and like every remote call it is written before ('intent')
and after ('done' or 'failed'), so a run killed between the two is finished by the next one
instead of being repeated blindly. `crowdkit.ledger.Ledger` has these methods; they live
here to keep the ledger module readable.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    """UTC timestamps as ISO 8601 strings: sortable, unambiguous, readable in sqlite3."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class PostedChanges:
    """Mixed into Ledger: additions, extensions and worker blocks, intent before result."""

    conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # Ledger's

    def log_event(self, kind: str, **detail: Any) -> None:  # any JSON-able detail
        raise NotImplementedError  # Ledger's

    # -- more assignments on a HIT ---------------------------------------------------------

    def record_addition(self, *, request_token: str, target: str, hit_id: str, before: int,
                        added: int, status: str, error: str | None = None) -> None:
        """CreateAdditionalAssignmentsForHIT: 'intent' before, 'done' or 'failed' after.

        'done' raises the HIT's max_assignments to before + added in the same transaction,
        so the ledger never counts an addition twice or not at all.
        """
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO hit_additions (request_token, target, hit_id, before, added, "
                "status, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(request_token) DO UPDATE SET status = excluded.status, "
                "error = excluded.error, updated_at = excluded.updated_at",
                (request_token, target, hit_id, before, added, status, error, ts, ts))
            if status == "done":
                self.conn.execute(
                    "UPDATE hits SET max_assignments = MAX(max_assignments, ?), updated_at = ?"
                    " WHERE hit_id = ?", (before + added, ts, hit_id))
            self.log_event("hit.assignments_" + status, hit_id=hit_id, before=before,
                           added=added, error=error)

    def additions(self, target: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM hit_additions WHERE target = ? ORDER BY created_at", (target,)
        ).fetchall()

    # -- more time on a HIT ----------------------------------------------------------------

    def record_extension(self, hit_id: str, expire_at: str, status: str,
                         error: str | None = None) -> None:
        """UpdateExpirationForHIT to a later time: 'intent' before, 'done' or 'failed' after;
        'done' sets the HIT's expiration."""
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO hit_extensions (hit_id, expire_at, status, error, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(hit_id, expire_at) DO UPDATE"
                " SET status = excluded.status, error = excluded.error, "
                "updated_at = excluded.updated_at", (hit_id, expire_at, status, error, ts, ts))
            if status == "done":
                self.conn.execute("UPDATE hits SET expiration = ?, updated_at = ? "
                                  "WHERE hit_id = ?", (expire_at, ts, hit_id))
            self.log_event("hit.extension_" + status, hit_id=hit_id, expire_at=expire_at,
                           error=error)

    def pending_extensions(self) -> list[sqlite3.Row]:
        """Extensions a run asked for and never saw finish (intent or failed), on HITs still
        open in the ledger: one ended since (`crowdkit expire`, or gone from MTurk) must
        not be opened again by finishing an old plan."""
        return self.conn.execute(
            "SELECT e.*, h.target FROM hit_extensions e JOIN hits h USING (hit_id) "
            "WHERE e.status != 'done' AND h.status = 'created' ORDER BY e.created_at"
        ).fetchall()

    # -- blocked workers --------------------------------------------------------------------

    def record_block(self, *, target: str, worker_id: str, blocked: bool, reason: str,
                     status: str, assignment_id: str | None = None,
                     error: str | None = None) -> None:
        """CreateWorkerBlock (blocked) or DeleteWorkerBlock: 'intent' before, then 'done' or
        'failed'. One row per worker and target: what was asked last."""
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO worker_blocks (target, worker_id, blocked, reason, assignment_id, "
                "status, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(target, worker_id) DO UPDATE SET blocked = excluded.blocked, "
                "reason = excluded.reason, assignment_id = COALESCE(excluded.assignment_id, "
                "assignment_id), status = excluded.status, error = excluded.error, "
                "updated_at = excluded.updated_at",
                (target, worker_id, int(blocked), reason, assignment_id, status, error, ts, ts))
            self.log_event(("worker.blocked_" if blocked else "worker.unblocked_") + status,
                           target=target, worker_id=worker_id, assignment_id=assignment_id,
                           error=error)

    def blocks(self, target: str | None = None) -> dict[str, sqlite3.Row]:
        """Worker id -> their block row (on `target`, or on any target)."""
        if target is None:
            rows = self.conn.execute("SELECT * FROM worker_blocks").fetchall()
        else:
            rows = self.conn.execute("SELECT * FROM worker_blocks WHERE target = ?",
                                     (target,)).fetchall()
        return {r["worker_id"]: r for r in rows}
