"""Blocking workers: `crowdkit block` / `unblock`, and review's blocks of fraud.

A blocked worker can take no HIT of the requester again (MTurk's CreateWorkerBlock). Every
block and unblock is recorded in the ledger before the call ('intent') and after it ('done'
or 'failed'), one row per worker and target holding what was asked last, so a re-run
finishes what a killed one started, and review never blocks again a worker the researcher
unblocked.

Researchers see pseudonyms (the exports' participant ids), not worker ids: a pseudonym is
resolved to its worker through the ledger; a worker id is taken as it is.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from crowdkit.collect.dataset import is_pseudonym, pseudonym
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import Platform, PlatformError
from crowdkit.study import Study
from crowdkit.units import plural


@dataclass
class BlockResult:
    done: list[str] = field(default_factory=list)  # worker ids blocked or unblocked now
    already: list[str] = field(default_factory=list)  # the ledger says so already
    failures: list[str] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        text = f"{verb} {plural(len(self.done), 'worker')}"
        if self.already:
            text += f" ({len(self.already)} already {verb})"
        if self.failures:
            text += f"; {plural(len(self.failures), 'call')} failed (run it again to retry)"
        return text


def resolve_workers(ledger: Ledger, who: list[str]) -> list[str]:
    """Worker ids for pseudonyms (p + 16 hex digits) or worker ids; one line for a pseudonym
    no assignment of this study has."""
    key = ledger.pseudonym_key()
    by_pseudonym = {pseudonym(key, row["worker_id"]): row["worker_id"]
                    for row in ledger.assignments()}
    out = []
    for name in who:
        if name in by_pseudonym:
            out.append(by_pseudonym[name])
        elif is_pseudonym(name):
            raise CrowdkitError(f"{name}: no participant of this study has that pseudonym")
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def set_block(ledger: Ledger, platform: Platform, worker_id: str, *, blocked: bool,
              reason: str, assignment_id: str | None = None) -> str | None:
    """Block or unblock one worker, recorded before and after; the error line, or None."""
    def record(status: str, error: str | None = None) -> None:
        ledger.record_block(target=platform.target, worker_id=worker_id, blocked=blocked,
                            reason=reason, assignment_id=assignment_id, status=status,
                            error=error)

    record("intent")
    try:
        if blocked:
            platform.block_worker(worker_id, reason)
        else:
            platform.unblock_worker(worker_id, reason)
    except PlatformError as exc:
        record("failed", str(exc))
        return f"{'block' if blocked else 'unblock'} {worker_id}: {exc}"
    record("done")
    return None


def is_blocked(row: sqlite3.Row | None) -> bool:
    """A worker_blocks row that records a block done."""
    return row is not None and bool(row["blocked"]) and row["status"] == "done"


def block_workers(study: Study, platform: Platform, who: list[str], *, reason: str,
                  blocked: bool = True) -> BlockResult:
    """`crowdkit block` (or `unblock`): each named worker, once; safe to repeat."""
    reason = reason.strip() or (f"blocked by the researcher of the study {study.name}"
                                if blocked else "unblocked by the researcher")
    result = BlockResult()
    command = "crowdkit block" if blocked else "crowdkit unblock"
    with Ledger.open(study.db_path, write=True, command=command) as ledger:
        rows = ledger.blocks(platform.target)
        for worker in resolve_workers(ledger, who):
            row = rows.get(worker)
            if row is not None and row["status"] == "done" and bool(row["blocked"]) == blocked:
                result.already.append(worker)
                continue
            error = set_block(ledger, platform, worker, blocked=blocked, reason=reason)
            if error:
                result.failures.append(error)
            else:
                result.done.append(worker)
    return result
