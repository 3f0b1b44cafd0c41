"""The worker payload: the `data` JSON field the HIT page submits (docs/architecture.md).

The page (hit_templates) writes exactly this shape; `crowdkit.collect` parses it with this
model. It holds what the worker did, never whether it was right: correctness is computed at
collect time from the ledger's answer key.

The envelope (task, timing, questionnaire, client) is the same for every study. Each entry
of `trials` is an answer to one trial and is validated by that trial's type
(crowdkit.trials): pass the task's answer key as validation context,
`Payload.model_validate(data, strict=True, context={"key": key})`, and every answer is
checked against its own trial's type. Without a key, answers are read as the paper's 2-AFC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from crowdkit.trials import registry
from crowdkit.trials.base import DEFAULT_TYPE, ResponseBase

if TYPE_CHECKING:
    from crowdkit.tasks import AnswerKey

PAYLOAD_SCHEMA_VERSION: Final = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnknownResponse(ResponseBase):
    """An answer to a trial the task does not have: kept as sent, so the answer-key check
    can say "unknown trial ids" rather than guessing at its shape."""

    model_config = ConfigDict(extra="allow")


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
    trials: list[SerializeAsAny[ResponseBase]]
    practice_rounds: int = Field(default=0, ge=0, le=100)
    timing: Timing
    questionnaire: Questionnaire | None = None
    client: ClientInfo = Field(default_factory=ClientInfo)

    @field_validator("trials", mode="before")
    @classmethod
    def _typed_answers(cls, value: object, info: ValidationInfo) -> object:
        """Validate each answer with its trial's type; errors keep the answer's index."""
        if not isinstance(value, list):
            return value
        key = (info.context or {}).get("key")
        answers, errors = [], []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                answers.append(item)  # reported by pydantic as the wrong type
                continue
            try:
                answers.append(response_model(item, key).model_validate(item, strict=True))
            except ValidationError as exc:
                errors += [_at(index, err) for err in exc.errors()]
        if errors:
            raise ValidationError.from_exception_data("Payload", errors)
        return answers


def response_model(item: dict[str, Any], key: AnswerKey | None) -> type[ResponseBase]:
    """The model an answer is validated with: its trial's type's, from the answer key."""
    if key is None:
        return registry.get(DEFAULT_TYPE).response_model
    trial_id = item.get("trial_id")
    if not isinstance(trial_id, str):
        return registry.get(DEFAULT_TYPE).response_model  # reports the wrong type of id
    for trial in key.trials:
        if trial.trial_id == trial_id:
            return registry.get(trial.type).response_model
    return UnknownResponse


def _at(index: int, err: ErrorDetails) -> InitErrorDetails:
    """A nested answer's error, placed at its index in `trials`."""
    detail: InitErrorDetails = {"type": err["type"], "loc": (index, *err["loc"]),
                                "input": err.get("input")}
    if "ctx" in err:
        detail["ctx"] = err["ctx"]
    return detail
