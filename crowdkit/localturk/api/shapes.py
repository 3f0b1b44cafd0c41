"""The JSON of MTurk's data structures (HIT, Assignment, QualificationType, ...), member for
member as botocore's model names them, from localturk's rows.

Members MTurk leaves out when they have no value (RequesterAnnotation, ApprovalTime, ...)
are left out here too; tests/test_localturk_conformance.py holds each structure against
botocore's output shapes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from crowdkit.localturk import quals
from crowdkit.localturk.market import HitState
from crowdkit.localturk.params import drop_none

Json = dict[str, Any]


def hit_json(state: HitState) -> Json:
    row = state.row
    return drop_none({
        "HITId": row["hit_id"],
        "HITTypeId": row["hit_type_id"],
        "HITGroupId": row["hit_type_id"],
        "CreationTime": row["created"],
        "Title": row["title"],
        "Description": row["description"],
        "Question": row["question"],
        "Keywords": row["keywords"] or None,
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


def assignment_json(row: sqlite3.Row) -> Json:
    return drop_none({
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


def qualification_type_json(row: sqlite3.Row) -> Json:
    """A requester's type. IsRequestable is true for all of them: MTurk's reference says
    it is false only for the types the system assigns (checked by the conformance suite)."""
    return drop_none({
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
        "IsRequestable": True,
        "AutoGranted": bool(row["auto_granted"]),
        "AutoGrantedValue": row["auto_granted_value"] if row["auto_granted"] else None,
    })


def system_type_json(type_id: str) -> Json:
    name, description = quals.SYSTEM_TYPES[type_id]
    return {"QualificationTypeId": type_id, "CreationTime": 0.0, "Name": name,
            "Description": description, "QualificationTypeStatus": "Active",
            "IsRequestable": False, "AutoGranted": False}


def qualification_json(row: sqlite3.Row) -> Json:
    """A worker's Qualification (ListWorkersWithQualificationType, GetQualificationScore)."""
    return {"QualificationTypeId": row["qualification_type_id"], "WorkerId": row["worker_id"],
            "GrantTime": row["grant_time"], "IntegerValue": row["integer_value"],
            "Status": row["status"]}


def qualification_request_json(row: sqlite3.Row) -> Json:
    return {"QualificationRequestId": row["request_id"],
            "QualificationTypeId": row["qualification_type_id"],
            "WorkerId": row["worker_id"], "SubmitTime": row["submit_time"]}


def bonus_json(row: sqlite3.Row) -> Json:
    return {"WorkerId": row["worker_id"], "BonusAmount": row["amount"],
            "AssignmentId": row["assignment_id"], "Reason": row["reason"],
            "GrantTime": row["grant_time"]}


def review_policy_json(text: str | None) -> Json | None:
    return None if text is None else json.loads(text)
