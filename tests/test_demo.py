"""`crowdkit demo`: the whole loop offline, end to end, at --small size."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from crowdkit.collect import pseudonym
from crowdkit.demo import run_demo, shrink
from crowdkit.examples import example_toml
from crowdkit.ledger import Ledger
from crowdkit.simulate import SimulationSettings, worker_id
from crowdkit.study import load_study, parse_study_toml

pytestmark = pytest.mark.slow


def test_small_overrides_still_match_the_quickstart_example():
    parse_study_toml(shrink(example_toml("quickstart")))


def check_exclusions(study, participants: pd.DataFrame, trials: pd.DataFrame) -> None:
    """The one careless participant is excluded for what it did; careful ones pass.

    The demo's careless participant is `same-side` (crowdkit.simulate): it answers "top" on
    every trial, so it always fails response_variety, and fails catch_accuracy too unless
    every catch trial of its task happens to have the max query on top. A careful
    participant gets each catch trial right with probability 0.97 (SimulationSettings), so
    it may slip on one, and with two catch trials per task one slip fails catch_accuracy;
    which careful participant meets which task varies between runs. So a careful
    participant may fail catch_accuracy, and only after a wrong catch answer, never any other
    rule.
    """
    settings = SimulationSettings(participants=8, careless=1, fraudulent=0,
                                  seed=study.config.study.seed)  # as crowdkit.demo sets it
    kinds = settings.kinds()
    assert sorted(kinds) == ["careful"] * 7 + ["same-side"]
    with Ledger.open(study.db_path) as ledger:
        key = ledger.pseudonym_key()
    kind_of = {pseudonym(key, worker_id(settings.seed, i)): kind for i, kind in enumerate(kinds)}
    assert set(participants["participant_id"]) == set(kind_of)
    rules = [c for c in participants.columns if c.startswith("rule_")]
    threshold = study.config.quality.min_catch_accuracy

    for row in participants.to_dict("records"):
        pid = row["participant_id"]
        mine = trials[trials["participant_id"] == pid]
        catch = mine[mine["phase"] == "catch"]
        assert len(catch) == study.config.design.catch_trials_per_task, pid
        text = row["exclusion_reasons"]  # empty: NaN, as read_csv reads it
        reasons = set(text.split(";")) if isinstance(text, str) and text else set()
        if kind_of[pid] == "same-side":
            assert set(mine["response"]) == {"top"}
            expected = {"response_variety"}
            if (catch["max_position"] == "top").mean() < threshold:
                expected.add("catch_accuracy")
            assert row["excluded"] and reasons == expected, row
            assert mine["excluded"].all()
            assert {frozenset(r.split(";")) for r in mine["exclusion_reasons"]} == {
                frozenset(expected)}
        else:
            failed = {r.removeprefix("rule_") for r in rules if row[r] == "fail"}
            assert failed <= {"catch_accuracy"}, (pid, failed)
            assert reasons == failed and bool(row["excluded"]) == bool(failed), row
            assert bool(failed) == (catch["correct"].mean() < threshold), row
            assert (mine["excluded"] == bool(failed)).all(), pid


class DemoLines(logging.Handler):
    """What the demo says as it goes (the `crowdkit.demo` logger), line by line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.extend(record.getMessage().splitlines())


@pytest.fixture
def demo_lines():
    handler = DemoLines()
    logger = logging.getLogger("crowdkit.demo")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_demo_runs_the_whole_loop_and_a_rerun_duplicates_nothing(tmp_path: Path, demo_lines):
    out = demo_lines
    seen_while_serving: list[int] = []

    def visit_worker_site() -> None:  # stands in for "Ctrl-C later" with --serve
        url = next(line.split()[4] for line in out
                   if line.startswith("take a HIT yourself: http"))
        with urllib.request.urlopen(url, timeout=10) as response:
            seen_while_serving.append(response.status)

    directory = tmp_path / "demo"
    # 8 participants fill all 4 HITs x 2 assignments, so both conditions have answers
    result = run_demo(directory, small=True, participants=8, port=0, serve=True,
                      wait_forever=visit_worker_site)
    text = "\n".join(out)

    # every step ran, and the output says the weights are random
    for step in range(1, 9):
        assert f"[{step}/8]" in text
    assert "RANDOM weights" in text and result.random_weights
    assert seen_while_serving == [200]

    # the study, the HITs, the answers and the report all exist
    study = load_study(directory)
    assert study.manifest_path.is_file()
    with Ledger.open(study.db_path) as ledger:
        assert ledger.integrity_problems() == []
        hits = ledger.hits("local")
        assert len(hits) == result.hits == study.config.design.tasks
        assert all(h["status"] == "created" for h in hits)
        assert len(ledger.assignments()) == 8
    trials = pd.read_parquet(directory / "data/local/trials.parquet")
    participants = pd.read_csv(directory / "data/local/participants.csv")
    assert len(participants) == 8 and trials["participant_id"].nunique() == 8
    assert set(trials["phase"]) == {"practice", "main", "catch"}
    assert "8 simulated participants submitted (7 careful, 1 same-side)" in text
    check_exclusions(study, participants, trials)
    assert result.report_html is not None and result.report_html.is_file()
    assert "<img" in result.report_html.read_text()
    assert {row["condition"] for row in result.summary} == {"natural", "synthetic"}

    # the machine observer answered the same trials, and the report sets it beside people
    machine = pd.read_parquet(directory / "data/machine_trials.parquet")
    assert set(machine["participant_id"]) == {"machine:features:resnet18"}
    assert set(machine["task_id"]) == set(trials["task_id"])
    assert (directory / "data/mis.csv").is_file()
    # catch trials (an exact copy of a reference) are right far more often than main ones
    by_phase = machine.groupby("phase")[["correct", "p_correct"]].mean()
    assert by_phase.loc["catch", "correct"] == 1.0, by_phase
    assert by_phase.loc["catch", "p_correct"] > by_phase.loc["main", "p_correct"] + 0.1
    assert by_phase.loc["main", "correct"] < 0.9, by_phase
    assert "the machine observer's similarity is a network with RANDOM weights" in text
    assert 'id="figure-human_vs_machine"' in result.report_html.read_text()

    # a re-run continues: no new HIT, no answer lost or doubled
    again = run_demo(directory, small=True, participants=8, port=0)
    assert again.hits == result.hits
    with Ledger.open(study.db_path) as ledger:
        assert len(ledger.hits("local")) == len(hits)
        assert len(ledger.assignments()) == 8
