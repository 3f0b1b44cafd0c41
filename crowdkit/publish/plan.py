"""Which HITs a study needs: one per task, or several when a task wants many assignments,
and how a published study grows: more assignments on its HITs, or more HITs."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from crowdkit.errors import CrowdkitError, did_you_mean
from crowdkit.study import Study
from crowdkit.units import stored_time

TARGETS = ("local", "sandbox", "live")
# MTurk: a HIT made with fewer than this many assignments can never be raised to this many
# (CreateAdditionalAssignmentsForHIT), and a HIT with this many pays the 40 % fee.
LARGE_HIT = 10


@dataclass(frozen=True)
class HitPlan:
    """One HIT to create: a task (or one part of it) with its assignments and token."""

    task_id: str
    part: int
    max_assignments: int
    request_token: str


@dataclass(frozen=True)
class AddPlan:
    """More assignments on a HIT the study has (or is creating in this run).

    The HIT is named by its request token, because a HIT still to be created has no id
    yet; `before` is its MaxAssignments before the call, and the addition's own token is
    derived from the total it asks for, so a re-run asks for the same addition.
    """

    task_id: str
    part: int
    hit_token: str
    before: int
    add: int
    request_token: str
    reward: Decimal


@dataclass
class StudyPlan:
    """Every HIT the study has or needs (`hits`, design order) and the assignments to add
    to existing ones (`additions`)."""

    hits: list[HitPlan]
    additions: list[AddPlan] = field(default_factory=list)
    kept_above: int = 0  # tasks with more assignments posted than study.toml asks for now


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


def request_token(study_id: str, task_id: str, part: int) -> str:
    """The UniqueRequestToken of one HIT: derived from the ledger's random study id and the
    task, so every re-run asks for the same HIT, the platform refuses to make a second one,
    and another study directory (even one with the same [study] name) never asks for it."""
    digest = hashlib.sha256(f"{study_id}\0{task_id}\0{part}".encode()).hexdigest()
    return f"ck2-{digest[:48]}"


def addition_token(study_id: str, hit_token: str, total: int) -> str:
    """The UniqueRequestToken of raising one HIT to `total` assignments."""
    digest = hashlib.sha256(f"{study_id}\0{hit_token}\0{total}".encode()).hexdigest()
    return f"ck2-add-{digest[:40]}"


def plan_hits(task_ids: list[str], study_id: str, assignments_per_task: int,
              max_assignments_per_hit: int) -> list[HitPlan]:
    """Every HIT a study with no HITs yet needs, in design order."""
    return plan_study(task_ids, study_id, assignments_per_task, max_assignments_per_hit,
                      recorded=[]).hits


def plan_study(task_ids: list[str], study_id: str, assignments_per_task: int,
               max_assignments_per_hit: int, recorded: list[sqlite3.Row],
               now: datetime | None = None) -> StudyPlan:
    """What the study needs on one target, given the HITs the ledger recorded there.

    A recorded HIT keeps its token and size (an intent may have made it already). When a
    task wants more assignments than its HITs have, open HITs are raised first, within
    MTurk's rule that a HIT made with fewer than 10 assignments never reaches 10, and
    within `max_assignments_per_hit`; what is left becomes new HITs. Nothing is ever taken
    away: a task with more assignments posted than asked for keeps them.
    """
    now = now or datetime.now(UTC)
    by_task: dict[str, list[sqlite3.Row]] = {}
    for row in recorded:
        by_task.setdefault(row["task_id"], []).append(row)
    plan = StudyPlan(hits=[])
    for task_id in task_ids:
        rows = sorted(by_task.get(task_id, []), key=lambda r: r["part"])
        plan.hits += [HitPlan(task_id, r["part"], r["max_assignments"], r["request_token"])
                      for r in rows]
        posted = sum(r["max_assignments"] for r in rows)
        wanted = assignments_per_task - posted
        if wanted < 0:
            plan.kept_above += 1
        for row in rows:
            if wanted <= 0:
                break
            room = _room(row, max_assignments_per_hit, now)
            if room > 0:
                add = min(room, wanted)
                total = row["max_assignments"] + add
                plan.additions.append(AddPlan(
                    task_id, row["part"], row["request_token"], row["max_assignments"], add,
                    addition_token(study_id, row["request_token"], total),
                    Decimal(row["reward"])))
                wanted -= add
        if wanted > 0:
            first = max((r["part"] for r in rows), default=-1) + 1
            plan.hits += [
                HitPlan(task_id, first + i, n, request_token(study_id, task_id, first + i))
                for i, n in enumerate(split_assignments(wanted, max_assignments_per_hit))]
    return plan


def _room(row: sqlite3.Row, max_per_hit: int, now: datetime) -> int:
    """How many assignments a recorded HIT can still take: none once it is closed."""
    if row["status"] in ("expired", "deleted"):
        return 0
    expiration = stored_time(row["expiration"])
    if expiration is not None and expiration <= now:
        return 0
    current = int(row["max_assignments"])
    cap = max_per_hit if current >= LARGE_HIT else min(max_per_hit, LARGE_HIT - 1)
    return max(0, cap - current)


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
        raise CrowdkitError(f"unknown target {target!r}{did_you_mean(target, TARGETS)}: use "
                            "local, sandbox or live")
    return target
