"""Qualification types, workers' qualifications and qualification requests."""

from __future__ import annotations

import json
import sqlite3

from crowdkit.localturk import params as check
from crowdkit.localturk import quals
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.api.shapes import (
    qualification_json,
    qualification_request_json,
    qualification_type_json,
    system_type_json,
)
from crowdkit.localturk.db import new_id
from crowdkit.localturk.errors import RequestError, invalid, missing, wrong_state
from crowdkit.localturk.params import Params

STATUSES = ("Active", "Inactive")
# ListQualificationTypes pages by a sort key, never by position: the system types first
# (keys below this), then the requester's in creation order (this + rowid).
OWN_KEYS = 100


# --- qualification types -------------------------------------------------------------------
def _settings(params: Params, row: dict) -> dict:
    """The settable properties of a type: `row` (the current ones) updated from params."""
    out = dict(row)
    if params.get("Description") is not None:
        out["description"] = check.text(params, "Description", 2000)
    for member, column in (("Test", "test"), ("AnswerKey", "answer_key")):
        if member in params:
            out[column] = check.text(params, member, 65535, needed=False)
    if "QualificationTypeStatus" in params:
        out["status"] = check.choice(params, "QualificationTypeStatus", STATUSES)
    for member, column in (("TestDurationInSeconds", "test_duration"),
                           ("RetryDelayInSeconds", "retry_delay")):
        if params.get(member) is not None:
            out[column] = check.integer(params, member, 0, 10**9)
    if "AutoGranted" in params:
        out["auto_granted"] = int(check.boolean(params, "AutoGranted"))
    if params.get("AutoGrantedValue") is not None:
        out["auto_granted_value"] = check.integer(params, "AutoGrantedValue", -(2**31),
                                                  2**31 - 1)
    if out.get("test") and out.get("auto_granted"):
        raise invalid("A QualificationType with a Test cannot be AutoGranted.")
    if out.get("test") and out.get("test_duration") is None:
        raise missing("TestDurationInSeconds")
    if out.get("answer_key") and not out.get("test"):
        raise invalid("An AnswerKey needs a Test.")
    return out


def create_qualification_type(api: Requester, params: Params) -> Answer:
    name = check.text(params, "Name", 1000)
    settings = _settings(params, {
        "description": check.text(params, "Description", 2000),
        "status": check.choice(params, "QualificationTypeStatus", STATUSES),
        "auto_granted_value": 1, "auto_granted": 0, "test": None, "answer_key": None,
        "test_duration": None, "retry_delay": None})
    if api.db.one("SELECT 1 FROM qualification_types WHERE name = ?", (name,)):
        raise RequestError(
            "You have already created a QualificationType with this name. A "
            "QualificationType's name must be unique among all of the QualificationTypes "
            "created by the same user.",
            "AWS.MechanicalTurk.QualificationTypeAlreadyExists",
        )
    type_id = new_id()
    api.db.execute(
        "INSERT INTO qualification_types (rowid, qualification_type_id, name, description, "
        "keywords, status, retry_delay, test, answer_key, test_duration, auto_granted, "
        "auto_granted_value, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (api.db.next_rowid("qualification_types"), type_id, name, settings["description"],
         check.text(params, "Keywords", 1000, needed=False) or "", settings["status"],
         settings["retry_delay"], settings["test"], settings["answer_key"],
         settings["test_duration"], settings["auto_granted"],
         settings["auto_granted_value"], api.now()),
    )
    return {"QualificationType": qualification_type_json(api.own_type(type_id))}


def get_qualification_type(api: Requester, params: Params) -> Answer:
    type_id = check.text(params, "QualificationTypeId", 64)
    if type_id in quals.SYSTEM_TYPES:
        return {"QualificationType": system_type_json(type_id)}
    return {"QualificationType": qualification_type_json(api.own_type(type_id))}


def update_qualification_type(api: Requester, params: Params) -> Answer:
    """MTurk API reference, UpdateQualificationType: every property but the name (and the
    keywords) can change; a Test needs TestDurationInSeconds and excludes AutoGranted."""
    row = api.own_type(check.text(params, "QualificationTypeId", 64))
    settings = _settings(params, dict(row))
    api.db.execute(
        "UPDATE qualification_types SET description = ?, status = ?, retry_delay = ?, "
        "test = ?, answer_key = ?, test_duration = ?, auto_granted = ?, "
        "auto_granted_value = ? WHERE qualification_type_id = ?",
        (settings["description"], settings["status"], settings["retry_delay"],
         settings["test"], settings["answer_key"], settings["test_duration"],
         settings["auto_granted"], settings["auto_granted_value"],
         row["qualification_type_id"]))
    return {"QualificationType": qualification_type_json(
        api.own_type(row["qualification_type_id"]))}


def delete_qualification_type(api: Requester, params: Params) -> Answer:
    """MTurk API reference, DeleteQualificationType: the type and the HIT types that
    require it go; workers keep the qualifications (HITs may still need them); pending
    requests are rejected; the name may be used again (MTurk: within 48 hours)."""
    row = api.own_type(check.text(params, "QualificationTypeId", 64))
    type_id, now = row["qualification_type_id"], api.now()
    api.db.execute("INSERT OR REPLACE INTO deleted_qualification_types "
                   "(qualification_type_id, name, deleted) VALUES (?, ?, ?)",
                   (type_id, row["name"], now))
    api.db.execute("DELETE FROM qualification_types WHERE qualification_type_id = ?",
                   (type_id,))
    api.db.execute("UPDATE qualification_requests SET status = 'Rejected', "
                   "resolved_time = ?, reason = 'The qualification type was deleted.' "
                   "WHERE qualification_type_id = ? AND status = 'Pending'", (now, type_id))
    for hit_type in api.db.all("SELECT hit_type_id, qualification_requirements FROM "
                               "hit_types WHERE deleted = 0 AND qualification_requirements "
                               "LIKE ?", (f'%"{type_id}"%',)):
        if any(r["QualificationTypeId"] == type_id
               for r in json.loads(hit_type["qualification_requirements"])):
            api.db.execute("UPDATE hit_types SET deleted = 1 WHERE hit_type_id = ?",
                           (hit_type["hit_type_id"],))
    return {}


def list_qualification_types(api: Requester, params: Params) -> Answer:
    """Yours (every one is requestable) and, unless MustBeOwnedByCaller, the system types
    (which are not); Query matches name, description and keywords."""
    if params.get("MustBeRequestable") is None:
        raise missing("MustBeRequestable")
    must_be_requestable = check.boolean(params, "MustBeRequestable")
    owned_only = check.boolean(params, "MustBeOwnedByCaller")
    query = (check.text(params, "Query", 1000, needed=False) or "").lower()
    size, after = check.page(params, "qualtypes")
    keyed = [(OWN_KEYS + r["rowid"], qualification_type_json(r)) for r in api.db.all(
        "SELECT rowid, * FROM qualification_types WHERE rowid > ? ORDER BY rowid",
        (max(after - OWN_KEYS, 0),))]
    if not owned_only:
        keyed = [(i, system_type_json(t)) for i, t in enumerate(quals.SYSTEM_TYPES)] + keyed
    found = [(key, t) for key, t in keyed if key > after
             and (not must_be_requestable or t["IsRequestable"])
             and query in " ".join([t["Name"], t["Description"], t.get("Keywords", "")]).lower()
             ][:size]
    return check.listing("qualtypes", "QualificationTypes", [t for _, t in found],
                         [key for key, _ in found])


# --- workers' qualifications ------------------------------------------------------------------
def associate_qualification_with_worker(api: Requester, params: Params) -> Answer:
    row = api.own_type(check.text(params, "QualificationTypeId", 64))
    worker_id = check.text(params, "WorkerId", 64)
    value = check.integer(params, "IntegerValue", -(2**31), 2**31 - 1, 1)
    check.boolean(params, "SendNotification")
    api.market.set_qualification(worker_id, row["qualification_type_id"], value)
    return {}


def _held(api: Requester, type_id: str, worker_id: str, status: str | None = "Granted"
          ) -> sqlite3.Row:
    sql = "SELECT * FROM qualifications WHERE qualification_type_id = ? AND worker_id = ?"
    args: tuple = (type_id, worker_id)
    if status is not None:
        sql, args = sql + " AND status = ?", (*args, status)
    row = api.db.one(sql, args)
    if row is None:
        raise RequestError(f"Worker {worker_id} does not hold QualificationType {type_id}.",
                           "AWS.MechanicalTurk.QualificationDoesNotExist")
    return row


def disassociate_qualification_from_worker(api: Requester, params: Params) -> Answer:
    row = api.own_type(check.text(params, "QualificationTypeId", 64))
    worker_id = check.text(params, "WorkerId", 64)
    check.text(params, "Reason", 1024, needed=False)
    _held(api, row["qualification_type_id"], worker_id)
    api.market.set_qualification(worker_id, row["qualification_type_id"], None)
    return {}


def get_qualification_score(api: Requester, params: Params) -> Answer:
    """MTurk API reference, GetQualificationScore: only the owner of a type can read a
    worker's value of it; a revoked qualification answers with Status Revoked."""
    row = api.own_type(check.text(params, "QualificationTypeId", 64))
    worker_id = check.text(params, "WorkerId", 64)
    held = _held(api, row["qualification_type_id"], worker_id, status=None)
    return {"Qualification": qualification_json(held)}


def list_workers_with_qualification_type(api: Requester, params: Params) -> Answer:
    row = api.own_type(check.text(params, "QualificationTypeId", 64))
    status = check.choice(params, "Status", ("Granted", "Revoked"), "Granted")
    size, after = check.page(params, "workers")
    rows = api.db.all(
        "SELECT rowid AS rid, * FROM qualifications WHERE qualification_type_id = ? "
        "AND status = ? AND rowid > ? ORDER BY rowid LIMIT ?",
        (row["qualification_type_id"], status, after, size),
    )
    return check.listing("workers", "Qualifications", [qualification_json(r) for r in rows],
                         [r["rid"] for r in rows])


# --- qualification requests -------------------------------------------------------------------
def list_qualification_requests(api: Requester, params: Params) -> Answer:
    """The pending requests (of one of your types, or of all of them)."""
    type_id = check.text(params, "QualificationTypeId", 64, needed=False)
    if type_id is not None:
        api.own_type(type_id)
    size, after = check.page(params, "qualrequests")
    sql = "SELECT * FROM qualification_requests WHERE status = 'Pending' AND id > ?"
    args: tuple = (after,)
    if type_id is not None:
        sql, args = sql + " AND qualification_type_id = ?", (*args, type_id)
    rows = api.db.all(sql + " ORDER BY id LIMIT ?", (*args, size))
    return check.listing("qualrequests", "QualificationRequests",
                         [qualification_request_json(r) for r in rows], [r["id"] for r in rows])


def _pending(api: Requester, params: Params) -> sqlite3.Row:
    request = api.market.pending_request(check.text(params, "QualificationRequestId", 64))
    if request["status"] != "Pending":
        raise wrong_state("QualificationRequest", request["status"], "Pending")
    return request


def accept_qualification_request(api: Requester, params: Params) -> Answer:
    request = _pending(api, params)
    value = check.integer(params, "IntegerValue", -(2**31), 2**31 - 1, 1)
    api.market.set_qualification(request["worker_id"], request["qualification_type_id"],
                                 value)
    api.db.execute("UPDATE qualification_requests SET status = 'Granted', resolved_time = ? "
                   "WHERE request_id = ?", (api.now(), request["request_id"]))
    return {}


def reject_qualification_request(api: Requester, params: Params) -> Answer:
    request = _pending(api, params)
    reason = check.text(params, "Reason", 1024, needed=False)
    api.db.execute("UPDATE qualification_requests SET status = 'Rejected', resolved_time = ?, "
                   "reason = ? WHERE request_id = ?",
                   (api.now(), reason, request["request_id"]))
    return {}


OPERATIONS: dict[str, Operation] = {
    "CreateQualificationType": create_qualification_type,
    "GetQualificationType": get_qualification_type,
    "ListQualificationTypes": list_qualification_types,
    "UpdateQualificationType": update_qualification_type,
    "DeleteQualificationType": delete_qualification_type,
    "AssociateQualificationWithWorker": associate_qualification_with_worker,
    "DisassociateQualificationFromWorker": disassociate_qualification_from_worker,
    "GetQualificationScore": get_qualification_score,
    "ListWorkersWithQualificationType": list_workers_with_qualification_type,
    "ListQualificationRequests": list_qualification_requests,
    "AcceptQualificationRequest": accept_qualification_request,
    "RejectQualificationRequest": reject_qualification_request,
}
