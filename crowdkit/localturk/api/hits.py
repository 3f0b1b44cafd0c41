"""HIT types and HITs: create, read, list, extend, expire, retype and delete them."""

from __future__ import annotations

import json
from decimal import Decimal

from crowdkit.localturk import params as check
from crowdkit.localturk import quals
from crowdkit.localturk.api import reviews
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.api.shapes import hit_json
from crowdkit.localturk.db import new_id
from crowdkit.localturk.errors import (
    STATE_CODES,
    ParameterValidationError,
    RequestError,
    out_of_range,
    wrong_state,
)
from crowdkit.localturk.fees import LARGE_HIT_ASSIGNMENTS
from crowdkit.localturk.market import HIT_SELECT
from crowdkit.localturk.params import Params
from crowdkit.localturk.xml import QuestionHTMLError, QuestionXMLError, parse_question

MAX_DURATION_S = 365 * 24 * 3600
DEFAULT_AUTO_APPROVAL_S = 30 * 24 * 3600
# The legacy ExtendHIT's ExpirationIncrementInSeconds ran from 60 s to a year; MTurk keeps
# those bounds for UpdateExpirationForHIT's extensions.
MIN_EXTENSION_S = 60


def hit_answer(api: Requester, hit_id: str) -> Answer:
    return {"HIT": hit_json(api.market.state(api.market.require_hit(hit_id), api.now()))}


# --- HIT types ---------------------------------------------------------------------------
def _hit_type_fields(api: Requester, params: Params) -> dict:
    requirements = quals.validate_requirements(
        params.get("QualificationRequirements") or [], api.market.known_qualification_type
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


def _register_hit_type(api: Requester, fields: dict) -> str:
    """Identical properties give the same HIT type, as on MTurk."""
    where = " AND ".join(f"{k} = ?" for k in fields)
    row = api.db.one(f"SELECT hit_type_id FROM hit_types WHERE deleted = 0 AND {where}",
                     list(fields.values()))
    if row is not None:
        return str(row["hit_type_id"])
    hit_type_id = new_id()
    columns = ", ".join(fields)
    api.db.execute(
        f"INSERT INTO hit_types (hit_type_id, {columns}, created) "
        f"VALUES (?, {', '.join('?' * len(fields))}, ?)",
        [hit_type_id, *fields.values(), api.now()],
    )
    return hit_type_id


def create_hit_type(api: Requester, params: Params) -> Answer:
    return {"HITTypeId": _register_hit_type(api, _hit_type_fields(api, params))}


# --- creating HITs -----------------------------------------------------------------------
def create_hit(api: Requester, params: Params) -> Answer:
    _check_hit_token(api, params)
    hit_type_id = _register_hit_type(api, _hit_type_fields(api, params))
    return _create_hit(api, hit_type_id, params)


def create_hit_with_hit_type(api: Requester, params: Params) -> Answer:
    hit_type_id = str(api.hit_type(check.text(params, "HITTypeId", 64))["hit_type_id"])
    _check_hit_token(api, params)
    return _create_hit(api, hit_type_id, params)


def _check_hit_token(api: Requester, params: Params) -> None:
    token = check.token(params)
    if token is None:
        return
    previous = api.used_token("hit", token)
    if previous is not None:
        raise RequestError(
            f'There is already a HIT which exists with the same UniqueRequestToken '
            f'"{token}". The HIT with ID "{previous}" already exists.',
            "AWS.MechanicalTurk.HitAlreadyExists",
        )


def _question(params: Params) -> str:
    """The Question, refused as MTurk refuses it: ParameterValidationError with its two
    wordings, one for XML (the document) and one for HTML5 (an HTMLQuestion's content)."""
    question = check.text(params, "Question", 10**6)
    try:
        parse_question(question)
    except QuestionHTMLError as exc:
        raise ParameterValidationError(
            "There was an error parsing the HTML5 data in your request.  Please make sure "
            f"the data is well-formed and validates as HTML5. Details: {exc}",
            "AWS.MechanicalTurk.HTMLParseError") from exc
    except QuestionXMLError as exc:
        raise ParameterValidationError(
            "There was an error parsing the XML question or answer data in your request. "
            "Please make sure the data is well-formed and validates against the "
            f"appropriate schema. Details: {exc}",
            "AWS.MechanicalTurk.XMLParseError") from exc
    return question


def _create_hit(api: Requester, hit_type_id: str, params: Params) -> Answer:
    if params.get("HITLayoutId"):
        raise RequestError("localturk does not support HIT layouts; pass a Question.",
                           "AWS.MechanicalTurk.HITLayoutDoesNotExist")
    question = _question(params)
    policies = reviews.policies(params)
    now = api.now()
    hit_id = new_id()
    api.db.execute(
        "INSERT INTO hits (hit_id, hit_type_id, question, max_assignments, expiration, "
        "requester_annotation, created, assignment_review_policy, hit_review_policy) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (hit_id, hit_type_id, question,
         check.integer(params, "MaxAssignments", 1, 1_000_000, 1),
         now + check.integer(params, "LifetimeInSeconds", 30, MAX_DURATION_S),
         check.text(params, "RequesterAnnotation", 255, needed=False), now, *policies),
    )
    api.market.ensure_funds(Decimal(0), now)
    api.remember_token("hit", check.token(params), hit_id)
    api.emit("HITCreated", api.market.require_hit(hit_id))
    return hit_answer(api, hit_id)


# --- reading and listing -----------------------------------------------------------------
def get_hit(api: Requester, params: Params) -> Answer:
    return hit_answer(api, check.text(params, "HITId", 64))


def list_hits(api: Requester, params: Params) -> Answer:
    size, after = check.page(params, "hits")
    rows = api.db.all(HIT_SELECT + " WHERE h.disposed = 0 AND h.rowid > ? "
                      "ORDER BY h.rowid LIMIT ?", (after, size))
    hits = [hit_json(s) for s in api.market.states(rows, api.now())]
    return check.listing("hits", "HITs", hits, [r["rid"] for r in rows])


def list_hits_for_qualification_type(api: Requester, params: Params) -> Answer:
    """HITs of any status that require the type, except deleted (disposed) ones."""
    type_id = api.known_type(check.text(params, "QualificationTypeId", 64))
    size, after = check.page(params, "hitsforqual")
    rows = api.db.all(
        HIT_SELECT + " WHERE h.disposed = 0 AND h.rowid > ? AND "
        "t.qualification_requirements LIKE ? ORDER BY h.rowid",
        (after, f'%"{type_id}"%'))
    rows = [r for r in rows if any(q["QualificationTypeId"] == type_id for q in
                                   json.loads(r["qualification_requirements"]))][:size]
    hits = [hit_json(s) for s in api.market.states(rows, api.now())]
    return check.listing("hitsforqual", "HITs", hits, [r["rid"] for r in rows])


# --- changing HITs -----------------------------------------------------------------------
def update_expiration_for_hit(api: Requester, params: Params) -> Answer:
    """MTurk API reference, UpdateExpirationForHIT: extend a HIT beyond its current
    expiration, or expire it at once with a time in the past (or 0); shortening its life
    to another future time is refused. An extension runs from the current expiration (from
    now for an expired HIT) and is 60 seconds to a year, as ExtendHIT's was."""
    hit = api.undeleted_hit(check.text(params, "HITId", 64))
    now = api.now()
    expire_at = check.timestamp(params, "ExpireAt")
    if expire_at <= now:
        if hit["expiration"] > now:
            api.db.execute("UPDATE hits SET expiration = ? WHERE hit_id = ?",
                           (now, hit["hit_id"]))
        return {}
    base = max(hit["expiration"], now)
    if expire_at < hit["expiration"]:
        raise out_of_range("ExpireAt", expire_at, "The expiration of a HIT can only be "
                           "extended, or set to a time in the past to expire it now.")
    if not MIN_EXTENSION_S <= expire_at - base <= MAX_DURATION_S:
        raise out_of_range("ExpireAt", expire_at, "An extension must be between 60 seconds "
                           "and 365 days.")
    api.db.execute("UPDATE hits SET expiration = ? WHERE hit_id = ?",
                   (expire_at, hit["hit_id"]))
    api.market.ensure_funds(Decimal(0), now)
    api.emit("HITExtended", hit)
    return {}


def delete_hit(api: Requester, params: Params) -> Answer:
    """Only a Reviewable or Reviewing HIT whose submitted work is all reviewed."""
    hit = api.hit(params)
    state = api.market.state(hit, api.now())
    if not state.reviewable:
        raise wrong_state("HIT", state.status, "Reviewing, Reviewable")
    if state.submitted:
        raise RequestError(
            f"This HIT has {state.submitted} submitted assignments that are neither "
            "approved nor rejected. This operation can be called when all submitted "
            "assignments have been approved or rejected.",
            STATE_CODES["HIT"],
        )
    api.market.dispose(hit, api.now())
    return {}


def create_additional_assignments_for_hit(api: Requester, params: Params) -> Answer:
    hit = api.undeleted_hit(check.text(params, "HITId", 64))
    extra = check.integer(params, "NumberOfAdditionalAssignments", 1, 1_000_000)
    token = api.fresh_token("extend", params)
    before = hit["max_assignments"]
    if before < LARGE_HIT_ASSIGNMENTS <= before + extra:
        raise RequestError(
            f"HIT {hit['hit_id']} was created with {before} assignments; a HIT with fewer "
            "than 10 assignments cannot be extended to 10 or more.",
            "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease",
        )
    api.db.execute("UPDATE hits SET max_assignments = ? WHERE hit_id = ?",
                   (before + extra, hit["hit_id"]))
    api.market.ensure_funds(Decimal(0), api.now())
    api.remember_token("extend", token, hit["hit_id"])
    api.emit("HITExtended", hit)
    return {}


def update_hit_type_of_hit(api: Requester, params: Params) -> Answer:
    """The HIT takes the new type's properties (title, reward, requirements, ...) in place
    of the old ones; the money held for its open slots follows the new reward."""
    hit = api.undeleted_hit(check.text(params, "HITId", 64))
    hit_type = api.hit_type(check.text(params, "HITTypeId", 64))
    api.db.execute("UPDATE hits SET hit_type_id = ? WHERE hit_id = ?",
                   (hit_type["hit_type_id"], hit["hit_id"]))
    api.market.ensure_funds(Decimal(0), api.now())
    return {}


OPERATIONS: dict[str, Operation] = {
    "CreateHITType": create_hit_type,
    "CreateHIT": create_hit,
    "CreateHITWithHITType": create_hit_with_hit_type,
    "GetHIT": get_hit,
    "ListHITs": list_hits,
    "ListHITsForQualificationType": list_hits_for_qualification_type,
    "UpdateExpirationForHIT": update_expiration_for_hit,
    "DeleteHIT": delete_hit,
    "CreateAdditionalAssignmentsForHIT": create_additional_assignments_for_hit,
    "UpdateHITTypeOfHIT": update_hit_type_of_hit,
}
