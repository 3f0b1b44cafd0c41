"""Assignments and money: list and read submitted work, approve, reject, bonus, balance."""

from __future__ import annotations

from decimal import Decimal

from crowdkit.localturk import params as check
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.api.hits import hit_answer
from crowdkit.localturk.api.shapes import assignment_json, bonus_json
from crowdkit.localturk.errors import (
    STATE_CODES,
    RequestError,
    invalid,
    out_of_range,
    wrong_state,
)
from crowdkit.localturk.fees import bonus_fee
from crowdkit.localturk.market import REQUESTER_VISIBLE
from crowdkit.localturk.params import Params

# MTurk API reference, ApproveAssignment: a rejection can be overridden "only on rejected
# assignments that were submitted within the previous 30 days".
OVERRIDE_WINDOW_S = 30 * 24 * 3600


def list_assignments_for_hit(api: Requester, params: Params) -> Answer:
    hit = api.hit(params)
    statuses = params.get("AssignmentStatuses") or list(REQUESTER_VISIBLE)
    if not isinstance(statuses, list):
        raise out_of_range("AssignmentStatuses", statuses, "It must be a list.")
    for status in statuses:
        if status not in REQUESTER_VISIBLE:
            raise out_of_range("AssignmentStatuses", status,
                               "It must be Submitted, Approved or Rejected.")
    size, after = check.page(params, "assignments")
    marks = ",".join("?" * len(statuses))
    rows = api.db.all(
        f"SELECT rowid AS rid, * FROM assignments WHERE hit_id = ? AND status IN ({marks}) "
        "AND rowid > ? ORDER BY rowid LIMIT ?",
        (hit["hit_id"], *statuses, after, size),
    )
    return check.listing("assignments", "Assignments", [assignment_json(r) for r in rows],
                         [r["rid"] for r in rows])


def get_assignment(api: Requester, params: Params) -> Answer:
    row = api.assignment(check.text(params, "AssignmentId", 64))
    return {"Assignment": assignment_json(row), **hit_answer(api, row["hit_id"])}


def approve_assignment(api: Requester, params: Params) -> Answer:
    row = api.assignment(check.text(params, "AssignmentId", 64))
    feedback = check.text(params, "RequesterFeedback", 1024, needed=False)
    override = check.boolean(params, "OverrideRejection")
    now = api.now()
    if row["status"] == "Rejected" and override:
        hit = api.undeleted_hit(row["hit_id"])
        if now > row["submit_time"] + OVERRIDE_WINDOW_S:
            raise RequestError(
                f"Assignment {row['assignment_id']} was submitted more than 30 days ago; a "
                "rejection can be overridden only within 30 days of submission.",
                STATE_CODES["assignment"])
        reward, fee = api.market.assignment_cost(hit)
        api.market.ensure_funds(reward + fee, now)
    elif row["status"] != "Submitted":
        raise wrong_state("assignment", row["status"], "Submitted")
    api.market.pay_and_approve(row, now, feedback)
    return {}


def reject_assignment(api: Requester, params: Params) -> Answer:
    """RequesterFeedback must be there, and may be empty (MTurk accepts "")."""
    row = api.assignment(check.text(params, "AssignmentId", 64))
    feedback = check.present_text(params, "RequesterFeedback", 1024)
    if row["status"] != "Submitted":
        raise wrong_state("assignment", row["status"], "Submitted")
    api.db.execute(
        "UPDATE assignments SET status = 'Rejected', rejection_time = ?, "
        "requester_feedback = ? WHERE assignment_id = ?",
        (api.now(), feedback, row["assignment_id"]),
    )
    api.emit("AssignmentRejected", api.market.require_hit(row["hit_id"]),
             row["assignment_id"])
    return {}


def send_bonus(api: Requester, params: Params) -> Answer:
    worker_id = check.text(params, "WorkerId", 64)
    amount = check.money(params, "BonusAmount", Decimal("0.01"))
    row = api.assignment(check.text(params, "AssignmentId", 64))
    reason = check.text(params, "Reason", 4096)
    token = api.fresh_token("bonus", params)
    if row["worker_id"] != worker_id:
        raise RequestError(
            f"Assignment {row['assignment_id']} was not done by worker {worker_id}.",
            "AWS.MechanicalTurk.InvalidParameterValue")
    now = api.now()
    fee = bonus_fee(amount)
    api.market.ensure_funds(amount + fee, now)
    refs = {"hit_id": row["hit_id"], "assignment_id": row["assignment_id"],
            "worker_id": worker_id}
    api.db.pay("bonus", amount, now, **refs)
    api.db.pay("bonus_fee", fee, now, **refs)
    api.db.execute(
        "INSERT INTO bonuses (assignment_id, hit_id, worker_id, amount, reason, "
        "grant_time) VALUES (?, ?, ?, ?, ?, ?)",
        (row["assignment_id"], row["hit_id"], worker_id, str(amount), reason, now),
    )
    api.remember_token("bonus", token, row["assignment_id"])
    return {}


def list_bonus_payments(api: Requester, params: Params) -> Answer:
    hit_id, assignment_id = params.get("HITId"), params.get("AssignmentId")
    if bool(hit_id) == bool(assignment_id):
        raise invalid("Exactly one of HITId and AssignmentId must be given.")
    if hit_id:
        api.hit(params)
    size, after = check.page(params, "bonuses")
    column, value = ("hit_id", hit_id) if hit_id else ("assignment_id", assignment_id)
    rows = api.db.all(
        f"SELECT * FROM bonuses WHERE {column} = ? AND id > ? ORDER BY id LIMIT ?",
        (value, after, size),
    )
    return check.listing("bonuses", "BonusPayments", [bonus_json(r) for r in rows],
                         [r["id"] for r in rows])


def get_file_upload_url(api: Requester, params: Params) -> Answer:
    """MTurk API reference, GetFileUploadURL: since 12 December 2017 no question can ask
    for a file (FileUploadAnswer is gone), so no assignment has one; MTurk's deprecated
    operation still checks its parameters and then has nothing to return."""
    row = api.assignment(check.text(params, "AssignmentId", 64))
    question = check.text(params, "QuestionIdentifier", 1000)
    raise RequestError(
        f"Assignment {row['assignment_id']} has no FileUploadAnswer for question "
        f"{question!r}: FileUploadAnswer is no longer supported (deprecated since "
        "December 12, 2017); ask workers to upload files to Amazon S3 instead.",
        "AWS.MechanicalTurk.FileUploadAnswerDoesNotExist")


def get_account_balance(api: Requester, params: Params) -> Answer:
    held = api.market.liability(api.now())
    return {"AvailableBalance": str(api.db.funds() - held), "OnHoldBalance": str(held)}


OPERATIONS: dict[str, Operation] = {
    "ListAssignmentsForHIT": list_assignments_for_hit,
    "GetAssignment": get_assignment,
    "ApproveAssignment": approve_assignment,
    "RejectAssignment": reject_assignment,
    "SendBonus": send_bonus,
    "ListBonusPayments": list_bonus_payments,
    "GetFileUploadURL": get_file_upload_url,
    "GetAccountBalance": get_account_balance,
}
