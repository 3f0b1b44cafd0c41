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
import itertools
import json
import random
import struct
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from crowdkit.errors import ConfigError
from crowdkit.files import file_digest, write_atomically
from crowdkit.manifest import ExemplarBatch, ImageRef, Manifest, Unit, load_manifest
from crowdkit.study import CONDITIONS, DesignSection, Study, StudyConfig

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


# ---------------------------------------------------------------------------------------
# The design algorithm
# ---------------------------------------------------------------------------------------

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".gif": "image/gif", ".webp": "image/webp"}


@dataclass
class Design:
    """The designed tasks, and every image they show by key (the files to host)."""

    tasks: list[DesignedTask]
    images: dict[str, Path]
    design_hash: str

    def image_records(self, study_root: Path) -> dict[str, dict[str, object]]:
        """Rows for the ledger's images table: path relative to the study, size, type."""
        records = {}
        for key, path in self.images.items():
            try:
                rel = str(path.resolve().relative_to(study_root.resolve()))
            except ValueError:
                rel = str(path.resolve())
            records[key] = {"path": rel, "bytes": path.stat().st_size,
                            "content_type": CONTENT_TYPES.get(path.suffix.lower(), "image/png")}
        return records


@dataclass(frozen=True)
class Slot:
    """One trial to build: which unit and batch, shown how."""

    phase: str  # practice, main or catch
    condition: str
    block: int
    unit: Unit
    batch: int


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
                 catch_dir: Path, digests: DigestCache | None = None) -> Design:
    """Turn a manifest into balanced tasks and their answer keys.

    Deterministic: the same config, manifest and seed give identical tasks. Catch-trial
    queries are byte-level copies (same pixels, different file) written to `catch_dir`, so
    their keys differ from the reference they copy and the page cannot match them up.
    """
    d = config.design
    _check_design(config, manifest)
    rng = random.Random(f"crowdkit-design:{config.design_seed}")
    practice_units, main_units = _split_practice_units(d, manifest, rng)
    builder = _TrialBuilder(config, stimuli_dir, catch_dir, rng, digests or DigestCache())
    orders = _condition_orders(d, rng)
    shared_batches = BatchCycler(main_units, rng)
    main_streams = {c: UnitStream(main_units, rng, shared_batches) for c in d.conditions}
    catch_streams = {c: UnitStream(main_units, rng) for c in d.conditions}
    practice_stream = UnitStream(practice_units, rng) if practice_units else None

    tasks = []
    for position, order in enumerate(orders):
        task_id = f"t{position:04d}"
        slots = _practice_slots(d, order[0], practice_stream)
        slots += _test_slots(d, order, main_streams, catch_streams, rng)
        tasks.append(builder.build_task(task_id, config.study.name, order, slots))

    digest = hashlib.sha256()
    for task in tasks:
        digest.update(task.model_dump_json().encode())
    return Design(tasks=tasks, images=builder.images, design_hash=digest.hexdigest()[:32])


def _check_design(config: StudyConfig, manifest: Manifest) -> None:
    d = config.design
    problems = []
    for condition in d.conditions:
        if condition not in CONDITIONS:
            problems.append(f"[design] conditions: unknown condition {condition!r}; "
                            f"expected some of {', '.join(CONDITIONS)}")
    if len(set(d.conditions)) != len(d.conditions):
        problems.append("[design] conditions: a condition is listed twice")
    n = d.n_references
    for unit in manifest.units:
        for batch in unit.natural.batches:
            if min(len(batch.max), len(batch.min)) < n + 1:
                problems.append(
                    f"manifest: unit {unit.id} batch {batch.index} has too few images for "
                    f"n_references = {n} (needs {n + 1} per side: {n} references + 1 query)")
                break
        if "synthetic" in d.conditions:
            syn = unit.synthetic
            need_min = n if d.reference_mode == "min+max" else 0
            if syn is None or len(syn.max) < n or len(syn.min) < need_min:
                problems.append(
                    f"manifest: unit {unit.id} lacks synthetic images for the synthetic "
                    f"condition (needs {n} max" + (f" and {n} min)" if need_min else ")"))
    if d.assignment == "within" and d.trials_per_task < len(d.conditions):
        problems.append("[design] trials_per_task: fewer trials than conditions in a "
                        "within-participant design")
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


def _condition_orders(d: DesignSection, rng: random.Random) -> list[list[str]]:
    """Each task's condition order.

    Between participants: one condition per task, balanced in rounds of shuffled
    conditions. Within: every condition as a block, the block orders counterbalanced by
    cycling through all permutations (in a seeded order).
    """
    if d.assignment == "between":
        out: list[list[str]] = []
        while len(out) < d.tasks:
            round_ = list(d.conditions)
            rng.shuffle(round_)
            out += [[c] for c in round_]
        return out[: d.tasks]
    perms = [list(p) for p in itertools.permutations(d.conditions)]
    rng.shuffle(perms)
    return [perms[i % len(perms)] for i in range(d.tasks)]


def _split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _practice_slots(d: DesignSection, condition: str, stream: UnitStream | None) -> list[Slot]:
    if stream is None:  # no practice trials
        return []
    return [Slot("practice", condition, 0, unit, batch)
            for unit, batch in stream.take(d.practice_trials)]


def _test_slots(d: DesignSection, order: list[str], main: dict[str, UnitStream],
                catch: dict[str, UnitStream], rng: random.Random) -> list[Slot]:
    """Main trials block by block, in a shuffled order, with catch trials spread evenly."""
    main_counts = _split_evenly(d.trials_per_task, len(order))
    catch_counts = _split_evenly(d.catch_trials_per_task, len(order))
    slots: list[Slot] = []
    for block, condition in enumerate(order):
        mains = [Slot("main", condition, block, u, b)
                 for u, b in main[condition].take(main_counts[block])]
        rng.shuffle(mains)
        catches = [Slot("catch", condition, block, u, b)
                   for u, b in catch[condition].take(catch_counts[block])]
        slots += _spread(mains, catches, rng)
    return slots


def _spread(mains: list[Slot], catches: list[Slot], rng: random.Random) -> list[Slot]:
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


def balanced_positions(n: int, rng: random.Random, odd_extra: str | None = None) -> list[str]:
    """n positions, exactly half "top" (for even n), in an unpredictable order."""
    positions = ["top"] * (n // 2) + ["bottom"] * (n // 2)
    if n % 2:
        positions.append(odd_extra or rng.choice(["top", "bottom"]))
    rng.shuffle(positions)
    return positions


class _TrialBuilder:
    """Turns slots into public trials and keys, collecting the images they show."""

    def __init__(self, config: StudyConfig, stimuli_dir: Path, catch_dir: Path,
                 rng: random.Random, digests: DigestCache) -> None:
        self.config = config
        self.stimuli_dir = stimuli_dir
        self.catch_dir = catch_dir
        self.rng = rng
        self.images: dict[str, Path] = {}
        self.digests = digests
        self._key_of: dict[Path, str] = {}

    def build_task(self, task_id: str, study: str, order: list[str],
                   slots: list[Slot]) -> DesignedTask:
        positions = self._positions(slots)
        public, keys = [], []
        for index, (slot, max_pos) in enumerate(zip(slots, positions, strict=True)):
            trial_id = hashlib.sha256(
                f"{self.config.design_seed}:{study}:{task_id}:{index}".encode()).hexdigest()[:12]
            trial, key = self._trial(trial_id, index, slot, max_pos)
            public.append(trial)
            keys.append(key)
        return DesignedTask(
            public=PublicTask(task_id=task_id, study=study, trials=public),
            key=AnswerKey(task_id=task_id, condition_order=order, trials=keys),
        )

    def _positions(self, slots: list[Slot]) -> list[str]:
        """Balance max-on-top within practice, main and catch trials, and overall."""
        by_phase: dict[str, list[int]] = defaultdict(list)
        for i, slot in enumerate(slots):
            by_phase[slot.phase].append(i)
        out = [""] * len(slots)
        main_pos = balanced_positions(len(by_phase["main"]), self.rng)
        odd = None
        if len(by_phase["main"]) % 2 and len(by_phase["catch"]) % 2:
            odd = "bottom" if main_pos.count("top") > main_pos.count("bottom") else "top"
        catch_pos = balanced_positions(len(by_phase["catch"]), self.rng, odd)
        practice_pos = balanced_positions(len(by_phase["practice"]), self.rng)
        for phase, pos in (("main", main_pos), ("catch", catch_pos), ("practice", practice_pos)):
            for i, p in zip(by_phase[phase], pos, strict=True):
                out[i] = p
        return out

    def _trial(self, trial_id: str, index: int, slot: Slot,
               max_pos: str) -> tuple[PublicTrial, TrialKey]:
        d = self.config.design
        unit, batch = slot.unit, _batch(slot.unit, slot.batch)
        max_refs, min_refs = self._references(slot.condition, unit, batch, slot.phase)
        max_query, min_query = batch.max[-1], batch.min[0]
        if slot.phase == "catch":
            max_src = self.rng.choice(max_refs)
            min_src = self.rng.choice(min_refs) if min_refs else batch.min[0]
            max_key = self._copy_key(max_src, f"{trial_id}:max")
            min_key = self._copy_key(min_src, f"{trial_id}:min")
        else:
            max_key, min_key = self._key(max_query), self._key(min_query)
        max_keys = [self._key(r) for r in max_refs]
        min_keys = [self._key(r) for r in min_refs]
        refs = (References(left=min_keys, right=max_keys) if d.max_side == "right"
                else References(left=max_keys, right=min_keys))
        min_pos = "bottom" if max_pos == "top" else "top"
        queries = Queries(**{max_pos: max_key, min_pos: min_key})
        public = PublicTrial(
            trial_id=trial_id,
            phase="practice" if slot.phase == "practice" else "test",
            condition=slot.condition,
            references=refs,
            queries=queries,
            feedback=Feedback(correct=max_pos) if slot.phase == "practice" else None,
        )
        key = TrialKey(
            trial_id=trial_id, trial_index=index, phase=slot.phase, condition=slot.condition,
            block=slot.block, unit_id=unit.id, layer=unit.layer, channel=unit.channel,
            unit_label=unit.label, unit_selection=unit.selection, batch=batch.index,
            max_position=max_pos, reference_mode=d.reference_mode,
            n_references=0 if slot.condition == "none" and slot.phase != "catch"
            else d.n_references,
        )
        return public, key

    def _references(self, condition: str, unit: Unit, batch: ExemplarBatch,
                    phase: str) -> tuple[list[ImageRef], list[ImageRef]]:
        """The references shown: natural ranks 0-8 (max) and 1-9 (min), or synthetic.

        With fewer than 9 references, the ones nearest the query's extreme are kept. A catch
        trial in the "none" condition shows natural references: it needs something to copy.
        """
        d = self.config.design
        n = d.n_references
        if condition == "none" and phase != "catch":
            return [], []
        if condition == "synthetic":
            assert unit.synthetic is not None  # checked in _check_design
            # ascending activation, like the batches: the n most extreme of each side
            max_refs, min_refs = unit.synthetic.max[-n:], unit.synthetic.min[:n]
        else:
            max_refs, min_refs = batch.max[-1 - n:-1], batch.min[1:1 + n]
        if d.reference_mode == "max-only":
            min_refs = []
        return list(max_refs), list(min_refs)

    def _key(self, ref: ImageRef) -> str:
        path = self.stimuli_dir / ref.path
        key = self._key_of.get(path)
        if key is None:
            digest = self.digests.sha256(path)
            if ref.sha256 and ref.sha256 != digest:
                raise ConfigError(f"{path}: the file changed since the manifest was written "
                                  "(sha256 differs); re-render or fix the manifest")
            key = key_for_digest(digest, path.suffix)
            self._key_of[path] = key
            self.images[key] = path
        return key

    def _copy_key(self, ref: ImageRef, nonce: str) -> str:
        """A pixel-identical copy of an image under a new key (see `tagged_copy`)."""
        src = self.stimuli_dir / ref.path
        data = tagged_copy(_read_image(src), src.suffix.lower(), nonce)
        key = image_key(data, src.suffix)
        path = self.catch_dir / key
        if not path.exists():
            write_atomically(path, data)
        self.images[key] = path
        return key


def image_key(data: bytes, suffix: str) -> str:
    """The content-hash key of an image: 128 bits of its sha256 in hex, plus its extension.

    128 bits never collide within a study, and the shorter key keeps a 40-trial HIT with
    9 + 9 references well inside MTurk's 64 KB limit on the question.
    """
    return key_for_digest(hashlib.sha256(data).hexdigest(), suffix)


def key_for_digest(sha256_hex: str, suffix: str) -> str:
    return sha256_hex[:32] + suffix.lower()


class DigestCache:
    """File digests remembered by size and modification time, as git's index does.

    Publishing designs the study again to check that nothing changed; without this, every
    publish would read and hash every image. A file whose size or mtime changed is hashed
    afresh. `path` None keeps the cache in memory only.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}  # a damaged cache only costs a re-hash
        self.changed = False

    def sha256(self, file: Path) -> str:
        try:
            stat = file.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
            entry = self.entries.get(str(file))
            if entry is not None and entry[:2] == stamp:
                return entry[2]
            digest = file_digest(file)
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read image: {exc.strerror}") from None
        self.entries[str(file)] = [*stamp, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.path is not None and self.changed:
            write_atomically(self.path, json.dumps(self.entries))
            self.changed = False


def _batch(unit: Unit, index: int) -> ExemplarBatch:
    for batch in unit.natural.batches:
        if batch.index == index:
            return batch
    raise KeyError(index)


def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read image: {exc.strerror}") from None


def tagged_copy(data: bytes, suffix: str, nonce: str) -> bytes:
    """The same image with a comment added: identical pixels, different bytes.

    PNG gets a tEXt chunk before IEND; JPEG a COM segment after SOI. Nothing is re-encoded,
    so the copy decodes to exactly the same pixels as the original.
    """
    text = f"crowdkit {hashlib.sha256(nonce.encode()).hexdigest()[:16]}".encode()
    if suffix == ".png" and data.endswith(b"IEND\xaeB`\x82"):
        body = b"tEXt" + b"Comment\x00" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:-12] + chunk + data[-12:]
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8":
        segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
        return data[:2] + segment + data[2:]
    raise ConfigError(f"catch trials need PNG or JPEG images; cannot copy a {suffix} file")


# ---------------------------------------------------------------------------------------
# The study-level action and its summary
# ---------------------------------------------------------------------------------------


def design_for(study: Study) -> Design:
    """The study's design from its manifest (catch copies and digests in design/)."""
    digests = DigestCache(study.design_dir / "digests.json")
    design = design_tasks(study.config, load_manifest(study.manifest_path), study.stimuli_dir,
                          study.design_dir / "catch", digests)
    digests.save()
    return design


def design_study(study: Study) -> str:
    """Design the study's tasks from its manifest into the ledger; return a summary."""
    from crowdkit.ledger import Ledger

    design = design_for(study)
    with Ledger.open(study.db_path, write=True, command="crowdkit design") as ledger:
        changed = ledger.save_design(design.tasks, design.image_records(study.root),
                                     design.design_hash)
    verb = "designed" if changed else "unchanged:"
    return f"{verb} {summarize(design.tasks)}"


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
    return (f"{len(tasks)} tasks, {phases['main']} main, {phases['catch']} catch and "
            f"{phases['practice']} practice trials ({spread})")
