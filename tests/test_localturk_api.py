"""The unmodified boto3 MTurk client against localturk: every operation crowdkit uses,
with the MTurk semantics crowdkit relies on (tokens, expiry, 9/10 rule, money, quals)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from crowdkit.localturk import LocalTurk, parse_question_form_answers
from tests.localturk_support import Worker, hit_args

LOCALE = "00000000000000000071"
MASTERS = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"


@pytest.fixture
def turk(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        yield service


@pytest.fixture
def mturk(turk):
    return turk.boto3_client(max_attempts=1)


def worker(turk, worker_id: str = "A1ALICE") -> Worker:
    return Worker(turk.base_url, worker_id)


def error_of(excinfo) -> tuple[str, str]:
    """(TurkErrorCode, Message) of a boto3 RequestError."""
    return excinfo.value.response["TurkErrorCode"], excinfo.value.response["Error"]["Message"]


def validation_error(excinfo) -> str:
    """The message of MTurk's ParameterValidationError, which boto3 raises as a plain
    ClientError (it is not in MTurk's model, so there is no TurkErrorCode to read)."""
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ParameterValidationError", error
    return error["Message"]


def balance(mturk) -> tuple[Decimal, Decimal]:
    out = mturk.get_account_balance()
    return Decimal(out["AvailableBalance"]), Decimal(out["OnHoldBalance"])


# --- HIT types and HITs ------------------------------------------------------------------
def test_create_hit_answers_with_mturks_hit_structure(turk, mturk):
    hit = mturk.create_hit(**hit_args(RequesterAnnotation="task-7"))["HIT"]
    assert len(hit["HITId"]) == 30 and hit["HITId"].isalnum() and hit["HITId"].isupper()
    assert hit["HITStatus"] == "Assignable"
    assert hit["Reward"] == "0.50"
    assert hit["MaxAssignments"] == 2
    assert hit["NumberOfAssignmentsAvailable"] == 2
    assert hit["NumberOfAssignmentsPending"] == 0
    assert hit["NumberOfAssignmentsCompleted"] == 0
    assert hit["RequesterAnnotation"] == "task-7"
    assert hit["AutoApprovalDelayInSeconds"] == 86400
    expected_expiry = datetime.fromtimestamp(turk.now(), UTC) + timedelta(seconds=3600)
    assert abs((hit["Expiration"] - expected_expiry).total_seconds()) < 5
    again = mturk.get_hit(HITId=hit["HITId"])["HIT"]
    assert again["Question"] == hit_args()["Question"]
    assert again["HITTypeId"] == hit["HITTypeId"]


def test_identical_properties_share_a_hit_type(mturk):
    props = {k: v for k, v in hit_args().items()
             if k in ("Title", "Description", "Reward", "AssignmentDurationInSeconds",
                      "AutoApprovalDelayInSeconds", "Keywords")}
    type_id = mturk.create_hit_type(**props)["HITTypeId"]
    assert mturk.create_hit_type(**props)["HITTypeId"] == type_id
    assert mturk.create_hit_type(**{**props, "Reward": "0.60"})["HITTypeId"] != type_id
    assert mturk.create_hit(**hit_args())["HIT"]["HITTypeId"] == type_id
    hit = mturk.create_hit_with_hit_type(
        HITTypeId=type_id, MaxAssignments=3, LifetimeInSeconds=600,
        Question=hit_args()["Question"])["HIT"]
    assert (hit["HITTypeId"], hit["Reward"], hit["MaxAssignments"]) == (type_id, "0.50", 3)
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.create_hit_with_hit_type(HITTypeId="3NOSUCHTYPE", LifetimeInSeconds=600,
                                       Question=hit_args()["Question"])


def test_repeated_unique_request_token_names_the_existing_hit(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))["HIT"]["HITId"]
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))
    code, message = error_of(excinfo)
    assert code == "AWS.MechanicalTurk.HitAlreadyExists"
    assert hit_id in message
    assert [h["HITId"] for h in mturk.list_hits()["HITs"]] == [hit_id]
    turk.advance_clock(24 * 3600 + 1)  # MTurk forgets tokens after 24 hours
    assert mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))["HIT"]["HITId"] != hit_id


@pytest.mark.parametrize("question, detail", [
    ("<HTMLQuestion", "well-formed"),
    ('<Foo xmlns="x"/>', "root element"),
    ('<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
     '2011-11-11/HTMLQuestion.xsd"><FrameHeight>0</FrameHeight></HTMLQuestion>', "HTMLContent"),
    ("<HTMLQuestion><HTMLContent>x</HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>",
     "namespace"),
    ('<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
     '2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[' + "x" * 70000
     + "]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>", "at most 65535"),
])
def test_malformed_question_xml_is_refused_like_mturk(mturk, question, detail):
    # MTurk answers a Question it cannot parse with ParameterValidationError, not the
    # modelled RequestError (as observed: "An error occurred (ParameterValidationError) when
    # calling the CreateHIT operation: There was an error parsing ...")
    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(**hit_args(Question=question))
    assert not isinstance(excinfo.value, mturk.exceptions.RequestError)
    message = validation_error(excinfo)
    assert message.startswith("There was an error parsing the XML question")
    assert detail in message
    assert mturk.list_hits()["NumResults"] == 0


def external_question(url: str) -> str:
    return ('<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/'
            'AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">'
            f"<ExternalURL>{url}</ExternalURL><FrameHeight>500</FrameHeight>"
            "</ExternalQuestion>")


def test_external_question_must_be_https(mturk):
    # MTurk API reference, ExternalQuestion: the ExternalURL must use HTTPS
    question = external_question("https://example.org/task?x=1")
    assert mturk.create_hit(**hit_args(Question=question))["HIT"]["HITStatus"] == "Assignable"
    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(**hit_args(Question=external_question("http://example.org/task")))
    assert "https" in validation_error(excinfo)


@pytest.mark.parametrize("page, detail", [
    ("<html><body><form><input name=a></form></body></html>", "doctype"),
    ("<!DOCTYPE html><html><body><p>No form here.</p></body></html>", "form"),
    ("<!DOCTYPE html><html><body><form></form><body></body></html>",
     "\u201cbody\u201d start tag seen but an element of the same type was already open"),
])
def test_html_question_content_must_be_html5_with_a_form(mturk, page, detail):
    # MTurk API reference, HTMLQuestion: "Your HTML code must contain a form for the Worker
    # to fill out and submit"; MTurk validates the content as HTML5 and answers
    # ParameterValidationError "There was an error parsing the HTML5 data in your request"
    from crowdkit.localturk import html_question

    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(**hit_args(Question=html_question(page)))
    message = validation_error(excinfo)
    assert message.startswith("There was an error parsing the HTML5 data in your request.")
    assert detail in message
    crowd_form = '<!DOCTYPE html><script src="x.js"></script><crowd-form></crowd-form>'
    assert mturk.create_hit(**hit_args(Question=html_question(crowd_form)))["HIT"]


@pytest.mark.parametrize("override, detail", [
    ({"Reward": "0.001"}, "Reward"),
    ({"Reward": "abc"}, "Value (abc) for parameter Reward is invalid"),
    ({"Reward": "0.00"}, "Reward"),
    ({"LifetimeInSeconds": 10}, "LifetimeInSeconds"),
    ({"MaxAssignments": 0}, "MaxAssignments"),
    ({"Title": ""}, "missing the required parameter Title"),
])
def test_bad_parameters_raise_parameter_validation_error(mturk, override, detail):
    with pytest.raises(ClientError) as excinfo:
        mturk.create_hit(**hit_args(**override))
    assert not isinstance(excinfo.value, mturk.exceptions.RequestError)
    assert detail in validation_error(excinfo)


def test_list_hits_pages_with_next_token(mturk):
    created = [mturk.create_hit(**hit_args(Title=f"HIT {i}"))["HIT"]["HITId"] for i in range(5)]
    first = mturk.list_hits(MaxResults=2)
    assert first["NumResults"] == 2 and "NextToken" in first
    pages = mturk.get_paginator("list_hits").paginate(PaginationConfig={"PageSize": 2})
    listed = [h["HITId"] for page in pages for h in page["HITs"]]
    assert listed == created
    with pytest.raises(ClientError) as excinfo:
        mturk.list_hits(NextToken="bm90LWEtdG9rZW4=")
    assert "NextToken" in validation_error(excinfo)


def test_every_page_with_items_has_a_next_token_and_the_one_after_the_last_is_empty(mturk):
    # MTurk answers a NextToken with every page that has items (it does not know the page is
    # the last) and an empty page without one after it, so both usual loops end
    created = [mturk.create_hit(**hit_args(Title=f"HIT {i}"))["HIT"]["HITId"] for i in range(3)]
    last = mturk.list_hits(MaxResults=5)
    assert last["NumResults"] == 3 and "NextToken" in last
    after = mturk.list_hits(MaxResults=5, NextToken=last["NextToken"])
    assert (after["NumResults"], after["HITs"], "NextToken" in after) == (0, [], False)
    seen, page = [], mturk.list_hits(MaxResults=2)
    while page["HITs"]:  # the loop third-party tools write
        seen += [h["HITId"] for h in page["HITs"]]
        page = mturk.list_hits(MaxResults=2, NextToken=page["NextToken"])
    assert seen == created


def test_update_expiration_expires_and_reopens_a_hit(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime(2015, 1, 1))
    hit = mturk.get_hit(HITId=hit_id)["HIT"]
    assert hit["HITStatus"] == "Reviewable"
    # the unfilled slots are still counted after expiry; the status says no one can take one
    assert hit["NumberOfAssignmentsAvailable"] == 2
    assert worker(turk).hits() == []
    later = datetime.fromtimestamp(turk.now(), UTC) + timedelta(hours=2)
    mturk.update_expiration_for_hit(HITId=hit_id, ExpireAt=later)
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Assignable"
    assert [h["HITId"] for h in worker(turk).hits()] == [hit_id]


def test_delete_hit_only_when_reviewable_and_reviewed(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=1))["HIT"]["HITId"]
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.delete_hit(HITId=hit_id)
    assert "'Assignable'" in error_of(excinfo)[1]
    assignment_id = worker(turk).do_hit(hit_id, answer="x")
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Reviewable"
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.delete_hit(HITId=hit_id)  # a submitted assignment still awaits review
    mturk.approve_assignment(AssignmentId=assignment_id)
    mturk.delete_hit(HITId=hit_id)
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Disposed"
    assert mturk.list_hits()["HITs"] == []


def test_additional_assignments_follow_the_nine_ten_rule(turk, mturk):
    small = mturk.create_hit(**hit_args(MaxAssignments=2))["HIT"]["HITId"]
    mturk.create_additional_assignments_for_hit(HITId=small, NumberOfAdditionalAssignments=7,
                                                UniqueRequestToken="extend-1")
    hit = mturk.get_hit(HITId=small)["HIT"]
    assert (hit["MaxAssignments"], hit["NumberOfAssignmentsAvailable"]) == (9, 9)
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_additional_assignments_for_hit(HITId=small, NumberOfAdditionalAssignments=1)
    assert error_of(excinfo)[0] == "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_additional_assignments_for_hit(
            HITId=small, NumberOfAdditionalAssignments=0 + 1, UniqueRequestToken="extend-1")
    assert "extend-1" in error_of(excinfo)[1]
    large = mturk.create_hit(**hit_args(MaxAssignments=10))["HIT"]["HITId"]
    mturk.create_additional_assignments_for_hit(HITId=large, NumberOfAdditionalAssignments=5)
    assert mturk.get_hit(HITId=large)["HIT"]["MaxAssignments"] == 15


# --- assignments ------------------------------------------------------------------------
def test_assignment_lifecycle_submit_approve(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    alice = worker(turk)
    accepted = alice.accept(hit_id)
    hit = mturk.get_hit(HITId=hit_id)["HIT"]
    assert (hit["NumberOfAssignmentsPending"], hit["NumberOfAssignmentsAvailable"]) == (1, 1)
    assert mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"] == []  # not submitted
    status, _ = alice.submit(accepted["AssignmentId"], answer="left")
    assert status == 200
    [assignment] = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
    assert assignment["AssignmentStatus"] == "Submitted"
    assert assignment["WorkerId"] == "A1ALICE"
    assert parse_question_form_answers(assignment["Answer"]) == {"answer": "left"}
    assert assignment["AutoApprovalTime"] - assignment["SubmitTime"] == timedelta(days=1)
    mturk.approve_assignment(AssignmentId=assignment["AssignmentId"], RequesterFeedback="ok")
    got = mturk.get_assignment(AssignmentId=assignment["AssignmentId"])
    assert got["Assignment"]["AssignmentStatus"] == "Approved"
    assert got["Assignment"]["RequesterFeedback"] == "ok"
    assert "ApprovalTime" in got["Assignment"]
    assert got["HIT"]["NumberOfAssignmentsCompleted"] == 1
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.approve_assignment(AssignmentId=assignment["AssignmentId"])
    assert "'Approved'" in error_of(excinfo)[1]
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.reject_assignment(AssignmentId=assignment["AssignmentId"], RequesterFeedback="no")
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.get_assignment(AssignmentId="3NOSUCHASSIGNMENT")


def test_reject_then_override_rejection(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    assignment_id = worker(turk).do_hit(hit_id, answer="x")
    mturk.reject_assignment(AssignmentId=assignment_id, RequesterFeedback="failed checks")
    got = mturk.get_assignment(AssignmentId=assignment_id)["Assignment"]
    assert (got["AssignmentStatus"], got["RequesterFeedback"]) == ("Rejected", "failed checks")
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.approve_assignment(AssignmentId=assignment_id)
    before, _ = balance(mturk)
    mturk.approve_assignment(AssignmentId=assignment_id, OverrideRejection=True)
    assert mturk.get_assignment(AssignmentId=assignment_id)["Assignment"][
        "AssignmentStatus"] == "Approved"
    assert balance(mturk)[0] == before - Decimal("0.60")


def test_list_assignments_filters_by_status_and_pages(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=5))["HIT"]["HITId"]
    ids = [worker(turk, f"A{i}WORKER").do_hit(hit_id, answer=str(i)) for i in range(5)]
    mturk.approve_assignment(AssignmentId=ids[0])
    mturk.approve_assignment(AssignmentId=ids[1])
    mturk.reject_assignment(AssignmentId=ids[2], RequesterFeedback="no")

    def listed(**kwargs):
        pages = mturk.get_paginator("list_assignments_for_hit").paginate(
            HITId=hit_id, PaginationConfig={"PageSize": 2}, **kwargs)
        return [a["AssignmentId"] for page in pages for a in page["Assignments"]]

    assert listed() == ids
    assert listed(AssignmentStatuses=["Submitted"]) == ids[3:]
    assert listed(AssignmentStatuses=["Approved", "Rejected"]) == ids[:3]
    page = mturk.list_assignments_for_hit(HITId=hit_id, MaxResults=2)
    assert page["NumResults"] == 2 and "NextToken" in page
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.list_assignments_for_hit(HITId="3NOSUCHHIT")


def test_lapsed_assignment_frees_its_slot(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=1))["HIT"]["HITId"]
    slow, quick = worker(turk, "A1SLOW"), worker(turk, "A1QUICK")
    held = slow.accept(hit_id)
    assert quick.hits() == []
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Unassignable"
    turk.advance_clock(601)  # AssignmentDurationInSeconds is 600
    status, out = slow.submit(held["AssignmentId"], answer="late")
    assert status == 409 and "run out" in out["error"]
    assert [h["HITId"] for h in quick.hits()] == [hit_id]
    quick.do_hit(hit_id, answer="on time")
    assert [a["WorkerId"] for a in mturk.list_assignments_for_hit(HITId=hit_id)[
        "Assignments"]] == ["A1QUICK"]


def test_expired_hit_refuses_new_work_but_takes_work_in_progress(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(LifetimeInSeconds=60))["HIT"]["HITId"]
    alice, bob = worker(turk, "A1ALICE"), worker(turk, "A1BOB")
    held = alice.accept(hit_id)
    turk.advance_clock(61)
    assert bob.hits() == []
    status, _ = bob.try_accept(hit_id)
    assert status == 409
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Unassignable"
    assert alice.submit(held["AssignmentId"], answer="x")[0] == 200
    assert mturk.get_hit(HITId=hit_id)["HIT"]["HITStatus"] == "Reviewable"


def test_auto_approval_after_the_delay(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(AutoApprovalDelayInSeconds=3600))["HIT"]["HITId"]
    assignment_id = worker(turk).do_hit(hit_id, answer="x")
    turk.advance_clock(3599)
    got = mturk.get_assignment(AssignmentId=assignment_id)["Assignment"]
    assert got["AssignmentStatus"] == "Submitted"
    turk.advance_clock(2)
    got = mturk.get_assignment(AssignmentId=assignment_id)["Assignment"]
    assert got["AssignmentStatus"] == "Approved"
    assert got["ApprovalTime"] == got["AutoApprovalTime"]
    instant = mturk.create_hit(**hit_args(AutoApprovalDelayInSeconds=0))["HIT"]["HITId"]
    assignment_id = worker(turk).do_hit(instant, answer="x")
    assert mturk.get_assignment(AssignmentId=assignment_id)["Assignment"][
        "AssignmentStatus"] == "Approved"


# --- money -----------------------------------------------------------------------------
def test_balance_holds_then_pays_rewards_and_fees(turk, mturk):
    assert balance(mturk) == (Decimal("10000.00"), Decimal("0.00"))
    hit_id = mturk.create_hit(**hit_args(MaxAssignments=2, Reward="0.50"))["HIT"]["HITId"]
    assert balance(mturk) == (Decimal("9998.80"), Decimal("1.20"))  # 2 x (0.50 + 20 %)
    first = worker(turk, "A1ONE").do_hit(hit_id, answer="x")
    second = worker(turk, "A1TWO").do_hit(hit_id, answer="y")
    mturk.approve_assignment(AssignmentId=first)
    assert balance(mturk) == (Decimal("9998.80"), Decimal("0.60"))
    mturk.reject_assignment(AssignmentId=second, RequesterFeedback="no")
    assert balance(mturk) == (Decimal("9999.40"), Decimal("0.00"))  # rejection pays nothing
    mturk.send_bonus(WorkerId="A1ONE", AssignmentId=first, BonusAmount="1.00", Reason="thanks")
    assert balance(mturk) == (Decimal("9998.20"), Decimal("0.00"))  # 1.00 + 20 % fee


@pytest.mark.parametrize("assignments, reward, requirements, per_assignment", [
    (9, "1.00", [], "1.20"),
    (10, "1.00", [], "1.40"),  # 10 or more assignments: 20 % more
    (1, "1.00", [{"QualificationTypeId": MASTERS, "Comparator": "Exists"}], "1.25"),
    (1, "0.01", [], "0.02"),  # the fee is at least one cent
])
def test_fees_follow_mturks_schedule(mturk, assignments, reward, requirements, per_assignment):
    mturk.create_hit(**hit_args(MaxAssignments=assignments, Reward=reward,
                                QualificationRequirements=requirements))
    _, held = balance(mturk)
    assert held == Decimal(per_assignment) * assignments


def test_insufficient_funds_refuses_hits_and_bonuses(tmp_path):
    with LocalTurk(tmp_path / "poor.db", starting_balance="1.00") as turk:
        mturk = turk.boto3_client(max_attempts=1)
        with pytest.raises(mturk.exceptions.RequestError) as excinfo:
            mturk.create_hit(**hit_args(MaxAssignments=2, Reward="0.50"))
        assert error_of(excinfo)[0] == "AWS.MechanicalTurk.InsufficientFunds"
        assert mturk.list_hits()["NumResults"] == 0
        hit_id = mturk.create_hit(**hit_args(MaxAssignments=1, Reward="0.50"))["HIT"]["HITId"]
        assignment_id = worker(turk).do_hit(hit_id, answer="x")
        mturk.approve_assignment(AssignmentId=assignment_id)
        with pytest.raises(mturk.exceptions.RequestError) as excinfo:
            mturk.send_bonus(WorkerId="A1ALICE", AssignmentId=assignment_id,
                             BonusAmount="0.50", Reason="thanks")
        assert error_of(excinfo)[0] == "AWS.MechanicalTurk.InsufficientFunds"
        assert balance(mturk) == (Decimal("0.40"), Decimal("0.00"))


def test_bonuses_are_idempotent_and_listed(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    first = worker(turk, "A1ONE").do_hit(hit_id, answer="x")
    second = worker(turk, "A1TWO").do_hit(hit_id, answer="y")
    mturk.send_bonus(WorkerId="A1ONE", AssignmentId=first, BonusAmount="0.25",
                     Reason="accuracy", UniqueRequestToken="bonus-1")
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.send_bonus(WorkerId="A1ONE", AssignmentId=first, BonusAmount="0.25",
                         Reason="accuracy", UniqueRequestToken="bonus-1")
    assert "bonus-1" in error_of(excinfo)[1]
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.send_bonus(WorkerId="A1ONE", AssignmentId=second, BonusAmount="0.25",
                         Reason="not their assignment")
    mturk.send_bonus(WorkerId="A1TWO", AssignmentId=second, BonusAmount="0.10", Reason="r")
    by_hit = mturk.list_bonus_payments(HITId=hit_id)["BonusPayments"]
    assert [(b["WorkerId"], b["BonusAmount"]) for b in by_hit] == [("A1ONE", "0.25"),
                                                                    ("A1TWO", "0.10")]
    by_assignment = mturk.list_bonus_payments(AssignmentId=first)["BonusPayments"]
    assert [b["Reason"] for b in by_assignment] == ["accuracy"]
    with pytest.raises(ClientError) as excinfo:
        mturk.list_bonus_payments()  # neither HITId nor AssignmentId
    assert "Exactly one of HITId and AssignmentId" in validation_error(excinfo)


# --- qualifications --------------------------------------------------------------------
def test_qualification_types_create_get_list(mturk):
    made = mturk.create_qualification_type(
        Name="Did study 1", Description="Took part before", Keywords="crowdkit",
        QualificationTypeStatus="Active")["QualificationType"]
    type_id = made["QualificationTypeId"]
    assert made["IsRequestable"] is True  # MTurk: false only for the system's own types
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_qualification_type(Name="Did study 1", Description="again",
                                        QualificationTypeStatus="Active")
    assert "already created a QualificationType with this name" in error_of(excinfo)[1]
    granted = mturk.create_qualification_type(
        Name="Auto", Description="granted on request", QualificationTypeStatus="Active",
        AutoGranted=True, AutoGrantedValue=5)["QualificationType"]
    assert mturk.get_qualification_type(QualificationTypeId=type_id)[
        "QualificationType"]["Name"] == "Did study 1"
    assert mturk.get_qualification_type(QualificationTypeId=LOCALE)[
        "QualificationType"]["Name"] == "Worker_Locale"

    def names(**kwargs):
        return [t["Name"] for t in mturk.list_qualification_types(**kwargs)[
            "QualificationTypes"]]

    assert names(MustBeRequestable=False, MustBeOwnedByCaller=True) == ["Did study 1", "Auto"]
    assert "Worker_Locale" in names(MustBeRequestable=False, MaxResults=100)
    assert names(MustBeRequestable=True, MustBeOwnedByCaller=True) == ["Did study 1", "Auto"]
    assert "Worker_Locale" not in names(MustBeRequestable=True, MaxResults=100)
    assert names(MustBeRequestable=False, MustBeOwnedByCaller=True, Query="study") == [
        "Did study 1"]
    assert granted["AutoGrantedValue"] == 5


def test_associate_disassociate_and_list_workers(mturk):
    type_id = mturk.create_qualification_type(
        Name="Score", Description="d", QualificationTypeStatus="Active")["QualificationType"][
        "QualificationTypeId"]
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId="A1ONE",
                                              IntegerValue=80, SendNotification=False)
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId="A1TWO")
    granted = mturk.list_workers_with_qualification_type(QualificationTypeId=type_id)
    assert [(q["WorkerId"], q["IntegerValue"]) for q in granted["Qualifications"]] == [
        ("A1ONE", 80), ("A1TWO", 1)]
    mturk.disassociate_qualification_from_worker(QualificationTypeId=type_id, WorkerId="A1ONE",
                                                 Reason="reset")
    granted = mturk.list_workers_with_qualification_type(QualificationTypeId=type_id,
                                                         Status="Granted")
    revoked = mturk.list_workers_with_qualification_type(QualificationTypeId=type_id,
                                                         Status="Revoked")
    assert [q["WorkerId"] for q in granted["Qualifications"]] == ["A1TWO"]
    assert [q["WorkerId"] for q in revoked["Qualifications"]] == ["A1ONE"]
    with pytest.raises(mturk.exceptions.RequestError):
        mturk.disassociate_qualification_from_worker(QualificationTypeId=type_id,
                                                     WorkerId="A1ONE")
    with pytest.raises(mturk.exceptions.RequestError):  # only your own types
        mturk.associate_qualification_with_worker(QualificationTypeId=MASTERS,
                                                  WorkerId="A1ONE")


def test_qualification_requirements_are_enforced_at_accept(turk, mturk):
    type_id = mturk.create_qualification_type(
        Name="Score", Description="d", QualificationTypeStatus="Active")["QualificationType"][
        "QualificationTypeId"]
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": type_id, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [80]}]))["HIT"]["HITId"]
    alice = worker(turk)
    [listed] = alice.hits()
    assert listed["CanAccept"] is False and listed["UnmetRequirements"] == [
        "Score GreaterThanOrEqualTo 80 (you do not have it)"]
    status, out = alice.try_accept(hit_id)
    assert status == 403 and "Score" in out["error"]
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId="A1ALICE",
                                              IntegerValue=79)
    assert alice.try_accept(hit_id)[0] == 403
    mturk.associate_qualification_with_worker(QualificationTypeId=type_id, WorkerId="A1ALICE",
                                              IntegerValue=80)
    assert alice.try_accept(hit_id)[0] == 200


def test_exists_and_does_not_exist_exclude_past_participants(turk, mturk):
    past = mturk.create_qualification_type(
        Name="Took part", Description="d", QualificationTypeStatus="Active")[
        "QualificationType"]["QualificationTypeId"]
    mturk.associate_qualification_with_worker(QualificationTypeId=past, WorkerId="A1VETERAN")
    fresh_only = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": past, "Comparator": "DoesNotExist"}]))["HIT"]["HITId"]
    veterans_only = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": past, "Comparator": "Exists"}]))["HIT"]["HITId"]
    veteran, newcomer = worker(turk, "A1VETERAN"), worker(turk, "A1NEW")
    assert veteran.try_accept(fresh_only)[0] == 403
    assert veteran.try_accept(veterans_only)[0] == 200
    assert newcomer.try_accept(fresh_only)[0] == 200
    assert newcomer.try_accept(veterans_only)[0] == 403


@pytest.mark.parametrize("comparator, locales, country, subdivision, allowed", [
    ("In", [{"Country": "US"}, {"Country": "CA"}], "CA", None, True),
    ("In", [{"Country": "US"}, {"Country": "CA"}], "DE", None, False),
    ("NotIn", [{"Country": "IN"}], "US", None, True),
    ("NotIn", [{"Country": "IN"}], "IN", None, False),
    ("EqualTo", [{"Country": "US", "Subdivision": "CA"}], "US", "CA", True),
    ("EqualTo", [{"Country": "US", "Subdivision": "CA"}], "US", "NY", False),
    ("In", [{"Country": "US"}], None, None, False),  # no locale: no match
])
def test_locale_requirements(turk, mturk, comparator, locales, country, subdivision, allowed):
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": LOCALE, "Comparator": comparator,
         "LocaleValues": locales}]))["HIT"]["HITId"]
    someone = worker(turk, "A1SOMEONE")
    assert someone.profile(country=country, subdivision=subdivision)[0] == 200
    assert (someone.try_accept(hit_id)[0] == 200) is allowed


def test_discover_guard_hides_the_hit(turk, mturk):
    hit_id = mturk.create_hit(**hit_args(QualificationRequirements=[
        {"QualificationTypeId": LOCALE, "Comparator": "EqualTo", "LocaleValues": [
            {"Country": "US"}], "ActionsGuarded": "DiscoverPreviewAndAccept"}]))["HIT"]["HITId"]
    abroad = worker(turk, "A1ABROAD")
    abroad.profile(country="FR")
    assert abroad.hits() == []
    home = worker(turk, "A1HOME")
    home.profile(country="US")
    assert [h["HITId"] for h in home.hits()] == [hit_id]


@pytest.mark.parametrize("requirement", [
    {"QualificationTypeId": LOCALE, "Comparator": "EqualTo", "IntegerValues": [1]},
    {"QualificationTypeId": LOCALE, "Comparator": "GreaterThan",
     "LocaleValues": [{"Country": "US"}]},
    {"QualificationTypeId": MASTERS, "Comparator": "Exists", "IntegerValues": [1]},
    {"QualificationTypeId": "3NOSUCHTYPE", "Comparator": "Exists"},
    {"QualificationTypeId": MASTERS, "Comparator": "Roughly", "IntegerValues": [1]},
    {"QualificationTypeId": LOCALE, "Comparator": "In", "LocaleValues": [{"Country": "USA"}]},
])
def test_invalid_requirements_are_refused_at_create(mturk, requirement):
    with pytest.raises(ClientError) as excinfo:  # ParameterValidationError or, for a type
        mturk.create_hit(**hit_args(QualificationRequirements=[requirement]))  # not there,
    assert excinfo.value.response["Error"]["Code"] in (  # RequestError
        "ParameterValidationError", "RequestError")
    assert mturk.list_hits()["HITs"] == []


# --- other ---------------------------------------------------------------------------
def test_notify_workers_reaches_only_workers_you_reviewed(turk, mturk):
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    assignment_id = worker(turk, "A1KNOWN").do_hit(hit_id, answer="x")
    mturk.approve_assignment(AssignmentId=assignment_id)
    out = mturk.notify_workers(Subject="Follow-up study", MessageText="A new HIT is up.",
                               WorkerIds=["A1KNOWN", "A1STRANGER"])
    assert [(f["WorkerId"], f["NotifyWorkersFailureCode"])
            for f in out["NotifyWorkersFailureStatuses"]] == [("A1STRANGER", "HardFailure")]
    req = urllib.request.Request(turk.worker_url,
                                 headers={"Cookie": "localturk_worker=A1KNOWN"})
    page = urllib.request.urlopen(req).read().decode()
    assert "Follow-up study" in page and "A new HIT is up." in page


def test_unknown_operation_gets_an_aws_error(turk):
    req = urllib.request.Request(
        turk.endpoint_url, data=b"{}", headers={
            "X-Amz-Target": "MTurkRequesterServiceV20170117.ListEverything",
            "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(req)
    assert excinfo.value.code == 400
    body = json.load(excinfo.value)
    assert body["__type"] == "UnknownOperationException"
    assert "docs/localturk.md" in body["message"]
