"""Reviewing HITs: ListReviewableHITs, UpdateHITReviewStatus, and review policies.

Review policies (CreateHIT's AssignmentReviewPolicy and HITReviewPolicy) are checked and
kept, and ListReviewPolicyResultsForHIT answers with them, but localturk does not run them:
its reports have no results and no actions (docs/localturk.md, known differences).
"""

from __future__ import annotations

import json

from crowdkit.localturk import params as check
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.api.shapes import hit_json, review_policy_json
from crowdkit.localturk.errors import invalid, wrong_state
from crowdkit.localturk.market import HIT_SELECT
from crowdkit.localturk.params import Params

# MTurk API reference, "Review Policies": the one assignment-level and the one HIT-level
# policy MTurk offers.
POLICY_NAMES = {"AssignmentReviewPolicy": "ScoreMyKnownAnswers/2011-09-01",
                "HITReviewPolicy": "SimplePlurality/2011-09-01"}
LEVELS = ("Assignment", "HIT")
REVIEWABLE = ("Reviewable", "Reviewing")
_BATCH = 200


def policies(params: Params) -> tuple[str | None, str | None]:
    """CreateHIT's review policies as stored JSON, each checked against MTurk's names."""
    out: list[str | None] = []
    for member, name in POLICY_NAMES.items():
        policy = params.get(member)
        if policy is None:
            out.append(None)
            continue
        if not isinstance(policy, dict) or policy.get("PolicyName") != name:
            raise invalid(f"{member}: PolicyName must be {name}.")
        parameters = policy.get("Parameters") or []
        if not isinstance(parameters, list) or not all(
                isinstance(p, dict) and isinstance(p.get("Key"), str) for p in parameters):
            raise invalid(f"{member}: Parameters must be a list of {{Key, Values, "
                          "MapEntries}}.")
        out.append(json.dumps({"PolicyName": name, "Parameters": parameters}))
    return out[0], out[1]


def list_reviewable_hits(api: Requester, params: Params) -> Answer:
    """MTurk API reference, ListReviewableHITs: the HITs with status Reviewable (default) or
    Reviewing, optionally of one HIT type."""
    status = check.choice(params, "Status", REVIEWABLE, "Reviewable")
    type_id = check.text(params, "HITTypeId", 64, needed=False)
    size, after = check.page(params, "reviewable")
    now = api.now()
    found: list[Answer] = []
    keys: list[int] = []
    while len(found) < size:
        where = " WHERE h.disposed = 0 AND h.rowid > ?" + (" AND h.hit_type_id = ?"
                                                            if type_id else "")
        rows = api.db.all(HIT_SELECT + where + " ORDER BY h.rowid LIMIT ?",
                          (after, *([type_id] if type_id else []), _BATCH))
        if not rows:
            break
        for state in api.market.states(rows, now):
            if state.status == status and len(found) < size:
                found.append(hit_json(state))
                keys.append(state.row["rid"])
        after = rows[-1]["rid"]
    return check.listing("reviewable", "HITs", found, keys)


def update_hit_review_status(api: Requester, params: Params) -> Answer:
    """MTurk API reference, UpdateHITReviewStatus: Revert false (the default) moves a
    Reviewable HIT to Reviewing; Revert true moves a Reviewing HIT back to Reviewable."""
    hit = api.hit(params)
    revert = check.boolean(params, "Revert")
    state = api.market.state(hit, api.now())
    wanted = "Reviewing" if revert else "Reviewable"
    if state.status != wanted:
        raise wrong_state("HIT", state.status, wanted)
    api.db.execute("UPDATE hits SET reviewing = ? WHERE hit_id = ?",
                   (0 if revert else 1, hit["hit_id"]))
    return {}


def list_review_policy_results_for_hit(api: Requester, params: Params) -> Answer:
    hit = api.hit(params)
    levels = params.get("PolicyLevels") or list(LEVELS)
    if not isinstance(levels, list) or any(level not in LEVELS for level in levels):
        raise invalid("PolicyLevels must be a list of Assignment and HIT.")
    check.boolean(params, "RetrieveActions")
    check.boolean(params, "RetrieveResults")
    check.page(params, "policyresults")
    out: Answer = {"HITId": hit["hit_id"]}
    empty: Answer = {"ReviewResults": [], "ReviewActions": []}
    if "Assignment" in levels:
        policy = review_policy_json(hit["assignment_review_policy"])
        if policy is not None:
            out["AssignmentReviewPolicy"] = policy
        out["AssignmentReviewReport"] = dict(empty)
    if "HIT" in levels:
        policy = review_policy_json(hit["hit_review_policy"])
        if policy is not None:
            out["HITReviewPolicy"] = policy
        out["HITReviewReport"] = dict(empty)
    return out


OPERATIONS: dict[str, Operation] = {
    "ListReviewableHITs": list_reviewable_hits,
    "UpdateHITReviewStatus": update_hit_review_status,
    "ListReviewPolicyResultsForHIT": list_review_policy_results_for_hit,
}
