"""Tasks: what one HIT shows one participant, in a public half and a private key.

The *public* half (`PublicTask`) is all the worker's page gets: opaque trial ids, image keys
(content hashes) and screen positions. The *key* half (`AnswerKey`) stays in the ledger and
says which answer is right, which trial is a catch trial, and which unit and batch it shows.
Each trial is a model of its trial type (crowdkit.trials): a stored trial names its type in
`type`, and a trial without one is the paper's 2-AFC, as every trial was before types
existed.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, SerializeAsAny, field_validator

from crowdkit.trials import registry
from crowdkit.trials.base import DEFAULT_TYPE, PublicTrialBase, TrialKeyBase

TASK_SCHEMA_VERSION: Final = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _as_type_model(value: object, kind: Literal["public", "key"]) -> object:
    """A stored trial (a dict) as the model of its trial type; models pass through."""
    if not isinstance(value, dict):
        return value
    trial_type = registry.get(str(value.get("type", DEFAULT_TYPE)))
    model = trial_type.public_model if kind == "public" else trial_type.key_model
    return model.model_validate(value)


class PublicTask(Strict):
    schema_version: Literal[1] = TASK_SCHEMA_VERSION
    task_id: str
    study: str
    trials: list[SerializeAsAny[PublicTrialBase]]

    @field_validator("trials", mode="before")
    @classmethod
    def _typed_trials(cls, value: object) -> object:
        if isinstance(value, list):
            return [_as_type_model(v, "public") for v in value]
        return value


class AnswerKey(Strict):
    task_id: str
    condition_order: list[str]
    trials: list[SerializeAsAny[TrialKeyBase]]

    @field_validator("trials", mode="before")
    @classmethod
    def _typed_trials(cls, value: object) -> object:
        if isinstance(value, list):
            return [_as_type_model(v, "key") for v in value]
        return value

    def trial(self, trial_id: str) -> TrialKeyBase:
        for trial in self.trials:
            if trial.trial_id == trial_id:
                return trial
        raise KeyError(trial_id)


class DesignedTask(Strict):
    public: PublicTask
    key: AnswerKey
