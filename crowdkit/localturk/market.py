"""The marketplace both sides share: HIT states, money, and what workers may do.

The requester API (api.py) and the worker site (worker_site.py) both act through `Market`.
Time-driven changes (an assignment's time running out, auto-approval) are applied lazily:
every operation first calls `settle()`, which brings the state up to the current clock.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TypedDict

from crowdkit.localturk import fees, quals
from crowdkit.localturk.db import TurkDB, new_id
from crowdkit.localturk.errors import RequestError
from crowdkit.localturk.xml import question_form_answers

IN_PROGRESS = "Accepted"
HOLDS_SLOT = ("Accepted", "Submitted", "Approved", "Rejected")  # not Returned or Abandoned
_HOLDS_SLOT_SQL = "(" + ", ".join(f"'{status}'" for status in HOLDS_SLOT) + ")"
REQUESTER_VISIBLE = ("Submitted", "Approved", "Rejected")
WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")
HIT_SELECT = (
    "SELECT h.rowid AS rid, h.*, t.title, t.description, t.keywords, t.reward, "
    "t.assignment_duration, t.auto_approval_delay, t.qualification_requirements "
    "FROM hits h JOIN hit_types t USING (hit_type_id)"
)


class Access(TypedDict):
    """What a worker's qualifications let them do with a HIT, and what they lack."""

    discover: bool
    preview: bool
    accept: bool
    unmet: list[str]  # the unmet requirements, described


class WorkerError(Exception):
    """Something a worker (or a simulated one) may not do; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class HitState:
    """A HIT's row plus what its assignments add up to at one moment."""

    row: sqlite3.Row
    in_progress: int
    submitted: int
    reviewed: int
    open_slots: int
    expired: bool
    status: str

    @property
    def available(self) -> int:
        return 0 if self.expired or self.status == "Disposed" else self.open_slots

    @property
    def requirements(self) -> list[dict]:
        return json.loads(self.row["qualification_requirements"])


def normalize_worker_id(text: str) -> str:
    """Worker ids look like MTurk's: 'A' then capitals and digits (e.g. A1B2C3D4E5)."""
    worker_id = (text or "").strip().upper()
    if not WORKER_ID.match(worker_id):
        raise WorkerError(
            f"worker id {text!r} must look like an MTurk worker id: 'A' followed by 1 to 63 "
            "capital letters or digits, e.g. A1TESTWORKER"
        )
    return worker_id


class Market:
    """Operations on the shared state; each public method is one atomic transaction."""

    def __init__(self, db: TurkDB) -> None:
        self.db = db

    # --- time ------------------------------------------------------------------------
    def settle(self) -> float:
        """Apply what the clock has made happen: lapsed assignments, auto-approvals."""
        now = self.db.now()
        with self.db.transaction() as db:
            db.execute(
                "UPDATE assignments SET status = 'Abandoned' "
                "WHERE status = 'Accepted' AND deadline <= ?",
                (now,),
            )
            due = db.all(
                "SELECT * FROM assignments WHERE status = 'Submitted' "
                "AND auto_approval_time <= ? ORDER BY auto_approval_time",
                (now,),
            )
            for assignment in due:
                self.pay_and_approve(assignment, assignment["auto_approval_time"], None)
        return now

    # --- HITs ------------------------------------------------------------------------
    def hit_row(self, hit_id: str) -> sqlite3.Row | None:
        return self.db.one(HIT_SELECT + " WHERE h.hit_id = ?", (hit_id,))

    def require_hit(self, hit_id: str) -> sqlite3.Row:
        row = self.hit_row(hit_id)
        if row is None:
            raise RequestError(f"Hit {hit_id} does not exist.",
                               "AWS.MechanicalTurk.HITDoesNotExist")
        return row

    def worker_hit(self, hit_id: str) -> sqlite3.Row:
        """The HIT as workers see it: a deleted HIT is as gone as one that never was."""
        row = self.hit_row(hit_id)
        if row is None or row["disposed"]:
            raise WorkerError(f"HIT {hit_id} does not exist", 404)
        return row

    def states(self, rows: list[sqlite3.Row], now: float) -> list[HitState]:
        """The states of many HITs with one query over their assignments."""
        if not rows:
            return []
        counts: dict[str, Counter] = {row["hit_id"]: Counter() for row in rows}
        marks = ",".join("?" * len(counts))
        for hit_id, status, n in self.db.all(
            f"SELECT hit_id, status, COUNT(*) FROM assignments WHERE hit_id IN ({marks}) "
            "GROUP BY hit_id, status",
            list(counts),
        ):
            counts[hit_id][status] = n
        return [self._state(row, counts[row["hit_id"]], now) for row in rows]

    def state(self, row: sqlite3.Row, now: float) -> HitState:
        return self.states([row], now)[0]

    @staticmethod
    def _state(row: sqlite3.Row, count: Counter, now: float) -> HitState:
        in_progress, submitted = count["Accepted"], count["Submitted"]
        reviewed = count["Approved"] + count["Rejected"]
        open_slots = max(0, row["max_assignments"] - in_progress - submitted - reviewed)
        expired = now >= row["expiration"]
        if row["disposed"]:
            status = "Disposed"
        elif not expired and open_slots > 0:
            status = "Assignable"
        elif in_progress > 0:
            status = "Unassignable"
        else:
            status = "Reviewable"
        return HitState(row, in_progress, submitted, reviewed, open_slots, expired, status)

    # --- money -----------------------------------------------------------------------
    @staticmethod
    def assignment_cost(row: sqlite3.Row) -> tuple[Decimal, Decimal]:
        """(reward, fee) for one approved assignment of this HIT."""
        reward = Decimal(row["reward"])
        masters = quals.requires_masters(json.loads(row["qualification_requirements"]))
        return reward, fees.assignment_fee(reward, row["max_assignments"], masters)

    def liability(self, now: float) -> Decimal:
        """Money held for assignments that may still be approved: open slots of live HITs,
        work in progress, and submitted work awaiting review."""
        rows = self.db.all(HIT_SELECT + " WHERE h.disposed = 0")
        total = Decimal("0.00")
        for state in self.states(rows, now):
            slots = state.in_progress + state.submitted
            slots += 0 if state.expired else state.open_slots
            if slots:
                total += sum(self.assignment_cost(state.row)) * slots
        return total

    def available_balance(self, now: float) -> Decimal:
        return self.db.funds() - self.liability(now)

    def ensure_funds(self, amount: Decimal, now: float) -> None:
        """Refuse a spend the available balance (money less what is held) cannot cover."""
        if self.available_balance(now) < amount:
            raise RequestError(
                "This Requester has insufficient funds in their account to complete this "
                "transaction. Please visit https://requester.mturk.com/account to purchase "
                "Prepaid HITs.",
                "AWS.MechanicalTurk.InsufficientFunds",
            )

    def pay_and_approve(self, assignment: sqlite3.Row, when: float, feedback: str | None
                        ) -> None:
        """Mark an assignment Approved and pay its reward and MTurk's fee."""
        hit = self.require_hit(assignment["hit_id"])
        reward, fee = self.assignment_cost(hit)
        refs = {"hit_id": hit["hit_id"], "assignment_id": assignment["assignment_id"],
                "worker_id": assignment["worker_id"]}
        self.db.pay("reward", reward, when, **refs)
        self.db.pay("fee", fee, when, **refs)
        self.db.execute(
            "UPDATE assignments SET status = 'Approved', approval_time = ?, "
            "rejection_time = NULL, requester_feedback = COALESCE(?, requester_feedback) "
            "WHERE assignment_id = ?",
            (when, feedback, assignment["assignment_id"]),
        )

    # --- workers ---------------------------------------------------------------------
    def ensure_worker(self, worker_id: str) -> sqlite3.Row:
        self.db.execute(
            "INSERT OR IGNORE INTO workers (worker_id, created) VALUES (?, ?)",
            (worker_id, self.db.now()),
        )
        return self.db.existing("SELECT * FROM workers WHERE worker_id = ?", (worker_id,))

    def worker_value(self, worker_id: str, type_id: str) -> int | quals.Locale | None:
        """The worker's value of a qualification type, or None when they lack it."""
        if type_id == quals.LOCALE:
            row = self.db.one("SELECT * FROM workers WHERE worker_id = ?", (worker_id,))
            if row is None or not row["country"]:
                return None
            return quals.Locale(row["country"], row["subdivision"] or None)
        row = self.db.one(
            "SELECT integer_value FROM qualifications WHERE qualification_type_id = ? "
            "AND worker_id = ? AND status = 'Granted'",
            (type_id, worker_id),
        )
        if row is not None:
            return row["integer_value"]
        if type_id in (quals.NUMBER_HITS_APPROVED, quals.PERCENT_ASSIGNMENTS_APPROVED):
            return self._history_value(worker_id, type_id)
        return None

    def _history_value(self, worker_id: str, type_id: str) -> int:
        count: Counter[str] = Counter({status: n for status, n in self.db.all(
            "SELECT status, COUNT(*) FROM assignments WHERE worker_id = ? GROUP BY status",
            (worker_id,),
        )})
        if type_id == quals.NUMBER_HITS_APPROVED:
            return count["Approved"]
        reviewed = count["Approved"] + count["Rejected"]
        return 100 if reviewed == 0 else round(100 * count["Approved"] / reviewed)

    def access(self, worker_id: str, requirements: list[dict]) -> Access:
        """Which actions the worker's qualifications allow, and the requirements unmet."""
        unmet = [r for r in requirements
                 if not quals.meets(r, self.worker_value(worker_id, r["QualificationTypeId"]))]
        guards = {r["ActionsGuarded"] for r in unmet}
        return {
            "discover": "DiscoverPreviewAndAccept" not in guards,
            "preview": not guards & {"PreviewAndAccept", "DiscoverPreviewAndAccept"},
            "accept": not unmet,
            "unmet": [self.describe_requirement(r) for r in unmet],
        }

    def describe_requirement(self, requirement: dict) -> str:
        text = quals.describe(requirement)
        type_id = requirement["QualificationTypeId"]
        row = self.db.one("SELECT name FROM qualification_types WHERE "
                          "qualification_type_id = ?", (type_id,))
        return text.replace(type_id, row["name"], 1) if row else text

    def hits_for_worker(self, worker_id: str) -> list[tuple[HitState, Access]]:
        """HITs the worker can find now: live, with a free slot, not already taken by them,
        and not hidden by a DiscoverPreviewAndAccept requirement."""
        now = self.settle()
        rows = self.db.all(
            HIT_SELECT + " WHERE h.disposed = 0 AND h.expiration > ? AND h.hit_id NOT IN "
            f"(SELECT hit_id FROM assignments WHERE worker_id = ? AND status IN {_HOLDS_SLOT_SQL})"
            " ORDER BY h.created, h.rowid",
            (now, worker_id),
        )
        out = []
        for state in self.states(rows, now):
            if state.available:
                access = self.access(worker_id, state.requirements)
                if access["discover"]:
                    out.append((state, access))
        return out

    def accept(self, worker_id: str, hit_id: str) -> sqlite3.Row:
        """Give the worker an assignment of the HIT, if a slot is free and they qualify."""
        self.settle()
        with self.db.transaction() as db:
            now = db.now()
            self.ensure_worker(worker_id)
            row = self.worker_hit(hit_id)
            state = self.state(row, now)
            if state.expired:
                raise WorkerError(f"HIT {hit_id} has expired", 409)
            taken = db.one(
                "SELECT assignment_id FROM assignments WHERE hit_id = ? AND worker_id = ? "
                f"AND status IN {_HOLDS_SLOT_SQL}",
                (hit_id, worker_id),
            )
            if taken is not None:
                raise WorkerError(
                    f"worker {worker_id} already holds assignment {taken['assignment_id']} "
                    f"of HIT {hit_id}", 409)
            if state.available == 0:
                raise WorkerError(f"HIT {hit_id} has no assignments available", 409)
            access = self.access(worker_id, state.requirements)
            if not access["accept"]:
                raise WorkerError(
                    f"worker {worker_id} does not meet the qualification requirements of "
                    f"HIT {hit_id}: " + "; ".join(access["unmet"]), 403)
            assignment_id = new_id()
            db.execute(
                "INSERT INTO assignments (assignment_id, hit_id, worker_id, status, "
                "accept_time, deadline) VALUES (?, ?, ?, 'Accepted', ?, ?)",
                (assignment_id, hit_id, worker_id, now, now + row["assignment_duration"]),
            )
            return self._existing_assignment(assignment_id)

    def assignment(self, assignment_id: str) -> sqlite3.Row | None:
        return self.db.one("SELECT * FROM assignments WHERE assignment_id = ?",
                           (assignment_id,))

    def _existing_assignment(self, assignment_id: str) -> sqlite3.Row:
        return self.db.existing("SELECT * FROM assignments WHERE assignment_id = ?",
                                (assignment_id,))

    def return_assignment(self, worker_id: str, assignment_id: str) -> None:
        """The worker gives the assignment back; its slot opens again."""
        self.settle()
        with self.db.transaction() as db:
            row = self._own_in_progress(worker_id, assignment_id)
            db.execute("UPDATE assignments SET status = 'Returned' WHERE assignment_id = ?",
                       (row["assignment_id"],))

    def _own_in_progress(self, worker_id: str | None, assignment_id: str) -> sqlite3.Row:
        row = self.assignment(assignment_id)
        if row is None or (worker_id is not None and row["worker_id"] != worker_id):
            raise WorkerError(f"assignment {assignment_id} does not exist", 404)
        if row["status"] == "Abandoned":
            raise WorkerError(f"the time allowed for assignment {assignment_id} has run out",
                              409)
        if row["status"] != IN_PROGRESS:
            raise WorkerError(
                f"assignment {assignment_id} is {row['status'].lower()}, not in progress", 409)
        return row

    def submit(self, assignment_id: str, fields: list[tuple[str, str]]) -> sqlite3.Row:
        """Store the worker's form fields as the assignment's QuestionFormAnswers.

        Like MTurk, only one value per field name is kept (the first one posted)."""
        if assignment_id == "ASSIGNMENT_ID_NOT_AVAILABLE":
            raise WorkerError("this is a preview: accept the HIT before submitting it", 400)
        self.settle()
        seen: dict[str, str] = {}
        for name, value in fields:
            if name != "assignmentId":
                seen.setdefault(name, value)
        with self.db.transaction() as db:
            row = self._own_in_progress(None, assignment_id)
            hit = self.require_hit(row["hit_id"])
            now = db.now()
            db.execute(
                "UPDATE assignments SET status = 'Submitted', submit_time = ?, "
                "auto_approval_time = ?, answer = ? WHERE assignment_id = ?",
                (now, now + hit["auto_approval_delay"],
                 question_form_answers(list(seen.items())), assignment_id),
            )
        self.settle()  # an auto-approval delay of 0 approves at once
        return self._existing_assignment(assignment_id)

    def set_profile(self, worker_id: str, country: str | None, subdivision: str | None,
                    qualifications: dict[str, int | None] | None = None) -> None:
        """Set the worker's locale and (for testing) qualification values; None revokes."""
        country = (country or "").strip().upper() or None
        subdivision = (subdivision or "").strip().upper() or None
        if country and not re.match(r"^[A-Z]{2}$", country):
            raise WorkerError(f"country {country!r} must be a two-letter ISO 3166 code")
        if subdivision and not country:
            raise WorkerError("a subdivision needs a country")
        if subdivision and not re.match(r"^[A-Z0-9]{1,3}$", subdivision):
            raise WorkerError(f"subdivision {subdivision!r} must be an ISO 3166-2 code "
                              "such as CA (for US-CA)")
        with self.db.transaction() as db:
            self.ensure_worker(worker_id)
            db.execute("UPDATE workers SET country = ?, subdivision = ? WHERE worker_id = ?",
                       (country, subdivision, worker_id))
            for type_id, value in (qualifications or {}).items():
                if not self.known_qualification_type(type_id) or type_id == quals.LOCALE:
                    raise WorkerError(f"qualification type {type_id} does not exist")
                self.set_qualification(worker_id, type_id, value)

    def set_qualification(self, worker_id: str, type_id: str, value: int | None) -> None:
        """Grant (value) or revoke (None) one qualification of a worker."""
        now = self.db.now()
        if value is None:
            self.db.execute(
                "UPDATE qualifications SET status = 'Revoked' WHERE "
                "qualification_type_id = ? AND worker_id = ?", (type_id, worker_id))
            return
        self.ensure_worker(worker_id)
        self.db.execute(
            "INSERT INTO qualifications (qualification_type_id, worker_id, integer_value, "
            "status, grant_time) VALUES (?, ?, ?, 'Granted', ?) "
            "ON CONFLICT(qualification_type_id, worker_id) DO UPDATE SET "
            "integer_value = excluded.integer_value, status = 'Granted', "
            "grant_time = excluded.grant_time",
            (type_id, worker_id, int(value), now),
        )

    def known_qualification_type(self, type_id: str) -> bool:
        if type_id in quals.SYSTEM_TYPES:
            return True
        return self.db.one("SELECT 1 FROM qualification_types WHERE "
                           "qualification_type_id = ?", (type_id,)) is not None

    def worker_assignments(self, worker_id: str) -> list[sqlite3.Row]:
        self.settle()
        return self.db.all(
            "SELECT a.*, t.title, t.reward FROM assignments a JOIN hits h USING (hit_id) "
            "JOIN hit_types t USING (hit_type_id) WHERE a.worker_id = ? "
            "ORDER BY a.accept_time DESC, a.rowid DESC",
            (worker_id,),
        )

    def notifications(self, worker_id: str) -> list[sqlite3.Row]:
        return self.db.all("SELECT * FROM notifications WHERE worker_id = ? "
                           "ORDER BY time DESC, id DESC", (worker_id,))
