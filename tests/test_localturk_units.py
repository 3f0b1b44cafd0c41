"""The pure parts of localturk: fees, Question/answer XML, qualification comparisons."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdkit.localturk import (
    assignment_fee,
    bonus_fee,
    html_question,
    parse_question,
    parse_question_form_answers,
    question_form_answers,
)
from crowdkit.localturk.quals import Locale, meets
from crowdkit.localturk.xml import QuestionXMLError


@pytest.mark.parametrize("reward, assignments, masters, fee", [
    ("1.00", 1, False, "0.20"),
    ("1.00", 9, False, "0.20"),
    ("1.00", 10, False, "0.40"),
    ("1.00", 10, True, "0.45"),
    ("0.01", 1, False, "0.01"),  # the minimum
    ("0.03", 1, False, "0.01"),  # 0.006 rounds to 0.01
    ("0.13", 1, False, "0.03"),  # 0.026 rounds half up to 0.03
    ("2.50", 20, False, "1.00"),
])
def test_assignment_fee(reward, assignments, masters, fee):
    assert assignment_fee(Decimal(reward), assignments, masters) == Decimal(fee)


def test_bonus_fee_is_twenty_percent_with_a_one_cent_minimum():
    assert bonus_fee(Decimal("1.00")) == Decimal("0.20")
    assert bonus_fee(Decimal("0.02")) == Decimal("0.01")


def test_html_question_round_trips():
    page = "<!DOCTYPE html><html><body><form><p>Hi & bye</p></form></body></html>"
    question = parse_question(html_question(page, 450))
    assert (question.kind, question.html, question.frame_height) == ("HTMLQuestion", page, 450)
    with pytest.raises(ValueError):
        html_question("<p>]]></p>")


@pytest.mark.parametrize("text", [
    "",
    "<QuestionForm xmlns='x'/>",
    '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas'
    '/2006-07-14/ExternalQuestion.xsd"><ExternalURL>javascript:alert(1)</ExternalURL>'
    "<FrameHeight>0</FrameHeight></ExternalQuestion>",
    html_question("<p>x</p>").replace("<FrameHeight>0", "<FrameHeight>tall"),
])
def test_bad_questions_raise(text):
    with pytest.raises(QuestionXMLError):
        parse_question(text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=200)),
                max_size=4, unique_by=lambda f: f[0]))
def test_answers_survive_the_xml_exactly(fields):
    bad = {chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF)}
    fields = [(k, v) for k, v in fields
              if not (set(k + v) & bad or any(0xD800 <= ord(c) <= 0xDFFF for c in k + v))]
    document = question_form_answers(fields)
    assert document.isascii()
    assert parse_question_form_answers(document) == dict(fields)


def test_control_characters_become_replacement_characters():
    document = question_form_answers([("a", "x\x00y")])
    assert parse_question_form_answers(document) == {"a": "x\ufffdy"}


@pytest.mark.parametrize("requirement, value, expected", [
    ({"Comparator": "GreaterThan", "IntegerValues": [5]}, 6, True),
    ({"Comparator": "GreaterThan", "IntegerValues": [5]}, 5, False),
    ({"Comparator": "LessThanOrEqualTo", "IntegerValues": [5]}, 5, True),
    ({"Comparator": "NotEqualTo", "IntegerValues": [5]}, None, False),  # lacking fails
    ({"Comparator": "In", "IntegerValues": [1, 3]}, 3, True),
    ({"Comparator": "NotIn", "IntegerValues": [1, 3]}, 2, True),
    ({"Comparator": "Exists"}, 0, True),
    ({"Comparator": "DoesNotExist"}, None, True),
    ({"Comparator": "DoesNotExist"}, 0, False),
    ({"Comparator": "EqualTo", "LocaleValues": [{"Country": "US"}]}, Locale("US", "CA"), True),
    ({"Comparator": "NotEqualTo", "LocaleValues": [{"Country": "US"}]}, Locale("US"), False),
    ({"Comparator": "In", "LocaleValues": [{"Country": "US", "Subdivision": "NY"}]},
     Locale("US", "CA"), False),
])
def test_meets(requirement, value, expected):
    assert meets(requirement, value) is expected
