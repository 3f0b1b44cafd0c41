"""What the data are: the facts a report for a paper states before any number.

From the trials table alone: the study, the target, the participants and the exclusions by
rule. From a study directory too (a study's own data/trials.*): the model and its weights
(random weights make the numbers meaningless for science, and the report says so), the
first and last submission, the HITs and assignments the ledger holds, the answers collect
found invalid (they have no trial rows, so analysis alone would not see them), and the
money spent, from the ledger's approved assignments and paid bonuses priced by the
platform's fee rules (no network call: the report is written offline).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from crowdkit.errors import CrowdkitError
from crowdkit.units import money_str, plural


@dataclass
class StudyFacts:
    """Provenance of an analysis; None where the source cannot tell."""

    study: str | None = None
    targets: list[str] = field(default_factory=list)
    model: str | None = None
    weights: str | None = None
    random_weights: bool | None = None
    first_submission: str | None = None
    last_submission: str | None = None
    hits: int | None = None
    assignments: int | None = None  # collected, of every status
    invalid: int | None = None  # answers that could not be parsed: no trial rows
    excluded_assignments: int | None = None  # collect's count (invalid ones included)
    exclusions: dict[str, int] = field(default_factory=dict)  # by rule, per assignment
    participants: int = 0
    spent: Decimal | None = None  # approved rewards and fees, paid bonuses and fees
    pending: Decimal | None = None  # submitted, not yet reviewed: approved by default later

    def warnings(self) -> list[str]:
        """What makes the numbers unfit for a paper, in one line each."""
        out = []
        if self.random_weights:
            out.append("the stimuli come from a network with RANDOM weights: these numbers "
                       "show that the machinery works and mean nothing for science")
        if "local" in self.targets:
            out.append("the data include the local target: simulated or test participants, "
                       "not MTurk workers")
        return out

    def lines(self) -> list[str]:
        """The facts as short lines, for the terminal and the report's header."""
        lines = []
        if self.study or self.targets:
            lines.append(f"study {self.study or '?'}; target {', '.join(self.targets) or '?'}")
        if self.model:
            random = self.random_weights and "random" not in str(self.weights)
            lines.append(f"model {self.model}, weights {self.weights}"
                         + (" (random)" if random else ""))
        if self.first_submission:
            lines.append(f"submissions from {self.first_submission} to {self.last_submission}")
        if self.hits is not None and self.assignments is not None:
            lines.append(f"{plural(self.hits, 'HIT')}, {plural(self.assignments, 'assignment')}"
                         f" collected, {plural(self.participants, 'participant')} in the "
                         "trials")
        if self.excluded_assignments is not None:
            rules = ", ".join(f"{k}: {v}" for k, v in self.exclusions.items()) or "none"
            lines.append(f"collect excluded {plural(self.excluded_assignments, 'assignment')}"
                         f" (by rule: {rules}); {plural(self.invalid or 0, 'invalid answer')}"
                         " among them, which have no trial rows")
        if self.spent is not None:
            pending = money_str(self.pending or Decimal("0"))
            lines.append(f"money: ${money_str(self.spent)} spent, ${pending} pending review")
        return lines

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("spent", "pending"):
            out[key] = None if out[key] is None else money_str(out[key])
        return out


def study_dir_of(trials_path: Path) -> Path | None:
    """The study directory a trials file belongs to (DIR/data/trials.* or one target's
    DIR/data/<target>/trials.*), if it is one."""
    folder = trials_path.resolve().parent
    for data in (folder, folder.parent):
        if data.name == "data" and (data.parent / "study.toml").is_file():
            return data.parent
    return None


def study_facts(trials: pd.DataFrame, trials_path: Path | None = None) -> StudyFacts:
    """The facts of an analysis: from the trials, and from their study when there is one."""
    facts = StudyFacts(participants=int(trials["participant_id"].nunique()))
    if "study" in trials.columns and trials["study"].notna().any():
        facts.study = ", ".join(sorted(set(trials["study"].dropna().astype(str))))
    if "target" in trials.columns:
        facts.targets = sorted(set(trials["target"].dropna().astype(str)))
    root = study_dir_of(trials_path) if trials_path is not None else None
    if root is not None and trials_path is not None:
        _from_study(facts, root, trials_path.parent / "participants.csv")
    return facts


def _from_study(facts: StudyFacts, root: Path, participants_csv: Path) -> None:
    from crowdkit.study import load_study

    try:
        study = load_study(root)
    except CrowdkitError:  # analysis still works from the trials alone
        return
    facts.study = facts.study or study.name
    _model(facts, study.manifest_path)
    _participants_csv(facts, participants_csv)
    if study.db_path.is_file():
        # a ledger this version cannot read (yet): those facts stay unknown
        with contextlib.suppress(CrowdkitError):
            _ledger(facts, study)


def _model(facts: StudyFacts, manifest_path: Path) -> None:
    from crowdkit.manifest import load_manifest

    if not manifest_path.is_file():
        return
    try:
        manifest = load_manifest(manifest_path, check_files=False)  # the model, not images
    except CrowdkitError:
        return
    facts.model = manifest.model.name
    facts.weights = manifest.model.weights
    facts.random_weights = manifest.model.random_weights


def _participants_csv(facts: StudyFacts, path: Path) -> None:
    """collect's own counts, per assignment, so analysis and collect say the same."""
    if not path.is_file():
        return
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if facts.targets and "target" in table.columns:
        table = table[table["target"].astype(str).isin(facts.targets)]
    excluded = table["excluded"].astype(str).str.lower().isin(("true", "1"))
    facts.excluded_assignments = int(excluded.sum())
    valid = table["valid"].astype(str).str.lower().isin(("true", "1"))
    facts.invalid = int((~valid).sum())
    reasons: dict[str, int] = {}
    for text in table.loc[excluded, "exclusion_reasons"].fillna("").astype(str):
        for reason in filter(None, (part.strip() for part in text.split(";"))):
            reasons[reason] = reasons.get(reason, 0) + 1
    facts.exclusions = dict(sorted(reasons.items()))


def _ledger(facts: StudyFacts, study: Any) -> None:  # a crowdkit.study.Study
    from crowdkit.ledger import Ledger

    with Ledger.open(study.db_path) as ledger:
        hits = [h for h in ledger.hits() if h["hit_id"] and
                (not facts.targets or h["target"] in facts.targets)]
        by_hit = {h["hit_id"]: h for h in hits}
        rows = [a for a in ledger.assignments() if a["hit_id"] in by_hit]
        reviews = ledger.reviews()
        seen = {a["assignment_id"] for a in rows}
        bonuses = [b for b in ledger.bonuses() if b["status"] == "done"
                   and b["assignment_id"] in seen]
    facts.hits, facts.assignments = len(hits), len(rows)
    times = sorted(a["submit_time"] for a in rows if a["submit_time"])
    if times:
        facts.first_submission, facts.last_submission = times[0], times[-1]
    facts.spent, facts.pending = _money(study, by_hit, rows, reviews, bonuses)


def _money(study: Any, by_hit: dict[str, Any], rows: list[Any], reviews: dict[str, Any],
           bonuses: list[Any]) -> tuple[Decimal | None, Decimal | None]:
    """Spent (approved assignments and paid bonuses, with fees) and pending (submitted)."""
    from crowdkit.platforms.connect import open_platform

    spent = pending = Decimal("0.00")
    platforms: dict[str, Any] = {}

    def platform_of(hit_id: str) -> Any:  # a Platform: its fee rules, never a call
        target = by_hit[hit_id]["target"]
        if target not in platforms:
            platforms[target] = open_platform(study, target)
        return platforms[target]

    hit_of = {row["assignment_id"]: row["hit_id"] for row in rows}
    try:
        for row in rows:
            hit = by_hit[row["hit_id"]]
            platform = platform_of(row["hit_id"])
            reward = Decimal(hit["reward"])
            fee, extra = platform.assignment_fees(reward, int(hit["max_assignments"]))
            review = reviews.get(row["assignment_id"])
            decision = review["decision"] if review is not None and review["status"] == "done" \
                else None
            if row["status"] == "Approved" or decision == "approve":
                spent += reward + fee + extra
            elif row["status"] == "Submitted" and decision is None:
                pending += reward + fee + extra
        for bonus in bonuses:
            amount = Decimal(bonus["amount"])
            spent += amount + platform_of(hit_of[bonus["assignment_id"]]).bonus_fee(amount)
    except CrowdkitError:  # a platform this installation cannot price
        return None, None
    return spent, pending
