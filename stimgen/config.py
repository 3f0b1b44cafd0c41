"""The `[stimuli]` section of study.toml. Pure pydantic: crowdkit validates it without torch.

Everything `crowdkit stimuli` renders is decided here, so a study directory plus its
study.toml regenerates the same pixels. Synthetic settings come from a preset (the paper's
`iclr2021` by default); any key given explicitly overrides the preset's value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The feature-visualization settings of Borowski et al. (ICLR 2021), as in their release:
# lucid, 224 px plus 16 px padding per side, 2560 Adam steps at lr 0.05, diversity 1e2 on the
# whole mixed layer's pre-ReLU output over 10 images, lucid's redirected ReLU gradient for the
# first 16 steps, and lucid's transforms jitter 16, scale, rotate, jitter 8.
PRESETS: dict[str, dict[str, Any]] = {
    "iclr2021": {
        "steps": 2560,
        "image_size": 256,
        "crop": 16,
        "lr": 0.05,
        "diversity_weight": 100.0,
        "diversity_layer": "mixed",
        "n_images": 10,
        "relu_gradient": "lucid",
        "relu_redirect_steps": 16,
        "transforms": "lucid",
        "jitter": 16,
        "scales": [1.0, 0.975, 1.025, 0.95, 1.05],
        "rotations": [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5],
        "final_jitter": 8,
    },
}
# "custom" starts from the paper's values too; the name records that some were changed.
PRESETS["custom"] = PRESETS["iclr2021"]
# What each choice-valued setting may be (the renderer's behaviour for each: stimgen.featurevis).
DiversityLayer = Literal["mixed", "unit"]  # the whole mixed layer, or the unit's own layer
ReluGradient = Literal["lucid", "lucent", "relu"]  # redirected as lucid, 0.1 leak, plain
Transforms = Literal["lucid", "lucent"]  # lucid's crop and resize, or lucent's shift and pad


class UnitEntry(BaseModel):
    """A unit listed by hand with its selection made explicit (default: picked)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    selection: Literal["random", "picked"] = "picked"


class SyntheticConfig(BaseModel):
    """Feature-visualization settings; unset keys take the preset's value."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    preset: Literal["iclr2021", "custom"] = "iclr2021"
    steps: int | None = Field(default=None, ge=1)
    image_size: int | None = Field(default=None, ge=16)
    crop: int | None = Field(default=None, ge=0)
    lr: float | None = Field(default=None, gt=0)
    diversity_weight: float | None = Field(default=None, ge=0)
    diversity_layer: DiversityLayer | None = None
    n_images: int | None = Field(default=None, ge=1, le=64)
    relu_gradient: ReluGradient | None = None
    relu_redirect_steps: int | None = Field(default=None, ge=0)
    transforms: Transforms | None = None
    jitter: int | None = Field(default=None, ge=0)
    scales: list[float] | None = Field(default=None, min_length=1)
    rotations: list[float] | None = Field(default=None, min_length=1)
    final_jitter: int | None = Field(default=None, ge=0)
    # Images optimised together in one forward/backward pass; unset = chosen by device
    # (small on a CPU, where big batches are slower per image; large on a GPU).
    chunk_images: int | None = Field(default=None, ge=1)

    @field_validator("scales")
    @classmethod
    def _positive_scales(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError("scales must all be positive")
        return value

    @model_validator(mode="after")
    def _crop_fits(self) -> SyntheticConfig:
        size, crop = self.resolved("image_size"), self.resolved("crop")
        if size - 2 * crop < 8:
            raise ValueError(
                f"crop = {crop} leaves {size - 2 * crop} px of an image_size = {size} image"
            )
        return self

    def resolved(self, key: str) -> Any:  # a number or a list: each setting has its own type
        """The value in force for `key`: the explicit one, else the preset's."""
        value = getattr(self, key)
        return PRESETS[self.preset][key] if value is None else value

    def settings(self) -> dict[str, Any]:
        """Every optimisation setting in force, for the renderer and the manifest."""
        return {key: self.resolved(key) for key in PRESETS[self.preset]}


class StimuliConfig(BaseModel):
    """What `crowdkit stimuli` renders: model, units, dataset and visualizations."""

    model_config = ConfigDict(extra="forbid")

    # "inceptionv1" (lucent), a torchvision classification model ("resnet50"), or
    # "package.module:function" returning an nn.Module.
    model: str = "inceptionv1"
    # "pretrained" (downloaded by lucent/torchvision), "random" (seeded, offline), or a path
    # to a state-dict file (relative paths are relative to the study directory).
    weights: str = "pretrained"
    dataset: str | None = None
    # Units listed by hand: "4a:257" (paper numbering), "mixed4a_3x3_pre_relu_conv:65",
    # "layer3.1.conv2:17", or { id = "...", selection = "random" }.
    units: list[str | UnitEntry] = Field(default_factory=list)
    # Layers where units are drawn at random: per branch for InceptionV1's mixed layers.
    random_layers: list[str] = Field(default_factory=list)
    random_per_branch: int = Field(default=1, ge=0)
    batches: int = Field(default=20, ge=1)
    images_per_batch: int = Field(default=10, ge=2)
    # How a rank bin's images are dealt to the batches: "ranked" (batch b takes rank b of
    # every bin) or "shuffled" (as the paper's authors: shuffled per bin, seeded by the unit).
    bin_order: Literal["ranked", "shuffled"] = "ranked"
    image_format: Literal["png", "jpeg"] = "png"
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    device: str = "auto"
    seed: int | None = None
    scan_batch_size: int | None = Field(default=None, ge=1)  # unset: by device
    num_workers: int | None = Field(default=None, ge=0)
    contact_sheets: bool = True
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    @field_validator("units", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        if isinstance(value, list):
            return [v.strip() if isinstance(v, str) else v for v in value]
        return value

    @property
    def images_per_side(self) -> int:
        """K: how many top (and bottom) images per unit the batches use."""
        return self.batches * self.images_per_batch

    def unit_entries(self) -> list[UnitEntry]:
        """The hand-listed units, with plain strings read as picked units."""
        return [u if isinstance(u, UnitEntry) else UnitEntry(id=u) for u in self.units]
