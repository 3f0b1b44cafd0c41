"""Human against machine on the same trials: per unit and condition, people's accuracy
beside the machine observer's MIS (data/machine_trials.parquet, `crowdkit mis`), and how
well the two agree over units (Pearson and Spearman, with 95 % CIs).

Human accuracy per unit is the share of included participants' main trials of that unit
answered right (every trial counts once: per-unit trial counts are small, so the mean of
per-participant means would mostly average ones and zeros). The MIS is the mean, over the
same unit's designed main trials, of the observer's probability of the right choice.

The CIs of the correlations use Fisher's z: tanh(atanh(r) +- 1.96 / sqrt(n - 3)) for
Pearson's r and, for Spearman's rho, the standard error sqrt(1.06 / (n - 3)) (Fieller,
Hartley and Pearson 1957). With fewer than 4 units there is no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats as scipy_stats

from crowdkit.analysis.stats import main_trials
from crowdkit.observers import MACHINE_TRIALS

UNIT_COLUMNS = ["condition", "unit", "human_accuracy", "human_trials", "mis",
                "machine_accuracy", "machine_trials"]
CORRELATION_COLUMNS = ["condition", "n_units", "pearson_r", "pearson_ci95_low",
                       "pearson_ci95_high", "pearson_p", "spearman_rho", "spearman_ci95_low",
                       "spearman_ci95_high", "spearman_p"]
ALL_CONDITIONS = "all"


@dataclass(frozen=True)
class HumanVsMachine:
    observer: str
    source: str  # the machine trials file
    units: pd.DataFrame
    correlations: pd.DataFrame
    note: str | None = None  # the observer's own warning (random weights)


def machine_file(trials_path: Path) -> Path | None:
    """data/machine_trials.parquet beside a study's data/<target>/trials.parquet (or in the
    trials file's own folder), where `crowdkit mis` wrote one."""
    for folder in (trials_path.parent.parent, trials_path.parent):
        candidate = folder / MACHINE_TRIALS
        if candidate.is_file():
            return candidate
    return None


def human_vs_machine(trials: pd.DataFrame, machine: pd.DataFrame, source: str = ""
                     ) -> HumanVsMachine:
    """Per unit and condition human accuracy beside the MIS, and their correlations."""
    human = main_trials(trials).groupby(["condition", "unit"], sort=True)["correct"].agg(
        ["mean", "size"]).rename(columns={"mean": "human_accuracy", "size": "human_trials"})
    main = machine[machine["phase"] == "main"]
    scored = main.groupby(["condition", "unit"], sort=True).agg(
        mis=("p_correct", "mean"), machine_accuracy=("correct", "mean"),
        machine_trials=("p_correct", "size"))
    units = human.join(scored, how="inner").reset_index()
    units = units.astype({"human_accuracy": float, "mis": float, "machine_accuracy": float})
    rows = [_correlation(str(c), g) for c, g in units.groupby("condition", sort=False)]
    if units["condition"].nunique() > 1:
        rows.append(_correlation(ALL_CONDITIONS, units))
    observer = str(machine["participant_id"].iloc[0]) if len(machine) else "machine"
    note = observer_note(Path(source)) if source else None
    return HumanVsMachine(observer, source, units.reindex(columns=UNIT_COLUMNS),
                          pd.DataFrame(rows, columns=CORRELATION_COLUMNS), note)


def _correlation(condition: str, units: pd.DataFrame) -> dict[str, Any]:
    n = len(units)
    row: dict[str, Any] = {"condition": condition, "n_units": n}
    x, y = units["human_accuracy"], units["mis"]
    varied = n >= 3 and x.nunique() > 1 and y.nunique() > 1
    for name, test, se in (("pearson", scipy_stats.pearsonr, 1.0),
                           ("spearman", scipy_stats.spearmanr, math.sqrt(1.06))):
        r = p = low = high = math.nan
        if varied:
            result = test(x, y)
            r, p = float(result[0]), float(result[1])
            if n >= 4 and abs(r) < 1:
                half = 1.96 * se / math.sqrt(n - 3)
                low, high = math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)
        key = "pearson_r" if name == "pearson" else "spearman_rho"
        row.update({key: r, f"{name}_ci95_low": low, f"{name}_ci95_high": high,
                    f"{name}_p": p})
    return row


def observer_note(path: Path) -> str | None:
    """What `crowdkit mis` said every output of its observer must say (random weights),
    from machine_trials.json beside the trials."""
    import json

    try:
        about = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    note = about.get("note") if isinstance(about, dict) else None
    return str(note) if note else None


def load_machine(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path, columns=["participant_id", "task_id", "phase", "condition", "unit",
                                          "correct", "p_correct"])


def format_units(table: pd.DataFrame) -> pd.DataFrame:
    """The per-unit table as people read it."""
    if table.empty:
        return table
    return pd.DataFrame({
        "condition": table["condition"], "unit": table["unit"],
        "human accuracy": [f"{v:.3f} ({n})" for v, n in
                           zip(table["human_accuracy"], table["human_trials"], strict=True)],
        "MIS": [f"{v:.3f}" for v in table["mis"]],
        "machine right": [f"{v:.3f} ({n})" for v, n in
                          zip(table["machine_accuracy"], table["machine_trials"],
                              strict=True)],
    })


def format_correlations(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table

    def interval(r: float, low: float, high: float) -> str:
        if math.isnan(r):
            return "–"
        return f"{r:.2f}" if math.isnan(low) else f"{r:.2f} [{low:.2f}, {high:.2f}]"

    return pd.DataFrame({
        "condition": table["condition"], "units": table["n_units"],
        "Pearson r [95 % CI]": [interval(*v) for v in zip(
            table["pearson_r"], table["pearson_ci95_low"], table["pearson_ci95_high"],
            strict=True)],
        "Spearman rho [95 % CI]": [interval(*v) for v in zip(
            table["spearman_rho"], table["spearman_ci95_low"], table["spearman_ci95_high"],
            strict=True)],
    })
