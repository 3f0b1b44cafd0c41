"""The worker payload: the `data` JSON field the HIT page submits (DESIGN.md).

The page (hit_templates) writes exactly this shape; `crowdkit.collect` parses it with this
model. It holds what the worker did, never whether it was right: correctness is computed at
collect time from the ledger's answer key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PAYLOAD_SCHEMA_VERSION = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrialResponse(Strict):
    """One answer. Practice trials may appear once per round; other trials exactly once."""

    trial_id: str = Field(min_length=1, max_length=64)
    response: Literal["top", "bottom"]
    confidence: int = Field(ge=1, le=3)
    rt_ms: float = Field(ge=0, le=3_600_000)
    round: int = Field(default=1, ge=1, le=100)


class Timing(Strict):
    instructions_ms: float = Field(ge=0)
    total_ms: float = Field(ge=0)


class Questionnaire(Strict):
    """Self-report on a 0-3 scale: 0 none, 1 heard of it, 2 studied or used it, 3 research."""

    cnn_experience: int = Field(ge=0, le=3)
    fv_experience: int = Field(ge=0, le=3)
    feedback: str = Field(default="", max_length=5000)


class ClientInfo(Strict):
    window_width: int | None = Field(default=None, ge=0)
    window_height: int | None = Field(default=None, ge=0)
    user_agent: str | None = Field(default=None, max_length=1000)


class Payload(Strict):
    schema_version: Literal[1] = PAYLOAD_SCHEMA_VERSION
    task_id: str = Field(min_length=1, max_length=128)
    trials: list[TrialResponse]
    practice_rounds: int = Field(default=0, ge=0, le=100)
    timing: Timing
    questionnaire: Questionnaire | None = None
    client: ClientInfo = Field(default_factory=ClientInfo)
