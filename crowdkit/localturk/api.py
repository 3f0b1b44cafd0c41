"""The requester API: MTurk's JSON operations, with MTurk's semantics where crowdkit needs them.

`RequesterAPI.call(operation, params)` takes the operation name (the part of X-Amz-Target
after the dot) and the decoded JSON body, and returns the JSON answer or raises a
`TurkError`. Member names follow botocore's model of MTurk (2017-01-17). Each call runs in
one transaction: a refused call changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

from crowdkit.localturk import params as check
from crowdkit.localturk import quals
from crowdkit.localturk.db import new_id
from crowdkit.localturk.errors import (
    RequestError,
    UnknownOperation,
    missing,
    out_of_range,
    wrong_state,
)
from crowdkit.localturk.fees import LARGE_HIT_ASSIGNMENTS, bonus_fee
from crowdkit.localturk.market import HIT_SELECT, REQUESTER_VISIBLE, HitState, Market
from crowdkit.localturk.xml import QuestionXMLError, parse_question

TOKEN_LIFETIME_S = 24 * 3600
MAX_DURATION_S = 365 * 24 * 3600
DEFAULT_AUTO_APPROVAL_S = 30 * 24 * 3600

OPERATIONS = {
    "CreateHITType": "create_hit_type",
    "CreateHIT": "create_hit",
    "CreateHITWithHITType": "create_hit_with_hit_type",
    "GetHIT": "get_hit",
    "ListHITs": "list_hits",
    "UpdateExpirationForHIT": "update_expiration_for_hit",
    "DeleteHIT": "delete_hit",
    "CreateAdditionalAssignmentsForHIT": "create_additional_assignments_for_hit",
    "ListAssignmentsForHIT": "list_assignments_for_hit",
    "GetAssignment": "get_assignment",
    "ApproveAssignment": "approve_assignment",
    "RejectAssignment": "reject_assignment",
    "SendBonus": "send_bonus",
    "ListBonusPayments": "list_bonus_payments",
    "CreateQualificationType": "create_qualification_type",
    "ListQualificationTypes": "list_qualification_types",
    "GetQualificationType": "get_qualification_type",
    "AssociateQualificationWithWorker": "associate_qualification_with_worker",
    "DisassociateQualificationFromWorker": "disassociate_qualification_from_worker",
    "ListWorkersWithQualificationType": "list_workers_with_qualification_type",
    "NotifyWorkers": "notify_workers",
    "GetAccountBalance": "get_account_balance",
}


class RequesterAPI:
    """One method per MTurk operation; see OPERATIONS for the names on the wire."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.db = market.db

    def call(self, operation: str, params: dict) -> dict:
        method = OPERATIONS.get(operation)
        if method is None:
            raise UnknownOperation(operation)
        self.market.settle()
        with self.db.transaction():
            return getattr(self, method)(params or {})

    # --- answers ----------------------------------------------------------------------
    @staticmethod
    def hit_json(state: HitState) -> dict:
        row = state.row
        return check.drop_none({
            "HITId": row["hit_id"],
            "HITTypeId": row["hit_type_id"],
            "HITGroupId": row["hit_type_id"],
            "CreationTime": row["created"],
            "Title": row["title"],
            "Description": row["description"],
            "Question": row["question"],
            "Keywords": row["keywords"],
            "HITStatus": state.status,
            "MaxAssignments": row["max_assignments"],
            "Reward": row["reward"],
            "AutoApprovalDelayInSeconds": row["auto_approval_delay"],
            "Expiration": row["expiration"],
            "AssignmentDurationInSeconds": row["assignment_duration"],
            "RequesterAnnotation": row["requester_annotation"],
            "QualificationRequirements": state.requirements,
            "HITReviewStatus": "NotReviewed",
            "NumberOfAssignmentsPending": state.in_progress,
            "NumberOfAssignmentsAvailable": state.available,
            "NumberOfAssignmentsCompleted": state.reviewed,
        })

    @staticmethod
    def assignment_json(row: sqlite3.Row) -> dict:
        return check.drop_none({
            "AssignmentId": row["assignment_id"],
            "WorkerId": row["worker_id"],
            "HITId": row["hit_id"],
            "AssignmentStatus": row["status"],
            "AutoApprovalTime": row["auto_approval_time"],
            "AcceptTime": row["accept_time"],
            "SubmitTime": row["submit_time"],
            "ApprovalTime": row["approval_time"],
            "RejectionTime": row["rejection_time"],
            "Deadline": row["deadline"],
            "Answer": row["answer"],
            "RequesterFeedback": row["requester_feedback"],
        })

    def _undeleted_hit(self, hit_id: str) -> sqlite3.Row:
        """The HIT, refused as MTurk refuses changes to a deleted (Disposed) one."""
        hit = self.market.require_hit(hit_id)
        if hit["disposed"]:
            raise wrong_state("HIT", "Disposed", "Assignable, Unassignable, Reviewable")
        return hit

    def _hit_answer(self, hit_id: str) -> dict:
        return {"HIT": self.hit_json(self.market.state(self.market.require_hit(hit_id),
                                                       self.db.now()))}

    # --- HIT types and HITs -------------------------------------------------------------
    def _hit_type_fields(self, params: dict) -> dict:
        requirements = quals.validate_requirements(
            params.get("QualificationRequirements") or [], self.market.known_qualification_type
        )
        return {
            "title": check.text(params, "Title", 128),
            "description": check.text(params, "Description", 2000),
            "keywords": check.text(params, "Keywords", 1000, needed=False) or "",
            "reward": str(check.money(params, "Reward", Decimal("0.01"))),
            "assignment_duration": check.integer(params, "AssignmentDurationInSeconds", 30,
                                            MAX_DURATION_S),
            "auto_approval_delay": check.integer(params, "AutoApprovalDelayInSeconds", 0,
                                            DEFAULT_AUTO_APPROVAL_S, DEFAULT_AUTO_APPROVAL_S),
            "qualification_requirements": json.dumps(requirements, sort_keys=True),
        }

    def _register_hit_type(self, fields: dict) -> str:
        """Identical properties give the same HIT type, as on MTurk."""
        where = " AND ".join(f"{k} = ?" for k in fields)
        row = self.db.one(f"SELECT hit_type_id FROM hit_types WHERE {where}",
                          list(fields.values()))
        if row is not None:
            return row["hit_type_id"]
        hit_type_id = new_id()
        columns = ", ".join(fields)
        self.db.execute(
            f"INSERT INTO hit_types (hit_type_id, {columns}, created) "
            f"VALUES (?, {', '.join('?' * len(fields))}, ?)",
            [hit_type_id, *fields.values(), self.db.now()],
        )
        return hit_type_id

    def create_hit_type(self, params: dict) -> dict:
        return {"HITTypeId": self._register_hit_type(self._hit_type_fields(params))}

    def create_hit(self, params: dict) -> dict:
        self._check_hit_token(params)
        hit_type_id = self._register_hit_type(self._hit_type_fields(params))
        return self._create_hit(hit_type_id, params)

    def create_hit_with_hit_type(self, params: dict) -> dict:
        hit_type_id = check.text(params, "HITTypeId", 64)
        if self.db.one("SELECT 1 FROM hit_types WHERE hit_type_id = ?", (hit_type_id,)) is None:
            raise RequestError(f"HITType {hit_type_id} does not exist.",
                               "AWS.MechanicalTurk.HITTypeDoesNotExist")
        self._check_hit_token(params)
        return self._create_hit(hit_type_id, params)

    def _check_hit_token(self, params: dict) -> None:
        token = check.token(params)
        if token is None:
            return
        previous = self._used_token("hit", token)
        if previous is not None:
            raise RequestError(
                f'There is already a HIT which exists with the same UniqueRequestToken '
                f'"{token}". The HIT with ID "{previous}" already exists.',
                "AWS.MechanicalTurk.HitAlreadyExists",
            )

    def _fresh_token(self, scope: str, params: dict) -> str | None:
        """The request's UniqueRequestToken, refused as MTurk does when already used."""
        token = check.token(params)
        if token is not None and self._used_token(scope, token) is not None:
            raise RequestError(f'The idempotency token "{token}" has already been processed.',
                               "AWS.MechanicalTurk.DuplicateRequest")
        return token

    def _used_token(self, scope: str, token: str) -> str | None:
        """The result a token already produced within MTurk's 24-hour window, if any."""
        row = self.db.one(
            "SELECT result FROM request_tokens WHERE scope = ? AND token = ? AND created > ?",
            (scope, token, self.db.now() - TOKEN_LIFETIME_S),
        )
        return None if row is None else row["result"]

    def _remember_token(self, scope: str, token: str | None, result: str) -> None:
        if token is not None:
            self.db.execute(
                "INSERT OR REPLACE INTO request_tokens (scope, token, created, result) "
                "VALUES (?, ?, ?, ?)",
                (scope, token, self.db.now(), result),
            )

    def _create_hit(self, hit_type_id: str, params: dict) -> dict:
        if params.get("HITLayoutId"):
            raise RequestError("localturk does not support HIT layouts; pass a Question.",
                               "AWS.MechanicalTurk.HITLayoutDoesNotExist")
        question = check.text(params, "Question", 10**6)
        try:
            parse_question(question)
        except QuestionXMLError as exc:
            raise RequestError(
                "There was an error parsing the XML question or answer data in your request. "
                "Please make sure the data is well-formed and validates against the "
                f"appropriate schema. Details: {exc}",
                "AWS.MechanicalTurk.XMLParseError",
            ) from exc
        now = self.db.now()
        hit_id = new_id()
        self.db.execute(
            "INSERT INTO hits (hit_id, hit_type_id, question, max_assignments, expiration, "
            "requester_annotation, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (hit_id, hit_type_id, question,
             check.integer(params, "MaxAssignments", 1, 1_000_000, 1),
             now + check.integer(params, "LifetimeInSeconds", 30, MAX_DURATION_S),
             check.text(params, "RequesterAnnotation", 255, needed=False), now),
        )
        self.market.ensure_funds(Decimal(0), now)
        self._remember_token("hit", check.token(params), hit_id)
        return self._hit_answer(hit_id)

    def get_hit(self, params: dict) -> dict:
        return self._hit_answer(check.text(params, "HITId", 64))

    def list_hits(self, params: dict) -> dict:
        size, after = check.page(params, "hits")
        rows = self.db.all(
            HIT_SELECT + " WHERE h.disposed = 0 AND h.rowid > ? ORDER BY h.rowid LIMIT ?",
            (after, size + 1),
        )
        states = self.market.states(rows[:size], self.db.now())
        hits = [self.hit_json(s) for s in states]
        return {"NumResults": len(hits), "HITs": hits,
                **check.next_token("hits", rows, size, lambda r: r["rid"])}

    def update_expiration_for_hit(self, params: dict) -> dict:
        hit = self._undeleted_hit(check.text(params, "HITId", 64))
        now = self.db.now()
        expire_at = max(check.timestamp(params, "ExpireAt"), now)
        if expire_at > now + MAX_DURATION_S:
            raise out_of_range("ExpireAt", expire_at, "It must be within a year from now.")
        self.db.execute("UPDATE hits SET expiration = ? WHERE hit_id = ?",
                        (expire_at, hit["hit_id"]))
        self.market.ensure_funds(Decimal(0), now)
        return {}

    def delete_hit(self, params: dict) -> dict:
        hit = self.market.require_hit(check.text(params, "HITId", 64))
        state = self.market.state(hit, self.db.now())
        if state.status != "Reviewable":
            raise wrong_state("HIT", state.status, "Reviewable")
        if state.submitted:
            raise RequestError(
                f"This HIT has {state.submitted} submitted assignments that are neither "
                "approved nor rejected. This operation can be called when all submitted "
                "assignments have been approved or rejected.",
                "AWS.MechanicalTurk.InvalidHITState",
            )
        self.db.execute("UPDATE hits SET disposed = 1 WHERE hit_id = ?", (hit["hit_id"],))
        return {}

    def create_additional_assignments_for_hit(self, params: dict) -> dict:
        hit = self._undeleted_hit(check.text(params, "HITId", 64))
        extra = check.integer(params, "NumberOfAdditionalAssignments", 1, 1_000_000)
        token = self._fresh_token("extend", params)
        before = hit["max_assignments"]
        if before < LARGE_HIT_ASSIGNMENTS <= before + extra:
            raise RequestError(
                f"HIT {hit['hit_id']} was created with {before} assignments; a HIT with fewer "
                "than 10 assignments cannot be extended to 10 or more.",
                "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease",
            )
        self.db.execute("UPDATE hits SET max_assignments = ? WHERE hit_id = ?",
                        (before + extra, hit["hit_id"]))
        self.market.ensure_funds(Decimal(0), self.db.now())
        self._remember_token("extend", token, hit["hit_id"])
        return {}

    # --- assignments and payments -------------------------------------------------------
    def list_assignments_for_hit(self, params: dict) -> dict:
        hit = self.market.require_hit(check.text(params, "HITId", 64))
        statuses = params.get("AssignmentStatuses") or list(REQUESTER_VISIBLE)
        for status in statuses:
            if status not in REQUESTER_VISIBLE:
                raise out_of_range("AssignmentStatuses", status,
                                   "It must be Submitted, Approved or Rejected.")
        size, after = check.page(params, "assignments")
        marks = ",".join("?" * len(statuses))
        rows = self.db.all(
            f"SELECT rowid AS rid, * FROM assignments WHERE hit_id = ? AND status IN ({marks}) "
            "AND rowid > ? ORDER BY rowid LIMIT ?",
            (hit["hit_id"], *statuses, after, size + 1),
        )
        found = [self.assignment_json(r) for r in rows[:size]]
        return {"NumResults": len(found), "Assignments": found,
                **check.next_token("assignments", rows, size, lambda r: r["rid"])}

    def _assignment(self, assignment_id: str) -> sqlite3.Row:
        row = self.market.assignment(assignment_id)
        if row is None or row["status"] not in REQUESTER_VISIBLE:
            raise RequestError(f"Assignment {assignment_id} does not exist.",
                               "AWS.MechanicalTurk.AssignmentDoesNotExist")
        return row

    def get_assignment(self, params: dict) -> dict:
        row = self._assignment(check.text(params, "AssignmentId", 64))
        return {"Assignment": self.assignment_json(row), **self._hit_answer(row["hit_id"])}

    def approve_assignment(self, params: dict) -> dict:
        row = self._assignment(check.text(params, "AssignmentId", 64))
        feedback = check.text(params, "RequesterFeedback", 1024, needed=False)
        now = self.db.now()
        if row["status"] == "Rejected" and params.get("OverrideRejection"):
            hit = self._undeleted_hit(row["hit_id"])
            reward, fee = self.market.assignment_cost(hit)
            self.market.ensure_funds(reward + fee, now)
        elif row["status"] != "Submitted":
            raise wrong_state("assignment", row["status"], "Submitted")
        self.market.pay_and_approve(row, now, feedback)
        return {}

    def reject_assignment(self, params: dict) -> dict:
        row = self._assignment(check.text(params, "AssignmentId", 64))
        feedback = check.text(params, "RequesterFeedback", 1024)
        if row["status"] != "Submitted":
            raise wrong_state("assignment", row["status"], "Submitted")
        self.db.execute(
            "UPDATE assignments SET status = 'Rejected', rejection_time = ?, "
            "requester_feedback = ? WHERE assignment_id = ?",
            (self.db.now(), feedback, row["assignment_id"]),
        )
        return {}

    def send_bonus(self, params: dict) -> dict:
        worker_id = check.text(params, "WorkerId", 64)
        amount = check.money(params, "BonusAmount", Decimal("0.01"))
        row = self._assignment(check.text(params, "AssignmentId", 64))
        reason = check.text(params, "Reason", 4096)
        token = self._fresh_token("bonus", params)
        if row["worker_id"] != worker_id:
            raise RequestError(
                f"Assignment {row['assignment_id']} was not done by worker {worker_id}.",
                "AWS.MechanicalTurk.InvalidParameterValue")
        now = self.db.now()
        fee = bonus_fee(amount)
        self.market.ensure_funds(amount + fee, now)
        refs = {"hit_id": row["hit_id"], "assignment_id": row["assignment_id"],
                "worker_id": worker_id}
        self.db.pay("bonus", amount, now, **refs)
        self.db.pay("bonus_fee", fee, now, **refs)
        self.db.execute(
            "INSERT INTO bonuses (assignment_id, hit_id, worker_id, amount, reason, "
            "grant_time) VALUES (?, ?, ?, ?, ?, ?)",
            (row["assignment_id"], row["hit_id"], worker_id, str(amount), reason, now),
        )
        self._remember_token("bonus", token, row["assignment_id"])
        return {}

    def list_bonus_payments(self, params: dict) -> dict:
        hit_id, assignment_id = params.get("HITId"), params.get("AssignmentId")
        if bool(hit_id) == bool(assignment_id):
            raise RequestError("Exactly one of HITId and AssignmentId must be given.",
                               "AWS.MechanicalTurk.InvalidParameterValue")
        if hit_id:
            self.market.require_hit(hit_id)
        size, after = check.page(params, "bonuses")
        column, value = ("hit_id", hit_id) if hit_id else ("assignment_id", assignment_id)
        rows = self.db.all(
            f"SELECT * FROM bonuses WHERE {column} = ? AND id > ? ORDER BY id LIMIT ?",
            (value, after, size + 1),
        )
        payments = [{"WorkerId": r["worker_id"], "BonusAmount": r["amount"],
                     "AssignmentId": r["assignment_id"], "Reason": r["reason"],
                     "GrantTime": r["grant_time"]} for r in rows[:size]]
        return {"NumResults": len(payments), "BonusPayments": payments,
                **check.next_token("bonuses", rows, size, lambda r: r["id"])}

    # --- qualifications -----------------------------------------------------------------
    @staticmethod
    def qualification_type_json(row: sqlite3.Row) -> dict:
        return check.drop_none({
            "QualificationTypeId": row["qualification_type_id"],
            "CreationTime": row["created"],
            "Name": row["name"],
            "Description": row["description"],
            "Keywords": row["keywords"] or None,
            "QualificationTypeStatus": row["status"],
            "Test": row["test"],
            "TestDurationInSeconds": row["test_duration"],
            "AnswerKey": row["answer_key"],
            "RetryDelayInSeconds": row["retry_delay"],
            "IsRequestable": bool(row["test"]) or bool(row["auto_granted"]),
            "AutoGranted": bool(row["auto_granted"]),
            "AutoGrantedValue": row["auto_granted_value"] if row["auto_granted"] else None,
        })

    @staticmethod
    def system_type_json(type_id: str) -> dict:
        name, description = quals.SYSTEM_TYPES[type_id]
        return {"QualificationTypeId": type_id, "CreationTime": 0.0, "Name": name,
                "Description": description, "QualificationTypeStatus": "Active",
                "IsRequestable": False, "AutoGranted": False}

    def create_qualification_type(self, params: dict) -> dict:
        name = check.text(params, "Name", 1000)
        status = check.required(params, "QualificationTypeStatus")
        if status not in ("Active", "Inactive"):
            raise out_of_range("QualificationTypeStatus", status, "It must be Active or "
                               "Inactive.")
        test = check.text(params, "Test", 65535, needed=False)
        auto_granted = bool(params.get("AutoGranted", False))
        if test and auto_granted:
            raise RequestError("A QualificationType with a Test cannot be AutoGranted.",
                               "AWS.MechanicalTurk.InvalidParameterValue")
        if test and params.get("TestDurationInSeconds") is None:
            raise missing("TestDurationInSeconds")
        if self.db.one("SELECT 1 FROM qualification_types WHERE name = ?", (name,)):
            raise RequestError(
                "You have already created a QualificationType with this name. A "
                "QualificationType's name must be unique among all of the QualificationTypes "
                "created by the same user.",
                "AWS.MechanicalTurk.QualificationTypeAlreadyExists",
            )
        type_id = new_id()
        self.db.execute(
            "INSERT INTO qualification_types (qualification_type_id, name, description, "
            "keywords, status, retry_delay, test, answer_key, test_duration, auto_granted, "
            "auto_granted_value, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (type_id, name, check.text(params, "Description", 2000),
             check.text(params, "Keywords", 1000, needed=False) or "", status,
             params.get("RetryDelayInSeconds"), test,
             check.text(params, "AnswerKey", 65535, needed=False),
             params.get("TestDurationInSeconds"), int(auto_granted),
             params.get("AutoGrantedValue", 1), self.db.now()),
        )
        return self.get_qualification_type({"QualificationTypeId": type_id})

    def _own_type(self, type_id: str) -> sqlite3.Row:
        row = self.db.one("SELECT * FROM qualification_types WHERE qualification_type_id = ?",
                          (type_id,))
        if row is None:
            raise RequestError(
                f"QualificationType {type_id} does not exist or is not owned by you.",
                "AWS.MechanicalTurk.QualificationTypeDoesNotExist")
        return row

    def get_qualification_type(self, params: dict) -> dict:
        type_id = check.text(params, "QualificationTypeId", 64)
        if type_id in quals.SYSTEM_TYPES:
            return {"QualificationType": self.system_type_json(type_id)}
        return {"QualificationType": self.qualification_type_json(self._own_type(type_id))}

    def list_qualification_types(self, params: dict) -> dict:
        must_be_requestable = check.required(params, "MustBeRequestable") is True
        types = [self.qualification_type_json(r) for r in
                 self.db.all("SELECT * FROM qualification_types ORDER BY rowid")]
        if not params.get("MustBeOwnedByCaller"):
            types += [self.system_type_json(t) for t in quals.SYSTEM_TYPES]
        query = (params.get("Query") or "").lower()
        types = [
            t for t in types
            if (not must_be_requestable or t["IsRequestable"])
            and query in " ".join([t["Name"], t["Description"], t.get("Keywords", "")]).lower()
        ]
        size, after = check.page(params, "qualtypes")
        numbered = list(enumerate(types))[after + 1: after + 2 + size]
        page = [t for _, t in numbered[:size]]
        return {"NumResults": len(page), "QualificationTypes": page,
                **check.next_token("qualtypes", numbered, size, lambda n: n[0])}

    def associate_qualification_with_worker(self, params: dict) -> dict:
        row = self._own_type(check.text(params, "QualificationTypeId", 64))
        worker_id = check.text(params, "WorkerId", 64)
        value = params.get("IntegerValue", 1)
        if isinstance(value, bool) or not isinstance(value, int):
            raise out_of_range("IntegerValue", value, "It must be a whole number.")
        self.market.set_qualification(worker_id, row["qualification_type_id"], value)
        return {}

    def disassociate_qualification_from_worker(self, params: dict) -> dict:
        row = self._own_type(check.text(params, "QualificationTypeId", 64))
        worker_id = check.text(params, "WorkerId", 64)
        held = self.db.one(
            "SELECT 1 FROM qualifications WHERE qualification_type_id = ? AND worker_id = ? "
            "AND status = 'Granted'", (row["qualification_type_id"], worker_id))
        if held is None:
            raise RequestError(
                f"Worker {worker_id} does not hold QualificationType "
                f"{row['qualification_type_id']}.",
                "AWS.MechanicalTurk.QualificationDoesNotExist")
        self.market.set_qualification(worker_id, row["qualification_type_id"], None)
        return {}

    def list_workers_with_qualification_type(self, params: dict) -> dict:
        row = self._own_type(check.text(params, "QualificationTypeId", 64))
        status = params.get("Status") or "Granted"
        if status not in ("Granted", "Revoked"):
            raise out_of_range("Status", status, "It must be Granted or Revoked.")
        size, after = check.page(params, "workers")
        rows = self.db.all(
            "SELECT rowid AS rid, * FROM qualifications WHERE qualification_type_id = ? "
            "AND status = ? AND rowid > ? ORDER BY rowid LIMIT ?",
            (row["qualification_type_id"], status, after, size + 1),
        )
        found = [{"QualificationTypeId": r["qualification_type_id"],
                  "WorkerId": r["worker_id"], "GrantTime": r["grant_time"],
                  "IntegerValue": r["integer_value"], "Status": r["status"]}
                 for r in rows[:size]]
        return {"NumResults": len(found), "Qualifications": found,
                **check.next_token("workers", rows, size, lambda r: r["rid"])}

    # --- other ----------------------------------------------------------------------------
    def notify_workers(self, params: dict) -> dict:
        subject = check.text(params, "Subject", 200)
        message = check.text(params, "MessageText", 4096)
        worker_ids = check.required(params, "WorkerIds")
        if not isinstance(worker_ids, list) or not 1 <= len(worker_ids) <= 100:
            raise out_of_range("WorkerIds", len(worker_ids), "Give between 1 and 100 ids.")
        failures = []
        for worker_id in worker_ids:
            reviewed = self.db.one(
                "SELECT 1 FROM assignments WHERE worker_id = ? AND status IN "
                "('Approved', 'Rejected') LIMIT 1", (worker_id,))
            if reviewed is None:
                failures.append({
                    "NotifyWorkersFailureCode": "HardFailure",
                    "NotifyWorkersFailureMessage": (
                        f"Cannot notify worker {worker_id}: you have not approved or "
                        "rejected any of their assignments."),
                    "WorkerId": worker_id,
                })
                continue
            self.db.execute(
                "INSERT INTO notifications (worker_id, subject, message, time) "
                "VALUES (?, ?, ?, ?)", (worker_id, subject, message, self.db.now()))
        return {"NotifyWorkersFailureStatuses": failures}

    def get_account_balance(self, params: dict) -> dict:
        now = self.db.now()
        held = self.market.liability(now)
        return {"AvailableBalance": str(self.db.funds() - held), "OnHoldBalance": str(held)}
