"""Accuracy tables with confidence intervals, condition comparisons, figures and a report.

Everything here works on the tidy trials table (docs/analysis.md, DESIGN.md "Tidy trials"),
so a study's own data/trials.parquet and a published data set mapped to the same columns go
through exactly the same code. The headline statistic is the one Borowski et al. (ICLR 2021)
report: the mean over participants of each participant's proportion correct on main trials,
with a 95 % interval of 1.96 x SEM across participants (ddof = 1). Averaging per participant
first means every participant weighs the same, however many trials they answered.

The functions are pure (DataFrame in, DataFrame out) except `load_trials` (reads a file) and
`write_report` (writes figures and report.html); the CLI only glues them together.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.files import write_atomically

REQUIRED_COLUMNS = ("participant_id", "condition", "phase", "correct")
MAIN, CATCH = "main", "catch"
ALL = "all"
CHANCE = 0.5
Z95 = 1.96
KNOWN_CONDITIONS = ("natural", "synthetic", "none")
EXPERT_LEVELS = ("expert", "lay", "unknown")
OUTCOMES = ("all", "correct", "incorrect")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})
ACCURACY_COLUMNS = ["n_participants", "n_trials", "accuracy", "ci95_low", "ci95_high"]


# --------------------------------------------------------------------------- loading


def trials_file(source: Path | str) -> Path:
    """The trials file behind `source`: the file itself, or a study's data/trials.parquet.

    A study directory falls back to data/trials.csv when the Parquet file is absent, so a
    table edited in a spreadsheet and saved as CSV still works.
    """
    source = Path(source)
    if source.is_dir():
        for name in ("trials.parquet", "trials.csv"):
            candidate = source / "data" / name
            if candidate.is_file():
                return candidate
        raise CrowdkitError(
            f"{source / 'data'}: no trials.parquet or trials.csv; "
            f"run `crowdkit collect {source}` first"
        )
    if not source.is_file():
        raise CrowdkitError(f"{source}: no such file or directory")
    return source


def load_trials(source: Path | str) -> pd.DataFrame:
    """Read a tidy trials table (CSV or Parquet, or a study directory) and normalise it.

    Raises ConfigError with one line naming the file and the problem: a missing required
    column, an unreadable file, or values that cannot be what their column says.
    """
    path = trials_file(source)
    return normalize_trials(_read_table(path), str(path))


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Only empty cells are missing: a condition called "none" or "NA" stays a string.
            return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot read it as {suffix[1:]}: {first_line}") from exc
    raise ConfigError(f"{path}: expected a .csv or .parquet trials file")


def normalize_trials(frame: pd.DataFrame, name: str = "trials") -> pd.DataFrame:
    """Check the required columns and give each known column one type.

    `correct` and `excluded` arrive as bools from Parquet but as "True"/"False" (or 1/0)
    from CSV; ids arrive as numbers from published data sets. After this, ids and labels
    are strings, `correct` and `excluded` are bools, and `rt_ms`/`confidence` are numbers.
    """
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        names = ", ".join(repr(column) for column in missing)
        plural = "s" if len(missing) > 1 else ""
        raise ConfigError(
            f"{name}: missing required column{plural} {names} "
            f"(analysis needs {', '.join(REQUIRED_COLUMNS)})"
        )
    trials = frame.copy()
    for column in ("participant_id", "condition", "phase"):
        empty = trials[column].isna() | (trials[column].astype(str).str.strip() == "")
        if empty.any():
            raise ConfigError(f"{name}: column {column!r} is empty on {int(empty.sum())} rows")
        trials[column] = trials[column].astype(str).str.strip()
    trials["phase"] = trials["phase"].str.lower()
    trials["correct"] = _as_bool(trials["correct"], "correct", name, missing_as=None)
    if "excluded" in trials.columns:
        trials["excluded"] = _as_bool(trials["excluded"], "excluded", name, missing_as=False)
    else:
        trials["excluded"] = False
    if "expert_level" in trials.columns:
        levels = trials["expert_level"].astype("object").where(trials["expert_level"].notna())
        trials["expert_level"] = levels.fillna("unknown").astype(str).str.strip().str.lower()
    for column in ("rt_ms", "confidence"):
        if column in trials.columns:
            try:
                trials[column] = pd.to_numeric(trials[column])
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{name}: column {column!r} holds non-numbers: {exc}") from exc
    return trials


def _as_bool(values: pd.Series, column: str, name: str, missing_as: bool | None) -> pd.Series:
    """Parse a bool column that may have passed through CSV; refuse anything ambiguous."""
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)

    def parse(value: Any) -> bool | None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return missing_as
        if isinstance(value, bool | np.bool_):
            return bool(value)
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        if word == "" and missing_as is not None:
            return missing_as
        return None

    parsed = values.map(parse)
    bad = parsed.isna()
    if bad.any():
        example = values[bad].iloc[0]
        raise ConfigError(
            f"{name}: column {column!r} must be true or false, but {int(bad.sum())} rows "
            f"are not (first: {example!r})"
        )
    return parsed.astype(bool)


def parse_by(values: Iterable[str] | None) -> list[str]:
    """`--by layer,n_references --by batch` -> ["layer", "n_references", "batch"].

    condition and expert_level are left out: every summary is already split by them.
    """
    columns: list[str] = []
    for value in values or ():
        for column in value.split(","):
            column = column.strip()
            if column and column not in columns and column not in ("condition", "expert_level"):
                columns.append(column)
    return columns


# --------------------------------------------------------------------------- statistics


def excluded_participants(trials: pd.DataFrame) -> set[str]:
    """Participants with any trial marked `excluded`: they failed an exclusion rule."""
    if "excluded" not in trials.columns:
        return set()
    return set(trials.loc[trials["excluded"].astype(bool), "participant_id"])


def included(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials of participants who passed every exclusion rule."""
    return trials[~trials["participant_id"].isin(excluded_participants(trials))]


def main_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Included participants' main trials: what accuracy, RT and comparisons are computed on."""
    kept = included(trials)
    return kept[kept["phase"] == MAIN]


def participant_counts(trials: pd.DataFrame) -> dict[str, Any]:
    """How many participants are analysed and how many were left out, with the reasons."""
    everyone = trials["participant_id"].unique()
    excluded_ids = excluded_participants(trials)
    reasons: dict[str, int] = {}
    if excluded_ids and "exclusion_reasons" in trials.columns:
        per_participant = (
            trials[trials["participant_id"].isin(excluded_ids)]
            .groupby("participant_id")["exclusion_reasons"]
            .first()
        )
        for text in per_participant.fillna("").astype(str):
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
    return _sorted(pd.DataFrame(rows, columns=[*groups, *ACCURACY_COLUMNS]), groups)


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
    table = _sorted(table, ["condition"]).sort_values(["outcome"], kind="stable")
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


def compare_conditions(trials: pd.DataFrame) -> pd.DataFrame:
    """Every pair of conditions compared on per-participant main-trial accuracy.

    When at least two participants did both conditions of a pair the comparison is paired
    (paired t-test, Wilcoxon signed-rank, Cohen's d_z = mean difference / SD of differences)
    over those participants. Otherwise it is unpaired (Welch's t-test, Mann-Whitney U,
    Cohen's d with the pooled SD). p-values are two-sided and not corrected for the number
    of pairs.
    """
    accuracy = participant_accuracy(main_trials(trials), ["condition"])
    wide = accuracy.pivot(index="participant_id", columns="condition", values="accuracy")
    conditions = _order_conditions(accuracy["condition"].unique())
    rows = [
        _compare_pair(wide, first, second)
        for first, second in itertools.combinations(conditions, 2)
    ]
    columns = [
        "condition_a",
        "condition_b",
        "design",
        "n_a",
        "n_b",
        "accuracy_a",
        "accuracy_b",
        "difference",
        "t_test",
        "t",
        "df",
        "p_t",
        "rank_test",
        "rank_statistic",
        "p_rank",
        "effect_size_kind",
        "effect_size",
    ]
    return pd.DataFrame(rows, columns=columns)


def _compare_pair(wide: pd.DataFrame, first: str, second: str) -> dict[str, Any]:
    a, b = wide[first].dropna(), wide[second].dropna()
    both = a.index.intersection(b.index)
    with warnings.catch_warnings():
        # Identical scores give zero variance; scipy warns and returns NaN, which we report.
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(both) >= 2:
            return _paired(first, second, a[both].to_numpy(), b[both].to_numpy())
        return _unpaired(first, second, a.to_numpy(), b.to_numpy())


def _paired(first: str, second: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    differences = a - b
    t_result = stats.ttest_rel(a, b)
    sd = float(np.std(differences, ddof=1))
    try:
        rank = stats.wilcoxon(a, b)
        rank_statistic, p_rank = float(rank.statistic), float(rank.pvalue)
    except ValueError:  # every difference is zero: nothing to rank
        rank_statistic, p_rank = math.nan, math.nan
    return {
        "condition_a": first,
        "condition_b": second,
        "design": "within",
        "n_a": len(a),
        "n_b": len(b),
        "accuracy_a": float(a.mean()),
        "accuracy_b": float(b.mean()),
        "difference": float(differences.mean()),
        "t_test": "paired",
        "t": float(t_result.statistic),
        "df": len(a) - 1,
        "p_t": float(t_result.pvalue),
        "rank_test": "wilcoxon",
        "rank_statistic": rank_statistic,
        "p_rank": p_rank,
        "effect_size_kind": "cohen_d_z",
        "effect_size": float(differences.mean()) / sd if sd > 0 else math.nan,
    }


def _unpaired(first: str, second: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    result: dict[str, Any] = {
        "condition_a": first,
        "condition_b": second,
        "design": "between",
        "n_a": len(a),
        "n_b": len(b),
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


# --------------------------------------------------------------------------- the whole analysis


@dataclass(frozen=True)
class Analysis:
    """Everything `crowdkit analyze` reports, computed once and rendered as JSON, text or HTML."""

    source: str
    by: list[str]
    design: str
    participants: dict[str, Any]
    summary: pd.DataFrame
    catch: pd.DataFrame
    rt_confidence: pd.DataFrame
    comparisons: pd.DataFrame
    by_layer: pd.DataFrame | None
    participant_accuracy: pd.DataFrame

    def to_json(self, report: Path | None = None) -> dict[str, Any]:
        """A JSON-ready dict: NaN becomes null and numpy numbers become plain numbers."""
        return {
            "source": self.source,
            "design": self.design,
            "by": list(self.by),
            "participants": self.participants,
            "summary": records(self.summary),
            "catch": records(self.catch),
            "rt_confidence": records(self.rt_confidence),
            "comparisons": records(self.comparisons),
            "report": str(report) if report else None,
        }


def analyze(trials: pd.DataFrame, by: Iterable[str] | None = (), source: str = "") -> Analysis:
    """Run every statistic on a normalised trials table (see `load_trials`)."""
    by = parse_by(by)
    summary = summarize(trials, by)
    main = main_trials(trials)
    return Analysis(
        source=source,
        by=by,
        design=infer_design(trials),
        participants=participant_counts(trials),
        summary=summary,
        catch=catch_accuracy(trials),
        rt_confidence=rt_and_confidence(trials),
        comparisons=compare_conditions(trials),
        by_layer=accuracy_table(main, ["condition", "layer"]) if "layer" in main else None,
        participant_accuracy=_sorted(participant_accuracy(main, ["condition"]), ["condition"]),
    )


def analyze_file(source: Path | str, by: Iterable[str] | None = ()) -> Analysis:
    """`crowdkit analyze`: read a trials file (or a study's) and analyse it, naming the file."""
    path = trials_file(source)
    return analyze(load_trials(path), by=by, source=str(path))


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, NaN as None, ready for json.dumps."""
    return [
        {key: _plain(value) for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


# --------------------------------------------------------------------------- ordering helpers


def _groups(table: pd.DataFrame, groups: Sequence[str]) -> Iterable[tuple[tuple, pd.DataFrame]]:
    if not groups:
        yield (), table
        return
    for key, group in table.groupby(list(groups), dropna=False, sort=False):
        yield (key if isinstance(key, tuple) else (key,)), group


def _natural_key(value: Any) -> tuple:
    """Sort "layer_2" before "layer_10", numbers numerically, missing values last."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2,)
    if isinstance(value, int | float | np.number):
        return (0, float(value))
    parts = re.split(r"(\d+)", str(value))
    return (1, tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts))


def _order_conditions(conditions: Iterable[str]) -> list[str]:
    """The paper's order first (natural, synthetic, none), then the others as they appear."""
    seen = list(dict.fromkeys(conditions))
    known = [condition for condition in KNOWN_CONDITIONS if condition in seen]
    return known + [condition for condition in seen if condition not in KNOWN_CONDITIONS]


def _sort_key(column: str, values: pd.Series) -> Callable[[Any], Any]:
    if column == "condition":
        order = {condition: index for index, condition in enumerate(_order_conditions(values))}
        return lambda value: (order.get(value, len(order)),)
    if column == "expert_level":
        return lambda value: (
            (EXPERT_LEVELS.index(value),) if value in EXPERT_LEVELS else (9, str(value))
        )
    return _natural_key


def _sorted(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
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


def _check_has_main_trials(trials: pd.DataFrame, main: pd.DataFrame) -> None:
    if not main.empty:
        return
    counts = participant_counts(trials)
    if counts["included"] == 0 and counts["excluded"]:
        raise CrowdkitError(
            f"all {counts['excluded']} participants are excluded; there is nothing to analyse"
        )
    phases = ", ".join(sorted(trials["phase"].unique())) or "none"
    raise CrowdkitError(f"no main trials to analyse (phase == 'main'); phases found: {phases}")


# --------------------------------------------------------------------------- text output

_LABELS = {"condition", "expert_level", "outcome", "versus", "tests"}  # left-aligned columns


def print_tables(analysis: Analysis, report: Path | None = None, console: Any = None) -> None:
    """The human-readable output of `crowdkit analyze`: rich tables on the terminal."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    counts = analysis.participants
    console.print(
        f"[bold]{escape(analysis.source)}[/bold]: {counts['included']} participants analysed, "
        f"{counts['excluded']} excluded{_reasons_text(counts)}; "
        f"design: {analysis.design} participants",
        soft_wrap=True,
    )
    for title, table in _text_tables(analysis):
        if table.empty:
            continue
        rich_table = Table(title=title, title_justify="left")
        for column in table.columns:
            rich_table.add_column(column, justify="left" if column in _LABELS else "right")
        for row in table.itertuples(index=False):
            rich_table.add_row(*(escape(str(cell)) for cell in row))
        console.print(rich_table)
    if report:
        console.print(f"report: {escape(str(report))}")


def _reasons_text(counts: dict[str, Any]) -> str:
    reasons = counts.get("exclusion_reasons") or {}
    return f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())})" if reasons else ""


def _summary_parts(analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The blocks of `summary` (see `summarize`): per condition, per expert level, per --by."""
    summary = analysis.summary
    overall = summary["expert_level"] == ALL
    plain = overall.copy()
    for column in analysis.by:
        plain &= summary[column] == ALL
    return summary[plain], summary[~overall], summary[overall & ~plain]


def _text_tables(analysis: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """The tables shown on the terminal and in report.html, formatted for reading."""
    plain, experts, by_rows = _summary_parts(analysis)
    return [
        (
            "Accuracy on main trials (mean of participants' proportion correct, 95 % CI)",
            _format_accuracy(plain[["condition", *ACCURACY_COLUMNS]]),
        ),
        (
            "Accuracy by expert level",
            _format_accuracy(experts[["condition", "expert_level", *ACCURACY_COLUMNS]]),
        ),
        (
            f"Accuracy by {', '.join(analysis.by)}",
            _format_accuracy(by_rows[["condition", *analysis.by, *ACCURACY_COLUMNS]]),
        ),
        ("Catch-trial accuracy", _format_accuracy(analysis.catch)),
        (
            "Reaction time (median per participant) and confidence, main trials",
            _format_rt_confidence(analysis.rt_confidence),
        ),
        (comparison_title(analysis.comparisons), _format_comparisons(analysis.comparisons)),
    ]


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _interval(low: Any, high: Any, digits: int = 3) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _format_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    labels = [column for column in table.columns if column not in ACCURACY_COLUMNS]
    rows = [
        {
            **{column: str(row[column]) for column in labels},
            "participants": int(row["n_participants"]),
            "trials": int(row["n_trials"]),
            "accuracy": _number(row["accuracy"]),
            "95 % CI": _interval(row["ci95_low"], row["ci95_high"]),
        }
        for _, row in table.iterrows()
    ]
    return pd.DataFrame(rows, columns=[*labels, "participants", "trials", "accuracy", "95 % CI"])


def _format_rt_confidence(table: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {
            "condition": row["condition"],
            "outcome": row["outcome"],
            "participants": int(row["n_participants"]),
            "trials": int(row["n_trials"]),
            "RT ms [95 % CI]": _with_interval(row, "rt_ms", 0),
            "confidence [95 % CI]": _with_interval(row, "confidence", 2),
        }
        for _, row in table.iterrows()
    ]
    return pd.DataFrame(rows)


def _with_interval(row: pd.Series, measure: str, digits: int) -> str:
    value = _number(row[measure], digits)
    interval = _interval(row.get(f"{measure}_ci95_low"), row.get(f"{measure}_ci95_high"), digits)
    return value if interval == "–" else f"{value} {interval}"


def comparison_title(table: pd.DataFrame) -> str:
    """Name the tests in the title when every pair used the same kind, else per row."""
    designs = set(table["design"])
    if designs == {"within"}:
        return "Paired comparisons (t-test and Wilcoxon signed-rank; effect size Cohen's d_z)"
    if designs == {"between"}:
        return "Unpaired comparisons (Welch's t-test and Mann-Whitney U; effect size Cohen's d)"
    return "Comparisons (paired where participants did both conditions, otherwise unpaired)"


def _format_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    mixed = len(set(table["design"])) > 1
    rows = []
    for _, row in table.iterrows():
        paired = row["design"] == "within"
        formatted = {"versus": f"{row['condition_a']} − {row['condition_b']}"}
        if mixed:
            formatted["tests"] = f"{row['t_test']} t, {row['rank_test']}"
        formatted.update(
            {
                "n": str(row["n_a"]) if paired else f"{row['n_a']} vs {row['n_b']}",
                "difference": _number(row["difference"]),
                "t (df)": f"{_number(row['t'], 2)} ({_number(row['df'], 0 if paired else 1)})",
                "p t": _p_value(row["p_t"]),
                "p rank": _p_value(row["p_rank"]),
            }
        )
        effect = _number(row["effect_size"], 2)
        if mixed:
            formatted["effect size"] = f"{'d_z' if paired else 'd'} = {effect}"
        else:
            formatted["d_z" if paired else "d"] = effect
        rows.append(formatted)
    return pd.DataFrame(rows)


def _p_value(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


# --------------------------------------------------------------------------- figures and report

CONDITION_COLORS = {"natural": "#3b75af", "synthetic": "#ef8636", "none": "#8c8c8c"}
EXTRA_COLORS = ("#519e3e", "#c53a32", "#8d69b8", "#84584e", "#d57dbe", "#bcbc45", "#58bbcc")


def _color(condition: str, conditions: Sequence[str]) -> str:
    if condition in CONDITION_COLORS:
        return CONDITION_COLORS[condition]
    others = [c for c in conditions if c not in CONDITION_COLORS]
    return (
        EXTRA_COLORS[others.index(condition) % len(EXTRA_COLORS)]
        if condition in others
        else "#555555"
    )


@dataclass(frozen=True)
class FigureFile:
    """One figure written as PNG and SVG, and the PNG's bytes for embedding in the report."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path
    png_bytes: bytes


def write_report(analysis: Analysis, out_dir: Path | str) -> Path:
    """Write the figures (PNG and SVG), analysis.json and a self-contained report.html.

    The report embeds its figures as data: URIs and its CSS inline, so it can be mailed or
    archived as one file and opens without any network access.
    """
    from rich.console import Console
    from rich.progress import Progress

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CrowdkitError(f"{out_dir}: cannot create the report directory: {exc}") from exc
    makers = [
        _figure_accuracy_by_condition,
        _figure_accuracy_by_layer,
        _figure_accuracy_by_expert_level,
        _figure_rt_confidence,
    ]
    figures: list[FigureFile] = []
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("drawing figures", total=len(makers))
        for make in makers:
            figure = make(analysis, out_dir)
            if figure is not None:
                figures.append(figure)
            progress.advance(task)
    write_atomically(
        out_dir / "analysis.json", json.dumps(analysis.to_json(), indent=2, allow_nan=False) + "\n"
    )
    report = out_dir / "report.html"
    write_atomically(report, render_report(analysis, figures))
    return report


def render_report(analysis: Analysis, figures: Sequence[FigureFile]) -> str:
    """report.html as a string: the tables and the figures, with no external resource."""
    import jinja2

    template_text = resources.files("crowdkit").joinpath("report.html.j2").read_text("utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    titled = [(title, table) for title, table in _text_tables(analysis) if not table.empty]
    if analysis.by_layer is not None and "layer" not in analysis.by:
        titled.insert(1, ("Accuracy by layer", _format_accuracy(analysis.by_layer)))
    labels = _LABELS | {"layer", *analysis.by}
    tables = [
        {
            "title": title,
            "columns": [(column, column in labels) for column in table.columns],
            "rows": [
                list(zip(map(str, row), (c in labels for c in table.columns), strict=True))
                for row in table.itertuples(index=False)
            ],
        }
        for title, table in titled
    ]
    return environment.from_string(template_text).render(
        analysis=analysis,
        reasons=_reasons_text(analysis.participants),
        tables=tables,
        figures=[
            {
                "title": f.title,
                "caption": f.caption,
                "name": f.name,
                "src": "data:image/png;base64," + base64.b64encode(f.png_bytes).decode("ascii"),
            }
            for f in figures
        ],
    )


def _new_figure(width: float, height: float, columns: int = 1):
    # Figure objects (not pyplot) render with the Agg canvas and leave no global state.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, axes


def _save(figure, out_dir: Path, name: str, title: str, caption: str) -> FigureFile:
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150)
    png.write_bytes(buffer.getvalue())
    figure.savefig(svg, format="svg")
    return FigureFile(name, title, caption, png, svg, buffer.getvalue())


def _accuracy_axis(axis) -> None:
    """Proportion correct from 0 to 1 with the chance line, on every accuracy figure."""
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("proportion correct")
    axis.axhline(CHANCE, color="black", linestyle="--", linewidth=1, zorder=0)
    axis.text(
        1.0, CHANCE, " chance", transform=axis.get_yaxis_transform(), va="center", ha="left",
        fontsize=8,
    )
    axis.spines[["top", "right"]].set_visible(False)


def _error(table: pd.DataFrame, measure: str) -> np.ndarray:
    """Error bar lengths below and above `measure` from its 95 % CI columns (0 when absent)."""
    prefix = "" if measure == "accuracy" else f"{measure}_"
    below = (table[measure] - table[f"{prefix}ci95_low"]).fillna(0).to_numpy(dtype=float)
    above = (table[f"{prefix}ci95_high"] - table[measure]).fillna(0).to_numpy(dtype=float)
    return np.vstack([below, above])


def _bars(axis, x, rows: pd.DataFrame, measure: str, *, capsize: float, **style) -> None:
    """Bars of `measure` with their 95 % CIs as error bars; a missing value draws nothing."""
    axis.bar(x, rows[measure].fillna(0), **style)
    axis.errorbar(
        x, rows[measure], yerr=_error(rows, measure), fmt="none", ecolor="black",
        capsize=capsize, linewidth=1,
    )


def _grouped_bars(
    axis, table: pd.DataFrame, measure: str, column: str, groups: Sequence[str],
    alphas: Sequence[float], conditions: Sequence[str],
) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """One bar per condition and group (`column` value), shaded by group; the bars' x and rows."""
    width = 0.8 / len(groups)
    drawn = []
    for number, (group, alpha) in enumerate(zip(groups, alphas, strict=True)):
        rows = table[table[column] == group].set_index("condition").reindex(conditions)
        x = np.arange(len(conditions)) + (number - (len(groups) - 1) / 2) * width
        _bars(
            axis, x, rows, measure, capsize=3, width=width * 0.95, label=group, alpha=alpha,
            color=[_color(c, conditions) for c in conditions], edgecolor="black", linewidth=0.5,
        )
        drawn.append((x, rows))
    axis.set_xticks(range(len(conditions)), conditions)
    axis.spines[["top", "right"]].set_visible(False)
    return drawn


def _figure_accuracy_by_condition(analysis: Analysis, out_dir: Path) -> FigureFile:
    """The paper's Figure 1B: bars of accuracy per condition, CIs, participants, chance."""
    rows = _summary_parts(analysis)[0]
    conditions = list(rows["condition"])
    figure, (axis,) = _new_figure(1.2 + 1.1 * len(conditions), 3.6)
    positions = np.arange(len(conditions))
    _bars(
        axis, positions, rows, "accuracy", capsize=4, width=0.6, alpha=0.85,
        color=[_color(c, conditions) for c in conditions],
    )
    jitter = np.random.default_rng(0)
    per_participant = analysis.participant_accuracy
    for position, condition in zip(positions, conditions, strict=True):
        scores = per_participant.loc[per_participant["condition"] == condition, "accuracy"]
        offsets = jitter.uniform(-0.12, 0.12, len(scores))
        axis.scatter(
            position + offsets, scores, s=12, color="black", alpha=0.5, zorder=3, linewidths=0
        )
    axis.set_xticks(
        positions,
        [f"{c}\n(n={n})" for c, n in zip(conditions, rows["n_participants"], strict=True)],
    )
    _accuracy_axis(axis)
    caption = _caption(rows) + " Dots: participants; error bars: 95 % CI (1.96 × SEM)."
    return _save(figure, out_dir, "accuracy_by_condition", "Accuracy per condition", caption)


def _figure_accuracy_by_layer(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    table = analysis.by_layer
    if table is None or table.empty:
        return None
    layers = list(dict.fromkeys(table["layer"]))
    conditions = _order_conditions(table["condition"])
    figure, (axis,) = _new_figure(max(4.0, 0.6 * len(layers) + 2), 3.6)
    positions = {layer: index for index, layer in enumerate(layers)}
    offset_step = 0.08
    for number, condition in enumerate(conditions):
        rows = table[table["condition"] == condition]
        x = np.array([positions[layer] for layer in rows["layer"]], dtype=float)
        x += (number - (len(conditions) - 1) / 2) * offset_step
        axis.errorbar(
            x,
            rows["accuracy"],
            yerr=_error(rows, "accuracy"),
            marker="o",
            markersize=4,
            capsize=3,
            linewidth=1.2,
            label=condition,
            color=_color(condition, conditions),
        )
    labels = [str(layer) for layer in layers]
    slanted = len(layers) > 6 or max(len(label) for label in labels) > 10
    axis.set_xticks(range(len(layers)), labels, rotation=30 if slanted else 0,
                    ha="right" if slanted else "center", fontsize=8 if slanted else None)
    axis.set_xlabel("layer")
    _accuracy_axis(axis)
    axis.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.08, 1.0))
    caption = _caption(table) + " Error bars: 95 % CI."
    return _save(figure, out_dir, "accuracy_by_layer", "Accuracy per layer", caption)


def _figure_accuracy_by_expert_level(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    table = _summary_parts(analysis)[1]
    if table.empty:
        return None
    conditions = _order_conditions(table["condition"])
    levels = list(dict.fromkeys(table["expert_level"]))
    figure, (axis,) = _new_figure(2.5 + 1.2 * len(conditions), 3.6)
    shades = np.linspace(1.0, 0.45, len(levels))
    drawn = _grouped_bars(axis, table, "accuracy", "expert_level", levels, shades, conditions)
    for x, rows in drawn:
        for xi, n in zip(x, rows["n_participants"], strict=True):
            if not pd.isna(n):
                axis.text(xi, 0.02, f"n={int(n)}", ha="center", va="bottom", fontsize=7)
    _accuracy_axis(axis)
    axis.legend(
        title="expert level", frameon=False, fontsize=8, title_fontsize=8, loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    caption = _caption(table) + " Shades: expert levels; error bars: 95 % CI."
    return _save(figure, out_dir, "accuracy_by_expert_level", "Accuracy per expert level", caption)


def _figure_rt_confidence(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    table = analysis.rt_confidence
    measures = [m for m in ("rt_ms", "confidence") if m in table and table[m].notna().any()]
    if table.empty or not measures:
        return None
    conditions = _order_conditions(table["condition"])
    figure, axes = _new_figure(1.0 + 3.2 * len(measures), 3.6, columns=len(measures))
    labels = {
        "rt_ms": "reaction time (ms, median per participant)",
        "confidence": "confidence (1 to 3)",
    }
    for axis, measure in zip(axes, measures, strict=True):
        _grouped_bars(axis, table, measure, "outcome", OUTCOMES, (1.0, 0.65, 0.35), conditions)
        axis.set_ylabel(labels[measure])
        if measure == "confidence":
            axis.set_ylim(0, 3.2)
    axes[0].legend(title="trials", frameon=False, fontsize=8, title_fontsize=8)
    caption = (
        _caption(table[table["outcome"] == ALL])
        + " Shades: all, correct and incorrect trials; error bars: 95 % CI."
    )
    return _save(figure, out_dir, "rt_confidence", "Reaction time and confidence", caption)


def _caption(table: pd.DataFrame) -> str:
    """The participants and trials behind a figure: per bar, or as a range for many points."""
    if len(table) > 6:
        return (
            f"Each point: {_range(table['n_participants'])} participants, "
            f"{_range(table['n_trials'])} trials."
        )
    parts = []
    for _, row in table.iterrows():
        label = " / ".join(
            str(row[c])
            for c in ("condition", "expert_level", "layer")
            if c in row and row[c] != ALL
        )
        parts.append(
            f"{label}: {int(row['n_participants'])} participants, {int(row['n_trials'])} trials"
        )
    return "; ".join(parts) + "."


def _range(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low} to {high}"
