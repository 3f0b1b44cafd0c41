"""The order of a lab task's trials: blocks, arms, baseline, practice, catch, repeats, ratings.

`crowdkit.design` plans the paper's MTurk tasks itself: practice, then the blocks of each
condition with catch trials spread through them. A design that uses any of the lab keys of
[design] (`DesignSection.lab`: baseline, blocks_per_condition, reference_sets, ...) is planned
here instead, as the paper's lab experiments ran (docs/design.md, "The lab design"):

    ratings (start) | practice | none_pre blocks | practice per arm | arm blocks, interleaved
    (with catch trials) | none_post blocks | repeated blocks | ratings (end)

An *arm* is a condition shown with one reference set (Experiment II: natural with max-only
references and 1 image is one arm). Within participants every task shows every arm, the arms'
order counterbalanced across tasks; between participants each task shows one arm. Blocks are
numbered through the task, practice blocks included, as in the paper's published data, and
the page is told each trial's block (`Slot.public_block`).

Nothing here reads files or builds trials: it decides which slots a task has, in which order,
from unit streams the design hands it (`Stream`), so design.py keeps the streams' balance.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from crowdkit import sources
from crowdkit.errors import ConfigError
from crowdkit.trials.base import Slot

if TYPE_CHECKING:
    from crowdkit.manifest import Unit
    from crowdkit.study import DesignSection

RATING_TYPE = "rating"
BASELINE = "baseline"  # the group of none_pre and none_post trials, for repeats


class Stream(Protocol):
    """An endless, balanced stream of (unit, batch) pairs (crowdkit.design.UnitStream)."""

    def take(self, n: int) -> list[tuple[Unit, int]]: ...


@dataclass(frozen=True)
class Arm:
    """A condition with one reference set. `mode` and `n` are None where the condition's
    trials take [design] reference_mode and n_references (no reference_sets, or `none`)."""

    condition: str
    mode: str | None = None
    n: int | None = None


def arms(d: DesignSection) -> list[Arm]:
    """Every condition with every reference set; a condition without references is one arm."""
    out = []
    for condition in d.conditions:
        source = sources.find(condition)
        if not d.reference_sets or (source is not None and not source.shows_references):
            out.append(Arm(condition))
            continue
        out += [Arm(condition, rs.mode, rs.n) for rs in d.reference_sets]
    return out


def arm_orders(n_arms: int, n_tasks: int, within: bool, rng: random.Random) -> list[list[int]]:
    """Each task's arms, as indexes. Between: one arm per task, in rounds of shuffled arms.
    Within: every arm, the orders cycling through all permutations in a seeded order (for
    many arms, a seeded sample of them)."""
    if not within:
        out: list[list[int]] = []
        while len(out) < n_tasks:
            round_ = list(range(n_arms))
            rng.shuffle(round_)
            out += [[a] for a in round_]
        return out[:n_tasks]
    perms = (list(itertools.permutations(range(n_arms))) if n_arms <= 6
             else [tuple(rng.sample(range(n_arms), n_arms)) for _ in range(n_tasks)])
    rng.shuffle(perms)
    return [list(perms[i % len(perms)]) for i in range(n_tasks)]


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` counts that differ by at most one, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def catch_counts(total: int, conditions: list[str]) -> list[int]:
    """Catch trials per block of these conditions, only in blocks that show references.

    A catch trial copies a shown reference, so a block without references (the `none`
    condition) has none: a catch trial there would be the only trial with references on the
    page, which tells it apart. Such a block's share goes to the task's other blocks; a task
    of reference-less blocks only has no catch trials.
    """
    shows = [sources.get(condition).shows_references for condition in conditions]
    counts = iter(split_evenly(total, sum(shows)) if any(shows) else [])
    return [next(counts) if show else 0 for show in shows]


def spread(mains: list[Slot], catches: list[Slot], rng: random.Random) -> list[Slot]:
    """Place catch trials one per equal segment of the block, at a random spot in each."""
    total = len(mains) + len(catches)
    if not catches:
        return list(mains)
    k = len(catches)
    catch_at = {}
    for j in range(k):
        lo, hi = (j * total) // k, ((j + 1) * total) // k
        catch_at[rng.randrange(lo, hi)] = catches[j]
    mains_iter = iter(mains)
    return [catch_at[i] if i in catch_at else next(mains_iter) for i in range(total)]


def task_batch(unit: Unit, task: int, k: int) -> int:
    """The paper's subject-dependent batches ([design] batch_assignment = "per_task"): task t
    shows the k-th part of the study (0: the baseline, 1 + i: arm i) with batch
    1 + (t + k) mod (B - 1) of the unit's B batches; batch 0 is the practice and catch batch.
    """
    batches = sorted(b.index for b in unit.natural.batches)
    if len(batches) < 2:
        return batches[0]
    return batches[1 + (task + k) % (len(batches) - 1)]


def first_batch(unit: Unit) -> int:
    return min(b.index for b in unit.natural.batches)


@dataclass
class LabStreams:
    """The unit streams a lab design draws from, shared by all its tasks (for balance)."""

    main: list[Stream]  # one per arm
    baseline: Stream | None
    catch: list[Stream]  # one per arm; over practice units when catch_units = "practice"
    practice: Stream | None


class LabPlanner:
    """The slots of each task of a lab design (see the module's docstring)."""

    def __init__(self, d: DesignSection, rng: random.Random, streams: LabStreams,
                 rating_units: Sequence[Unit]) -> None:
        self.d = d
        self.rng = rng
        self.arms = arms(d)
        self.streams = streams
        self.rating_units = list(rating_units)
        if d.catch_units == "practice" and streams.practice is None and d.catch_trials_per_task:
            raise ConfigError('[design] catch_units: "practice" draws catch trials from the '
                              "practice units; there are none (practice_trials = 0?)")

    def orders(self, n_tasks: int) -> list[list[int]]:
        return arm_orders(len(self.arms), n_tasks, self.d.assignment == "within", self.rng)

    def condition_order(self, order: list[int]) -> list[str]:
        """The conditions of a task in the order their blocks come."""
        parts = [sources.BASELINES[p] for p in ("pre",) if p in self.d.baseline]
        parts += [self.arms[a].condition for a in order]
        parts += [sources.BASELINES[p] for p in ("post",) if p in self.d.baseline]
        return list(dict.fromkeys(parts))

    def task_slots(self, task: int, order: list[int]) -> list[Slot]:
        """Every slot of task `task` (0-based) showing the arms `order`, in page order."""
        blocks: list[list[Slot]] = []
        blocks += self._ratings("start")
        per_condition = self.d.practice_placement == "per_condition"
        if not per_condition:
            first = sources.BASELINES["pre"] if "pre" in self.d.baseline else (
                self.arms[order[0]].condition)
            blocks += self._practice(first, self.d.practice_trials)
        parts = split_evenly(self.d.baseline_trials, len(self.d.baseline) or 1)
        baseline = dict(zip(self.d.baseline, parts, strict=False))
        none_practice = self._practice(sources.BASELINES[self.d.baseline[0]],
                                       self.d.practice_trials) if (
            per_condition and self.d.baseline) else []
        if "pre" in baseline:
            blocks += none_practice + self._baseline("pre", baseline["pre"], task)
            none_practice = []
        if per_condition:
            for a in order:
                blocks += self._practice(self.arms[a].condition, self.d.practice_trials,
                                         self.arms[a])
        blocks += self._arm_blocks(task, order)
        if "post" in baseline:
            blocks += none_practice + self._baseline("post", baseline["post"], task)
        numbered = [replace(slot, block=b, public_block=True)
                    for b, block in enumerate(blocks) for slot in block]
        repeats = self._repeated(numbered, order, len(blocks))
        ends = [[replace(s, block=len(blocks) + len(repeats) + i, public_block=True)
                 for s in block] for i, block in enumerate(self._ratings("end"))]
        return numbered + [s for block in repeats for s in block] + [
            s for block in ends for s in block]

    # -- the parts of a task -------------------------------------------------------------

    def _ratings(self, at: str) -> list[list[Slot]]:
        r = self.d.ratings
        if not self.rating_units or r.at not in (at, "both"):
            return []
        units = list(self.rating_units)
        self.rng.shuffle(units)
        return [[Slot("rating", r.explanation, 0, unit, first_batch(unit),
                      trial_type=RATING_TYPE, at=at) for unit in units]]

    def _practice(self, condition: str, n: int, arm: Arm | None = None) -> list[list[Slot]]:
        stream = self.streams.practice
        if stream is None or n == 0:
            return []
        fixed = self.d.batch_assignment == "per_task"
        return [[Slot("practice", condition, 0, unit, first_batch(unit) if fixed else batch,
                      reference_mode=arm.mode if arm else None, n_references=arm.n if arm
                      else None) for unit, batch in stream.take(n)]]

    def _baseline(self, part: str, n: int, task: int) -> list[list[Slot]]:
        stream = self.streams.baseline
        if stream is None or n == 0:
            return []
        condition = sources.BASELINES[part]
        pairs = self._batches(stream.take(n), task, 0)
        self.rng.shuffle(pairs)
        out, start = [], 0
        for count in split_evenly(n, self.d.baseline_blocks):
            out.append([Slot("main", condition, 0, u, b) for u, b in pairs[start:start + count]])
            start += count
        return [block for block in out if block]

    def _arm_blocks(self, task: int, order: list[int]) -> list[list[Slot]]:
        """Each arm's main and catch trials in blocks_per_condition blocks; within a task the
        arms' blocks alternate (A B A B ...), each block with its catch trials spread."""
        k = self.d.blocks_per_condition
        mains = split_evenly(self.d.trials_per_task, len(order))
        catches = catch_counts(self.d.catch_trials_per_task,
                               [self.arms[a].condition for a in order])
        per_arm: dict[int, list[list[Slot]]] = {}
        for position, a in enumerate(order):
            arm = self.arms[a]
            pairs = self._batches(self.streams.main[a].take(mains[position]), task, 1 + a)
            self.rng.shuffle(pairs)
            catch_pairs = self.streams.catch[a].take(catches[position])
            if self.d.catch_units == "practice":
                catch_pairs = [(u, first_batch(u)) for u, _ in catch_pairs]
            blocks, start, cstart = [], 0, 0
            for count, ccount in zip(split_evenly(len(pairs), k),
                                     split_evenly(len(catch_pairs), k), strict=True):
                main_slots = [self._arm_slot("main", arm, u, b)
                              for u, b in pairs[start:start + count]]
                catch_slots = [self._arm_slot("catch", arm, u, b)
                               for u, b in catch_pairs[cstart:cstart + ccount]]
                blocks.append(spread(main_slots, catch_slots, self.rng))
                start, cstart = start + count, cstart + ccount
            per_arm[a] = blocks
        return [per_arm[a][i] for i in range(k) for a in order if per_arm[a][i]]

    def _arm_slot(self, phase: str, arm: Arm, unit: Unit, batch: int) -> Slot:
        return Slot(phase, arm.condition, 0, unit, batch, reference_mode=arm.mode,
                    n_references=arm.n)

    def _batches(self, pairs: list[tuple[Unit, int]], task: int, k: int
                 ) -> list[tuple[Unit, int]]:
        if self.d.batch_assignment != "per_task":
            return pairs
        return [(unit, task_batch(unit, task, k)) for unit, _ in pairs]

    def _repeated(self, slots: list[Slot], order: list[int], first_block: int
                  ) -> list[list[Slot]]:
        """`repeated_trials` main trials shown again, spread evenly over the baseline and
        the arms, one block per group, the groups in a shuffled order."""
        n = self.d.repeated_trials
        if n == 0:
            return []
        groups: list[object] = [BASELINE] if self.d.baseline else []
        groups += [_group_of(self.arms[a]) for a in order]
        blocks = []
        for group, count in zip(groups, split_evenly(n, len(groups)), strict=True):
            candidates = [i for i, s in enumerate(slots)
                          if s.phase == "main" and _group_of(s) == group]
            chosen = self.rng.sample(candidates, min(count, len(candidates)))
            blocks.append([replace(slots[i], phase="repeated", repeat_of=i) for i in chosen])
        self.rng.shuffle(blocks)
        return [[replace(s, block=first_block + b) for s in block]
                for b, block in enumerate(blocks) if block]


def _group_of(item: Slot | Arm) -> object:
    """Which group a main slot (or an arm) repeats from: the baseline, or its arm."""
    if isinstance(item, Arm):
        return (item.condition, item.mode, item.n)
    if item.condition in sources.BASELINES.values():
        return BASELINE
    return (item.condition, item.reference_mode, item.n_references)
