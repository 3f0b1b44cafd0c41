"""Where localturk used to differ from MTurk, and the operations it gained: each test states
MTurk's behaviour (citing the MTurk API reference where it documents it) and holds the twin,
and crowdkit's own MTurk client where it is concerned, to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from crowdkit.localturk import LocalTurk
from crowdkit.platforms.base import PlatformError
from crowdkit.platforms.mturk.client import calling
from crowdkit.study import load_study
from tests.factories import make_study
from tests.factories import mturk as study_platform
from tests.localturk_support import Worker, hit_args

DAY = 24 * 3600
PERCENT_APPROVED = "000000000000000000L0"


@pytest.fixture
def turk(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        yield service


@pytest.fixture
def mturk(turk):
    return turk.boto3_client(max_attempts=1)


def code_of(excinfo) -> str:
    response = excinfo.value.response
    return response.get("TurkErrorCode") or response["Error"]["Code"]


def at(turk, seconds: float) -> datetime:
    return datetime.fromtimestamp(turk.now() + seconds, UTC)


def new_type(mturk, name: str = "Type", **extra) -> str:
    return mturk.create_qualification_type(
        Name=name, Description="d", QualificationTypeStatus="Active", **extra)[
        "QualificationType"]["QualificationTypeId"]


# --- 1-3: error types and codes, empty feedback ---------------------------------------------
def test_crowdkit_classifies_parameter_validation_errors_without_catching_request_error(mturk):
    """MTurk refuses a bad Question with ParameterValidationError, which boto3 raises as a
    plain ClientError, not as client.exceptions.RequestError: crowdkit's MTurk client
    (`calling`, used around every call) still makes it a one-line PlatformError."""
    with pytest.raises(PlatformError) as excinfo, calling("creating the HIT of task t0"):
        mturk.create_hit(**hit_args(Question="<HTMLQuestion"))
    assert excinfo.value.code == "ParameterValidationError"
    assert type(excinfo.value.__cause__) is ClientError
    assert "\n" not in str(excinfo.value) and "task t0" in str(excinfo.value)


def test_wrong_hit_state_is_spelt_as_mturk_spells_it(mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.delete_hit(HITId=hit_id)
    assert code_of(excinfo) == "AWS.MechanicalTurk.InvalidHITState"  # not InvalidHitState


def test_reject_with_empty_feedback_is_accepted(tmp_path, turk, mturk):
    """MTurk accepts RequesterFeedback="" (botocore only requires the member), and so
    crowdkit's review can reject without a message."""
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=2))["HIT"]["HITId"]
    first = Worker(turk.base_url, "A1FIRST").do_hit(hit_id, answer="x")
    second = Worker(turk.base_url, "A1SECOND").do_hit(hit_id, answer="y")
    mturk.reject_assignment(AssignmentId=first, RequesterFeedback="")
    assert mturk.get_assignment(AssignmentId=first)["Assignment"]["AssignmentStatus"] == \
        "Rejected"
    platform = study_platform(load_study(make_study(tmp_path / "s")), mturk)
    platform.reject(second, "")
    assert platform.submission_status(second) == "Rejected"


# --- 5: paging that a changing list cannot upset --------------------------------------------
def test_qualification_type_pages_neither_skip_nor_repeat_when_types_are_added(mturk):
    for i in range(3):
        new_type(mturk, f"Before {i}")
    seen, page = [], mturk.list_qualification_types(MustBeRequestable=False, MaxResults=2)
    while page["QualificationTypes"]:
        seen += [t["Name"] for t in page["QualificationTypes"]]
        if len(seen) == 2:
            new_type(mturk, "Added between pages")
        page = mturk.list_qualification_types(MustBeRequestable=False, MaxResults=2,
                                              NextToken=page["NextToken"])
    assert len(seen) == len(set(seen))
    assert {"Before 0", "Before 1", "Before 2", "Added between pages", "Worker_Locale"} <= \
        set(seen)


def test_pages_skip_nothing_created_after_the_last_entry_was_deleted(mturk):
    """SQLite gives a deleted last row's rowid to the next insert; pages by rowid would then
    put the new entry behind a NextToken already handed out."""
    ids = [new_type(mturk, f"Q {i}") for i in range(3)]
    page = mturk.list_qualification_types(MustBeRequestable=True, MustBeOwnedByCaller=True,
                                          MaxResults=3)
    mturk.delete_qualification_type(QualificationTypeId=ids[-1])
    new_type(mturk, "Made after the delete")
    rest = mturk.list_qualification_types(MustBeRequestable=True, MustBeOwnedByCaller=True,
                                          MaxResults=3, NextToken=page["NextToken"])
    assert [t["Name"] for t in rest["QualificationTypes"]] == ["Made after the delete"]

    for worker in ("A1", "A2", "A3"):
        mturk.create_worker_block(WorkerId=worker, Reason="test")
    page = mturk.list_worker_blocks(MaxResults=3)
    mturk.delete_worker_block(WorkerId="A3", Reason="undo")
    mturk.create_worker_block(WorkerId="A4", Reason="test")
    rest = mturk.list_worker_blocks(MaxResults=3, NextToken=page["NextToken"])
    assert [b["WorkerId"] for b in rest["WorkerBlocks"]] == ["A4"]


# --- 7: UpdateExpirationForHIT ---------------------------------------------------------------
def test_expiration_can_only_be_extended_by_a_minute_or_more_or_ended_now(turk, mturk):
    # MTurk API reference, UpdateExpirationForHIT: "extend the expiration time of a HIT
    # beyond its current expiration or expire a HIT immediately. You cannot shorten the
    # expiration time"; extensions are 60 s to 365 days, as ExtendHIT's were
    hit_id = mturk.create_hit(**hit_args(LifetimeInSeconds=3600))["HIT"]["HITId"]
    for too_short in (1800, 3600 + 30):  # earlier than now's expiry; under a minute more
        with pytest.raises(ClientError) as excinfo:
            mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=at(turk, too_short))
        assert excinfo.value.response["Error"]["Code"] == "ParameterValidationError"
    mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=at(turk, 3600 + 60))
    mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime(2015, 1, 1))
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Reviewable"
    with pytest.raises(ClientError):  # re-opening runs from now: still a minute at least
        mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=at(turk, 30))
    mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=at(turk, 120))
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Assignable"


# --- 8: overriding a rejection ---------------------------------------------------------------
def test_a_rejection_can_be_overridden_only_within_30_days_of_submission(turk, mturk):
    # MTurk API reference, ApproveAssignment: "This only works on rejected assignments that
    # were submitted within the previous 30 days"
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=2))["HIT"]["HITId"]
    recent = Worker(turk.base_url, "A1RECENT").do_hit(hit_id, answer="x")
    old = Worker(turk.base_url, "A1OLD").do_hit(hit_id, answer="y")
    for assignment_id in (recent, old):
        mturk.reject_assignment(AssignmentId=assignment_id, RequesterFeedback="no")
    turk.advance_clock(29 * DAY)
    mturk.approve_assignment(AssignmentId=recent, OverrideRejection=True)
    turk.advance_clock(2 * DAY)
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.approve_assignment(AssignmentId=old, OverrideRejection=True)
    assert "30 days" in excinfo.value.response["Error"]["Message"]
    assert mturk.get_assignment(AssignmentId=old)["Assignment"]["AssignmentStatus"] == \
        "Rejected"


# --- 9: disposal after 120 days --------------------------------------------------------------
def test_hits_are_disposed_of_120_days_after_creation(turk, mturk):
    # MTurk API reference, DeleteHIT: "HITs are automatically disposed of after 120 days."
    done = mturk.create_hit(**hit_args(LifetimeInSeconds=DAY))["HIT"]["HITId"]
    live = mturk.create_hit(**hit_args(LifetimeInSeconds=200 * DAY))["HIT"]["HITId"]
    turk.advance_clock(120 * DAY + 1)
    assert [h["HITId"] for h in mturk.list_hits()["HITs"]] == [live]  # still running
    assert mturk.get_hit(HITId=done)["HIT"]["HITStatus"] == "Disposed"


# --- 11: Worker_PercentAssignmentsApproved ---------------------------------------------------
def test_approval_rate_is_approved_over_all_submitted_work(turk, mturk):
    # MTurk API reference, QualificationRequirement: "The percentage of assignments the
    # Worker has submitted that were subsequently approved ... over all assignments the
    # Worker has submitted"; awaiting review ones count as submitted
    hits = [mturk.create_hit(**hit_args())["HIT"]["HITId"] for _ in range(3)]
    someone = Worker(turk.base_url, "A1RATED")
    approved = someone.do_hit(hits[0], answer="x")
    someone.do_hit(hits[1], answer="y")  # submitted, not reviewed
    mturk.approve_assignment(AssignmentId=approved)
    picky = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [51]}]))["HIT"]["HITId"]
    status, out = someone.try_accept(picky)
    assert status == 403 and "(yours: 50)" in out["error"]
    fresh = Worker(turk.base_url, "A1FRESH")  # nothing submitted yet: 100
    assert fresh.try_accept(picky)[0] == 200


# --- new operations: worker blocks
def test_blocked_workers_cannot_find_or_accept_the_requesters_hits(turk, mturk):
    # MTurk API reference, CreateWorkerBlock: "prevent a Worker from working on your HITs";
    # DeleteWorkerBlock: "If the specified Worker is not blocked, this operation returns
    # successfully"
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    spammer = Worker(turk.base_url, "A1SPAMMER")
    mturk.create_worker_block(WorkerId="A1SPAMMER", Reason="answers at random")
    assert spammer.hits() == []
    status, out = spammer.try_accept(hit_id)
    assert status == 403 and "blocked" in out["error"]
    assert mturk.list_worker_blocks()["WorkerBlocks"] == [
        {"WorkerId": "A1SPAMMER", "Reason": "answers at random"}]
    mturk.delete_worker_block(WorkerId="A1SPAMMER", Reason="second chance")
    mturk.delete_worker_block(WorkerId="A1NEVERBLOCKED")
    assert spammer.try_accept(hit_id)[0] == 200
    assert mturk.list_worker_blocks()["WorkerBlocks"] == []


# --- reviewing
def test_review_status_moves_reviewable_hits_to_reviewing_and_back(turk, mturk):
    # MTurk API reference, UpdateHITReviewStatus / ListReviewableHITs / DeleteHIT ("can be
    # called with a status of: Reviewing, Reviewable")
    done = mturk.create_hit(**hit_args(MaxAssignments=1))["HIT"]["HITId"]
    live = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    Worker(turk.base_url, "A1DONE").do_hit(done, answer="x")

    def reviewable(status="Reviewable"):
        return [h["HITId"] for h in mturk.list_reviewable_hits(Status=status)["HITs"]]

    assert reviewable() == [done] and reviewable("Reviewing") == []
    mturk.update_hit_review_status(HITId=done)
    assert mturk.get_hit(HITId=done)["HIT"]["HITStatus"] == "Reviewing"
    assert reviewable() == [] and reviewable("Reviewing") == [done]
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.update_hit_review_status(HITId=live)  # Assignable
    mturk.update_hit_review_status(HITId=done, Revert=True)
    assert reviewable() == [done]
    mturk.update_hit_review_status(HITId=done)
    [assignment] = mturk.list_assignments_for_hit(HITId=done)["Assignments"]
    mturk.approve_assignment(AssignmentId=assignment["AssignmentId"])
    mturk.delete_hit(HITId=done)  # from Reviewing
    assert mturk.get_hit(HITId=done)["HIT"]["HITStatus"] == "Disposed"


def test_review_policies_are_kept_and_reported_without_results(mturk):
    policy = {"PolicyName": "SimplePlurality/2011-09-01", "Parameters": [
        {"Key": "QuestionIds", "Values": ["answer"]}]}
    hit_id = mturk.create_hit(**hit_args(HITReviewPolicy=policy))["HIT"]["HITId"]
    out = mturk.list_review_policy_results_for_hit(HITId=hit_id, PolicyLevels=["HIT"])
    assert out["HITReviewPolicy"] == policy
    assert out["HITReviewReport"] == {"ReviewResults": [], "ReviewActions": []}
    assert "AssignmentReviewReport" not in out
    with pytest.raises(ClientError):
        mturk.create_hit(**hit_args(HITReviewPolicy={"PolicyName": "Vote/2020"}))


# --- qualification types
def test_deleting_a_qualification_type_removes_it_and_its_hit_types(turk, mturk):
    # MTurk API reference, DeleteQualificationType: deletes the type and "any HIT types that
    # are associated with the Qualification type"; workers keep their qualifications
    type_id = new_type(mturk, "Pilot")
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId="A1VET")
    requirement = [{"QualificationTypeId": type_id, "Comparator": "DoesNotExist"}]
    hit_type = mturk.create_hit_type(Title="t", Description="d", Reward="0.10",
                                     AssignmentDurationInSeconds=60,
                                     QualificationRequirements=requirement)["HITTypeId"]
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=requirement))["HIT"]["HITId"]
    mturk.delete_qualification_type(QualificationTypeId=type_id)
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.get_qualification_type(QualificationTypeId=type_id)
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_hit_with_hit_type(HITTypeId=hit_type, LifetimeInSeconds=600,
                                       Question=hit_args()["Question"])
    assert code_of(excinfo) == "AWS.MechanicalTurk.HITTypeDoesNotExist"
    with pytest.raises(mturk.exceptions.RequestError):  # no new HITs may require it
        mturk.create_hit(**hit_args(QualificationRequirements=requirement))
    assert Worker(turk.base_url, "A1VET").try_accept(hit_id)[0] == 403  # still enforced
    assert new_type(mturk, "Pilot") != type_id  # the name is free again


def test_update_qualification_type_and_score(mturk):
    type_id = new_type(mturk, "Score")
    updated = mturk.update_qualification_type(
        QualificationTypeId=type_id, Description="new words", QualificationTypeStatus="Inactive",
        AutoGranted=True, AutoGrantedValue=4)["QualificationType"]
    assert (updated["Description"], updated["QualificationTypeStatus"], updated["Name"],
            updated["AutoGrantedValue"]) == ("new words", "Inactive", "Score", 4)
    with pytest.raises(ClientError):  # a Test needs TestDurationInSeconds
        mturk.update_qualification_type(QualificationTypeId=type_id, AutoGranted=False,
                                        Test="<QuestionForm/>")
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId="A1W",
                                              IntegerValue=42)
    score = mturk.get_qualification_score(QualificationTypeId=type_id, WorkerId="A1W")
    assert (score["Qualification"]["IntegerValue"], score["Qualification"]["Status"]) == (
        42, "Granted")
    mturk.disassociate_qualification_from_worker(QualificationTypeId=type_id, WorkerId="A1W")
    assert mturk.get_qualification_score(QualificationTypeId=type_id, WorkerId="A1W")[
        "Qualification"]["Status"] == "Revoked"


def test_hits_for_a_qualification_type_and_retyping_a_hit(turk, mturk):
    type_id = new_type(mturk, "Needed")
    needs = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": type_id, "Comparator": "Exists"}]))["HIT"]["HITId"]
    mturk.create_hit(**hit_args())
    assert [h["HITId"] for h in mturk.list_hits_for_qualification_type(
        QualificationTypeId=type_id)["HITs"]] == [needs]
    # MTurk API reference, UpdateHITTypeOfHIT: the HIT takes the new type's properties
    dearer = mturk.create_hit_type(Title="Dearer", Description="d", Reward="1.00",
                                   AssignmentDurationInSeconds=600)["HITTypeId"]
    before = Decimal(mturk.get_account_balance()["OnHoldBalance"])
    mturk.update_hit_type_of_hit(HITId=needs, HITTypeId=dearer)
    hit = mturk.get_hit(HITId=needs)["HIT"]
    assert (hit["HITTypeId"], hit["Title"], hit["Reward"], hit["QualificationRequirements"]) \
        == (dearer, "Dearer", "1.00", [])
    assert Decimal(mturk.get_account_balance()["OnHoldBalance"]) == before + 2 * Decimal("0.60")
    assert mturk.list_hits_for_qualification_type(QualificationTypeId=type_id)["HITs"] == []


# --- qualification requests
def request(turk, worker_id: str, type_id: str) -> tuple[int, dict]:
    worker = Worker(turk.base_url, worker_id)
    return worker._call("POST", "/worker/api/request-qualification",
                        {"workerId": worker_id, "qualificationTypeId": type_id})


def test_workers_request_qualifications_and_the_requester_answers(turk, mturk):
    # MTurk API reference, ListQualificationRequests / AcceptQualificationRequest /
    # RejectQualificationRequest; CreateQualificationType's RetryDelayInSeconds: without it
    # a worker may request a qualification only once
    once = new_type(mturk, "Once")
    status, asked = request(turk, "A1ASKER", once)
    assert status == 200 and asked["Status"] == "Pending"
    [pending] = mturk.list_qualification_requests(QualificationTypeId=once)[
        "QualificationRequests"]
    assert (pending["WorkerId"], pending["QualificationRequestId"]) == (
        "A1ASKER", asked["QualificationRequestId"])
    assert request(turk, "A1ASKER", once)[0] == 409  # already waiting
    mturk.accept_qualification_request(QualificationRequestId=pending["QualificationRequestId"],
                                       IntegerValue=9)
    assert mturk.get_qualification_score(QualificationTypeId=once, WorkerId="A1ASKER")[
        "Qualification"]["IntegerValue"] == 9
    assert mturk.list_qualification_requests()["QualificationRequests"] == []
    with pytest.raises(mturk.exceptions.RequestError):  # answered already
        mturk.reject_qualification_request(
            QualificationRequestId=pending["QualificationRequestId"])

    status, asked = request(turk, "A1OTHER", once)
    mturk.reject_qualification_request(QualificationRequestId=asked["QualificationRequestId"],
                                       Reason="not this time")
    assert request(turk, "A1OTHER", once)[0] == 409  # once only
    retry = new_type(mturk, "Retry", RetryDelayInSeconds=3600)
    mturk.reject_qualification_request(
        QualificationRequestId=request(turk, "A1OTHER", retry)[1]["QualificationRequestId"])
    assert request(turk, "A1OTHER", retry)[0] == 409
    turk.advance_clock(3600)
    assert request(turk, "A1OTHER", retry)[0] == 200
    auto = new_type(mturk, "Auto", AutoGranted=True, AutoGrantedValue=3)
    assert request(turk, "A1OTHER", auto)[1]["Status"] == "Granted"
    assert mturk.get_qualification_score(QualificationTypeId=auto, WorkerId="A1OTHER")[
        "Qualification"]["IntegerValue"] == 3
    tested = new_type(mturk, "Tested", Test="<QuestionForm/>", TestDurationInSeconds=60)
    status, out = request(turk, "A1OTHER", tested)
    assert status == 409 and "test" in out["error"]


# --- deprecated: GetFileUploadURL
def test_file_upload_urls_are_gone_with_file_upload_answers(turk, mturk):
    # MTurk API reference, GetFileUploadURL: since December 12, 2017 FileUploadAnswer is no
    # longer supported, so no assignment has a file to fetch
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    assignment_id = Worker(turk.base_url, "A1UP").do_hit(hit_id, answer="x")
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.get_file_upload_url(AssignmentId=assignment_id, QuestionIdentifier="answer")
    assert "no longer supported" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.get_file_upload_url(AssignmentId="3NOSUCH", QuestionIdentifier="answer")
    assert code_of(excinfo) == "AWS.MechanicalTurk.AssignmentDoesNotExist"


def test_hits_expired_within_the_lifetime_keep_counting_unfilled_slots(turk, mturk):
    """MTurk's reference is silent on NumberOfAssignmentsAvailable after expiry; its answers
    keep the unfilled slots (the status says no one can take one), and crowdkit's status
    reads the expiry, not this number, for what is still open."""
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=3, LifetimeInSeconds=60))["HIT"][
        "HITId"]
    Worker(turk.base_url, "A1ONE").do_hit(hit_id, answer="x")
    turk.advance_clock(61)
    hit = mturk.get_hit(HITId=hit_id)["HIT"]
    assert (hit["HITStatus"], hit["NumberOfAssignmentsAvailable"]) == ("Reviewable", 2)
    assert Worker(turk.base_url, "A1TWO").hits() == []
    assert at(turk, 0) - hit["Expiration"] >= timedelta(0)
