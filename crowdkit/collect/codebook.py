"""codebook.md and codebook.json beside the exports: every column of every file, explained.

A data set shared with a paper must say what each column means without the reader having
crowdkit's documentation at hand. `collect` writes the codebook with the exports it
describes, from the frames it just wrote, so it names exactly the columns those files
have (a trial type's own columns included) with their types and, for columns of few
values, the values that occur.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from crowdkit.quality import RULES

if TYPE_CHECKING:
    import pandas as pd

FEW_VALUES = 12  # a category column with at most this many distinct values lists them
# Columns whose values are categories crowdkit itself writes. Only these (and booleans) list
# their values: a column of participants' text or of ids would copy what a worker typed, or
# who took part, into a file meant to be shared with a paper.
CATEGORIES = frozenset({
    "target", "phase", "condition", "reference_mode", "unit_selection", "max_position",
    "response", "expert_level", "status", "expert_source", "rating_time",
})

TRIALS = {
    "study": "the study's name ([study] name in study.toml)",
    "target": "where the data come from: local (the offline twin: simulated or test "
              "participants), sandbox (MTurk's sandbox: no money, test workers) or live",
    "participant_id": "a pseudonym of the worker: p + 16 hex digits of HMAC-SHA256 under a "
                      "key kept in the study's ledger; stable within the study, unlinkable "
                      "across studies",
    "assignment_id": "the platform's id of the assignment (one participant doing one HIT)",
    "hit_id": "the platform's id of the HIT",
    "task_id": "the design's task (the HIT layout) the assignment showed",
    "trial_index": "the trial's position within the HIT, 0 first",
    "block": "the block of the HIT the trial was in, 0 first",
    "repeat_of": "for a repeated trial, the trial_index of the trial it repeats; empty "
                 "otherwise",
    "phase": "practice (with feedback, not analysed), main (analysed) or catch (an "
             "attention check with an obvious answer)",
    "condition": "the reference images shown: natural (dataset exemplars), synthetic "
                 "(feature visualizations), none, or another method's name",
    "reference_mode": "which references were shown: min+max (both sides) or max-only",
    "n_references": "reference images per side",
    "layer": "the network module whose feature map is the unit (lucent's name, such as "
             "mixed4a_3x3_pre_relu_conv; crowdkit analyze shows it as the paper's 4a)",
    "channel": "the unit's channel within that module's output",
    "unit": "the unit's id in the stimulus manifest (the paper's numbering, such as 4a:257)",
    "batch": "the natural-exemplar batch the trial's images came from",
    "unit_selection": "how the unit was chosen: random or picked (by hand)",
    "max_position": "where the maximally activating query image was shown: top or bottom",
    "response": "where the query the participant chose was shown: top or bottom",
    "correct": "true when the participant chose the maximally activating query "
               "(response equals max_position), judged from the ledger's answer key",
    "confidence": "the participant's confidence: 1 (unsure) to 3 (very sure)",
    "rt_ms": "reaction time from the query's onset to the answer, in milliseconds",
    "expert_level": "expert, lay or unknown: the participant's experience with CNNs "
                    "([participants] expert_rule)",
    "excluded": "true when the assignment failed an exclusion rule ([quality]); crowdkit "
                "analyze leaves such rows out",
    "exclusion_reasons": "the rules the assignment failed, joined by ';'; empty if none",
}

PARTICIPANTS = {
    "participant_id": TRIALS["participant_id"],
    "assignment_id": TRIALS["assignment_id"],
    "hit_id": TRIALS["hit_id"],
    "task_id": TRIALS["task_id"],
    "target": TRIALS["target"],
    "status": "the platform's status as of the last collect: Submitted, Approved or Rejected",
    "accept_time": "when the worker accepted the HIT (ISO 8601, UTC)",
    "submit_time": "when the worker submitted it (ISO 8601, UTC)",
    "instructions_s": "seconds the page showed the instructions",
    "total_s": "seconds from opening the task to submitting it",
    "n_responses": "trial responses in the answer (practice rounds included)",
    "catch_accuracy": "proportion correct on catch trials",
    "valid": "true when the answer could be parsed and checked; an invalid answer has no "
             "rows in the trials table",
    "invalid_reason": "why the answer is invalid; empty when valid",
    "expert_source": "which source decided expert_level (questionnaire, worker_list, "
                     "qualification)",
    "cnn_experience": "the questionnaire's self-reported experience with CNNs, 0 to 3",
    "fv_experience": "the questionnaire's self-reported experience with feature "
                     "visualizations, 0 to 3",
    "feedback": "the participant's free-text feedback",
    "expert_level": TRIALS["expert_level"],
    "excluded": TRIALS["excluded"],
    "exclusion_reasons": TRIALS["exclusion_reasons"],
    **{f"rule_{name}": f"the {name} quality rule: pass, fail, or n/a when it did not apply"
       for name in RULES},
}

FILES = (
    ("trials.parquet, trials.csv", "one row per trial response (a practice trial once per "
     "round taken); the same table in two formats, Parquet keeping the types", TRIALS),
    ("participants.csv", "one row per assignment, valid or not, with every rule's result",
     PARTICIPANTS),
)


def codebook(trials: pd.DataFrame, participants: pd.DataFrame,
             extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The codebook as data: per file, its rows and each of its columns in order.

    `extra` describes columns crowdkit's own tables do not know (a trial type's own).
    """
    files = []
    for (names, rows, meanings), frame in zip(FILES, (trials, participants), strict=True):
        known = {**meanings, **(extra or {})}
        files.append({
            "files": names,
            "rows": rows,
            "columns": [_column(name, frame[name], known) for name in frame.columns],
        })
    return {"files": files}


def _column(name: str, values: pd.Series, known: dict[str, str]) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name, "type": str(values.dtype),
        "meaning": known.get(name, "a column of one of the study's trial types"),
    }
    listed = name in CATEGORIES or values.dtype.kind == "b" or str(values.dtype) == "boolean"
    distinct = list(values.dropna().unique()) if listed else []
    if 0 < len(distinct) <= FEW_VALUES:
        column["values"] = sorted(str(v) for v in distinct)
    return column


def codebook_markdown(book: dict[str, Any]) -> str:
    """codebook.md: a section per file, a table of its columns."""
    lines = ["# Codebook", "",
             "Written by `crowdkit collect` with the files it describes. Empty cells mean "
             "\"not available\". No file holds a worker id.", ""]
    for entry in book["files"]:
        lines += [f"## {entry['files']}", "", entry["rows"][0].upper() + entry["rows"][1:] + ".",
                  "", "| column | type | meaning | values |", "|---|---|---|---|"]
        for column in entry["columns"]:
            values = ", ".join(f"`{_cell(v)}`" for v in column.get("values", []))
            meaning = column["meaning"].replace("|", "\\|")
            lines.append(f"| `{column['name']}` | {column['type']} | {meaning} | {values} |")
        lines.append("")
    return "\n".join(lines)


def _cell(value: str) -> str:
    """A value inside a Markdown table cell: one line, no column break, no code-span end."""
    return " ".join(value.split()).replace("|", "\\|").replace("`", "'")


def codebook_json(book: dict[str, Any]) -> str:
    return json.dumps(book, indent=2) + "\n"
