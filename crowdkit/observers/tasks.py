"""What the machine observer looks at: the study's designed 2-AFC trials, image by image,
and for screening, tasks drawn from the manifest the MIS paper's way.

A designed trial is read as a worker's page shows it -- references left and right (which
side holds the max references is public: the page names it), two queries top and bottom --
from the ledger's public task; the answer key is only read afterwards, by the trial type,
to say whether the observer's choice was right. Images are found by key in the ledger's
images table, so the observer sees the very files a worker would (padded served copies,
catch trials' copies included).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from crowdkit import sources
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.manifest import ImageRef, Manifest, Unit
from crowdkit.study import Study
from crowdkit.tasks import DesignedTask
from crowdkit.trials.base import TrialKeyBase
from crowdkit.trials.twoafc import PublicTrial, TrialKey


@dataclass(frozen=True)
class ObservedTrial:
    """One 2-AFC trial as the observer sees it: image files by role."""

    task_id: str
    trial_id: str
    key: TrialKeyBase
    top: Path
    bottom: Path
    max_refs: tuple[Path, ...]
    min_refs: tuple[Path, ...]


def designed_trials(study: Study, ledger: Ledger) -> tuple[list[DesignedTask],
                                                           list[ObservedTrial]]:
    """Every 2-AFC trial of the ledger's tasks, in design order."""
    tasks = ledger.tasks()
    if not tasks:
        raise CrowdkitError(f"{study.db_path}: no designed tasks; run `crowdkit design "
                            f"{study.root}` first")
    paths = {key: study.root / row["path"] for key, row in ledger.images().items()}
    max_right = study.config.design.max_side == "right"
    trials = []
    for task in tasks:
        keys = {k.trial_id: k for k in task.key.trials}
        for public in task.public.trials:
            if not isinstance(public, PublicTrial):
                continue  # rating trials have no right answer to find
            refs = public.references
            max_keys, min_keys = (refs.right, refs.left) if max_right else (refs.left, refs.right)
            trials.append(ObservedTrial(
                task_id=task.public.task_id, trial_id=public.trial_id,
                key=keys[public.trial_id],
                top=_path(paths, public.queries.top), bottom=_path(paths, public.queries.bottom),
                max_refs=tuple(_path(paths, k) for k in max_keys),
                min_refs=tuple(_path(paths, k) for k in min_keys)))
    return tasks, trials


def _path(paths: dict[str, Path], key: str) -> Path:
    try:
        return paths[key]
    except KeyError:
        raise CrowdkitError(f"image {key} of a designed task is not in the ledger's images; "
                            "run `crowdkit design` again") from None


@dataclass(frozen=True)
class DrawnTask:
    """A screening task: natural queries drawn from a unit's extremes, and a condition's
    explanations. `max_is_top` is where the max query is put (alternating)."""

    unit: str
    condition: str
    index: int
    top: Path
    bottom: Path
    max_refs: tuple[Path, ...]
    min_refs: tuple[Path, ...]
    max_is_top: bool


def drawn_tasks(study: Study, manifest: Manifest, n_tasks: int, seed: int) -> list[DrawnTask]:
    """`n_tasks` tasks per unit of the manifest and condition that shows references.

    The natural condition follows the MIS paper: per task, draw n + 1 images without
    replacement from the unit's most activating images (all the images of its batches,
    the scan's top K) and n + 1 from its least activating ones; the n most extreme of each
    draw are the explanations, the remaining, least extreme one the query. Other conditions
    keep their source's explanations (a unit's feature visualizations) and draw the queries
    the same way.
    """
    design = study.config.design
    n = design.n_references
    mode = design.reference_mode
    sources.sources_for(manifest)
    stimuli = study.stimuli_dir
    tasks = []
    for unit in manifest.units:
        top_pool, bottom_pool = _extremes(unit)
        for condition in design.conditions:
            source = sources.find(condition)
            if source is None or not source.shows_references:
                continue
            if condition != "natural" and source.problem(unit, n, mode,
                                                         design.image_selection):
                continue
            rng = random.Random(f"mis-draw:{seed}:{unit.id}:{condition}")
            for index in range(n_tasks):
                highs = sorted(rng.sample(top_pool, min(n + 1, len(top_pool))),
                               key=_activation, reverse=True)
                lows = sorted(rng.sample(bottom_pool, min(n + 1, len(bottom_pool))),
                              key=_activation)
                max_q, min_q = highs[-1], lows[-1]
                if condition == "natural":
                    max_refs, min_refs = highs[:-1], (lows[:-1] if mode == "min+max" else [])
                else:
                    batch = unit.natural.batches[0]
                    max_refs, min_refs = source.references(unit, batch, n, mode,
                                                           design.image_selection)
                max_is_top = index % 2 == 0
                top, bottom = (max_q, min_q) if max_is_top else (min_q, max_q)
                tasks.append(DrawnTask(
                    unit=unit.id, condition=condition, index=index,
                    top=stimuli / top.path, bottom=stimuli / bottom.path,
                    max_refs=tuple(stimuli / r.path for r in max_refs),
                    min_refs=tuple(stimuli / r.path for r in min_refs), max_is_top=max_is_top))
    return tasks


def _extremes(unit: Unit) -> tuple[list[ImageRef], list[ImageRef]]:
    """Every max-side and min-side natural image of a unit, each once."""
    highs: dict[str, ImageRef] = {}
    lows: dict[str, ImageRef] = {}
    for batch in unit.natural.batches:
        highs.update({r.path: r for r in batch.max})
        lows.update({r.path: r for r in batch.min})
    return list(highs.values()), list(lows.values())


def _activation(ref: ImageRef) -> float:
    return ref.activation if ref.activation is not None else 0.0


def is_catch(key: TrialKeyBase) -> bool:
    return isinstance(key, TrialKey) and key.phase == "catch"
