"""Workers as the marketplace knows them: profiles, qualification values, history, blocks and
qualification requests.

`WorkerRecords` is the part of `Market` (market.py) that concerns one worker rather than a
HIT; the requester API and the worker site reach it through the market.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from typing import TypedDict

from crowdkit.localturk import quals
from crowdkit.localturk.db import TurkDB, new_id
from crowdkit.localturk.errors import RequestError

WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")
# What the worker site's "experienced worker" start gives a new worker: enough for the
# requirements studies usually set (crowdkit's defaults ask for 95 % and 1,000 HITs).
EXPERIENCED = {quals.NUMBER_HITS_APPROVED: 5000, quals.PERCENT_ASSIGNMENTS_APPROVED: 99}


class Access(TypedDict):
    """What a worker's qualifications let them do with a HIT, and what they lack."""

    discover: bool
    preview: bool
    accept: bool
    unmet: list[str]  # the unmet requirements, described, with the worker's own value
    requestable: list[str]  # ids of unmet requester types the worker may ask for


class WorkerError(Exception):
    """Something a worker (or a simulated one) may not do; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def normalize_worker_id(text: str) -> str:
    """Worker ids look like MTurk's: 'A' then capitals and digits (e.g. A1B2C3D4E5)."""
    worker_id = (text or "").strip().upper()
    if not WORKER_ID.match(worker_id):
        raise WorkerError(
            f"worker id {text!r} must look like an MTurk worker id: 'A' followed by 1 to 63 "
            "capital letters or digits, e.g. A1TESTWORKER"
        )
    return worker_id


class WorkerRecords:
    """Per-worker state: each public method is one atomic step (or part of the caller's)."""

    db: TurkDB

    # --- profile and qualification values ----------------------------------------------
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
        """MTurk's system values from the worker's local history. Worker_PercentAssignments-
        Approved is, as MTurk's API reference defines it, the assignments approved over all
        the worker has submitted (still awaiting review ones included); 100 before the
        first submission, a choice the reference leaves open."""
        count: Counter[str] = Counter({status: n for status, n in self.db.all(
            "SELECT status, COUNT(*) FROM assignments WHERE worker_id = ? GROUP BY status",
            (worker_id,),
        )})
        if type_id == quals.NUMBER_HITS_APPROVED:
            return count["Approved"]
        submitted = count["Submitted"] + count["Approved"] + count["Rejected"]
        return 100 if submitted == 0 else (100 * count["Approved"]) // submitted

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

    def own_type(self, type_id: str) -> sqlite3.Row | None:
        """One of the requester's (undeleted) qualification types."""
        return self.db.one("SELECT * FROM qualification_types WHERE "
                           "qualification_type_id = ?", (type_id,))

    def known_qualification_type(self, type_id: str) -> bool:
        """A type a new HIT may require: a system type or one of the requester's, not
        deleted (MTurk: a deleted type can no longer be used to create HITs)."""
        return type_id in quals.SYSTEM_TYPES or self.own_type(type_id) is not None

    def type_name(self, type_id: str) -> str:
        if type_id in quals.SYSTEM_TYPES:
            return quals.SYSTEM_TYPES[type_id][0]
        row = self.db.one(
            "SELECT name FROM qualification_types WHERE qualification_type_id = ? UNION ALL "
            "SELECT name FROM deleted_qualification_types WHERE qualification_type_id = ?",
            (type_id, type_id))
        return row["name"] if row else type_id

    # --- what the worker may do -----------------------------------------------------------
    def access(self, worker_id: str, requirements: list[dict]) -> Access:
        """Which actions the worker's qualifications allow, and the requirements unmet."""
        unmet = [r for r in requirements
                 if not quals.meets(r, self.worker_value(worker_id, r["QualificationTypeId"]))]
        guards = {r["ActionsGuarded"] for r in unmet}
        return {
            "discover": "DiscoverPreviewAndAccept" not in guards,
            "preview": not guards & {"PreviewAndAccept", "DiscoverPreviewAndAccept"},
            "accept": not unmet,
            "unmet": [self.describe_requirement(r, worker_id) for r in unmet],
            "requestable": [r["QualificationTypeId"] for r in unmet
                            if self.can_request(worker_id, r["QualificationTypeId"]) is None],
        }

    def describe_requirement(self, requirement: dict, worker_id: str | None = None) -> str:
        """'Worker_NumberHITsApproved GreaterThanOrEqualTo 1000 (yours: 12)': the rule and,
        for a worker, what they have, so a new worker sees why a HIT is not for them."""
        type_id = requirement["QualificationTypeId"]
        text = quals.describe(requirement).replace(type_id, self.type_name(type_id), 1)
        if worker_id is None:
            return text
        value = self.worker_value(worker_id, type_id)
        if value is None:
            return f"{text} (you do not have it)"
        shown = value.label() if isinstance(value, quals.Locale) else str(value)
        return f"{text} (yours: {shown})"

    # --- blocks ---------------------------------------------------------------------------
    def blocked(self, worker_id: str) -> bool:
        return self.db.one("SELECT 1 FROM worker_blocks WHERE worker_id = ?",
                           (worker_id,)) is not None

    # --- qualification requests -------------------------------------------------------------
    def can_request(self, worker_id: str, type_id: str) -> str | None:
        """None when the worker may request the type now, else why not (for the site)."""
        row = self.own_type(type_id)
        if row is None:
            return "only the requester's own qualification types can be requested"
        if row["status"] != "Active":
            return "the qualification type is inactive"
        if row["test"]:
            return "it has a qualification test, which localturk cannot show"
        last = self.db.one(
            "SELECT * FROM qualification_requests WHERE qualification_type_id = ? AND "
            "worker_id = ? ORDER BY id DESC LIMIT 1", (type_id, worker_id))
        if last is None:
            return None
        if last["status"] == "Pending":
            return "your request is waiting for the requester"
        if row["retry_delay"] is None:  # MTurk: without RetryDelayInSeconds, one request
            return "this qualification can be requested only once"
        if self.db.now() < last["submit_time"] + row["retry_delay"]:
            return "you may ask again once the type's retry delay has passed"
        return None

    def request_qualification(self, worker_id: str, type_id: str) -> sqlite3.Row:
        """The worker asks for a qualification: auto-granted types are granted at once (the
        request is recorded as Granted), others wait for Accept/RejectQualificationRequest."""
        with self.db.transaction() as db:
            self.ensure_worker(worker_id)
            why_not = self.can_request(worker_id, type_id)
            if why_not is not None:
                raise WorkerError(f"cannot request qualification {type_id}: {why_not}", 409)
            row = self.own_type(type_id)
            assert row is not None  # can_request found it
            now = db.now()
            status = "Granted" if row["auto_granted"] else "Pending"
            request_id = new_id()
            db.execute(
                "INSERT INTO qualification_requests (request_id, qualification_type_id, "
                "worker_id, status, submit_time, resolved_time) VALUES (?, ?, ?, ?, ?, ?)",
                (request_id, type_id, worker_id, status, now,
                 now if status == "Granted" else None))
            if status == "Granted":
                self.set_qualification(worker_id, type_id, row["auto_granted_value"])
            return db.existing("SELECT * FROM qualification_requests WHERE request_id = ?",
                               (request_id,))

    def pending_request(self, request_id: str) -> sqlite3.Row:
        row = self.db.one("SELECT * FROM qualification_requests WHERE request_id = ?",
                          (request_id,))
        if row is None:
            raise RequestError(f"QualificationRequest {request_id} does not exist.",
                               "AWS.MechanicalTurk.QualificationRequestDoesNotExist")
        return row

    def worker_requests(self, worker_id: str) -> list[sqlite3.Row]:
        return self.db.all(
            "SELECT r.*, t.name FROM qualification_requests r JOIN qualification_types t "
            "USING (qualification_type_id) WHERE r.worker_id = ? ORDER BY r.id DESC",
            (worker_id,))
