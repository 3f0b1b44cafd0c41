"""crowdkit analyze on the lab design's data: intuitiveness ratings, reaction time and
confidence compared like accuracy, and repeated trials' agreement, checked against the
paper's published Experiment I data (tests/data)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdkit import analysis
from crowdkit.cli import app
from crowdkit.errors import ConfigError
from tests.test_analysis import tidy_experiment_i

DATA_DIR = Path(__file__).resolve().parent / "data"
EXPERIMENT_I = DATA_DIR / "experiment_I_main_practice_catch_repeated_trials_preprocessed.csv"
RATINGS = DATA_DIR / "experiment_I_intuitiveness_beginning_preprocessed.csv"
RATED_UNITS = {"a": "3a:43", "b": "4b:504", "c": "5b:17"}  # tests/data/README.md


def tidy_ratings() -> pd.DataFrame:
    """The published intuitiveness ratings as tidy rating rows: `correct` empty."""
    raw = pd.read_csv(RATINGS)
    return pd.DataFrame({
        "participant_id": "s" + raw["subject_id"].astype(str),
        "condition": "synthetic",  # the rated explanation: the feature visualizations
        "phase": "rating",
        "correct": "",
        "unit": raw["trial_name"].map(RATED_UNITS),
        "rating": raw["rating"],
        "rating_time": "start",
        "rt_ms": raw["rt"] * 1000,
    })


def row(table: pd.DataFrame, **match: object) -> pd.Series:
    selected = table
    for column, value in match.items():
        selected = selected[selected[column] == value]
    assert len(selected) == 1, f"expected one row for {match}, got {len(selected)}"
    return selected.iloc[0]


def test_the_papers_intuitiveness_summary(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    tidy_ratings().to_csv(path, index=False)
    result = analysis.analyze_file(path)  # rating rows alone
    pooled = row(result.ratings, unit="all", expert_level="all", rating_time="start")
    assert pooled["n_participants"] == 10
    assert round(pooled["mean"], 1) == -1.6
    assert round(pooled["ci95_high"] - pooled["mean"], 1) == 21.1
    assert round(pooled["mean"] - pooled["ci95_low"], 1) == 21.1
    assert sorted(result.ratings["unit"]) == ["3a:43", "4b:504", "5b:17", "all"]
    per_unit = row(result.ratings, unit="4b:504")
    raw = pd.read_csv(RATINGS)
    assert per_unit["mean"] == pytest.approx(raw[raw["trial_name"] == "b"]["rating"].mean())
    assert result.summary.empty and result.comparisons.empty  # no 2-AFC rows: no accuracy
    payload = result.to_json()
    assert set(payload["ratings"][0]) >= {"rating_time", "unit", "expert_level",
                                         "n_participants", "mean", "ci95_low", "ci95_high"}
    json.dumps(payload, allow_nan=False)


def test_ratings_beside_two_afc_rows_and_by_expert_level() -> None:
    ratings = tidy_ratings()
    ratings["expert_level"] = ratings["participant_id"].map(
        lambda p: "expert" if p in ("s1", "s2", "s3") else "lay")
    trials = tidy_experiment_i()
    trials["expert_level"] = trials["participant_id"].map(
        lambda p: "expert" if p in ("s1", "s2", "s3") else "lay")
    both = analysis.normalize_trials(pd.concat([trials, ratings], ignore_index=True))
    result = analysis.analyze(both)
    natural = row(result.summary, condition="natural", expert_level="all")
    assert round(natural["accuracy"], 3) == 0.922  # the 2-AFC numbers are untouched
    experts = row(result.ratings, unit="all", expert_level="expert")
    assert experts["n_participants"] == 3
    expected = ratings[ratings["expert_level"] == "expert"].groupby("participant_id")[
        "rating"].mean().mean()
    assert experts["mean"] == pytest.approx(expected)
    levels = set(result.ratings["expert_level"])
    assert levels == {"all", "expert", "lay"}


def test_an_empty_correct_is_only_accepted_where_there_is_no_right_answer() -> None:
    frame = pd.DataFrame({"participant_id": ["p1", "p1"], "condition": ["natural"] * 2,
                          "phase": ["main", "main"], "correct": ["True", ""]})
    with pytest.raises(ConfigError, match="'correct' must be true or false"):
        analysis.normalize_trials(frame)
    frame["phase"] = ["main", "rating"]
    normalized = analysis.normalize_trials(frame)
    assert bool(normalized["correct"].iloc[0]) is True
    assert pd.isna(normalized["correct"].iloc[1])


def test_start_and_end_ratings_are_compared_paired() -> None:
    rows = []
    for participant, (start, end) in {"p1": (-20, 10), "p2": (0, 40), "p3": (10, 30),
                                      "p4": (-40, -20)}.items():
        for time, value in (("start", start), ("end", end)):
            for unit in ("3a:43", "4b:504"):
                rows.append({"participant_id": participant, "condition": "synthetic",
                             "phase": "rating", "correct": None, "unit": unit,
                             "rating": value, "rating_time": time})
    result = analysis.analyze(analysis.normalize_trials(pd.DataFrame(rows)))
    pooled = row(result.rating_comparisons, unit="all")
    differences = pd.Series([30, 40, 20, 20])
    assert (pooled["n"], pooled["df"]) == (4, 3)
    assert pooled["mean_start"] == pytest.approx(-12.5)
    assert pooled["mean_end"] == pytest.approx(15.0)
    assert pooled["difference"] == pytest.approx(differences.mean())
    assert pooled["effect_size"] == pytest.approx(differences.mean() / differences.std(ddof=1))
    assert pooled["t"] == pytest.approx(pooled["effect_size"] * 2)  # t = d_z * sqrt(n)
    assert list(result.ratings["rating_time"].unique()) == ["start", "end"]
    assert "rating_comparisons" in result.to_json()


# -- reaction time and confidence, compared like accuracy --------------------------------


def test_reaction_time_and_confidence_are_compared_as_the_paper_did() -> None:
    result = analysis.analyze(analysis.normalize_trials(tidy_experiment_i()))
    comparisons = result.comparisons
    assert set(comparisons["measure"]) == {"accuracy", "rt_ms", "confidence"}
    rt = row(comparisons, measure="rt_ms", condition_a="natural", condition_b="synthetic")
    assert (rt["design"], rt["t_test"], rt["n_a"]) == ("within", "paired", 10)
    assert round(rt["mean_a"] / 1000, 2) == 5.42 and round(rt["mean_b"] / 1000, 2) == 8.79
    assert round(rt["t"], 2) == -3.02
    assert math.isnan(rt["accuracy_a"])  # only accuracy rows carry accuracy_a/_b
    confidence = row(comparisons, measure="confidence", condition_a="natural",
                     condition_b="synthetic")
    assert round(confidence["mean_a"], 2) == 2.49 and round(confidence["mean_b"], 2) == 1.95
    assert round(confidence["t"], 2) == 6.76
    accuracy = row(comparisons, measure="accuracy", condition_a="natural",
                   condition_b="synthetic")
    assert accuracy["accuracy_a"] == accuracy["mean_a"] == pytest.approx(0.922, abs=5e-4)


def test_comparisons_are_split_by_the_by_columns() -> None:
    trials = analysis.normalize_trials(tidy_experiment_i())
    result = analysis.analyze(trials, by=["layer"])
    pairs = result.comparisons[(result.comparisons["condition_a"] == "natural")
                               & (result.comparisons["condition_b"] == "synthetic")]
    unsplit = pairs[pairs["layer"] == "all"]
    assert sorted(unsplit["measure"]) == ["accuracy", "confidence", "rt_ms"]
    layers = sorted(set(pairs["layer"]) - {"all"})
    assert len(layers) == trials[trials["phase"] == "main"]["layer"].nunique()
    one = layers[0]
    split = row(pairs, measure="rt_ms", layer=one)
    main = trials[(trials["phase"] == "main") & (trials["layer"] == one)]
    medians = main.groupby(["participant_id", "condition"])["rt_ms"].median().unstack()
    assert split["mean_a"] == pytest.approx(medians["natural"].mean())
    assert split["n_a"] == len(medians[["natural", "synthetic"]].dropna())


# -- repeated trials ---------------------------------------------------------------------


def test_repeated_trials_agree_with_their_first_answer_in_the_published_data() -> None:
    raw = pd.read_csv(EXPERIMENT_I)
    tidy = tidy_experiment_i()
    tidy["trial_index"] = raw["trial_nr"]
    tidy["repeat_of"] = raw["old_trial_nr"]
    result = analysis.analyze(analysis.normalize_trials(tidy))
    table = result.repeated
    assert set(table["condition"]) == {"natural", "synthetic", "none_pre", "none_post", "all"}
    # by hand: the same image picked again is the same correctness
    repeats = raw[raw["trial_type"] == "repeated"]
    first = raw.set_index(["subject_id", "trial_nr"])["correct"]
    agree = repeats.assign(agree=[first[(s, int(o))] == c for s, o, c in zip(
        repeats["subject_id"], repeats["old_trial_nr"], repeats["correct"], strict=True)])
    natural = row(table, condition="natural")
    expected = agree[agree["instr_type"] == "natural"].groupby("subject_id")["agree"].mean()
    assert natural["agreement"] == pytest.approx(expected.mean())
    assert (natural["n_participants"], natural["n_trials"]) == (10, 60)
    overall = row(table, condition="all")
    assert overall["n_trials"] == 180
    assert "repeated" in result.to_json()


# -- the outputs -------------------------------------------------------------------------


def test_report_draws_the_intuitiveness_figure_and_json_has_ratings(tmp_path: Path) -> None:
    path = tmp_path / "lab.csv"
    pd.concat([tidy_experiment_i(), tidy_ratings()], ignore_index=True).to_csv(path,
                                                                               index=False)
    result = CliRunner().invoke(app, ["analyze", str(path), "--json", "--out",
                                      str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {r["measure"] for r in payload["comparisons"]} == {"accuracy", "rt_ms",
                                                               "confidence"}
    pooled = [r for r in payload["ratings"] if r["unit"] == "all" and r["expert_level"] == "all"]
    assert len(pooled) == 1 and round(pooled[0]["mean"], 1) == -1.6
    assert (tmp_path / "report" / "ratings.png").is_file()
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Intuitiveness ratings" in html and "Ratings (mean of participants" in html
    text = analysis.terminal_text(analysis.analyze_file(path))
    assert "rt_ms" in text and "Ratings" in text
