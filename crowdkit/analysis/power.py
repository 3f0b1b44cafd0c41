"""How many participants a study needs: per condition for a target CI half-width, and per
pair of conditions to detect a difference with 80 % power, by the study's design.

The paper's accuracy is the mean of per-participant accuracies +- 1.96 x SEM, so what
decides the sample size is the spread of per-participant accuracy, `sd`. It comes from

- pilot data (`pilot_spread`): the SD of included participants' main-trial accuracy per
  condition, and for a within-participant design the SD of each participant's difference
  between two conditions;
- or the machine observer (`machine_spread`): a participant who answers the trials of one
  task with the observer's probabilities p has an accuracy whose variance is the binomial
  part, sum p (1 - p) / T^2 over its T trials, plus the variance of the task's mean p
  between tasks. People also differ in skill, which this leaves out: a sample size from the
  machine observer is a lower bound, a pilot's is the one to plan with.

Sample sizes use the t distribution (solved by iteration): a CI half-width `h` needs the
smallest n with t(0.975, n-1) sd / sqrt(n) <= h; a difference `d` at alpha 0.05 two-sided
and 80 % power needs, paired, n >= (t(0.975, n-1) + t(0.8, n-1))^2 sd_diff^2 / d^2, and
unpaired, per group, n >= (t(0.975, 2n-2) + t(0.8, 2n-2))^2 (sd_a^2 + sd_b^2) / d^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import pandas as pd
from scipy import stats as scipy_stats

from crowdkit.analysis.stats import main_trials, participant_accuracy

POWER = 0.8
ALPHA = 0.05
MAX_N = 100_000
CONDITION_COLUMNS = ["condition", "source", "sd", "n_for_half_width", "half_width"]
PAIR_COLUMNS = ["condition_a", "condition_b", "paired", "sd_difference", "difference",
                "n_per_group", "n_total"]


def n_for_half_width(sd: float, half_width: float) -> int | None:
    """The smallest n whose 95 % CI of a mean is at most `half_width` wide on each side."""
    if not math.isfinite(sd):
        return None
    if sd == 0:
        return 2
    # t's quantile is above the normal's, so the normal answer is where to start counting
    n = max(2, math.ceil((scipy_stats.norm.ppf(0.975) * sd / half_width) ** 2))
    while n <= MAX_N:
        if scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) <= half_width:
            return n
        n += 1
    return None


def n_for_difference(variance: float, difference: float, *, paired: bool) -> int | None:
    """Participants per group (paired: in all) to detect `difference` with 80 % power.

    `variance` is the variance of the differences (paired) or the sum of the two groups'
    variances (unpaired)."""
    if not math.isfinite(variance):
        return None
    normal = scipy_stats.norm.ppf(1 - ALPHA / 2) + scipy_stats.norm.ppf(POWER)
    n = max(2, math.ceil(normal * normal * variance / difference ** 2))
    while n <= MAX_N:
        dof = n - 1 if paired else 2 * n - 2
        z = scipy_stats.t.ppf(1 - ALPHA / 2, dof) + scipy_stats.t.ppf(POWER, dof)
        if n >= z * z * variance / difference ** 2:
            return n
        n += 1
    return None


def pilot_spread(trials: pd.DataFrame) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """(per condition SD of participant accuracy, per pair SD of participants' differences
    where at least three participants did both)."""
    main = main_trials(trials)
    per = participant_accuracy(main, ["condition"])
    sds = {str(c): float(g["accuracy"].std(ddof=1)) if len(g) > 1 else math.nan
           for c, g in per.groupby("condition", sort=False)}
    wide = per.pivot_table(index="participant_id", columns="condition", values="accuracy")
    diffs = {}
    for a, b in combinations(list(sds), 2):
        if a in wide and b in wide:
            both = (wide[a] - wide[b]).dropna()
            if len(both) >= 3:
                diffs[(a, b)] = float(both.std(ddof=1))
    return sds, diffs


def machine_spread(machine: pd.DataFrame) -> dict[str, float]:
    """Per condition, the SD of accuracy of a participant answering one task's main trials
    with the machine observer's probabilities (binomial part plus between tasks)."""
    main = machine[machine["phase"] == "main"]
    sds = {}
    for condition, rows in main.groupby("condition", sort=False):
        per_task = rows.groupby("task_id")["p_correct"]
        binomial = per_task.apply(lambda p: float((p * (1 - p)).sum()) / len(p) ** 2)
        between = float(per_task.mean().var(ddof=1)) if per_task.ngroups > 1 else 0.0
        sds[str(condition)] = math.sqrt(float(binomial.mean()) + between)
    return sds


def power_tables(sds: dict[str, float], diffs: dict[tuple[str, str], float], *, paired: bool,
                 half_width: float, difference: float, source: str,
                 order: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per condition, per pair of conditions) sample sizes."""
    conditions = [c for c in order if c in sds] + [c for c in sds if c not in order]
    rows = [{"condition": c, "source": source, "sd": sds[c],
             "n_for_half_width": n_for_half_width(sds[c], half_width),
             "half_width": half_width} for c in conditions]
    pairs = []
    for a, b in combinations(conditions, 2):
        if paired:
            sd_d = diffs.get((a, b), diffs.get((b, a)))
            if sd_d is None:  # no pilot differences: independent conditions
                sd_d = math.sqrt(sds[a] ** 2 + sds[b] ** 2)
            n = n_for_difference(sd_d ** 2, difference, paired=True)
            total = n
        else:
            sd_d = math.sqrt(sds[a] ** 2 + sds[b] ** 2)
            n = n_for_difference(sd_d ** 2, difference, paired=False)
            total = None if n is None else 2 * n
        pairs.append({"condition_a": a, "condition_b": b, "paired": paired,
                      "sd_difference": sd_d, "difference": difference, "n_per_group": n,
                      "n_total": total})
    return (pd.DataFrame(rows, columns=CONDITION_COLUMNS),
            pd.DataFrame(pairs, columns=PAIR_COLUMNS))


def choose_spread(pilot: pd.DataFrame | None, machine: pd.DataFrame | None
                  ) -> tuple[dict[str, float], dict[tuple[str, str], float], str]:
    """The spread to size a study from, and its source: the pilot's where it has one (a
    condition with two or more participants), else the machine observer's answers;
    empty, with source "", when neither has one. The report and `crowdkit power` both
    choose here, so they never disagree about where their numbers come from."""
    if pilot is not None and len(pilot):
        sds, diffs = pilot_spread(pilot)
        sds = {c: v for c, v in sds.items() if math.isfinite(v)}
        if sds:
            return sds, diffs, "pilot"
    if machine is not None and len(machine):
        sds = machine_spread(machine)
        if sds:
            return sds, {}, "machine"
    return {}, {}, ""


def report_power(trials: pd.DataFrame, machine: pd.DataFrame | None, *, paired: bool,
                 half_width: float = 0.05, difference: float = 0.10
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample sizes the report shows: from the analysed (pilot) data where they have
    participants' spread, else from the machine observer's answers, else empty tables."""
    sds, diffs, source = choose_spread(trials, machine)
    if not sds:
        return (pd.DataFrame(columns=CONDITION_COLUMNS), pd.DataFrame(columns=PAIR_COLUMNS))
    return power_tables(sds, diffs, paired=paired, half_width=half_width,
                        difference=difference, source=source)


def format_power(table: pd.DataFrame) -> pd.DataFrame:
    """A sample-size table as people read it (blank where more than 100,000 are needed)."""
    if table.empty:
        return table
    out = table.copy()
    for column in out.columns:
        if column.startswith(("sd", "half_width", "difference")):
            out[column] = [f"{v:.3f}" for v in out[column]]
        elif column.startswith("n_"):
            out[column] = ["> 100000" if v is None or pd.isna(v) else str(int(v))
                           for v in out[column]]
    return out
