"""study.toml: validation with one clear line per problem, durations, money, init."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.examples import EXAMPLES, example_toml, init_study
from crowdkit.study import load_study, parse_study_toml
from crowdkit.units import format_duration, money_str, parse_duration, parse_money

MINIMAL = """
[study]
name = "s1"
[hit]
title = "t"
description = "d"
reward = "1.25"
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_study_toml(text, "study.toml")
    return info.value.lines


def test_minimal_study_gets_safe_defaults():
    cfg = parse_study_toml(MINIMAL)
    assert cfg.mturk.target == "local"
    assert cfg.hit.reward == Decimal("1.25") and isinstance(cfg.hit.reward, Decimal)
    assert cfg.hit.assignment_duration == 45 * 60
    assert cfg.quality.min_catch_accuracy == pytest.approx(2 / 3)


@pytest.mark.parametrize("text,seconds", [
    ("45m", 2700), ("3d", 259200), ("1h30m", 5400), ("90s", 90), ("2w", 1209600),
    ("1d 2h", 93600),
])
def test_durations(text: str, seconds: int):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["45", 45, "m", "3 days", "1.5h", "", True, "45mm"])
def test_bad_durations_are_refused(bad: object):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)


@given(st.integers(0, 10**8))
def test_duration_round_trips(seconds: int):
    assert parse_duration(format_duration(seconds)) == seconds


def test_money_is_a_decimal_string_never_a_float():
    assert parse_money("1.25") == Decimal("1.25")
    assert money_str(parse_money("2")) == "2.00"
    for bad in (1.25, 1, "1.255", "-1.00", "abc"):
        with pytest.raises(ValueError, match="expected money"):
            parse_money(bad)


def test_float_reward_gets_a_line_naming_the_key():
    (line,) = errors_of(MINIMAL.replace('"1.25"', "1.25"))
    assert line == ('study.toml: [hit] reward: expected money as a decimal string such as '
                    '"1.25" (quoted), got 1.25')


def test_unknown_key_suggests_the_closest_known_key():
    (line,) = errors_of(MINIMAL + 'asignment_duration = "45m"\n')
    assert line == "study.toml: [hit] asignment_duration: unknown key; did you mean " \
                   "'assignment_duration'?"
    (line,) = errors_of(MINIMAL + "[qualification]\nmasters = true\n")
    assert line == "study.toml: qualification: unknown key; did you mean 'qualifications'?"


def test_every_problem_gets_its_own_line():
    text = MINIMAL.replace('"1.25"', '"lots"') + '[design]\nn_references = 12\ntask = 3\n'
    lines = errors_of(text)
    assert len(lines) == 3
    assert any("[hit] reward" in line for line in lines)
    assert any("[design] n_references: Input should be less than or equal to 9" in line
               for line in lines)
    assert any("[design] task: unknown key; did you mean 'tasks'?" in line for line in lines)


def test_missing_required_section_and_key():
    lines = errors_of('[study]\nname = "x"\n')
    assert lines == ["study.toml: [hit]: required key is missing"]
    lines = errors_of('[study]\n[hit]\ntitle="t"\ndescription="d"\nreward="1.00"\n')
    assert lines == ["study.toml: [study] name: required key is missing"]


def test_invalid_toml_is_one_line():
    (line,) = errors_of('[study\nname = "x"')
    assert line.startswith("study.toml: not valid TOML:") and "\n" not in line


def test_nested_stimuli_section_is_checked_too():
    (line,) = errors_of(MINIMAL + "[stimuli.synthetic]\nstep = 10\n")
    assert line == "study.toml: [stimuli] synthetic.step: unknown key; did you mean 'steps'?"


def test_missing_study_directory_says_how_to_start(tmp_path: Path):
    with pytest.raises(ConfigError, match="create one with `crowdkit init"):
        load_study(tmp_path / "nope")


@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_are_valid_and_commented(example: str):
    text = example_toml(example)
    parse_study_toml(text)
    assert text.count("#") >= 10


def test_init_writes_study_toml_and_refuses_to_overwrite(tmp_path: Path):
    path = init_study(tmp_path / "s", "quickstart")
    assert load_study(tmp_path / "s").name == "quickstart"
    path.write_text(path.read_text() + "# my edits\n")
    with pytest.raises(CrowdkitError, match="already exists; not overwriting it"):
        init_study(tmp_path / "s", "iclr2021-exp1")
    assert path.read_text().endswith("# my edits\n")


def test_init_unknown_example(tmp_path: Path):
    with pytest.raises(CrowdkitError, match="unknown example 'paper'; choose one of"):
        init_study(tmp_path / "s", "paper")
