"""Units: which feature maps a study measures, how they are spelled, and how random ones are drawn.

A unit is a feature map, addressed by a layer (a module name) and a channel. For lucent's
InceptionV1 the paper measured the pre-ReLU convolution of each branch of a mixed layer and
numbered channels across the concatenated branches, in the model's concatenation order
(1x1, 3x3, 5x5, pool): in mixed4a the 1x1 branch has 192 channels, so "4a:257" is channel 65
of `mixed4a_3x3_pre_relu_conv`. The conversion table is read from the model's branch
convolutions, never typed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from torch import nn

from crowdkit.errors import ConfigError
from stimgen.config import StimuliConfig, UnitEntry
from stimgen.hashing import derive_seed
from stimgen.models import LoadedModel, probe_layers, unknown_layer_message

INCEPTION_BLOCKS = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
# Concatenation order of lucent's mixed layers, and the paper's names for the branches.
INCEPTION_BRANCHES = ("1x1", "3x3", "5x5", "pool_reduce")
BRANCH_LABELS = {"1x1": "1x1", "3x3": "3x3", "5x5": "5x5", "pool_reduce": "pool"}

_PAPER_BLOCK = re.compile(r"^(?:mixed)?([345][a-e])$")
_BRANCH_CONV = re.compile(r"^mixed([345][a-e])_(1x1|3x3|5x5|pool_reduce)_pre_relu(?:_conv)?$")

Selection = Literal["random", "picked"]


@dataclass(frozen=True)
class UnitRef:
    """One feature map as the rest of stimgen sees it."""

    id: str  # "4a:257" for InceptionV1 branch units, else "layer:channel"
    layer: str  # the module whose output is read
    channel: int  # channel within that module's output
    label: str  # "4a, 3x3"
    selection: Selection

    @property
    def slug(self) -> str:
        """A file-system-safe name: "4a-257", "layer3.1.conv2-17"."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.id.replace(":", "-"))


@dataclass(frozen=True)
class Branch:
    block: str  # "4a"
    name: str  # "3x3"
    layer: str  # "mixed4a_3x3_pre_relu_conv"
    offset: int  # first channel number of this branch in the paper's numbering
    size: int  # channels


class InceptionNumbering:
    """The paper's channel numbers <-> lucent's branch convolutions, from real branch sizes."""

    def __init__(self, model: nn.Module) -> None:
        modules = dict(model.named_modules())
        self.blocks: dict[str, list[Branch]] = {}
        for block in INCEPTION_BLOCKS:
            offset, branches = 0, []
            for name in INCEPTION_BRANCHES:
                layer = f"mixed{block}_{name}_pre_relu_conv"
                conv = modules.get(layer)
                if not isinstance(conv, nn.Conv2d):
                    raise ConfigError(f"model has no InceptionV1 branch convolution {layer!r}")
                branches.append(Branch(block, name, layer, offset, conv.out_channels))
                offset += conv.out_channels
            self.blocks[block] = branches

    def size(self, block: str) -> int:
        last = self.blocks[block][-1]
        return last.offset + last.size

    def to_branch(self, block: str, number: int) -> tuple[Branch, int]:
        """Paper number in a block -> (branch, branch-local channel)."""
        for branch in self.blocks[block]:
            if branch.offset <= number < branch.offset + branch.size:
                return branch, number - branch.offset
        raise ValueError(f"channel {number} is out of range for {block} (0-{self.size(block) - 1})")

    def to_paper(self, layer: str, channel: int) -> tuple[Branch, int] | None:
        """Branch conv and local channel -> (branch, paper number); None for other layers."""
        match = _BRANCH_CONV.match(layer)
        if not match:
            return None
        block, name = match.groups()
        branch = next(b for b in self.blocks[block] if b.name == name)
        return branch, branch.offset + channel


class UnitResolver:
    """Turns the unit spellings of study.toml into `UnitRef`s and checks them against the model."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.modules = {name for name, _ in model.module.named_modules() if name}
        self.inception = (
            InceptionNumbering(model.module) if model.name == "inceptionv1" else None
        )
        self._channels: dict[str, int] = {}

    def resolve(self, spec: str, selection: Selection = "picked") -> UnitRef:
        where, sep, number_text = spec.rpartition(":")
        if not sep or not where or not re.fullmatch(r"\d+", number_text.strip()):
            raise ConfigError(
                f"[stimuli] units: {spec!r} is not a unit; write layer:channel such as "
                '"4a:257" or "mixed4a_3x3_pre_relu_conv:65"'
            )
        where, number = where.strip(), int(number_text)
        if self.inception is not None:
            block = _PAPER_BLOCK.match(where)
            if block:
                try:
                    branch, channel = self.inception.to_branch(block.group(1), number)
                except ValueError as exc:
                    raise ConfigError(f"[stimuli] units: {spec!r}: {exc}") from None
                return self._paper_unit(branch, channel, selection)
            where = self._lucent_spelling(where)
        layer = self._check_layer(where, "units")
        channels = self.channels(layer)
        if number >= channels:
            raise ConfigError(
                f"[stimuli] units: {spec!r}: channel {number} is out of range for "
                f"{layer} (0-{channels - 1})"
            )
        if self.inception is not None:
            paper = self.inception.to_paper(layer, number)
            if paper is not None:
                return self._paper_unit(paper[0], number, selection)
        return UnitRef(f"{layer}:{number}", layer, number, f"{layer}, channel {number}", selection)

    def _paper_unit(self, branch: Branch, channel: int, selection: Selection) -> UnitRef:
        unit_id = f"{branch.block}:{branch.offset + channel}"
        label = f"{branch.block}, {BRANCH_LABELS[branch.name]}"
        return UnitRef(unit_id, branch.layer, channel, label, selection)

    def _lucent_spelling(self, where: str) -> str:
        """Accept lucid's names ("mixed4a_3x3_pre_relu") for lucent's modules (+"_conv")."""
        if where not in self.modules and f"{where}_conv" in self.modules:
            return f"{where}_conv"
        return where

    def _check_layer(self, layer: str, key: str) -> str:
        if layer not in self.modules:
            message = unknown_layer_message(layer, sorted(self.modules))
            raise ConfigError(f"[stimuli] {key}: {message} (model {self.model.name})")
        return layer

    def channels(self, layer: str) -> int:
        """Output channels of `layer`: from a conv's, linear's or norm's size, else measured."""
        module = self._module(layer)
        for attr in ("out_channels", "out_features", "num_features"):
            if isinstance(module, nn.Conv2d | nn.Linear | nn.BatchNorm2d) and hasattr(module, attr):
                return int(getattr(module, attr))
        if layer not in self._channels:
            self._channels.update(
                {name: info.channels for name, info in probe_layers(self.model, [layer]).items()}
            )
        return self._channels[layer]

    def _module(self, layer: str) -> nn.Module:
        return self.model.module.get_submodule(layer)

    def random_pools(self, layer_spec: str) -> list[tuple[str, str, int]]:
        """Where random units of `layer_spec` are drawn: (pool name, layer, channels) each.

        InceptionV1's mixed layers draw per branch; any other layer is one pool.
        """
        layer_spec = layer_spec.strip()
        if self.inception is not None:
            block = _PAPER_BLOCK.match(layer_spec)
            if block:
                return [
                    (f"{b.block}_{b.name}", b.layer, b.size)
                    for b in self.inception.blocks[block.group(1)]
                ]
            layer_spec = self._lucent_spelling(layer_spec)
        layer = self._check_layer(layer_spec, "random_layers")
        return [(layer, layer, self.channels(layer))]


def select_units(config: StimuliConfig, model: LoadedModel, seed: int) -> list[UnitRef]:
    """Hand-listed units first, then the random draws, each unit once, in a stable order."""
    resolver = UnitResolver(model)
    units: list[UnitRef] = []
    seen: dict[tuple[str, int], str] = {}
    entries: list[UnitEntry] = config.unit_entries()
    for entry in entries:
        unit = resolver.resolve(entry.id, entry.selection)
        key = (unit.layer, unit.channel)
        if key in seen:
            raise ConfigError(
                f"[stimuli] units: {entry.id!r} is the same unit as {seen[key]!r}"
            )
        seen[key] = entry.id
        units.append(unit)
    for layer_spec in config.random_layers:
        for pool, layer, size in resolver.random_pools(layer_spec):
            for channel in draw_channels(size, config.random_per_branch,
                                         {c for (lay, c) in seen if lay == layer},
                                         derive_seed(seed, "random-units", pool), pool):
                unit = resolver.resolve(f"{layer}:{channel}", "random")
                seen[(unit.layer, unit.channel)] = unit.id
                units.append(unit)
    if not units:
        raise ConfigError("[stimuli]: no units; list some in units or name random_layers")
    return units


def draw_channels(size: int, count: int, exclude: set[int], seed: int, pool: str) -> list[int]:
    """`count` distinct channels of `size`, none in `exclude`, from a seeded generator."""
    candidates = [c for c in range(size) if c not in exclude]
    if count > len(candidates):
        raise ConfigError(
            f"[stimuli] random_per_branch = {count}, but {pool} has only "
            f"{len(candidates)} channels left to draw from"
        )
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(candidates), size=count, replace=False)
    return sorted(candidates[i] for i in picks)
