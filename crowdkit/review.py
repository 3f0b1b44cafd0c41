"""`crowdkit review`: approve, reject and bonus assignments per the [review] policy.

Policies (docs/quality.md):

- approve-all: approve every submitted assignment.
- approve-unless-fraud (the default): reject only answers that were clearly tampered with
  (unknown or duplicated trials, impossible values, markup, extra fields, another task's
  answer); approve the rest, excluded or not, as most labs pay excluded workers. Answers
  that are merely broken (no data field, unreadable JSON) are left pending for a person to
  look at; MTurk approves them itself at the auto-approval time.
- approve-passing: approve assignments that pass every quality rule that is on, reject the
  others (a worker's repeat assignment is still approved: the work was done honestly);
  broken answers are left pending as above.

Bonuses (bonus_rule): none, all (every approved assignment) or passing (approved and not
excluded), of [review] bonus each.

Blocks ([review] block_fraud): the worker of an answer rejected as tampered is blocked
(crowdkit.blocks), once, and never again after the researcher unblocked them.

Every call is written to the ledger before ('intent') and after ('done' or 'failed'), and
bonuses carry a UniqueRequestToken derived from the study and assignment, so a re-run,
even after a crash mid-way, never approves, rejects or pays twice. MTurk forgets a token
after 24 hours, so a bonus an earlier run started but never saw finish is retried only
after ListBonusPayments shows no payment for its assignment.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from crowdkit.blocks import is_blocked, set_block
from crowdkit.collect import auto_approval_warnings, build_dataset
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import AlreadyDone, Platform, PlatformError
from crowdkit.progress import Progress, silent
from crowdkit.quality import AssignmentRecord
from crowdkit.study import Study
from crowdkit.units import money_str, plural


@dataclass
class ReviewAction:
    """What review will do with one assignment."""

    assignment_id: str
    hit_id: str
    target: str
    worker_id: str
    participant_id: str
    status: str  # MTurk's: Submitted, Approved or Rejected
    decision: str  # approve, reject or pending
    why: str
    message: str | None = None
    bonus: Decimal | None = None
    bonus_token: str | None = None
    review_done: bool = False  # recorded as done, or already final in MTurk
    bonus_done: bool = False
    bonus_tried: bool = False  # an earlier run started this bonus but never saw it done
    block: bool = False  # block the worker: a tampered answer, and [review] block_fraud
    block_done: bool = False


@dataclass
class ReviewPlan:
    actions: list[ReviewAction]
    warnings: list[str] = field(default_factory=list)

    def to_do(self) -> list[ReviewAction]:
        return [a for a in self.actions if (a.decision != "pending" and not a.review_done)
                or (a.bonus is not None and not a.bonus_done) or (a.block and not a.block_done)]

    def describe(self) -> str:
        """The plan in a few lines: what gets approved, rejected, left, and paid."""
        todo = [a for a in self.actions if not a.review_done]
        approve = [a for a in todo if a.decision == "approve"]
        reject = [a for a in todo if a.decision == "reject"]
        pending = [a for a in todo if a.decision == "pending"]
        bonuses = [a.bonus for a in self.actions if a.bonus is not None and not a.bonus_done]
        total = sum(bonuses, Decimal("0"))
        done = len(self.actions) - len(todo)
        lines = [f"approve {len(approve)}, reject {len(reject)}, leave pending "
                 f"{len(pending)}; {done} already reviewed",
                 f"bonuses: {len(bonuses)} totalling ${money_str(total)}"]
        lines += [f"  reject {a.assignment_id} ({a.participant_id}): {a.why}" for a in reject]
        lines += [f"  pending {a.assignment_id} ({a.participant_id}): {a.why}"
                  for a in pending]
        blocks = sorted({a.participant_id for a in self.actions if a.block and not a.block_done})
        if blocks:
            lines.append(f"block {plural(len(blocks), 'worker')} whose answers were tampered "
                         f"with ([review] block_fraud): {', '.join(blocks)}")
        return "\n".join(lines)


def decide(record: AssignmentRecord, policy: str) -> tuple[str, str]:
    """(approve | reject | pending, why) for one judged assignment under `policy`.

    Tampering is what the answer's problem kind says it is (crowdkit.answers.ProblemKind):
    only an edited request sends it, never the page itself.
    """
    problem = record.parsed.problem
    if policy == "approve-all":
        return "approve", "policy approve-all"
    if problem is not None and problem.kind.tampering:
        return "reject", f"tampered answer ({problem})"
    if problem is not None:
        return "pending", f"broken answer ({problem}); look at it before MTurk auto-approves"
    if policy == "approve-unless-fraud":
        return "approve", "no sign of fraud"
    failing = [r for r in record.reasons if r != "first_assignment"]
    if failing:
        return "reject", "failed " + ", ".join(failing)
    return "approve", "passes the quality rules"


def bonus_token(study_name: str, assignment_id: str) -> str:
    """SendBonus's UniqueRequestToken: one per study and assignment (at most 64 chars)."""
    digest = hashlib.sha256(f"{study_name}:{assignment_id}:bonus".encode()).hexdigest()
    return "crowdkit-bonus-" + digest[:40]


def plan_review(study: Study, ledger: Ledger, target: str | None = None) -> ReviewPlan:
    """Decide every assignment from the ledger alone (run `crowdkit collect` first)."""
    config = study.config.review
    if config.bonus_rule != "none" and config.bonus <= 0:
        raise CrowdkitError(f"{study.toml_path}: [review] bonus_rule is {config.bonus_rule!r} "
                            "but [review] bonus is 0; set an amount such as \"0.50\"")
    dataset = build_dataset(study, ledger, target=target)
    reviews = ledger.reviews()
    blocks = ledger.blocks(target)
    paid = {b["assignment_id"]: b for b in ledger.bonuses()}
    actions = []
    for record in dataset.records:
        if target is not None and record.target != target:
            continue
        decision, why = decide(record, config.policy)
        review = reviews.get(record.assignment_id)
        action = ReviewAction(
            assignment_id=record.assignment_id, hit_id=record.hit_id, target=record.target,
            worker_id=record.worker_id, participant_id=record.participant_id,
            status=record.status, decision=decision, why=why,
            message=config.reject_message if decision == "reject" else None,
            review_done=(review is not None and review["status"] == "done")
            or record.status != "Submitted",
        )
        if review is not None and review["status"] == "done":
            action.decision = review["decision"]
        elif record.status == "Approved":
            action.decision = "approve"
        elif record.status == "Rejected":
            action.decision = "reject"
        wants_bonus = config.bonus_rule == "all" or (
            config.bonus_rule == "passing" and not record.excluded)
        if action.decision == "approve" and wants_bonus:
            action.bonus = config.bonus
            action.bonus_token = bonus_token(study.name, record.assignment_id)
            prior = paid.get(record.assignment_id)
            action.bonus_done = prior is not None and prior["status"] == "done"
            action.bonus_tried = prior is not None and not action.bonus_done
        _plan_block(action, record, config.block_fraud, blocks.get(record.worker_id))
        actions.append(action)
    return ReviewPlan(actions, auto_approval_warnings(ledger, target=target))


def _plan_block(action: ReviewAction, record: AssignmentRecord, block_fraud: bool,
                row: sqlite3.Row | None) -> None:
    """Block the worker of a tampered answer that is rejected, when the policy says so;
    never again one the researcher unblocked (their row says blocked 0, whether or not
    that call has gone through yet: `crowdkit unblock` finishes it, review must not undo it)."""
    problem = record.parsed.problem
    fraud = problem is not None and problem.kind.tampering and action.decision == "reject"
    if not (block_fraud and fraud):
        return
    unblocked = row is not None and not row["blocked"]  # asked, even if the call failed
    action.block = not unblocked
    action.block_done = is_blocked(row)


@dataclass
class ReviewResult:
    approved: int = 0
    rejected: int = 0
    bonuses: int = 0
    paid: Decimal = Decimal("0")
    blocked: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"approved {self.approved}, rejected {self.rejected}, sent "
                f"{plural(self.bonuses, 'bonus', 'bonuses')} (${money_str(self.paid)})")
        if self.blocked:
            text += f", blocked {plural(self.blocked, 'worker')}"
        if self.failures:
            text += (f"; {plural(len(self.failures), 'call')} failed (run review again to "
                     "retry)")
        return text


def execute_review(plan: ReviewPlan, ledger: Ledger, platform: Platform, bonus_reason: str,
                   progress: Progress = silent,
                   block_reason: str = "Submitted answers edited outside the task page."
                   ) -> ReviewResult:
    """Carry out the plan on the platform, recording each call before and after it."""
    result = ReviewResult()
    todo = [a for a in plan.to_do() if a.target == platform.target]
    blocked: dict[str, bool] = {}  # worker -> blocked, for the workers tried in this run
    with progress("reviewing", total=len(todo)) as advance:
        for action in todo:
            if action.decision in ("approve", "reject") and not action.review_done:
                _review_one(ledger, platform, action, result)
            if action.bonus is not None and not action.bonus_done and action.review_done:
                _bonus_one(ledger, platform, action, bonus_reason, result)
            if action.block and not action.block_done and action.review_done:
                _block_one(ledger, platform, action, block_reason, result, blocked)
            advance(1)
    return result


def _block_one(ledger: Ledger, platform: Platform, action: ReviewAction, reason: str,
               result: ReviewResult, blocked: dict[str, bool]) -> None:
    """Block a fraud's worker once, however many of their answers were tampered with (a
    block that failed is tried again by the next review, not by the next answer)."""
    if action.worker_id in blocked:
        action.block_done = blocked[action.worker_id]
        return
    error = set_block(ledger, platform, action.worker_id, blocked=True, reason=reason,
                      assignment_id=action.assignment_id)
    blocked[action.worker_id] = error is None
    if error:
        result.failures.append(error)
        return
    action.block_done = True
    result.blocked += 1


def _review_one(ledger: Ledger, platform: Platform, action: ReviewAction,
                result: ReviewResult) -> None:
    ledger.record_review(action.assignment_id, action.decision, action.message, "intent")
    try:
        if action.decision == "approve":
            platform.approve(action.assignment_id)
        else:
            platform.reject(action.assignment_id, action.message or "")
    except PlatformError as exc:
        if not _already(platform, action):
            ledger.record_review(action.assignment_id, action.decision, action.message,
                                 "failed", str(exc))
            result.failures.append(f"{action.decision} {action.assignment_id}: {exc}")
            return
    ledger.record_review(action.assignment_id, action.decision, action.message, "done")
    action.review_done = True
    if action.decision == "approve":
        result.approved += 1
    else:
        result.rejected += 1


def _already(platform: Platform, action: ReviewAction) -> bool:
    """After a failed call: did an earlier, interrupted run already make it?"""
    want = "Approved" if action.decision == "approve" else "Rejected"
    try:
        return platform.submission_status(action.assignment_id) == want
    except PlatformError:
        return False


def _bonus_one(ledger: Ledger, platform: Platform, action: ReviewAction, reason: str,
               result: ReviewResult) -> None:
    assert action.bonus is not None and action.bonus_token is not None
    amount = money_str(action.bonus)
    common = {"request_token": action.bonus_token, "assignment_id": action.assignment_id,
              "worker_id": action.worker_id, "amount": amount, "reason": reason}
    ledger.record_bonus(**common, status="intent")
    try:
        # MTurk forgets a token after 24 hours; the payment record is kept for good.
        if not (action.bonus_tried and platform.bonus_paid(action.assignment_id)):
            platform.pay_bonus(worker_id=action.worker_id, submission_id=action.assignment_id,
                               amount=action.bonus, reason=reason, token=action.bonus_token)
    except AlreadyDone:
        pass
    except PlatformError as exc:
        ledger.record_bonus(**common, status="failed", error=str(exc))
        result.failures.append(f"bonus {action.assignment_id}: {exc}")
        return
    ledger.record_bonus(**common, status="done")
    action.bonus_done = True
    result.bonuses += 1
    result.paid += action.bonus


def review(study: Study, platform: Platform, *, dry_run: bool = False,
           confirm: Callable[[ReviewPlan], bool] = lambda plan: True,
           on_plan: Callable[[ReviewPlan], None] | None = None,
           progress: Progress = silent) -> ReviewResult | None:
    """`crowdkit review`: plan, show (`on_plan`), confirm, then act.

    Returns None for a dry run, when nothing is left to do, or when the plan was not
    confirmed.
    """
    with Ledger.open(study.db_path, write=True, command="crowdkit review") as ledger:
        plan = plan_review(study, ledger, platform.target)
        if on_plan is not None:
            on_plan(plan)
        if dry_run or not plan.to_do() or not confirm(plan):
            return None
        return execute_review(plan, ledger, platform, study.config.review.bonus_reason,
                              progress, block_reason=study.config.review.block_reason)
