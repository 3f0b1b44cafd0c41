"""The ledger (`study.db`): the SQLite record of everything a study did.

It is the study's only state. Tasks with their answer keys, HITs with their request
tokens, assignments with the answer XML exactly as MTurk returned it, reviews, bonuses,
qualification grants, changes to posted HITs and blocks (crowdkit.ledger_changes), the
study's own random id and secrets, and an append-only event log.

Rules that keep it trustworthy:
- WAL mode and foreign keys on; every write is one transaction (`with ledger.transaction()`).
- Only one process writes to a study at a time. A writer takes an exclusive `flock` on
  `study.db.lock` for as long as it is open; a second writer is refused with a clear message
  rather than allowed to interleave. The OS drops the lock when a process dies, so a
  killed writer never blocks the next run.
- The schema is versioned (`PRAGMA user_version`) and migrated forward on open.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

from crowdkit.errors import CrowdkitError, LedgerBusy
from crowdkit.ledger_changes import PostedChanges, now_iso
from crowdkit.ledger_schema import MIGRATIONS, SCHEMA_VERSION, split_sql
from crowdkit.tasks import AnswerKey, DesignedTask, PublicTask


class ImageRecord(TypedDict):
    """A row of the images table as a design hands it over: where the file is (relative to
    the study where it lies inside it), how big it is, and its content type."""

    path: str
    bytes: int
    content_type: str


__all__ = ["SCHEMA_VERSION", "ImageRecord", "Ledger", "now_iso"]


class Ledger(PostedChanges):
    """An open study ledger. Use `Ledger.open(path, write=True)` as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path, lock_fd: int | None) -> None:
        self.conn = conn
        self.path = path
        self._lock_fd = lock_fd
        self._depth = 0

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, write: bool = False, command: str = "crowdkit") -> Ledger:
        """Open (creating if `write`) the ledger at `path`.

        A writer takes the study's write lock first; if another process holds it, LedgerBusy
        names that process. A reader never creates the file and never blocks.
        """
        path = Path(path)
        lock_fd = _acquire_write_lock(path, command) if write else None
        try:
            if not write and not path.exists():
                raise CrowdkitError(
                    f"{path}: no ledger yet; nothing has been designed or published"
                )
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            if write:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
            ledger = cls(conn, path, lock_fd)
            ledger._migrate(write)
            return ledger
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def writable(self) -> bool:
        return self._lock_fd is not None

    def _migrate(self, write: bool) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CrowdkitError(
                f"{self.path}: ledger schema v{version} is newer than this crowdkit "
                f"(v{SCHEMA_VERSION}); upgrade crowdkit"
            )
        if version == SCHEMA_VERSION:
            return
        if not write:
            raise CrowdkitError(
                f"{self.path}: ledger schema v{version} needs an upgrade to v{SCHEMA_VERSION}; "
                "run a command that writes (such as `crowdkit collect`) first"
            )
        with self.transaction():
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in split_sql(MIGRATIONS[target]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {target}")
            self._create_secrets()
            self.log_event("ledger.migrated", from_version=version, to_version=SCHEMA_VERSION)

    def _create_secrets(self) -> None:
        """The ledger's own random values, made once: the pseudonym key, the study id (what
        makes request tokens unique to this ledger) and the secret of the image keys.

        A ledger that already has HITs gets no image secret: its published pages name
        images by their content hash, and a new secret would change the design under them.
        """
        if self.get_meta("pseudonym_key") is None:
            self.set_meta("pseudonym_key", secrets.token_hex(32))
        if self.get_meta("study_id") is None:
            self.set_meta("study_id", secrets.token_hex(16))
        has_hits = self.conn.execute("SELECT 1 FROM hits LIMIT 1").fetchone() is not None
        if self.get_meta("image_secret") is None and not has_hits:
            self.set_meta("image_secret", secrets.token_hex(32))

    # -- transactions and the event log -------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write. Nested uses join the outer transaction."""
        self._require_write()
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def _require_write(self) -> None:
        if not self.writable:
            raise RuntimeError("this ledger was opened read-only")

    def log_event(self, kind: str, **detail: Any) -> None:
        """Append to the event log (inside the current transaction, or its own)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)",
                (now_iso(), kind, json.dumps(detail, sort_keys=True, default=str)),
            )

    def events(self, kind: str | None = None) -> list[sqlite3.Row]:
        if kind is None:
            return self.conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        return self.conn.execute(
            "SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def pseudonym_key(self) -> bytes:
        """The secret key of the participant pseudonyms; it never leaves the ledger."""
        value = self.get_meta("pseudonym_key")
        if value is None:
            raise CrowdkitError(f"{self.path}: the ledger has no pseudonym key")
        return bytes.fromhex(value)

    def study_id(self) -> str:
        """This ledger's random id: request tokens and annotations carry it, so two study
        directories with the same [study] name never share a HIT."""
        value = self.get_meta("study_id")
        if value is None:
            raise CrowdkitError(f"{self.path}: the ledger has no study id")
        return value

    def image_secret(self) -> bytes | None:
        """The key of the study's image keys and padding (crowdkit.images); None for a study
        published before ledgers had one, whose images keep their content-hash keys."""
        value = self.get_meta("image_secret")
        return None if value is None else bytes.fromhex(value)

    # -- tasks and images -------------------------------------------------------------------

    def design_hash(self) -> str | None:
        return self.get_meta("design_hash")

    def save_design(
        self, tasks: list[DesignedTask], images: dict[str, ImageRecord], design_hash: str
    ) -> bool:
        """Store a design's tasks and images in one transaction.

        Returns False when the same design is already stored. A different design replaces the
        old one only while no HIT exists: once HITs are out, their tasks are fixed.
        """
        with self.transaction():
            current = self.design_hash()
            if current == design_hash:
                return False
            if current is not None:
                n_hits = self.conn.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
                if n_hits:
                    raise CrowdkitError(
                        f"{self.path}: the design changed (study.toml [design] or the stimuli) "
                        f"but {n_hits} HITs were already made from the old one; "
                        "start a new study directory for a new design"
                    )
                self.conn.execute("DELETE FROM tasks")
                self.conn.execute("DELETE FROM images")
            self._insert_design(tasks, images, start=0)
            self.set_meta("design_hash", design_hash)
            self.log_event("design.saved", design_hash=design_hash, tasks=len(tasks),
                           images=len(images), replaced=current)
            return True

    def append_tasks(self, tasks: list[DesignedTask], images: dict[str, ImageRecord],
                     design_hash: str) -> None:
        """Add tasks after the stored ones (a study that grows): the stored tasks and their
        images stay exactly as they are, and `design_hash` becomes the design's hash."""
        with self.transaction():
            start = self.conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
            self._insert_design(tasks, images, start=start)
            previous = self.design_hash()
            self.set_meta("design_hash", design_hash)
            self.log_event("design.grown", design_hash=design_hash, previous=previous,
                           added_tasks=len(tasks), tasks=start + len(tasks))

    def _insert_design(self, tasks: list[DesignedTask], images: dict[str, ImageRecord], *,
                       start: int) -> None:
        """Images (one already stored stays as it is) and tasks at positions from `start`."""
        self.conn.executemany(
            "INSERT INTO images (key, path, bytes, content_type) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO NOTHING",
            [(k, v["path"], v["bytes"], v["content_type"]) for k, v in images.items()],
        )
        created = now_iso()
        self.conn.executemany(
            "INSERT INTO tasks (task_id, position, public_json, key_json, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(t.public.task_id, start + i, t.public.model_dump_json(),
              t.key.model_dump_json(), created) for i, t in enumerate(tasks)],
        )

    def tasks(self) -> list[DesignedTask]:
        """All designed tasks in design order."""
        rows = self.conn.execute(
            "SELECT public_json, key_json FROM tasks ORDER BY position"
        ).fetchall()
        return [
            DesignedTask(
                public=PublicTask.model_validate_json(r["public_json"]),
                key=AnswerKey.model_validate_json(r["key_json"]),
            )
            for r in rows
        ]

    def images(self) -> dict[str, sqlite3.Row]:
        rows = self.conn.execute("SELECT * FROM images ORDER BY key").fetchall()
        return {r["key"]: r for r in rows}

    # -- HITs -----------------------------------------------------------------------------

    def record_hit_intent(
        self, *, target: str, request_token: str, task_id: str, part: int,
        max_assignments: int, reward: str,
    ) -> None:
        """Record that a HIT is about to be created. Written before the remote call."""
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO hits (target, request_token, task_id, part, max_assignments, reward,"
                " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?) "
                "ON CONFLICT(target, request_token) DO NOTHING",
                (target, request_token, task_id, part, max_assignments, reward, ts, ts),
            )

    def record_hit_created(
        self, *, target: str, request_token: str, hit_id: str, hit_type_id: str | None,
        expiration: str | None,
    ) -> None:
        """Record the HIT id the create call returned. Written right after the call."""
        with self.transaction():
            cur = self.conn.execute(
                "UPDATE hits SET hit_id = ?, hit_type_id = ?, expiration = ?, status = 'created',"
                " error = NULL, updated_at = ? WHERE target = ? AND request_token = ?",
                (hit_id, hit_type_id, expiration, now_iso(), target, request_token),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"no HIT intent for request token {request_token}")
            self.log_event("hit.created", target=target, hit_id=hit_id,
                           request_token=request_token)

    def set_hit_status(self, hit_id: str, status: str, *, expiration: str | None = None,
                       error: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE hits SET status = ?, expiration = COALESCE(?, expiration), error = ?,"
                " updated_at = ? WHERE hit_id = ?",
                (status, expiration, error, now_iso(), hit_id),
            )
            self.log_event(f"hit.{status}", hit_id=hit_id, error=error)

    def hits(self, target: str | None = None) -> list[sqlite3.Row]:
        if target is None:
            return self.conn.execute("SELECT * FROM hits ORDER BY task_id, part").fetchall()
        return self.conn.execute(
            "SELECT * FROM hits WHERE target = ? ORDER BY task_id, part", (target,)
        ).fetchall()

    # -- assignments ----------------------------------------------------------------------

    def store_assignment(
        self, *, assignment_id: str, hit_id: str, worker_id: str, status: str,
        answer_xml: str | None, accept_time: str | None = None, submit_time: str | None = None,
        auto_approval_time: str | None = None,
    ) -> str:
        """Store an assignment verbatim, before anything parses it.

        Returns "new", "changed" (status or answer differs from what is stored) or
        "unchanged", so a re-run of collect writes nothing twice.
        """
        with self.transaction():
            row = self.conn.execute(
                "SELECT status, answer_xml FROM assignments WHERE assignment_id = ?",
                (assignment_id,),
            ).fetchone()
            ts = now_iso()
            if row is None:
                self.conn.execute(
                    "INSERT INTO assignments (assignment_id, hit_id, worker_id, status, "
                    "answer_xml, accept_time, submit_time, auto_approval_time, first_seen_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (assignment_id, hit_id, worker_id, status, answer_xml, accept_time,
                     submit_time, auto_approval_time, ts, ts),
                )
                self.log_event("assignment.stored", assignment_id=assignment_id, status=status)
                return "new"
            if row["status"] == status and row["answer_xml"] == answer_xml:
                return "unchanged"
            if row["answer_xml"] is not None and answer_xml != row["answer_xml"]:
                # MTurk never changes a submitted answer; keep the first one and say so.
                self.log_event("assignment.answer_differs", assignment_id=assignment_id)
                answer_xml = row["answer_xml"]
            self.conn.execute(
                "UPDATE assignments SET status = ?, answer_xml = ?, auto_approval_time = "
                "COALESCE(?, auto_approval_time), updated_at = ? WHERE assignment_id = ?",
                (status, answer_xml, auto_approval_time, ts, assignment_id),
            )
            self.log_event("assignment.status", assignment_id=assignment_id, status=status)
            return "changed"

    def set_assignment_parse(self, assignment_id: str, parse_status: str,
                             parse_error: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE assignments SET parse_status = ?, parse_error = ?, updated_at = ? "
                "WHERE assignment_id = ?",
                (parse_status, parse_error, now_iso(), assignment_id),
            )

    def assignments(self, hit_id: str | None = None) -> list[sqlite3.Row]:
        if hit_id is None:
            return self.conn.execute(
                "SELECT * FROM assignments ORDER BY submit_time, assignment_id"
            ).fetchall()
        return self.conn.execute(
            "SELECT * FROM assignments WHERE hit_id = ? ORDER BY submit_time, assignment_id",
            (hit_id,),
        ).fetchall()

    # -- reviews, bonuses, qualifications ---------------------------------------------------

    def record_review(self, assignment_id: str, decision: str, message: str | None,
                      status: str, error: str | None = None) -> None:
        """Record a review decision: 'intent' before the call, 'done' or 'failed' after."""
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO reviews (assignment_id, decision, message, status, error, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(assignment_id) DO UPDATE"
                " SET decision = excluded.decision, message = excluded.message,"
                " status = excluded.status, error = excluded.error,"
                " updated_at = excluded.updated_at",
                (assignment_id, decision, message, status, error, ts, ts),
            )
            self.log_event("review." + status, assignment_id=assignment_id, decision=decision)

    def reviews(self) -> dict[str, sqlite3.Row]:
        rows = self.conn.execute("SELECT * FROM reviews").fetchall()
        return {r["assignment_id"]: r for r in rows}

    def record_bonus(self, *, request_token: str, assignment_id: str, worker_id: str,
                     amount: str, reason: str, status: str, error: str | None = None) -> None:
        """Record a bonus: 'intent' before SendBonus, 'done' or 'failed' after."""
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO bonuses (request_token, assignment_id, worker_id, amount, reason, "
                "status, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(request_token) DO UPDATE SET status = excluded.status, "
                "error = excluded.error, updated_at = excluded.updated_at",
                (request_token, assignment_id, worker_id, amount, reason, status, error, ts, ts),
            )
            self.log_event("bonus." + status, assignment_id=assignment_id, amount=amount)

    def bonuses(self, target: str | None = None) -> list[sqlite3.Row]:
        """Every bonus, or those paid on the assignments of one target's HITs."""
        if target is None:
            return self.conn.execute("SELECT * FROM bonuses ORDER BY created_at").fetchall()
        return self.conn.execute(
            "SELECT b.* FROM bonuses b JOIN assignments a USING (assignment_id) "
            "JOIN hits h ON h.hit_id = a.hit_id WHERE h.target = ? ORDER BY b.created_at",
            (target,)).fetchall()

    def qualification_type_id(self, target: str, name: str) -> str | None:
        row = self.conn.execute(
            "SELECT qualification_type_id FROM qualification_types WHERE target = ? AND name = ?",
            (target, name),
        ).fetchone()
        return None if row is None else row[0]

    def record_qualification_type(self, target: str, name: str, role: str,
                                  qualification_type_id: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO qualification_types (target, name, role, qualification_type_id, "
                "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(target, name) DO UPDATE SET "
                "qualification_type_id = excluded.qualification_type_id, role = excluded.role",
                (target, name, role, qualification_type_id, now_iso()),
            )

    def record_qualification_grant(self, *, target: str, qualification_type_id: str,
                                   worker_id: str, status: str, value: int = 1) -> None:
        with self.transaction():
            ts = now_iso()
            self.conn.execute(
                "INSERT INTO qualification_grants (target, qualification_type_id, worker_id, "
                "value, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(target, qualification_type_id, worker_id) DO UPDATE SET "
                "status = excluded.status, value = excluded.value, "
                "updated_at = excluded.updated_at",
                (target, qualification_type_id, worker_id, value, status, ts, ts),
            )

    def qualification_grants(self, target: str | None = None) -> list[sqlite3.Row]:
        if target is None:
            return self.conn.execute("SELECT * FROM qualification_grants").fetchall()
        return self.conn.execute(
            "SELECT * FROM qualification_grants WHERE target = ?", (target,)
        ).fetchall()

    # -- collect and review (issue 7) ------------------------------------------------------

    def study_qualification_type_id(self, target: str) -> str | None:
        """The study's participation qualification on `target`, if publish created one."""
        row = self.conn.execute(
            "SELECT qualification_type_id FROM qualification_types WHERE target = ? AND "
            "role = 'study' ORDER BY created_at LIMIT 1", (target,)).fetchone()
        return None if row is None else row[0]

    def expert_qualification_type_id(self, target: str, configured: str | None) -> str | None:
        """The expert qualification: one recorded with role 'expert', else the configured
        [qualifications] expert_qualification (a name recorded here, or a type id)."""
        row = self.conn.execute(
            "SELECT qualification_type_id FROM qualification_types WHERE target = ? AND "
            "role = 'expert' ORDER BY created_at LIMIT 1", (target,)).fetchone()
        if row is not None:
            return row[0]
        if not configured:
            return None
        return self.qualification_type_id(target, configured) or configured

    def set_expert_qualification_workers(self, target: str, workers: list[str]) -> None:
        """Remember who holds the expert qualification (written only when it changes)."""
        key = f"expert_qualification_workers:{target}"
        value = json.dumps(sorted(workers))
        if self.get_meta(key) != value:
            self.set_meta(key, value)

    def assignment_counts(self) -> dict[str, tuple[int, int]]:
        """HIT id -> (assignments stored, of which approved or rejected), without reading
        any answer: what collect needs to tell which HITs are done or settled."""
        rows = self.conn.execute(
            "SELECT hit_id, COUNT(*), SUM(status IN ('Approved', 'Rejected')) "
            "FROM assignments GROUP BY hit_id")
        return {r[0]: (r[1], r[2]) for r in rows}

    def expert_qualification_workers(self) -> dict[str, set[str]]:
        """Target -> workers holding the expert qualification, as last collected."""
        rows = self.conn.execute(
            "SELECT key, value FROM meta WHERE key LIKE 'expert_qualification_workers:%'")
        return {r[0].split(":", 1)[1]: set(json.loads(r[1])) for r in rows}

    # -- end of collect and review --------------------------------------------------------

    def integrity_problems(self) -> list[str]:
        """SQLite's own integrity and foreign-key checks; empty when all is well."""
        problems = [r[0] for r in self.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [
            f"foreign key: {r[0]} row {r[1]} -> {r[2]}"
            for r in self.conn.execute("PRAGMA foreign_key_check")
        ]
        return problems


def _acquire_write_lock(db_path: Path, command: str) -> int:
    """Take the study's exclusive write lock, or raise LedgerBusy naming the holder."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise LedgerBusy(
            f"{db_path}: another crowdkit process is writing to this study ({holder}); "
            "wait for it to finish or stop it, then try again"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, `{command}`".encode(), 0)
    return fd
