"""stimgen: the pixels of a study -- natural exemplars and feature visualizations.

Importing this package is light; torch is imported only by the modules that render, so
crowdkit can validate study.toml (through `stimgen.config`) without loading torch.

stimgen knows nothing of crowdkit's studies: `stimgen.pipeline.render_stimuli(job, *,
device=None, progress=silent)` renders a `stimgen.job.StimuliJob` (the [stimuli] settings,
the seed, and where to write) into its stimuli directory and returns a `StimuliResult`
whose `.manifest` is the written manifest. For a study, call
`crowdkit.stimuli.render_study_stimuli(study)`, which builds the job.
"""
