"""The statistics: pure functions of a normalised trials table (see `load.normalize_trials`).

The headline statistic is the one Borowski et al. (ICLR 2021) report: the mean over
participants of each participant's proportion correct on main trials, with a 95 % interval
of 1.96 x SEM across participants (ddof = 1). Averaging per participant first means every
participant weighs the same, however many trials they answered. Nothing here reads files,
draws or prints, so each number can be tested on a hand-made DataFrame.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from scipy import stats

from crowdkit import sources
from crowdkit.analysis.load import parse_by
from crowdkit.errors import CrowdkitError

MAIN, CATCH = "main", "catch"
ALL = "all"
Z95 = 1.96
# Below this many participants an interval says little: tables and figures mark such rows.
FEW_PARTICIPANTS = 5
EXPERT_LEVELS = ("expert", "lay", "unknown")
OUTCOMES = ("all", "correct", "incorrect")
ACCURACY_COLUMNS = ["n_participants", "n_trials", "accuracy", "ci95_low", "ci95_high"]
# What conditions are compared on, and each participant's statistic of it on main trials.
MEASURES = {"accuracy": "mean", "rt_ms": "median", "confidence": "mean"}
COMPARISON_COLUMNS = [
    "measure", "condition_a", "condition_b", "design", "n_a", "n_b", "mean_a", "mean_b",
    "accuracy_a", "accuracy_b", "difference", "t_test", "t", "df", "p_t", "rank_test",
    "rank_statistic", "p_rank", "effect_size_kind", "effect_size",
]


def excluded_rows(trials: pd.DataFrame) -> pd.Series:
    """Which rows an exclusion rule left out. Exclusion is per assignment (collect marks
    every row of an excluded assignment), so a worker's first assignment still counts when
    a later one fails `first_assignment`."""
    if "excluded" not in trials.columns:
        return pd.Series(False, index=trials.index)
    return trials["excluded"].astype(bool)


def included(trials: pd.DataFrame) -> pd.DataFrame:
    """The rows no exclusion rule left out."""
    return trials[~excluded_rows(trials)]


def excluded_participants(trials: pd.DataFrame) -> set[str]:
    """Participants left out entirely: every row of theirs was excluded."""
    everyone = set(trials["participant_id"])
    return everyone - set(included(trials)["participant_id"])


def main_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Included rows' main trials: what accuracy, RT and comparisons are computed on."""
    kept = included(trials)
    return kept[kept["phase"] == MAIN]


class ParticipantCounts(TypedDict):
    """Who is analysed: participants included, excluded, and each rule's exclusions."""

    included: int
    excluded: int
    exclusion_reasons: dict[str, int]


def participant_counts(trials: pd.DataFrame) -> ParticipantCounts:
    """How many participants are analysed and how many were left out, with the reasons.

    `exclusion_reasons` counts each rule once per excluded assignment (per participant when
    the data has no assignment ids), as collect counts them: a participant whose later
    assignment was left out is still analysed, and its reasons are still counted.
    """
    everyone = trials["participant_id"].unique()
    excluded_ids = excluded_participants(trials)
    unit = "assignment_id" if "assignment_id" in trials.columns else "participant_id"
    left_out = trials[excluded_rows(trials)]
    reasons: dict[str, int] = {}
    if not left_out.empty and "exclusion_reasons" in trials.columns:
        per_unit = left_out.groupby(unit)["exclusion_reasons"].first()
        for text in per_unit.fillna("").astype(str):
            for reason in filter(None, (part.strip() for part in text.split(";"))):
                reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "included": len(everyone) - len(excluded_ids),
        "excluded": len(excluded_ids),
        "exclusion_reasons": dict(sorted(reasons.items())),
    }


def mean_ci(values: Sequence[float] | pd.Series) -> tuple[float, float, float]:
    """Mean and its 95 % interval, mean ± 1.96 x SEM (ddof = 1); NaN bounds below n = 2."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if len(array) == 0:
        return math.nan, math.nan, math.nan
    mean = float(array.mean())
    if len(array) < 2:
        return mean, math.nan, math.nan
    half_width = Z95 * float(array.std(ddof=1)) / math.sqrt(len(array))
    return mean, mean - half_width, mean + half_width


def participant_accuracy(trials: pd.DataFrame, groups: Sequence[str] = ()) -> pd.DataFrame:
    """Each participant's proportion correct (and trial count) per group."""
    keys = [*groups, "participant_id"]
    table = trials.groupby(keys, dropna=False, sort=False)["correct"].agg(["mean", "size"])
    return table.rename(columns={"mean": "accuracy", "size": "n_trials"}).reset_index()


def accuracy_table(trials: pd.DataFrame, groups: Sequence[str] = ()) -> pd.DataFrame:
    """Accuracy per group: mean of per-participant proportions correct with its 95 % CI.

    `trials` should already be the trials to count (for example `main_trials(...)`).
    """
    per_participant = participant_accuracy(trials, groups)
    rows = []
    for key, group in _groups(per_participant, groups):
        mean, low, high = mean_ci(group["accuracy"])
        rows.append(
            {
                **dict(zip(groups, key, strict=True)),
                "n_participants": int(group["participant_id"].nunique()),
                "n_trials": int(group["n_trials"].sum()),
                "accuracy": mean,
                "ci95_low": low,
                "ci95_high": high,
            }
        )
    return sort_rows(pd.DataFrame(rows, columns=[*groups, *ACCURACY_COLUMNS]), groups)


def summarize(trials: pd.DataFrame, by: Iterable[str] | None = ()) -> pd.DataFrame:
    """The `summary` table: main-trial accuracy per condition, then split, one row each.

    Rows come in up to three blocks, each with every column so scripts can filter them:
    per condition (expert_level and `by` columns "all"); per condition and expert level
    (when the data has expert_level); per condition and the `by` columns together
    (expert_level "all").
    """
    by = parse_by(by)
    _check_columns(trials, by, "--by")
    main = main_trials(trials)
    _check_has_main_trials(trials, main)
    blocks = [_with_all(accuracy_table(main, ["condition"]), ["expert_level", *by])]
    if "expert_level" in main.columns:
        blocks.append(_with_all(accuracy_table(main, ["condition", "expert_level"]), by))
    if by:
        blocks.append(_with_all(accuracy_table(main, ["condition", *by]), ["expert_level"]))
    columns = ["condition", "expert_level", *by, *ACCURACY_COLUMNS]
    return pd.concat([block[columns] for block in blocks], ignore_index=True)


def catch_accuracy(trials: pd.DataFrame) -> pd.DataFrame:
    """Accuracy on catch trials (an attention check) per condition and over all conditions."""
    kept = included(trials)
    catch = kept[kept["phase"] == CATCH]
    if catch.empty:
        return pd.DataFrame(columns=["condition", *ACCURACY_COLUMNS])
    per_condition = accuracy_table(catch, ["condition"])
    if per_condition["condition"].nunique() < 2:
        return per_condition
    overall = accuracy_table(catch).assign(condition=ALL)
    return pd.concat([per_condition, overall[per_condition.columns]], ignore_index=True)


def rt_and_confidence(trials: pd.DataFrame) -> pd.DataFrame:
    """Reaction time and confidence per condition, on all, correct and incorrect main trials.

    RT is each participant's median (robust to the odd long pause), confidence each
    participant's mean; both are then averaged over participants with a 95 % CI.
    """
    measures = [column for column in ("rt_ms", "confidence") if column in trials.columns]
    columns = ["condition", "outcome", "n_participants", "n_trials"]
    for measure in ("rt_ms", "confidence"):
        columns += [measure, f"{measure}_ci95_low", f"{measure}_ci95_high"]
    main = main_trials(trials)
    if not measures or main.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for outcome in OUTCOMES:
        subset = main if outcome == ALL else main[main["correct"] == (outcome == "correct")]
        for (condition,), group in _groups(subset, ["condition"]):
            row: dict[str, Any] = {
                "condition": condition,
                "outcome": outcome,
                "n_participants": int(group["participant_id"].nunique()),
                "n_trials": len(group),
            }
            for measure in ("rt_ms", "confidence"):
                if measure not in measures:
                    row.update({measure: math.nan})
                    continue
                how = "median" if measure == "rt_ms" else "mean"
                per_participant = group.groupby("participant_id")[measure].agg(how)
                mean, low, high = mean_ci(per_participant)
                row.update(
                    {measure: mean, f"{measure}_ci95_low": low, f"{measure}_ci95_high": high}
                )
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    table["outcome"] = pd.Categorical(table["outcome"], OUTCOMES, ordered=True)
    table = sort_rows(table, ["condition"]).sort_values(["outcome"], kind="stable")
    table["outcome"] = table["outcome"].astype(str)
    return table.reset_index(drop=True)


def infer_design(trials: pd.DataFrame) -> str:
    """Within participants when each did several conditions, between when each did one.

    Studies that mix the two are "mixed"; comparisons then pair the participants who did
    both conditions of a pair (see `compare_conditions`).
    """
    per_participant = main_trials(trials).groupby("participant_id")["condition"].nunique()
    if per_participant.empty or (per_participant == 1).all():
        return "between"
    return "within" if (per_participant > 1).all() else "mixed"


def compare_conditions(trials: pd.DataFrame, by: Iterable[str] | None = ()) -> pd.DataFrame:
    """Every pair of conditions compared on each measure of main trials: accuracy (each
    participant's proportion correct), reaction time (each participant's median `rt_ms`) and
    confidence (each participant's mean), the last two where the data has them.

    When at least two participants did both conditions of a pair the comparison is paired
    (paired t-test, Wilcoxon signed-rank, Cohen's d_z = mean difference / SD of differences)
    over those participants. Otherwise it is unpaired (Welch's t-test, Mann-Whitney U,
    Cohen's d with the pooled SD). p-values are two-sided and not corrected for the number
    of pairs. With `by` columns, the pairs are compared again within each combination of
    their values (rows whose `by` columns are "all" are the unsplit comparisons).
    """
    by = parse_by(by)
    _check_columns(trials, by, "--by")
    main = main_trials(trials)
    rows = []
    for measure in measures(main):
        for split in ([], by) if by else ([],):
            values = participant_measure(main, measure, ["condition", *split])
            for key, group in _groups(values, split):
                wide = group.pivot(index="participant_id", columns="condition",
                                   values="value")
                conditions = sources.order(list(group["condition"].unique()))
                for first, second in itertools.combinations(conditions, 2):
                    pair = _compare_pair(wide, first, second)
                    if measure != "accuracy":
                        pair.update(accuracy_a=math.nan, accuracy_b=math.nan)
                    rows.append({"measure": measure, **dict.fromkeys(by, ALL),
                                 **dict(zip(split, key, strict=True)), **pair})
    columns = [*COMPARISON_COLUMNS[:3], *by, *COMPARISON_COLUMNS[3:]]
    return pd.DataFrame(rows, columns=columns)


def measures(main: pd.DataFrame) -> list[str]:
    """The measures a table of main trials has values of (accuracy whenever it has rows)."""
    if main.empty:
        return []
    return ["accuracy", *(m for m in MEASURES
                          if m != "accuracy" and m in main.columns and main[m].notna().any())]


def participant_measure(main: pd.DataFrame, measure: str, groups: Sequence[str]
                        ) -> pd.DataFrame:
    """Each participant's statistic of `measure` (MEASURES) per group, as column `value`."""
    column = "correct" if measure == "accuracy" else measure
    rows = main[main[column].notna()]
    if measure == "accuracy":
        rows = rows.assign(correct=rows["correct"].astype(float))
    table = rows.groupby([*groups, "participant_id"], dropna=False, sort=False)[column]
    return table.agg(MEASURES[measure]).rename("value").reset_index()


def _compare_pair(wide: pd.DataFrame, first: str, second: str) -> dict[str, Any]:
    a, b = wide[first].dropna(), wide[second].dropna()
    both = a.index.intersection(b.index)
    with warnings.catch_warnings():
        # Identical scores give zero variance; scipy warns and returns NaN, which we report.
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(both) >= 2:
            return _paired(first, second, a[both].to_numpy(), b[both].to_numpy())
        return _unpaired(first, second, a.to_numpy(), b.to_numpy())


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """a - b on the same participants: the paired t-test, Wilcoxon's signed-rank test and
    Cohen's d_z. Identical values give NaN statistics (reported as such), not warnings."""
    differences = a - b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_result = stats.ttest_rel(a, b)
        try:
            rank = stats.wilcoxon(a, b)
            rank_statistic, p_rank = float(rank.statistic), float(rank.pvalue)
        except ValueError:  # every difference is zero: nothing to rank
            rank_statistic, p_rank = math.nan, math.nan
    sd = float(np.std(differences, ddof=1))
    return {"difference": float(differences.mean()), "t": float(t_result.statistic),
            "df": len(a) - 1, "p_t": float(t_result.pvalue), "rank_statistic": rank_statistic,
            "p_rank": p_rank, "effect_size_kind": "cohen_d_z",
            "effect_size": float(differences.mean()) / sd if sd > 0 else math.nan}


def _paired(first: str, second: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    tests = paired_tests(a, b)
    return {
        "condition_a": first,
        "condition_b": second,
        "design": "within",
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "accuracy_a": float(a.mean()),
        "accuracy_b": float(b.mean()),
        "difference": tests["difference"],
        "t_test": "paired",
        "t": tests["t"],
        "df": tests["df"],
        "p_t": tests["p_t"],
        "rank_test": "wilcoxon",
        "rank_statistic": tests["rank_statistic"],
        "p_rank": tests["p_rank"],
        "effect_size_kind": tests["effect_size_kind"],
        "effect_size": tests["effect_size"],
    }


def _unpaired(first: str, second: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    result: dict[str, Any] = {
        "condition_a": first,
        "condition_b": second,
        "design": "between",
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": float(a.mean()) if len(a) else math.nan,
        "mean_b": float(b.mean()) if len(b) else math.nan,
        "accuracy_a": float(a.mean()) if len(a) else math.nan,
        "accuracy_b": float(b.mean()) if len(b) else math.nan,
        "difference": float(a.mean() - b.mean()) if len(a) and len(b) else math.nan,
        "t_test": "welch",
        "t": math.nan,
        "df": math.nan,
        "p_t": math.nan,
        "rank_test": "mann-whitney",
        "rank_statistic": math.nan,
        "p_rank": math.nan,
        "effect_size_kind": "cohen_d",
        "effect_size": math.nan,
    }
    if len(a) < 2 or len(b) < 2:
        return result
    t_result = stats.ttest_ind(a, b, equal_var=False)
    rank = stats.mannwhitneyu(a, b, alternative="two-sided")
    pooled_var = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (
        len(a) + len(b) - 2
    )
    result.update(
        t=float(t_result.statistic),
        df=float(t_result.df),
        p_t=float(t_result.pvalue),
        rank_statistic=float(rank.statistic),
        p_rank=float(rank.pvalue),
        effect_size=result["difference"] / math.sqrt(pooled_var) if pooled_var > 0 else math.nan,
    )
    return result



# --------------------------------------------------------------------------- ordering helpers


def _groups(table: pd.DataFrame, groups: Sequence[str]) -> Iterable[tuple[tuple, pd.DataFrame]]:
    if not groups:
        yield (), table
        return
    for key, group in table.groupby(list(groups), dropna=False, sort=False):
        yield (key if isinstance(key, tuple) else (key,)), group


def _natural_key(value: object) -> tuple[object, ...]:
    """Sort "layer_2" before "layer_10", numbers numerically, missing values last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2,)
    if isinstance(value, int | float | np.number):
        return (0, float(value))
    parts = re.split(r"(\d+)", str(value))
    return (1, tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts))

def _sort_key(column: str, values: pd.Series) -> Callable[[object], tuple[object, ...]]:
    if column == "condition":
        ordered = sources.order(list(values))
        order: dict[object, int] = {c: index for index, c in enumerate(ordered)}
        return lambda value: (order.get(value, len(order)),)
    if column == "expert_level":
        return lambda value: (
            (EXPERT_LEVELS.index(value),) if value in EXPERT_LEVELS else (9, str(value))
        )
    return _natural_key


def sort_rows(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Rows ordered by `columns`, the first column first.

    Conditions come in the source registry's order (crowdkit.sources.order), expert levels
    as expert, lay, unknown, and everything else naturally (layer_2 before layer_10).
    """
    if table.empty or not columns:
        return table.reset_index(drop=True)
    keys = [_sort_key(column, table[column]) for column in columns]
    order = sorted(
        range(len(table)),
        key=lambda i: tuple(
            key(table[column].iloc[i]) for key, column in zip(keys, columns, strict=True)
        ),
    )
    return table.iloc[order].reset_index(drop=True)


def _with_all(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return table.assign(**{column: ALL for column in columns}) if columns else table


def _check_columns(trials: pd.DataFrame, columns: Sequence[str], option: str) -> None:
    unknown = [column for column in columns if column not in trials.columns]
    if unknown:
        raise CrowdkitError(
            f"{option}: no column {unknown[0]!r} in the trials; "
            f"columns are {', '.join(map(str, trials.columns))}"
        )


def everyone_excluded(trials: pd.DataFrame) -> bool:
    """True when the exclusion rules left out every participant: there is data, and who
    was left out and why is worth a report, but no accuracy to compute."""
    counts = participant_counts(trials)
    return counts["included"] == 0 and counts["excluded"] > 0


def _check_has_main_trials(trials: pd.DataFrame, main: pd.DataFrame) -> None:
    if not main.empty or everyone_excluded(trials) or (trials["phase"] == "rating").any():
        return
    phases = ", ".join(sorted(trials["phase"].unique())) or "none"
    raise CrowdkitError(f"no main trials to analyse (phase == 'main'); phases found: {phases}")

