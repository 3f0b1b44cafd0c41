"""The marketplace both sides share: HIT states, money, and what workers may do.

The requester API (crowdkit.localturk.api) and the worker site (worker_site.py) both act
through `Market`; what concerns one worker (profile, qualification values, blocks,
qualification requests) is its `WorkerRecords` part (workers.py). Time-driven changes (an
assignment's time running out, auto-approval, HITs disposed of after 120 days, the HIT events
the clock causes) are applied lazily: every operation first calls `settle()`, which brings
the state up to the current clock.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from crowdkit.localturk import fees, quals
from crowdkit.localturk.db import TurkDB, new_id
from crowdkit.localturk.errors import RequestError
from crowdkit.localturk.events import EventLog
from crowdkit.localturk.workers import (
    Access,
    WorkerError,
    WorkerRecords,
    normalize_worker_id,
)
from crowdkit.localturk.xml import question_form_answers

__all__ = ["HOLDS_SLOT", "Access", "HitState", "Market", "WorkerError",
           "normalize_worker_id"]

IN_PROGRESS = "Accepted"
HOLDS_SLOT = ("Accepted", "Submitted", "Approved", "Rejected")  # not Returned or Abandoned
_HOLDS_SLOT_SQL = "(" + ", ".join(f"'{status}'" for status in HOLDS_SLOT) + ")"
REQUESTER_VISIBLE = ("Submitted", "Approved", "Rejected")
HIT_SELECT = (
    "SELECT h.rowid AS rid, h.*, t.title, t.description, t.keywords, t.reward, "
    "t.assignment_duration, t.auto_approval_delay, t.qualification_requirements "
    "FROM hits h JOIN hit_types t USING (hit_type_id)"
)
# MTurk API reference, DeleteHIT: "HITs are automatically disposed of after 120 days."
DISPOSE_AFTER_S = 120 * 24 * 3600


@dataclass(frozen=True)
class HitState:
    """A HIT's row plus what its assignments add up to at one moment."""

    row: sqlite3.Row
    in_progress: int
    submitted: int
    reviewed: int
    # NumberOfAssignmentsAvailable: the slots nobody holds. MTurk keeps counting them after
    # the HIT expires (its status, not this number, says that no one can take one), and so
    # does localturk.
    available: int
    expired: bool
    status: str

    @property
    def reviewable(self) -> bool:
        """Reviewable or Reviewing: what DeleteHIT, disposal and HITReviewable look for."""
        return self.status in ("Reviewable", "Reviewing")

    @property
    def assignable(self) -> bool:
        return self.status == "Assignable"

    @property
    def requirements(self) -> list[dict]:
        return json.loads(self.row["qualification_requirements"])


class Market(WorkerRecords):
    """Operations on the shared state; each public method is one atomic transaction."""

    def __init__(self, db: TurkDB, events: EventLog | None = None) -> None:
        self.db = db
        self.events = events or EventLog(db)

    # --- time ------------------------------------------------------------------------
    def settle(self) -> float:
        """Apply what the clock has made happen: lapsed assignments, auto-approvals, HITs
        disposed of after 120 days, and the events of HITs that expired or became
        reviewable meanwhile."""
        now = self.db.now()
        with self.db.transaction() as db:
            for lapsed in db.all("SELECT a.*, h.hit_type_id FROM assignments a JOIN hits h "
                                 "USING (hit_id) WHERE a.status = 'Accepted' AND "
                                 "a.deadline <= ?", (now,)):
                db.execute("UPDATE assignments SET status = 'Abandoned' WHERE "
                           "assignment_id = ?", (lapsed["assignment_id"],))
                self.events.emit("AssignmentAbandoned", lapsed["deadline"],
                                 lapsed["hit_type_id"], lapsed["hit_id"],
                                 lapsed["assignment_id"])
            due = db.all(
                "SELECT * FROM assignments WHERE status = 'Submitted' "
                "AND auto_approval_time <= ? ORDER BY auto_approval_time",
                (now,),
            )
            for assignment in due:
                self.pay_and_approve(assignment, assignment["auto_approval_time"], None)
            self._dispose_old(now)
            self.sweep_events(now)
        return now

    def _dispose_old(self, now: float) -> None:
        """HITs 120 days old are disposed of once they are done: expired, nothing in
        progress, no submitted work waiting (auto-approval settles that within 30 days)."""
        rows = self.db.all(HIT_SELECT + " WHERE h.disposed = 0 AND h.created <= ?",
                           (now - DISPOSE_AFTER_S,))
        for state in self.states(rows, now):
            if state.reviewable and not state.submitted:
                self.dispose(state.row, now)

    def dispose(self, hit: sqlite3.Row, now: float) -> None:
        self.db.execute("UPDATE hits SET disposed = 1 WHERE hit_id = ?", (hit["hit_id"],))
        self.events.emit("HITDisposed", now, hit["hit_type_id"], hit["hit_id"])

    def sweep_events(self, now: float) -> None:
        """HITExpired and HITReviewable happen with the clock (or after another change):
        look for them among HITs whose type has notifications on."""
        if not self.events.watching():
            return
        rows = self.db.all(HIT_SELECT + " WHERE h.disposed = 0 AND h.hit_type_id IN "
                           + self.events.watched_types_sql())
        for state in self.states(rows, now):
            row = state.row
            if state.expired and row["expiry_notified"] != row["expiration"]:
                self.db.execute("UPDATE hits SET expiry_notified = ? WHERE hit_id = ?",
                                (row["expiration"], row["hit_id"]))
                self.events.emit("HITExpired", row["expiration"], row["hit_type_id"],
                                 row["hit_id"])
            reviewable = state.reviewable
            if reviewable != bool(row["reviewable_notified"]):
                self.db.execute("UPDATE hits SET reviewable_notified = ? WHERE hit_id = ?",
                                (int(reviewable), row["hit_id"]))
                if reviewable:
                    self.events.emit("HITReviewable", now, row["hit_type_id"],
                                     row["hit_id"])

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
        else:  # UpdateHITReviewStatus moves a Reviewable HIT to Reviewing and back
            status = "Reviewing" if row["reviewing"] else "Reviewable"
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
            slots += 0 if state.expired else state.available
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
        self.events.emit("AssignmentApproved", when, hit["hit_type_id"], hit["hit_id"],
                         assignment["assignment_id"])
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
    def hits_for_worker(self, worker_id: str) -> list[tuple[HitState, Access]]:
        """HITs the worker can find now: live, with a free slot, not already taken by them,
        and not hidden by a DiscoverPreviewAndAccept requirement. A worker the requester
        blocked finds none (this marketplace has one requester)."""
        return [(state, access) for state, access in self._live_hits(worker_id)
                if access["discover"]]

    def hidden_hits(self, worker_id: str) -> list[tuple[HitState, Access]]:
        """Live HITs the worker cannot find because of a DiscoverPreviewAndAccept
        requirement they do not meet: the worker site says which, so a new worker does
        not face an empty list without a reason."""
        return [(state, access) for state, access in self._live_hits(worker_id)
                if not access["discover"]]

    def _live_hits(self, worker_id: str) -> list[tuple[HitState, Access]]:
        now = self.settle()
        if self.blocked(worker_id):
            return []
        rows = self.db.all(
            HIT_SELECT + " WHERE h.disposed = 0 AND h.expiration > ? AND h.hit_id NOT IN "
            f"(SELECT hit_id FROM assignments WHERE worker_id = ? AND status IN {_HOLDS_SLOT_SQL})"
            " ORDER BY h.created, h.rowid",
            (now, worker_id),
        )
        return [(state, self.access(worker_id, state.requirements))
                for state in self.states(rows, now) if state.assignable]

    def accept(self, worker_id: str, hit_id: str) -> sqlite3.Row:
        """Give the worker an assignment of the HIT, if a slot is free and they qualify."""
        self.settle()
        with self.db.transaction() as db:
            now = db.now()
            self.ensure_worker(worker_id)
            row = self.worker_hit(hit_id)
            state = self.state(row, now)
            if self.blocked(worker_id):
                raise WorkerError(f"worker {worker_id} is blocked by the requester of HIT "
                                  f"{hit_id} and cannot accept its HITs", 403)
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
            self.events.emit("AssignmentAccepted", now, row["hit_type_id"], hit_id,
                             assignment_id)
            self.sweep_events(now)
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
            hit = self.require_hit(row["hit_id"])
            self.events.emit("AssignmentReturned", db.now(), hit["hit_type_id"],
                             hit["hit_id"], row["assignment_id"])
            self.sweep_events(db.now())

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
            self.events.emit("AssignmentSubmitted", now, hit["hit_type_id"], hit["hit_id"],
                             assignment_id)
        self.settle()  # an auto-approval delay of 0 approves at once; HITReviewable
        return self._existing_assignment(assignment_id)

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
