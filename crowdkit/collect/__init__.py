"""Assignments -> ledger (verbatim) -> parsed answers -> tidy trials (DESIGN.md).

`crowdkit collect` does four things, in this order, and can be re-run at any time:

1. For every HIT of the study in the ledger, list its assignments (all statuses, every
   page) and store each answer XML verbatim in the ledger *before* anything parses it.
   HITs whose assignments are all final (approved or rejected, every slot filled) are not
   listed again: nothing about them can change.
2. Grant the study's participation qualification to every worker seen, so nobody takes a
   second HIT of the study.
3. Parse every stored answer defensively (`parse_answer`). A malformed or hostile answer
   marks its assignment invalid with a reason; it never crashes the run or loses the raw
   XML. Correctness comes from the ledger's answer key only.
4. Apply the quality rules (crowdkit.quality) and write data/trials.parquet, trials.csv and
   participants.csv. Files are rewritten only when their content changes, so a re-run that
   finds nothing new changes nothing.

Worker ids stay in the ledger; the exports carry `pseudonym(key, worker_id)`.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crowdkit.design import AnswerKey, TrialKey
from crowdkit.errors import CrowdkitError
from crowdkit.files import write_atomically
from crowdkit.payload import Payload
from crowdkit.turk import error_text, paginate

DATA_FIELD = "data"
LISTED_STATUSES = ["Submitted", "Approved", "Rejected"]
PAGE_SIZE = 100
PSEUDONYM_HEX_DIGITS = 16
TRIAL_COLUMNS = [
    "study", "target", "participant_id", "assignment_id", "hit_id", "task_id", "trial_index",
    "phase", "condition", "reference_mode", "n_references", "layer", "channel", "unit",
    "batch", "unit_selection", "max_position", "response", "correct", "confidence", "rt_ms",
    "expert_level", "excluded", "exclusion_reasons",
]
# Markup in free text: a tag, a comment, a processing instruction or a script URL.
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>|<!--|<\?|javascript\s*:", re.IGNORECASE)
_RANGE_ERRORS = frozenset({
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error",
    "too_long", "too_short", "string_too_long", "string_too_short", "finite_number",
})


def pseudonym(key: bytes, worker_id: str) -> str:
    """The participant id the exports carry: a keyed hash of the worker id.

    Stable within a study (the key lives in its ledger), unlinkable across studies and
    irreversible without the key.
    """
    digest = hmac.new(key, worker_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "p" + digest[:PSEUDONYM_HEX_DIGITS]


# ---------------------------------------------------------------------------- parsing


class AnswerProblem(ValueError):
    """Why an answer is invalid. `kind` is a short category, the message says the detail."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class ParsedAnswer:
    """A parsed answer: the payload when valid, else the problem that made it invalid."""

    payload: Payload | None
    problem: AnswerProblem | None

    @property
    def valid(self) -> bool:
        return self.problem is None

    @property
    def reason(self) -> str | None:
        return None if self.problem is None else str(self.problem)


def answer_fields(answer_xml: str | None) -> dict[str, str]:
    """Field name -> value from MTurk's QuestionFormAnswers XML (namespace-agnostic).

    Accepts an XML declaration (of any encoding), and refuses documents that declare a DTD:
    entity tricks have no place in an answer.
    """
    if answer_xml is None or not answer_xml.strip():
        raise AnswerProblem("missing field", "the assignment has no answer")
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", answer_xml, re.IGNORECASE):
        raise AnswerProblem("invalid XML", "the answer declares a DTD or entities")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", answer_xml, count=1)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise AnswerProblem("invalid XML", str(exc)) from None
    fields: dict[str, str] = {}
    for element in root.iter():
        if _local(element.tag) != "Answer":
            continue
        name = value = None
        for child in element:
            if _local(child.tag) == "QuestionIdentifier":
                name = (child.text or "").strip()
            elif _local(child.tag) == "FreeText":
                value = child.text or ""
        if name and value is not None:
            fields.setdefault(name, value)
    return fields


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_data(text: str) -> Any:
    """The `data` field's JSON, also when the page or a proxy HTML-escaped it."""
    candidates = [text]
    unescaped = html.unescape(text)
    if unescaped != text:
        candidates.append(unescaped)
    error: Exception | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            error = exc
    raise AnswerProblem("invalid JSON", str(error).splitlines()[0][:200])


def parse_answer(answer_xml: str | None, key: AnswerKey) -> ParsedAnswer:
    """Parse one stored answer against its task's answer key; never raises."""
    try:
        fields = answer_fields(answer_xml)
        if DATA_FIELD not in fields:
            raise AnswerProblem("missing field", f"the answer has no {DATA_FIELD!r} field")
        payload = validate_payload(decode_data(fields[DATA_FIELD]))
        check_against_key(payload, key)
        return ParsedAnswer(payload, None)
    except AnswerProblem as problem:
        return ParsedAnswer(None, problem)
    except Exception as exc:  # a parser bug must not stop a collect or lose an answer
        return ParsedAnswer(None, AnswerProblem("unparseable", f"{type(exc).__name__}: {exc}"))


def validate_payload(data: Any) -> Payload:
    """The Payload model, strictly: no coercion of "3" to 3, no extra fields, no markup."""
    if not isinstance(data, dict):
        raise AnswerProblem("wrong types", f"data is a JSON {type(data).__name__}, not an object")
    try:
        payload = Payload.model_validate(data, strict=True)
    except ValidationError as exc:
        raise _describe(exc) from None
    for where, text in _texts(payload):
        if _MARKUP.search(text):
            raise AnswerProblem("markup in text", f"{where} contains markup")
    return payload


def _describe(exc: ValidationError) -> AnswerProblem:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "data"
    if err["type"] == "missing":
        return AnswerProblem("missing field", where)
    if err["type"] == "extra_forbidden":
        return AnswerProblem("unexpected field", where)
    if err["type"] in _RANGE_ERRORS or (
        err["type"] == "float_type" and isinstance(err.get("input"), float)
    ):
        return AnswerProblem("absurd value", f"{where} = {_short(err.get('input'))}")
    return AnswerProblem("wrong types", f"{where}: {err['msg']}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _texts(payload: Payload) -> Iterable[tuple[str, str]]:
    yield "task_id", payload.task_id
    for i, trial in enumerate(payload.trials):
        yield f"trials.{i}.trial_id", trial.trial_id
    if payload.questionnaire is not None:
        yield "questionnaire.feedback", payload.questionnaire.feedback
    if payload.client.user_agent is not None:
        yield "client.user_agent", payload.client.user_agent


def check_against_key(payload: Payload, key: AnswerKey) -> None:
    """Task id, trial ids, duplicates and rounds, checked against the answer key."""
    if payload.task_id != key.task_id:
        raise AnswerProblem("wrong task", f"the answer is for task {payload.task_id!r}, "
                            f"the HIT shows task {key.task_id!r}")
    by_id = {t.trial_id: t for t in key.trials}
    unknown = sorted({r.trial_id for r in payload.trials if r.trial_id not in by_id})
    if unknown:
        raise AnswerProblem("unknown trial ids", ", ".join(_short(u) for u in unknown[:5]))
    seen: set[tuple[str, int]] = set()
    for response in payload.trials:
        trial = by_id[response.trial_id]
        if trial.phase != "practice" and response.round != 1:
            raise AnswerProblem("absurd value", f"test trial {trial.trial_id} has round "
                                f"{response.round}; only practice trials repeat")
        ident = (response.trial_id, response.round)
        if ident in seen:
            raise AnswerProblem("duplicated trials", f"trial {response.trial_id} round "
                                f"{response.round} is answered twice")
        seen.add(ident)
    if math.isnan(payload.timing.total_ms) or math.isnan(payload.timing.instructions_ms):
        raise AnswerProblem("absurd value", "timing is not a number")
    if payload.timing.instructions_ms > payload.timing.total_ms:
        raise AnswerProblem("absurd value", "the instructions took longer than the whole task")


# ---------------------------------------------------------------------------- fetching


@dataclass
class FetchStats:
    """What one pass over the HITs found."""

    hits_listed: int = 0
    hits_skipped: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


ClientFor = Callable[[str], Any]


def _iso(value: Any) -> str | None:
    """MTurk's times (datetimes from boto3, or strings) as ISO 8601 UTC strings."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return str(value)


def list_assignment_pages(client: Any, hit_id: str) -> Iterable[list[dict[str, Any]]]:
    """Every assignment of a HIT in every status MTurk lists, page by page (NextToken)."""
    token = None
    while True:
        kwargs: dict[str, Any] = {"HITId": hit_id, "MaxResults": PAGE_SIZE,
                                  "AssignmentStatuses": LISTED_STATUSES}
        if token:
            kwargs["NextToken"] = token
        page = client.list_assignments_for_hit(**kwargs)
        assignments = page.get("Assignments", [])
        if assignments:
            yield assignments
        token = page.get("NextToken")
        if not token or not assignments:
            return


def _store_page(ledger: Any, hit_id: str, page: list[dict[str, Any]], stats: FetchStats) -> None:
    """Store one page of answers verbatim, in one transaction, as soon as it arrives."""
    with ledger.transaction():
        for a in page:
            outcome = ledger.store_assignment(
                assignment_id=a["AssignmentId"], hit_id=hit_id, worker_id=a["WorkerId"],
                status=a["AssignmentStatus"], answer_xml=a.get("Answer"),
                accept_time=_iso(a.get("AcceptTime")), submit_time=_iso(a.get("SubmitTime")),
                auto_approval_time=_iso(a.get("AutoApprovalTime")),
            )
            setattr(stats, outcome, getattr(stats, outcome) + 1)


def hit_is_settled(hit: Any, counts: dict[str, tuple[int, int]]) -> bool:
    """True when every slot of the HIT holds an approved or rejected assignment.

    `counts` is `ledger.assignment_counts()`: stored and final assignments per HIT.
    """
    stored, final = counts.get(hit["hit_id"], (0, 0))
    return final >= hit["max_assignments"] and final == stored


def fetch_assignments(ledger: Any, client_for: ClientFor,
                      on_hit: Callable[[], None] | None = None) -> FetchStats:
    """Store every assignment of every HIT that may have changed, verbatim, in the ledger."""
    stats = FetchStats()
    counts = ledger.assignment_counts()
    for hit in study_hits(ledger):
        if hit_is_settled(hit, counts):
            stats.hits_skipped += 1
        else:
            stats.hits_listed += 1
            try:
                for page in list_assignment_pages(client_for(hit["target"]), hit["hit_id"]):
                    _store_page(ledger, hit["hit_id"], page, stats)
            except CrowdkitError:
                raise
            except Exception as exc:  # one unreachable HIT must not stop the others
                stats.errors.append(f"HIT {hit['hit_id']}: {error_text(exc)}")
        if on_hit is not None:
            on_hit()
    return stats


def study_hits(ledger: Any) -> list[Any]:
    """The HITs MTurk knows about: those whose create call returned an id."""
    return [h for h in ledger.hits() if h["hit_id"] is not None]


# ---------------------------------------------------------------------------- qualifications


def grant_participation(ledger: Any, client_for: ClientFor, assignments: list[Any],
                        errors: list[str] | None = None) -> int:
    """Grant the study's participation qualification to every worker with an assignment
    (`assignments`: the ledger's rows).

    Recorded in the ledger before ('intent') and after ('done' or 'failed') the call, so
    each worker is granted once; a failed grant is retried on the next pass and reported in
    `errors`. Returns how many grants were made now.
    """
    done = {(g["target"], g["qualification_type_id"], g["worker_id"])
            for g in ledger.qualification_grants() if g["status"] == "done"}
    hits = {h["hit_id"]: h["target"] for h in study_hits(ledger)}
    type_ids = {t: ledger.study_qualification_type_id(t) for t in set(hits.values())}
    granted = 0
    for row in assignments:
        target = hits.get(row["hit_id"])
        type_id = type_ids.get(target)
        worker = row["worker_id"]
        if type_id is None or (target, type_id, worker) in done:
            continue
        ledger.record_qualification_grant(target=target, qualification_type_id=type_id,
                                          worker_id=worker, status="intent")
        try:
            client_for(target).associate_qualification_with_worker(
                QualificationTypeId=type_id, WorkerId=worker, IntegerValue=1,
                SendNotification=False)
        except CrowdkitError:
            raise
        except Exception as exc:
            ledger.record_qualification_grant(target=target, qualification_type_id=type_id,
                                              worker_id=worker, status="failed")
            done.add((target, type_id, worker))  # not again in this pass
            if errors is not None:
                errors.append(f"granting the study qualification failed "
                              f"(retried next time): {error_text(exc)}")
            continue
        ledger.record_qualification_grant(target=target, qualification_type_id=type_id,
                                          worker_id=worker, status="done")
        done.add((target, type_id, worker))
        granted += 1
    return granted


def refresh_expert_qualification(ledger: Any, client_for: ClientFor, config: Any) -> None:
    """Remember which workers hold the expert qualification (for the expert rule).

    Stored in the ledger so `crowdkit review` and re-runs classify the same way offline.
    """
    if config.participants.expert_rule not in ("qualification", "any"):
        return
    for target in sorted({h["target"] for h in study_hits(ledger)}):
        type_id = ledger.expert_qualification_type_id(
            target, config.qualifications.expert_qualification)
        if type_id is None:
            continue
        holders = paginate(client_for(target).list_workers_with_qualification_type,
                           "Qualifications", QualificationTypeId=type_id, Status="Granted")
        ledger.set_expert_qualification_workers(target, sorted({q["WorkerId"] for q in holders}))


# ---------------------------------------------------------------------------- the data set


@dataclass
class AssignmentRecord:
    """One assignment, parsed and judged: what participants.csv says about it."""

    assignment_id: str
    hit_id: str
    task_id: str
    target: str
    worker_id: str
    participant_id: str
    status: str
    accept_time: str | None
    submit_time: str | None
    auto_approval_time: str | None
    parsed: ParsedAnswer
    key: AnswerKey
    rules: dict[str, Any] = field(default_factory=dict)  # name -> quality.RuleResult
    expert_level: str = "unknown"
    expert_source: str = ""
    excluded: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def exclusion_reasons(self) -> str:
        return ";".join(self.reasons)


@dataclass
class Dataset:
    """Every assignment of the study, judged, with its tidy trial rows."""

    study: str
    records: list[AssignmentRecord]

    def trial_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for record in self.records:
            rows += tidy_rows(self.study, record)
        return rows

    def trials_frame(self) -> Any:
        import pandas as pd

        frame = pd.DataFrame(self.trial_rows(), columns=TRIAL_COLUMNS)
        return frame.astype(_TRIAL_DTYPES)

    def participants_frame(self) -> Any:
        import pandas as pd

        from crowdkit.quality import PARTICIPANT_COLUMNS, PARTICIPANT_DTYPES, participant_row

        frame = pd.DataFrame([participant_row(r) for r in self.records],
                             columns=PARTICIPANT_COLUMNS)
        return frame.astype(PARTICIPANT_DTYPES)


_TRIAL_DTYPES = {
    "study": "string", "target": "string", "participant_id": "string",
    "assignment_id": "string", "hit_id": "string", "task_id": "string",
    "trial_index": "int64", "phase": "string", "condition": "string",
    "reference_mode": "string", "n_references": "int64", "layer": "string",
    "channel": "int64", "unit": "string", "batch": "int64", "unit_selection": "string",
    "max_position": "string", "response": "string", "correct": "bool",
    "confidence": "int64", "rt_ms": "float64", "expert_level": "string",
    "excluded": "bool", "exclusion_reasons": "string",
}


def tidy_rows(study: str, record: AssignmentRecord) -> list[dict[str, Any]]:
    """One row per answered trial (practice: one per round), in the order shown."""
    payload = record.parsed.payload
    if payload is None:
        return []
    by_id: dict[str, TrialKey] = {t.trial_id: t for t in record.key.trials}
    responses = sorted(payload.trials,
                       key=lambda r: (by_id[r.trial_id].trial_index, r.round))
    rows = []
    for response in responses:
        trial = by_id[response.trial_id]
        rows.append({
            "study": study, "target": record.target, "participant_id": record.participant_id,
            "assignment_id": record.assignment_id, "hit_id": record.hit_id,
            "task_id": record.task_id, "trial_index": trial.trial_index, "phase": trial.phase,
            "condition": trial.condition, "reference_mode": trial.reference_mode,
            "n_references": trial.n_references, "layer": trial.layer,
            "channel": trial.channel, "unit": trial.unit_id, "batch": trial.batch,
            "unit_selection": trial.unit_selection, "max_position": trial.max_position,
            "response": response.response, "correct": response.response == trial.max_position,
            "confidence": response.confidence, "rt_ms": float(response.rt_ms),
            "expert_level": record.expert_level, "excluded": record.excluded,
            "exclusion_reasons": record.exclusion_reasons,
        })
    return rows


def build_dataset(study: Any, ledger: Any, assignments: list[Any] | None = None) -> Dataset:
    """Parse every stored assignment and judge it by the study's quality rules.

    `assignments` are the ledger's rows when the caller has read them already.
    """
    from crowdkit.quality import judge

    keys = {task.key.task_id: task.key for task in ledger.tasks()}
    hits = {h["hit_id"]: h for h in study_hits(ledger)}
    secret = ledger.pseudonym_key()
    records = []
    for row in ledger.assignments() if assignments is None else assignments:
        hit = hits.get(row["hit_id"])
        if hit is None or hit["task_id"] not in keys:
            continue
        key = keys[hit["task_id"]]
        records.append(AssignmentRecord(
            assignment_id=row["assignment_id"], hit_id=row["hit_id"], task_id=key.task_id,
            target=hit["target"], worker_id=row["worker_id"],
            participant_id=pseudonym(secret, row["worker_id"]), status=row["status"],
            accept_time=row["accept_time"], submit_time=row["submit_time"],
            auto_approval_time=row["auto_approval_time"],
            parsed=parse_answer(row["answer_xml"], key), key=key,
        ))
    judge(records, study.config, expert_workers=ledger.expert_qualification_workers())
    return Dataset(study=study.name, records=records)


def record_parse_results(ledger: Any, dataset: Dataset, assignments: list[Any]) -> int:
    """Write each assignment's parse status to the ledger where it differs from the rows
    `assignments` hold; count the changes."""
    current = {r["assignment_id"]: (r["parse_status"], r["parse_error"]) for r in assignments}
    changed = 0
    with ledger.transaction():
        for record in dataset.records:
            status = "ok" if record.parsed.valid else "invalid"
            if current.get(record.assignment_id) != (status, record.parsed.reason):
                ledger.set_assignment_parse(record.assignment_id, status, record.parsed.reason)
                changed += 1
    return changed


# ---------------------------------------------------------------------------- exports


def write_exports(dataset: Dataset, data_dir: Path) -> list[Path]:
    """Write trials.parquet, trials.csv and participants.csv; return the files that changed.

    Each file is written atomically (crowdkit.files), so a reader never sees half a file,
    and left alone when its content would not change (the Parquet file follows trials.csv).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    trials = dataset.trials_frame()
    trials_csv = trials.to_csv(index=False, lineterminator="\n")
    participants_csv = dataset.participants_frame().to_csv(index=False, lineterminator="\n")
    changed = []
    for name, text in (("trials.csv", trials_csv), ("participants.csv", participants_csv)):
        if _write_if_changed(data_dir / name, text.encode("utf-8")):
            changed.append(data_dir / name)
    parquet = data_dir / "trials.parquet"
    if data_dir / "trials.csv" in changed or not parquet.exists():
        write_atomically(parquet, trials.to_parquet(index=False))
        changed.append(parquet)
    return changed


def _write_if_changed(path: Path, content: bytes) -> bool:
    if path.exists() and path.read_bytes() == content:
        return False
    write_atomically(path, content)
    return True


# ---------------------------------------------------------------------------- the command


@dataclass
class CollectResult:
    fetch: FetchStats
    granted: int
    parse_updates: int
    dataset: Dataset
    written: list[Path]

    def summary(self) -> str:
        records = self.dataset.records
        invalid = sum(1 for r in records if not r.parsed.valid)
        excluded = sum(1 for r in records if r.excluded)
        n_trials = sum(len(r.parsed.payload.trials) for r in records if r.parsed.payload)
        written = ", ".join(p.name for p in self.written) or "no file changed"
        return (f"{len(records)} assignments ({self.fetch.new} new, {self.fetch.changed} "
                f"changed; {invalid} invalid, {excluded} excluded), {n_trials} trial "
                f"responses; {self.fetch.hits_listed} HITs listed, {self.fetch.hits_skipped} "
                f"settled; {self.granted} qualifications granted; wrote: {written}")


def collect_once(study: Any, ledger: Any, client_for: ClientFor,
                 on_hit: Callable[[], None] | None = None) -> CollectResult:
    """One full pass: fetch, grant, parse, judge, export. Safe to repeat.

    The stored assignments are read once, after fetching; granting and parsing write other
    columns and tables, so every later step works from that one read.
    """
    fetch = fetch_assignments(ledger, client_for, on_hit)
    assignments = ledger.assignments()
    granted = grant_participation(ledger, client_for, assignments, fetch.errors)
    try:
        refresh_expert_qualification(ledger, client_for, study.config)
    except CrowdkitError:
        raise
    except Exception as exc:  # the last list kept in the ledger still classifies
        fetch.errors.append(f"listing the expert qualification failed: {error_text(exc)}")
    dataset = build_dataset(study, ledger, assignments)
    updates = record_parse_results(ledger, dataset, assignments)
    written = write_exports(dataset, study.data_dir)
    return CollectResult(fetch, granted, updates, dataset, written)


def hits_done(ledger: Any, now: datetime | None = None) -> tuple[int, int, bool]:
    """(assignments submitted, assignments wanted, every HIT done) for --watch.

    A HIT is done when all its slots are submitted, or when it has expired.
    """
    now = now or datetime.now(UTC)
    counts = ledger.assignment_counts()
    seen = wanted = 0
    all_done = True
    for hit in study_hits(ledger):
        n = counts.get(hit["hit_id"], (0, 0))[0]
        expired = hit["status"] in ("expired", "deleted") or _past(hit["expiration"], now)
        seen += min(n, hit["max_assignments"])
        wanted += hit["max_assignments"]
        if n < hit["max_assignments"] and not expired:
            all_done = False
    return seen, wanted, all_done


def _stored_time(value: str | None) -> datetime | None:
    """A time the ledger holds (ISO 8601, UTC when unmarked); None if absent or unreadable."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _past(value: str | None, now: datetime) -> bool:
    when = _stored_time(value)
    return when is not None and when <= now


def auto_approval_warnings(ledger: Any, within_hours: float = 24,
                           now: datetime | None = None) -> list[str]:
    """Warn about submitted assignments MTurk will approve by itself soon (or already has)."""
    now = now or datetime.now(UTC)
    soon = []
    reviewed = {a for a, r in ledger.reviews().items() if r["status"] == "done"}
    for row in ledger.assignments():
        if row["status"] != "Submitted" or row["assignment_id"] in reviewed:
            continue
        when = row["auto_approval_time"]
        if when and _hours_until(when, now) <= within_hours:
            soon.append(when)
    if not soon:
        return []
    return [f"{len(soon)} submitted assignments will be approved automatically by MTurk "
            f"within {within_hours:g} hours (the first at {min(soon)}); run "
            "`crowdkit review` before then to reject or bonus any of them"]


def _hours_until(value: str, now: datetime) -> float:
    when = _stored_time(value)
    return math.inf if when is None else (when - now).total_seconds() / 3600


def collect(study: Any, client_for: ClientFor, *, watch: bool = False, interval: float = 30,
            echo: Callable[[str], None] = print,
            sleep: Callable[[float], None] = time.sleep,
            warn_auto_approval: bool = True) -> CollectResult:
    """`crowdkit collect`: one pass, or with `watch` passes until every HIT is done.

    `warn_auto_approval` False leaves out the reminder to review before MTurk approves
    submitted work by itself, for callers (the demo) that review right after.
    """
    from crowdkit.ledger import Ledger

    with Ledger.open(study.db_path, write=True, command="crowdkit collect") as ledger:
        if not study_hits(ledger):
            raise CrowdkitError(f"{study.db_path}: no HITs yet; run `crowdkit publish "
                                f"{study.root}` first")
        if not watch:
            result = _collect_with_progress(study, ledger, client_for)
        else:
            result = _watch(study, ledger, client_for, interval, sleep)
        for line in result.fetch.errors:
            echo(f"warning: {line}")
        for line in auto_approval_warnings(ledger) if warn_auto_approval else []:
            echo(f"warning: {line}")
        return result


def _collect_with_progress(study: Any, ledger: Any, client_for: ClientFor) -> CollectResult:
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        bar = progress.add_task("listing assignments", total=len(study_hits(ledger)))
        return collect_once(study, ledger, client_for,
                            on_hit=lambda: progress.advance(bar))


def _watch(study: Any, ledger: Any, client_for: ClientFor, interval: float,
           sleep: Callable[[float], None]) -> CollectResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    seen, wanted, done = hits_done(ledger)
    columns = (TextColumn("assignments"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns) as progress:
        bar = progress.add_task("", total=wanted, completed=seen)
        while True:
            result = collect_once(study, ledger, client_for)
            seen, wanted, done = hits_done(ledger)
            excluded = sum(1 for r in result.dataset.records if r.excluded)
            progress.update(bar, completed=seen, total=wanted,
                            description=f"{excluded} excluded so far")
            if done:
                return result
            sleep(interval)
