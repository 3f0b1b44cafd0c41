"""A study's stimuli: build stimgen's job from a `Study` and render it.

stimgen does not know what a study is; this is where a study's directories, its [stimuli]
section and its seed become a `stimgen.job.StimuliJob`. Importing this module is light: the
renderer (and torch) is loaded when `render_study_stimuli` runs.
"""

from __future__ import annotations

from collections.abc import Callable

from crowdkit.progress import Progress, silent
from crowdkit.study import Study
from stimgen.job import StimuliJob, StimuliPlan, StimuliResult


def stimuli_job(study: Study, ray: str | None = None) -> StimuliJob:
    """The rendering `study` asks for: its [stimuli] seed if set, else the study's seed; on
    the Ray cluster `ray` names, else [compute] ray's, else in this process."""
    cfg = study.config.stimuli
    seed = cfg.seed if cfg.seed is not None else study.config.study.seed
    return StimuliJob(root=study.root, stimuli_dir=study.stimuli_dir,
                      manifest_path=study.manifest_path, config=cfg, seed=seed,
                      ray=ray or study.config.compute.ray or None)


def render_study_stimuli(
    study: Study,
    *,
    device: str | None = None,
    progress: Progress = silent,
    on_plan: Callable[[StimuliPlan], None] | None = None,
    estimate: bool = True,
    ray: str | None = None,
) -> StimuliResult:
    """Render the study's stimuli into `study.stimuli_dir` and write its manifest.json.

    `device` overrides [stimuli] device ("auto", "cpu", "cuda", "cuda:N"); `progress` is
    told of each stretch of work (see crowdkit.progress); `on_plan` is told what will be
    done, with a measured time estimate unless `estimate` is False, before it starts.
    `ray` shards the work over a Ray cluster ("local", an address; default [compute] ray).
    Ctrl-C raises `stimgen.job.StimuliInterrupted` (what was kept). Afterwards every unit's
    stimuli are put on one page, stimuli/gallery.html (`result.gallery`). Nothing is
    printed; the CLI prints the plan, `result.summary_lines()` and `result.warnings`.
    """
    from crowdkit.gallery import write_gallery
    from stimgen.pipeline import render_stimuli

    result = render_stimuli(stimuli_job(study, ray), device=device, progress=progress,
                            on_plan=on_plan, estimate=estimate)
    result.gallery = write_gallery(result.manifest_path, manifest=result.manifest)
    return result
