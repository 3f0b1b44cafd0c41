"""The platform side of collect: store every submission verbatim, mark participants.

Submissions are stored in the ledger exactly as the platform returned them, page by page,
before anything parses them. A failing call is recorded in `FetchStats.errors` and the pass
goes on: one unreachable HIT never stops the others, and nothing stored is lost.
"""

from __future__ import annotations

import sqlite3
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


def fetch_assignments(ledger: Ledger, platform: Platform,
                      progress: Progress = silent) -> FetchStats:
    """Store every submission of every HIT that may have changed, verbatim, in the ledger."""
    stats = FetchStats()
    counts = ledger.assignment_counts()
    hits = platform_hits(ledger, platform)
    with progress("listing assignments", total=len(hits)) as advance:
        for hit in hits:
            if hit_is_settled(hit, counts):
                stats.hits_skipped += 1
            else:
                stats.hits_listed += 1
                try:
                    for page in platform.submissions(hit["hit_id"]):
                        _store_page(ledger, page, stats)
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


def grant_participation(ledger: Ledger, platform: Platform, assignments: list[sqlite3.Row],
                        errors: list[str] | None = None) -> int:
    """Mark every worker with an assignment on the platform's target as a participant
    (`assignments`: the ledger's rows), so nobody takes a second HIT of the study.

    Recorded in the ledger before ('intent') and after ('done' or 'failed') the call, so
    each worker is marked once; a failed grant is retried on the next pass and reported in
    `errors`. Returns how many grants were made now.
    """
    target = platform.target
    marker = platform.participation_marker(ledger)
    if marker is None:
        return 0
    done = {g["worker_id"] for g in ledger.qualification_grants(target)
            if g["status"] == "done" and g["qualification_type_id"] == marker}
    hits = {h["hit_id"] for h in platform_hits(ledger, platform)}
    granted = 0
    for row in assignments:
        worker = row["worker_id"]
        if row["hit_id"] not in hits or worker in done:
            continue
        ledger.record_qualification_grant(target=target, qualification_type_id=marker,
                                          worker_id=worker, status="intent")
        try:
            platform.mark_participant(marker, worker)
        except PlatformError as exc:
            ledger.record_qualification_grant(target=target, qualification_type_id=marker,
                                              worker_id=worker, status="failed")
            done.add(worker)  # not again in this pass
            if errors is not None:
                errors.append(f"granting the study qualification failed "
                              f"(retried next time): {exc}")
            continue
        ledger.record_qualification_grant(target=target, qualification_type_id=marker,
                                          worker_id=worker, status="done")
        done.add(worker)
        granted += 1
    return granted


def refresh_expert_workers(ledger: Ledger, platform: Platform, config: StudyConfig) -> None:
    """Remember which workers the platform marks as experts (for the expert rule).

    Stored in the ledger so `crowdkit review` and re-runs classify the same way offline.
    """
    if config.participants.expert_rule not in ("qualification", "any"):
        return
    holders = platform.expert_workers(ledger)
    if holders is not None:
        ledger.set_expert_qualification_workers(platform.target, sorted(holders))
