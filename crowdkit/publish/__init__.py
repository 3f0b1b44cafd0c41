"""design -> upload -> render -> create HITs, safely and resumably.

The order of events for one study and target:

1. design the tasks into the ledger (a no-op when the design is unchanged);
2. plan the HITs (crowdkit.publish.plan): one per task, or several when a task wants more
   than `[hit] max_assignments_per_hit` assignments (9 by default, which avoids MTurk's
   40 % fee);
3. price what is still to be created, itemised (crowdkit.publish.cost); live spending needs
   `--target live`, enough balance, and a confirmation;
4. host the images (S3 or the local service) and check that browsers can read them;
5. let the platform set up the study (MTurk: its qualification types and HIT type);
6. create each HIT with a request token derived from the ledger's random study id and the
   task. The ledger records the intent before the call and the HIT id after it, so a run
   killed at any moment is resumed by running publish again: a HIT whose answer was lost
   is found by its token (the platform refuses to make it twice) or by listing the
   account's postings. A posting another study made is never adopted;
7. a study that asks for more assignments than its HITs have grows: its open HITs get more
   assignments and new HITs take the rest (crowdkit.publish.grow), with the same care.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from crowdkit.design import design_study
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import Platform, PlatformError, Posting
from crowdkit.progress import Advance, Progress, silent
from crowdkit.publish.cost import Cost, estimate_cost, format_cost
from crowdkit.publish.dryrun import Rendered, format_size, render_tasks, write_dry_run
from crowdkit.publish.grow import add_assignments, settle_additions, unsettled_additions
from crowdkit.publish.plan import (
    AddPlan,
    HitPlan,
    plan_hits,
    plan_study,
    request_token,
    resolve_target,
    split_assignments,
)
from crowdkit.store import (
    S3Store,
    Store,
    check_served,
    images_from_ledger,
    open_store,
    over_budget,
)
from crowdkit.store import image_base_url as store_image_base_url
from crowdkit.study import Study, StudyConfig
from crowdkit.tasks import DesignedTask
from crowdkit.units import money_str, plural

__all__ = [
    "CRASH_ENV", "AddPlan", "Cost", "HitPlan", "PublishResult", "Rendered", "default_store",
    "estimate_cost", "format_cost", "image_base_url", "plan_hits", "publish",
    "request_token", "resolve_target", "split_assignments",
]

CREATE_WORKERS = 8
# Test hook: "point:n" makes the process SIGKILL itself the n-th time it reaches `point`.
CRASH_ENV = "CROWDKIT_CRASH_AT"
_TO_CREATE = (None, "intent", "failed")  # expired or deleted HITs are never made again


@dataclass
class PublishResult:
    target: str
    hits_total: int
    created: int = 0
    resumed: int = 0
    already: int = 0
    added: int = 0  # assignments added to HITs that existed
    cost: Cost = field(default_factory=Cost)
    sizes: dict[str, int] = field(default_factory=dict)
    over_budget: dict[str, int] = field(default_factory=dict)
    uploaded: int = 0
    skipped_uploads: int = 0
    preview_url: str | None = None
    hit_group_id: str | None = None
    dry_run_dir: Path | None = None
    store: str | None = None
    plan_lines: list[str] = field(default_factory=list)  # shown before anything is sent
    notes: list[str] = field(default_factory=list)  # what happened on the way

    def summary(self) -> str:
        if self.dry_run_dir is not None:
            return (f"dry run: {plural(self.hits_total, 'HIT')} rendered into "
                    f"{self.dry_run_dir}; "
                    "nothing was sent anywhere")
        lines = [
            f"{self.target}: {plural(self.hits_total, 'HIT')} for this study "
            f"({self.created} created now, "
            f"{self.resumed} recovered from an earlier run, {self.already} already there)",
        ]
        if self.added:
            lines.append(f"{plural(self.added, 'assignment')} added to existing HITs")
        if self.store:
            lines.append(f"images: {self.uploaded} uploaded, {self.skipped_uploads} already "
                         f"hosted ({self.store})")
        if self.preview_url:
            where = "open" if self.target == "local" else "worker preview"
            lines.append(f"{where}: {self.preview_url}")
        return "\n".join(lines)


def default_store(study: Study, target: str) -> Store:
    """The store [storage] chooses for `target` (crowdkit.store.open_store): by default S3
    for sandbox and live and the local service's files for local."""
    return open_store(study, target)


def image_base_url(study: Study, target: str) -> str:
    """Where the worker's page loads images from, without touching the network."""
    return store_image_base_url(study.config, study.name, target)


@dataclass
class _Run:
    """One publish run: the study and platform, the open ledger, and what is planned."""

    study: Study
    platform: Platform
    ledger: Ledger
    tasks: list[DesignedTask]
    image_rows: dict[str, sqlite3.Row]  # the ledger's images, by key
    plans: list[HitPlan]
    recorded: dict[str, sqlite3.Row]  # the ledger's HITs on this target, by request token
    todo: list[HitPlan]
    additions: list[AddPlan]
    rendered: Rendered
    result: PublishResult
    progress: Progress
    workers: int

    @property
    def config(self) -> StudyConfig:
        return self.study.config

    @property
    def target(self) -> str:
        return self.platform.target


def publish(
    study: Study,
    platform: Platform,
    *,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    apply_bucket_policy: bool = False,
    store: Store | None = None,
    progress: Progress = silent,
    workers: int = CREATE_WORKERS,
    on_plan: Callable[[list[str]], None] | None = None,
) -> PublishResult:
    """Publish every HIT of the study on `platform`; safe to run again at any time.

    `store` defaults to the target's (tests, the demo and the benchmark pass their own).
    `on_plan` gets the plan (HITs, download sizes, cost) before anything is sent, so it
    can be shown before `confirm` is asked before live spending (unless `yes`; without
    `confirm` live publishing needs `yes`). `workers` create calls are in flight at once.
    """
    target = platform.target
    platform.check()  # the platform's settings (MTurk: locales) fail before anything else
    design_study(study)
    with Ledger.open(study.db_path, write=True, command="crowdkit publish") as ledger:
        base_url = store.base_url if store is not None else image_base_url(study, target)
        unsettled = unsettled_additions(ledger, target)
        if unsettled and not dry_run:
            settle_additions(ledger, platform)
        run = _plan_run(study, platform, ledger, base_url, progress, workers)
        if unsettled and dry_run:
            run.result.notes.append(
                f"{unsettled} additions of an earlier run are unconfirmed; this plan may count "
                "them again (a real publish checks them first)")
        run.result.plan_lines = _plan_lines(run)
        if on_plan is not None:
            on_plan(run.result.plan_lines)
        if dry_run:
            run.result.dry_run_dir = write_dry_run(study, run.tasks, run.plans, run.image_rows,
                                                   run.rendered)
            return run.result
        if run.todo or run.additions:
            _check_balance(run)
            _confirm_spending(run, yes, confirm)
        if run.todo:
            store = store or default_store(study, target)
            _host_images(run, store, apply_bucket_policy)
            if store.base_url != base_url:
                run.rendered = render_tasks(study, run.tasks, run.image_rows, store.base_url,
                                            platform)
            platform.prepare(ledger)
            _create_hits(run)
        if run.additions:
            run.result.added = add_assignments(ledger, platform, run.additions, progress,
                                               _crash_point)
        if not run.todo and not run.additions:
            run.result.notes.append("every HIT of this study already exists with the "
                                    "assignments study.toml asks for; nothing to create")
        run.result.preview_url = _preview_link(run)
        ledger.log_event("publish.done", target=target, hits=len(run.plans),
                         created=run.result.created, resumed=run.result.resumed)
    return run.result


def _plan_run(study: Study, platform: Platform, ledger: Ledger, base_url: str,
              progress: Progress, workers: int) -> _Run:
    """Everything publish decides before it talks to anyone: HITs, what is left, sizes, cost."""
    config = study.config
    tasks = ledger.tasks()
    image_rows = ledger.images()
    rows = ledger.hits(platform.target)
    study_plan = plan_study([t.public.task_id for t in tasks], ledger.study_id(),
                            config.hit.assignments_per_task, config.hit.max_assignments_per_hit,
                            rows)
    plans = study_plan.hits
    recorded = {row["request_token"]: row for row in rows}
    todo = [p for p in plans if _row_status(recorded.get(p.request_token)) in _TO_CREATE]
    rendered = render_tasks(study, tasks, image_rows, base_url, platform)
    result = PublishResult(
        target=platform.target, hits_total=len(plans), already=len(plans) - len(todo),
        cost=estimate_cost(todo, config, platform, study_plan.additions), sizes=rendered.sizes,
        over_budget=over_budget(rendered.sizes, config.storage.hit_size_budget_mb))
    if study_plan.kept_above:
        result.notes.append(
            f"{plural(study_plan.kept_above, 'task')} have more assignments posted than "
            "[hit] assignments_per_task asks for now; publish never takes assignments away")
    return _Run(study, platform, ledger, tasks, image_rows, plans, recorded, todo,
                study_plan.additions, rendered, result, progress, max(1, workers))


def _row_status(row: sqlite3.Row | None) -> str | None:
    return None if row is None else str(row["status"])


def _plan_lines(run: _Run) -> list[str]:
    """The HIT count, the range of download sizes, budget warnings and the cost."""
    config, result, plans = run.config, run.result, run.plans
    lines = []
    sizes = sorted(result.sizes.values())
    budget = config.storage.hit_size_budget_mb
    if sizes:
        lines.append(f"{plural(len(plans), 'HIT')} ({plural(len(result.sizes), 'task')}); "
                     "download per HIT "
                     f"{format_size(sizes[0])} to {format_size(sizes[-1])} "
                     f"(budget {budget:g} MB)")
    for task_id, n in sorted(result.over_budget.items()):
        lines.append(f"warning: task {task_id} downloads {format_size(n)}, over the "
                     f"[storage] hit_size_budget_mb of {budget:g} MB; "
                     "workers on slow connections may give up")
    if result.cost.assignments:
        what = [f"{plural(result.cost.hits, 'HIT')} still to create"] if result.cost.hits else []
        if result.cost.added:
            what.append(f"{plural(result.cost.added, 'assignment')} to add to "
                        f"{plural(len(run.additions), 'existing HIT')}")
        lines.append(f"cost of the {' and '.join(what)} ({result.target}):")
        lines.append(format_cost(result.cost))
    return lines


def _check_balance(run: _Run) -> None:
    """Refuse before anything is created when the account cannot pay for it."""
    cost, target = run.result.cost, run.target
    balance = run.platform.balance()
    if balance < cost.total:
        raise CrowdkitError(
            f"the {target} account balance is ${money_str(balance)}, less than the "
            f"${money_str(cost.total)} these HITs may cost; add funds (or reduce the HITs) "
            "and publish again"
        )


def _confirm_spending(run: _Run, yes: bool, confirm: Callable[[str], bool] | None) -> None:
    """Live spending needs a yes, after the itemised cost has been shown."""
    if run.target != "live" or yes:
        return
    question = (f"Spend up to ${money_str(run.result.cost.total)} of real money on "
                f"{run.platform.describe()}?")
    if confirm is None or not confirm(question):
        raise CrowdkitError("not confirmed; nothing was published (pass --yes to skip the "
                            "question)")


def _host_images(run: _Run, store: Store, apply_policy: bool) -> None:
    """Make browsers able to read the images (S3: check the policy), then upload them."""
    if isinstance(store, S3Store):
        if apply_policy:
            store.apply_public_read_policy()
            run.result.notes.append(f"bucket policy: public read on s3://{store.bucket}/"
                                    f"{store.prefix}* (no listing)")
        if not store.checked_over_http:
            store.check_public_read()
    images = images_from_ledger(run.image_rows, run.study.root)
    with run.progress("uploading images", total=len(images)) as advance:
        uploaded = store.upload(images, progress=advance)
    if store.checked_over_http and images:
        check_served(store.base_url, images[0])  # as a worker's browser asks for it
    result = run.result
    result.uploaded = len(uploaded.uploaded)
    result.skipped_uploads = len(uploaded.skipped)
    result.store = store.describe()


def _create_hits(run: _Run) -> None:
    """Create the HITs still to do: intents first, then calls in parallel, ids as they come.

    Intents left by an earlier run may have made HITs whose answers were lost; one listing
    pass finds those by their token before anything new is asked for.
    """
    ledger, target, todo = run.ledger, run.target, run.todo
    owner = ledger.study_id()
    stale = {p.request_token for p in todo if p.request_token in run.recorded}
    found = run.platform.find_postings(stale, owner=owner) if stale else {}
    reward = money_str(run.config.hit.reward)
    with ledger.transaction():
        for plan in todo:
            ledger.record_hit_intent(
                target=target, request_token=plan.request_token, task_id=plan.task_id,
                part=plan.part, max_assignments=plan.max_assignments, reward=reward)
    _crash_point("intents-recorded")

    def create(plan: HitPlan) -> Posting:
        return run.platform.create_posting(
            request_token=plan.request_token, task_id=plan.task_id,
            max_assignments=plan.max_assignments, question=run.rendered.questions[plan.task_id],
            lifetime_s=run.config.hit.lifetime, owner=owner)

    with run.progress(f"creating HITs ({target})", total=len(todo)) as advance:
        for plan in [p for p in todo if p.request_token in found]:
            _record_created(ledger, target, plan, found[plan.request_token])
            run.result.resumed += 1
            advance(1)
        remaining = [p for p in todo if p.request_token not in found]
        _run_creates(run, remaining, create, advance)


def _run_creates(run: _Run, plans: list[HitPlan], create: Callable[[HitPlan], Posting],
                 advance: Advance) -> None:
    """Keep `run.workers` create calls in flight; record each answer as it arrives.

    On the first failure no new call starts, but every call already made is waited for and
    recorded before the error is raised, so the ledger knows all it can.
    """
    queue = iter(plans)
    error: BaseException | None = None
    result = run.result
    with ThreadPoolExecutor(max_workers=run.workers) as pool:
        pending = {pool.submit(create, p): p for p in itertools.islice(queue, run.workers)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    plan = pending.pop(future)
                    try:
                        posting = _result_or_user_error(future, plan)
                    except Exception as exc:
                        error = error or exc
                        continue
                    _crash_point("hit-returned")
                    _record_created(run.ledger, run.target, plan, posting)
                    _crash_point("hit-recorded")
                    result.hit_group_id = result.hit_group_id or posting.group_id
                    result.resumed += posting.existed
                    result.created += not posting.existed
                    advance(1)
                    nxt = None if error else next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(create, nxt)] = nxt
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if error is not None:
        raise error


def _result_or_user_error(future: Future[Posting], plan: HitPlan) -> Posting:
    """The created posting, or one line that says what failed and that a re-run resumes."""
    try:
        return future.result()
    except PlatformError as exc:
        raise CrowdkitError(
            f"creating the HIT of task {plan.task_id} (part {plan.part}) failed: "
            f"{exc.code + ': ' if exc.code else ''}{exc.detail or exc}; the HITs made so far "
            "are recorded: fix the cause and run publish again to create the rest"
        ) from exc


def _record_created(ledger: Ledger, target: str, plan: HitPlan, posting: Posting) -> None:
    ledger.record_hit_created(
        target=target, request_token=plan.request_token, hit_id=posting.id,
        hit_type_id=posting.type_id,
        expiration=posting.expiration.isoformat() if posting.expiration else None,
    )


def _preview_link(run: _Run) -> str | None:
    """The worker preview of the study's HIT group, or the local worker site."""
    group_id = run.result.hit_group_id or _any_group_id(run)
    return run.platform.preview_url(group_id)


def _any_group_id(run: _Run) -> str | None:
    """The HIT group (what worker preview links name) of one of the study's HITs."""
    for row in run.ledger.hits(run.target):
        if row["hit_id"]:
            try:
                return run.platform.posting_state(row["hit_id"]).group_id
            except PlatformError:  # the link is a convenience, never a failure
                return None
    return None


def _crash_point(name: str) -> None:
    """The test hook of CRASH_ENV: die here, as abruptly as a power cut would."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    seen = _CRASH_COUNTS.get(name, 0) + 1
    _CRASH_COUNTS[name] = seen
    if seen >= int(count or 1):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


_CRASH_COUNTS: dict[str, int] = {}
