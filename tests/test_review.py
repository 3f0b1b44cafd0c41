"""`crowdkit review`: policies, bonuses, dry runs, and never approving or paying twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdkit.collect import collect
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.review import bonus_token, plan_review, review
from crowdkit.study import Study, load_study
from tests.collect_helpers import FakeMTurk, answer_xml, payload, study_with_hits, task_keys
from tests.factories import mturk


def with_review(study: Study, toml: str) -> Study:
    with study.toml_path.open("a") as f:
        f.write("\n[review]\n" + toml)
    return load_study(study.root)


@pytest.fixture
def collected(tmp_path: Path) -> tuple[Study, FakeMTurk, dict[str, str]]:
    """Four assignments: good, careless (always top), tampered, and broken; collected."""
    study = study_with_hits(tmp_path / "study")
    keys = task_keys(study)
    fake = FakeMTurk(page_size=100)
    tampered = payload(keys["t0002"])
    tampered["trials"][3]["confidence"] = 7
    ids = {
        "good": fake.add("HIT0000", "AGOOD", payload(keys["t0000"])),
        "careless": fake.add("HIT0001", "ACARELESS", payload(keys["t0001"], response="top")),
        "tampered": fake.add("HIT0002", "ATAMPER", tampered),
        "broken": fake.add("HIT0003", "ABROKEN", None, xml=answer_xml("{oops")),
    }
    collect(study, mturk(study, fake))
    fake.calls.clear()
    return study, fake, ids


def decisions(study: Study) -> dict[str, str]:
    with Ledger.open(study.db_path) as ledger:
        return {a: r["decision"] for a, r in ledger.reviews().items() if r["status"] == "done"}


def test_default_policy_approves_all_but_clear_fraud(collected) -> None:
    study, fake, ids = collected
    lines: list[str] = []
    result = review(study, mturk(study, fake),
                    on_plan=lambda plan: lines.extend(plan.describe().splitlines()))
    assert decisions(study) == {ids["good"]: "approve", ids["careless"]: "approve",
                                ids["tampered"]: "reject"}
    assert result.approved == 2 and result.rejected == 1
    rejects = [c for n, c in fake.calls if n == "reject_assignment"]
    assert rejects == [{"AssignmentId": ids["tampered"],
                        "RequesterFeedback": study.config.review.reject_message}]
    assert fake.assignments[ids["broken"]]["AssignmentStatus"] == "Submitted"  # pending
    assert any("pending" in line and ids["broken"] in line for line in lines)


def test_approve_passing_rejects_excluded_work(collected) -> None:
    study, fake, ids = collected
    study = with_review(study, 'policy = "approve-passing"\nreject_message = "Sorry."\n')
    review(study, mturk(study, fake))
    assert decisions(study) == {ids["good"]: "approve", ids["careless"]: "reject",
                                ids["tampered"]: "reject"}
    assert {c["RequesterFeedback"] for n, c in fake.calls if n == "reject_assignment"} == {
        "Sorry."}


def test_approve_all_approves_everything_submitted(collected) -> None:
    study, fake, ids = collected
    study = with_review(study, 'policy = "approve-all"\n')
    review(study, mturk(study, fake))
    assert set(decisions(study).values()) == {"approve"} and len(decisions(study)) == 4
    assert fake.count("reject_assignment") == 0


def test_dry_run_prints_the_plan_and_does_nothing(collected) -> None:
    study, fake, ids = collected
    study = with_review(study, 'bonus = "0.25"\nbonus_rule = "all"\n')
    lines: list[str] = []
    assert review(study, mturk(study, fake), dry_run=True,
                  on_plan=lambda plan: lines.extend(plan.describe().splitlines())) is None
    text = "\n".join(lines)
    assert "approve 2, reject 1, leave pending 1" in text
    assert "bonuses: 2 totalling $0.50" in text
    assert ids["tampered"] in text
    assert fake.calls == [] and decisions(study) == {}


def test_bonuses_follow_the_rule_and_are_paid_once(collected) -> None:
    study, fake, ids = collected
    study = with_review(study, 'bonus = "0.30"\nbonus_rule = "passing"\nbonus_reason = "Ta"\n')
    first = review(study, mturk(study, fake))
    assert first.bonuses == 1 and str(first.paid) == "0.30"
    (call,) = [c for n, c in fake.calls if n == "send_bonus"]
    assert call == {"WorkerId": "AGOOD", "BonusAmount": "0.30", "AssignmentId": ids["good"],
                    "Reason": "Ta", "UniqueRequestToken": bonus_token("teststudy", ids["good"])}
    assert len(call["UniqueRequestToken"]) <= 64
    calls_before = len(fake.calls)
    second = review(study, mturk(study, fake))
    assert second is None  # nothing left to do
    assert len(fake.calls) == calls_before
    with Ledger.open(study.db_path) as ledger:
        assert [(b["assignment_id"], b["status"]) for b in ledger.bonuses()] == [
            (ids["good"], "done")]


def test_a_failed_call_is_recorded_and_retried_without_doubling(collected) -> None:
    study, fake, ids = collected
    study = with_review(study, 'bonus = "0.10"\nbonus_rule = "all"\n')
    fake.fail.add("send_bonus")
    first = review(study, mturk(study, fake))
    assert first.bonuses == 1 and len(first.failures) == 1
    second = review(study, mturk(study, fake))
    assert second.bonuses == 1 and second.failures == []
    assert len(fake.bonus_tokens) == 2  # one per approved assignment, never more
    assert fake.count("approve_assignment") == 2


def test_an_interrupted_bonus_is_not_paid_twice(collected) -> None:
    """A crash after SendBonus but before the ledger said 'done': the token protects."""
    study, fake, ids = collected
    study = with_review(study, 'bonus = "0.10"\nbonus_rule = "passing"\n')
    token = bonus_token("teststudy", ids["good"])
    fake.send_bonus(WorkerId="AGOOD", BonusAmount="0.10", AssignmentId=ids["good"],
                    Reason="x", UniqueRequestToken=token)
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_bonus(request_token=token, assignment_id=ids["good"], worker_id="AGOOD",
                            amount="0.10", reason="x", status="intent")
    result = review(study, mturk(study, fake))
    assert result.bonuses == 1 and result.failures == []
    assert len(fake.bonus_tokens) == 1
    with Ledger.open(study.db_path) as ledger:
        assert ledger.bonuses()[0]["status"] == "done"


def test_an_interrupted_bonus_is_not_paid_twice_after_mturk_forgot_its_token(collected) -> None:
    """MTurk keeps a UniqueRequestToken for 24 hours only; after that, the payment itself
    must be found before a bonus the ledger never saw finish is sent again."""
    study, fake, ids = collected
    study = with_review(study, 'bonus = "0.10"\nbonus_rule = "passing"\n')
    token = bonus_token("teststudy", ids["good"])
    fake.send_bonus(WorkerId="AGOOD", BonusAmount="0.10", AssignmentId=ids["good"],
                    Reason="x", UniqueRequestToken=token)
    fake.bonus_tokens.clear()  # a day later
    with Ledger.open(study.db_path, write=True) as ledger:
        ledger.record_bonus(request_token=token, assignment_id=ids["good"], worker_id="AGOOD",
                            amount="0.10", reason="x", status="intent")
    result = review(study, mturk(study, fake))
    assert result.failures == []
    assert fake.count("send_bonus") == 1 and len(fake.bonuses) == 1
    with Ledger.open(study.db_path) as ledger:
        assert ledger.bonuses()[0]["status"] == "done"


def test_an_interrupted_approval_is_recognised(collected) -> None:
    study, fake, ids = collected
    fake.approve_assignment(AssignmentId=ids["good"])  # done remotely; the ledger never heard
    result = review(study, mturk(study, fake))
    assert result.failures == []
    assert decisions(study)[ids["good"]] == "approve"


def test_assignments_already_final_in_mturk_are_not_reviewed_again(collected) -> None:
    study, fake, ids = collected
    fake.assignments[ids["careless"]]["AssignmentStatus"] = "Rejected"
    collect(study, mturk(study, fake))
    review(study, mturk(study, fake))
    touched = {c["AssignmentId"] for n, c in fake.calls
               if n in ("approve_assignment", "reject_assignment")}
    assert ids["careless"] not in touched


def test_a_bonus_rule_without_an_amount_is_refused(collected) -> None:
    study, fake, ids = collected
    study = with_review(study, 'bonus_rule = "all"\n')
    with Ledger.open(study.db_path) as ledger, pytest.raises(CrowdkitError, match="bonus"):
        plan_review(study, ledger)


def test_declining_the_confirmation_does_nothing(collected) -> None:
    study, fake, ids = collected
    assert review(study, mturk(study, fake), confirm=lambda plan: False) is None
    assert fake.calls == []
