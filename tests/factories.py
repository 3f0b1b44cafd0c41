"""Small studies for tests: a study.toml and a hand-made manifest of generated images.

The images are tiny PNGs whose colour encodes unit, batch, side and rank, so every file is
distinct (distinct content-hash keys) and a failing test can be inspected by eye.
"""

from __future__ import annotations

import io
import signal
import zlib
from pathlib import Path

from PIL import Image

from crowdkit.manifest import (
    ExemplarBatch,
    ImageRef,
    Manifest,
    ModelInfo,
    NaturalExemplars,
    SyntheticImages,
    Unit,
    write_manifest,
)

STUDY_TOML = """
[study]
name = "{name}"
seed = {seed}

[stimuli]
weights = "random"

[design]
conditions = {conditions}
assignment = "{assignment}"
reference_mode = "{reference_mode}"
n_references = {n_references}
tasks = {tasks}
trials_per_task = {trials}
catch_trials_per_task = {catch}
practice_trials = {practice}
n_practice_units = 1

[hit]
title = "Which image excites the network more?"
description = "Pick which of two images fits the examples better."
keywords = ["images"]
reward = "0.50"
assignments_per_task = {assignments}
"""


def interruptible() -> None:
    """`preexec_fn` of a child a test stops with SIGINT, as Ctrl-C would.

    A shell that starts the suite in the background (a CI runner's `cmd &`) sets SIGINT to
    ignored, children inherit that, and Python then never raises KeyboardInterrupt: the
    child would not stop. Default handling restored, Python installs its own again.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _png(colour: tuple[int, int, int], size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def _image(stimuli_dir: Path, rel: str, activation: float) -> ImageRef:
    """A tiny PNG whose colour comes from its path, so every file is distinct."""
    seed = zlib.crc32(rel.encode())
    (stimuli_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (stimuli_dir / rel).write_bytes(_png((seed & 255, (seed >> 8) & 255, (seed >> 16) & 255)))
    return ImageRef(path=rel, activation=activation)


def make_manifest(
    stimuli_dir: Path, *, n_units: int = 6, n_batches: int = 3, per_side: int = 10,
    n_layers: int = 3, synthetic: bool = True, n_synthetic: int = 10,
    unit_ids: list[str] | None = None,
) -> Manifest:
    """Write `n_units` units with generated images and a manifest into `stimuli_dir`.

    `unit_ids` names the units ("4a:257", ...; their layer is "mixed" + the part before the
    colon) instead of the generated names."""
    stimuli_dir.mkdir(parents=True, exist_ok=True)
    units = []
    if unit_ids is not None:
        n_units = len(unit_ids)
    for u in range(n_units):
        layer = f"mixed{3 + u % n_layers}a"
        if unit_ids is not None:
            layer = "mixed" + unit_ids[u].split(":")[0]
        batches = [
            ExemplarBatch(
                index=b,
                max=[_image(stimuli_dir, f"u{u}/b{b}/max_{r}.png", r + 100.0)
                     for r in range(per_side)],
                min=[_image(stimuli_dir, f"u{u}/b{b}/min_{r}.png", r - 100.0)
                     for r in range(per_side)],
            )
            for b in range(n_batches)
        ]
        syn = None
        if synthetic:
            syn = SyntheticImages(
                max=[_image(stimuli_dir, f"u{u}/synthetic/max_{i}.png", float(i))
                     for i in range(n_synthetic)],
                min=[_image(stimuli_dir, f"u{u}/synthetic/min_{i}.png", float(i))
                     for i in range(n_synthetic)],
            )
        unit_id = unit_ids[u] if unit_ids is not None else f"{3 + u % n_layers}a:{u}"
        units.append(Unit(id=unit_id, layer=layer, channel=u,
                          label=f"{3 + u % n_layers}a", selection="random",
                          natural=NaturalExemplars(batches=batches), synthetic=syn))
    manifest = Manifest(model=ModelInfo(name="test", random_weights=True), units=units)
    write_manifest(manifest, stimuli_dir / "manifest.json")
    return manifest


def make_study(
    root: Path, *, name: str = "teststudy", seed: int = 7,
    conditions: str = '["natural", "synthetic"]',
    assignment: str = "between", reference_mode: str = "min+max", n_references: int = 9,
    tasks: int = 4, trials: int = 8, catch: int = 2, practice: int = 2, assignments: int = 1,
    **manifest_kwargs: object,
) -> Path:
    """A study directory with a study.toml and a generated manifest; returns the directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "study.toml").write_text(STUDY_TOML.format(
        name=name, seed=seed, conditions=conditions, assignment=assignment,
        reference_mode=reference_mode, n_references=n_references, tasks=tasks, trials=trials,
        catch=catch, practice=practice, assignments=assignments))
    make_manifest(root / "stimuli", **manifest_kwargs)  # type: ignore[arg-type]
    return root


def mturk(study, client, target: str = "local"):
    """The study's MTurk platform at `target`, talking through `client` (a fake, or a boto3
    client of an in-process local twin)."""
    from crowdkit.platforms.mturk import MTurk

    return MTurk(study.config, target, client=client)
