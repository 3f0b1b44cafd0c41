"""The quality rules and the expert/lay classification, one behaviour at a time."""

from __future__ import annotations

from typing import Any

import pytest

from crowdkit.collect import AssignmentRecord, parse_answer
from crowdkit.design import AnswerKey
from crowdkit.quality import RULES, judge, participant_row
from crowdkit.study import parse_study_toml
from tests.collect_helpers import answer_key, answer_xml, payload

BASE_TOML = """
[study]
name = "q"
[hit]
title = "t"
description = "d"
reward = "0.50"
"""


def config(extra: str = ""):
    return parse_study_toml(BASE_TOML + extra)


KEY = answer_key(["practice"] * 2 + ["main"] * 10 + ["catch"] * 3)


def record(data: Any, worker: str = "AW1", accept: str = "2026-01-01T00:00:00",
           assignment: str = "A1", key: AnswerKey = KEY) -> AssignmentRecord:
    xml = data if isinstance(data, str) else answer_xml(data)
    return AssignmentRecord(
        assignment_id=assignment, hit_id="H1", task_id=key.task_id, target="local",
        worker_id=worker, participant_id="p" + worker.lower(), status="Submitted",
        accept_time=accept, submit_time=accept, auto_approval_time=None,
        parsed=parse_answer(xml, key), key=key)


def judged(data: Any, extra: str = "", **kwargs: Any) -> AssignmentRecord:
    rec = record(data, **kwargs)
    judge([rec], config(extra), expert_workers={})
    return rec


def set_catch(data: dict[str, Any], n_right: int) -> dict[str, Any]:
    """Make exactly n_right of the catch trials correct."""
    catch_ids = [t for t in KEY.trials if t.phase == "catch"]
    by_id = {r["trial_id"]: r for r in data["trials"]}
    for i, trial in enumerate(catch_ids):
        wrong = "bottom" if trial.max_position == "top" else "top"
        by_id[trial.trial_id]["response"] = trial.max_position if i < n_right else wrong
    return data


def test_a_careful_participant_passes_every_rule() -> None:
    rec = judged(payload(KEY))
    assert {name: rec.rules[name].label for name in RULES} == {name: "pass" for name in RULES}
    assert not rec.excluded and rec.reasons == []


@pytest.mark.parametrize(("n_right", "excluded"), [(3, False), (2, False), (1, True),
                                                   (0, True)])
def test_catch_accuracy_threshold_defaults_to_two_thirds(n_right: int, excluded: bool) -> None:
    rec = judged(set_catch(payload(KEY), n_right))
    assert rec.rules["catch_accuracy"].value == pytest.approx(n_right / 3, abs=1e-4)
    assert rec.excluded is excluded
    assert ("catch_accuracy" in rec.reasons) is excluded


def test_catch_accuracy_threshold_is_configurable() -> None:
    rec = judged(set_catch(payload(KEY), 2), '[quality]\nmin_catch_accuracy = "1"\n')
    assert rec.reasons == ["catch_accuracy"]


@pytest.mark.parametrize(("total_ms", "passes"), [(59_000, False), (60_000, True),
                                                  (7_200_000, True), (7_300_000, False)])
def test_total_time_must_be_within_bounds(total_ms: float, passes: bool) -> None:
    rec = judged(payload(KEY, total_ms=total_ms, instructions_ms=10_000))
    assert rec.rules["total_time"].passed is passes


def test_instruction_time_has_a_minimum() -> None:
    assert judged(payload(KEY, instructions_ms=4_000)).reasons == ["instruction_time"]
    assert judged(payload(KEY, instructions_ms=6_000)).reasons == []


def test_always_the_same_side_is_excluded_but_varied_answers_are_not() -> None:
    same = judged(payload(KEY, response="bottom"))
    assert "response_variety" in same.reasons
    assert same.rules["response_variety"].value == 1.0
    varied = judged(payload(KEY, correct=None))  # alternating, half of them wrong
    assert varied.rules["response_variety"].passed
    assert "response_variety" not in varied.reasons


def test_too_many_fast_responses_exclude() -> None:
    data = payload(KEY)
    tests = [r for r in data["trials"] if not r["trial_id"].startswith(("000000000000",
                                                                        "000000000001"))]
    for r in tests[:2]:
        r["rt_ms"] = 100.0  # 2 of 13 fast: 15 %, under the 20 % default
    assert judged(data).rules["fast_responses"].passed
    for r in tests[:3]:
        r["rt_ms"] = 100.0  # 3 of 13: 23 %
    assert judged(data).reasons == ["fast_responses"]


def test_practice_attempts_have_a_maximum() -> None:
    data = payload(KEY, practice_rounds=4)
    assert judged(data).reasons == ["practice_attempts"]
    assert judged(data, "[quality]\nmax_practice_attempts = 4\n").reasons == []


def test_practice_rounds_in_the_trials_count_too() -> None:
    data = payload(KEY)
    practice = [dict(r) for r in data["trials"][:2]]
    for round_ in (2, 3, 4):
        data["trials"] += [{**r, "round": round_} for r in practice]
    rec = judged(data)
    assert rec.rules["practice_attempts"].value == 4 and "practice_attempts" in rec.reasons


def test_incomplete_data_is_excluded_unless_the_rule_is_off() -> None:
    data = payload(KEY)
    data["trials"] = data["trials"][:-1]
    assert "complete" in judged(data).reasons
    off = judged(data, "[quality]\nrequire_complete = false\n")
    assert off.rules["complete"].label == "fail"  # still recorded ...
    assert "complete" not in off.reasons  # ... but it does not exclude


def test_a_missing_questionnaire_is_incomplete_when_the_page_asks_for_it() -> None:
    data = payload(KEY)
    data["questionnaire"] = None
    assert "complete" in judged(data).reasons
    assert judged(data, "[page]\nquestionnaire = false\n").reasons == []


def test_only_the_first_assignment_of_a_worker_counts() -> None:
    later = record(payload(KEY), accept="2026-01-02T00:00:00", assignment="A2")
    first = record(payload(KEY), accept="2026-01-01T00:00:00", assignment="A1")
    other = record(payload(KEY), worker="AW2", assignment="A3")
    judge([later, first, other], config(), expert_workers={})
    assert first.reasons == [] and other.reasons == []
    assert later.reasons == ["first_assignment"]
    later2 = record(payload(KEY), accept="2026-01-02T00:00:00", assignment="A2")
    first2 = record(payload(KEY), accept="2026-01-01T00:00:00", assignment="A1")
    judge([later2, first2], config("[quality]\nfirst_assignment_only = false\n"), {})
    assert later2.rules["first_assignment"].label == "fail" and not later2.excluded


def test_an_invalid_answer_is_excluded_and_its_other_rules_do_not_apply() -> None:
    rec = judged(answer_xml("{broken"))
    assert rec.reasons == ["valid_answer"]
    assert rec.rules["catch_accuracy"].label == "n/a"
    row = participant_row(rec)
    assert row["valid"] is False and row["invalid_reason"].startswith("invalid JSON")
    assert row["expert_level"] == "unknown"


@pytest.mark.parametrize(("rule", "cnn", "listed", "qualified", "expected"), [
    ("questionnaire", 2, False, False, ("expert", "questionnaire")),
    ("questionnaire", 1, True, True, ("lay", "questionnaire")),
    ("worker_list", 3, True, False, ("expert", "worker_list")),
    ("worker_list", 3, False, False, ("lay", "worker_list")),
    ("qualification", 0, False, True, ("expert", "qualification")),
    ("qualification", 3, False, False, ("lay", "qualification")),
    ("any", 0, True, False, ("expert", "worker_list")),
    ("any", 0, False, True, ("expert", "qualification")),
    ("any", 3, False, False, ("expert", "questionnaire")),
    ("any", 0, False, False, ("lay", "worker_list+qualification+questionnaire")),
])
def test_expert_or_lay_by_the_configured_rule(rule: str, cnn: int, listed: bool,
                                              qualified: bool,
                                              expected: tuple[str, str]) -> None:
    rec = record(payload(KEY, expertise=cnn))
    extra = f'[participants]\nexpert_rule = "{rule}"\n'
    extra += 'expert_workers = ["AW1"]\n' if listed else 'expert_workers = ["AOTHER"]\n'
    judge([rec], config(extra), expert_workers={"local": {"AW1"} if qualified else set()})
    assert (rec.expert_level, rec.expert_source) == expected


def test_expert_level_is_unknown_when_no_source_can_tell() -> None:
    data = payload(KEY)
    data["questionnaire"] = None
    rec = record(data)
    judge([rec], config('[participants]\nexpert_rule = "any"\n[page]\nquestionnaire = false\n'),
          expert_workers={})
    assert (rec.expert_level, rec.expert_source) == ("unknown", "")
