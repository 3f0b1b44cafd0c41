"""The tables a person reads: the analysis formatted as strings, for the terminal and the report.

`text_tables` is the one place that decides which tables exist, their titles and how each
number is written; `rich_tables` and `headline` turn that into rich objects and console
markup for the CLI to print, and report.py into HTML. Nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crowdkit.analysis.machine import format_correlations, format_units
from crowdkit.analysis.power import format_power
from crowdkit.analysis.result import Analysis, summary_parts
from crowdkit.analysis.stats import ACCURACY_COLUMNS, FEW_PARTICIPANTS, ParticipantCounts
from crowdkit.units import plural

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

LABEL_COLUMNS = frozenset({"condition", "expert_level", "outcome", "versus", "tests", "layer",
                           "branch", "measure", "rating_time", "unit"})
"""Columns that name a row rather than hold a number: left-aligned everywhere."""
FEW_MARK = "†"
FEW_NOTE = (f"{FEW_MARK} fewer than {FEW_PARTICIPANTS} participants: the interval (and the "
            "mean) say little")


def footnotes(analysis: Analysis) -> list[str]:
    """The notes under the tables: the few-participants mark, when some row has it."""
    tables = [analysis.summary, analysis.catch]
    if analysis.by_layer is not None:
        tables.append(analysis.by_layer)
    few = any((t["n_participants"] < FEW_PARTICIPANTS).any() for t in tables
              if not t.empty and "n_participants" in t)
    return [FEW_NOTE] if few else []


def headline(analysis: Analysis) -> str:
    """One line of rich console markup: the source, who was analysed, and the design."""
    from rich.markup import escape

    counts = analysis.participants
    return (
        f"[bold]{escape(analysis.source)}[/bold]: "
        f"{plural(counts['included'], 'participant')} analysed, "
        f"{counts['excluded']} excluded{reasons_text(counts)}; "
        f"design: {analysis.design} participants"
    )


def rich_tables(analysis: Analysis) -> list[Table]:
    """Every non-empty table of `text_tables` as a rich Table, labels left, numbers right."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    tables = []
    for title, table in text_tables(analysis):
        if table.empty:
            continue
        # A title wraps to the table's width even on a soft-wrapping console.
        caption = Text(title, style="table.title", no_wrap=False, overflow="fold")
        rich_table = Table(title=caption, title_justify="left")
        for column in table.columns:
            rich_table.add_column(column, justify="left" if column in LABEL_COLUMNS else "right")
        for row in table.itertuples(index=False):
            rich_table.add_row(*(escape(str(cell)) for cell in row))
        tables.append(rich_table)
    return tables


def terminal_output(analysis: Analysis, report: Path | None = None) -> Group:
    """What `crowdkit analyze` shows, in order: the headline, the tables, the report's path.

    Print it with `Console(soft_wrap=True).print(...)`: soft wrap keeps the headline on one
    line however long the source's path is (the tables size themselves to the terminal).
    """
    from rich.console import Group
    from rich.markup import escape

    facts = [f"[dim]{escape(line)}[/dim]" for line in analysis.facts.lines()]
    footer = [escape(note) for note in footnotes(analysis)]
    footer += [f"report: {escape(str(report))}"] if report else []
    return Group(headline(analysis), *facts, *rich_tables(analysis), *footer)


def plain_headline(analysis: Analysis) -> str:
    """The headline without markup: the source, who was analysed, and the design."""
    counts = analysis.participants
    return (f"{analysis.source}: {plural(counts['included'], 'participant')} analysed, "
            f"{counts['excluded']} excluded{reasons_text(counts)}; "
            f"design: {analysis.design} participants")


def terminal_text(analysis: Analysis, report: Path | None = None) -> str:
    """What `terminal_output` shows, as plain text for a log (the demo logs it)."""
    parts = ["\n".join([plain_headline(analysis), *analysis.facts.lines(),
                         *(f"note: {note}" for note in analysis.notes)])]
    for title, table in text_tables(analysis):
        if not table.empty:
            parts.append(f"{title}\n{table.to_string(index=False)}")
    parts += footnotes(analysis)
    if report:
        parts.append(f"report: {report}")
    return "\n\n".join(parts)


def reasons_text(counts: ParticipantCounts) -> str:
    """The "(rule: n, ...)" after the excluded count, or "" when no reasons were recorded."""
    reasons = counts.get("exclusion_reasons") or {}
    return f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())})" if reasons else ""


def text_tables(analysis: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """The tables shown on the terminal and in report.html, formatted for reading.

    Numbers are rounded and intervals written out; a table with nothing to show is empty,
    and both outputs leave it out.
    """
    plain, experts, by_rows = summary_parts(analysis)
    return [
        (
            "Accuracy on main trials (mean of participants' proportion correct, 95 % CI)",
            format_accuracy(plain[["condition", *ACCURACY_COLUMNS]]),
        ),
        (
            "Accuracy by expert level",
            format_accuracy(experts[["condition", "expert_level", *ACCURACY_COLUMNS]]),
        ),
        (
            f"Accuracy by {', '.join(analysis.by)}",
            format_accuracy(by_rows[["condition", *analysis.by, *ACCURACY_COLUMNS]]),
        ),
        ("Catch-trial accuracy", format_accuracy(analysis.catch)),
        (
            "Reaction time (median per participant) and confidence, main trials",
            _format_rt_confidence(analysis.rt_confidence),
        ),
        (comparison_title(analysis.comparisons),
         _format_comparisons(analysis.comparisons, analysis.by)),
        ("Ratings (mean of participants' mean rating, 95 % CI)",
         _format_ratings(analysis.ratings)),
        ("Ratings at the end against the start (paired t-test and Wilcoxon signed-rank; "
         "effect size Cohen's d_z)", _format_rating_comparisons(analysis.rating_comparisons)),
        ("Repeated trials: agreement with the first answer (mean of participants' "
         "proportion, 95 % CI)", _format_repeated(analysis.repeated)),
        *machine_tables(analysis),
    ]


def machine_tables(analysis: Analysis) -> list[tuple[str, pd.DataFrame]]:
    """Human against machine, and the participants a study needs."""
    out = []
    compared = analysis.human_vs_machine
    if compared is not None:
        out += [(f"Human against machine ({compared.observer}): accuracy per unit beside "
                 "the MIS (trials)", format_units(compared.units)),
                ("Human against machine: correlation over units (95 % CI, Fisher z)",
                 format_correlations(compared.correlations))]
    out += [("Participants needed per condition (95 % CI half-width)",
             format_power(analysis.power)),
            ("Participants needed to detect a difference (80 % power, alpha 0.05)",
             format_power(analysis.power_pairs))]
    return out


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _interval(low: float | None, high: float | None, digits: int = 3) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def format_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """An accuracy table (see `accuracy_table`) for reading: its labels, counts, 3 decimals."""
    labels = [column for column in table.columns if column not in ACCURACY_COLUMNS]
    rows = [
        {
            **{column: str(row[column]) for column in labels},
            "participants": int(row["n_participants"]),
            "trials": int(row["n_trials"]),
            "accuracy": _number(row["accuracy"])
            + (FEW_MARK if row["n_participants"] < FEW_PARTICIPANTS else ""),
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
        return ("Paired comparisons of accuracy, reaction time (ms, participants' medians) and "
                "confidence (t-test and Wilcoxon signed-rank; effect size Cohen's d_z)")
    if designs == {"between"}:
        return ("Unpaired comparisons of accuracy, reaction time (ms, participants' medians) "
                "and confidence (Welch's t-test and Mann-Whitney U; effect size Cohen's d)")
    return "Comparisons (paired where participants did both conditions, otherwise unpaired)"


DIGITS = {"accuracy": 3, "rt_ms": 0, "confidence": 2}  # how each measure is written


def _format_comparisons(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    mixed = len(set(table["design"])) > 1
    rows = []
    for _, row in table.iterrows():
        paired = row["design"] == "within"
        measure = str(row.get("measure", "accuracy"))
        digits = DIGITS.get(measure, 3)
        formatted = {"measure": measure,
                     "versus": f"{row['condition_a']} − {row['condition_b']}",
                     **{column: str(row[column]) for column in by if column in row}}
        if mixed:
            formatted["tests"] = f"{row['t_test']} t, {row['rank_test']}"
        formatted.update(
            {
                "n": str(row["n_a"]) if paired else f"{row['n_a']} vs {row['n_b']}",
                "means": f"{_number(row['mean_a'], digits)} vs {_number(row['mean_b'], digits)}",
                "difference": _number(row["difference"], digits),
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


def _format_ratings(table: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {
            "rating_time": str(row["rating_time"]),
            "condition": str(row["condition"]),
            "unit": str(row["unit"]),
            "expert_level": str(row["expert_level"]),
            "participants": int(row["n_participants"]),
            "mean": _number(row["mean"], 1),
            "95 % CI": _interval(row["ci95_low"], row["ci95_high"], 1),
        }
        for _, row in table.iterrows()
    ]
    return pd.DataFrame(rows)


def _format_rating_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {
            "condition": str(row["condition"]),
            "unit": str(row["unit"]),
            "n": str(row["n"]),
            "start vs end": f"{_number(row['mean_start'], 1)} vs {_number(row['mean_end'], 1)}",
            "difference": _number(row["difference"], 1),
            "t (df)": f"{_number(row['t'], 2)} ({_number(row['df'], 0)})",
            "p t": _p_value(row["p_t"]),
            "p rank": _p_value(row["p_rank"]),
            "d_z": _number(row["effect_size"], 2),
        }
        for _, row in table.iterrows()
    ]
    return pd.DataFrame(rows)


def _format_repeated(table: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {
            "condition": str(row["condition"]),
            "participants": int(row["n_participants"]),
            "repeats": int(row["n_trials"]),
            "agreement": _number(row["agreement"]),
            "95 % CI": _interval(row["ci95_low"], row["ci95_high"]),
        }
        for _, row in table.iterrows()
    ]
    return pd.DataFrame(rows)


def _p_value(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"
