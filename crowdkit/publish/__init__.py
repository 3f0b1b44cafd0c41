"""design -> upload -> render -> create HITs, safely and resumably.

The order of events for one study and target:

1. design the tasks into the ledger (a no-op when the design is unchanged);
2. plan the HITs: one per task, or several when a task wants more than
   `[hit] max_assignments_per_hit` assignments (9 by default, which avoids MTurk's 40 % fee);
3. price what is still to be created, itemised; live spending needs `--target live`, enough
   balance, and a confirmation;
4. host the images (S3 or the local service) and check that browsers can read them;
5. find or create the qualification types (this study's, the excluded studies');
6. create each HIT with a UniqueRequestToken derived from the study and the task. The
   ledger records the intent before the call and the HIT id after it, so a run killed at any
   moment is resumed by running publish again: a HIT whose answer was lost is found by its
   token (MTurk refuses to make it twice) or, after MTurk forgets tokens (24 h), by the token
   in its RequesterAnnotation.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from crowdkit import turk
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.store import (
    MB,
    HttpLocalStore,
    LocalStore,
    S3Store,
    Store,
    images_from_ledger,
    over_budget,
    s3_base_url,
    study_prefix,
    task_download_bytes,
)
from crowdkit.study import Study, StudyConfig
from crowdkit.units import CENT, money_str

BASE_FEE = Decimal("0.20")
LARGE_HIT_FEE = Decimal("0.20")  # on top of the base fee, for HITs with 10+ assignments
LARGE_HIT_ASSIGNMENTS = 10
MASTERS_FEE = Decimal("0.05")
MIN_FEE = CENT
CREATE_WORKERS = 8
QUALIFICATION_PREFIX = "crowdkit:"
# Test hook: "point:n" makes the process SIGKILL itself the n-th time it reaches `point`.
CRASH_ENV = "CROWDKIT_CRASH_AT"


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# ----------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------


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


def plan_hits(task_ids: list[str], study_name: str, assignments_per_task: int,
              max_assignments_per_hit: int) -> list[HitPlan]:
    """Every HIT the study needs, in design order."""
    sizes = split_assignments(assignments_per_task, max_assignments_per_hit)
    return [
        HitPlan(task_id, part, n, turk.request_token(study_name, task_id, part))
        for task_id in task_ids
        for part, n in enumerate(sizes)
    ]


# ----------------------------------------------------------------------------------------
# Cost
# ----------------------------------------------------------------------------------------


def assignment_fees(reward: Decimal, max_assignments: int, masters: bool) -> tuple[Decimal,
                                                                                    Decimal]:
    """(commission, Masters fee) MTurk charges on one assignment's reward.

    20 % (40 % on HITs with 10 or more assignments) plus 5 % with Masters, at least $0.01;
    the Masters share is split off the rounded total so the two add up to what MTurk takes.
    """
    rate = BASE_FEE + (LARGE_HIT_FEE if max_assignments >= LARGE_HIT_ASSIGNMENTS else 0)
    total = max(MIN_FEE, _round(reward * (rate + (MASTERS_FEE if masters else 0))))
    masters_fee = _round(reward * MASTERS_FEE) if masters else Decimal(0)
    return total - masters_fee, masters_fee


def bonus_fee(amount: Decimal) -> Decimal:
    """MTurk's fee on one bonus: 20 %, at least $0.01."""
    return max(MIN_FEE, _round(amount * BASE_FEE)) if amount > 0 else Decimal(0)


@dataclass
class Cost:
    """The itemised cost of a set of HITs; every amount a Decimal in USD."""

    hits: int = 0
    assignments: int = 0
    reward: Decimal = Decimal("0.00")
    rewards: Decimal = Decimal("0.00")
    commission: Decimal = Decimal("0.00")
    masters_fee: Decimal = Decimal("0.00")
    bonuses: Decimal = Decimal("0.00")
    bonus_fees: Decimal = Decimal("0.00")
    large_hits: int = 0
    bonus_note: str = ""

    @property
    def total(self) -> Decimal:
        return (self.rewards + self.commission + self.masters_fee + self.bonuses
                + self.bonus_fees)

    def lines(self) -> list[tuple[str, Decimal]]:
        """The items as (label, amount), in the order a researcher checks them."""
        rate = "40 %" if self.large_hits else "20 %"
        if self.large_hits and self.large_hits < self.hits:
            rate = "20 % / 40 %"
        items = [
            (f"rewards: {self.assignments} assignments x ${money_str(self.reward)}",
             self.rewards),
            (f"MTurk fee ({rate})", self.commission),
        ]
        if self.masters_fee:
            items.append(("Masters fee (+5 %)", self.masters_fee))
        if self.bonuses:
            items.append((f"expected bonuses ({self.bonus_note})", self.bonuses))
            items.append(("MTurk fee on bonuses (20 %)", self.bonus_fees))
        items.append(("total", self.total))
        return items

    def to_json(self) -> dict[str, Any]:
        return {"hits": self.hits, "assignments": self.assignments,
                **{k: money_str(v) for k, v in (
                    ("reward", self.reward), ("rewards", self.rewards),
                    ("commission", self.commission), ("masters_fee", self.masters_fee),
                    ("bonuses", self.bonuses), ("bonus_fees", self.bonus_fees),
                    ("total", self.total))}}


def estimate_cost(plans: list[HitPlan], config: StudyConfig) -> Cost:
    """What creating `plans` commits the account to, if every assignment is approved."""
    reward = config.hit.reward
    masters = config.qualifications.masters
    bonus = config.review.bonus if config.review.bonus_rule != "none" else Decimal(0)
    cost = Cost(reward=reward)
    for plan in plans:
        commission, masters_fee = assignment_fees(reward, plan.max_assignments, masters)
        cost.hits += 1
        cost.assignments += plan.max_assignments
        cost.large_hits += plan.max_assignments >= LARGE_HIT_ASSIGNMENTS
        cost.rewards += reward * plan.max_assignments
        cost.commission += commission * plan.max_assignments
        cost.masters_fee += masters_fee * plan.max_assignments
        if bonus > 0:
            cost.bonuses += bonus * plan.max_assignments
            cost.bonus_fees += bonus_fee(bonus) * plan.max_assignments
    if bonus > 0:
        who = "every" if config.review.bonus_rule == "all" else "at most every"
        cost.bonus_note = f"${money_str(bonus)} to {who} assignment"
    return cost


def format_cost(cost: Cost) -> str:
    width = max(len(label) for label, _ in cost.lines())
    return "\n".join(f"  {label:<{width}}  ${money_str(amount):>10}"
                     for label, amount in cost.lines())


# ----------------------------------------------------------------------------------------
# Qualifications
# ----------------------------------------------------------------------------------------


def study_qualification_name(study_name: str) -> str:
    """The qualification every participant of a study is granted (found by exact name)."""
    return QUALIFICATION_PREFIX + study_name


def _locale_value(text: str) -> dict[str, str]:
    country, _, subdivision = text.strip().upper().partition("-")
    if len(country) != 2 or not country.isalpha() or (subdivision and (
            len(subdivision) != 2 or not subdivision.isalnum())):
        raise ConfigError(f'[qualifications] locales: {text!r} is not a locale such as "US" '
                          'or "US-NY" (ISO 3166 country, optional subdivision)')
    value = {"Country": country}
    if subdivision:
        value["Subdivision"] = subdivision
    return value


def qualification_requirements(config: StudyConfig, target: str, study_qualification: str,
                               excluded: list[str]) -> list[dict[str, Any]]:
    """MTurk QualificationRequirements from [qualifications] and the study's own types."""
    q = config.qualifications
    guarded = {"ActionsGuarded": "DiscoverPreviewAndAccept"}
    reqs: list[dict[str, Any]] = []
    if q.min_approval_rate is not None:
        reqs.append({"QualificationTypeId": turk.PERCENT_APPROVED,
                     "Comparator": "GreaterThanOrEqualTo",
                     "IntegerValues": [q.min_approval_rate], **guarded})
    if q.min_approved_hits is not None:
        reqs.append({"QualificationTypeId": turk.NUMBER_APPROVED,
                     "Comparator": "GreaterThanOrEqualTo",
                     "IntegerValues": [q.min_approved_hits], **guarded})
    if q.locales:
        locales = [_locale_value(loc) for loc in q.locales]
        comparator = "EqualTo" if len(locales) == 1 else "In"
        reqs.append({"QualificationTypeId": turk.LOCALE, "Comparator": comparator,
                     "LocaleValues": locales, **guarded})
    if q.masters:
        reqs.append({"QualificationTypeId": turk.MASTERS[target], "Comparator": "Exists",
                     **guarded})
    for type_id in [study_qualification, *excluded]:
        reqs.append({"QualificationTypeId": type_id, "Comparator": "DoesNotExist", **guarded})
    return reqs


@dataclass(frozen=True)
class StudyQualifications:
    """The qualification types the HITs require DoesNotExist (this study's, excluded ones')."""

    study: str
    excluded: list[str]


def ensure_qualifications(client: Any, ledger: Any, study: Study, target: str
                          ) -> StudyQualifications:
    """Find or create this study's, the excluded studies' and the expert qualification types.

    Each id is looked up in the ledger first, then by exact name in the account, and created
    only when missing, so repeating publish (or crashing half-way) never makes a second one.
    """
    q = study.config.qualifications

    def ensure(name: str, role: str, description: str) -> str:
        known = ledger.qualification_type_id(target, name)
        if known:
            return known
        type_id = turk.ensure_qualification_type(client, name, description)
        ledger.record_qualification_type(target, name, role, type_id)
        ledger.log_event("qualification_type.ensured", target=target, name=name, role=role,
                         qualification_type_id=type_id)
        return type_id

    own = ensure(study_qualification_name(study.name), "study",
                 f"Took part in the crowdkit study {study.name}; each person takes part once.")
    excluded = [
        ensure(study_qualification_name(other), "excluded",
               f"Took part in the crowdkit study {other}; each person takes part once.")
        for other in q.exclude_studies if other != study.name
    ]
    if q.expert_qualification:  # recorded for collect, which classifies its holders
        ensure(q.expert_qualification, "expert",
               "Invited expert participant in crowdkit studies.")
    return StudyQualifications(own, excluded)


# ----------------------------------------------------------------------------------------
# Rendering and sizes
# ----------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """Each task's HTMLQuestion XML and its download size in bytes."""

    questions: dict[str, str]
    sizes: dict[str, int]


def render_tasks(study: Study, tasks: list[Any], image_rows: dict[str, Any],
                 image_base_url: str) -> Rendered:
    from crowdkit.templates import question_size, render_question

    image_bytes = {key: int(row["bytes"]) for key, row in image_rows.items()}
    questions, sizes = {}, {}
    for task in tasks:
        xml = render_question(task.public, study.config, image_base_url, study_root=study.root)
        questions[task.public.task_id] = xml
        sizes[task.public.task_id] = task_download_bytes(task.public, image_bytes,
                                                         question_size(xml))
    return Rendered(questions, sizes)


def write_dry_run(study: Study, tasks: list[Any], plans: list[HitPlan], image_rows: dict,
                  rendered: Rendered) -> Path:
    """One .html and one .xml (the HTMLQuestion MTurk would get) per HIT, and sizes.csv with
    each HIT's download in bytes.

    The .html pages load their images from dry-run/files/, a copy under the same
    content-hash names, so they work when opened straight from disk.
    """
    from crowdkit.templates import render_task_html

    out = study.root / "dry-run"
    out.mkdir(parents=True, exist_ok=True)
    for stale in list(out.glob("*.html")) + list(out.glob("*.xml")):
        stale.unlink()
    LocalStore(out / "files", "http://unused").upload(images_from_ledger(image_rows,
                                                                         study.root))
    sizes = ["task_id,part,max_assignments,download_bytes"]
    sizes += [f"{p.task_id},{p.part},{p.max_assignments},{rendered.sizes[p.task_id]}"
              for p in plans]
    (out / "sizes.csv").write_text("\n".join(sizes) + "\n", encoding="utf-8")
    by_id = {t.public.task_id: t for t in tasks}
    html_cache: dict[str, str] = {}
    for plan in plans:
        if plan.task_id not in html_cache:
            html_cache[plan.task_id] = render_task_html(
                by_id[plan.task_id].public, study.config, "files/", study_root=study.root)
        stem = f"{plan.task_id}-part{plan.part}"
        (out / f"{stem}.html").write_text(html_cache[plan.task_id], encoding="utf-8")
        (out / f"{stem}.xml").write_text(rendered.questions[plan.task_id], encoding="utf-8")
    return out


# ----------------------------------------------------------------------------------------
# Publishing
# ----------------------------------------------------------------------------------------


@dataclass
class PublishResult:
    target: str
    hits_total: int
    created: int = 0
    resumed: int = 0
    already: int = 0
    cost: Cost = field(default_factory=Cost)
    sizes: dict[str, int] = field(default_factory=dict)
    over_budget: dict[str, int] = field(default_factory=dict)
    uploaded: int = 0
    skipped_uploads: int = 0
    preview_url: str | None = None
    hit_type_id: str | None = None
    hit_group_id: str | None = None
    dry_run_dir: Path | None = None
    store: str | None = None

    def summary(self) -> str:
        if self.dry_run_dir is not None:
            return (f"dry run: {self.hits_total} HITs rendered into {self.dry_run_dir}; "
                    "nothing was sent anywhere")
        lines = [
            f"{self.target}: {self.hits_total} HITs for this study ({self.created} created now, "
            f"{self.resumed} recovered from an earlier run, {self.already} already there)",
        ]
        if self.store:
            lines.append(f"images: {self.uploaded} uploaded, {self.skipped_uploads} already "
                         f"hosted ({self.store})")
        if self.preview_url:
            where = "open" if self.target == "local" else "worker preview"
            lines.append(f"{where}: {self.preview_url}")
        return "\n".join(lines)


def resolve_target(study: Study, target: str | None) -> str:
    """The target to publish to. Live must be asked for on the command line, every time."""
    if target is None:
        target = study.config.mturk.target
        if target == "live":
            raise CrowdkitError(
                "study.toml sets [mturk] target = \"live\", but spending real money needs "
                "`--target live` on the command line"
            )
    return turk.check_target(target)


def default_store(study: Study, target: str, *, profile: str | None = None) -> Store:
    """S3 for sandbox and live; the local service's files for local."""
    storage = study.config.storage
    if target == "local":
        return HttpLocalStore(study.config.mturk.local_endpoint)
    if not storage.bucket:
        raise ConfigError(
            f"{study.toml_path}: [storage] bucket: publishing to {target} needs an S3 bucket "
            "for the images (see docs/publishing.md)"
        )
    return S3Store(storage.bucket, prefix=storage.prefix, study_name=study.name,
                   region=storage.region, profile=profile)


def image_base_url(study: Study, target: str) -> str:
    """Where the worker's page loads images from, without touching the network."""
    storage = study.config.storage
    if target == "local" or not storage.bucket:
        return study.config.mturk.local_endpoint.rstrip("/") + "/files/"
    return s3_base_url(storage.bucket, storage.region,
                       study_prefix(storage.prefix, study.name))


_TO_CREATE = (None, "intent", "failed")  # expired or deleted HITs are never made again


@dataclass
class _Run:
    """One publish run: the study and target, the open ledger, and what is planned."""

    study: Study
    target: str
    ledger: Any
    tasks: list[Any]
    image_rows: dict[str, Any]
    plans: list[HitPlan]
    recorded: dict[str, Any]
    todo: list[HitPlan]
    rendered: Rendered
    result: PublishResult
    echo: Callable[[str], None]
    show_progress: bool
    workers: int
    client: Any = None

    @property
    def config(self) -> StudyConfig:
        return self.study.config


def publish(
    study: Study,
    *,
    target: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    apply_bucket_policy: bool = False,
    client: Any = None,
    store: Store | None = None,
    echo: Callable[[str], None] = print,
    show_progress: bool = True,
    workers: int = CREATE_WORKERS,
) -> PublishResult:
    """Publish every HIT of the study to `target`; safe to run again at any time.

    `client` and `store` default to the target's (tests and the benchmark pass their own).
    `confirm` is asked before live spending unless `yes`; without it live publishing needs
    `yes`. `workers` create calls are in flight at once.
    """
    from crowdkit.design import design_study
    from crowdkit.ledger import Ledger

    target = resolve_target(study, target)
    qualification_requirements(study.config, target, "check", [])  # bad locales fail first
    design_study(study)
    with Ledger.open(study.db_path, write=True, command="crowdkit publish") as ledger:
        base_url = store.base_url if store is not None else image_base_url(study, target)
        run = _plan_run(study, target, ledger, base_url, echo, show_progress, workers)
        _report_plan(run)
        if dry_run:
            run.result.dry_run_dir = write_dry_run(study, run.tasks, run.plans, run.image_rows,
                                                   run.rendered)
            return run.result
        run.client = client or turk.study_client(study, target)
        with turk.user_errors(target, "publishing (run publish again to resume)"):
            if run.todo:
                _check_balance(run)
                _confirm_spending(run, yes, confirm)
                store = store or default_store(study, target, profile=study.config.mturk.profile)
                _host_images(run, store, apply_bucket_policy)
                if store.base_url != base_url:
                    run.rendered = render_tasks(study, run.tasks, run.image_rows, store.base_url)
                _create_study_hits(run)
            else:
                echo("every HIT of this study already exists; nothing to create")
            run.result.preview_url = _preview_link(run)
        ledger.log_event("publish.done", target=target, hits=len(run.plans),
                         created=run.result.created, resumed=run.result.resumed)
    return run.result


def _plan_run(study: Study, target: str, ledger: Any, base_url: str,
              echo: Callable[[str], None], show_progress: bool, workers: int) -> _Run:
    """Everything publish decides before it talks to anyone: HITs, what is left, sizes, cost."""
    config = study.config
    tasks = ledger.tasks()
    image_rows = ledger.images()
    plans = plan_hits([t.public.task_id for t in tasks], study.name,
                      config.hit.assignments_per_task, config.hit.max_assignments_per_hit)
    recorded = {row["request_token"]: row for row in ledger.hits(target)}
    todo = [p for p in plans if _row_status(recorded.get(p.request_token)) in _TO_CREATE]
    rendered = render_tasks(study, tasks, image_rows, base_url)
    result = PublishResult(
        target=target, hits_total=len(plans), already=len(plans) - len(todo),
        cost=estimate_cost(todo, config), sizes=rendered.sizes,
        over_budget=over_budget(rendered.sizes, config.storage.hit_size_budget_mb))
    return _Run(study, target, ledger, tasks, image_rows, plans, recorded, todo, rendered,
                result, echo, show_progress, max(1, workers))


def _create_study_hits(run: _Run) -> None:
    """Qualification types, the HIT type, then the HITs themselves."""
    quals = ensure_qualifications(run.client, run.ledger, run.study, run.target)
    run.result.hit_type_id = run.client.create_hit_type(
        **_hit_type_params(run.config, run.target, quals))["HITTypeId"]
    _create_hits(run, run.result.hit_type_id)


def _preview_link(run: _Run) -> str | None:
    """The worker preview of the study's HIT group, or the local worker site."""
    group_id = run.result.hit_group_id or _any_group_id(run.client, run.ledger, run.target)
    if run.target == "local":
        local_base = getattr(getattr(run.client, "meta", None), "endpoint_url", None)
        return turk.preview_url("local", "", local_base or run.config.mturk.local_endpoint)
    return turk.preview_url(run.target, group_id) if group_id else None


def _any_group_id(client: Any, ledger: Any, target: str) -> str | None:
    """The HIT group (what worker preview links name) of one of the study's HITs."""
    for row in ledger.hits(target):
        if row["hit_id"]:
            try:
                return client.get_hit(HITId=row["hit_id"])["HIT"].get("HITGroupId")
            except Exception:  # noqa: BLE001 - the link is a convenience, never a failure
                return None
    return None


def _row_status(row: Any) -> str | None:
    return None if row is None else row["status"]


def _report_plan(run: _Run) -> None:
    """The HIT count, the range of download sizes, budget warnings and the cost."""
    config, result, echo, plans = run.config, run.result, run.echo, run.plans
    sizes = sorted(result.sizes.values())
    if sizes:
        echo(f"{len(plans)} HITs ({len(result.sizes)} tasks); download per HIT "
             f"{format_size(sizes[0])} to {format_size(sizes[-1])} "
             f"(budget {config.storage.hit_size_budget_mb:g} MB)")
    for task_id, n in sorted(result.over_budget.items()):
        echo(f"warning: task {task_id} downloads {format_size(n)}, over the "
             f"[storage] hit_size_budget_mb of {config.storage.hit_size_budget_mb:g} MB; "
             "workers on slow connections may give up")
    if result.cost.hits:
        echo(f"cost of the {result.cost.hits} HITs still to create ({result.target}):")
        echo(format_cost(result.cost))


def format_size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB / 10 else f"{n / 1000:.0f} kB"


def _check_balance(run: _Run) -> None:
    """Refuse before anything is created when the account cannot pay for it."""
    cost, target = run.result.cost, run.target
    balance = Decimal(run.client.get_account_balance()["AvailableBalance"])
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
    question = f"Spend up to ${money_str(run.result.cost.total)} of real money on MTurk?"
    if confirm is None or not confirm(question):
        raise CrowdkitError("not confirmed; nothing was published (pass --yes to skip the "
                            "question)")


def _host_images(run: _Run, store: Store, apply_policy: bool) -> None:
    """Make browsers able to read the images (S3: check the policy), then upload them."""
    if isinstance(store, S3Store):
        if apply_policy:
            store.apply_public_read_policy()
            run.echo(f"bucket policy: public read on s3://{store.bucket}/{store.prefix}* "
                     "(no listing)")
        store.check_public_read()
    images = images_from_ledger(run.image_rows, run.study.root)
    with _progress(run.show_progress, "uploading images", len(images)) as advance:
        uploaded = store.upload(images, progress=advance)
    result = run.result
    result.uploaded = len(uploaded.uploaded)
    result.skipped_uploads = len(uploaded.skipped)
    result.store = store.describe()


def _hit_type_params(config: StudyConfig, target: str, quals: StudyQualifications
                     ) -> dict[str, Any]:
    hit = config.hit
    return {
        "Title": hit.title,
        "Description": hit.description,
        "Keywords": ", ".join(hit.keywords),
        "Reward": money_str(hit.reward),
        "AssignmentDurationInSeconds": hit.assignment_duration,
        "AutoApprovalDelayInSeconds": hit.auto_approval_delay,
        "QualificationRequirements": qualification_requirements(
            config, target, quals.study, quals.excluded),
    }


def _create_hits(run: _Run, hit_type_id: str) -> None:
    """Create the HITs still to do: intents first, then calls in parallel, ids as they come.

    Intents left by an earlier run may have made HITs whose answers were lost; one listing
    pass finds those by the token in their annotation before anything new is asked for.
    """
    ledger, target, todo = run.ledger, run.target, run.todo
    stale = {p.request_token for p in todo if p.request_token in run.recorded}
    found = turk.find_hits_by_annotation(run.client, stale) if stale else {}
    reward = money_str(run.config.hit.reward)
    with ledger.transaction():
        for plan in todo:
            ledger.record_hit_intent(
                target=target, request_token=plan.request_token, task_id=plan.task_id,
                part=plan.part, max_assignments=plan.max_assignments, reward=reward)
    _crash_point("intents-recorded")

    def create(plan: HitPlan) -> tuple[dict, bool]:
        return turk.create_hit_idempotent(
            run.client, request_token=plan.request_token, HITTypeId=hit_type_id,
            MaxAssignments=plan.max_assignments, LifetimeInSeconds=run.config.hit.lifetime,
            Question=run.rendered.questions[plan.task_id])

    with _progress(run.show_progress, f"creating HITs ({target})", len(todo)) as advance:
        for plan in [p for p in todo if p.request_token in found]:
            _record_created(ledger, target, plan, found[plan.request_token])
            run.result.resumed += 1
            advance(1)
        remaining = [p for p in todo if p.request_token not in found]
        _run_creates(run, remaining, create, advance)


def _run_creates(run: _Run, plans: list[HitPlan],
                 create: Callable[[HitPlan], tuple[dict, bool]],
                 advance: Callable[[int], None]) -> None:
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
                        hit, existed = _result_or_user_error(future, plan)
                    except Exception as exc:
                        error = error or exc
                        continue
                    _crash_point("hit-returned")
                    _record_created(run.ledger, run.target, plan, hit)
                    _crash_point("hit-recorded")
                    result.hit_group_id = result.hit_group_id or hit.get("HITGroupId")
                    result.resumed += existed
                    result.created += not existed
                    advance(1)
                    nxt = None if error else next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(create, nxt)] = nxt
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if error is not None:
        raise error


def _result_or_user_error(future: Future, plan: HitPlan) -> tuple[dict, bool]:
    """The created HIT, or one line that says what failed and that a re-run resumes."""
    try:
        return future.result()
    except CrowdkitError:
        raise
    except Exception as exc:
        if not turk.error_code(exc):
            raise
        raise CrowdkitError(
            f"creating the HIT of task {plan.task_id} (part {plan.part}) failed: "
            f"{turk.error_text(exc)}; the HITs made so far are "
            "recorded: fix the cause and run publish again to create the rest"
        ) from exc


def _record_created(ledger: Any, target: str, plan: HitPlan, hit: dict) -> None:
    expiration = turk.mturk_time(hit.get("Expiration"))
    ledger.record_hit_created(
        target=target, request_token=plan.request_token, hit_id=hit["HITId"],
        hit_type_id=hit.get("HITTypeId"),
        expiration=expiration.isoformat() if expiration else None,
    )


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


@contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar (rich draws nothing when disabled) as `advance(n)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not enabled or total == 0) as bars:
        task = bars.add_task(description, total=total)
        yield lambda n: bars.advance(task, n)
