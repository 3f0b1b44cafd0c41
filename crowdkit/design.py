"""Manifest -> tasks (the trials of one HIT) + answer key.

A task has two halves. The *public* half is all the worker's page gets: opaque trial ids,
image keys (content hashes) and screen positions. The *key* half stays in the ledger and
says which query is the max one, which trial is a catch trial, and which unit and batch it
shows. Nothing in the public half -- ids, keys, order -- tells the max query apart, except on
practice trials, whose feedback needs it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TASK_SCHEMA_VERSION = 1
Position = Literal["top", "bottom"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class References(Strict):
    """Reference image keys by screen side. The min side is empty in max-only mode."""

    left: list[str] = Field(default_factory=list)
    right: list[str] = Field(default_factory=list)


class Queries(Strict):
    top: str
    bottom: str


class Feedback(Strict):
    correct: Position


class PublicTrial(Strict):
    """What the page shows for one trial. `phase` is "practice" or "test" (main and catch)."""

    trial_id: str
    phase: Literal["practice", "test"]
    condition: str
    references: References
    queries: Queries
    feedback: Feedback | None = None


class PublicTask(Strict):
    schema_version: Literal[1] = TASK_SCHEMA_VERSION
    task_id: str
    study: str
    trials: list[PublicTrial]


class TrialKey(Strict):
    """The private truth about one trial, kept in the ledger."""

    trial_id: str
    trial_index: int
    phase: Literal["practice", "main", "catch"]
    condition: str
    block: int = 0
    unit_id: str
    layer: str
    channel: int
    unit_label: str = ""
    unit_selection: str = "picked"
    batch: int
    max_position: Position
    reference_mode: str
    n_references: int


class AnswerKey(Strict):
    task_id: str
    condition_order: list[str]
    trials: list[TrialKey]


class DesignedTask(Strict):
    public: PublicTask
    key: AnswerKey
