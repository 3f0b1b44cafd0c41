"""What `stimgen.pipeline.render_stimuli` is asked to do, and what it reports back.

Light on purpose (no torch): crowdkit builds a `StimuliJob` from a study and reads the
`StimuliResult` without loading the renderer. stimgen knows nothing of crowdkit's `Study`;
everything it needs from one is in the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crowdkit.manifest import Manifest
from stimgen.config import StimuliConfig


@dataclass(frozen=True)
class StimuliJob:
    """One rendering: the [stimuli] settings and where the results go.

    `root` is the directory that relative `dataset` and `weights` paths are relative to (a
    study's directory); `seed` is the seed in force (the [stimuli] seed, else the study's).
    """

    root: Path
    stimuli_dir: Path
    manifest_path: Path
    config: StimuliConfig
    seed: int


@dataclass
class StimuliResult:
    """What a rendering did, for the summary the command prints."""

    manifest: Manifest
    manifest_path: Path
    device: str
    seconds: float = 0.0
    scanned_images: int = 0
    natural_written: int = 0
    natural_reused: int = 0
    synthetic_rendered: int = 0
    synthetic_reused: int = 0
    contact_sheets: list[Path] = field(default_factory=list)
    skipped_examples: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        m = self.manifest
        n_random = sum(u.selection == "random" for u in m.units)
        lines = [
            f"wrote {self.manifest_path} ({len(m.units)} units: {len(m.units) - n_random} "
            f"picked, {n_random} random) in {self.seconds:.0f} s on {self.device}",
            f"model: {m.model.name} ({m.model.family}), weights {m.model.weights}",
        ]
        if m.model.random_weights:
            lines.append("WARNING: random weights -- these stimuli show an untrained network, "
                         "fine for trying crowdkit out, not for a study")
        if m.dataset is not None:
            scan = (f"scanned {self.scanned_images} images" if self.scanned_images
                    else "scan reused")
            lines.append(f"dataset: {m.dataset.n_images} images, {m.dataset.n_skipped} "
                         f"unreadable skipped ({scan})")
            if self.skipped_examples:
                lines.append(f"  unreadable, e.g.: {', '.join(self.skipped_examples[:3])}")
        lines.append(f"natural exemplars: {self.natural_written} units written, "
                     f"{self.natural_reused} reused")
        lines.append(f"feature visualizations: {self.synthetic_rendered} unit-directions "
                     f"rendered, {self.synthetic_reused} reused")
        if self.contact_sheets:
            lines.append(f"contact sheets: {self.contact_sheets[0].parent}/ "
                         f"({len(self.contact_sheets)} PNGs)")
        return lines
