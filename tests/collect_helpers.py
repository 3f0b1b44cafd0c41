"""Helpers for the collect, quality, review and simulate tests.

- `designed_study`: a small designed study (tests/factories.py) with its tasks in the ledger;
  `study_with_hits`: the same with one recorded HIT per task (`HITS`).
- `FakeMTurk`: an in-memory stand-in for boto3's MTurk client with MTurk's paging, for tests
  that need exact control over what the service returns (odd answers, page sizes, errors).
- `answer_key`: a hand-made answer key, for tests of parsing and rules without a design.
- `payload` / `answer_xml`: a well-formed answer for a task, to be broken on purpose.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crowdkit.design import AnswerKey, TrialKey, design_study
from crowdkit.ledger import Ledger
from crowdkit.localturk import question_form_answers
from crowdkit.study import Study, load_study
from tests.factories import make_study

QUALITY_TOML = """
[quality]
min_total_time = "30s"
max_total_time = "1h"
min_instruction_time = "5s"
"""


def designed_study(root: Path, extra_toml: str = QUALITY_TOML, **kwargs: Any) -> Study:
    """A designed study (4 tasks of 8 main, 2 catch, 2 practice trials by default)."""
    make_study(root, **kwargs)
    if extra_toml:
        with (root / "study.toml").open("a") as f:
            f.write(extra_toml)
    study = load_study(root)
    design_study(study)
    return study


HITS = {"t0000": "HIT0000", "t0001": "HIT0001", "t0002": "HIT0002", "t0003": "HIT0003"}


def study_with_hits(root: Path) -> Study:
    """`designed_study` with one created HIT per task, task id -> HIT id as in `HITS`."""
    study = designed_study(root)
    add_hits(study, HITS)
    return study


def add_hits(study: Study, hit_ids: dict[str, str], target: str = "local",
             max_assignments: int = 3, expiration: str | None = None) -> None:
    """Record one created HIT per task (task id -> HIT id) in the ledger."""
    with Ledger.open(study.db_path, write=True) as ledger:
        for task_id, hit_id in hit_ids.items():
            token = f"tok-{task_id}"
            ledger.record_hit_intent(target=target, request_token=token, task_id=task_id,
                                     part=0, max_assignments=max_assignments, reward="0.50")
            ledger.record_hit_created(target=target, request_token=token, hit_id=hit_id,
                                      hit_type_id="TYPE", expiration=expiration)


def task_keys(study: Study) -> dict[str, Any]:
    with Ledger.open(study.db_path) as ledger:
        return {t.key.task_id: t.key for t in ledger.tasks()}


def answer_key(phases: list[str], task_id: str = "t0000") -> AnswerKey:
    """One natural-condition trial per phase, in order; the max query alternates sides."""
    trials = [TrialKey(trial_id=f"{i:012x}", trial_index=i, phase=phase, condition="natural",
                       unit_id="3a:1", layer="mixed3a", channel=1, batch=0,
                       max_position="top" if i % 2 else "bottom", reference_mode="min+max",
                       n_references=9)
              for i, phase in enumerate(phases)]
    return AnswerKey(task_id=task_id, condition_order=["natural"], trials=trials)


def payload(key: Any, *, correct: bool | None = True, response: str | None = None,
            rt_ms: float = 2500.0, instructions_ms: float = 40_000,
            total_ms: float = 300_000, practice_rounds: int = 1,
            expertise: int = 0) -> dict[str, Any]:
    """A well-formed payload answering every trial of `key` once (practice: one round)."""
    trials = []
    for i, trial in enumerate(key.trials):
        if response is not None:
            chosen = response
        elif correct is None:
            chosen = "top" if i % 2 else "bottom"
        else:
            right = trial.max_position
            chosen = right if correct else ("bottom" if right == "top" else "top")
        trials.append({"trial_id": trial.trial_id, "response": chosen, "confidence": 2,
                       "rt_ms": rt_ms, "round": 1})
    return {"schema_version": 1, "task_id": key.task_id, "trials": trials,
            "practice_rounds": practice_rounds,
            "timing": {"instructions_ms": instructions_ms, "total_ms": total_ms},
            "questionnaire": {"cnn_experience": expertise, "fv_experience": 0,
                              "feedback": "fine"},
            "client": {"window_width": 1280, "window_height": 800, "user_agent": "test"}}


def answer_xml(data: Any) -> str:
    """The QuestionFormAnswers document MTurk returns for a page that posted `data`."""
    text = data if isinstance(data, str) else json.dumps(data)
    return question_form_answers([("data", text)])


class ClientError(Exception):
    """Shaped like botocore's ClientError: a `response` with Error Code and Message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


class FakeMTurk:
    """The requester calls collect and review make, over in-memory state, with paging."""

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.assignments: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bonus_tokens: dict[str, dict[str, Any]] = {}  # forgotten after 24 h in MTurk
        self.bonuses: list[dict[str, Any]] = []  # every payment, kept for good
        self.grants: list[tuple[str, str]] = []
        self.qualified: dict[str, list[str]] = {}
        self.fail: set[str] = set()  # operation names that raise once
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def add(self, hit_id: str, worker_id: str, data: Any, *, assignment_id: str | None = None,
            status: str = "Submitted", xml: str | None = None,
            auto_approval: datetime | None = None) -> str:
        assignment_id = assignment_id or f"A{len(self.assignments):05d}{hit_id[-4:]}"
        self._clock += timedelta(minutes=1)
        self.assignments[assignment_id] = {
            "AssignmentId": assignment_id, "WorkerId": worker_id, "HITId": hit_id,
            "AssignmentStatus": status, "AcceptTime": self._clock - timedelta(seconds=300),
            "SubmitTime": self._clock,
            "AutoApprovalTime": auto_approval or self._clock + timedelta(days=3),
            "Answer": xml if xml is not None else answer_xml(data),
        }
        return assignment_id

    def _call(self, name: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            self.fail.discard(name)
            raise ClientError("ServiceUnavailable", f"{name} failed on purpose")

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)

    def list_assignments_for_hit(self, **kwargs: Any) -> dict[str, Any]:
        self._call("list_assignments_for_hit", kwargs)
        rows = [copy.deepcopy(a) for a in self.assignments.values()
                if a["HITId"] == kwargs["HITId"]
                and a["AssignmentStatus"] in kwargs.get("AssignmentStatuses", [])]
        size = min(self.page_size, kwargs.get("MaxResults", 100))
        start = int(kwargs.get("NextToken") or 0)
        page = rows[start:start + size]
        out: dict[str, Any] = {"NumResults": len(page), "Assignments": page}
        if start + size < len(rows):
            out["NextToken"] = str(start + size)
        return out

    def approve_assignment(self, **kwargs: Any) -> dict[str, Any]:
        self._call("approve_assignment", kwargs)
        self._set_status(kwargs["AssignmentId"], "Approved")
        return {}

    def reject_assignment(self, **kwargs: Any) -> dict[str, Any]:
        self._call("reject_assignment", kwargs)
        self._set_status(kwargs["AssignmentId"], "Rejected")
        return {}

    def _set_status(self, assignment_id: str, status: str) -> None:
        row = self.assignments[assignment_id]
        if row["AssignmentStatus"] != "Submitted":
            raise ClientError("RequestError", f"assignment {assignment_id} is not submitted")
        row["AssignmentStatus"] = status

    def get_assignment(self, **kwargs: Any) -> dict[str, Any]:
        self._call("get_assignment", kwargs)
        return {"Assignment": copy.deepcopy(self.assignments[kwargs["AssignmentId"]])}

    def send_bonus(self, **kwargs: Any) -> dict[str, Any]:
        self._call("send_bonus", kwargs)
        token = kwargs["UniqueRequestToken"]
        if token in self.bonus_tokens:
            raise ClientError("RequestError", f"The token {token} has already been used")
        self.bonus_tokens[token] = kwargs
        self.bonuses.append(kwargs)
        return {}

    def list_bonus_payments(self, **kwargs: Any) -> dict[str, Any]:
        self._call("list_bonus_payments", kwargs)
        payments = [{"WorkerId": b["WorkerId"], "BonusAmount": b["BonusAmount"],
                     "AssignmentId": b["AssignmentId"], "Reason": b["Reason"]}
                    for b in self.bonuses if b["AssignmentId"] == kwargs["AssignmentId"]]
        return {"NumResults": len(payments), "BonusPayments": payments}

    def associate_qualification_with_worker(self, **kwargs: Any) -> dict[str, Any]:
        self._call("associate_qualification_with_worker", kwargs)
        self.grants.append((kwargs["QualificationTypeId"], kwargs["WorkerId"]))
        return {}

    def list_workers_with_qualification_type(self, **kwargs: Any) -> dict[str, Any]:
        self._call("list_workers_with_qualification_type", kwargs)
        workers = self.qualified.get(kwargs["QualificationTypeId"], [])
        return {"Qualifications": [{"WorkerId": w, "QualificationTypeId":
                                    kwargs["QualificationTypeId"]} for w in workers]}


class BlockingFakeMTurk(FakeMTurk):
    """FakeMTurk with MTurk's worker blocks (CreateWorkerBlock, DeleteWorkerBlock)."""

    def __init__(self, page_size: int = 2) -> None:
        super().__init__(page_size)
        self.blocked: dict[str, str] = {}  # worker id -> reason

    def create_worker_block(self, **kwargs: Any) -> dict[str, Any]:
        self._call("create_worker_block", kwargs)
        self.blocked[kwargs["WorkerId"]] = kwargs["Reason"]
        return {}

    def delete_worker_block(self, **kwargs: Any) -> dict[str, Any]:
        self._call("delete_worker_block", kwargs)
        self.blocked.pop(kwargs["WorkerId"], None)
        return {}
