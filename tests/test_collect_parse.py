"""Parsing answers defensively: a corpus of malformed and hostile answers, and odd but valid ones.

Every hostile answer must come back invalid with the right kind of reason; none may raise.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import pytest

from crowdkit.collect import answer_fields, parse_answer
from crowdkit.localturk import question_form_answers
from tests.collect_helpers import answer_key, answer_xml, payload

NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/" \
     "QuestionFormAnswers.xsd"


KEY = answer_key(["practice", "practice", "main", "catch", "main", "main"], task_id="t0001")


def edit(change: Callable[[dict[str, Any]], None]) -> str:
    data = payload(KEY)
    change(data)
    return answer_xml(data)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return change


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]
    return change


def _append_copy(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["trials"].append({**data["trials"][index], **changes})
    return change


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    f'<QuestionFormAnswers xmlns="{NS}"><Answer><QuestionIdentifier>data'
    "</QuestionIdentifier><FreeText>&lol2;</FreeText></Answer></QuestionFormAnswers>"
)

# (name, answer XML, expected kind of problem)
HOSTILE: list[tuple[str, str | None, str]] = [
    ("no answer at all", None, "missing field"),
    ("empty answer", "", "missing field"),
    ("not XML", "hello, requester", "invalid XML"),
    ("truncated XML", answer_xml(payload(KEY))[:-40], "invalid XML"),
    ("entity expansion", BILLION_LAUGHS, "invalid XML"),
    ("no data field", question_form_answers([("comment", "hi")]), "missing field"),
    ("data is not JSON", answer_xml("{trials: oops"), "invalid JSON"),
    ("NaN literal", answer_xml("NaN"), "invalid JSON"),
    ("Infinity rt", answer_xml(json.dumps(payload(KEY)).replace("2500.0", "Infinity", 1)),
     "invalid JSON"),
    ("deeply nested", answer_xml("[" * 100_000 + "]" * 100_000), "invalid JSON"),
    ("data is a list", answer_xml([1, 2, 3]), "wrong types"),
    ("data is a string", answer_xml(json.dumps("done")), "wrong types"),
    ("trials missing", edit(_del("trials")), "missing field"),
    ("timing missing", edit(_del("timing")), "missing field"),
    ("confidence as text", edit(_set("trials.2.confidence", "3")), "wrong types"),
    ("confidence as bool", edit(_set("trials.2.confidence", True)), "wrong types"),
    ("rt as text", edit(_set("trials.2.rt_ms", "fast")), "wrong types"),
    ("trials is an object", edit(_set("trials", {"a": 1})), "wrong types"),
    ("trial id as number", edit(_set("trials.2.trial_id", 7)), "wrong types"),
    ("negative rt", edit(_set("trials.3.rt_ms", -5)), "absurd value"),
    ("confidence of 7", edit(_set("trials.3.confidence", 7)), "absurd value"),
    ("response left", edit(_set("trials.3.response", "left")), "absurd value"),
    ("rt of 30 years", edit(_set("trials.3.rt_ms", 1e12)), "absurd value"),
    ("schema version 2", edit(_set("schema_version", 2)), "absurd value"),
    ("instructions longer than total", edit(_set("timing.instructions_ms", 9e6)),
     "absurd value"),
    ("test trial with round 2", edit(_set("trials.4.round", 2)), "absurd value"),
    ("feedback of 10000 chars", edit(_set("questionnaire.feedback", "x" * 10_000)),
     "absurd value"),
    ("unknown trial id", edit(_set("trials.4.trial_id", "ffffffffffff")), "unknown trial ids"),
    ("main trial twice", edit(_append_copy(4)), "duplicated trials"),
    ("practice round twice", edit(_append_copy(0)), "duplicated trials"),
    ("correct injected", edit(_set("trials.2.correct", True)), "unexpected field"),
    ("worker id injected", edit(_set("worker_id", "A1SNEAKY")), "unexpected field"),
    ("script in the task id", edit(_set("task_id", "<script>alert(1)</script>")),
     "markup in text"),
    ("img in a trial id", edit(_set("trials.2.trial_id", "<img src=x onerror=alert(1)>")),
     "markup in text"),
    ("javascript url as task id", edit(_set("task_id", "javascript:alert(1)")),
     "markup in text"),
    ("another task's answer", edit(_set("task_id", "t0002")), "wrong task"),
]


def test_the_corpus_is_big_enough() -> None:
    assert len(HOSTILE) >= 20
    assert len({name for name, _, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("name", "xml", "kind"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_answers_are_invalid_with_a_reason(name: str, xml: str | None,
                                                   kind: str) -> None:
    parsed = parse_answer(xml, KEY)
    assert not parsed.valid
    assert parsed.payload is None
    assert parsed.problem.kind == kind, parsed.reason
    assert parsed.reason.startswith(kind)


def test_a_well_formed_answer_parses() -> None:
    parsed = parse_answer(answer_xml(payload(KEY)), KEY)
    assert parsed.valid, parsed.reason
    assert len(parsed.payload.trials) == len(KEY.trials)


def test_practice_trials_may_repeat_in_later_rounds() -> None:
    parsed = parse_answer(edit(_append_copy(0, round=2)), KEY)
    assert parsed.valid, parsed.reason


@pytest.mark.parametrize("wrap", ["utf8-declaration", "no-declaration", "no-namespace",
                                  "html-escaped"])
def test_odd_but_valid_documents_parse(wrap: str) -> None:
    data = payload(KEY)
    data["questionnaire"]["feedback"] = "Schön, 5 < 7 & a \"quote\""
    text = json.dumps(data, ensure_ascii=False)
    body = text.replace("&", "&amp;").replace("<", "&lt;")
    if wrap == "utf8-declaration":
        xml = ('<?xml version="1.0" encoding="UTF-8"?>'
               f'<QuestionFormAnswers xmlns="{NS}"><Answer><QuestionIdentifier>data'
               f"</QuestionIdentifier><FreeText>{body}</FreeText></Answer>"
               "</QuestionFormAnswers>")
    elif wrap == "no-declaration":
        xml = answer_xml(text).split("?>", 1)[1]
    elif wrap == "no-namespace":
        xml = ("<QuestionFormAnswers><Answer><QuestionIdentifier>data</QuestionIdentifier>"
               f"<FreeText>{body}</FreeText></Answer></QuestionFormAnswers>")
    else:
        xml = answer_xml(html.escape(text))
    parsed = parse_answer(xml, KEY)
    assert parsed.valid, parsed.reason
    assert parsed.payload.questionnaire.feedback == "Schön, 5 < 7 & a \"quote\""


def test_fields_are_read_in_order_and_first_value_wins() -> None:
    xml = question_form_answers([("assignmentId", "X"), ("data", "1"), ("data", "2")])
    assert answer_fields(xml) == {"assignmentId": "X", "data": "1"}


# Free text an honest worker may type (or a browser may send): none of it is tampering.
FREE_TEXT = [
    ("emoji", "Great study \U0001F600\U0001F44D" * 100),
    ("right-to-left", "\u202eتجربة جيدة \u05e2\u05d1\u05e8\u05d9\u05ea"),
    ("NUL and control characters", "a\x00b\x07c\td\re"),
    ("5000 emoji (10000 UTF-16 units)", "\U0001F600" * 5000),
    ("markup", "<img src=x onerror=alert(1)> <script>alert(1)</script> javascript:x"),
    ("a formula", "=HYPERLINK(\"http://example.com\",\"click\")"),
]


@pytest.mark.parametrize(("name", "text"), FREE_TEXT, ids=[f[0] for f in FREE_TEXT])
def test_free_text_never_makes_an_answer_invalid(name: str, text: str) -> None:
    data = payload(KEY)
    data["questionnaire"]["feedback"] = text
    data["client"]["user_agent"] = text[:1000]
    parsed = parse_answer(answer_xml(data), KEY)
    assert parsed.valid, parsed.reason
    assert parsed.payload.questionnaire.feedback == text


def test_a_comment_cut_inside_an_emoji_is_repaired_not_refused() -> None:
    """What `slice(0, 5000)` on UTF-16 units and JSON.stringify make of a cut emoji: a lone
    surrogate as a \\ud83d escape. It is an honest page's slip: repaired, not tampering."""
    data = payload(KEY)
    data["questionnaire"]["feedback"] = "x" * 4999 + "\ud83d"
    text = json.dumps(data)
    assert "\\ud83d" in text
    parsed = parse_answer(answer_xml(text), KEY)
    assert parsed.valid, parsed.reason
    assert parsed.payload.questionnaire.feedback == "x" * 4999 + "\ufffd"
