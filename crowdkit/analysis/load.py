"""Reading a trials table: one tidy, typed DataFrame whatever file it came from.

A study's data/trials.parquet, a CSV edited in a spreadsheet and a published data set mapped
to the tidy columns (docs/analysis.md, docs/data.md) all leave here with the same
types, so every statistic downstream can trust its input and never re-parses a column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from crowdkit.analysis.targets import study_target, study_trials_file
from crowdkit.errors import ConfigError, CrowdkitError

REQUIRED_COLUMNS = ("participant_id", "condition", "phase", "correct")
# Phases whose trials have no right answer: their `correct` is empty (a rating, say).
UNJUDGED_PHASES = frozenset({"rating"})
# lucent's InceptionV1 modules as the paper names them: "mixed4a_3x3_pre_relu_conv" is
# layer 4a, branch 3x3 (the pool branch's module is "..._pool_reduce_...").
_MIXED_MODULE = re.compile(
    r"^mixed(?P<layer>[345][a-e])(?:_(?P<branch>1x1|3x3|5x5|pool)(?:_reduce)?_pre_relu_conv)?$")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


def trials_file(source: Path | str, target: str | None = None) -> Path:
    """The trials file behind `source`: the file itself, or a study's
    data/<target>/trials.parquet (target: the study's [mturk] target unless given).

    A study directory falls back to trials.csv when the Parquet file is absent, so a table
    edited in a spreadsheet and saved as CSV still works, and to data/trials.* of a study
    collected before each target had its own folder (crowdkit.analysis.targets).
    """
    source = Path(source)
    if source.is_dir():
        return study_trials_file(source, target or study_target(source))
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
    trials["correct"] = _correct(trials, name)
    if "excluded" in trials.columns:
        trials["excluded"] = _as_bool(trials["excluded"], "excluded", name, missing_as=False)
    else:
        trials["excluded"] = False
    if "exclusion_reasons" in trials.columns:  # empty: NaN from CSV, "" from Parquet
        reasons = trials["exclusion_reasons"].astype("object")
        trials["exclusion_reasons"] = reasons.where(reasons.notna(), "").astype(str)
    if "expert_level" in trials.columns:
        levels = trials["expert_level"].astype("object").where(trials["expert_level"].notna())
        trials["expert_level"] = levels.fillna("unknown").astype(str).str.strip().str.lower()
    for column in ("rt_ms", "confidence", "rating", "repeat_of", "trial_index"):
        if column in trials.columns:
            try:
                trials[column] = pd.to_numeric(trials[column])
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{name}: column {column!r} holds non-numbers: {exc}") from exc
    return paper_layers(trials)


def paper_layers(trials: pd.DataFrame) -> pd.DataFrame:
    """`layer` in the paper's names (3a ... 5b) and `branch` (1x1, 3x3, 5x5, pool) where
    the layer is one of InceptionV1's mixed layers; the module name moves to `module`.

    The tidy files keep lucent's module names (docs/data.md); tables, figures and `--by`
    speak the paper's language. When some layer is not one of InceptionV1's mixed layers
    (another model), every layer keeps its own name.
    """
    if "layer" not in trials.columns or "module" in trials.columns:
        return trials
    modules = trials["layer"].astype("object")
    found = {m: _MIXED_MODULE.match(str(m)) for m in modules.dropna().unique()}
    matches = {m: match for m, match in found.items() if match is not None}
    if not found or len(matches) < len(found):  # other models' layers: their own names
        return trials
    layers = {m: match["layer"] for m, match in matches.items()}
    branches = {m: match["branch"] or pd.NA for m, match in matches.items()}
    trials = trials.copy()
    trials["module"] = modules
    trials["layer"] = modules.map(layers)
    if "branch" not in trials.columns:
        trials["branch"] = modules.map(branches)
    return trials


def _correct(trials: pd.DataFrame, name: str) -> pd.Series:
    """`correct` as bools; empty (pd.NA, a nullable boolean column) on the rows of phases
    without a right answer (UNJUDGED_PHASES), which must be empty or a bool."""
    unjudged = trials["phase"].isin(UNJUDGED_PHASES)
    if not unjudged.any():
        return _as_bool(trials["correct"], "correct", name, missing_as=None)
    values = trials["correct"].astype("object")
    empty = unjudged & (values.isna() | (values.astype(str).str.strip() == ""))
    out = pd.Series(pd.NA, index=trials.index, dtype="boolean")
    if (~empty).any():
        out[~empty] = _as_bool(values[~empty], "correct", name, missing_as=None).to_numpy()
    return out


def _as_bool(values: pd.Series, column: str, name: str, missing_as: bool | None) -> pd.Series:
    """Parse a bool column that may have passed through CSV; refuse anything ambiguous."""
    if pd.api.types.is_bool_dtype(values) and not values.isna().any():
        return values.astype(bool)

    def parse(value: object) -> bool | None:
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
