"""The tidy data set: every stored assignment parsed, judged and turned into rows.

Built from the ledger alone (no network): `build_dataset` parses each stored answer
against its task's key (crowdkit.answers), judges it (crowdkit.quality), and `write_exports`
writes one target's data/<target>/trials.parquet, trials.csv and participants.csv: the
local twin's simulated participants never mix with MTurk's. Worker ids stay in the ledger;
the exports carry `pseudonym(key, worker_id)`, and the CSV files are safe to open in a
spreadsheet (`spreadsheet_safe`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdkit.answers import ParsedAnswer, parse_answer
from crowdkit.collect.codebook import codebook, codebook_json, codebook_markdown
from crowdkit.files import write_atomically
from crowdkit.ledger import Ledger
from crowdkit.quality import (
    PARTICIPANT_COLUMNS,
    PARTICIPANT_DTYPES,
    AssignmentRecord,
    judge,
    participant_row,
)
from crowdkit.study import Study
from crowdkit.tasks import AnswerKey
from crowdkit.trials import registry
from crowdkit.trials.base import TrialKeyBase

if TYPE_CHECKING:
    import pandas as pd

PSEUDONYM_HEX_DIGITS = 16
# What makes a spreadsheet read a CSV cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The tidy trials format (docs/data.md). A trial type's own columns that are not here
# (registry type's `tidy_columns`) come after these, before the participant's columns.
KEY_COLUMNS = {
    "study": "string", "target": "string", "participant_id": "string",
    "assignment_id": "string", "hit_id": "string", "task_id": "string",
    "trial_index": "int64", "block": "int64", "repeat_of": "int64", "phase": "string",
    "condition": "string",
    "reference_mode": "string", "n_references": "int64", "layer": "string",
    "channel": "int64", "unit": "string", "batch": "int64", "unit_selection": "string",
    "max_position": "string", "response": "string", "correct": "bool",
    "confidence": "int64", "rt_ms": "float64",
}
PARTICIPANT_TRIAL_COLUMNS = {"expert_level": "string", "excluded": "bool",
                             "exclusion_reasons": "string"}
TRIAL_COLUMNS = [*KEY_COLUMNS, *PARTICIPANT_TRIAL_COLUMNS]


def pseudonym(key: bytes, worker_id: str) -> str:
    """The participant id the exports carry: a keyed hash of the worker id.

    Stable within a study (the key lives in its ledger), unlinkable across studies and
    irreversible without the key.
    """
    digest = hmac.new(key, worker_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return "p" + digest[:PSEUDONYM_HEX_DIGITS]


def is_pseudonym(text: str) -> bool:
    """True for text shaped as `pseudonym` makes them (p and 16 lowercase hex digits)."""
    return re.fullmatch(rf"p[0-9a-f]{{{PSEUDONYM_HEX_DIGITS}}}", text) is not None


@dataclass
class Dataset:
    """Every assignment of the study, judged, with its tidy trial rows."""

    study: str
    records: list[AssignmentRecord]

    def trial_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for record in self.records:
            rows += tidy_rows(self.study, record)
        return rows

    def columns(self) -> dict[str, str]:
        """Column -> dtype of the trials table: the core format, then the trial types'."""
        extra: dict[str, str] = {}
        for name in sorted({t.type for r in self.records for t in r.key.trials}):
            for column, dtype in registry.get(name).tidy_columns.items():
                if column not in KEY_COLUMNS:
                    extra.setdefault(column, dtype)
        return {**KEY_COLUMNS, **extra, **PARTICIPANT_TRIAL_COLUMNS}

    def column_docs(self) -> dict[str, str]:
        """What the trial types say their own columns mean (for the codebook)."""
        docs: dict[str, str] = {}
        for name in sorted({t.type for r in self.records for t in r.key.trials}):
            docs.update(getattr(registry.get(name), "column_docs", {}))
        return docs

    def trials_frame(self) -> pd.DataFrame:
        import pandas as pd

        columns = self.columns()
        frame = pd.DataFrame(self.trial_rows(), columns=list(columns))
        dtypes = dict(columns)
        for column, dtype in columns.items():  # a column some rows leave empty
            if dtype in ("bool", "int64") and frame[column].isna().any():
                dtypes[column] = "boolean" if dtype == "bool" else "Int64"
        return frame.astype(dtypes)

    def participants_frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame([participant_row(r) for r in self.records],
                             columns=PARTICIPANT_COLUMNS)
        return frame.astype(PARTICIPANT_DTYPES)


def tidy_rows(study: str, record: AssignmentRecord) -> list[dict[str, Any]]:
    """One row per answered trial (practice: one per round), in the order shown."""
    payload = record.parsed.payload
    if payload is None:
        return []
    by_id: dict[str, TrialKeyBase] = {t.trial_id: t for t in record.key.trials}
    responses = sorted(payload.trials,
                       key=lambda r: (by_id[r.trial_id].trial_index, r.round))
    rows = []
    for response in responses:
        trial = by_id[response.trial_id]
        row: dict[str, Any] = {
            "study": study, "target": record.target, "participant_id": record.participant_id,
            "assignment_id": record.assignment_id, "hit_id": record.hit_id,
            "task_id": record.task_id, "trial_index": trial.trial_index, "block": trial.block,
            "repeat_of": trial.repeat_of, "phase": trial.phase,
            "condition": trial.condition, "layer": trial.layer, "channel": trial.channel,
            "unit": trial.unit_id, "batch": trial.batch,
            "unit_selection": trial.unit_selection,
        }
        row.update(registry.get(trial.type).tidy(trial, response))
        row.update({"expert_level": record.expert_level, "excluded": record.excluded,
                    "exclusion_reasons": record.exclusion_reasons})
        rows.append(row)
    return rows


def study_hits(ledger: Ledger) -> list[sqlite3.Row]:
    """The HITs the crowd platform knows about: those whose create call returned an id."""
    return [h for h in ledger.hits() if h["hit_id"] is not None]


def build_dataset(study: Study, ledger: Ledger,
                  assignments: list[sqlite3.Row] | None = None,
                  target: str | None = None) -> Dataset:
    """Parse every stored assignment of `target` (None: of every target) and judge it by the
    study's quality rules, each target's participants apart from the others'.

    `assignments` are the ledger's rows when the caller has read them already.
    """
    keys = {task.key.task_id: task.key for task in ledger.tasks()}
    hits = {h["hit_id"]: h for h in study_hits(ledger)
            if target is None or h["target"] == target}
    secret = ledger.pseudonym_key()
    records = []
    for row in ledger.assignments() if assignments is None else assignments:
        hit = hits.get(row["hit_id"])
        if hit is None or hit["task_id"] not in keys:
            continue
        key: AnswerKey = keys[hit["task_id"]]
        parsed: ParsedAnswer = parse_answer(row["answer_xml"], key)
        records.append(AssignmentRecord(
            assignment_id=row["assignment_id"], hit_id=row["hit_id"], task_id=key.task_id,
            target=hit["target"], worker_id=row["worker_id"],
            participant_id=pseudonym(secret, row["worker_id"]), status=row["status"],
            accept_time=row["accept_time"], submit_time=row["submit_time"],
            auto_approval_time=row["auto_approval_time"], parsed=parsed, key=key,
        ))
    for name in sorted({r.target for r in records}):
        judge([r for r in records if r.target == name], study.config,
              expert_workers=ledger.expert_qualification_workers())
    return Dataset(study=study.name, records=records)


def record_parse_results(ledger: Ledger, dataset: Dataset,
                         assignments: list[sqlite3.Row]) -> int:
    """Write each assignment's parse status to the ledger where it differs from the rows
    `assignments` hold; count the changes."""
    current = {r["assignment_id"]: (r["parse_status"], r["parse_error"]) for r in assignments}
    changed = 0
    with ledger.transaction():
        for record in dataset.records:
            status = "ok" if record.parsed.valid else "invalid"
            if current.get(record.assignment_id) != (status, record.parsed.reason):
                ledger.set_assignment_parse(record.assignment_id, status, record.parsed.reason)
                changed += 1
    return changed


def write_exports(dataset: Dataset, data_dir: Path) -> list[Path]:
    """Write trials.parquet, trials.csv, participants.csv and the codebook that explains
    their columns (codebook.md, codebook.json); return the files that changed.

    Each file is written atomically (crowdkit.files), so a reader never sees half a file,
    and left alone when its content would not change (the Parquet file follows trials.csv).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    trials = dataset.trials_frame()
    participants = dataset.participants_frame()
    trials_csv = spreadsheet_safe(trials).to_csv(index=False, lineterminator="\n")
    participants_csv = spreadsheet_safe(participants).to_csv(index=False, lineterminator="\n")
    book = codebook(trials, participants, dataset.column_docs())
    changed = []
    for name, text in (("trials.csv", trials_csv), ("participants.csv", participants_csv),
                       ("codebook.md", codebook_markdown(book)),
                       ("codebook.json", codebook_json(book))):
        if _write_if_changed(data_dir / name, text.encode("utf-8")):
            changed.append(data_dir / name)
    parquet = data_dir / "trials.parquet"
    if data_dir / "trials.csv" in changed or not parquet.exists():
        write_atomically(parquet, trials.to_parquet(index=False))
        changed.append(parquet)
    return changed


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as a CSV may carry it into a spreadsheet: no cell of text starts a formula.

    A text cell that starts with =, +, -, @, a tab or a carriage return gets a leading
    apostrophe (what spreadsheets read as "this is text"), and NUL characters are removed.
    Numbers stay numbers; the Parquet file keeps every text exactly as it came.
    """
    import pandas as pd

    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(_safe_cell, na_action="ignore")
    return safe


def _safe_cell(value: object) -> object:
    if not isinstance(value, str):
        return value
    text = value.replace("\x00", "")
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write_if_changed(path: Path, content: bytes) -> bool:
    if path.exists() and path.read_bytes() == content:
        return False
    write_atomically(path, content)
    return True
