"""The paper's trial: a two-alternative forced choice between two queries (Borowski et al.).

References sit left and right (min on one side, max on the other, or max only), two queries
in the centre, one above the other; the worker picks the query that activates the feature
map more strongly, with a confidence of 1-3. The max query is the batch's max rank 9, the
min query its min rank 0, natural in every condition; which references are shown comes
from the condition's reference source (crowdkit.sources). A catch trial's queries are
byte-level copies of a shown max and min reference, so attention alone answers it.

Nothing public says which query is the max one, except on practice trials, whose feedback
needs it (and on every trial of a study that asks for feedback after each one,
[design] feedback = "all"). A repeated trial shows an earlier main trial of the task again,
its queries' positions drawn afresh, as the paper's lab experiment did.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import Field

from crowdkit import sources
from crowdkit.manifest import Manifest
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

Position = Literal["top", "bottom"]
KeyPhase = Literal["practice", "main", "catch", "repeated"]


class References(Strict):
    """Reference image keys by screen side. The min side is empty in max-only mode."""

    left: list[str] = Field(default_factory=list)
    right: list[str] = Field(default_factory=list)


class Queries(Strict):
    top: str
    bottom: str


class Feedback(Strict):
    correct: Position


class PublicTrial(PublicTrialBase):
    """What the page shows for one trial. `phase` is "practice" or "test" (main and catch)."""

    phase: Literal["practice", "test"]
    references: References
    queries: Queries
    feedback: Feedback | None = None


class TrialKey(TrialKeyBase):
    phase: KeyPhase
    max_position: Position
    reference_mode: str
    n_references: int


class TrialResponse(ResponseBase):
    """One answer: which query (by screen position) and how sure (1-3)."""

    response: Position
    confidence: int = Field(ge=1, le=3)


def balanced_positions(n: int, rng: random.Random, odd_extra: str | None = None) -> list[str]:
    """n positions, exactly half "top" (for even n), in an unpredictable order."""
    positions = ["top"] * (n // 2) + ["bottom"] * (n // 2)
    if n % 2:
        positions.append(odd_extra or rng.choice(["top", "bottom"]))
    rng.shuffle(positions)
    return positions


def _other(position: str) -> str:
    return "bottom" if position == "top" else "top"


class TwoAFC(TrialType):
    name = "2afc"
    public_model = PublicTrial
    key_model = TrialKey
    response_model = TrialResponse
    template_dir = Path(__file__).resolve().parent

    # -- design ------------------------------------------------------------------------

    def check(self, config: StudyConfig, manifest: Manifest) -> list[str]:
        d = config.design
        sets = d.references()
        n = max(rs.n for rs in sets)
        rated = set(d.ratings.units)
        problems = []
        condition_sources = [sources.get(c) for c in d.conditions
                             if sources.find(c) is not None]
        for unit in manifest.units:
            if unit.id in rated:
                continue  # rating units show no 2-AFC trials (the rating type checks them)
            for batch in unit.natural.batches:
                if min(len(batch.max), len(batch.min)) < n + 1:
                    problems.append(
                        f"manifest: unit {unit.id} batch {batch.index} has too few images for "
                        f"n_references = {n} (needs {n + 1} per side: {n} references + 1 "
                        "query)")
                    break
            for source in condition_sources:
                for rs in sets:
                    problem = source.problem(unit, rs.n, rs.mode, d.image_selection)
                    if problem:
                        problems.append(problem)
                        break
        return problems

    def build(self, task_id: str, slots: Sequence[tuple[int, str, Slot]], ctx: BuildContext
              ) -> list[tuple[PublicTrialBase, TrialKeyBase]]:
        positions = self._positions([slot for _, _, slot in slots], ctx.rng)
        built: dict[int, tuple[PublicTrial, TrialKey]] = {}
        for (index, trial_id, slot), max_pos in zip(slots, positions, strict=True):
            if slot.repeat_of is not None:
                built[index] = self._repeat(trial_id, index, slot, max_pos, ctx,
                                            built[slot.repeat_of])
            else:
                built[index] = self._trial(trial_id, index, slot, max_pos, ctx)
        return [built[index] for index, _, _ in slots]

    def _positions(self, slots: list[Slot], rng: random.Random) -> list[str]:
        """Balance max-on-top within practice, main and catch trials, and overall."""
        by_phase: dict[str, list[int]] = defaultdict(list)
        for i, slot in enumerate(slots):
            by_phase[slot.phase].append(i)
        out = [""] * len(slots)
        main_pos = balanced_positions(len(by_phase["main"]), rng)
        odd = None
        if len(by_phase["main"]) % 2 and len(by_phase["catch"]) % 2:
            odd = "bottom" if main_pos.count("top") > main_pos.count("bottom") else "top"
        catch_pos = balanced_positions(len(by_phase["catch"]), rng, odd)
        practice_pos = balanced_positions(len(by_phase["practice"]), rng)
        repeated_pos = balanced_positions(len(by_phase["repeated"]), rng)
        for phase, pos in (("main", main_pos), ("catch", catch_pos), ("practice", practice_pos),
                           ("repeated", repeated_pos)):
            for i, p in zip(by_phase[phase], pos, strict=True):
                out[i] = p
        return out

    def _trial(self, trial_id: str, index: int, slot: Slot, max_pos: str,
               ctx: BuildContext) -> tuple[PublicTrial, TrialKey]:
        d = ctx.config.design
        mode = slot.reference_mode or d.reference_mode
        n = slot.n_references or d.n_references
        unit, batch = slot.unit, slot.unit.natural.batch(slot.batch)
        source = sources.get(slot.condition)
        if slot.phase == "catch" and not source.shows_references:
            # A catch trial needs something to copy: the batch's natural exemplars.
            source = sources.get("natural")
        max_refs, min_refs = source.references(unit, batch, n, mode, d.image_selection)
        images = ctx.images
        if slot.phase == "catch":
            max_src = ctx.rng.choice(max_refs)
            min_src = ctx.rng.choice(min_refs) if min_refs else batch.min[0]
            max_key = images.copy_key(max_src.path, f"{trial_id}:max")
            min_key = images.copy_key(min_src.path, f"{trial_id}:min")
        else:
            max_key = images.key(batch.max[-1].path, batch.max[-1].sha256)
            min_key = images.key(batch.min[0].path, batch.min[0].sha256)
        max_keys = [images.key(r.path, r.sha256) for r in max_refs]
        min_keys = [images.key(r.path, r.sha256) for r in min_refs]
        refs = (References(left=min_keys, right=max_keys) if d.max_side == "right"
                else References(left=max_keys, right=min_keys))
        queries = Queries(**{max_pos: max_key, _other(max_pos): min_key})
        public = self._public(trial_id, slot, refs, queries, max_pos, ctx)
        key = TrialKey(
            trial_id=trial_id, trial_index=index, phase=cast(KeyPhase, slot.phase),
            condition=slot.condition, block=slot.block, unit_id=unit.id, layer=unit.layer,
            channel=unit.channel, unit_label=unit.label, unit_selection=unit.selection,
            batch=batch.index, max_position=cast(Position, max_pos), reference_mode=mode,
            n_references=n if max_refs else 0,
        )
        return public, key

    def _public(self, trial_id: str, slot: Slot, refs: References, queries: Queries,
                max_pos: str, ctx: BuildContext) -> PublicTrial:
        practice = slot.phase == "practice"
        told = practice or ctx.config.design.feedback == "all"
        return PublicTrial(
            trial_id=trial_id, phase="practice" if practice else "test",
            condition=slot.condition, block=slot.block if slot.public_block else None,
            references=refs, queries=queries,
            feedback=Feedback(correct=cast(Position, max_pos)) if told else None,
        )

    def _repeat(self, trial_id: str, index: int, slot: Slot, max_pos: str, ctx: BuildContext,
                original: tuple[PublicTrial, TrialKey]) -> tuple[PublicTrial, TrialKey]:
        """An earlier trial shown again: the same images, the queries placed afresh."""
        first, first_key = original
        pair = (first.queries.top, first.queries.bottom)
        max_key, min_key = pair if first_key.max_position == "top" else pair[::-1]
        queries = Queries(**{max_pos: max_key, _other(max_pos): min_key})
        public = self._public(trial_id, slot, first.references, queries, max_pos, ctx)
        key = first_key.model_copy(update={
            "trial_id": trial_id, "trial_index": index, "phase": "repeated",
            "block": slot.block, "max_position": max_pos, "repeat_of": slot.repeat_of})
        return public, key

    # -- the page ----------------------------------------------------------------------

    def image_keys(self, trial: PublicTrialBase) -> list[str]:
        """Left references, right references, top query, bottom query."""
        t = _public(trial)
        return [*t.references.left, *t.references.right, t.queries.top, t.queries.bottom]

    def page_item(self, trial: PublicTrialBase) -> dict[str, Any]:
        t = _public(trial)
        item: dict[str, Any] = {"id": t.trial_id, "phase": t.phase, "cond": t.condition,
                                "n": [len(t.references.left), len(t.references.right)]}
        if t.feedback is not None:  # practice, or every trial where the study asks
            item["answer"] = t.feedback.correct
        if t.block is not None:
            item["blk"] = t.block
        return item

    def leak(self, trial: PublicTrialBase, feedback_allowed: bool = False) -> str | None:
        t = _public(trial)
        if t.phase == "test" and t.feedback is not None and not feedback_allowed:
            return "a test trial carries feedback, which would tell the worker the answer"
        return None

    def page_context(self, trials: Sequence[PublicTrialBase], config: StudyConfig
                     ) -> dict[str, Any]:
        strong = config.design.max_side
        return {
            "strong_side": strong,
            "weak_side": "left" if strong == "right" else "right",
            "two_sided": any(rs.mode == "min+max" for rs in config.design.references()),
            "has_no_reference_trials": any(
                not (_public(t).references.left or _public(t).references.right)
                for t in trials),
        }

    # -- answers -----------------------------------------------------------------------

    def observe(self, key: TrialKeyBase, response: ResponseBase) -> Observation:
        k, r = _key(key), _response(response)
        return Observation(correct=r.response == k.max_position, choice=r.response,
                           rt_ms=r.rt_ms)

    def tidy(self, key: TrialKeyBase, response: ResponseBase) -> dict[str, Any]:
        k, r = _key(key), _response(response)
        return {"reference_mode": k.reference_mode, "n_references": k.n_references,
                "max_position": k.max_position, "response": r.response,
                "correct": r.response == k.max_position, "confidence": r.confidence,
                "rt_ms": float(r.rt_ms)}

    # -- simulated participants ----------------------------------------------------------

    def truth(self, key: TrialKeyBase) -> Position:
        return _key(key).max_position

    def simulate(self, item: dict[str, Any], answer: object, is_catch: bool,
                 participant: SimulatedParticipant, rng: random.Random) -> dict[str, Any]:
        right = str(answer or item.get("answer", "top"))
        if participant.kind == "same-side":
            response = "top"
        elif participant.kind == "fast":
            response = rng.choice(["top", "bottom"])
        else:
            p = participant.p_correct(item.get("cond", ""), is_catch, item.get("id"))
            response = right if rng.random() < p else _other(right)
        correct = response == right
        confidence = rng.choices([1, 2, 3], weights=[1, 3, 6] if correct else [4, 4, 2])[0]
        if participant.kind == "fast":
            rt = round(rng.uniform(150, 250), 1)
        else:
            rt = round(max(250.0, rng.lognormvariate(math.log(participant.rt_median_ms),
                                                     participant.rt_sigma)), 1)
        return {"trial_id": item["id"], "response": response, "confidence": confidence,
                "rt_ms": rt}

    def practice_right(self, item: dict[str, Any], response: dict[str, Any]) -> bool:
        return bool(response["response"] == item.get("answer"))


def _public(trial: PublicTrialBase) -> PublicTrial:
    return expect_model(trial, PublicTrial, "a 2-AFC trial")


def _key(key: TrialKeyBase) -> TrialKey:
    return expect_model(key, TrialKey, "a 2-AFC trial")


def _response(response: ResponseBase) -> TrialResponse:
    return expect_model(response, TrialResponse, "a 2-AFC answer", subject="answer to trial")
