"""crowdkit analyze: the paper's statistic, splits, comparisons, the CLI and the report files."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdkit import analysis, sources
from crowdkit.cli import app
from crowdkit.errors import ConfigError, CrowdkitError

DATA_DIR = Path(__file__).resolve().parent / "data"  # published data, see data/README.md
EXPERIMENT_I = DATA_DIR / "experiment_I_main_practice_catch_repeated_trials_preprocessed.csv"

MINIMAL_STUDY_TOML = """
[study]
name = "analysis-test"

[hit]
title = "Which image excites the network more?"
description = "Pick the image that fits the examples."
reward = "0.50"
"""


def tidy_experiment_i() -> pd.DataFrame:
    """The published Experiment I trials mapped to crowdkit's tidy columns.

    The paper calls synthetic references "optimized"; catch trials are main-block trials
    flagged `catch_trial`; "repeated" trials re-show earlier ones to measure consistency and
    are not main trials; RT is in seconds and confidence is signed by the chosen side.
    """
    raw = pd.read_csv(EXPERIMENT_I)
    phase = raw["trial_type"].where(~raw["catch_trial"], "catch")
    return pd.DataFrame(
        {
            "participant_id": "s" + raw["subject_id"].astype(str),
            "condition": raw["instr_type"].replace({"optimized": "synthetic"}),
            "phase": phase,
            "correct": raw["correct"].astype(str),  # as a CSV export would give it
            "confidence": raw["abs_conf_rating"],
            "rt_ms": raw["RT"] * 1000,
            "layer": raw["layer"],
            "batch": raw["batch"],
        }
    )


@pytest.fixture(scope="module")
def experiment_i_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "experiment_I_tidy.csv"
    tidy_experiment_i().to_csv(path, index=False)
    return path


def trials(rows: list[tuple], **extra_columns: list) -> pd.DataFrame:
    """Tidy trials from (participant, condition, phase, correct) tuples."""
    frame = pd.DataFrame(rows, columns=["participant_id", "condition", "phase", "correct"])
    for name, values in extra_columns.items():
        frame[name] = values
    return analysis.normalize_trials(frame)


def main_rows(participant: str, condition: str, n_correct: int, n_wrong: int) -> list[tuple]:
    return [(participant, condition, "main", True)] * n_correct + [
        (participant, condition, "main", False)
    ] * n_wrong


def many_main_rows(*scores: tuple[str, str, int, int]) -> list[tuple]:
    """Main trials of several (participant, condition, n_correct, n_wrong) scores."""
    return [trial for score in scores for trial in main_rows(*score)]


def row(summary: pd.DataFrame, **match: str) -> pd.Series:
    selected = summary
    for column, value in match.items():
        selected = selected[selected[column] == value]
    assert len(selected) == 1, f"expected one row for {match}, got {len(selected)}"
    return selected.iloc[0]


# ---------------------------------------------------------------- the published numbers


def test_experiment_i_reproduces_the_papers_accuracy_and_ci(experiment_i_csv: Path) -> None:
    summary = analysis.summarize(analysis.load_trials(experiment_i_csv))
    natural = row(summary, condition="natural", expert_level="all")
    synthetic = row(summary, condition="synthetic", expert_level="all")
    assert round(natural["accuracy"], 3) == 0.922
    assert round(natural["ci95_high"] - natural["accuracy"], 3) == 0.017
    assert round(synthetic["accuracy"], 3) == 0.820
    assert round(synthetic["ci95_high"] - synthetic["accuracy"], 3) == 0.042
    assert (natural["n_participants"], natural["n_trials"]) == (10, 450)
    assert (synthetic["n_participants"], synthetic["n_trials"]) == (10, 450)


def test_experiment_i_is_within_participants_and_natural_beats_synthetic(
    experiment_i_csv: Path,
) -> None:
    result = analysis.analyze(analysis.load_trials(experiment_i_csv))
    assert result.design == "within"
    pair = row(result.comparisons, measure="accuracy", condition_a="natural",
               condition_b="synthetic")
    assert (pair["t_test"], pair["rank_test"], pair["n_a"]) == ("paired", "wilcoxon", 10)
    assert pair["difference"] == pytest.approx(0.922 - 0.820, abs=0.001)
    assert pair["p_t"] < 0.01 and pair["effect_size"] > 1
    catch = row(result.catch, condition="all")
    assert (catch["n_participants"], catch["n_trials"]) == (10, 180)
    assert catch["accuracy"] > 0.95


def test_cli_json_on_experiment_i(experiment_i_csv: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", str(experiment_i_csv), "--json", "--by", "layer"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = [r for r in payload["summary"] if r["expert_level"] == "all" and r["layer"] == "all"]
    natural = next(r for r in rows if r["condition"] == "natural")
    assert round(natural["accuracy"], 3) == 0.922
    assert set(natural) == {
        "condition",
        "expert_level",
        "layer",
        "n_participants",
        "n_trials",
        "accuracy",
        "ci95_low",
        "ci95_high",
    }
    per_layer = [
        r for r in payload["summary"] if r["condition"] == "natural" and r["layer"] != "all"
    ]
    assert [r["layer"] for r in per_layer] == [f"layer_{i}" for i in range(9)]
    assert all(r["n_participants"] == 10 and r["n_trials"] == 50 for r in per_layer)


# ---------------------------------------------------------------- the statistic


def test_accuracy_averages_participants_not_trials() -> None:
    # Pooled over trials this would be 4/5 = 0.8; each participant weighs the same: 0.5.
    data = trials(main_rows("a", "natural", 4, 0) + main_rows("b", "natural", 0, 1))
    natural = row(analysis.summarize(data), condition="natural")
    assert natural["accuracy"] == pytest.approx(0.5)
    # SEM = SD(1, 0) / sqrt(2) = 0.5, so the interval is 0.5 ± 0.98.
    assert natural["ci95_low"] == pytest.approx(0.5 - 0.98)
    assert natural["ci95_high"] == pytest.approx(0.5 + 0.98)
    assert (natural["n_participants"], natural["n_trials"]) == (2, 5)


def test_practice_catch_and_excluded_participants_are_left_out_and_counted() -> None:
    rows = (
        main_rows("a", "natural", 3, 1)
        + [("a", "natural", "practice", False)] * 5
        + [("a", "natural", "catch", False)] * 2
        + main_rows("b", "natural", 1, 3)
    )
    excluded = [p == "b" for p, *_ in rows]
    reasons = ["catch_accuracy;fast_rt" if p == "b" else "" for p, *_ in rows]
    data = trials(rows, excluded=excluded, exclusion_reasons=reasons)
    result = analysis.analyze(data)
    natural = row(result.summary, condition="natural")
    assert natural["accuracy"] == pytest.approx(0.75)
    assert (natural["n_participants"], natural["n_trials"]) == (1, 4)
    assert math.isnan(natural["ci95_low"])  # one participant: no SEM
    assert result.participants == {
        "included": 1,
        "excluded": 1,
        "exclusion_reasons": {"catch_accuracy": 1, "fast_rt": 1},
    }
    catch = row(result.catch, condition="natural")
    assert (catch["accuracy"], catch["n_trials"]) == (0.0, 2)


def test_split_by_expert_level_and_by_columns() -> None:
    rows = many_main_rows(
        ("e1", "natural", 2, 0), ("e2", "natural", 1, 1), ("l1", "natural", 1, 1),
        ("l2", "natural", 0, 2),
    )
    experts = ["expert" if p.startswith("e") else "lay" for p, *_ in rows]
    layers = ["mixed4a", "mixed10b"] * (len(rows) // 2)
    summary = analysis.summarize(trials(rows, expert_level=experts, layer=layers), by=["layer"])
    assert row(summary, expert_level="all", layer="all")["accuracy"] == pytest.approx(0.5)
    assert row(summary, expert_level="expert", layer="all")["accuracy"] == pytest.approx(0.75)
    lay = row(summary, expert_level="lay", layer="all")
    assert (lay["accuracy"], lay["n_participants"], lay["n_trials"]) == (0.25, 2, 4)
    by_layer = summary[(summary["expert_level"] == "all") & (summary["layer"] != "all")]
    assert list(by_layer["layer"]) == ["mixed4a", "mixed10b"]  # natural order, not "1" < "4"
    assert list(by_layer["accuracy"]) == pytest.approx([0.75, 0.25])


def test_unknown_by_column_is_a_one_line_error() -> None:
    data = trials(main_rows("a", "natural", 1, 0))
    with pytest.raises(CrowdkitError, match="--by: no column 'layre'"):
        analysis.summarize(data, by=["layre"])


def test_rt_is_the_median_per_participant_and_confidence_the_mean() -> None:
    rows = main_rows("a", "natural", 3, 0) + main_rows("b", "natural", 1, 1)
    data = trials(rows, rt_ms=[100, 200, 10_000, 300, 500], confidence=[3, 3, 1, 2, 1])
    table = analysis.rt_and_confidence(data)
    everything = row(table, condition="natural", outcome="all")
    assert everything["rt_ms"] == pytest.approx((200 + 400) / 2)
    assert everything["confidence"] == pytest.approx((7 / 3 + 1.5) / 2)
    wrong = row(table, condition="natural", outcome="incorrect")
    assert (wrong["n_participants"], wrong["n_trials"], wrong["rt_ms"]) == (1, 1, 500)


# ---------------------------------------------------------------- comparisons


def test_within_participants_comparison_is_paired_with_cohens_dz() -> None:
    # Differences natural - synthetic per participant: 0.5, 0.25, 0.25.
    data = trials(many_main_rows(
        ("a", "natural", 4, 0), ("a", "synthetic", 2, 2),
        ("b", "natural", 3, 1), ("b", "synthetic", 2, 2),
        ("c", "natural", 2, 2), ("c", "synthetic", 1, 3),
    ))
    assert analysis.infer_design(data) == "within"
    pair = row(analysis.compare_conditions(data), condition_a="natural")
    differences = pd.Series([0.5, 0.25, 0.25])
    d_z = differences.mean() / differences.std(ddof=1)
    assert (pair["design"], pair["t_test"], pair["df"]) == ("within", "paired", 2)
    assert pair["effect_size"] == pytest.approx(d_z)
    assert pair["t"] == pytest.approx(d_z * math.sqrt(3))  # paired t = d_z * sqrt(n)
    assert pair["difference"] == pytest.approx(1 / 3)


def test_between_participants_comparison_is_unpaired_with_pooled_d() -> None:
    data = trials(many_main_rows(
        ("a", "natural", 4, 0), ("b", "natural", 3, 1),
        ("c", "synthetic", 2, 2), ("d", "synthetic", 1, 3),
    ))
    assert analysis.infer_design(data) == "between"
    pair = row(analysis.compare_conditions(data), condition_a="natural")
    # Both groups have SD sqrt(0.03125); the difference of means is 0.5.
    assert (pair["design"], pair["t_test"], pair["rank_test"]) == (
        "between",
        "welch",
        "mann-whitney",
    )
    assert (pair["n_a"], pair["n_b"]) == (2, 2)
    assert pair["effect_size"] == pytest.approx(0.5 / math.sqrt(0.03125))


def test_identical_scores_give_no_test_rather_than_a_crash() -> None:
    rows = many_main_rows(*((p, c, 1, 1) for p in "abc" for c in ("natural", "synthetic")))
    pair = row(analysis.compare_conditions(trials(rows)), condition_a="natural")
    assert pair["difference"] == 0
    assert math.isnan(pair["effect_size"]) and math.isnan(pair["t"])
    payload = analysis.analyze(trials(rows)).to_json()
    (compared,) = payload["comparisons"]
    assert compared["effect_size"] is None and compared["t"] is None
    json.dumps(payload, allow_nan=False)  # no NaN left: strict JSON parsers accept it


# ---------------------------------------------------------------- input files


def test_csv_with_string_booleans_and_parquet_read_the_same(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "participant_id": [1, 1, 2, 2, 3, 3],
            "condition": ["none"] * 6,
            "phase": ["main"] * 6,
            "correct": [True, False, True, True, False, False],
            "excluded": [False, False, False, False, True, True],
        }
    )
    as_text = frame.assign(
        correct=["True", "False", "true", "1", "FALSE", "0"],
        excluded=["False", "", "false", "0", "True", "True"],  # empty: not excluded
    )
    as_text.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    from_csv = analysis.summarize(analysis.load_trials(tmp_path / "t.csv"))
    from_parquet = analysis.summarize(analysis.load_trials(tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    none = row(from_csv, condition="none")
    assert (none["accuracy"], none["n_participants"]) == (0.75, 2)


def test_missing_required_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    path.write_text("participant_id,condition,correct\np1,natural,True\n")
    with pytest.raises(ConfigError, match=r"missing required column 'phase'"):
        analysis.load_trials(path)
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code != 0


def test_cli_missing_column_is_one_line_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    path.write_text("participant_id,phase\np1,main\n")
    process = subprocess.run(
        [sys.executable, "-m", "crowdkit", "analyze", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 2
    assert process.stdout == ""
    assert process.stderr.strip().splitlines() == [
        f"error: {path}: missing required columns 'condition', 'correct' "
        "(analysis needs participant_id, condition, phase, correct)"
    ]


def test_unreadable_correct_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    path.write_text("participant_id,condition,phase,correct\np1,natural,main,maybe\n")
    with pytest.raises(ConfigError, match=r"column 'correct' must be true or false.*'maybe'"):
        analysis.load_trials(path)


def test_no_main_trials_is_an_error_not_an_empty_table() -> None:
    data = trials([("a", "natural", "practice", True)])
    with pytest.raises(CrowdkitError, match="no main trials.*phases found: practice"):
        analysis.summarize(data)


# ---------------------------------------------------------------- study directory and report


def write_study(root: Path, data: pd.DataFrame, name: str = "trials.parquet") -> Path:
    (root / "data").mkdir(parents=True)
    (root / "study.toml").write_text(MINIMAL_STUDY_TOML)
    if name.endswith(".parquet"):
        data.to_parquet(root / "data" / name)
    else:
        data.to_csv(root / "data" / name, index=False)
    return root


def rich_trials() -> pd.DataFrame:
    """Two conditions, two expert levels, two layers, RT and confidence: every figure."""
    rows, extra = [], {"expert_level": [], "layer": [], "rt_ms": [], "confidence": []}
    for number in range(6):
        participant = f"p{number}"
        for condition, n_correct in (("natural", 7 + number % 2), ("synthetic", 5 + number % 3)):
            for trial in range(8):
                rows.append((participant, condition, "main", trial < n_correct))
                extra["expert_level"].append("expert" if number < 2 else "lay")
                extra["layer"].append(f"mixed{3 + trial % 2}a")
                extra["rt_ms"].append(1000 + 100 * trial + 50 * number)
                extra["confidence"].append(1 + trial % 3)
    frame = pd.DataFrame(rows, columns=["participant_id", "condition", "phase", "correct"])
    return frame.assign(**extra)


def test_study_directory_writes_report_to_its_report_dir(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", rich_trials())
    result = CliRunner().invoke(app, ["analyze", str(study), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert payload["report"] == str(study / "report" / "report.html")
    assert payload["design"] == "within"
    report_dir = study / "report"
    for name in (
        "accuracy_by_condition",
        "accuracy_by_layer",
        "accuracy_by_expert_level",
        "rt_confidence",
    ):
        assert (report_dir / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert b"<svg" in (report_dir / f"{name}.svg").read_bytes()[:2000]
    html = (report_dir / "report.html").read_text()
    assert "http://" not in html and "https://" not in html.replace("https://www.w3.org", "")
    assert html.count("data:image/png;base64,") == 4
    saved = json.loads((report_dir / "analysis.json").read_text())
    assert saved["summary"] == payload["summary"]


def test_study_directory_falls_back_to_csv_and_validates_study_toml(tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", rich_trials(), name="trials.csv")
    assert analysis.trials_file(study) == study / "data" / "trials.csv"
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(tmp_path / "elsewhere")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere" / "report.html").is_file()
    assert not (study / "report").exists()
    (study / "study.toml").write_text("[study]\nname = 'x'\n")  # no [hit]: invalid
    refused = CliRunner().invoke(app, ["analyze", str(study)])
    assert isinstance(refused.exception, ConfigError) and "[hit]" in str(refused.exception)


def test_report_leaves_out_figures_whose_columns_are_absent(tmp_path: Path) -> None:
    data = trials(main_rows("a", "natural", 3, 1) + main_rows("b", "natural", 2, 2))
    report = analysis.write_report(analysis.analyze(data, source="t.csv"), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["accuracy_by_condition.png"]
    assert "Accuracy on main trials" in report.read_text()


def test_plain_output_is_a_table_with_counts(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    rich_trials().to_csv(path, index=False)
    result = CliRunner().invoke(app, ["analyze", str(path), "--by", "layer"])
    assert result.exit_code == 0, result.output
    assert "6 participants analysed, 0 excluded" in result.stdout
    assert "Accuracy by layer" in result.stdout
    assert "Paired comparisons" in result.stdout
    assert not (tmp_path / "report").exists()  # a bare file writes no report unless --out


def test_intuitiveness_ratings_reproduce_the_published_mean() -> None:
    ratings = pd.read_csv(DATA_DIR / "experiment_I_intuitiveness_beginning_preprocessed.csv")
    per_participant = ratings.groupby("subject_id")["rating"].mean()
    mean, low, high = analysis.mean_ci(per_participant)
    assert len(per_participant) == 10
    assert (round(mean, 1), round(high - mean, 1)) == (-1.6, 21.1)


# ---------------------------------------------------------------- conditions come from sources


@pytest.fixture
def other_methods() -> Iterator[None]:
    """Two more registered conditions: one with a colour of its own, one without."""
    sources.register(sources.ImageSetSource("gradcam", "Grad-CAM", color="#123456"))
    sources.register(sources.ImageSetSource("lime", "LIME images"))
    yield
    sources.unregister("gradcam")
    sources.unregister("lime")


def test_conditions_are_ordered_and_coloured_by_the_source_registry(other_methods: None) -> None:
    names = ["baseline", "lime", "gradcam", "synthetic", "natural"]  # baseline: no source
    data = trials(many_main_rows(*((f"p{i}", c, 1 + i, 1) for i in range(2) for c in names)))
    summary = analysis.summarize(data)
    assert list(summary["condition"]) == ["natural", "synthetic", "gradcam", "lime", "baseline"]
    assert list(analysis.compare_conditions(data)["condition_a"])[:4] == ["natural"] * 4
    ordered = list(summary["condition"])  # as every figure passes them
    colors = [analysis.condition_color(c, ordered) for c in ordered]
    assert colors == [
        sources.get("natural").color,
        sources.get("synthetic").color,
        "#123456",
        analysis.figures.EXTRA_COLORS[0],  # a registered source without a colour
        analysis.figures.EXTRA_COLORS[1],  # a published data set's own name
    ]


# ---------------------------------------------------------------- no printing, lazy imports


def test_the_library_prints_nothing_and_reports_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps: list[tuple[str, int, int]] = []

    @contextmanager
    def recorded(description: str, total: int) -> Iterator[Callable[[int], None]]:
        steps.append((description, total, 0))
        yield lambda n: steps.append((description, total, n))

    result = analysis.analyze(analysis.normalize_trials(rich_trials()), source="generated")
    report = analysis.write_report(result, tmp_path / "out", progress=recorded)
    assert report.is_file()
    n = len(analysis.FIGURES)  # every figure is a step, drawn or skipped
    assert steps == [("drawing figures", n, 0)] + [("drawing figures", n, 1)] * n
    assert capsys.readouterr() == ("", "")


def test_terminal_output_is_returned_for_the_cli_to_print(tmp_path: Path) -> None:
    from rich.console import Console

    result = analysis.analyze(analysis.normalize_trials(rich_trials()), source="[t].csv")
    line = analysis.headline(result)
    assert "6 participants analysed, 0 excluded; design: within participants" in line
    titles = [str(table.title) for table in analysis.rich_tables(result)]
    assert titles[0].startswith("Accuracy on main trials")
    assert "Accuracy by expert level" in titles and "Paired comparisons" in titles[-1]
    console = Console(width=60, soft_wrap=True, record=True, file=io.StringIO())
    console.print(analysis.terminal_output(result, tmp_path / "report.html"))
    text = console.export_text()
    assert text.splitlines()[0].startswith("[t].csv: 6 participants")  # one line, not markup
    assert text.rstrip().endswith(f"report: {tmp_path / 'report.html'}")


def test_importing_analysis_loads_neither_matplotlib_nor_jinja2() -> None:
    code = (
        "import sys; from crowdkit import analysis; "
        "print(sorted(m for m in ('matplotlib', 'jinja2') if m in sys.modules))"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert process.stdout.strip() == "[]"
