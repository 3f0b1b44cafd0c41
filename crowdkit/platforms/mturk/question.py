"""The worker's page as MTurk takes it: an HTMLQuestion, within MTurk's 64 KB limit."""

from __future__ import annotations

from crowdkit.errors import CrowdkitError

QUESTION_LIMIT_BYTES = 65535
HTML_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"
)


def html_question_xml(html: str) -> str:
    """Wrap a page as an HTMLQuestion with FrameHeight 0 (MTurk sizes the frame to fit).

    The page goes in a CDATA section; any "]]>" inside it is split across two sections so
    the XML stays well formed and the page arrives byte for byte.
    """
    cdata = html.replace("]]>", "]]]]><![CDATA[>")
    return (
        f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}">'
        f"<HTMLContent><![CDATA[{cdata}]]></HTMLContent>"
        "<FrameHeight>0</FrameHeight>"
        "</HTMLQuestion>"
    )


def question_size(xml: str) -> int:
    """The size MTurk counts: bytes of the question in UTF-8."""
    return len(xml.encode("utf-8"))


def check_question_size(xml: str, task_id: str) -> int:
    """Raise CrowdkitError if the question is over MTurk's 64 KB; return its size in bytes."""
    size = question_size(xml)
    if size > QUESTION_LIMIT_BYTES:
        raise CrowdkitError(
            f"task {task_id}: the HIT question is {size:,} bytes, over MTurk's limit of "
            f"{QUESTION_LIMIT_BYTES:,} by {size - QUESTION_LIMIT_BYTES:,}; reduce "
            "[design] trials_per_task or n_references (every image shown adds to it), "
            "or shorten the [page] texts or the study's own templates"
        )
    return size
