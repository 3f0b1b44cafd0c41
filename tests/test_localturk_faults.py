"""Fault injection: throttling, 5xx faults, lost answers and latency, as boto3 sees them."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from crowdkit.localturk import FaultConfig, LocalTurk, question_form_answers
from tests.localturk_support import Worker, hit_args


@pytest.fixture
def turk(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        yield service


def test_throttling_raises_boto3s_throttling_error(turk):
    turk.set_faults(FaultConfig(throttle_rate=1.0))
    mturk = turk.boto3_client(max_attempts=1)
    with pytest.raises(ClientError) as excinfo:
        mturk.get_account_balance()
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_boto3_retries_throttling_as_it_would_against_mturk(turk):
    turk.set_faults(FaultConfig(throttle_rate=1.0))
    mturk = turk.boto3_client(max_attempts=2)
    with pytest.raises(ClientError) as excinfo:
        mturk.get_account_balance()
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 1


def test_faults_raise_service_fault_with_status_500(turk):
    turk.set_faults(FaultConfig(fault_rate=1.0))
    mturk = turk.boto3_client(max_attempts=1)
    with pytest.raises(mturk.exceptions.ServiceFault) as excinfo:
        mturk.create_hit(**hit_args())
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert excinfo.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.InternalError"
    turk.set_faults(FaultConfig())
    assert mturk.list_hits()["NumResults"] == 0  # a refused call changed nothing


def test_lost_response_is_what_unique_request_tokens_are_for(turk):
    mturk = turk.boto3_client(max_attempts=1)
    turk.set_faults(FaultConfig(lost_response_rate=1.0, operations={"CreateHIT"}))
    with pytest.raises(mturk.exceptions.ServiceFault):
        mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))
    turk.set_faults(FaultConfig())
    [hit] = mturk.list_hits()["HITs"]  # the HIT was created although the answer was lost
    with pytest.raises(mturk.exceptions.RequestError) as excinfo:
        mturk.create_hit(**hit_args(UniqueRequestToken="task-1"))
    assert excinfo.value.response["TurkErrorCode"] == "AWS.MechanicalTurk.HitAlreadyExists"
    assert hit["HITId"] in excinfo.value.response["Error"]["Message"]
    assert mturk.list_hits()["NumResults"] == 1


def count_failures(turk, calls: int) -> int:
    mturk = turk.boto3_client(max_attempts=1)
    failures = 0
    for _ in range(calls):
        try:
            mturk.get_account_balance()
        except ClientError:
            failures += 1
    return failures


def test_fault_rates_are_honoured_and_seeded(turk):
    turk.set_faults(FaultConfig(throttle_rate=0.2, fault_rate=0.1, seed=7))
    first = count_failures(turk, 200)
    turk.set_faults(FaultConfig(throttle_rate=0.2, fault_rate=0.1, seed=7))
    assert count_failures(turk, 200) == first  # the same seed gives the same run
    assert 35 <= first <= 85  # expected 60 of 200


def test_faults_can_target_some_operations_only(turk):
    turk.set_faults(FaultConfig(fault_rate=1.0, operations={"CreateHIT"}))
    mturk = turk.boto3_client(max_attempts=1)
    with pytest.raises(mturk.exceptions.ServiceFault):
        mturk.create_hit(**hit_args())
    assert mturk.get_account_balance()["AvailableBalance"] == "10000.00"


def test_latency_is_added_to_every_api_call(turk):
    delays: list[float] = []
    turk.faults.sleep = delays.append
    turk.set_faults(FaultConfig(latency_s=0.25))
    mturk = turk.boto3_client(max_attempts=1)
    mturk.get_account_balance()
    mturk.list_hits()
    assert delays == [0.25, 0.25]


def test_worker_site_is_never_faulted(turk):
    mturk = turk.boto3_client(max_attempts=1)
    hit_id = mturk.create_hit(**hit_args())["HIT"]["HITId"]
    delays: list[float] = []
    turk.faults.sleep = delays.append
    turk.set_faults(FaultConfig(fault_rate=1.0, latency_s=0.25))

    # every worker route answers, undelayed, while every requester call fails
    alice = Worker(turk.base_url, "A1ALICE")  # its calls assert HTTP 200 themselves
    assert [h["HITId"] for h in alice.hits()] == [hit_id]
    assignment_id = alice.do_hit(hit_id, answer="x")
    assert [a["AssignmentId"] for a in alice.assignments()] == [assignment_id]
    assert delays == []
    with pytest.raises(mturk.exceptions.ServiceFault):
        mturk.list_assignments_for_hit(HITId=hit_id)
    assert delays == [0.25]  # the faults were on all along

    # and the submission the worker made under those faults is there, whole
    turk.set_faults(FaultConfig())
    [stored] = mturk.list_assignments_for_hit(HITId=hit_id)["Assignments"]
    assert stored["AssignmentId"] == assignment_id and stored["WorkerId"] == "A1ALICE"
    assert stored["AssignmentStatus"] == "Submitted"
    assert stored["Answer"] == question_form_answers([("answer", "x")])


def test_faults_can_be_set_over_http(turk):
    req = urllib.request.Request(turk.base_url + "/_localturk/faults",
                                 data=json.dumps({"throttle_rate": 1.0}).encode(),
                                 headers={"Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(req)) == {"ok": True}
    assert count_failures(turk, 3) == 3


@pytest.mark.parametrize("kwargs", [{"throttle_rate": 1.5}, {"fault_rate": -0.1},
                                    {"throttle_rate": 0.6, "fault_rate": 0.6},
                                    {"latency_s": -1}])
def test_fault_config_rejects_impossible_rates(kwargs):
    with pytest.raises(ValueError):
        FaultConfig(**kwargs)
