"""`crowdkit power DIR`: participants needed, from pilot data or the machine observer.

Per condition, how many participants give a 95 % CI of accuracy no wider than
`--half-width` on each side; per pair of conditions, how many detect `--difference` with
80 % power at alpha 0.05, paired when the study's design is within participants ([design]
assignment = "within"), else per group. The statistics are crowdkit.analysis.power's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crowdkit import sources
from crowdkit.errors import CrowdkitError
from crowdkit.observers import MACHINE_TRIALS
from crowdkit.study import Study

if TYPE_CHECKING:
    import pandas as pd

SOURCES = ("auto", "pilot", "machine")


@dataclass
class PowerResult:
    source: str  # "pilot" or "machine"
    paired: bool
    conditions: pd.DataFrame
    pairs: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        design = "within participants (paired)" if self.paired else "between participants"
        out = [f"from {self.source} data; design {design}"]
        for row in self.conditions.to_dict("records"):
            n = row["n_for_half_width"]
            n = "more than 100,000" if n is None or n != n else int(n)
            out.append(f"  {row['condition']}: SD of participant accuracy {row['sd']:.3f}; "
                       f"{n} participants for a 95 % CI of +-{row['half_width']:.3f}")
        for row in self.pairs.to_dict("records"):
            n = row["n_per_group"]
            if n is None or n != n:
                need = "more than 100,000 participants"
            elif row["paired"]:
                need = f"{int(n)} participants (each doing both)"
            else:
                need = f"{int(n)} per condition ({int(row['n_total'])} in all)"
            out.append(f"  {row['condition_a']} vs {row['condition_b']}: {need} to detect a "
                       f"difference of {row['difference']:.3f} with 80 % power (alpha 0.05)")
        return out


def study_power(study: Study, *, half_width: float = 0.05, difference: float = 0.10,
                source: str = "auto", target: str | None = None) -> PowerResult:
    """Sample sizes for `study` from its pilot data (the target's trials) or its machine
    observer's answers (data/machine_trials.parquet)."""
    import pandas as pd

    from crowdkit.analysis.load import load_trials, trials_file
    from crowdkit.analysis.power import choose_spread, power_tables

    if source not in SOURCES:
        raise CrowdkitError(f"--source {source!r}: expected one of {', '.join(SOURCES)}")
    paired = study.config.design.assignment == "within"
    target = target or study.config.mturk.target
    notes: list[str] = []
    pilot = None
    if source in ("auto", "pilot"):
        try:
            pilot = load_trials(trials_file(study.root, target))
        except CrowdkitError:
            if source == "pilot":
                raise
    machine_path = study.data_dir / MACHINE_TRIALS
    machine = (pd.read_parquet(machine_path) if source != "pilot" and machine_path.is_file()
               else None)
    sds, diffs, used = choose_spread(pilot, machine)
    if not sds:
        raise CrowdkitError(_no_spread(study, target, pilot, machine))
    if used == "pilot" and pilot is not None and len(set(pilot["participant_id"])) < 5:
        notes.append("fewer than 5 pilot participants: their spread is a rough guide")
    if used == "machine":
        notes.append("from the machine observer: people also differ in skill, which it "
                     "leaves out, so these numbers are a lower bound; a pilot's are the "
                     "ones to plan with")
    conditions, pairs = power_tables(sds, diffs, paired=paired, half_width=half_width,
                                     difference=difference, source=used,
                                     order=sources.order(list(sds)))
    return PowerResult(used, paired, conditions, pairs, notes)


def _no_spread(study: Study, target: str, pilot: pd.DataFrame | None,
               machine: pd.DataFrame | None) -> str:
    """Why there is nothing to size the study from, and what to run."""
    if pilot is not None and len(pilot):
        have = (f"the pilot data ({target}) have no condition with two or more "
                "participants' main trials")
    else:
        have = f"no pilot data ({target})"
    if machine is None:
        return (f"{study.root}: {have} and no machine observer's answers; run `crowdkit "
                f"collect` after a pilot, or `crowdkit mis {study.root}`")
    return f"{study.root}: {have}, and the machine observer's answers have no main trials"
