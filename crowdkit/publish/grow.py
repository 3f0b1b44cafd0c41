"""Growing a published study: more assignments on the HITs it has.

When study.toml asks for more assignments per task than a study's HITs have, the plan
(crowdkit.publish.plan) raises open HITs (CreateAdditionalAssignmentsForHIT, within MTurk's
9/10 rule) and makes new HITs for the rest. Each addition is recorded before the call and
after it (crowdkit.ledger_changes) and carries a UniqueRequestToken, so a run killed at any
moment is finished by the next one without adding twice:

- an intent left by a killed run is settled first, from the HIT's MaxAssignments on the
  platform (what a token cannot tell once the platform has forgotten it, after 24 hours);
- a repeated token within those 24 hours answers AlreadyDone, which means done.
"""

from __future__ import annotations

from collections.abc import Callable

from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import AlreadyDone, Platform, PlatformError
from crowdkit.progress import Progress, silent
from crowdkit.publish.plan import AddPlan


def unsettled_additions(ledger: Ledger, target: str) -> int:
    """How many additions an earlier run asked for and never saw finish."""
    return sum(1 for row in ledger.additions(target) if row["status"] != "done")


def settle_additions(ledger: Ledger, platform: Platform) -> None:
    """Record what happened to additions an earlier run left unfinished (an intent, or a
    call that failed, perhaps after MTurk made it): read from the HIT's MaxAssignments.
    Runs before the plan, so the plan counts every assignment once."""
    for row in ledger.additions(platform.target):
        if row["status"] == "done":
            continue
        try:
            state = platform.posting_state(row["hit_id"])
        except PlatformError as exc:
            raise CrowdkitError(
                f"an earlier publish asked for {row['added']} more assignments on HIT "
                f"{row['hit_id']} and reading the HIT to see whether they were added failed: "
                f"{exc}; run publish again when the platform answers") from exc
        made = state.max_assignments >= row["before"] + row["added"]
        ledger.record_addition(
            request_token=row["request_token"], target=row["target"], hit_id=row["hit_id"],
            before=row["before"], added=row["added"], status="done" if made else "failed",
            error=None if made else (row["error"] or "not made by the earlier run"))


def add_assignments(ledger: Ledger, platform: Platform, additions: list[AddPlan],
                    progress: Progress = silent,
                    crash_point: Callable[[str], None] = lambda name: None) -> int:
    """Make each planned addition, recording it before and after; return how many assignments
    were added. Raises one CrowdkitError after trying them all when some failed."""
    target = platform.target
    hit_ids = {row["request_token"]: row["hit_id"] for row in ledger.hits(target)}
    failures: list[str] = []
    added = 0
    with progress(f"adding assignments ({target})", total=len(additions)) as advance:
        for plan in additions:
            hit_id = hit_ids.get(plan.hit_token)
            if hit_id is None:  # its HIT was not created: the create error says why
                failures.append(f"task {plan.task_id} part {plan.part}: its HIT does not exist")
                continue
            common = {"request_token": plan.request_token, "target": target, "hit_id": hit_id,
                      "before": plan.before, "added": plan.add}
            ledger.record_addition(**common, status="intent")
            crash_point("addition-intent")
            try:
                platform.add_assignments(hit_id, plan.add, plan.request_token)
            except AlreadyDone:
                pass  # an earlier call with this token added them
            except PlatformError as exc:
                ledger.record_addition(**common, status="failed", error=str(exc))
                failures.append(str(exc))
                advance(1)
                continue
            crash_point("addition-returned")
            ledger.record_addition(**common, status="done")
            added += plan.add
            advance(1)
    if failures:
        raise CrowdkitError(
            f"adding assignments failed on {len(failures)} HITs (first: {failures[0]}); what "
            "was added is recorded: run publish again to add the rest")
    return added
