"""Exclusion rules and expert/lay classification (docs/quality.md).

Every rule is evaluated for every assignment and its result recorded (participants.csv has
one column per rule: pass, fail or n/a), whether or not it excludes: a rule switched off in
[quality] still reports, it just does not exclude. An assignment is excluded when any rule
that is on fails; `exclusion_reasons` names those rules.

The rules, in the order they are reported:

- valid_answer: the answer parsed and matched the task (crowdkit.collect.parse_answer).
- complete: every main and catch trial answered once, practice answered, questionnaire
  given when the page asks for it ([quality] require_complete).
- catch_accuracy: proportion correct on catch trials >= min_catch_accuracy.
- total_time: the page's total time within [min_total_time, max_total_time].
- instruction_time: time on the instructions >= min_instruction_time.
- response_variety: the share of test answers on the more common side (top or bottom) is
  at most max_same_response_fraction. The design shows the max query on top in half the
  trials, so a careful participant is near 0.5; the default 0.9 flags only near-constant
  answering (such as always pressing the same key).
- fast_responses: the share of test answers faster than fast_rt_ms is at most
  max_fast_fraction.
- practice_attempts: practice rounds used <= max_practice_attempts.
- first_assignment: only a worker's first assignment in the study counts
  ([quality] first_assignment_only).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from crowdkit.answers import ParsedAnswer
from crowdkit.payload import Payload
from crowdkit.study import ParticipantsSection, QualitySection, StudyConfig
from crowdkit.tasks import AnswerKey
from crowdkit.trials import registry
from crowdkit.trials.base import Observation, ResponseBase, TrialKeyBase

RULES = ("valid_answer", "complete", "catch_accuracy", "total_time", "instruction_time",
         "response_variety", "fast_responses", "practice_attempts", "first_assignment")
TEST_PHASES = ("main", "catch")
PARTICIPANT_COLUMNS = [
    "participant_id", "assignment_id", "hit_id", "task_id", "target", "status", "accept_time",
    "submit_time", "instructions_s", "total_s", "n_responses", "catch_accuracy", "valid",
    "invalid_reason", *(f"rule_{name}" for name in RULES), "expert_level", "expert_source",
    "cnn_experience", "fv_experience", "feedback", "excluded", "exclusion_reasons",
]
# Whole numbers that are missing for invalid answers stay whole numbers in the CSV.
PARTICIPANT_DTYPES = {"n_responses": "Int64", "cnn_experience": "Int64",
                      "fv_experience": "Int64", "valid": "bool", "excluded": "bool"}


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict: passed True/False, or None when it does not apply."""

    passed: bool | None
    value: float | None = None
    enabled: bool = True

    @property
    def label(self) -> str:
        return "n/a" if self.passed is None else ("pass" if self.passed else "fail")

    @property
    def excludes(self) -> bool:
        return self.enabled and self.passed is False


def _rule(passed: bool | None, value: float | None = None, enabled: bool = True) -> RuleResult:
    return RuleResult(passed, None if value is None else round(float(value), 4), enabled)


@dataclass
class AssignmentRecord:
    """One assignment, parsed and judged: what participants.csv says about it."""

    assignment_id: str
    hit_id: str
    task_id: str
    target: str
    worker_id: str
    participant_id: str
    status: str
    accept_time: str | None
    submit_time: str | None
    auto_approval_time: str | None
    parsed: ParsedAnswer
    key: AnswerKey
    rules: dict[str, RuleResult] = field(default_factory=dict)
    expert_level: str = "unknown"
    expert_source: str = ""
    excluded: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def exclusion_reasons(self) -> str:
        return ";".join(self.reasons)


Answered = list[tuple[TrialKeyBase, ResponseBase, Observation]]


def observations(key: AnswerKey, payload: Payload) -> Answered:
    """Each answer with its trial's key and what its trial type says about it."""
    by_id = {t.trial_id: t for t in key.trials}
    out = []
    for response in payload.trials:
        trial = by_id[response.trial_id]
        out.append((trial, response, registry.get(trial.type).observe(trial, response)))
    return out


def evaluate_rules(record: AssignmentRecord, quality: QualitySection,
                   page_questionnaire: bool) -> dict[str, RuleResult]:
    """The rules that look at one assignment alone (first_assignment needs them all)."""
    payload = record.parsed.payload
    out = {"valid_answer": _rule(record.parsed.valid)}
    if payload is None:
        for name in RULES[1:-1]:
            out[name] = _rule(None)
        return out
    answered = observations(record.key, payload)
    tests = [(k, o) for k, _, o in answered if k.phase in TEST_PHASES]
    out["complete"] = _complete(record.key, payload, answered, quality.require_complete,
                                page_questionnaire)
    catches = [bool(o.correct) for k, o in tests if k.phase == "catch" and o.correct is not None]
    out["catch_accuracy"] = (
        _rule(None) if not catches else
        _rule(sum(catches) / len(catches) >= quality.min_catch_accuracy - 1e-9,
              sum(catches) / len(catches)))
    total_s = payload.timing.total_ms / 1000
    out["total_time"] = _rule(quality.min_total_time <= total_s <= quality.max_total_time,
                              total_s)
    instructions_s = payload.timing.instructions_ms / 1000
    out["instruction_time"] = _rule(instructions_s >= quality.min_instruction_time,
                                    instructions_s)
    choices = [o.choice for _, o in tests if o.choice is not None]
    if choices:
        same = max(choices.count(c) for c in set(choices)) / len(choices)
        out["response_variety"] = _rule(same <= quality.max_same_response_fraction + 1e-9,
                                        same)
    else:
        out["response_variety"] = _rule(None)
    timed = [o.rt_ms for _, o in tests if o.rt_ms is not None]
    if timed:
        fast = sum(1 for rt in timed if rt < quality.fast_rt_ms) / len(timed)
        out["fast_responses"] = _rule(fast <= quality.max_fast_fraction + 1e-9, fast)
    else:
        out["fast_responses"] = _rule(None)
    practice = [r for k, r, _ in answered if k.phase == "practice"]
    if any(k.phase == "practice" for k in record.key.trials):
        rounds = max([payload.practice_rounds, *(r.round for r in practice)])
        out["practice_attempts"] = _rule(rounds <= quality.max_practice_attempts, rounds)
    else:
        out["practice_attempts"] = _rule(None)
    return out


def _complete(key: AnswerKey, payload: Payload, answered: Answered, enabled: bool,
              page_questionnaire: bool) -> RuleResult:
    """Every trial answered once (practice at least once), and the questionnaire."""
    wanted = {t.trial_id for t in key.trials if t.phase != "practice"}
    got = {k.trial_id for k, _, _ in answered if k.phase != "practice"}
    practice_wanted = {t.trial_id for t in key.trials if t.phase == "practice"}
    practice_got = {k.trial_id for k, _, _ in answered if k.phase == "practice"}
    ok = wanted <= got and practice_wanted <= practice_got
    if page_questionnaire and payload.questionnaire is None:
        ok = False
    share = len(got & wanted) / len(wanted) if wanted else 1.0
    return _rule(ok, share, enabled)


def mark_first_assignments(records: list[AssignmentRecord], enabled: bool) -> None:
    """Each worker's earliest assignment (per target) passes; later ones fail."""
    by_worker: dict[tuple[str, str], list[AssignmentRecord]] = defaultdict(list)
    for record in records:
        by_worker[(record.target, record.worker_id)].append(record)
    for group in by_worker.values():
        group.sort(key=lambda r: (r.accept_time or r.submit_time or "", r.assignment_id))
        for i, record in enumerate(group):
            record.rules["first_assignment"] = _rule(i == 0, enabled=enabled)


def expert_level(record: AssignmentRecord, participants: ParticipantsSection,
                 expert_workers: dict[str, set[str]]) -> tuple[str, str]:
    """(expert | lay | unknown, the source that decided) per [participants] expert_rule.

    questionnaire: self-reported CNN or feature-visualization experience at least
    questionnaire_expert_min_level. worker_list: the worker is in expert_workers.
    qualification: the worker holds the expert qualification. any: expert if any source
    says so, lay if a source could tell and none says expert, else unknown.
    """
    rule = participants.expert_rule
    verdicts: list[tuple[str, bool | None]] = []
    if rule in ("worker_list", "any"):
        listed = record.worker_id in participants.expert_workers
        verdicts.append(("worker_list", listed if participants.expert_workers or
                         rule == "worker_list" else None))
    if rule in ("qualification", "any"):
        holders = expert_workers.get(record.target)
        verdicts.append(("qualification",
                         None if holders is None else record.worker_id in holders))
    if rule in ("questionnaire", "any"):
        payload = record.parsed.payload
        q = payload.questionnaire if payload is not None else None
        level = None if q is None else max(q.cnn_experience, q.fv_experience)
        verdicts.append(("questionnaire", None if level is None else
                         level >= participants.questionnaire_expert_min_level))
    for source, is_expert in verdicts:
        if is_expert:
            return "expert", source
    told = [source for source, is_expert in verdicts if is_expert is False]
    if told:
        return "lay", "+".join(told)
    return "unknown", ""


def judge(records: list[AssignmentRecord], config: StudyConfig,
          expert_workers: dict[str, set[str]]) -> None:
    """Fill in each record's rules, expert level, exclusion and reasons (in place)."""
    quality = config.quality
    for record in records:
        record.rules = evaluate_rules(record, quality, config.page.questionnaire)
    mark_first_assignments(records, quality.first_assignment_only)
    for record in records:
        record.reasons = [name for name in RULES if record.rules[name].excludes]
        record.excluded = bool(record.reasons)
        record.expert_level, record.expert_source = expert_level(
            record, config.participants, expert_workers)


def participant_row(record: AssignmentRecord) -> dict[str, Any]:
    """participants.csv: one row per assignment, with no worker id (docs/data.md)."""
    payload = record.parsed.payload
    q = payload.questionnaire if payload is not None else None
    catch = record.rules["catch_accuracy"]
    row: dict[str, Any] = {
        "participant_id": record.participant_id,
        "assignment_id": record.assignment_id,
        "hit_id": record.hit_id,
        "task_id": record.task_id,
        "target": record.target,
        "status": record.status,
        "accept_time": record.accept_time,
        "submit_time": record.submit_time,
        "instructions_s": None if payload is None else
        round(payload.timing.instructions_ms / 1000, 3),
        "total_s": None if payload is None else round(payload.timing.total_ms / 1000, 3),
        "n_responses": None if payload is None else len(payload.trials),
        "catch_accuracy": catch.value,
        "valid": record.parsed.valid,
        "invalid_reason": record.parsed.reason or "",
    }
    for name in RULES:
        row[f"rule_{name}"] = record.rules[name].label
    row.update({
        "expert_level": record.expert_level,
        "expert_source": record.expert_source,
        "cnn_experience": None if q is None else q.cnn_experience,
        "fv_experience": None if q is None else q.fv_experience,
        "feedback": "" if q is None else q.feedback,
        "excluded": record.excluded,
        "exclusion_reasons": record.exclusion_reasons,
    })
    return row
