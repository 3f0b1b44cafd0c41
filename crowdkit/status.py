"""`crowdkit status` and `crowdkit expire`: what this study's HITs are doing, and ending them.

Both work only on the HITs the ledger recorded for this study and target, never on other
HITs in the account. Status reads the ledger without taking the write lock, so it can run
while `collect` or `publish` is busy.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crowdkit import turk
from crowdkit.errors import CrowdkitError
from crowdkit.publish import assignment_fees, bonus_fee
from crowdkit.study import Study
from crowdkit.units import format_duration, money_str

STATUS_WORKERS = 8
# An ExpireAt in the past makes MTurk expire a HIT at once.
EXPIRE_AT = datetime(2015, 1, 1, tzinfo=UTC)


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


def status_target(study: Study, target: str | None) -> str:
    """Reading and expiring need no extra guard: the configured target is the default."""
    return turk.check_target(target or study.config.mturk.target)


def study_status(study: Study, *, target: str | None = None, client: Any = None,
                 now: datetime | None = None) -> StudyStatus:
    """Per HIT and in total: assignments by state, money spent and committed, time left."""
    from crowdkit.ledger import Ledger

    target = status_target(study, target)
    with Ledger.open(study.db_path) as ledger:
        rows = [r for r in ledger.hits(target) if r["hit_id"]]
        bonuses = [b for b in ledger.bonuses() if b["status"] == "done"]
    result = StudyStatus(target=target)
    result.bonuses_paid = sum((Decimal(b["amount"]) + bonus_fee(Decimal(b["amount"]))
                               for b in bonuses), Decimal("0.00"))
    if not rows:
        return result
    client = client or turk.study_client(study, target)
    now = now or datetime.now(UTC)
    masters = study.config.qualifications.masters

    def one(row: Any) -> HitStatus:
        return _hit_status(client, row, now, masters)

    with turk.user_errors(target, "reading the study's HITs"), \
            ThreadPoolExecutor(max_workers=STATUS_WORKERS) as pool:
        result.hits = list(pool.map(one, rows))
    return result


def _hit_status(client: Any, row: Any, now: datetime, masters: bool) -> HitStatus:
    hit = client.get_hit(HITId=row["hit_id"])["HIT"]
    counts = {"Submitted": 0, "Approved": 0, "Rejected": 0}
    for a in turk.paginate(client.list_assignments_for_hit, "Assignments", HITId=row["hit_id"],
                           AssignmentStatuses=list(counts)):
        counts[a["AssignmentStatus"]] = counts.get(a["AssignmentStatus"], 0) + 1
    expiration = turk.mturk_time(hit.get("Expiration"))
    seconds_left = max(0, int((expiration - now).total_seconds())) if expiration else 0
    available = int(hit.get("NumberOfAssignmentsAvailable", 0)) if seconds_left else 0
    pending = int(hit.get("NumberOfAssignmentsPending", 0))
    reward = Decimal(str(hit.get("Reward", row["reward"])))
    commission, masters_fee = assignment_fees(reward, int(hit["MaxAssignments"]), masters)
    per_assignment = reward + commission + masters_fee
    return HitStatus(
        hit_id=row["hit_id"], task_id=row["task_id"], part=row["part"],
        status=str(hit.get("HITStatus", row["status"])),
        max_assignments=int(hit["MaxAssignments"]), available=available, pending=pending,
        submitted=counts["Submitted"], approved=counts["Approved"],
        rejected=counts["Rejected"],
        expiration=expiration.isoformat() if expiration else None, seconds_left=seconds_left,
        spent=per_assignment * counts["Approved"],
        committed=per_assignment * (available + pending + counts["Submitted"]),
    )


def format_duration_left(seconds: int) -> str:
    """Time left, spelt like study.toml's durations: to the hour past a day, else the minute."""
    if seconds <= 0:
        return "expired"
    step = 3600 if seconds >= 86400 else 60 if seconds >= 60 else 1
    return format_duration(seconds - seconds % step)


def print_status(status: StudyStatus, echo: Callable[[str], None] = print) -> None:
    """A table per HIT (when there are few) and the totals."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a pipe or a log file: no reason to squeeze the table
        console = Console(width=160)
    columns = ("available", "pending", "submitted", "approved", "rejected")
    if not status.hits:
        echo(f"{status.target}: no HITs published for this study yet")
        return
    if len(status.hits) <= 50:
        table = Table(title=f"HITs ({status.target})", box=None, pad_edge=False)
        headers = ("HIT", "task", "avail", "pend", "subm", "appr", "rej", "spent", "commit",
                   "left")
        for name in headers:
            table.add_column(name, justify="left" if name in ("HIT", "task") else "right",
                             no_wrap=True)
        for h in status.hits:
            table.add_row(h.hit_id, f"{h.task_id}/{h.part}",
                          *(str(getattr(h, c)) for c in columns), f"${money_str(h.spent)}",
                          f"${money_str(h.committed)}", format_duration_left(h.seconds_left))
        console.print(table)
    totals = ", ".join(f"{status.total(c)} {c}" for c in columns)
    echo(f"{status.target}: {len(status.hits)} HITs, {status.total('max_assignments')} "
         f"assignments: {totals}")
    echo(f"money: ${money_str(status.spent)} spent (bonuses ${money_str(status.bonuses_paid)}),"
         f" ${money_str(status.committed)} committed; time left "
         f"{format_duration_left(status.seconds_left)}")


# ----------------------------------------------------------------------------------------
# Expire
# ----------------------------------------------------------------------------------------


def open_hits(study: Study, target: str) -> list[Any]:
    """The ledger's HITs of this study and target that have not been expired by crowdkit."""
    from crowdkit.ledger import Ledger

    with Ledger.open(study.db_path) as ledger:
        return [r for r in ledger.hits(target) if r["hit_id"] and r["status"] == "created"]


def expire(study: Study, *, target: str | None = None, yes: bool = False,
           confirm: Callable[[str], bool] | None = None, client: Any = None,
           echo: Callable[[str], None] = print) -> int:
    """Expire this study's open HITs (only those the ledger recorded); return how many.

    Workers who already accepted an assignment may still submit it; nobody new can start.
    """
    from crowdkit.ledger import Ledger

    target = status_target(study, target)
    if not study.db_path.exists():
        echo(f"{target}: nothing published for this study")
        return 0
    hits = open_hits(study, target)
    if not hits:
        echo(f"{target}: no open HITs of this study")
        return 0
    question = f"Expire {len(hits)} HITs of study {study.name} on {target}?"
    if not yes and (confirm is None or not confirm(question)):
        raise CrowdkitError("not confirmed; no HIT was expired (pass --yes to skip the question)")
    client = client or turk.study_client(study, target)
    with Ledger.open(study.db_path, write=True, command="crowdkit expire") as ledger:
        for row in hits:
            try:
                client.update_expiration_for_hit(HITId=row["hit_id"], ExpireAt=EXPIRE_AT)
            except Exception as exc:
                if "Disposed" not in turk.error_message(exc) and \
                        "does not exist" not in turk.error_message(exc):
                    raise CrowdkitError(f"HIT {row['hit_id']}: could not expire it: "
                                        f"{turk.error_message(exc)}") from exc
            ledger.set_hit_status(row["hit_id"], "expired",
                                  expiration=datetime.now(UTC).isoformat())
    echo(f"{target}: expired {len(hits)} HITs of study {study.name}")
    return len(hits)
