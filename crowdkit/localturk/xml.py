"""The two XML documents MTurk speaks: the HIT's Question and the worker's answers.

A Question is an HTMLQuestion (the HTML page itself, in HTMLContent) or an ExternalQuestion
(a URL MTurk frames). Answers come back as a QuestionFormAnswers document with one Answer
per submitted form field, written the way MTurk writes it: an ASCII XML declaration and
every other character as a character reference, so the text survives byte for byte.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

HTML_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"
)
EXTERNAL_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/"
    "ExternalQuestion.xsd"
)
ANSWERS_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/"
    "QuestionFormAnswers.xsd"
)
MAX_QUESTION_BYTES = 65535
# Characters XML 1.0 cannot carry even as references; MTurk-bound text should not hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class QuestionXMLError(ValueError):
    """The Question parameter is not a well-formed, supported question document."""


@dataclass(frozen=True)
class Question:
    """What the worker's frame shows: inline HTML or an external URL, and the frame height."""

    kind: str  # "HTMLQuestion" or "ExternalQuestion"
    frame_height: int
    html: str | None = None
    external_url: str | None = None


def parse_question(text: str) -> Question:
    """Parse and check a Question document the way MTurk's schema validation would."""
    size = len(text.encode("utf-8"))
    if size > MAX_QUESTION_BYTES:
        raise QuestionXMLError(
            f"the question is {size} bytes; MTurk allows at most {MAX_QUESTION_BYTES}"
        )
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise QuestionXMLError(f"the question is not well-formed XML: {exc}") from exc
    if root.tag.startswith("{"):
        namespace, _, local = root.tag[1:].partition("}")
    else:
        namespace, local = "", root.tag
    if local == "HTMLQuestion":
        _expect_namespace(local, namespace, HTML_QUESTION_NS)
        html = _child_text(root, namespace, "HTMLContent")
        if not html.strip():
            raise QuestionXMLError("HTMLQuestion's HTMLContent is empty")
        return Question("HTMLQuestion", _frame_height(root, namespace), html=html)
    if local == "ExternalQuestion":
        _expect_namespace(local, namespace, EXTERNAL_QUESTION_NS)
        url = _child_text(root, namespace, "ExternalURL").strip()
        if not re.match(r"^https?://\S+$", url):
            raise QuestionXMLError(f"ExternalURL {url!r} is not an http(s) URL")
        return Question("ExternalQuestion", _frame_height(root, namespace), external_url=url)
    if local == "QuestionForm":
        raise QuestionXMLError("QuestionForm questions are not supported by localturk; "
                               "use HTMLQuestion or ExternalQuestion")
    raise QuestionXMLError(
        f"the root element is <{local}>; expected HTMLQuestion or ExternalQuestion"
    )


def _expect_namespace(local: str, namespace: str, expected: str) -> None:
    if namespace != expected:
        raise QuestionXMLError(
            f"<{local}> must be in the namespace {expected}, not {namespace or 'none'!r}"
        )


def _child_text(root: ET.Element, namespace: str, name: str) -> str:
    child = root.find(f"{{{namespace}}}{name}")
    if child is None:
        raise QuestionXMLError(f"<{root.tag.split('}')[-1]}> lacks the element <{name}>")
    return child.text or ""


def _frame_height(root: ET.Element, namespace: str) -> int:
    text = _child_text(root, namespace, "FrameHeight").strip()
    if not text.isdigit():
        raise QuestionXMLError(f"FrameHeight must be a whole number of pixels, not {text!r}")
    return int(text)


def html_question(html: str, frame_height: int = 0) -> str:
    """Wrap an HTML page as an HTMLQuestion document (for tests and simple callers)."""
    if "]]>" in html:
        raise ValueError("HTML for an HTMLQuestion must not contain ']]>' (it ends the CDATA)")
    return (
        f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}">'
        f"<HTMLContent><![CDATA[{html}]]></HTMLContent>"
        f"<FrameHeight>{int(frame_height)}</FrameHeight></HTMLQuestion>"
    )


def _xml_text(value: str) -> str:
    """Escape text for the answer document: markup, carriage returns and non-ASCII as refs."""
    value = _NOT_XML.sub("\ufffd", value)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace("\r", "&#13;")
    return value.encode("ascii", "xmlcharrefreplace").decode("ascii")


def question_form_answers(fields: list[tuple[str, str]]) -> str:
    """The QuestionFormAnswers document for submitted form fields, in submission order."""
    answers = "".join(
        f"<Answer><QuestionIdentifier>{_xml_text(name)}</QuestionIdentifier>"
        f"<FreeText>{_xml_text(value)}</FreeText></Answer>"
        for name, value in fields
    )
    return (
        '<?xml version="1.0" encoding="ASCII"?>'
        f'<QuestionFormAnswers xmlns="{ANSWERS_NS}">{answers}</QuestionFormAnswers>'
    )


def parse_question_form_answers(document: str) -> dict[str, str]:
    """Field name -> FreeText value from a QuestionFormAnswers document."""
    root = ET.fromstring(document.encode("ascii", "xmlcharrefreplace"))
    out: dict[str, str] = {}
    for answer in root.findall(f"{{{ANSWERS_NS}}}Answer"):
        name = answer.findtext(f"{{{ANSWERS_NS}}}QuestionIdentifier") or ""
        out[name] = answer.findtext(f"{{{ANSWERS_NS}}}FreeText") or ""
    return out
