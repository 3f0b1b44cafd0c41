"""What `stimgen.pipeline.render_stimuli` is asked to do, and what it reports back.

Light on purpose (no torch): crowdkit builds a `StimuliJob` from a study and reads the
`StimuliPlan` (what a rendering will do, before it starts), the `StimuliResult` (what it
did) and a `StimuliInterrupted` (what Ctrl-C kept) without loading the renderer. stimgen
knows nothing of crowdkit's `Study`; everything it needs from one is in the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crowdkit.manifest import Manifest, Unit
from crowdkit.progress import format_clock
from stimgen.config import StimuliConfig


@dataclass(frozen=True)
class StimuliJob:
    """One rendering: the [stimuli] settings and where the results go.

    `root` is the directory that relative `dataset` and `weights` paths are relative to (a
    study's directory); `seed` is the seed in force (the [stimuli] seed, else the study's);
    `ray` the Ray cluster to shard the work over ("local", an address; None: this process).
    """

    root: Path
    stimuli_dir: Path
    manifest_path: Path
    config: StimuliConfig
    seed: int
    ray: str | None = None


@dataclass
class StimuliPlan:
    """What a rendering is about to do, said before it starts (the CLI prints `lines()` and
    `warnings`): where, with which weights, how much work, and about how long it takes."""

    device: str
    model: str
    weights: str
    random_weights: bool
    units: int
    random_units: int
    dataset: str
    dataset_images: int
    scan_images: int  # images the scan still has to read (0: its results are reused)
    natural_units: int  # units whose exemplars are still to be written
    synthetic_targets: int  # unit-directions still to be rendered
    synthetic_reused: int
    steps: int
    image_size: int
    images_per_target: int
    estimate_s: float | None = None  # from a short measurement; None when nothing was timed
    measured: str = ""  # what the estimate was measured on
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        fv = (f"feature visualizations: {self.synthetic_targets} unit-directions to render "
              f"({self.images_per_target} images of {self.image_size} px, {self.steps} steps"
              f" each), {self.synthetic_reused} reused")
        scan = (f"scan {self.scan_images} images" if self.scan_images
                else "scan reused from an earlier run")
        lines = [
            f"about to render on {self.device}: {self.model}, weights {self.weights}",
            f"units: {self.units} ({self.units - self.random_units} picked, "
            f"{self.random_units} random); dataset {self.dataset}: {self.dataset_images} "
            f"images ({scan}); natural exemplars of {self.natural_units} units to write",
            fv,
        ]
        if self.estimate_s is not None:
            lines.append(f"estimated time: about {format_clock(self.estimate_s)} "
                         f"(measured: {self.measured})")
        elif not (self.scan_images or self.natural_units or self.synthetic_targets):
            lines.append("everything is reused from an earlier run")
        return lines


class StimuliInterrupted(KeyboardInterrupt):
    """Ctrl-C during a rendering: `kept` says what is saved, so a re-run continues there."""

    def __init__(self, kept: list[str]) -> None:
        super().__init__("; ".join(kept))
        self.kept = kept


def overlap_warnings(manifest: Manifest) -> list[str]:
    """Units whose stimuli do not separate: the least activating "max" image activates the
    unit no more than the most activating "min" image, for the feature visualizations or
    the natural exemplars. Such a unit's trials have no right answer a person could see."""
    sheets = manifest.parameters.get("contact_sheets") or {}
    warnings = []
    for unit in manifest.units:
        for what, highs, lows in _sides(unit):
            if not highs or not lows or min(highs) > max(lows):
                continue
            sheet = sheets.get(unit.id)
            look = f"; look at stimuli/{sheet}" if sheet else ""
            warnings.append(
                f"unit {unit.id}: its {what} do not separate: max images mean "
                f"{_mean(highs):.2f}, min images mean {_mean(lows):.2f} (the lowest max "
                f"{min(highs):.2f} is not above the highest min {max(lows):.2f}){look} "
                "before using it (more steps, or another unit)")
    return warnings


def _sides(unit: Unit) -> list[tuple[str, list[float], list[float]]]:
    """(what, max activations, min activations) for each kind of stimulus a unit has."""
    out = []
    if unit.synthetic is not None:
        out.append(("feature visualizations",
                    [r.activation for r in unit.synthetic.max if r.activation is not None],
                    [r.activation for r in unit.synthetic.min if r.activation is not None]))
    if unit.natural is not None:
        batches = unit.natural.batches
        out.append(("natural exemplars",
                    [r.activation for b in batches for r in b.max if r.activation is not None],
                    [r.activation for b in batches for r in b.min if r.activation is not None]))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


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
    gallery: Path | None = None  # every unit's stimuli on one page (crowdkit writes it)

    @property
    def warnings(self) -> list[str]:
        """What a researcher must look at before publishing (units that do not separate)."""
        return overlap_warnings(self.manifest)

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
        if self.gallery is not None:
            lines.append(f"gallery: {self.gallery} (every unit's stimuli on one page: look "
                         "at it before publishing)")
        return lines
