"""Manifest -> tasks (the trials of one HIT) + answer key.

A task has two halves. The *public* half is all the worker's page gets: opaque trial ids,
image keys (content hashes) and screen positions. The *key* half stays in the ledger and
says which query is the max one, which trial is a catch trial, and which unit and batch it
shows. Image keys are `image_key(bytes)`: 32 hex digits of the file's sha256 plus its extension.
Nothing in the public half -- ids, keys, order -- tells the max query apart, except on
practice trials, whose feedback needs it.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from crowdkit import sources
from crowdkit.errors import ConfigError
from crowdkit.images import (
    CONTENT_TYPES,
    DigestCache,
    ImageRegistry,
    content_type,
    image_key,
    key_for_digest,
    tagged_copy,
)
from crowdkit.ledger import ImageRecord, Ledger
from crowdkit.manifest import Manifest, Unit, load_manifest
from crowdkit.slots import (
    RATING_TYPE,
    LabPlanner,
    LabStreams,
    arm_orders,
    catch_counts,
    split_evenly,
)
from crowdkit.slots import arms as lab_arms
from crowdkit.slots import spread as spread_catches
from crowdkit.study import DesignSection, Study, StudyConfig
from crowdkit.tasks import AnswerKey, DesignedTask, PublicTask
from crowdkit.trials import registry
from crowdkit.trials.base import DEFAULT_TYPE, BuildContext, Slot
from crowdkit.trials.twoafc import (
    Feedback,
    PublicTrial,
    Queries,
    References,
    TrialKey,
    TrialResponse,
    balanced_positions,
)

__all__ = [
    "CONTENT_TYPES", "AnswerKey", "Design", "DesignedTask", "DigestCache", "Feedback",
    "PublicTask", "PublicTrial", "Queries", "References", "TrialKey", "TrialResponse",
    "balanced_positions", "design_for", "design_study", "design_tasks", "image_key",
    "key_for_digest", "summarize", "tagged_copy",
]

# ---------------------------------------------------------------------------------------
# The design algorithm
# ---------------------------------------------------------------------------------------

@dataclass
class Design:
    """The designed tasks, and every image they show by key (the files to host)."""

    tasks: list[DesignedTask]
    images: dict[str, Path]
    design_hash: str

    def image_records(self, study_root: Path) -> dict[str, ImageRecord]:
        """Rows for the ledger's images table: path relative to the study, size, type."""
        records: dict[str, ImageRecord] = {}
        for key, path in self.images.items():
            try:
                rel = str(path.resolve().relative_to(study_root.resolve()))
            except ValueError:
                rel = str(path.resolve())
            records[key] = {"path": rel, "bytes": path.stat().st_size,
                            "content_type": content_type(path)}
        return records


class UnitStream:
    """An endless, balanced stream of (unit, batch) pairs.

    The stream runs in rounds; each round shows every unit once, interleaved across layers,
    in a seeded order. So any stretch of the stream shows units (and layers) as evenly as
    its length allows. When a round starts in the middle of a task, units that task already
    has go to the end of the new round, so a task repeats a unit only when it has more
    trials than there are units. Each unit walks through its batches in a seeded order.
    """

    def __init__(self, units: list[Unit], rng: random.Random,
                 batches: BatchCycler | None = None) -> None:
        if not units:
            raise ConfigError("no units left for the main trials (all are practice units?)")
        self.units = units
        self.rng = rng
        self.pending: list[Unit] = []
        self.batches = batches or BatchCycler(units, rng)

    def _new_round(self, avoid: set[str]) -> list[Unit]:
        by_layer: dict[str, list[Unit]] = defaultdict(list)
        for unit in self.units:
            by_layer[unit.layer].append(unit)
        layers = sorted(by_layer)
        self.rng.shuffle(layers)
        for layer in layers:
            self.rng.shuffle(by_layer[layer])
        interleaved = [u for group in zip_longest(*(by_layer[la] for la in layers))
                       for u in group if u is not None]
        return ([u for u in interleaved if u.id not in avoid]
                + [u for u in interleaved if u.id in avoid])

    def take(self, n: int) -> list[tuple[Unit, int]]:
        """The next n (unit, batch) pairs for one task or block."""
        out: list[tuple[Unit, int]] = []
        for _ in range(n):
            if not self.pending:
                self.pending = self._new_round({u.id for u, _ in out})
            unit = self.pending.pop(0)
            out.append((unit, self.batches.next(unit)))
        return out


class BatchCycler:
    """Each unit's exemplar batches, in a seeded order, used in turn.

    The main trials of all conditions share one cycler, so in a within-participant task a
    unit shown in two blocks shows different batches -- different queries -- in each
    (as long as the unit has more than one batch), and nobody answers from memory.
    """

    def __init__(self, units: list[Unit], rng: random.Random) -> None:
        self.order = {u.id: rng.sample([b.index for b in u.natural.batches],
                                       len(u.natural.batches)) for u in units}
        self.uses: dict[str, int] = defaultdict(int)

    def next(self, unit: Unit) -> int:
        order = self.order[unit.id]
        batch = order[self.uses[unit.id] % len(order)]
        self.uses[unit.id] += 1
        return batch


def design_tasks(config: StudyConfig, manifest: Manifest, stimuli_dir: Path,
                 catch_dir: Path, digests: DigestCache | None = None,
                 secret: bytes | None = None) -> Design:
    """Turn a manifest into balanced tasks and their answer keys.

    Deterministic: the same config, manifest, seed and secret give identical tasks.
    Catch-trial queries are byte-level copies (same pixels, different file) written to
    `catch_dir`, so their keys differ from the reference they copy and the page cannot
    match them up. With the ledger's `secret`, every image is served padded under a keyed
    name from `catch_dir` (crowdkit.images.ImageRegistry).
    """
    d = config.design
    sources.sources_for(manifest)
    type_problems = [p for name in _trial_types(d)
                     for p in registry.get(name).check(config, manifest)]
    _check_design(config, manifest, type_problems)
    rng = random.Random(f"crowdkit-design:{config.design_seed}")
    rating_units, unrated = _split_rating_units(d, manifest)
    practice_units, main_units = _split_practice_units(d, unrated, rng)
    images = ImageRegistry(stimuli_dir, catch_dir, digests or DigestCache(), secret)
    if secret is not None:
        images.plan_padding(manifest.image_paths())
    ctx = BuildContext(config=config, manifest=manifest, rng=rng, images=images)
    if d.lab:
        return _design(_lab_tasks(config, rng, ctx, practice_units, main_units, rating_units),
                       images)
    within = d.assignment == "within"  # the plain design's arms are its conditions
    orders = [[d.conditions[i] for i in arms]
              for arms in arm_orders(len(d.conditions), d.tasks, within, rng)]
    shared_batches = BatchCycler(main_units, rng)
    main_streams = {c: UnitStream(main_units, rng, shared_batches) for c in d.conditions}
    catch_streams = {c: UnitStream(main_units, rng) for c in d.conditions}
    practice_stream = UnitStream(practice_units, rng) if practice_units else None

    tasks = []
    for position, order in enumerate(orders):
        task_id = f"t{position:04d}"
        slots = _practice_slots(d, order[0], practice_stream)
        slots += _test_slots(d, order, main_streams, catch_streams, rng)
        tasks.append(build_task(task_id, config, order, slots, ctx))
    return _design(tasks, images)


def _design(tasks: list[DesignedTask], images: ImageRegistry) -> Design:
    digest = hashlib.sha256()
    for task in tasks:
        digest.update(task.model_dump_json().encode())
    return Design(tasks=tasks, images=images.images, design_hash=digest.hexdigest()[:32])


def _lab_tasks(config: StudyConfig, rng: random.Random, ctx: BuildContext,
               practice_units: list[Unit], main_units: list[Unit],
               rating_units: list[Unit]) -> list[DesignedTask]:
    """The tasks of a lab design, planned by crowdkit.slots over this design's streams."""
    d = config.design
    arms = lab_arms(d)
    if d.catch_units == "practice" and d.catch_trials_per_task and not practice_units:
        raise ConfigError('[design] catch_units: "practice" draws catch trials from the '
                          "practice units, and there are none (set practice_trials and "
                          "practice_units)")
    catch_units = practice_units if d.catch_units == "practice" else main_units
    shared_batches = BatchCycler(main_units, rng)
    streams = LabStreams(
        main=[UnitStream(main_units, rng, shared_batches) for _ in arms],
        baseline=UnitStream(main_units, rng, shared_batches) if d.baseline else None,
        catch=[UnitStream(catch_units, rng) for _ in arms] if catch_units else [],
        practice=UnitStream(practice_units, rng) if practice_units else None,
    )
    planner = LabPlanner(d, rng, streams, rating_units)
    return [build_task(f"t{t:04d}", config, planner.condition_order(order),
                       planner.task_slots(t, order), ctx)
            for t, order in enumerate(planner.orders(d.tasks))]


def trial_id(config: StudyConfig, task_id: str, index: int) -> str:
    """A trial's public id: a hash that says nothing about the trial."""
    return hashlib.sha256(
        f"{config.design_seed}:{config.study.name}:{task_id}:{index}".encode()).hexdigest()[:12]


def build_task(task_id: str, config: StudyConfig, order: list[str], slots: list[Slot],
               ctx: BuildContext) -> DesignedTask:
    """One task from its slots: each trial type builds its own trials, in task order."""
    by_type: dict[str, list[tuple[int, str, Slot]]] = defaultdict(list)
    for index, slot in enumerate(slots):
        by_type[slot_type(slot)].append((index, trial_id(config, task_id, index), slot))
    built = {}
    for type_name, placed in by_type.items():
        trials = registry.get(type_name).build(task_id, placed, ctx)
        for (index, _, _), pair in zip(placed, trials, strict=True):
            built[index] = pair
    public = [built[i][0] for i in range(len(slots))]
    keys = [built[i][1] for i in range(len(slots))]
    return DesignedTask(
        public=PublicTask(task_id=task_id, study=config.study.name, trials=public),
        key=AnswerKey(task_id=task_id, condition_order=order, trials=keys),
    )


def slot_type(slot: Slot) -> str:
    """The trial type a slot is built by: the paper's 2-AFC for practice, main, catch and
    repeated trials, the rating type for ratings (the planner says which)."""
    return slot.trial_type


def _trial_types(d: DesignSection) -> list[str]:
    """The trial types a design builds."""
    return [DEFAULT_TYPE, *([RATING_TYPE] if d.ratings.units else [])]


def _split_rating_units(d: DesignSection, manifest: Manifest) -> tuple[list[Unit], Manifest]:
    """The units of the rating trials, and the manifest without them: a unit explained in a
    rating is kept out of practice and main trials, as the paper's warm-up units were."""
    if not d.ratings.units:
        return [], manifest
    ids = list(dict.fromkeys(d.ratings.units))
    by_id = {u.id: u for u in manifest.units}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ConfigError(f"[design.ratings] units: unit {unknown[0]!r} is not in the "
                          f"manifest (known: {', '.join(sorted(by_id)[:12])})")
    rest = [u for u in manifest.units if u.id not in set(ids)]
    return [by_id[i] for i in ids], manifest.model_copy(update={"units": rest})


def _rating_problems(d: DesignSection) -> list[str]:
    """Ratings explain with images: both named conditions must have some."""
    r = d.ratings
    if not r.units:
        return []
    with_images = [n for n in sources.names() if sources.get(n).shows_references]
    problems = []
    for key, name in (("explanation", r.explanation), ("given", r.given)):
        source = sources.find(name) if name else None
        if name and (source is None or not source.shows_references):
            problems.append(f"[design.ratings] {key}: {name!r} is not a condition with "
                            f"images; expected one of {', '.join(with_images)}")
    overlap = sorted(set(r.units) & set(d.practice_units))
    if overlap:
        problems.append(f"[design.ratings] units: {overlap[0]} is also a practice unit")
    return problems


def _check_design(config: StudyConfig, manifest: Manifest, type_problems: list[str]) -> None:
    d = config.design
    problems = []
    for condition in d.conditions:
        if sources.find(condition) is None:
            problems.append(f"[design] conditions: unknown condition {condition!r}; "
                            f"expected some of {', '.join(sources.names())} (or a method "
                            "whose images the manifest brings)")
    if len(set(d.conditions)) != len(d.conditions):
        problems.append("[design] conditions: a condition is listed twice")
    problems += type_problems
    if d.assignment == "within" and d.trials_per_task < len(lab_arms(d)):
        problems.append("[design] trials_per_task: fewer trials than conditions in a "
                        "within-participant design")
    for condition in d.conditions:
        if condition in sources.BASELINES.values():
            problems.append(f"[design] conditions: {condition} is the baseline's; set "
                            '[design] baseline = ["pre", "post"] and baseline_trials instead')
    problems += _rating_problems(d)
    if problems:
        raise ConfigError(problems[0], lines=problems)


def _split_practice_units(d: DesignSection, manifest: Manifest,
                          rng: random.Random) -> tuple[list[Unit], list[Unit]]:
    """Practice uses units kept apart from the main ones, so practice teaches nothing."""
    if d.practice_trials == 0:
        return [], list(manifest.units)
    if d.practice_units:
        ids = set(d.practice_units)
        known = {u.id for u in manifest.units}
        unknown = sorted(ids - known)
        if unknown:
            raise ConfigError(f"[design] practice_units: unit {unknown[0]!r} is not in the "
                              f"manifest (known: {', '.join(sorted(known)[:12])})")
    else:
        if d.n_practice_units < 1:
            raise ConfigError("[design] n_practice_units: practice trials need at least one "
                              "practice unit (or set practice_trials = 0)")
        if d.n_practice_units >= len(manifest.units):
            raise ConfigError(
                f"[design] n_practice_units: {d.n_practice_units} practice units would leave "
                f"no unit for the main trials (the manifest has {len(manifest.units)})")
        ids = {u.id for u in rng.sample(manifest.units, d.n_practice_units)}
    practice = [u for u in manifest.units if u.id in ids]
    main = [u for u in manifest.units if u.id not in ids]
    return practice, main


def _practice_slots(d: DesignSection, condition: str, stream: UnitStream | None) -> list[Slot]:
    if stream is None:  # no practice trials
        return []
    return [Slot("practice", condition, 0, unit, batch)
            for unit, batch in stream.take(d.practice_trials)]


def _test_slots(d: DesignSection, order: list[str], main: dict[str, UnitStream],
                catch: dict[str, UnitStream], rng: random.Random) -> list[Slot]:
    """Main trials block by block, in a shuffled order, with catch trials spread evenly."""
    main_counts = split_evenly(d.trials_per_task, len(order))
    per_block = catch_counts(d.catch_trials_per_task, order)
    slots: list[Slot] = []
    for block, condition in enumerate(order):
        mains = [Slot("main", condition, block, u, b)
                 for u, b in main[condition].take(main_counts[block])]
        rng.shuffle(mains)
        catches = [Slot("catch", condition, block, u, b)
                   for u, b in catch[condition].take(per_block[block])]
        slots += spread_catches(mains, catches, rng)
    return slots


# ---------------------------------------------------------------------------------------
# The study-level action and its summary
# ---------------------------------------------------------------------------------------


def design_for(study: Study, secret: bytes | None = None,
               config: StudyConfig | None = None) -> Design:
    """The study's design from its manifest (served images or catch copies, and digests,
    in design/). `secret` is the ledger's image secret (None: content-hash keys, as
    `crowdkit preview` shows a study without a ledger); `config` replaces study.toml's."""
    digests = DigestCache(study.design_dir / "digests.json")
    out_dir = study.design_dir / ("served" if secret is not None else "catch")
    try:
        design = design_tasks(config or study.config, load_manifest(study.manifest_path),
                              study.stimuli_dir, out_dir, digests, secret)
    except ConfigError as exc:
        raise _naming_files(exc, study) from None
    digests.save()
    return design


def _naming_files(exc: ConfigError, study: Study) -> ConfigError:
    """The design's problems with the file each comes from: "[design] ..." lines are
    study.toml's, "manifest: ..." lines the manifest's (lines naming a file stay as they are)."""
    lines = []
    for line in exc.lines:
        if line.startswith("manifest: "):
            line = f"{study.manifest_path}: {line.removeprefix('manifest: ')}"
        elif line.startswith("["):
            line = f"{study.toml_path}: {line}"
        lines.append(line)
    return ConfigError(lines[0], lines=lines)


def design_study(study: Study) -> str:
    """Design the study's tasks from its manifest into the ledger; return a summary.

    A published study whose only change is more [design] tasks grows: its tasks stay as
    they are and the new ones are added after them (`grow_design`).
    """
    with Ledger.open(study.db_path, write=True, command="crowdkit design") as ledger:
        secret = ledger.image_secret()
        design = design_for(study, secret)
        added = grow_design(study, ledger, design, secret)
        if added:
            return f"grown by {added} tasks: {summarize(ledger.tasks())}"
        changed = ledger.save_design(design.tasks, design.image_records(study.root),
                                     design.design_hash)
    verb = "designed" if changed else "unchanged:"
    return f"{verb} {summarize(design.tasks)}"


def grow_design(study: Study, ledger: Ledger, design: Design, secret: bytes | None) -> int:
    """Add the design's tasks beyond the stored ones when that is all that changed; return
    how many were added (0: nothing to grow, the usual rules apply).

    It is all that changed when the design with the stored number of tasks is exactly the
    stored design. The new tasks are the bigger design's last ones, so their conditions
    and units come in the same balanced rounds; the stored tasks never change under HITs.
    """
    stored_hash = ledger.design_hash()
    stored = ledger.tasks()
    if (stored_hash in (None, design.design_hash) or not ledger.hits()
            or len(design.tasks) <= len(stored)):
        return 0
    fewer = study.config.design.model_copy(update={"tasks": len(stored)})
    before = design_for(study, secret, study.config.model_copy(update={"design": fewer}))
    if before.design_hash != stored_hash:
        return 0
    new = design.tasks[len(stored):]
    shown = {key for task in new for trial in task.public.trials
             for key in registry.get(trial.type).image_keys(trial)}
    records = {k: v for k, v in design.image_records(study.root).items() if k in shown}
    ledger.append_tasks(new, records, design.design_hash)
    return len(new)


def summarize(tasks: list[DesignedTask]) -> str:
    """One paragraph: tasks, trials by phase, and how evenly conditions and units appear."""
    phases: Counter[str] = Counter()
    units: dict[str, Counter[str]] = defaultdict(Counter)
    for task in tasks:
        for trial in task.key.trials:
            phases[trial.phase] += 1
            if trial.phase == "main":
                units[trial.condition][trial.unit_id] += 1
    spread = "; ".join(
        f"{cond}: {len(c)} units seen {min(c.values())}-{max(c.values())} times"
        for cond, c in sorted(units.items()))
    lab = "".join(f", {phases[p]} {p}" for p in ("repeated", "rating") if phases[p])
    return (f"{len(tasks)} tasks, {phases['main']} main, {phases['catch']} catch{lab} and "
            f"{phases['practice']} practice trials ({spread})")
