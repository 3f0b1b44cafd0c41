"""A study's stimuli: build stimgen's job from a `Study` and render it.

stimgen does not know what a study is; this is where a study's directories, its [stimuli]
section and its seed become a `stimgen.job.StimuliJob`. Importing this module is light: the
renderer (and torch) is loaded when `render_study_stimuli` runs.
"""

from __future__ import annotations

from crowdkit.progress import Progress, silent
from crowdkit.study import Study
from stimgen.job import StimuliJob, StimuliResult


def stimuli_job(study: Study) -> StimuliJob:
    """The rendering `study` asks for: its [stimuli] seed if set, else the study's seed."""
    cfg = study.config.stimuli
    seed = cfg.seed if cfg.seed is not None else study.config.study.seed
    return StimuliJob(root=study.root, stimuli_dir=study.stimuli_dir,
                      manifest_path=study.manifest_path, config=cfg, seed=seed)


def render_study_stimuli(
    study: Study,
    *,
    device: str | None = None,
    progress: Progress = silent,
) -> StimuliResult:
    """Render the study's stimuli into `study.stimuli_dir` and write its manifest.json.

    `device` overrides [stimuli] device ("auto", "cpu", "cuda", "cuda:N"); `progress` is
    told of each stretch of work (see crowdkit.progress). Nothing is printed; the CLI prints
    `result.summary_lines()`.
    """
    from stimgen.pipeline import render_stimuli

    return render_stimuli(stimuli_job(study), device=device, progress=progress)
