"""A study run the way third-party MTurk tools write it: plain boto3 pointed at localturk
with the AWS_ENDPOINT_URL_MTURK environment variable, none of crowdkit's client code.

The tool finds or creates its qualification by name with MustBeRequestable=True, posts
ExternalQuestion HITs, collects with `while page["Assignments"]` loops, rejects with empty
feedback, extends and expires HITs, deletes them after review and blocks a worker.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import boto3
import pytest

from crowdkit.localturk import LocalTurk, parse_question_form_answers
from tests.localturk_support import Worker

LOCALE = "00000000000000000071"
NUMBER_APPROVED = "00000000000000000040"
PERCENT_APPROVED = "000000000000000000L0"
EXTERNAL = (
    '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/'
    '2006-07-14/ExternalQuestion.xsd"><ExternalURL>https://survey.example.org/study?id={i}'
    "</ExternalURL><FrameHeight>600</FrameHeight></ExternalQuestion>")


# --- the tool ---------------------------------------------------------------------------------
def find_or_create_qualification(client, name: str) -> str:
    kwargs = {"Query": name, "MustBeRequestable": True, "MustBeOwnedByCaller": True,
              "MaxResults": 100}
    page = client.list_qualification_types(**kwargs)
    while page["QualificationTypes"]:
        for qualification in page["QualificationTypes"]:
            if qualification["Name"] == name:
                return qualification["QualificationTypeId"]
        page = client.list_qualification_types(**kwargs, NextToken=page["NextToken"])
    return client.create_qualification_type(
        Name=name, Description="Took part in the survey", QualificationTypeStatus="Active",
    )["QualificationType"]["QualificationTypeId"]


def all_assignments(client, hit_id: str) -> list[dict]:
    out, page = [], client.list_assignments_for_hit(HITId=hit_id, MaxResults=2)
    while page["Assignments"]:
        out += page["Assignments"]
        page = client.list_assignments_for_hit(HITId=hit_id, MaxResults=2,
                                               NextToken=page["NextToken"])
    return out


def reviewable_hits(client) -> list[str]:
    out, page = [], client.list_reviewable_hits(MaxResults=1)
    while "NextToken" in page:  # the other loop tools write
        out += [h["HITId"] for h in page["HITs"]]
        page = client.list_reviewable_hits(MaxResults=1, NextToken=page["NextToken"])
    return out


# --- the run ----------------------------------------------------------------------------------
@pytest.fixture
def turk(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        yield service


@pytest.fixture
def client(turk, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_MTURK", turk.endpoint_url)  # boto3 reads it
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "anything")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "anything")
    return boto3.client("mturk", region_name="us-east-1")


def experienced(turk, worker_id: str) -> Worker:
    worker = Worker(turk.base_url, worker_id)
    status, out = worker.profile(country="US", qualifications={
        NUMBER_APPROVED: 2000, PERCENT_APPROVED: 99})
    assert status == 200, out
    return worker


def test_a_third_party_requester_workflow_runs_unchanged(turk, client):
    assert client.meta.endpoint_url == turk.endpoint_url
    took_part = find_or_create_qualification(client, "survey-2024 participant")
    assert find_or_create_qualification(client, "survey-2024 participant") == took_part
    requirements = [
        {"QualificationTypeId": took_part, "Comparator": "DoesNotExist",
         "ActionsGuarded": "DiscoverPreviewAndAccept"},
        {"QualificationTypeId": PERCENT_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [95], "ActionsGuarded": "DiscoverPreviewAndAccept"},
        {"QualificationTypeId": NUMBER_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [1000], "ActionsGuarded": "DiscoverPreviewAndAccept"},
        {"QualificationTypeId": LOCALE, "Comparator": "EqualTo",
         "LocaleValues": [{"Country": "US"}]},
    ]
    hit_type = client.create_hit_type(
        Title="A short survey", Description="Ten questions", Reward="1.00",
        AssignmentDurationInSeconds=1800, AutoApprovalDelayInSeconds=3 * 86400,
        QualificationRequirements=requirements)["HITTypeId"]
    hits = [client.create_hit_with_hit_type(
        HITTypeId=hit_type, MaxAssignments=3, LifetimeInSeconds=86400,
        Question=EXTERNAL.format(i=i), UniqueRequestToken=f"survey-2024-{i}")["HIT"]["HITId"]
        for i in range(2)]

    newcomer = Worker(turk.base_url, "A1NEWCOMER")  # no history: the HITs stay hidden
    assert newcomer.hits() == []
    people = [experienced(turk, f"A{n}RESPONDENT") for n in range(1, 5)]
    for n, person in enumerate(people):
        [listed, *_] = person.hits()
        assert listed["CanAccept"], listed
        assignment = person.accept(hits[n % 2])
        assert assignment["QuestionURL"].startswith(f"{turk.base_url}/worker/question/")
        status, _ = person.submit(assignment["AssignmentId"], answer=f"response {n}")
        assert status == 200

    careless = None
    for hit_id in hits:
        for assignment in all_assignments(client, hit_id):
            answers = parse_question_form_answers(assignment["Answer"])
            if answers["answer"] == "response 3":
                careless = assignment
                client.reject_assignment(AssignmentId=assignment["AssignmentId"],
                                         RequesterFeedback="")
            else:
                client.approve_assignment(AssignmentId=assignment["AssignmentId"])
            client.associate_qualification_with_worker(
                QualificationTypeId=took_part, WorkerId=assignment["WorkerId"],
                IntegerValue=1, SendNotification=False)
    assert careless is not None

    # more people wanted: extend the first HIT by an assignment and a day, then end both
    client.create_additional_assignments_for_hit(HITId=hits[0],
                                                 NumberOfAdditionalAssignments=1,
                                                 UniqueRequestToken="survey-2024-more")
    hit = client.get_hit(HITId=hits[0])["HIT"]
    later = hit["Expiration"].timestamp() + 86400
    client.update_expiration_for_hit(HITId=hits[0], ExpireAt=datetime.fromtimestamp(later))
    assert client.get_hit(HITId=hits[0])["HIT"]["MaxAssignments"] == 4
    client.create_worker_block(WorkerId=careless["WorkerId"], Reason="random answers")
    assert Worker(turk.base_url, careless["WorkerId"]).hits() == []
    assert Worker(turk.base_url, careless["WorkerId"]).try_accept(hits[0])[0] == 403
    for hit_id in hits:
        client.update_expiration_for_hit(HITId=hit_id, ExpireAt=datetime(2015, 1, 1))

    assert sorted(reviewable_hits(client)) == sorted(hits)
    for hit_id in hits:
        client.delete_hit(HITId=hit_id)
    assert client.list_hits()["HITs"] == []
    blocked = client.list_worker_blocks()["WorkerBlocks"]
    assert [b["WorkerId"] for b in blocked] == [careless["WorkerId"]]
    balance = client.get_account_balance()
    assert Decimal(balance["AvailableBalance"]) == Decimal("10000.00") - 3 * Decimal("1.20")
    assert Decimal(balance["OnHoldBalance"]) == 0
