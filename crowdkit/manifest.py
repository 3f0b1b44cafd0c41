"""The stimulus manifest (`stimuli/manifest.json`): one versioned schema.

stimgen writes it; `crowdkit.design` reads it. Researchers who bring their own images (from
another interpretability method, say) write one by hand, and `load_manifest` checks it with
errors that name the field. Every image is a path relative to the `stimuli/` directory.

Ranking convention, on both sides: the images of a batch are listed in ascending order of
activation. So the max side's last image (rank 9 of 10) is its most strongly activating
image -- the max query -- and the min side's first image (rank 0) is its most weakly
activating image -- the min query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crowdkit.errors import ConfigError
from crowdkit.files import write_atomically

MANIFEST_SCHEMA_VERSION: Final = 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageRef(Strict):
    """One image file with the score that put it where it is."""

    path: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    activation: float | None = None
    dataset_index: int | None = None
    source: str | None = None  # the dataset file a natural crop came from

    @model_validator(mode="after")
    def _relative(self) -> ImageRef:
        p = Path(self.path)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"image path must be relative to stimuli/, got {self.path!r}")
        return self


class ExemplarBatch(Strict):
    """One batch of natural exemplars: `max` and `min`, each in ascending activation."""

    index: int = Field(ge=0)
    max: list[ImageRef] = Field(min_length=2)
    min: list[ImageRef] = Field(min_length=2)


class NaturalExemplars(Strict):
    batches: list[ExemplarBatch] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_batch_indices(self) -> NaturalExemplars:
        seen: set[int] = set()
        for batch in self.batches:
            if batch.index in seen:
                raise ValueError(f"batch index {batch.index} appears twice")
            seen.add(batch.index)
        return self

    def batch(self, index: int) -> ExemplarBatch:
        """The batch with this index (indexes are unique); KeyError when there is none."""
        for batch in self.batches:
            if batch.index == index:
                return batch
        raise KeyError(index)


class ImageSet(Strict):
    """One method's images of a unit (feature visualizations, or any other explanation's),
    each side in ascending activation like the batches.

    `activation` holds the value re-scored on the final image. A study that shows fewer
    images than there are takes the most strongly activating max images and the most weakly
    activating min images.
    """

    max: list[ImageRef] = Field(min_length=1)
    min: list[ImageRef] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)


SyntheticImages = ImageSet  # the name stimgen and older code use for feature visualizations


class MethodInfo(Strict):
    """What an explanation method whose images a manifest brings is called in reports."""

    label: str = ""
    description: str = ""
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class Unit(Strict):
    """A feature map: a layer and a channel, with a human label such as "4a, 3x3"."""

    id: str = Field(min_length=1)
    layer: str
    channel: int = Field(ge=0)
    label: str = ""
    selection: Literal["random", "picked"] = "picked"
    natural: NaturalExemplars
    synthetic: ImageSet | None = None
    # Images of other explanation methods, by method name: each is a condition of its own
    # (crowdkit.sources registers one per name).
    references: dict[str, ImageSet] = Field(default_factory=dict)


class ModelInfo(Strict):
    name: str
    family: str = "custom"
    weights: str = "unknown"
    weights_sha256: str | None = None
    random_weights: bool = False


class DatasetInfo(Strict):
    root: str
    n_images: int = Field(ge=0)
    n_skipped: int = Field(default=0, ge=0)
    preprocessing: str = "Resize(256), CenterCrop(224)"


class Manifest(Strict):
    schema_version: Literal[1] = MANIFEST_SCHEMA_VERSION
    generator: str = "hand-written"
    created_at: str | None = None
    model: ModelInfo
    dataset: DatasetInfo | None = None
    units: list[Unit] = Field(min_length=1)
    methods: dict[str, MethodInfo] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_unit_ids(self) -> Manifest:
        seen: set[str] = set()
        for unit in self.units:
            if unit.id in seen:
                raise ValueError(f"unit id {unit.id!r} appears twice")
            seen.add(unit.id)
        return self

    def unit(self, unit_id: str) -> Unit:
        for unit in self.units:
            if unit.id == unit_id:
                return unit
        raise KeyError(unit_id)

    def image_paths(self) -> list[str]:
        """Every image file the manifest names, once each, in a stable order."""
        paths: dict[str, None] = {}
        for unit in self.units:
            for batch in unit.natural.batches:
                for ref in [*batch.max, *batch.min]:
                    paths[ref.path] = None
            image_sets = [unit.synthetic, *unit.references.values()]
            for images in filter(None, image_sets):
                for ref in [*images.max, *images.min]:
                    paths[ref.path] = None
        return list(paths)


def load_manifest(path: Path, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest; with `check_files`, every image must exist."""
    if not path.is_file():
        raise ConfigError(f"{path}: no stimulus manifest; render one with `crowdkit stimuli`")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start}); JSON must be UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: arrays or objects are nested too deeply to read") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"{path}: {where}: {msg}")
        raise ConfigError(lines[0], lines=lines) from None
    if check_files:
        missing = [p for p in manifest.image_paths() if not (path.parent / p).is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConfigError(f"{path}: image file missing: {missing[0]}{more}")
    return manifest


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write atomically, so a crash never leaves half a manifest."""
    write_atomically(path, manifest.model_dump_json(indent=2, exclude_none=True))
