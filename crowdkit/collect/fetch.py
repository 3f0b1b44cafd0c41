"""The platform side of collect: store every submission verbatim, mark participants.

Submissions are stored in the ledger exactly as the platform returned them, page by page,
before anything parses them, and the workers of each page are marked as participants (the
study's qualification) right after it is stored, before the next HIT is listed. A failing
call is recorded in `FetchStats.errors` and the pass goes on: one unreachable HIT never
stops the others, and nothing stored is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from crowdkit.collect.dataset import study_hits
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import Platform, PlatformError, Submission
from crowdkit.progress import Progress, silent
from crowdkit.study import StudyConfig


@dataclass
class FetchStats:
    """What one pass over the HITs found."""

    hits_listed: int = 0
    hits_skipped: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    granted: int = 0  # participants marked as their pages came in
    errors: list[str] = field(default_factory=list)


def hit_is_settled(hit: sqlite3.Row, counts: dict[str, tuple[int, int]]) -> bool:
    """True when every slot of the HIT holds an approved or rejected assignment.

    `counts` is `ledger.assignment_counts()`: stored and final assignments per HIT.
    """
    stored, final = counts.get(hit["hit_id"], (0, 0))
    return bool(final >= hit["max_assignments"] and final == stored)


def platform_hits(ledger: Ledger, platform: Platform) -> list[sqlite3.Row]:
    """The study's HITs on the platform's target."""
    return [h for h in study_hits(ledger) if h["target"] == platform.target]


def fetch_assignments(ledger: Ledger, platform: Platform, progress: Progress = silent,
                      marker: Marker | None = None) -> FetchStats:
    """Store every submission of every HIT that may have changed, verbatim, in the ledger,
    and mark each page's workers (with `marker`, or one of this pass) as it comes in."""
    stats = FetchStats()
    counts = ledger.assignment_counts()
    hits = platform_hits(ledger, platform)
    marker = marker or Marker(ledger, platform, stats.errors)
    with progress("listing assignments", total=len(hits)) as advance:
        for hit in hits:
            if hit_is_settled(hit, counts):
                stats.hits_skipped += 1
            else:
                stats.hits_listed += 1
                try:
                    for page in platform.submissions(hit["hit_id"]):
                        _store_page(ledger, page, stats)
                        stats.granted += marker.mark(s.worker_id for s in page)
                except PlatformError as exc:  # one unreachable HIT must not stop the others
                    stats.errors.append(str(exc))
            advance(1)
    return stats


def _store_page(ledger: Ledger, page: list[Submission], stats: FetchStats) -> None:
    """Store one page of answers verbatim, in one transaction, as soon as it arrives."""
    with ledger.transaction():
        for s in page:
            outcome = ledger.store_assignment(
                assignment_id=s.id, hit_id=s.posting_id, worker_id=s.worker_id,
                status=s.status, answer_xml=s.answer, accept_time=s.accept_time,
                submit_time=s.submit_time, auto_approval_time=s.auto_approval_time,
            )
            setattr(stats, outcome, getattr(stats, outcome) + 1)


class Marker:
    """Marks workers as participants of the study on the platform's target, once each.

    Each grant is recorded in the ledger before ('intent') and after ('done' or 'failed')
    the call; a failed grant is tried once per pass and reported in `errors`.
    """

    def __init__(self, ledger: Ledger, platform: Platform, errors: list[str]) -> None:
        self.ledger, self.platform, self.errors = ledger, platform, errors
        self.marker = platform.participation_marker(ledger)
        self.done = {g["worker_id"] for g in ledger.qualification_grants(platform.target)
                     if g["status"] == "done" and g["qualification_type_id"] == self.marker}

    def mark(self, workers: Iterable[str]) -> int:
        """Mark the workers not yet marked; return how many grants were made now."""
        if self.marker is None:
            return 0
        granted = 0
        for worker in dict.fromkeys(workers):
            if worker in self.done:
                continue
            self.done.add(worker)  # once per pass, whatever happens
            granted += self._grant(self.marker, worker)
        return granted

    def _grant(self, marker: str, worker: str) -> bool:
        target = self.platform.target
        self.ledger.record_qualification_grant(target=target, qualification_type_id=marker,
                                               worker_id=worker, status="intent")
        try:
            self.platform.mark_participant(marker, worker)
        except PlatformError as exc:
            self.ledger.record_qualification_grant(target=target, qualification_type_id=marker,
                                                   worker_id=worker, status="failed")
            self.errors.append(f"granting the study qualification failed (retried next "
                               f"time): {exc}")
            return False
        self.ledger.record_qualification_grant(target=target, qualification_type_id=marker,
                                               worker_id=worker, status="done")
        return True


def refresh_expert_workers(ledger: Ledger, platform: Platform, config: StudyConfig) -> None:
    """Remember which workers the platform marks as experts (for the expert rule).

    Stored in the ledger so `crowdkit review` and re-runs classify the same way offline.
    """
    if config.participants.expert_rule not in ("qualification", "any"):
        return
    holders = platform.expert_workers(ledger)
    if holders is not None:
        ledger.set_expert_qualification_workers(platform.target, sorted(holders))
