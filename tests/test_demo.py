"""`crowdkit demo`: the whole loop offline, end to end, at --small size."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from crowdkit.demo import run_demo, shrink
from crowdkit.examples import example_toml
from crowdkit.ledger import Ledger
from crowdkit.study import load_study, parse_study_toml

pytestmark = pytest.mark.slow


def test_small_overrides_still_match_the_quickstart_example():
    parse_study_toml(shrink(example_toml("quickstart")))


def test_demo_runs_the_whole_loop_and_a_rerun_duplicates_nothing(tmp_path: Path):
    out: list[str] = []
    seen_while_serving: list[int] = []

    def visit_worker_site() -> None:  # stands in for "Ctrl-C later" with --serve
        with urllib.request.urlopen(result_url[0], timeout=10) as response:
            seen_while_serving.append(response.status)

    result_url: list[str] = []
    original_echo = out.append

    def echo(line: str) -> None:
        original_echo(line)
        if line.startswith("take a HIT yourself: http"):
            result_url.append(line.split()[4])

    directory = tmp_path / "demo"
    # 8 participants fill all 4 HITs x 2 assignments, so both conditions have answers
    result = run_demo(directory, small=True, participants=8, port=0, progress=False,
                      serve=True, echo=echo, wait_forever=visit_worker_site)
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
    trials = pd.read_parquet(directory / "data/trials.parquet")
    participants = pd.read_csv(directory / "data/participants.csv")
    assert len(participants) == 8 and trials["participant_id"].nunique() == 8
    assert set(trials["phase"]) == {"practice", "main", "catch"}
    assert participants["excluded"].sum() >= 1  # the careless participant
    assert result.report_html is not None and result.report_html.is_file()
    assert "<img" in result.report_html.read_text()
    assert {row["condition"] for row in result.summary} == {"natural", "synthetic"}

    # a re-run continues: no new HIT, no answer lost or doubled
    again = run_demo(directory, small=True, participants=8, port=0, progress=False,
                     echo=lambda line: None)
    assert again.hits == result.hits
    with Ledger.open(study.db_path) as ledger:
        assert len(ledger.hits("local")) == len(hits)
        assert len(ledger.assignments()) == 8
