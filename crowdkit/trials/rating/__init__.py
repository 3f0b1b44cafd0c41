"""Rating trials: a unit's explanation rated on a slider (the paper's intuitiveness ratings).

Borowski et al. asked each participant, before the 2-AFC trials (Experiment I) or before and
after them (Experiment II), to rate three units: each shown as 9 synthetic and 9 natural
maximally activating images, with the question "How intuitive do you find the explanation of
these optimized images for the given natural images?" on a slider from -100 to 100. Here the
question, the images (the `explanation` condition's and the `given` one's), the slider's
range and end labels and when ratings are asked come from [design.ratings].

A rating has no right answer: its tidy row has `rating` and `rating_time` (start or end),
an empty `correct`, and the reaction time from the images' showing to the answer. The page's
slider is a native range input (arrow keys, Page Up/Down, Home/End), and the answer can be
sent only after the slider was moved, so nobody rates by leaving it where it started.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import Field

from crowdkit import sources
from crowdkit.manifest import ImageRef, Manifest
from crowdkit.study import StudyConfig
from crowdkit.trials.base import (
    BuildContext,
    Observation,
    PublicTrialBase,
    ResponseBase,
    SimulatedParticipant,
    Slot,
    Strict,
    TrialKeyBase,
    TrialType,
    expect_model,
)

RatingTime = Literal["start", "end"]
MAX_ONLY = "max-only"


class RatingImages(Strict):
    """The explanation's images, and the images it is rated for (may be none)."""

    explanation: list[str]
    given: list[str] = Field(default_factory=list)


class PublicRating(PublicTrialBase):
    type: str = "rating"
    phase: Literal["rating"] = "rating"
    images: RatingImages
    at: RatingTime
    scale: tuple[int, int]


class RatingKey(TrialKeyBase):
    type: str = "rating"
    phase: Literal["rating"] = "rating"
    rating_time: RatingTime
    given: str
    low: int
    high: int


class RatingResponse(ResponseBase):
    """One rating as the page sends it: the slider's value (its range: the trial's key)."""

    rating: int = Field(ge=-10_000, le=10_000)


class Rating(TrialType):
    name = "rating"
    public_model = PublicRating
    key_model = RatingKey
    response_model = RatingResponse
    tidy_columns = {"rating": "float64", "rating_time": "string"}
    template_dir = Path(__file__).resolve().parent

    # -- design ------------------------------------------------------------------------

    def check(self, config: StudyConfig, manifest: Manifest) -> list[str]:
        r, selection = config.design.ratings, config.design.image_selection
        problems = []
        for unit in (u for u in manifest.units if u.id in set(r.units)):
            for name in filter(None, (r.explanation, r.given)):
                source = sources.find(name)
                problem = source.problem(unit, r.n_images, MAX_ONLY, selection) if source else None
                if problem:
                    problems.append(problem.replace("condition", "rating", 1))
            smallest = min(len(b.max) for b in unit.natural.batches)
            if "natural" in (r.explanation, r.given) and smallest < r.n_images + 1:
                problems.append(f"manifest: unit {unit.id} has batches of {smallest} max "
                                f"images; a rating shows {r.n_images} natural ones, the "
                                f"references of its batch, and needs {r.n_images + 1}")
        return problems

    def build(self, task_id: str, slots: Sequence[tuple[int, str, Slot]], ctx: BuildContext
              ) -> list[tuple[PublicTrialBase, TrialKeyBase]]:
        return [self._trial(trial_id, index, slot, ctx) for index, trial_id, slot in slots]

    def _images(self, name: str, slot: Slot, ctx: BuildContext) -> list[ImageRef]:
        if not name:
            return []
        d = ctx.config.design
        max_refs, _ = sources.get(name).references(
            slot.unit, slot.unit.natural.batch(slot.batch), d.ratings.n_images, MAX_ONLY,
            d.image_selection)
        return max_refs

    def _trial(self, trial_id: str, index: int, slot: Slot, ctx: BuildContext
               ) -> tuple[PublicRating, RatingKey]:
        r = ctx.config.design.ratings
        keys = {name: [ctx.images.key(ref.path, ref.sha256)
                       for ref in self._images(name, slot, ctx)]
                for name in (r.explanation, r.given)}
        at = cast(RatingTime, slot.at or "start")
        public = PublicRating(
            trial_id=trial_id, condition=slot.condition, at=at, scale=(r.low, r.high),
            block=slot.block if slot.public_block else None,
            images=RatingImages(explanation=keys[r.explanation], given=keys.get(r.given, [])))
        unit = slot.unit
        key = RatingKey(
            trial_id=trial_id, trial_index=index, condition=slot.condition, block=slot.block,
            unit_id=unit.id, layer=unit.layer, channel=unit.channel, unit_label=unit.label,
            unit_selection=unit.selection, batch=slot.batch, rating_time=at, given=r.given,
            low=r.low, high=r.high)
        return public, key

    # -- the page ----------------------------------------------------------------------

    def image_keys(self, trial: PublicTrialBase) -> list[str]:
        """The explanation's images, then the given ones."""
        t = _public(trial)
        return [*t.images.explanation, *t.images.given]

    def page_item(self, trial: PublicTrialBase) -> dict[str, Any]:
        t = _public(trial)
        item: dict[str, Any] = {"id": t.trial_id, "phase": t.phase, "cond": t.condition,
                                "at": t.at, "scale": list(t.scale),
                                "n": [len(t.images.explanation), len(t.images.given)]}
        if t.block is not None:
            item["blk"] = t.block
        return item

    def page_context(self, trials: Sequence[PublicTrialBase], config: StudyConfig
                     ) -> dict[str, Any]:
        r = config.design.ratings
        given = sources.find(r.given) if r.given else None
        return {"rating": {
            "question": r.question, "low_label": r.labels[0], "high_label": r.labels[1],
            "low": r.low, "high": r.high,
            "explanation_label": _capitalised(sources.get(r.explanation).label),
            "given_label": _capitalised(given.label) if given else "",
            "times": sorted({_public(t).at for t in trials}),
        }}

    # -- answers -----------------------------------------------------------------------

    def observe(self, key: TrialKeyBase, response: ResponseBase) -> Observation:
        return Observation(correct=None, choice=None, rt_ms=_response(response).rt_ms)

    def answer_problem(self, key: TrialKeyBase, response: ResponseBase) -> str | None:
        k, r = _key(key), _response(response)
        if not k.low <= r.rating <= k.high:
            return f"rating {r.rating} is off the slider's scale {k.low} to {k.high}"
        return None

    def tidy(self, key: TrialKeyBase, response: ResponseBase) -> dict[str, Any]:
        k, r = _key(key), _response(response)
        return {"rating": float(r.rating), "rating_time": k.rating_time,
                "rt_ms": float(r.rt_ms)}

    # -- simulated participants ----------------------------------------------------------

    def truth(self, key: TrialKeyBase) -> None:
        return None

    def simulate(self, item: dict[str, Any], answer: object, is_catch: bool,
                 participant: SimulatedParticipant, rng: random.Random) -> dict[str, Any]:
        """A rating spread around the scale's middle (the paper's mean was near 0), moved
        off the starting point as the page requires, and a reaction time of seconds."""
        low, high = (int(v) for v in item.get("scale", (-100, 100)))
        middle, spread = (low + high) / 2, (high - low) / 4
        rating = min(high, max(low, round(rng.gauss(middle, spread))))
        rt = max(500.0, rng.lognormvariate(math.log(3 * participant.rt_median_ms), 0.4))
        return {"trial_id": item["id"], "rating": rating, "rt_ms": round(rt, 1)}

    def practice_right(self, item: dict[str, Any], response: dict[str, Any]) -> bool:
        return True


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _public(trial: PublicTrialBase) -> PublicRating:
    return expect_model(trial, PublicRating, "a rating trial")


def _key(key: TrialKeyBase) -> RatingKey:
    return expect_model(key, RatingKey, "a rating trial")


def _response(response: ResponseBase) -> RatingResponse:
    return expect_model(response, RatingResponse, "a rating", subject="answer to trial")
