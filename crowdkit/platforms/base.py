"""What a study needs from a crowd platform, whatever the platform.

publish, collect, review and status each take one `Platform` and call nothing else of the
crowd: post a task idempotently from a request token, list what came back page by page,
approve, reject and pay a bonus idempotently, mark a worker as having taken part, block a
worker, read the balance and the fees, and link to a preview. The ledger bookkeeping around
each call (intent before, result after) stays in those modules, so every platform gets the
same crash safety for free.

Terms: a *posting* is what workers take (an MTurk HIT), a *submission* one worker's answer
to it (an MTurk assignment), a *marker* what keeps a worker from taking part twice (MTurk:
the study's qualification). Failures are `PlatformError`s, classified by type and the
platform's error code, never by the wording of a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from crowdkit.errors import CrowdkitError

if TYPE_CHECKING:
    from crowdkit.ledger import Ledger


class PlatformError(CrowdkitError):
    """A call to the crowd platform failed after its retries.

    `code` is the platform's own error code ("" when the network failed), `detail` its
    message; `str(error)` is one line a researcher can act on.
    """

    def __init__(self, message: str, *, code: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


class NotFound(PlatformError):
    """The posting or submission does not exist (any more: MTurk disposes of old HITs)."""


class AlreadyDone(PlatformError):
    """The request token was used already: the earlier call did what this one asks."""


class InvalidState(PlatformError):
    """The thing is in a state that refuses the call (say, approving a rejected answer)."""


class AuthFailed(PlatformError):
    """The credentials were refused, or may not use the platform."""


class Unreachable(PlatformError):
    """Nothing answered: the network, the endpoint or a local service that is not running."""


class ForeignPosting(CrowdkitError):
    """A posting found by a request token carries another study's id: never adopt it."""


@dataclass(frozen=True)
class Posting:
    """A posted task as the platform returned it; `existed` when an earlier call made it."""

    id: str
    group_id: str | None = None
    type_id: str | None = None
    expiration: datetime | None = None
    annotation: str | None = None
    existed: bool = False


@dataclass(frozen=True)
class PostingState:
    """Where a posting stands now: its slots by state, its reward and its time."""

    id: str
    status: str
    max_assignments: int
    available: int
    pending: int
    reward: Decimal
    expiration: datetime | None
    group_id: str | None = None


@dataclass(frozen=True)
class Submission:
    """One worker's answer, exactly as the platform holds it (times as ISO 8601 UTC)."""

    id: str
    posting_id: str
    worker_id: str
    status: str  # Submitted, Approved or Rejected
    answer: str | None
    accept_time: str | None = None
    submit_time: str | None = None
    auto_approval_time: str | None = None


class Platform(Protocol):
    """A crowd platform at one target (local twin, sandbox or live)."""

    name: str
    target: str

    def describe(self) -> str: ...

    def check(self) -> None:
        """Refuse settings the platform would refuse (a ConfigError), before any call."""
        ...

    # -- money ---------------------------------------------------------------------------
    extra_fee_label: str  # what the extra fee of assignment_fees is, in a cost summary
    bonus_fee_label: str  # how the fee on bonuses reads in a cost summary

    def fee_label(self, max_assignments: list[int]) -> str:
        """How the fee on these postings' rewards reads in a cost summary."""
        ...

    def assignment_fees(self, reward: Decimal, max_assignments: int) -> tuple[Decimal, Decimal]:
        """(commission, extra fee such as Masters) the platform takes on one assignment."""
        ...

    def bonus_fee(self, amount: Decimal) -> Decimal: ...

    def balance(self) -> Decimal: ...

    # -- postings ------------------------------------------------------------------------
    def question(self, page_html: str, task_id: str) -> str:
        """The worker's page in the form the platform takes (checked against its limits)."""
        ...

    def prepare(self, ledger: Ledger) -> None:
        """Study-level set-up before postings are created (MTurk: qualifications, HIT type)."""
        ...

    def create_posting(self, *, request_token: str, task_id: str, max_assignments: int,
                       question: str, lifetime_s: int, owner: str) -> Posting:
        """Create a posting, or return the one an earlier call with the token made.

        `owner` is the study's id (the ledger's): the posting carries it, and a posting
        that carries another study's id is never returned (a ForeignPosting error).
        """
        ...

    def find_postings(self, tokens: set[str], *, owner: str) -> dict[str, Posting]:
        """The account's postings made with these request tokens, by token (ForeignPosting
        when one of them carries another owner)."""
        ...

    def add_assignments(self, posting_id: str, count: int, token: str) -> None:
        """`count` more slots on a posting, once per token (AlreadyDone when used)."""
        ...

    def extend_posting(self, posting_id: str, expire_at: datetime) -> None:
        """Keep a posting open until `expire_at` (a later time than it has)."""
        ...

    def posting_state(self, posting_id: str) -> PostingState: ...

    def expire_posting(self, posting_id: str) -> None:
        """Nobody new can start it; raises NotFound when the platform no longer has it."""
        ...

    def preview_url(self, group_id: str | None) -> str | None: ...

    # -- submissions ---------------------------------------------------------------------
    def submissions(self, posting_id: str) -> Iterator[list[Submission]]:
        """Every submission of a posting in every status, page by page."""
        ...

    def submission_status(self, submission_id: str) -> str: ...

    def approve(self, submission_id: str) -> None: ...

    def reject(self, submission_id: str, message: str) -> None: ...

    def pay_bonus(self, *, worker_id: str, submission_id: str, amount: Decimal, reason: str,
                  token: str) -> None:
        """Pay once per token; AlreadyDone when the token was used already."""
        ...

    def bonus_paid(self, submission_id: str) -> bool: ...

    # -- workers -------------------------------------------------------------------------
    def participation_marker(self, ledger: Ledger) -> str | None:
        """The id of what marks this study's participants, once publish has set it up."""
        ...

    def mark_participant(self, marker: str, worker_id: str) -> None: ...

    def expert_workers(self, ledger: Ledger) -> set[str] | None:
        """Workers the platform marks as invited experts; None when there is no such mark."""
        ...

    def block_worker(self, worker_id: str, reason: str) -> None: ...

    def unblock_worker(self, worker_id: str, reason: str) -> None: ...
