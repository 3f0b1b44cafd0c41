"""Amazon Mechanical Turk as a crowd platform (boto3), at the local twin, sandbox or live.

`MTurk(config, target)` is what publish, collect, review and status talk to. Its boto3
client is made on first use (`client=` passes one in: tests, benchmarks and the demo use a
client of an in-process local twin); the local target first checks that the twin answers.

Idempotent creation: every HIT is created with a UniqueRequestToken, which also goes into
its RequesterAnnotation with the study's id ("<token>;study=<id>"), so a HIT whose create
answer was lost is found again by its token while MTurk remembers it (24 hours) and by
listing the account's HITs after that, and a HIT another study made is never adopted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.platforms.base import (
    AlreadyDone,
    ForeignPosting,
    NotFound,
    PlatformError,
    Posting,
    PostingState,
    Submission,
)
from crowdkit.platforms.mturk import fees, quals
from crowdkit.platforms.mturk.client import (
    DEFAULT_MAX_ATTEMPTS,
    TARGETS,
    calling,
    check_target,
    error_message,
    hit_ids_in,
    is_token_already_used,
    iso,
    mturk_client,
    mturk_time,
    paginate,
    preview_url,
    require_local_service,
)
from crowdkit.platforms.mturk.quals import (
    LOCALE,
    MASTERS,
    NUMBER_APPROVED,
    PERCENT_APPROVED,
    StudyQualifications,
)
from crowdkit.platforms.mturk.question import check_question_size, html_question_xml
from crowdkit.study import StudyConfig
from crowdkit.units import money_str

__all__ = [
    "DEFAULT_MAX_ATTEMPTS", "LOCALE", "MASTERS", "NUMBER_APPROVED", "PERCENT_APPROVED",
    "TARGETS", "MTurk", "is_token_already_used", "mturk_client", "paginate", "preview_url",
]

LISTED_STATUSES = ["Submitted", "Approved", "Rejected"]
PAGE_SIZE = 100
# An ExpireAt in the past makes MTurk expire a HIT at once.
EXPIRE_NOW = "2015-01-01T00:00:00+00:00"


class MTurk:
    """MTurk at one target, for one study."""

    name = "mturk"

    # `client` is boto3's MTurk client: boto3 types neither its methods nor their answers,
    # and so the HIT and assignment dicts below are `dict[str, Any]` too
    def __init__(self, config: StudyConfig, target: str, *, client: Any = None) -> None:
        self.config = config
        self.target = check_target(target)
        self._client = client
        self.hit_type_id: str | None = None
        self.qualifications: StudyQualifications | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            mturk = self.config.mturk
            if self.target == "local":
                require_local_service(mturk.local_endpoint)
            self._client = mturk_client(self.target, local_endpoint=mturk.local_endpoint,
                                        profile=mturk.profile)
        return self._client

    def describe(self) -> str:
        return f"MTurk ({self.target})"

    def check(self) -> None:
        quals.qualification_requirements(self.config, self.target, "check", [])

    @property
    def endpoint(self) -> str:
        """The requester endpoint in use (a passed-in client's own)."""
        meta = getattr(self._client, "meta", None)
        return str(getattr(meta, "endpoint_url", None) or self.config.mturk.local_endpoint)

    # -- money ---------------------------------------------------------------------------

    extra_fee_label = "Masters fee (+5 %)"
    bonus_fee_label = "MTurk fee on bonuses (20 %)"

    def fee_label(self, max_assignments: list[int]) -> str:
        large = sum(n >= fees.LARGE_HIT_ASSIGNMENTS for n in max_assignments)
        rate = "20 % / 40 %" if 0 < large < len(max_assignments) else (
            "40 %" if large else "20 %")
        return f"MTurk fee ({rate})"

    def assignment_fees(self, reward: Decimal, max_assignments: int) -> tuple[Decimal, Decimal]:
        return fees.assignment_fees(reward, max_assignments, self.config.qualifications.masters)

    def bonus_fee(self, amount: Decimal) -> Decimal:
        return fees.bonus_fee(amount)

    def balance(self) -> Decimal:
        with calling(f"{self.target}: reading the account balance"):
            return Decimal(self.client.get_account_balance()["AvailableBalance"])

    # -- postings ------------------------------------------------------------------------

    def question(self, page_html: str, task_id: str) -> str:
        xml = html_question_xml(page_html)
        check_question_size(xml, task_id)
        return xml

    def prepare(self, ledger: Ledger) -> None:
        """The study's qualification types, then one HIT type for this run."""
        with calling(f"{self.target}: setting up qualifications"):
            self.qualifications = quals.ensure_qualifications(self.client, ledger, self.config,
                                                              self.target)
        hit = self.config.hit
        params = {
            "Title": hit.title, "Description": hit.description,
            "Keywords": ", ".join(hit.keywords), "Reward": money_str(hit.reward),
            "AssignmentDurationInSeconds": hit.assignment_duration,
            "AutoApprovalDelayInSeconds": hit.auto_approval_delay,
            "QualificationRequirements": quals.qualification_requirements(
                self.config, self.target, self.qualifications.study,
                self.qualifications.excluded),
        }
        with calling(f"{self.target}: creating the HIT type"):
            self.hit_type_id = str(self.client.create_hit_type(**params)["HITTypeId"])

    def create_posting(self, *, request_token: str, task_id: str, max_assignments: int,
                       question: str, lifetime_s: int, owner: str) -> Posting:
        if self.hit_type_id is None:
            raise RuntimeError("call prepare() before create_posting()")
        try:
            response = self.client.create_hit_with_hit_type(
                UniqueRequestToken=request_token,
                RequesterAnnotation=annotation(request_token, owner),
                HITTypeId=self.hit_type_id, MaxAssignments=max_assignments,
                LifetimeInSeconds=lifetime_s, Question=question)
            return _posting(response["HIT"])
        except Exception as exc:  # botocore ClientError or a modelled MTurk exception
            if not is_token_already_used(exc):
                with calling(f"creating the HIT of task {task_id}"):
                    raise
            existing = self._existing_hit(request_token, owner, error_message(exc))
            if existing is None:
                raise CrowdkitError(
                    f"MTurk says request token {request_token} was already used, but no HIT "
                    "with that token could be found; check the account's HITs") from exc
            return _posting(existing, existed=True)

    def _existing_hit(self, token: str, owner: str, message: str) -> dict[str, Any] | None:
        """The HIT a used token made: by the id in MTurk's message, else by listing."""
        for hit_id in hit_ids_in(message):
            try:
                hit = self.client.get_hit(HITId=hit_id)["HIT"]
            except Exception:  # noqa: BLE001 - not a HIT id after all; try the next one
                continue
            if hit.get("RequesterAnnotation") is None:
                return dict(hit)
            if _annotated(hit, {token}, owner):
                return dict(hit)
        return self._hits_by_annotation({token}, owner).get(token)

    def _hits_by_annotation(self, tokens: set[str], owner: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if not tokens:
            return found
        with calling(f"{self.target}: listing the account's HITs"):
            for hit in paginate(self.client.list_hits, "HITs"):
                token = _annotated(hit, tokens, owner)
                if token is not None:
                    found.setdefault(token, hit)
        return found

    def find_postings(self, tokens: set[str], *, owner: str) -> dict[str, Posting]:
        return {token: _posting(hit)
                for token, hit in self._hits_by_annotation(tokens, owner).items()}

    def add_assignments(self, posting_id: str, count: int, token: str) -> None:
        with calling(f"HIT {posting_id}: adding {count} assignments"):
            self.client.create_additional_assignments_for_hit(
                HITId=posting_id, NumberOfAdditionalAssignments=count, UniqueRequestToken=token)

    def extend_posting(self, posting_id: str, expire_at: datetime) -> None:
        with calling(f"HIT {posting_id}: extending it to {expire_at.isoformat()}"):
            self.client.update_expiration_for_hit(HITId=posting_id, ExpireAt=expire_at)

    def posting_state(self, posting_id: str) -> PostingState:
        with calling(f"reading HIT {posting_id}"):
            hit = self.client.get_hit(HITId=posting_id)["HIT"]
        return PostingState(
            id=posting_id, status=str(hit.get("HITStatus", "")),
            max_assignments=int(hit["MaxAssignments"]),
            available=int(hit.get("NumberOfAssignmentsAvailable", 0)),
            pending=int(hit.get("NumberOfAssignmentsPending", 0)),
            reward=Decimal(str(hit.get("Reward", "0"))),
            expiration=mturk_time(hit.get("Expiration")), group_id=hit.get("HITGroupId"))

    def expire_posting(self, posting_id: str) -> None:
        with calling(f"HIT {posting_id}: expiring it"):
            self.client.update_expiration_for_hit(HITId=posting_id,
                                                  ExpireAt=mturk_time(EXPIRE_NOW))

    def preview_url(self, group_id: str | None) -> str | None:
        if self.target == "local":
            return preview_url("local", "", self.endpoint)
        return preview_url(self.target, group_id) if group_id else None

    # -- submissions ---------------------------------------------------------------------

    def submissions(self, posting_id: str) -> Iterator[list[Submission]]:
        token = None
        while True:
            kwargs: dict[str, Any] = {"HITId": posting_id, "MaxResults": PAGE_SIZE,
                                      "AssignmentStatuses": LISTED_STATUSES}
            if token:
                kwargs["NextToken"] = token
            with calling(f"HIT {posting_id}: listing assignments"):
                page = self.client.list_assignments_for_hit(**kwargs)
            assignments = page.get("Assignments", [])
            if assignments:
                yield [_submission(posting_id, a) for a in assignments]
            token = page.get("NextToken")
            if not token or not assignments:
                return

    def submission_status(self, submission_id: str) -> str:
        with calling(f"reading assignment {submission_id}"):
            answer = self.client.get_assignment(AssignmentId=submission_id)
        return str(answer["Assignment"]["AssignmentStatus"])

    def approve(self, submission_id: str) -> None:
        with calling(f"approve {submission_id}"):
            self.client.approve_assignment(AssignmentId=submission_id)

    def reject(self, submission_id: str, message: str) -> None:
        with calling(f"reject {submission_id}"):
            self.client.reject_assignment(AssignmentId=submission_id,
                                          RequesterFeedback=message)

    def pay_bonus(self, *, worker_id: str, submission_id: str, amount: Decimal, reason: str,
                  token: str) -> None:
        with calling(f"bonus {submission_id}"):
            self.client.send_bonus(WorkerId=worker_id, BonusAmount=money_str(amount),
                                   AssignmentId=submission_id, Reason=reason,
                                   UniqueRequestToken=token)

    def bonus_paid(self, submission_id: str) -> bool:
        with calling(f"listing the bonuses of {submission_id}"):
            return any(True for _ in paginate(self.client.list_bonus_payments, "BonusPayments",
                                              AssignmentId=submission_id))

    # -- workers -------------------------------------------------------------------------

    def participation_marker(self, ledger: Ledger) -> str | None:
        return ledger.study_qualification_type_id(self.target)

    def mark_participant(self, marker: str, worker_id: str) -> None:
        with calling(f"granting the study qualification to {worker_id}"):
            self.client.associate_qualification_with_worker(
                QualificationTypeId=marker, WorkerId=worker_id, IntegerValue=1,
                SendNotification=False)

    def expert_workers(self, ledger: Ledger) -> set[str] | None:
        type_id = ledger.expert_qualification_type_id(
            self.target, self.config.qualifications.expert_qualification)
        if type_id is None:
            return None
        with calling("listing the expert qualification"):
            holders = paginate(self.client.list_workers_with_qualification_type,
                               "Qualifications", QualificationTypeId=type_id,
                               Status="Granted")
            return {str(q["WorkerId"]) for q in holders}

    def block_worker(self, worker_id: str, reason: str) -> None:
        with calling(f"blocking worker {worker_id}"):
            self.client.create_worker_block(WorkerId=worker_id, Reason=reason)

    def unblock_worker(self, worker_id: str, reason: str) -> None:
        with calling(f"unblocking worker {worker_id}"):
            self.client.delete_worker_block(WorkerId=worker_id, Reason=reason)


def annotation(token: str, owner: str) -> str:
    """The RequesterAnnotation of a crowdkit HIT: its request token and its study's id."""
    return f"{token};study={owner}"


def _annotated(hit: dict[str, Any], tokens: set[str], owner: str) -> str | None:
    """The token of `tokens` a HIT's annotation names, if any; ForeignPosting when the HIT
    names that token but another study. A bare token (HITs made before annotations named
    their study) counts as this study's."""
    token, _, rest = str(hit.get("RequesterAnnotation") or "").partition(";study=")
    if token not in tokens:
        return None
    if rest and rest != owner:
        raise ForeignPosting(
            f"HIT {hit.get('HITId')} was made by another crowdkit study (study id {rest}, "
            f"this ledger's is {owner}) with the same request token {token}; refusing to "
            "adopt it. Two ledgers share a token only when one was copied from the other: "
            "give each copy its own study directory made with `crowdkit design`")
    return token


def _posting(hit: dict[str, Any], existed: bool = False) -> Posting:
    return Posting(id=str(hit["HITId"]), group_id=hit.get("HITGroupId"),
                   type_id=hit.get("HITTypeId"), expiration=mturk_time(hit.get("Expiration")),
                   annotation=hit.get("RequesterAnnotation"), existed=existed)


def _submission(posting_id: str, a: dict[str, Any]) -> Submission:
    return Submission(
        id=str(a["AssignmentId"]), posting_id=posting_id, worker_id=str(a["WorkerId"]),
        status=str(a["AssignmentStatus"]), answer=a.get("Answer"),
        accept_time=iso(a.get("AcceptTime")), submit_time=iso(a.get("SubmitTime")),
        auto_approval_time=iso(a.get("AutoApprovalTime")))


__all__ += ["AlreadyDone", "NotFound", "PlatformError"]
