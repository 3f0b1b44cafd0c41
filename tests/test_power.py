"""Sample sizes (`crowdkit power`, and the report's tables): CI half-widths and 80 % power by
the t distribution, paired or unpaired, from pilot data or the machine observer; and human
against machine in the analysis (per unit, correlations with Fisher-z CIs, JSON, report)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crowdkit.analysis import analyze_file, write_report
from crowdkit.analysis.machine import human_vs_machine
from crowdkit.analysis.power import (
    machine_spread,
    n_for_difference,
    n_for_half_width,
    pilot_spread,
    power_tables,
)


def test_a_half_width_needs_the_smallest_n_whose_t_interval_fits():
    n = n_for_half_width(0.2, 0.05)
    assert stats.t.ppf(0.975, n - 1) * 0.2 / math.sqrt(n) <= 0.05
    assert stats.t.ppf(0.975, n - 2) * 0.2 / math.sqrt(n - 1) > 0.05
    assert 60 <= n <= 66  # the normal approximation says 61.5
    assert n_for_half_width(0.0, 0.05) == 2
    assert n_for_half_width(float("nan"), 0.05) is None


def test_power_for_a_difference_paired_and_unpaired():
    per_group = n_for_difference(0.2 ** 2 + 0.2 ** 2, 0.1, paired=False)
    normal = 2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * 0.04 / 0.01
    assert normal <= per_group <= normal + 3
    # with the noncentral t, the power at that n is about 80 %
    dof = 2 * per_group - 2
    ncp = 0.1 / math.sqrt(0.08 / per_group)
    power = 1 - stats.nct.cdf(stats.t.ppf(0.975, dof), dof, ncp)
    assert 0.79 <= power <= 0.84
    paired = n_for_difference(0.1 ** 2, 0.1, paired=True)  # correlated conditions
    assert paired < per_group


def pilot(n: int, accuracy: dict[str, float], trials: int = 20, seed: int = 0,
          within: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        conditions = list(accuracy) if within else [list(accuracy)[i % len(accuracy)]]
        skill = rng.normal(0, 0.05)
        for condition in conditions:
            for t in range(trials):
                rows.append({"participant_id": f"p{i}", "condition": condition,
                             "phase": "main", "unit": f"u{t % 5}", "excluded": False,
                             "correct": bool(rng.random() < accuracy[condition] + skill)})
    return pd.DataFrame(rows)


def test_pilot_spread_and_tables_follow_the_design():
    between = pilot(40, {"natural": 0.9, "synthetic": 0.8})
    sds, diffs = pilot_spread(between)
    assert set(sds) == {"natural", "synthetic"} and diffs == {}
    conditions, pairs = power_tables(sds, diffs, paired=False, half_width=0.05,
                                     difference=0.1, source="pilot")
    assert list(conditions["condition"]) == ["natural", "synthetic"]
    assert pairs.loc[0, "n_total"] == 2 * pairs.loc[0, "n_per_group"]
    within = pilot(30, {"natural": 0.9, "synthetic": 0.8}, within=True)
    sds, diffs = pilot_spread(within)
    assert ("natural", "synthetic") in diffs
    _, paired = power_tables(sds, diffs, paired=True, half_width=0.05, difference=0.1,
                             source="pilot")
    assert bool(paired.loc[0, "paired"]) and paired.loc[0, "n_total"] == paired.loc[
        0, "n_per_group"]


def test_machine_spread_is_binomial_plus_between_tasks():
    rows = [{"task_id": f"t{t}", "phase": "main", "condition": "natural", "p_correct": p}
            for t, p in enumerate([0.8, 0.8, 0.8, 0.8]) for _ in range(10)]
    sd = machine_spread(pd.DataFrame(rows))["natural"]
    assert sd == pytest.approx(math.sqrt(0.8 * 0.2 / 10))


def test_human_against_machine_per_unit_and_correlated_over_units():
    units = [f"u{i}" for i in range(8)]
    difficulty = np.linspace(0.55, 0.95, 8)
    human, machine = [], []
    for unit, p in zip(units, difficulty, strict=True):
        for k in range(20):
            human.append({"participant_id": f"p{k}", "condition": "natural", "phase": "main",
                          "unit": unit, "excluded": False, "correct": k < round(20 * p)})
        for k in range(4):
            machine.append({"participant_id": "machine:x", "condition": "natural",
                            "phase": "main", "unit": unit, "correct": True,
                            "p_correct": p - 0.05 + 0.01 * k})
    compared = human_vs_machine(pd.DataFrame(human), pd.DataFrame(machine))
    assert len(compared.units) == 8
    row = compared.correlations.iloc[0]
    assert row["n_units"] == 8 and row["pearson_r"] > 0.95
    r, half = row["pearson_r"], 1.96 / math.sqrt(5)
    assert row["pearson_ci95_low"] == pytest.approx(math.tanh(math.atanh(r) - half))
    assert row["spearman_rho"] == pytest.approx(1.0)


def test_analyze_reads_the_machine_trials_beside_the_humans(tmp_path):
    data = tmp_path / "data"
    (data / "local").mkdir(parents=True)
    base = {"study": "s", "target": "local", "assignment_id": "a", "hit_id": "h",
            "task_id": "t", "trial_index": 0, "block": 0, "phase": "main",
            "reference_mode": "min+max", "n_references": 9, "layer": "l", "channel": 0,
            "batch": 0, "unit_selection": "picked", "max_position": "top",
            "response": "top", "confidence": 3, "rt_ms": 900.0, "expert_level": "lay",
            "excluded": False, "exclusion_reasons": ""}
    human, machine = [], []
    for u in range(6):
        for k in range(10):
            right = k < 5 + u
            human.append({**base, "participant_id": f"p{k}", "condition": "natural",
                          "unit": f"u{u}", "correct": right,
                          "response": "top" if right else "bottom"})
        machine.append({**base, "participant_id": "machine:features:resnet18",
                        "target": "machine", "condition": "natural", "unit": f"u{u}",
                        "correct": True, "p_correct": 0.5 + 0.07 * u})
    pd.DataFrame(human).to_parquet(data / "local" / "trials.parquet")
    pd.DataFrame(machine).to_parquet(data / "machine_trials.parquet")
    (data / "machine_trials.json").write_text(json.dumps({"note": "random weights said"}))
    analysis = analyze_file(data / "local" / "trials.parquet")
    out = analysis.to_json()
    assert out["human_vs_machine"]["observer"] == "machine:features:resnet18"
    assert out["human_vs_machine"]["note"] == "random weights said"
    assert out["human_vs_machine"]["correlations"][0]["spearman_rho"] == pytest.approx(1.0)
    assert out["power"]["conditions"][0]["source"] == "pilot"
    report = write_report(analysis, tmp_path / "report")
    html = report.read_text()
    assert 'id="figure-human_vs_machine"' in html and "Human against machine" in html
    assert "Participants needed per condition" in html
    saved = json.loads((tmp_path / "report" / "analysis.json").read_text())
    assert saved["human_vs_machine"]["units"][0]["unit"] == "u0"


def test_a_pilot_too_small_for_a_spread_falls_back_to_the_machine_files(tmp_path):
    """One participant per condition has no SD: the report's sample sizes come from the
    machine observer's answers as analyze reads them from data/machine_trials.parquet."""
    from crowdkit.analysis.machine import load_machine
    from crowdkit.analysis.power import report_power

    machine = pd.DataFrame({
        "participant_id": ["machine:x"] * 4, "task_id": ["t0", "t0", "t1", "t1"],
        "phase": ["main"] * 4, "condition": ["natural"] * 4, "unit": ["u0", "u0", "u1", "u1"],
        "correct": [True, False, True, True], "p_correct": [0.7, 0.4, 0.8, 0.9]})
    machine.to_parquet(tmp_path / "machine_trials.parquet")
    pilot = pd.DataFrame({"participant_id": ["p0"] * 2, "condition": ["natural"] * 2,
                          "phase": ["main"] * 2, "unit": ["u0", "u1"], "excluded": [False] * 2,
                          "correct": [True, False]})
    conditions, _ = report_power(pilot, load_machine(tmp_path / "machine_trials.parquet"),
                                 paired=False)
    assert list(conditions["source"]) == ["machine"], conditions


def test_crowdkit_power_chooses_as_the_report_does(tmp_path):
    """A pilot of one participant per condition has no spread: the command falls back to
    the machine observer as the report does, and without one says so in a line, instead of
    printing an SD of nan."""
    from crowdkit.errors import CrowdkitError
    from crowdkit.power import study_power
    from crowdkit.study import load_study
    from tests.factories import make_study

    study = load_study(make_study(tmp_path / "s"))
    pilot = pd.DataFrame({"participant_id": ["p0"] * 2, "condition": ["natural"] * 2,
                          "phase": ["main"] * 2, "unit": ["u0", "u1"], "excluded": [False] * 2,
                          "correct": [True, False]})
    folder = study.target_data_dir("local")
    folder.mkdir(parents=True)
    pilot.to_parquet(folder / "trials.parquet")
    with pytest.raises(CrowdkitError, match="no condition with two or more participants"):
        study_power(study)
    pd.DataFrame({
        "participant_id": ["machine:x"] * 4, "task_id": ["t0", "t0", "t1", "t1"],
        "phase": ["main"] * 4, "condition": ["natural"] * 4, "unit": ["u0", "u0", "u1", "u1"],
        "correct": [True, False, True, True], "p_correct": [0.7, 0.4, 0.8, 0.9],
    }).to_parquet(study.data_dir / "machine_trials.parquet")
    result = study_power(study)
    assert result.source == "machine" and "lower bound" in " ".join(result.notes)
