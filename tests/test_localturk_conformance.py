"""The conformance suite: every one of botocore's 39 MTurk operations, called through boto3
against localturk, its answer held against botocore's own model of MTurk (2017-01-17).

For each operation the raw JSON must use only the members of the operation's output shape,
with the model's types (timestamps as epoch seconds), enum values and string patterns, and
carry the members MTurk always returns (ALWAYS below); boto3's parsed answer must match it.
Each operation's refusal of one invalid input is checked too: MTurk's error type (the
modelled RequestError, or ParameterValidationError, which boto3 raises as a plain
ClientError), its TurkErrorCode and the error body's members.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from crowdkit.localturk import LocalTurk, html_question
from crowdkit.localturk.api import OPERATIONS
from tests.localturk_support import FORM_PAGE, Worker, hit_args

MODEL = botocore.session.get_session().get_service_model("mturk")
# Members MTurk always returns in each structure (the rest only when they have a value:
# RequesterAnnotation, ApprovalTime, Test, ...). Outputs carry all their members but
# NextToken (and the review policies of a HIT that has none).
ALWAYS = {
    "HIT": {"HITId", "HITTypeId", "HITGroupId", "CreationTime", "Title", "Description",
            "Question", "HITStatus", "MaxAssignments", "Reward", "AutoApprovalDelayInSeconds",
            "Expiration", "AssignmentDurationInSeconds", "QualificationRequirements",
            "HITReviewStatus", "NumberOfAssignmentsPending", "NumberOfAssignmentsAvailable",
            "NumberOfAssignmentsCompleted"},
    "Assignment": {"AssignmentId", "WorkerId", "HITId", "AssignmentStatus", "AcceptTime",
                   "SubmitTime", "AutoApprovalTime", "Deadline", "Answer"},
    "QualificationType": {"QualificationTypeId", "CreationTime", "Name", "Description",
                          "QualificationTypeStatus", "IsRequestable", "AutoGranted"},
    "Qualification": {"QualificationTypeId", "WorkerId", "GrantTime", "Status"},
    "QualificationRequest": {"QualificationRequestId", "QualificationTypeId", "WorkerId",
                             "SubmitTime"},
    "WorkerBlock": {"WorkerId", "Reason"},
    "BonusPayment": {"WorkerId", "BonusAmount", "AssignmentId", "Reason", "GrantTime"},
    "NotifyWorkersFailureStatus": {"NotifyWorkersFailureCode", "NotifyWorkersFailureMessage",
                                   "WorkerId"},
    "QualificationRequirement": {"QualificationTypeId", "Comparator"},
    "ReviewPolicy": {"PolicyName"},
    "ReviewReport": {"ReviewResults", "ReviewActions"},
}
SOMETIMES_IN_OUTPUT = {"NextToken", "AssignmentReviewPolicy", "HITReviewPolicy"}
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "long": (int,), "boolean": (bool,),
    "timestamp": (int, float), "structure": (dict,), "list": (list,), "map": (dict,),
    "double": (int, float), "float": (int, float),
}
NAMES = count(1)


# --- holding JSON against the model ---------------------------------------------------------
def check_shape(value: Any, shape: Any, path: str) -> None:
    kind = shape.type_name
    assert isinstance(value, PYTHON_TYPES[kind]), f"{path}: {value!r} is not a {kind}"
    if kind in ("integer", "long", "timestamp"):
        assert not isinstance(value, bool), f"{path}: a boolean is not a {kind}"
    if kind == "string":
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
        pattern = shape.metadata.get("pattern")
        if pattern:
            assert re.match(pattern, value), f"{path}: {value!r} does not match {pattern}"
        if "min" in shape.metadata:
            assert len(value) >= shape.metadata["min"], f"{path}: {value!r} too short"
    elif kind == "structure":
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: members not in {shape.name}: {sorted(unknown)}"
        missing = ALWAYS.get(shape.name, set()) - set(value)
        assert not missing, f"{path}: {shape.name} lacks {sorted(missing)}"
        for name, member in value.items():
            check_shape(member, shape.members[name], f"{path}.{name}")
    elif kind == "list":
        for i, item in enumerate(value):
            check_shape(item, shape.member, f"{path}[{i}]")


def check_parsed(parsed: Any, raw: Any, shape: Any, path: str) -> None:
    """boto3's parsed answer says what the raw JSON says, timestamps as datetimes."""
    if shape.type_name == "timestamp":
        assert isinstance(parsed, datetime), path
        assert abs(parsed.timestamp() - raw) < 0.01, path
    elif shape.type_name == "structure":
        assert set(parsed) - {"ResponseMetadata"} == set(raw), path
        for name, value in raw.items():
            check_parsed(parsed[name], value, shape.members[name], f"{path}.{name}")
    elif shape.type_name == "list":
        assert len(parsed) == len(raw), path
        for i, (p, r) in enumerate(zip(parsed, raw, strict=True)):
            check_parsed(p, r, shape.member, f"{path}[{i}]")
    else:
        assert parsed == raw, path


def check_output(operation: str, parsed: dict, raw: dict) -> None:
    shape = MODEL.operation_model(operation).output_shape
    check_shape(raw, shape, operation)
    missing = set(shape.members) - SOMETIMES_IN_OUTPUT - set(raw)
    assert not missing, f"{operation} answered without {sorted(missing)}"
    check_parsed(parsed, raw, shape, operation)


# --- the marketplace the calls run in
class World:
    """A service with a HIT type, qualification types and workers; helpers make what a call
    needs fresh, so the calls are independent of each other and of their order."""

    def __init__(self, turk: LocalTurk) -> None:
        self.turk = turk
        self.raw: dict[str, dict] = {}
        self.mturk = turk.boto3_client(max_attempts=1)
        self.unchecked = turk.boto3_client(
            max_attempts=1, config=Config(parameter_validation=False))
        for client in (self.mturk, self.unchecked):
            client.meta.events.register("after-call.mturk.*", self._keep_raw)
        self.own_type = self.qualification_type(RetryDelayInSeconds=60)
        self.hit_type = self.mturk.create_hit_type(
            Title="Conformance", Description="d", Reward="0.10",
            AssignmentDurationInSeconds=600, AutoApprovalDelayInSeconds=86400,
            QualificationRequirements=[
                {"QualificationTypeId": self.own_type, "Comparator": "DoesNotExist",
                 "ActionsGuarded": "Accept"}])["HITTypeId"]

    def _keep_raw(self, http_response: Any, model: Any, **_: Any) -> None:
        self.raw[model.name] = json.loads(http_response.content or b"{}")

    def worker(self) -> Worker:
        return Worker(self.turk.base_url, f"A{next(NAMES)}CONFORMANCE")

    def qualification_type(self, **extra: Any) -> str:
        return self.mturk.create_qualification_type(
            Name=f"type {next(NAMES)}", Description="d", Keywords="k",
            QualificationTypeStatus="Active", **extra)["QualificationType"][
            "QualificationTypeId"]

    def hit(self, **overrides: Any) -> str:
        return self.mturk.create_hit(**hit_args(**overrides))["HIT"]["HITId"]

    def expired_hit(self) -> str:
        hit_id = self.hit()
        self.mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime(2015, 1, 1))
        return hit_id

    def submitted(self) -> tuple[str, str, str]:
        """(HIT id, assignment id, worker id) of a submitted assignment."""
        hit_id, worker = self.hit(), self.worker()
        return hit_id, worker.do_hit(hit_id, answer="x"), worker.worker_id

    def approved(self) -> tuple[str, str, str]:
        hit_id, assignment_id, worker_id = self.submitted()
        self.mturk.approve_assignment(AssignmentId=assignment_id)
        return hit_id, assignment_id, worker_id

    def granted(self) -> str:
        worker_id = self.worker().worker_id
        self.mturk.associate_qualification_with_worker(
            QualificationTypeId=self.own_type, WorkerId=worker_id, IntegerValue=7)
        return worker_id

    def request(self) -> str:
        worker = self.worker()
        status, out = worker._call("POST", "/worker/api/request-qualification", {
            "workerId": worker.worker_id, "qualificationTypeId": self.own_type})
        assert status == 200, out
        return out["QualificationRequestId"]

    def blocked(self) -> str:
        worker_id = self.worker().worker_id
        self.mturk.create_worker_block(WorkerId=worker_id, Reason="test")
        return worker_id


SPEC = {"Destination": "https://sqs.us-east-1.amazonaws.com/123456789012/mturk",
        "Transport": "SQS", "Version": "2014-08-15", "EventTypes": ["AssignmentSubmitted"]}
POLICY = {"PolicyName": "ScoreMyKnownAnswers/2011-09-01",
          "Parameters": [{"Key": "AnswerKey", "MapEntries": [
              {"Key": "answer", "Values": ["left"]}]}]}

Call = Callable[[World], dict[str, Any]]
# Each operation, called as a requester tool would with valid input.
CALLS: dict[str, Call] = {
    "AcceptQualificationRequest": lambda w: w.mturk.accept_qualification_request(
        QualificationRequestId=w.request(), IntegerValue=3),
    "ApproveAssignment": lambda w: w.mturk.approve_assignment(
        AssignmentId=w.submitted()[1], RequesterFeedback="thanks"),
    "AssociateQualificationWithWorker": lambda w: w.mturk.associate_qualification_with_worker(
        QualificationTypeId=w.own_type, WorkerId="A1ASSOCIATED", IntegerValue=5,
        SendNotification=False),
    "CreateAdditionalAssignmentsForHIT": lambda w: w.mturk.create_additional_assignments_for_hit(
        HITId=w.hit(), NumberOfAdditionalAssignments=2, UniqueRequestToken=f"x{next(NAMES)}"),
    "CreateHIT": lambda w: w.mturk.create_hit(**hit_args(
        RequesterAnnotation="note", UniqueRequestToken=f"t{next(NAMES)}",
        QualificationRequirements=[{"QualificationTypeId": "00000000000000000071",
                                    "Comparator": "In", "LocaleValues": [{"Country": "US"}]}])),
    "CreateHITType": lambda w: w.mturk.create_hit_type(
        Title="t", Description="d", Reward="0.20", AssignmentDurationInSeconds=60),
    "CreateHITWithHITType": lambda w: w.mturk.create_hit_with_hit_type(
        HITTypeId=w.hit_type, MaxAssignments=1, LifetimeInSeconds=600,
        Question=html_question(FORM_PAGE)),
    "CreateQualificationType": lambda w: w.mturk.create_qualification_type(
        Name=f"new {next(NAMES)}", Description="d", QualificationTypeStatus="Active",
        AutoGranted=True, AutoGrantedValue=2),
    "CreateWorkerBlock": lambda w: w.mturk.create_worker_block(WorkerId="A1BLOCK",
                                                               Reason="spam"),
    "DeleteHIT": lambda w: w.mturk.delete_hit(HITId=w.expired_hit()),
    "DeleteQualificationType": lambda w: w.mturk.delete_qualification_type(
        QualificationTypeId=w.qualification_type()),
    "DeleteWorkerBlock": lambda w: w.mturk.delete_worker_block(WorkerId=w.blocked(),
                                                               Reason="forgiven"),
    "DisassociateQualificationFromWorker":
        lambda w: w.mturk.disassociate_qualification_from_worker(
            QualificationTypeId=w.own_type, WorkerId=w.granted(), Reason="reset"),
    "GetAccountBalance": lambda w: w.mturk.get_account_balance(),
    "GetAssignment": lambda w: w.mturk.get_assignment(AssignmentId=w.approved()[1]),
    "GetHIT": lambda w: w.mturk.get_hit(HITId=w.hit(RequesterAnnotation="a")),
    "GetQualificationScore": lambda w: w.mturk.get_qualification_score(
        QualificationTypeId=w.own_type, WorkerId=w.granted()),
    "GetQualificationType": lambda w: w.mturk.get_qualification_type(
        QualificationTypeId=w.own_type),
    "ListAssignmentsForHIT": lambda w: w.mturk.list_assignments_for_hit(
        HITId=w.submitted()[0], MaxResults=10, AssignmentStatuses=["Submitted"]),
    "ListBonusPayments": lambda w: list_bonuses(w),
    "ListHITs": lambda w: (w.hit(), w.mturk.list_hits(MaxResults=100))[1],
    "ListHITsForQualificationType": lambda w: (
        w.mturk.create_hit_with_hit_type(HITTypeId=w.hit_type, LifetimeInSeconds=600,
                                         Question=html_question(FORM_PAGE)),
        w.mturk.list_hits_for_qualification_type(QualificationTypeId=w.own_type,
                                                 MaxResults=5))[1],
    "ListQualificationRequests": lambda w: (w.request(), w.mturk.list_qualification_requests(
        QualificationTypeId=w.own_type, MaxResults=100))[1],
    "ListQualificationTypes": lambda w: w.mturk.list_qualification_types(
        MustBeRequestable=False, MaxResults=100),
    "ListReviewPolicyResultsForHIT": lambda w: w.mturk.list_review_policy_results_for_hit(
        HITId=w.hit(AssignmentReviewPolicy=POLICY, HITReviewPolicy={
            "PolicyName": "SimplePlurality/2011-09-01", "Parameters": []}),
        RetrieveActions=True, RetrieveResults=True),
    "ListReviewableHITs": lambda w: (w.expired_hit(), w.mturk.list_reviewable_hits(
        Status="Reviewable", MaxResults=100))[1],
    "ListWorkerBlocks": lambda w: (w.blocked(), w.mturk.list_worker_blocks(MaxResults=100))[1],
    "ListWorkersWithQualificationType":
        lambda w: (w.granted(), w.mturk.list_workers_with_qualification_type(
            QualificationTypeId=w.own_type, Status="Granted", MaxResults=100))[1],
    "NotifyWorkers": lambda w: w.mturk.notify_workers(
        Subject="s", MessageText="m", WorkerIds=[w.approved()[2], "A1STRANGER"]),
    "RejectAssignment": lambda w: w.mturk.reject_assignment(
        AssignmentId=w.submitted()[1], RequesterFeedback=""),
    "RejectQualificationRequest": lambda w: w.mturk.reject_qualification_request(
        QualificationRequestId=w.request(), Reason="no"),
    "SendBonus": lambda w: send_bonus(w),
    "SendTestEventNotification": lambda w: w.mturk.send_test_event_notification(
        Notification={**SPEC, "EventTypes": ["Ping"]}, TestEventType="Ping"),
    "UpdateExpirationForHIT": lambda w: w.mturk.update_expiration_for_hit(
        HITId=w.hit(), ExpireAt=datetime.fromtimestamp(w.turk.now(), UTC) + timedelta(days=1)),
    "UpdateHITReviewStatus": lambda w: w.mturk.update_hit_review_status(
        HITId=w.expired_hit(), Revert=False),
    "UpdateHITTypeOfHIT": lambda w: w.mturk.update_hit_type_of_hit(
        HITId=w.hit(), HITTypeId=w.hit_type),
    "UpdateNotificationSettings": lambda w: w.mturk.update_notification_settings(
        HITTypeId=w.hit_type, Notification=SPEC, Active=True),
    "UpdateQualificationType": lambda w: w.mturk.update_qualification_type(
        QualificationTypeId=w.qualification_type(), Description="new",
        QualificationTypeStatus="Inactive", RetryDelayInSeconds=10),
}
# GetFileUploadURL has no successful answer left: FileUploadAnswer is gone (deprecated in
# December 2017), so MTurk's deprecated operation answers every real assignment with an error.
NO_ANSWER = {"GetFileUploadURL"}


def list_bonuses(w: World) -> dict:
    send_bonus(w)
    return w.mturk.list_bonus_payments(AssignmentId=w.last_bonus, MaxResults=10)


def send_bonus(w: World) -> dict:
    _, assignment_id, worker_id = w.approved()
    w.last_bonus = assignment_id  # type: ignore[attr-defined]
    return w.mturk.send_bonus(WorkerId=worker_id, AssignmentId=assignment_id,
                              BonusAmount="0.25", Reason="well done",
                              UniqueRequestToken=f"b{next(NAMES)}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with LocalTurk(tmp_path_factory.mktemp("conformance") / "turk.db", port=0) as turk:
        yield World(turk)


def test_the_suite_and_localturk_cover_all_of_botocores_operations():
    assert len(MODEL.operation_names) == 39
    assert set(CALLS) | NO_ANSWER == set(MODEL.operation_names) == set(OPERATIONS)
    assert set(ERRORS) == set(MODEL.operation_names)


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_answers_have_botocores_output_shape(world, operation):
    parsed = CALLS[operation](world)
    raw = world.raw[operation]
    check_output(operation, parsed, raw)
    shape = MODEL.operation_model(operation).output_shape
    lists = [name for name, member in shape.members.items() if member.type_name == "list"]
    assert all(raw[name] for name in lists), f"{operation}: an empty list checks nothing"


# --- refusals -------------------------------------------------------------------------------
PVE = "ParameterValidationError"
# Each operation with one invalid input: (parameters, error type, TurkErrorCode). The
# parameters go through a boto3 client whose own validation is off, as from a tool that
# builds requests by hand. Callables get the World.
Params = dict[str, Any] | Callable[[World], dict[str, Any]]
ERRORS: dict[str, tuple[Params, str, str]] = {
    "AcceptQualificationRequest": ({"QualificationRequestId": "3NOSUCHREQUEST"},
                                   "RequestError",
                                   "AWS.MechanicalTurk.QualificationRequestDoesNotExist"),
    "ApproveAssignment": ({"AssignmentId": "3NOSUCHASSIGNMENT"}, "RequestError",
                          "AWS.MechanicalTurk.AssignmentDoesNotExist"),
    "AssociateQualificationWithWorker": (lambda w: {"QualificationTypeId": w.own_type},
                                         PVE, "AWS.MissingParameters"),
    "CreateAdditionalAssignmentsForHIT": (lambda w: {
        "HITId": w.hit(), "NumberOfAdditionalAssignments": 0}, PVE, "AWS.ParameterOutOfRange"),
    "CreateHIT": (hit_args(Reward="abc"), PVE, "AWS.ParameterOutOfRange"),
    "CreateHITType": ({"Title": "t", "Description": "d", "Reward": "0.10",
                       "AssignmentDurationInSeconds": 5}, PVE, "AWS.ParameterOutOfRange"),
    "CreateHITWithHITType": ({"HITTypeId": "3NOSUCHTYPE", "LifetimeInSeconds": 600,
                              "Question": html_question(FORM_PAGE)}, "RequestError",
                             "AWS.MechanicalTurk.HITTypeDoesNotExist"),
    "CreateQualificationType": ({"Name": "n", "Description": "d",
                                 "QualificationTypeStatus": "Maybe"},
                                PVE, "AWS.ParameterOutOfRange"),
    "CreateWorkerBlock": ({"WorkerId": "A1SOMEONE"}, PVE, "AWS.MissingParameters"),
    "DeleteHIT": (lambda w: {"HITId": w.hit()}, "RequestError",
                  "AWS.MechanicalTurk.InvalidHITState"),
    "DeleteQualificationType": ({"QualificationTypeId": "3NOSUCHTYPE"}, "RequestError",
                                "AWS.MechanicalTurk.QualificationTypeDoesNotExist"),
    "DeleteWorkerBlock": ({}, PVE, "AWS.MissingParameters"),
    "DisassociateQualificationFromWorker": (lambda w: {
        "QualificationTypeId": w.own_type, "WorkerId": "A1NEVERGRANTED"}, "RequestError",
        "AWS.MechanicalTurk.QualificationDoesNotExist"),
    # no parameters to get wrong: test_a_body_that_is_not_a_json_object_is_refused
    "GetAccountBalance": ({}, "raw", "AWS.MechanicalTurk.InvalidRequest"),
    "GetAssignment": ({"AssignmentId": "3NOSUCHASSIGNMENT"}, "RequestError",
                      "AWS.MechanicalTurk.AssignmentDoesNotExist"),
    "GetFileUploadURL": (lambda w: {"AssignmentId": w.submitted()[1],
                                    "QuestionIdentifier": "answer"}, "RequestError",
                         "AWS.MechanicalTurk.FileUploadAnswerDoesNotExist"),
    "GetHIT": ({"HITId": "3NOSUCHHIT"}, "RequestError", "AWS.MechanicalTurk.HITDoesNotExist"),
    "GetQualificationScore": (lambda w: {"QualificationTypeId": w.own_type,
                                         "WorkerId": "A1NEVERGRANTED"}, "RequestError",
                              "AWS.MechanicalTurk.QualificationDoesNotExist"),
    "GetQualificationType": ({"QualificationTypeId": "3NOSUCHTYPE"}, "RequestError",
                             "AWS.MechanicalTurk.QualificationTypeDoesNotExist"),
    "ListAssignmentsForHIT": (lambda w: {"HITId": w.hit(), "AssignmentStatuses": ["Accepted"]},
                              PVE, "AWS.ParameterOutOfRange"),
    "ListBonusPayments": ({}, PVE, "AWS.MechanicalTurk.InvalidParameterValue"),
    "ListHITs": ({"MaxResults": 0}, PVE, "AWS.ParameterOutOfRange"),
    "ListHITsForQualificationType": ({"QualificationTypeId": "3NOSUCHTYPE"}, "RequestError",
                                     "AWS.MechanicalTurk.QualificationTypeDoesNotExist"),
    "ListQualificationRequests": ({"MaxResults": 101}, PVE, "AWS.ParameterOutOfRange"),
    "ListQualificationTypes": ({"MustBeOwnedByCaller": True}, PVE, "AWS.MissingParameters"),
    "ListReviewPolicyResultsForHIT": (lambda w: {"HITId": w.hit(), "PolicyLevels": ["Worker"]},
                                      PVE, "AWS.MechanicalTurk.InvalidParameterValue"),
    "ListReviewableHITs": ({"Status": "Assignable"}, PVE, "AWS.ParameterOutOfRange"),
    "ListWorkerBlocks": ({"NextToken": "not-a-token"}, PVE,
                         "AWS.MechanicalTurk.InvalidPaginationToken"),
    "ListWorkersWithQualificationType": (lambda w: {"QualificationTypeId": w.own_type,
                                                    "Status": "Pending"},
                                         PVE, "AWS.ParameterOutOfRange"),
    "NotifyWorkers": ({"Subject": "s", "MessageText": "m", "WorkerIds": []}, PVE,
                      "AWS.ParameterOutOfRange"),
    "RejectAssignment": (lambda w: {"AssignmentId": w.submitted()[1]}, PVE,
                         "AWS.MissingParameters"),
    "RejectQualificationRequest": ({"QualificationRequestId": "3NOSUCHREQUEST"},
                                   "RequestError",
                                   "AWS.MechanicalTurk.QualificationRequestDoesNotExist"),
    "SendBonus": (lambda w: {"WorkerId": w.approved()[2], "AssignmentId": "3NOSUCH",
                             "BonusAmount": "1.001", "Reason": "r"},
                  PVE, "AWS.ParameterOutOfRange"),
    "SendTestEventNotification": ({"Notification": SPEC, "TestEventType": "Explosion"}, PVE,
                                  "AWS.ParameterOutOfRange"),
    "UpdateExpirationForHIT": (lambda w: {"HITId": w.hit(), "ExpireAt": w.turk.now() + 60},
                               PVE, "AWS.ParameterOutOfRange"),
    "UpdateHITReviewStatus": (lambda w: {"HITId": w.hit()}, "RequestError",
                              "AWS.MechanicalTurk.InvalidHITState"),
    "UpdateHITTypeOfHIT": (lambda w: {"HITId": w.hit(), "HITTypeId": "3NOSUCHTYPE"},
                           "RequestError", "AWS.MechanicalTurk.HITTypeDoesNotExist"),
    "UpdateNotificationSettings": (lambda w: {"HITTypeId": w.hit_type}, PVE,
                                   "AWS.MechanicalTurk.InvalidParameterValue"),
    "UpdateQualificationType": ({"QualificationTypeId": "3NOSUCHTYPE"}, "RequestError",
                                "AWS.MechanicalTurk.QualificationTypeDoesNotExist"),
}
ERROR_BODY = {"__type", "Message", "TurkErrorCode"}


def method(client: Any, operation: str) -> Callable[..., dict]:
    """The boto3 method of an operation (create_hit for CreateHIT)."""
    names = {api: name for name, api in client.meta.method_to_api_mapping.items()}
    return getattr(client, names[operation])


@pytest.mark.parametrize("operation", sorted(o for o in ERRORS if ERRORS[o][1] != "raw"))
def test_invalid_input_gets_mturks_error(world, operation):
    params, kind, turk_code = ERRORS[operation]
    kwargs = params(world) if callable(params) else params
    with pytest.raises(ClientError) as excinfo:
        method(world.unchecked, operation)(**kwargs)
    error = excinfo.value.response
    assert error["Error"]["Code"] == kind
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    if kind == "RequestError":  # modelled: boto3 raises its class and keeps TurkErrorCode
        assert isinstance(excinfo.value, world.unchecked.exceptions.RequestError)
        assert error["TurkErrorCode"] == turk_code
    else:  # not modelled: a plain ClientError, as against MTurk
        assert type(excinfo.value) is ClientError
    raw = world.raw[operation]
    assert set(raw) == ERROR_BODY and raw["__type"] == kind
    assert raw["TurkErrorCode"] == turk_code
    assert re.search(r" \(\d{13}\)$", raw["Message"])  # MTurk's server time in ms


def test_a_body_that_is_not_a_json_object_is_refused(world):
    request = urllib.request.Request(world.turk.endpoint_url, data=b"[1, 2]", headers={
        "X-Amz-Target": "MTurkRequesterServiceV20170117.GetAccountBalance",
        "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    body = json.load(excinfo.value)
    assert excinfo.value.code == 400 and set(body) == ERROR_BODY
    assert body["TurkErrorCode"] == ERRORS["GetAccountBalance"][2]


def test_the_documentation_lists_every_operation():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "localturk.md").read_text()
    table = set(re.findall(r"^\| ([A-Za-z]+) \|", text, flags=re.MULTILINE))
    assert set(MODEL.operation_names) <= table
