"""Ratings and repeated trials: the statistics of the paper's lab design beside accuracy.

**Ratings** (rating trials, `phase == "rating"`, the paper's intuitiveness ratings): per
rating time (start, end), unit (and "all" units pooled), expert level (and "all") and rated
condition, the mean over participants of each participant's mean rating, with the paper's
interval, ± 1.96 x SEM (ddof 1). Where participants rated both at the start and at the end,
the two are compared, paired.

**Repeated trials** (`phase == "repeated"`, with `repeat_of` the `trial_index` of the trial
shown again): how often a participant's answer to the repeat agrees with the first answer,
as the proportion of repeats on which they picked the same image again (the same
correctness: positions are drawn afresh), per participant, then averaged.

Pure functions of a normalised trials table, like `crowdkit.analysis.stats`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crowdkit import sources
from crowdkit.analysis.stats import ALL, included, mean_ci, paired_tests, sort_rows

RATING, REPEATED = "rating", "repeated"
RATING_COLUMNS = ["rating_time", "unit", "expert_level", "condition", "n_participants",
                  "mean", "ci95_low", "ci95_high"]
RATING_COMPARISON_COLUMNS = [
    "condition", "unit", "n", "mean_start", "mean_end", "difference", "t", "df", "p_t",
    "rank_statistic", "p_rank", "effect_size_kind", "effect_size",
]
REPEAT_COLUMNS = ["condition", "n_participants", "n_trials", "agreement", "ci95_low",
                  "ci95_high"]
TIMES = ("start", "end")


def rating_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """The included rating rows that hold a rating."""
    if "rating" not in trials.columns:
        return trials.iloc[0:0]
    kept = included(trials)
    rows = kept[(kept["phase"] == RATING) & kept["rating"].notna()].copy()
    rows["rating_time"] = (rows["rating_time"].fillna("start").astype(str)
                           if "rating_time" in rows else "start")
    rows["unit"] = rows["unit"].astype(str) if "unit" in rows else ALL
    return rows


def rating_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean rating per rating time x unit x expert level x condition, pooled rows included.

    A participant's ratings are averaged first (over units for the pooled "all" unit), then
    averaged over participants; the interval is ± 1.96 x SEM over participants."""
    rows = rating_rows(trials)
    if rows.empty:
        return pd.DataFrame(columns=RATING_COLUMNS)
    out = []
    for unit_split in (False, True):
        for level_split in (False, True) if "expert_level" in rows else (False,):
            keys = ["rating_time", "condition", *(["unit"] if unit_split else []),
                    *(["expert_level"] if level_split else [])]
            per_participant = rows.groupby([*keys, "participant_id"], sort=False)[
                "rating"].mean().reset_index()
            for values, group in per_participant.groupby(keys, sort=False):
                row = dict(zip(keys, values if isinstance(values, tuple) else (values,),
                               strict=True))
                mean, low, high = mean_ci(group["rating"])
                out.append({"unit": ALL, "expert_level": ALL, **row,
                            "n_participants": int(group["participant_id"].nunique()),
                            "mean": mean, "ci95_low": low, "ci95_high": high})
    table = sort_rows(pd.DataFrame(out, columns=RATING_COLUMNS),
                      ["condition", "unit", "expert_level"])
    # per time, pooled rows first: all units, then each; all expert levels, then each
    order = {time: i for i, time in enumerate(_times(table))}
    ranking = pd.DataFrame({"time": table["rating_time"].map(order),
                            "unit": table["unit"] != ALL,
                            "level": table["expert_level"] != ALL})
    ranked = ranking.sort_values(["time", "unit", "level"], kind="stable").index
    return table.loc[ranked].reset_index(drop=True)


def _times(table: pd.DataFrame) -> list[str]:
    seen = list(dict.fromkeys(table["rating_time"]))
    return [t for t in TIMES if t in seen] + [t for t in seen if t not in TIMES]


def compare_rating_times(trials: pd.DataFrame) -> pd.DataFrame:
    """Start against end, paired over the participants who rated both, per condition and
    unit (and all units pooled): paired t-test, Wilcoxon signed-rank, Cohen's d_z."""
    rows = rating_rows(trials)
    if rows.empty or not set(TIMES) <= set(rows["rating_time"]):
        return pd.DataFrame(columns=RATING_COMPARISON_COLUMNS)
    out = []
    for condition in sources.order(list(rows["condition"].unique())):
        subset = rows[rows["condition"] == condition]
        units = [ALL, *sorted(subset["unit"].unique())]
        for unit in units:
            picked = subset if unit == ALL else subset[subset["unit"] == unit]
            wide = picked.groupby(["participant_id", "rating_time"])["rating"].mean().unstack()
            if not set(TIMES) <= set(wide.columns):
                continue
            both = wide[list(TIMES)].dropna()
            if len(both) >= 2:
                out.append({"condition": condition, "unit": unit,
                            **_paired(both["start"].to_numpy(), both["end"].to_numpy())})
    return pd.DataFrame(out, columns=RATING_COMPARISON_COLUMNS)


def _paired(start: np.ndarray, end: np.ndarray) -> dict[str, Any]:
    return {"n": len(start), "mean_start": float(start.mean()), "mean_end": float(end.mean()),
            **paired_tests(end, start)}


def repeat_agreement(trials: pd.DataFrame) -> pd.DataFrame:
    """Per condition (and "all"): how often the answer to a repeated trial agrees with the
    first answer to the same trial, the mean over participants with its 95 % CI."""
    needed = {"repeat_of", "trial_index", "correct"}
    if not needed <= set(trials.columns):
        return pd.DataFrame(columns=REPEAT_COLUMNS)
    kept = included(trials)
    repeats = kept[(kept["phase"] == REPEATED) & kept["repeat_of"].notna()]
    if repeats.empty:
        return pd.DataFrame(columns=REPEAT_COLUMNS)
    unit = "assignment_id" if "assignment_id" in kept.columns else "participant_id"
    first = kept[kept["phase"] != REPEATED].drop_duplicates([unit, "trial_index"])
    answers = first.set_index([unit, "trial_index"])["correct"]
    index = pd.MultiIndex.from_arrays([repeats[unit], repeats["repeat_of"].astype("int64")])
    original = answers.reindex(index).to_numpy()
    matched = repeats.assign(agree=repeats["correct"].to_numpy() == original)
    matched = matched[pd.notna(original)]
    out = []
    for condition, group in [*matched.groupby("condition", sort=False), (ALL, matched)]:
        per_participant = group.groupby("participant_id")["agree"].mean()
        mean, low, high = mean_ci(per_participant)
        out.append({"condition": condition, "n_participants": len(per_participant),
                    "n_trials": len(group), "agreement": mean, "ci95_low": low,
                    "ci95_high": high})
    table = pd.DataFrame(out, columns=REPEAT_COLUMNS)
    if table["condition"].nunique() == 2:  # one condition: "all" says the same
        table = table[table["condition"] != ALL]
    return sort_rows(table, ["condition"])
