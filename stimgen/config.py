"""The `[stimuli]` section of study.toml. Pure pydantic: crowdkit validates it without torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SyntheticConfig(BaseModel):
    """Feature-visualization settings; the `iclr2021` preset is the paper's."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["iclr2021", "custom"] = "iclr2021"
    steps: int | None = Field(default=None, ge=1)
    image_size: int | None = Field(default=None, ge=16)
    crop: int | None = Field(default=None, ge=0)
    lr: float | None = Field(default=None, gt=0)
    diversity_weight: float | None = Field(default=None, ge=0)
    n_images: int = Field(default=9, ge=1, le=64)


class StimuliConfig(BaseModel):
    """What `crowdkit stimuli` renders: model, units, dataset and visualizations."""

    model_config = ConfigDict(extra="forbid")

    model: str = "inceptionv1"
    weights: str = "pretrained"
    dataset: str | None = None
    units: list[str] = Field(default_factory=list)
    random_layers: list[str] = Field(default_factory=list)
    random_per_branch: int = Field(default=1, ge=0)
    batches: int = Field(default=20, ge=1)
    images_per_batch: int = Field(default=10, ge=2)
    image_format: Literal["png", "jpeg"] = "png"
    device: str = "auto"
    seed: int | None = None
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
