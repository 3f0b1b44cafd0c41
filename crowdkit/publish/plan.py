"""Which HITs a study needs: one per task, or several when a task wants many assignments."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from crowdkit.errors import CrowdkitError
from crowdkit.study import Study

TARGETS = ("local", "sandbox", "live")


@dataclass(frozen=True)
class HitPlan:
    """One HIT to create: a task (or one part of it) with its assignments and token."""

    task_id: str
    part: int
    max_assignments: int
    request_token: str


def split_assignments(total: int, max_per_hit: int) -> list[int]:
    """Split a task's assignments into as few HITs as allowed, as evenly as possible.

    >>> split_assignments(20, 9)
    [7, 7, 6]
    """
    if total < 1 or max_per_hit < 1:
        raise ValueError("assignments must be positive")
    parts = math.ceil(total / max_per_hit)
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def request_token(study_name: str, task_id: str, part: int) -> str:
    """The UniqueRequestToken of one HIT: derived from the study and the task, so every
    re-run asks for the same HIT and the platform refuses to make a second one."""
    digest = hashlib.sha256(f"{study_name}\0{task_id}\0{part}".encode()).hexdigest()
    return f"ck-{digest[:48]}"


def plan_hits(task_ids: list[str], study_name: str, assignments_per_task: int,
              max_assignments_per_hit: int) -> list[HitPlan]:
    """Every HIT the study needs, in design order."""
    sizes = split_assignments(assignments_per_task, max_assignments_per_hit)
    return [
        HitPlan(task_id, part, n, request_token(study_name, task_id, part))
        for task_id in task_ids
        for part, n in enumerate(sizes)
    ]


def resolve_target(study: Study, target: str | None) -> str:
    """The target to publish to. Live must be asked for on the command line, every time."""
    if target is None:
        target = study.config.mturk.target
        if target == "live":
            raise CrowdkitError(
                "study.toml sets [mturk] target = \"live\", but spending real money needs "
                "`--target live` on the command line"
            )
    if target not in TARGETS:
        raise CrowdkitError(f"unknown target {target!r}: use local, sandbox or live")
    return target
