"""`crowdkit collect`: submissions -> ledger (verbatim) -> parsed answers -> tidy trials.

One pass does four things, in this order, and can be re-run at any time:

1. For every HIT of the study on the platform's target, list its submissions (all
   statuses, every page) and store each answer verbatim in the ledger *before* anything
   parses it (crowdkit.collect.fetch). HITs whose assignments are all final (approved or
   rejected, every slot filled) are not listed again: nothing about them can change.
2. Mark every worker seen as a participant (MTurk: the study's qualification), so nobody
   takes a second HIT of the study: each page's workers as soon as the page is stored, and
   every stored worker not yet marked after the listing (a grant that failed is retried).
3. Parse every stored answer defensively (crowdkit.answers). A malformed or hostile answer
   marks its assignment invalid with a reason; it never crashes the run or loses the raw
   XML. Correctness comes from the ledger's answer key only.
4. Apply the quality rules (crowdkit.quality) and write the target's
   data/<target>/trials.parquet, trials.csv and participants.csv
   (crowdkit.collect.dataset): each target's data stay apart. Files are rewritten only
   when their content changes, so a re-run that finds nothing new changes nothing.

Calls that still fail after their retries are the result's `failures`: what was fetched is
stored, and the command exits non-zero so a script knows to run it again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from crowdkit.answers import answer_fields, parse_answer
from crowdkit.collect.dataset import (
    TRIAL_COLUMNS,
    Dataset,
    build_dataset,
    pseudonym,
    record_parse_results,
    study_hits,
    tidy_rows,
    write_exports,
)
from crowdkit.collect.fetch import (
    FetchStats,
    Marker,
    fetch_assignments,
    hit_is_settled,
    refresh_expert_workers,
)
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import Platform, PlatformError
from crowdkit.progress import Progress, silent
from crowdkit.quality import AssignmentRecord
from crowdkit.study import Study
from crowdkit.units import plural, stored_time

__all__ = [
    "TRIAL_COLUMNS", "AssignmentRecord", "CollectResult", "Dataset", "FetchStats",
    "answer_fields", "auto_approval_warnings", "build_dataset", "collect", "collect_once",
    "hit_is_settled", "hits_done", "parse_answer", "pseudonym", "tidy_rows",
]


@dataclass
class CollectResult:
    fetch: FetchStats
    granted: int
    parse_updates: int
    dataset: Dataset
    written: list[Path]
    warnings: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """The calls that failed after their retries: what a re-run has left to do."""
        return list(self.fetch.errors)

    def summary(self) -> str:
        records = self.dataset.records
        invalid = sum(1 for r in records if not r.parsed.valid)
        excluded = sum(1 for r in records if r.excluded)
        n_trials = sum(len(r.parsed.payload.trials) for r in records if r.parsed.payload)
        written = ", ".join(p.name for p in self.written) or "no file changed"
        return (f"{plural(len(records), 'assignment')} ({self.fetch.new} new, "
                f"{self.fetch.changed} changed; {invalid} invalid, {excluded} excluded), "
                f"{plural(n_trials, 'trial response')}; "
                f"{plural(self.fetch.hits_listed, 'HIT')} listed, {self.fetch.hits_skipped} "
                f"settled; {plural(self.granted, 'qualification')} granted; wrote: {written}"
                + (f"; {plural(len(self.failures), 'call')} failed" if self.failures else ""))


def collect_once(study: Study, ledger: Ledger, platform: Platform,
                 progress: Progress = silent) -> CollectResult:
    """One full pass: fetch, grant, parse, judge, export. Safe to repeat.

    The stored assignments are read once, after fetching; granting and parsing write other
    columns and tables, so every later step works from that one read.
    """
    errors: list[str] = []
    marker = Marker(ledger, platform, errors)
    fetch = fetch_assignments(ledger, platform, progress, marker)
    assignments = ledger.assignments()
    hits = {h["hit_id"] for h in study_hits(ledger) if h["target"] == platform.target}
    granted = fetch.granted + marker.mark(
        row["worker_id"] for row in assignments if row["hit_id"] in hits)
    fetch.errors += errors
    try:
        refresh_expert_workers(ledger, platform, study.config)
    except PlatformError as exc:  # the last list kept in the ledger still classifies
        fetch.errors.append(f"listing the expert qualification failed: {exc}")
    dataset = build_dataset(study, ledger, assignments, target=platform.target)
    updates = record_parse_results(ledger, dataset, assignments)
    written = write_exports(dataset, study.target_data_dir(platform.target))
    return CollectResult(fetch, granted, updates, dataset, written)


def hits_done(ledger: Ledger, now: datetime | None = None, target: str | None = None
              ) -> tuple[int, int, bool]:
    """(assignments submitted, assignments wanted, every HIT done) for --watch, over the
    HITs of `target` (default: all).

    A HIT is done when all its slots are submitted, or when it has expired.
    """
    now = now or datetime.now(UTC)
    counts = ledger.assignment_counts()
    seen = wanted = 0
    all_done = True
    for hit in study_hits(ledger):
        if target is not None and hit["target"] != target:
            continue
        n = counts.get(hit["hit_id"], (0, 0))[0]
        expired = hit["status"] in ("expired", "deleted") or _past(hit["expiration"], now)
        seen += min(n, hit["max_assignments"])
        wanted += hit["max_assignments"]
        if n < hit["max_assignments"] and not expired:
            all_done = False
    return seen, wanted, all_done


def _past(value: str | None, now: datetime) -> bool:
    when = stored_time(value)
    return when is not None and when <= now


def auto_approval_warnings(ledger: Ledger, within_hours: float = 24,
                           now: datetime | None = None, target: str | None = None) -> list[str]:
    """Warn about submitted assignments MTurk will approve by itself soon (or already has),
    on `target` (None: every target)."""
    now = now or datetime.now(UTC)
    soon = []
    reviewed = {a for a, r in ledger.reviews().items() if r["status"] == "done"}
    hits = {h["hit_id"] for h in study_hits(ledger) if target in (None, h["target"])}
    for row in ledger.assignments():
        if row["status"] != "Submitted" or row["assignment_id"] in reviewed \
                or row["hit_id"] not in hits:
            continue
        when = row["auto_approval_time"]
        if when and _hours_until(when, now) <= within_hours:
            soon.append(when)
    if not soon:
        return []
    return [f"{plural(len(soon), 'submitted assignment')} will be approved automatically "
            "by MTurk "
            f"within {within_hours:g} hours (the first at {min(soon)}); run "
            "`crowdkit review` before then to reject or bonus any of them"]


def _hours_until(value: str, now: datetime) -> float:
    when = stored_time(value)
    return math.inf if when is None else (when - now).total_seconds() / 3600


def collect(study: Study, platform: Platform, *, watch: bool = False, interval: float = 30,
            sleep: Callable[[float], None] = time.sleep, warn_auto_approval: bool = True,
            progress: Progress = silent) -> CollectResult:
    """`crowdkit collect`: one pass, or with `watch` passes until every HIT is done.

    The result's `warnings` say what failed (and is retried on the next run) and which
    answers MTurk will approve by itself soon; `warn_auto_approval` False leaves the latter
    out, for callers (the demo) that review right after.
    """
    with Ledger.open(study.db_path, write=True, command="crowdkit collect") as ledger:
        _require_hits(study, ledger, platform.target)
        if not watch:
            result = collect_once(study, ledger, platform, progress)
        else:
            result = _watch(study, ledger, platform, interval, sleep, progress)
        result.warnings = list(result.fetch.errors)
        if warn_auto_approval:
            result.warnings += auto_approval_warnings(ledger, target=platform.target)
        return result


def _require_hits(study: Study, ledger: Ledger, target: str) -> None:
    """One line when the target has no HITs, naming the targets that have some."""
    hits = study_hits(ledger)
    if any(h["target"] == target for h in hits):
        return
    others = sorted({h["target"] for h in hits})
    if others:
        raise CrowdkitError(f"{study.db_path}: no HITs on {target}; this study has HITs on "
                            f"{', '.join(others)}: pass --target {others[-1]}")
    raise CrowdkitError(f"{study.db_path}: no HITs yet; run `crowdkit publish {study.root}` "
                        "first")


def _watch(study: Study, ledger: Ledger, platform: Platform, interval: float,
           sleep: Callable[[float], None], progress: Progress) -> CollectResult:
    """Passes until every HIT is done; progress counts submitted assignments."""
    seen, wanted, done = hits_done(ledger, target=platform.target)
    with progress("assignments submitted", total=wanted) as advance:
        advance(seen)
        while True:
            result = collect_once(study, ledger, platform)
            now_seen, wanted, done = hits_done(ledger, target=platform.target)
            advance(now_seen - seen)
            seen = now_seen
            if done:
                return result
            sleep(interval)
