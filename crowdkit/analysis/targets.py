"""Whose data an analysis reads: one target's, never several pooled without saying so.

collect writes each target's data apart, into DIR/data/<target>/ (local: the twin's
simulated or test participants; sandbox; live: MTurk's workers). A study directory is
analysed for one target, the study's [mturk] target unless another is asked for. A trials
file that holds several targets (one collected before targets were kept apart, or one
combined by hand) must be told which: analysing them pooled is refused, in one line.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crowdkit.errors import ConfigError, CrowdkitError

TARGETS = ("local", "sandbox", "live")
NAMES = ("trials.parquet", "trials.csv")


def study_target(root: Path) -> str:
    """The study's [mturk] target: whose data `crowdkit analyze DIR` reads by default."""
    from crowdkit.study import load_study

    return load_study(root).config.mturk.target


def study_trials_file(root: Path, target: str) -> Path:
    """DIR/data/<target>/trials.parquet (or .csv); a study's older DIR/data/trials.* when it
    has no folder per target yet (`select_target` then keeps the target's rows)."""
    data = root / "data"
    for folder in (data / target, data):
        for name in NAMES:
            if (folder / name).is_file():
                return folder / name
    others = [t for t in TARGETS if t != target and any((data / t / n).is_file() for n in NAMES)]
    hint = (f"; the study has data for {', '.join(others)}: pass --target {others[-1]}"
            if others else f"; run `crowdkit collect {root} --target {target}` first")
    raise CrowdkitError(f"{data / target}: no trials of the {target} target{hint}")


def select_target(trials: pd.DataFrame, target: str | None, name: str
                  ) -> tuple[pd.DataFrame, str | None]:
    """The rows of `target` (None: the table's only target), and a note when rows of other
    targets were left out. Several targets and no choice is a ConfigError."""
    if "target" not in trials.columns:
        return trials, None
    present = sorted(set(trials["target"].dropna().astype(str)))
    if target is None:
        if len(present) > 1:
            raise ConfigError(f"{name}: the rows come from several targets "
                              f"({', '.join(present)}); pass --target to choose one")
        return trials, None
    keep = trials["target"].astype(str) == target
    if not keep.any():
        raise ConfigError(f"{name}: no rows of the {target} target (it has "
                          f"{', '.join(present) or 'no target'}); pass --target")
    left_out = sorted(set(present) - {target})
    note = (f"only the {target} target's rows are analysed; {int((~keep).sum())} rows of "
            f"{', '.join(left_out)} in {name} are left out" if left_out else None)
    return trials[keep].reset_index(drop=True), note
