"""What every trial type shares, and what a trial type must provide.

A trial type owns everything that depends on what one trial *is*:

- its design rows: the public half a page shows and the private key (`build`);
- its part of the worker's page: a Jinja template and a script in its own folder
  (`template_dir`), plus the JSON item each trial becomes (`page_item`, `image_keys`);
- the validation of its answers (`response_model`, strict pydantic);
- its tidy rows (`tidy`, with `tidy_columns` beyond the core ones);
- what the quality rules read (`observe`: right or wrong, which side, how fast);
- how a simulated participant answers it (`truth`, `simulate`).

The rest of crowdkit (design, templates, collect, quality, simulate) talks to trials only
through this interface, so a new kind of trial is one package plus one line in
`crowdkit.trials.registry`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from crowdkit.errors import ConfigError

if TYPE_CHECKING:
    from crowdkit.images import ImageRegistry
    from crowdkit.manifest import Manifest, Unit
    from crowdkit.study import StudyConfig

DEFAULT_TYPE = "2afc"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Typed(Strict):
    """A model with a `type` field that is left out of its JSON when it is the default.

    So the paper's 2-AFC tasks serialise exactly as they did before trial types existed,
    and ledgers written then still match their design hash. Fields added later that are
    None unless a design uses them (`OMITTED_WHEN_NONE`) are left out the same way.
    """

    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ()
    type: str = DEFAULT_TYPE

    @model_serializer(mode="wrap")
    def _drop_default_type(self, handler: SerializerFunctionWrapHandler,
                           info: SerializationInfo) -> Any:  # pydantic reads this: keep Any
        data = handler(self)
        if isinstance(data, dict):
            if data.get("type") == DEFAULT_TYPE:
                data.pop("type")
            for name in self.OMITTED_WHEN_NONE:
                if name in data and data[name] is None:
                    data.pop(name)
        return data


class PublicTrialBase(_Typed):
    """What a page gets about one trial. `phase` is never "main" or "catch": the page
    must not tell them apart. `block` numbers the task's blocks where a design has blocks
    the page cannot see from the conditions alone (the lab design); None elsewhere."""

    OMITTED_WHEN_NONE = ("block",)
    trial_id: str
    phase: str
    condition: str
    block: int | None = None


class TrialKeyBase(_Typed):
    """The private truth about one trial, kept in the ledger. `repeat_of` is the
    `trial_index` of the trial a repeated trial shows again."""

    OMITTED_WHEN_NONE = ("repeat_of",)
    trial_id: str
    trial_index: int
    phase: str
    condition: str
    block: int = 0
    unit_id: str
    layer: str
    channel: int
    unit_label: str = ""
    unit_selection: str = "picked"
    batch: int
    repeat_of: int | None = None


class ResponseBase(Strict):
    """One answer as the page submits it. Practice trials may repeat (one per round)."""

    trial_id: str = Field(min_length=1, max_length=64)
    rt_ms: float = Field(ge=0, le=3_600_000)
    round: int = Field(default=1, ge=1, le=100)


@dataclass(frozen=True)
class Slot:
    """One trial to build: which unit and batch, in which phase, condition and block.

    The rest is set by designs that need it: the trial type (`trial_type`), a reference set
    of the slot's own (`reference_mode`, `n_references`; None: [design]'s), the index in the
    task of the slot a repeated trial shows again (`repeat_of`), when a rating is asked
    (`at`), and whether the page shows the block number (`public_block`)."""

    phase: str  # practice, main, catch or repeated (or a trial type's own phase)
    condition: str
    block: int
    unit: Unit
    batch: int
    trial_type: str = DEFAULT_TYPE
    reference_mode: str | None = None
    n_references: int | None = None
    repeat_of: int | None = None
    at: str | None = None
    public_block: bool = False


@dataclass
class BuildContext:
    """What a trial type needs to turn slots into trials."""

    config: StudyConfig
    manifest: Manifest
    rng: random.Random
    images: ImageRegistry


@dataclass(frozen=True)
class Observation:
    """What the quality rules read from one answer: right or wrong (None: no right answer),
    the option chosen (for response variety; None: not a choice) and the reaction time."""

    correct: bool | None
    choice: str | None
    rt_ms: float | None


@dataclass
class SimulatedParticipant:
    """How a simulated participant behaves: its kind and its chance of a right answer.

    `trial_p` gives some trials a chance of their own (trial id -> p: the machine observer's
    probability of the right choice, `crowdkit simulate --observer mis`), of which a share
    `lapse` of answers are guesses. Catch trials keep `catch_accuracy`: they test attention,
    which a person has and a similarity function does not model."""

    kind: str
    accuracy: dict[str, float]
    catch_accuracy: float
    rt_median_ms: float = 4000.0
    rt_sigma: float = 0.5
    trial_p: dict[str, float] = field(default_factory=dict)
    lapse: float = 0.0

    def p_correct(self, condition: str, is_catch: bool, trial_id: str | None = None) -> float:
        if is_catch:
            return 0.0 if self.kind == "catch-fail" else self.catch_accuracy
        if trial_id is not None and trial_id in self.trial_p:
            return self.lapse / 2 + (1 - self.lapse) * self.trial_p[trial_id]
        return self.accuracy.get(condition, 0.5)


class TrialType:
    """The interface of a trial type; subclasses fill in every method."""

    name: ClassVar[str]
    public_model: ClassVar[type[PublicTrialBase]]
    key_model: ClassVar[type[TrialKeyBase]]
    response_model: ClassVar[type[ResponseBase]]
    # Columns this type adds to the tidy trials table beyond the core ones, with dtypes.
    tidy_columns: ClassVar[dict[str, str]] = {}
    # The folder of its page part: `page.html` (screens) and `page.js` (the renderer).
    template_dir: ClassVar[Path]

    def check(self, config: StudyConfig, manifest: Manifest) -> list[str]:
        """Problems that make the manifest unusable for this design (one line each)."""
        return []

    def build(self, task_id: str, slots: Sequence[tuple[int, str, Slot]], ctx: BuildContext
              ) -> list[tuple[PublicTrialBase, TrialKeyBase]]:
        """This type's trials of one task from (index in the task, trial id, slot), in order.

        The rest of the task's trials (other types) are built separately; `index` is the
        trial's place among all of them."""
        raise NotImplementedError

    def image_keys(self, trial: PublicTrialBase) -> list[str]:
        """Every image key the trial shows, in the order its script consumes them."""
        raise NotImplementedError

    def page_item(self, trial: PublicTrialBase) -> dict[str, Any]:
        """The trial as the page's JSON item (images travel packed, apart from this)."""
        raise NotImplementedError

    def leak(self, trial: PublicTrialBase, feedback_allowed: bool = False) -> str | None:
        """Why showing this public trial would give the answer away, or None.
        `feedback_allowed`: the study asks for feedback after every trial ([design]
        feedback = "all"), so test trials carry their answers on purpose."""
        return None

    def page_context(self, trials: Sequence[PublicTrialBase], config: StudyConfig
                     ) -> dict[str, Any]:
        """Names this type's templates use, for the trials of one page."""
        return {}

    def observe(self, key: TrialKeyBase, response: ResponseBase) -> Observation:
        raise NotImplementedError

    def answer_problem(self, key: TrialKeyBase, response: ResponseBase) -> str | None:
        """Why an answer that passed `response_model` cannot be one the page sent for this
        trial (a rating outside the trial's scale, say), or None."""
        return None

    def tidy(self, key: TrialKeyBase, response: ResponseBase) -> dict[str, Any]:
        """This type's columns of the tidy row of one answer."""
        raise NotImplementedError

    def truth(self, key: TrialKeyBase) -> object:
        """The right answer, as a simulated participant's oracle knows it (never sent out);
        None when the trial has no right answer. Only the type's own `simulate` reads it."""
        raise NotImplementedError

    def simulate(self, item: dict[str, Any], answer: object, is_catch: bool,
                 participant: SimulatedParticipant, rng: random.Random) -> dict[str, Any]:
        """The response a simulated participant gives to a page item, knowing the right
        `answer` (practice trials carry theirs in the page item)."""
        raise NotImplementedError

    def practice_right(self, item: dict[str, Any], response: dict[str, Any]) -> bool:
        """Whether a simulated practice response was right (the page tells the worker)."""
        raise NotImplementedError


M = TypeVar("M", bound=BaseModel)


def expect_model(value: BaseModel, model: type[M], what: str, subject: str = "trial") -> M:
    """`value` as the trial type's own model; a ConfigError naming the trial otherwise.

    A trial type receives the base models (the registry dispatches by `type`); a value of
    another type reaching it means a design or answer mixed up types, which must stop the
    command with a line, not with an attribute error somewhere later.
    """
    if not isinstance(value, model):
        raise ConfigError(f"{subject} {getattr(value, 'trial_id', '?')} is not {what}")
    return value
