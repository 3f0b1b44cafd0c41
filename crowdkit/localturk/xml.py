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


class QuestionHTMLError(QuestionXMLError):
    """An HTMLQuestion whose HTMLContent MTurk's HTML5 validation would refuse."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("Errors: " + " ".join(f"<! {e} !>" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Question:
    """What the worker's frame shows: inline HTML or an external URL, and the frame height."""

    kind: str  # "HTMLQuestion" or "ExternalQuestion"
    frame_height: int
    html: str | None = None
    external_url: str | None = None


def parse_question(text: str, *, strict: bool = True) -> Question:
    """Parse and check a Question document the way MTurk's schema validation would.

    `strict=False` skips the checks CreateHIT makes of the content (HTML5, a form, an
    HTTPS ExternalURL): the worker site reads questions already stored, some of them by
    an earlier localturk that did not check."""
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
        frame_height = _frame_height(root, namespace)
        if strict:
            check_html5(html)
        return Question("HTMLQuestion", frame_height, html=html)
    if local == "ExternalQuestion":
        _expect_namespace(local, namespace, EXTERNAL_QUESTION_NS)
        url = _child_text(root, namespace, "ExternalURL").strip()
        if not re.match(r"^https://\S+$" if strict else r"^https?://\S+$", url):
            # MTurk API reference, ExternalQuestion: the ExternalURL must use HTTPS
            raise QuestionXMLError(f"ExternalURL {url!r} is not an https:// URL; MTurk "
                                   "frames only pages served over HTTPS")
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


# What the HTML5 check looks at. Comments and the raw text of script, style, textarea and
# title elements are blanked first (keeping every offset), so markup quoted there is not
# taken for tags. Regular expressions, not html.parser: a 64 KB page is checked in about a
# millisecond, which matters when a study publishes a thousand HITs.
_OPAQUE = re.compile(r"<!--.*?-->|<(script|style|textarea|title)\b[^>]*>.*?</\1\s*>",
                     re.S | re.I)
_DOCTYPE = re.compile(r"\s*<!doctype\s+([^\s>]*)", re.I)
_TAGS = re.compile(r"<(html|head|body|form|crowd-form)(?=[\s/>])", re.I)


def _blank(match: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", match.group())


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"[{line},{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}]"


def check_html5(html: str) -> None:
    """Refuse HTMLContent as MTurk's HTML5 validation would, in the parts pages most often
    fail: a document that does not start with the HTML5 doctype, a second <html>, <head> or
    <body> start tag (the validator's "An 'body' start tag seen but an element of the same
    type was already open"), and no form for the worker's answers (a <form>, or
    crowd-html-elements' <crowd-form>)."""
    text = _OPAQUE.sub(_blank, html)
    errors = []
    doctype = _DOCTYPE.match(text)
    if doctype is None:
        start = len(text) - len(text.lstrip())
        errors.append(f"{_position(text, start)} Start tag seen without seeing a doctype "
                      "first. Expected \u201c<!DOCTYPE html>\u201d.")
    elif doctype.group(1).lower() != "html":
        errors.append(f"{_position(text, doctype.start(1))} Bad doctype: expected "
                      "\u201c<!DOCTYPE html>\u201d.")
    seen: set[str] = set()
    has_form = False
    for tag in _TAGS.finditer(text):
        name = tag.group(1).lower()
        if name in ("form", "crowd-form"):
            has_form = True
        elif name in seen:
            errors.append(f"{_position(text, tag.start())} An \u201c{name}\u201d start tag "
                          "seen but an element of the same type was already open.")
        seen.add(name)
    if not has_form:
        errors.append("[1,1] No \u201cform\u201d element: the HTMLContent needs a form "
                      "(or crowd-form) that submits the worker's answers.")
    if errors:
        raise QuestionHTMLError(errors)


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
