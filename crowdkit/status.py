"""`crowdkit status`, `expire` and `extend`: what this study's HITs are doing, ending them, and
keeping them open longer.

Both work only on the HITs the ledger recorded for this study and target, never on other
HITs in the account. Status reads the ledger without taking the write lock, so it can run
while `collect` or `publish` is busy.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import NotFound, Platform, PlatformError
from crowdkit.study import Study
from crowdkit.units import format_duration, money_str, plural, stored_time

if TYPE_CHECKING:  # rich is imported when a table is drawn
    from rich.table import Table

STATUS_WORKERS = 8
COUNTED = ("Submitted", "Approved", "Rejected")


@dataclass
class HitStatus:
    hit_id: str
    task_id: str
    part: int
    status: str
    max_assignments: int
    available: int = 0
    pending: int = 0
    submitted: int = 0
    approved: int = 0
    rejected: int = 0
    expiration: str | None = None
    seconds_left: int = 0
    spent: Decimal = Decimal("0.00")
    committed: Decimal = Decimal("0.00")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["spent"], out["committed"] = money_str(self.spent), money_str(self.committed)
        return out


@dataclass
class StudyStatus:
    target: str
    hits: list[HitStatus] = field(default_factory=list)
    bonuses_paid: Decimal = Decimal("0.00")

    def total(self, name: str) -> int:
        return sum(getattr(h, name) for h in self.hits)

    @property
    def spent(self) -> Decimal:
        return sum((h.spent for h in self.hits), Decimal("0.00")) + self.bonuses_paid

    @property
    def committed(self) -> Decimal:
        return sum((h.committed for h in self.hits), Decimal("0.00"))

    @property
    def seconds_left(self) -> int:
        return max((h.seconds_left for h in self.hits), default=0)

    def to_json(self) -> dict[str, Any]:
        counts = ("max_assignments", "available", "pending", "submitted", "approved",
                  "rejected")
        return {
            "target": self.target,
            "hits": [h.to_json() for h in self.hits],
            "total": {
                "hits": len(self.hits),
                "open_hits": sum(1 for h in self.hits if h.seconds_left > 0),
                **{name: self.total(name) for name in counts},
                "spent": money_str(self.spent),
                "bonuses_paid": money_str(self.bonuses_paid),
                "committed": money_str(self.committed),
                "seconds_left": self.seconds_left,
            },
        }


def study_status(study: Study, platform: Platform, *, now: datetime | None = None
                 ) -> StudyStatus:
    """Per HIT and in total: assignments by state, money spent and committed, time left."""
    target = platform.target
    with Ledger.open(study.db_path) as ledger:
        rows = [r for r in ledger.hits(target) if r["hit_id"]]
        bonuses = [b for b in ledger.bonuses(target) if b["status"] == "done"]
    result = StudyStatus(target=target)
    result.bonuses_paid = sum((Decimal(b["amount"]) + platform.bonus_fee(Decimal(b["amount"]))
                               for b in bonuses), Decimal("0.00"))
    if not rows:
        return result
    now = now or datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=STATUS_WORKERS) as pool:
        result.hits = list(pool.map(lambda row: _hit_status(platform, row, now), rows))
    return result


def _hit_status(platform: Platform, row: sqlite3.Row, now: datetime) -> HitStatus:
    state = platform.posting_state(row["hit_id"])
    counts = dict.fromkeys(COUNTED, 0)
    for page in platform.submissions(row["hit_id"]):
        for submission in page:
            counts[submission.status] = counts.get(submission.status, 0) + 1
    expiration = state.expiration
    seconds_left = max(0, int((expiration - now).total_seconds())) if expiration else 0
    available = state.available if seconds_left else 0
    commission, extra_fee = platform.assignment_fees(state.reward, state.max_assignments)
    per_assignment = state.reward + commission + extra_fee
    return HitStatus(
        hit_id=row["hit_id"], task_id=row["task_id"], part=row["part"],
        status=state.status or row["status"], max_assignments=state.max_assignments,
        available=available, pending=state.pending, submitted=counts["Submitted"],
        approved=counts["Approved"], rejected=counts["Rejected"],
        expiration=expiration.isoformat() if expiration else None, seconds_left=seconds_left,
        spent=per_assignment * counts["Approved"],
        committed=per_assignment * (available + state.pending + counts["Submitted"]),
    )


def format_duration_left(seconds: int) -> str:
    """Time left, spelt like study.toml's durations: to the hour past a day, else the minute."""
    if seconds <= 0:
        return "expired"
    step = 3600 if seconds >= 86400 else 60 if seconds >= 60 else 1
    return format_duration(seconds - seconds % step)


def status_table(status: StudyStatus) -> Table | None:
    """A rich table of the HITs (when there are few enough to read), else None."""
    from rich.table import Table

    if not status.hits or len(status.hits) > 50:
        return None
    table = Table(title=f"HITs ({status.target})", box=None, pad_edge=False)
    headers = ("HIT", "task", "avail", "pend", "subm", "appr", "rej", "spent", "commit", "left")
    for name in headers:
        table.add_column(name, justify="left" if name in ("HIT", "task") else "right",
                         no_wrap=True)
    columns = ("available", "pending", "submitted", "approved", "rejected")
    for h in status.hits:
        table.add_row(h.hit_id, f"{h.task_id}/{h.part}",
                      *(str(getattr(h, c)) for c in columns), f"${money_str(h.spent)}",
                      f"${money_str(h.committed)}", format_duration_left(h.seconds_left))
    return table


def status_lines(status: StudyStatus) -> list[str]:
    """The totals in two lines (or one line when nothing is published yet)."""
    if not status.hits:
        return [f"{status.target}: no HITs published for this study yet"]
    columns = ("available", "pending", "submitted", "approved", "rejected")
    totals = ", ".join(f"{status.total(c)} {c}" for c in columns)
    return [
        f"{status.target}: {len(status.hits)} HITs, {status.total('max_assignments')} "
        f"assignments: {totals}",
        f"money: ${money_str(status.spent)} spent (bonuses ${money_str(status.bonuses_paid)}),"
        f" ${money_str(status.committed)} committed; time left "
        f"{format_duration_left(status.seconds_left)}",
    ]


# ----------------------------------------------------------------------------------------
# Expire
# ----------------------------------------------------------------------------------------


def open_hits(study: Study, target: str) -> list[sqlite3.Row]:
    """The ledger's HITs of this study and target that have not been expired by crowdkit."""
    with Ledger.open(study.db_path) as ledger:
        return [r for r in ledger.hits(target) if r["hit_id"] and r["status"] == "created"]


def expire(study: Study, platform: Platform, *, yes: bool = False,
           confirm: Callable[[str], bool] | None = None) -> int:
    """Expire this study's open HITs (only those the ledger recorded); return how many.

    Workers who already accepted an assignment may still submit it; nobody new can start.
    A HIT MTurk no longer has (disposed of, or deleted) counts as expired.
    """
    target = platform.target
    if not study.db_path.exists():
        return 0
    hits = open_hits(study, target)
    if not hits:
        return 0
    question = f"Expire {len(hits)} HITs of study {study.name} on {target}?"
    if not yes and (confirm is None or not confirm(question)):
        raise CrowdkitError("not confirmed; no HIT was expired (pass --yes to skip the question)")
    with Ledger.open(study.db_path, write=True, command="crowdkit expire") as ledger:
        for row in hits:
            with contextlib.suppress(NotFound):  # gone already: record it as expired
                platform.expire_posting(row["hit_id"])
            ledger.set_hit_status(row["hit_id"], "expired",
                                  expiration=datetime.now(UTC).isoformat())
    return len(hits)


# ----------------------------------------------------------------------------------------
# Extend
# ----------------------------------------------------------------------------------------

MAX_AHEAD_S = 365 * 86400  # MTurk: a HIT expires within a year from now


@dataclass
class ExtendResult:
    target: str
    extended: int = 0
    until: str | None = None  # the latest new expiration
    resumed: bool = False  # finished what an interrupted run started, and nothing more
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.resumed:
            text = (f"{self.target}: finished an interrupted extension of "
                    f"{plural(self.extended, 'HIT')}; run extend again to extend further")
        else:
            text = f"{self.target}: extended {plural(self.extended, 'HIT')}"
            text += f" to {self.until}" if self.until else ""
        if self.failures:
            text += f"; {plural(len(self.failures), 'call')} failed (run extend again to retry)"
        return text


def extend(study: Study, platform: Platform, *, by_s: int, yes: bool = False,
           confirm: Callable[[str], bool] | None = None, now: datetime | None = None
           ) -> ExtendResult:
    """Keep this study's HITs open `by_s` seconds longer (UpdateExpirationForHIT).

    Each HIT's new expiration is its expiration plus `by_s`, or now plus `by_s` for one that
    has lapsed; HITs ended with `crowdkit expire` stay ended. The new times are recorded
    before any call, so a run killed half-way is finished by the next one (which then
    extends nothing more), never extended twice.
    """
    now = now or datetime.now(UTC)
    result = ExtendResult(target=platform.target)
    with Ledger.open(study.db_path, write=True, command="crowdkit extend") as ledger:
        pending = [r for r in ledger.pending_extensions() if r["target"] == platform.target]
        if pending:
            result.resumed = True
            _run_extensions(ledger, platform, [(r["hit_id"], r["expire_at"]) for r in pending],
                            result, resuming=True)
            return result
        rows = [r for r in ledger.hits(platform.target) if r["hit_id"] and
                r["status"] == "created"]
        if not rows:
            raise CrowdkitError(f"{platform.target}: no open HITs of this study to extend")
        plan = [(r["hit_id"], _new_expiration(r["expiration"], now, by_s)) for r in rows]
        latest = max(when for _, when in plan)
        if latest > now + timedelta(seconds=MAX_AHEAD_S):
            raise CrowdkitError(
                f"--by {format_duration(by_s)} would keep HITs open until "
                f"{latest.isoformat(timespec='minutes')}; MTurk takes at most a year from now")
        question = (f"Keep {plural(len(plan), 'HIT')} of study {study.name} on "
                    f"{platform.target} open {format_duration(by_s)} longer?")
        if not yes and (confirm is None or not confirm(question)):
            raise CrowdkitError("not confirmed; no HIT was extended (pass --yes to skip the "
                                "question)")
        stamps = [(hit_id, when.isoformat()) for hit_id, when in plan]
        with ledger.transaction():
            for hit_id, stamp in stamps:
                ledger.record_extension(hit_id, stamp, "intent")
        _run_extensions(ledger, platform, stamps, result)
        result.until = latest.isoformat(timespec="minutes")
    return result


def _already_extended(platform: Platform, hit_id: str, when: datetime) -> bool:
    expiration = platform.posting_state(hit_id).expiration
    return expiration is not None and expiration >= when - timedelta(seconds=1)


def _new_expiration(stored: str | None, now: datetime, by_s: int) -> datetime:
    current = stored_time(stored)
    start = current if current is not None and current > now else now
    return start + timedelta(seconds=by_s)


def _run_extensions(ledger: Ledger, platform: Platform, stamps: list[tuple[str, str]],
                    result: ExtendResult, *, resuming: bool = False) -> None:
    """Make each recorded extension.

    When resuming, a HIT whose extension went through before the crash (its answer lost)
    already has the new time, and MTurk refuses an extension of less than a minute: so
    each HIT is read first and one already at its new time is only recorded as done.
    """
    for hit_id, stamp in stamps:
        when = datetime.fromisoformat(stamp)
        try:
            if resuming and _already_extended(platform, hit_id, when):
                ledger.record_extension(hit_id, stamp, "done")
                result.extended += 1
                continue
            platform.extend_posting(hit_id, when)
        except PlatformError as exc:
            ledger.record_extension(hit_id, stamp, "failed", str(exc))
            result.failures.append(f"{hit_id}: {exc}")
            continue
        ledger.record_extension(hit_id, stamp, "done")
        result.extended += 1
