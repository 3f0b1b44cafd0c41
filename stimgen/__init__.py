"""stimgen: the pixels of a study -- natural exemplars and feature visualizations.

Importing this package is light; torch is imported only by the modules that render, so
crowdkit can validate study.toml (through `stimgen.config`) without loading torch.

Entry point: `render_study_stimuli(study, device=None, progress=True)` renders the
`[stimuli]` section of a study into `stimuli/` and returns a `StimuliResult` whose
`.manifest` is the written manifest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crowdkit.study import Study
    from stimgen.pipeline import StimuliResult


def render_study_stimuli(study: Study, **kwargs: Any) -> StimuliResult:
    """Render the study's stimuli and write stimuli/manifest.json (see stimgen.pipeline)."""
    from stimgen.pipeline import render_study_stimuli as render

    return render(study, **kwargs)
