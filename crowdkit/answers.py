"""Answers: parsing one stored answer defensively, against its task's answer key.

MTurk returns what the page posted as QuestionFormAnswers XML; its `data` field holds the
JSON payload (crowdkit.payload). A malformed or hostile answer becomes a `ParsedAnswer`
with a `Problem` whose `kind` says what is wrong; nothing here ever raises, so one bad
answer never stops a collect or loses the raw XML. Review decides what each kind means
(crowdkit.review), by kind, never by the message text.
"""

from __future__ import annotations

import html
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from crowdkit.payload import Payload
from crowdkit.tasks import AnswerKey
from crowdkit.trials import registry

DATA_FIELD = "data"
# Markup in an id: a tag, a comment, a processing instruction or a script URL.
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>|<!--|<\?|javascript\s*:", re.IGNORECASE)
# Surrogates are never valid in text alone: after json.loads every one is a lone half.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_RANGE_ERRORS = frozenset({
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error",
    "too_long", "too_short", "string_too_long", "string_too_short", "finite_number",
})


class ProblemKind(StrEnum):
    """What is wrong with an answer. `tampering` says whether an honest page could send it."""

    MISSING_FIELD = "missing field"
    INVALID_XML = "invalid XML"
    INVALID_JSON = "invalid JSON"
    UNPARSEABLE = "unparseable"
    WRONG_TYPES = "wrong types"
    ABSURD_VALUE = "absurd value"
    UNEXPECTED_FIELD = "unexpected field"
    MARKUP = "markup in text"
    UNKNOWN_TRIALS = "unknown trial ids"
    DUPLICATED_TRIALS = "duplicated trials"
    WRONG_TASK = "wrong task"

    @property
    def tampering(self) -> bool:
        """True for what only an edited request sends: the real page never does."""
        return self in _TAMPERING


_TAMPERING = frozenset({
    ProblemKind.UNKNOWN_TRIALS, ProblemKind.DUPLICATED_TRIALS, ProblemKind.ABSURD_VALUE,
    ProblemKind.MARKUP, ProblemKind.UNEXPECTED_FIELD, ProblemKind.WRONG_TASK,
    ProblemKind.WRONG_TYPES,
})


class AnswerProblem(ValueError):
    """Why an answer is invalid. `kind` is a ProblemKind, the message says the detail."""

    def __init__(self, kind: ProblemKind, detail: str) -> None:
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
        raise AnswerProblem(ProblemKind.MISSING_FIELD, "the assignment has no answer")
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", answer_xml, re.IGNORECASE):
        raise AnswerProblem(ProblemKind.INVALID_XML, "the answer declares a DTD or entities")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", answer_xml, count=1)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise AnswerProblem(ProblemKind.INVALID_XML, str(exc)) from None
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


def _local(tag: object) -> str:  # ElementTree's comments and PIs have a function as tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_data(text: str) -> Any:  # any JSON value: validate_payload checks it
    """The `data` field's JSON, also when the page or a proxy HTML-escaped it."""
    candidates = [text]
    unescaped = html.unescape(text)
    if unescaped != text:
        candidates.append(unescaped)
    error: Exception | None = None
    for candidate in candidates:
        try:
            return repair_surrogates(json.loads(candidate, parse_constant=_reject_constant))
        except (ValueError, RecursionError) as exc:
            error = exc
    raise AnswerProblem(ProblemKind.INVALID_JSON, str(error).splitlines()[0][:200])


def repair_surrogates(value: Any) -> Any:  # any JSON value, returned with the same shape
    """Every string with a lone UTF-16 surrogate repaired (U+FFFD in its place).

    A browser that cuts a text between the two halves of an emoji sends one half as a
    `\\udXXX` escape; that is a slip of an honest page, not a wrong type.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, list):
        return [repair_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {repair_surrogates(k): repair_surrogates(v) for k, v in value.items()}
    return value


def parse_answer(answer_xml: str | None, key: AnswerKey) -> ParsedAnswer:
    """Parse one stored answer against its task's answer key; never raises."""
    try:
        fields = answer_fields(answer_xml)
        if DATA_FIELD not in fields:
            raise AnswerProblem(ProblemKind.MISSING_FIELD,
                                f"the answer has no {DATA_FIELD!r} field")
        payload = validate_payload(decode_data(fields[DATA_FIELD]), key)
        check_against_key(payload, key)
        return ParsedAnswer(payload, None)
    except AnswerProblem as problem:
        return ParsedAnswer(None, problem)
    except Exception as exc:  # a parser bug must not stop a collect or lose an answer
        return ParsedAnswer(None, AnswerProblem(ProblemKind.UNPARSEABLE,
                                                f"{type(exc).__name__}: {exc}"))


def validate_payload(data: object, key: AnswerKey | None = None) -> Payload:
    """The Payload model, strictly: no coercion of "3" to 3, no extra fields, no markup.

    With `key`, each answer is validated by its own trial's type (crowdkit.payload).
    """
    if not isinstance(data, dict):
        raise AnswerProblem(ProblemKind.WRONG_TYPES,
                            f"data is a JSON {type(data).__name__}, not an object")
    try:
        payload = Payload.model_validate(data, strict=True, context={"key": key})
    except ValidationError as exc:
        raise _describe(exc) from None
    for where, text in _ids(payload):
        if _MARKUP.search(text):
            raise AnswerProblem(ProblemKind.MARKUP, f"{where} contains markup")
    return payload


def _describe(exc: ValidationError) -> AnswerProblem:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "data"
    if err["type"] == "missing":
        return AnswerProblem(ProblemKind.MISSING_FIELD, where)
    if err["type"] == "extra_forbidden":
        return AnswerProblem(ProblemKind.UNEXPECTED_FIELD, where)
    if err["type"] in _RANGE_ERRORS or (
        err["type"] == "float_type" and isinstance(err.get("input"), float)
    ):
        return AnswerProblem(ProblemKind.ABSURD_VALUE, f"{where} = {_short(err.get('input'))}")
    return AnswerProblem(ProblemKind.WRONG_TYPES, f"{where}: {err['msg']}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ids(payload: Payload) -> Iterable[tuple[str, str]]:
    """The ids the page copies from the task: markup there only comes from an edited request.

    Free text (the comment, the browser's user agent) is what a person typed or a browser
    said: any character may be in it, markup included, and the exports keep it inert.
    """
    yield "task_id", payload.task_id
    for i, trial in enumerate(payload.trials):
        yield f"trials.{i}.trial_id", trial.trial_id


def check_against_key(payload: Payload, key: AnswerKey) -> None:
    """Task id, trial ids, duplicates and rounds, checked against the answer key, and each
    answer against its own trial (its type's `answer_problem`: a rating off the scale)."""
    if payload.task_id != key.task_id:
        raise AnswerProblem(ProblemKind.WRONG_TASK,
                            f"the answer is for task {payload.task_id!r}, "
                            f"the HIT shows task {key.task_id!r}")
    by_id = {t.trial_id: t for t in key.trials}
    unknown = sorted({r.trial_id for r in payload.trials if r.trial_id not in by_id})
    if unknown:
        raise AnswerProblem(ProblemKind.UNKNOWN_TRIALS, ", ".join(_short(u) for u in unknown[:5]))
    seen: set[tuple[str, int]] = set()
    for response in payload.trials:
        trial = by_id[response.trial_id]
        if trial.phase != "practice" and response.round != 1:
            raise AnswerProblem(ProblemKind.ABSURD_VALUE,
                                f"test trial {trial.trial_id} has round "
                                f"{response.round}; only practice trials repeat")
        ident = (response.trial_id, response.round)
        if ident in seen:
            raise AnswerProblem(ProblemKind.DUPLICATED_TRIALS,
                                f"trial {response.trial_id} round "
                                f"{response.round} is answered twice")
        seen.add(ident)
        problem = registry.get(trial.type).answer_problem(trial, response)
        if problem:
            raise AnswerProblem(ProblemKind.ABSURD_VALUE, f"trial {trial.trial_id}: {problem}")
    if math.isnan(payload.timing.total_ms) or math.isnan(payload.timing.instructions_ms):
        raise AnswerProblem(ProblemKind.ABSURD_VALUE, "timing is not a number")
    if payload.timing.instructions_ms > payload.timing.total_ms:
        raise AnswerProblem(ProblemKind.ABSURD_VALUE,
                            "the instructions took longer than the whole task")
