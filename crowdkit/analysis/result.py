"""The whole analysis of one trials table, computed once and shared by every output.

`analyze` runs every statistic and keeps the results in an `Analysis`; the JSON of
`--json`, the terminal tables, the figures and report.html are all views of that one object,
so they can never disagree about a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crowdkit.analysis.facts import StudyFacts, study_facts
from crowdkit.analysis.load import load_trials, parse_by, trials_file
from crowdkit.analysis.machine import (
    HumanVsMachine,
    human_vs_machine,
    load_machine,
    machine_file,
)
from crowdkit.analysis.power import CONDITION_COLUMNS, PAIR_COLUMNS, report_power
from crowdkit.analysis.ratings import (
    RATING_COLUMNS,
    RATING_COMPARISON_COLUMNS,
    REPEAT_COLUMNS,
    compare_rating_times,
    rating_summary,
    repeat_agreement,
)
from crowdkit.analysis.stats import (
    ALL,
    ParticipantCounts,
    accuracy_table,
    catch_accuracy,
    compare_conditions,
    everyone_excluded,
    infer_design,
    main_trials,
    participant_accuracy,
    participant_counts,
    rt_and_confidence,
    sort_rows,
    summarize,
)
from crowdkit.analysis.targets import select_target, study_target


@dataclass(frozen=True)
class Analysis:
    """Everything `crowdkit analyze` reports, computed once and rendered as JSON, text or HTML."""

    source: str
    by: list[str]
    design: str
    participants: ParticipantCounts
    summary: pd.DataFrame
    catch: pd.DataFrame
    rt_confidence: pd.DataFrame
    comparisons: pd.DataFrame
    by_layer: pd.DataFrame | None
    participant_accuracy: pd.DataFrame
    facts: StudyFacts = field(default_factory=StudyFacts)  # what the data are
    notes: list[str] = field(default_factory=list)  # what a reader must know first
    # the lab design's statistics (crowdkit.analysis.ratings): empty without such trials
    ratings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RATING_COLUMNS))
    rating_comparisons: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=RATING_COMPARISON_COLUMNS))
    repeated: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPEAT_COLUMNS))
    # the machine observer on the same trials (crowdkit.analysis.machine), when it has run
    human_vs_machine: HumanVsMachine | None = None
    # participants needed (crowdkit.analysis.power): per condition and per pair
    power: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONDITION_COLUMNS))
    power_pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR_COLUMNS))

    def to_json(self, report: Path | None = None) -> dict[str, Any]:
        """A JSON-ready dict: NaN becomes null and numpy numbers become plain numbers."""
        return {
            "source": self.source,
            "design": self.design,
            "by": list(self.by),
            "participants": self.participants,
            "facts": self.facts.to_json(),
            "notes": list(self.notes),
            "summary": records(self.summary),
            "catch": records(self.catch),
            "rt_confidence": records(self.rt_confidence),
            "comparisons": records(self.comparisons),
            "ratings": records(self.ratings),
            "rating_comparisons": records(self.rating_comparisons),
            "repeated": records(self.repeated),
            "human_vs_machine": _machine_json(self.human_vs_machine),
            "power": {"conditions": records(self.power), "pairs": records(self.power_pairs)},
            "report": str(report) if report else None,
        }


def analyze(trials: pd.DataFrame, by: Iterable[str] | None = (), source: str = "",
            facts: StudyFacts | None = None) -> Analysis:
    """Run every statistic on a normalised trials table (see `load_trials`).

    When the exclusion rules left out every participant the tables are empty and `notes`
    names the rules, so the report still says who took part and why nobody counts.
    """
    by = parse_by(by)
    summary = summarize(trials, by)
    main = main_trials(trials)
    facts = facts or study_facts(trials)
    return Analysis(
        source=source,
        by=by,
        design=infer_design(trials),
        participants=participant_counts(trials),
        summary=summary,
        catch=catch_accuracy(trials),
        rt_confidence=rt_and_confidence(trials),
        comparisons=compare_conditions(trials, by),
        by_layer=accuracy_table(main, ["condition", "layer"]) if "layer" in main else None,
        participant_accuracy=sort_rows(participant_accuracy(main, ["condition"]), ["condition"]),
        facts=facts,
        notes=_notes(trials, facts),
        ratings=rating_summary(trials),
        rating_comparisons=compare_rating_times(trials),
        repeated=repeat_agreement(trials),
    )


def _notes(trials: pd.DataFrame, facts: StudyFacts) -> list[str]:
    """Everyone excluded, random weights, the local target: said before any number."""
    notes = []
    if everyone_excluded(trials):
        counts = participant_counts(trials)
        rules = ", ".join(f"{rule}: {n}" for rule, n in counts["exclusion_reasons"].items())
        notes.append(f"every participant is excluded ({counts['excluded']}; by rule: "
                     f"{rules or 'no reason recorded'}): there is no accuracy to report; "
                     "the report lists who was left out and why")
    if facts.invalid:
        notes.append(f"{facts.invalid} of collect's {facts.excluded_assignments} excluded "
                     "assignments are invalid answers, which have no trial rows: collect counts "
                     "them, these tables cannot")
    return notes + facts.warnings()


def analyze_file(source: Path | str, by: Iterable[str] | None = (),
                 target: str | None = None) -> Analysis:
    """`crowdkit analyze`: read a trials file (or a study's) and analyse it, naming the file.

    One target's data only (crowdkit.analysis.targets): a study's [mturk] target unless
    `target` says another; a file's only target, or `target`'s rows of it.
    """
    if Path(source).is_dir():
        target = target or study_target(Path(source))
    path = trials_file(source, target)
    trials, note = select_target(load_trials(path), target, str(path))
    analysis = with_machine(analyze(trials, by=by, source=str(path),
                                    facts=study_facts(trials, path)), trials, path)
    if note:
        analysis.notes.insert(0, note)
    return analysis


def with_machine(analysis: Analysis, trials: pd.DataFrame, path: Path) -> Analysis:
    """The analysis with the machine observer's answers beside it (data/machine_trials.parquet
    next to the trials file, where `crowdkit mis` wrote one) and the sample sizes."""
    found = machine_file(path)
    machine = load_machine(found) if found is not None else None
    compared = (human_vs_machine(trials, machine, str(found))
                if machine is not None else None)
    power, pairs = report_power(trials, machine, paired=analysis.design == "within")
    return replace(analysis, human_vs_machine=compared, power=power, power_pairs=pairs)


def _machine_json(compared: HumanVsMachine | None) -> dict[str, Any] | None:
    if compared is None:
        return None
    return {"observer": compared.observer, "source": compared.source, "note": compared.note,
            "units": records(compared.units), "correlations": records(compared.correlations)}


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, NaN as None, ready for json.dumps."""
    return [
        {str(key): _plain(value) for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def summary_parts(analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The blocks of `summary` (see `summarize`): per condition, per expert level, per --by."""
    summary = analysis.summary
    overall = summary["expert_level"] == ALL
    plain = overall.copy()
    for column in analysis.by:
        plain &= summary[column] == ALL
    return summary[plain], summary[~overall], summary[overall & ~plain]
