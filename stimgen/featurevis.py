"""Feature visualizations, batched across units.

Each (unit, direction) is a group of `n_images` images with lucent's parameterisation (an
FFT spectrum with decorrelated colour, started from the group's own seed). The objective is
the paper's: the unit's channel mean minus `diversity_weight` times lucid's diversity term
over the group's images; min images negate the channel term and keep the diversity term.
The diversity term is taken on the whole mixed layer (the concatenated pre-ReLU branches, as
lucid's `mixedXX_pre_relu`) or on the unit's own layer (`diversity_layer`). The ReLUs'
gradient is lucid's redirected one for the first `relu_redirect_steps` steps and plain
after, as the paper's authors ran it, or lucent's 0.1 leak throughout (`relu_gradient`).
The transforms are lucid's (jitter crops, scale resizes) or lucent's (jitter shifts with
zero fill, scale resizes and pads): `transforms`.
Many groups share one optimisation: their losses add up, and since Adam updates each
parameter on its own gradient, each group comes out as it would alone. The random
transforms are drawn once per step for the whole chunk from a generator seeded the same way
for every chunk, so a group's images do not depend on which other groups shared its chunk.
The forward pass stops at the deepest layer the chunk needs.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crowdkit.errors import CrowdkitError
from stimgen.models import FeatureTap, LoadedModel, relu_rule, spatial_mean
from stimgen.units import INCEPTION_BRANCHES

with warnings.catch_warnings():  # kornia 0.4.1 uses the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    import kornia
    from kornia.geometry.transform import translate
    from lucent.optvis.param.color import color_correlation_normalized
    from lucent.optvis.param.spatial import rfft2d_freqs

Direction = Literal["max", "min"]
DIRECTIONS: tuple[Direction, ...] = ("max", "min")
INIT_SD = 0.01  # lucent's fft_image default
FFT_MAGIC = 4.0  # lucent's constant: divides the image to reduce saturation
_BRANCH_CONV = re.compile(r"^mixed([345][a-e])_(?:1x1|3x3|5x5|pool_reduce)_pre_relu_conv$")


@dataclass(frozen=True)
class RenderSettings:
    steps: int
    image_size: int
    crop: int
    lr: float
    diversity_weight: float
    n_images: int
    jitter: int
    scales: tuple[float, ...]
    rotations: tuple[float, ...]
    final_jitter: int
    # Defaults: the behaviour before these were settings; the iclr2021 preset sets the
    # paper's ("mixed", "lucid", 16, "lucid").
    diversity_layer: str = "unit"
    relu_gradient: str = "lucent"
    relu_redirect_steps: int = 16
    transforms: str = "lucent"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RenderSettings:
        fields = dict(values)
        fields["scales"] = tuple(float(s) for s in fields["scales"])
        fields["rotations"] = tuple(fields["rotations"])
        return cls(**{k: fields[k] for k in cls.__dataclass_fields__ if k in fields})

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["scales"], out["rotations"] = list(self.scales), list(self.rotations)
        return out

    @property
    def final_size(self) -> int:
        return self.image_size - 2 * self.crop

    def relu_rule(self, step: int) -> str:
        """The ReLU gradient at optimisation step `step` (0-based): stimgen.models' rules."""
        if self.relu_gradient == "lucid":
            return "redirect" if step < self.relu_redirect_steps else "relu"
        return "leak" if self.relu_gradient == "lucent" else "relu"


@dataclass(frozen=True)
class RenderTarget:
    """One group: a unit's channel in a layer, a direction, and the seed of its start image."""

    key: str
    layer: str
    channel: int
    direction: Direction
    init_seed: int

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "max" else -1.0


@dataclass
class RenderedGroup:
    target: RenderTarget
    images: np.ndarray  # (n, H, W, 3) uint8, the final crop
    activations: list[float]  # the unit's channel mean on each saved image, no transforms
    final_channel_mean: float  # the channel term at the last step (transformed images)
    final_diversity: float  # the diversity penalty at the last step


class FourierImages:
    """lucent's `fft_image` + `to_valid_rgb(decorrelate=True)` for many groups at once.

    All groups live in one spectrum tensor; each group's slice is drawn from its own seed,
    so batching does not change any group's starting point.
    """

    def __init__(self, seeds: Sequence[int], n_per_group: int, size: int,
                 device: torch.device, decay_power: float = 1.0) -> None:
        self.size = size
        freqs = rfft2d_freqs(size, size)
        shape = (n_per_group, 3, *freqs.shape, 2)
        parts = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) * INIT_SD
                 for s in seeds]
        self.spectrum = torch.cat(parts).to(device).requires_grad_(True)
        scale = 1.0 / np.maximum(freqs, 1.0 / size) ** decay_power
        self.scale = torch.tensor(scale).float()[None, None, ..., None].to(device)
        self.colour = torch.tensor(color_correlation_normalized.T).to(device)

    def __call__(self) -> Tensor:
        spectrum = torch.view_as_complex(self.scale * self.spectrum)
        image = torch.fft.irfftn(spectrum, s=(self.size, self.size), norm="ortho")
        image = image[:, :3, : self.size, : self.size] / FFT_MAGIC
        image = torch.matmul(image.permute(0, 2, 3, 1), self.colour).permute(0, 3, 1, 2)
        return torch.sigmoid(image)


class PaperTransforms:
    """jitter, random scale, random rotation, jitter -- lucent's transform code with the
    paper's parameters, an explicit device and its own random generator.

    Draws come from a `numpy.random.RandomState` in the same order as lucent's transforms draw
    from numpy's global generator, so seeding both alike gives identical transforms.
    """

    def __init__(self, settings: RenderSettings, rng: np.random.RandomState,
                 device: torch.device) -> None:
        self.settings = settings
        self.rng = rng
        self.device = device

    def __call__(self, image: Tensor) -> Tensor:
        s = self.settings
        image = self._jitter(image, s.jitter)
        image = self._scale(image, list(s.scales))
        image = self._rotate(image, list(s.rotations))
        return self._jitter(image, s.final_jitter)

    def _jitter(self, image: Tensor, d: int) -> Tensor:
        if d <= 1:
            return image
        dx, dy = self.rng.choice(d), self.rng.choice(d)
        shift = torch.tensor([[dx, dy]], dtype=torch.float32, device=self.device)
        return translate(image, shift)

    def _scale(self, image: Tensor, scales: list[float]) -> Tensor:
        scale = self.rng.choice(scales)
        h, w = image.shape[2:]
        new_h, new_w = int(np.ceil(scale * h)), int(np.ceil(scale * w))
        pad_x = max(0, int(np.ceil((w - new_w) / 2)))
        pad_y = max(0, int(np.ceil((h - new_h) / 2)))
        resized = F.interpolate(image, size=(new_h, new_w), mode="bilinear", align_corners=True)
        return F.pad(resized, [pad_y, pad_x] * 2)

    def _rotate(self, image: Tensor, angles: list[float]) -> Tensor:
        b, _, h, w = image.shape
        angle = torch.ones(b) * float(self.rng.choice(angles))
        center = torch.ones(b, 2)
        center[..., 0] = (w - 1) / 2
        center[..., 1] = (h - 1) / 2
        matrix = kornia.get_rotation_matrix2d(center, angle, torch.ones(b, 2)).to(self.device)
        return kornia.warp_affine(image.float(), matrix, dsize=(h, w))


class LucidTransforms(PaperTransforms):
    """lucid's transforms with the paper's parameters: jitter is a random crop of d px
    (lucid's `jitter`, an offset of 0 to d on each axis), scale a plain bilinear resize to
    int(scale x size) (lucid's `random_scale`), so the image shrinks by the two jitters and
    changes size with the scale. Rotation is as in lucent (kornia, bilinear, zero fill);
    lucid's rotates with TensorFlow's nearest-neighbour default.

    The draws come from the same `numpy.random.RandomState` stream, one per transform.
    """

    def _jitter(self, image: Tensor, d: int) -> Tensor:
        if d <= 0:
            return image
        h, w = image.shape[2:]
        dx, dy = int(self.rng.randint(d + 1)), int(self.rng.randint(d + 1))
        return image[:, :, dy:dy + h - d, dx:dx + w - d]

    def _scale(self, image: Tensor, scales: list[float]) -> Tensor:
        scale = float(self.rng.choice(scales))
        h, w = image.shape[2:]
        size = (max(1, int(scale * h)), max(1, int(scale * w)))
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def make_transforms(settings: RenderSettings, rng: np.random.RandomState,
                    device: torch.device) -> PaperTransforms:
    """The transforms `settings.transforms` names: "lucid" or "lucent"."""
    if settings.transforms == "lucid":
        return LucidTransforms(settings, rng, device)
    return PaperTransforms(settings, rng, device)


def diversity_layers(layer: str, mode: str) -> tuple[str, ...]:
    """The layers whose concatenated output the diversity term is taken on.

    "mixed": for a branch convolution of InceptionV1's mixed layers, all four branch
    convolutions of its mixed layer in concatenation order (lucid's `mixedXX_pre_relu`);
    for any other layer (other models) the layer itself, which is its whole layer.
    "unit": the unit's own layer.
    """
    match = _BRANCH_CONV.match(layer)
    if mode == "mixed" and match:
        return tuple(f"mixed{match.group(1)}_{b}_pre_relu_conv" for b in INCEPTION_BRANCHES)
    return (layer,)


def diversity_penalty(features: Tensor) -> Tensor:
    """lucid's diversity term for one group, as a penalty (higher = more alike).

    The Gram matrix of each image's feature map, normalised, summed dot products over all
    ordered pairs of different images, divided by the group size.
    """
    n, c = features.shape[:2]
    if n < 2:
        return features.new_zeros(())
    flat = features.reshape(n, c, -1)
    grams = torch.matmul(flat, flat.transpose(1, 2)).reshape(n, -1)
    grams = F.normalize(grams, p=2, dim=1)
    total = grams.sum(dim=0)
    return ((total * total).sum() - (grams * grams).sum()) / n


def group_objective(features: Tensor, target: RenderTarget, diversity_weight: float,
                    diversity_features: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(loss to minimise, channel mean, diversity penalty) for one group's feature maps.

    The diversity term is taken on `diversity_features` (the whole mixed layer) when given,
    else on the unit's own layer."""
    channel_mean = features[:, target.channel].mean()
    diversity = diversity_penalty(features if diversity_features is None
                                  else diversity_features)
    return -target.sign * channel_mean + diversity_weight * diversity, channel_mean, diversity


def render_chunk(
    model: LoadedModel,
    targets: Sequence[RenderTarget],
    settings: RenderSettings,
    *,
    transform_seed: int,
    on_step: Callable[[], None] | None = None,
) -> list[RenderedGroup]:
    """Optimise all `targets` together and return each group's final crop, re-scored."""
    device, n = model.device, settings.n_images
    for p in model.module.parameters():
        p.requires_grad_(False)
    images = FourierImages([t.init_seed for t in targets], n, settings.image_size, device)
    transforms = make_transforms(settings, np.random.RandomState(transform_seed), device)
    optimizer = torch.optim.Adam([images.spectrum], lr=settings.lr)
    spread = {t.layer: diversity_layers(t.layer, settings.diversity_layer) for t in targets}
    layers = list(dict.fromkeys(
        [t.layer for t in targets] + [la for t in targets for la in spread[t.layer]]))
    channel_means = diversities = [0.0] * len(targets)
    with FeatureTap(model.module, layers) as tap:
        for step in range(settings.steps):
            optimizer.zero_grad(set_to_none=True)
            with relu_rule(model.module, settings.relu_rule(step)):
                outputs = _forward(tap, model, transforms(images()), settings)
                loss = torch.zeros((), device=device)
                terms = []
                for g, target in enumerate(targets):
                    part = slice(g * n, (g + 1) * n)
                    whole = spread[target.layer]
                    group_loss, channel_mean, diversity = group_objective(
                        outputs[target.layer][part], target, settings.diversity_weight,
                        None if whole == (target.layer,)
                        else torch.cat([outputs[la][part] for la in whole], dim=1))
                    loss = loss + group_loss
                    terms.append((channel_mean, diversity))
                loss.backward()
            optimizer.step()
            if on_step:
                on_step()
        if settings.steps:
            channel_means = [float(c.detach()) for c, _ in terms]
            diversities = [float(d.detach()) for _, d in terms]
    with torch.no_grad():
        final = images().detach()
    crop = settings.crop
    if crop:
        final = final[:, :, crop:-crop, crop:-crop]
    pixels = to_uint8(final)
    activations = score_images(model, pixels, [(t.layer, t.channel) for t in targets for _ in
                                               range(n)])
    return [
        RenderedGroup(t, pixels[g * n:(g + 1) * n], activations[g * n:(g + 1) * n],
                      channel_means[g], diversities[g])
        for g, t in enumerate(targets)
    ]


def _forward(tap: FeatureTap, model: LoadedModel, image: Tensor,
             settings: RenderSettings) -> dict[str, Tensor]:
    """The tapped layers on a transformed image; an image the transforms made too small for
    the model is a one-line error (lucid's jitters crop, so small renders shrink a lot)."""
    try:
        return tap(model.preprocess(image))
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as exc:
        if "too small" not in str(exc) and "greater than" not in str(exc):
            raise
        raise CrowdkitError(
            f"the transformed image is {image.shape[-1]} px, too small for the model's layers "
            f"({str(exc).splitlines()[0]}); raise [stimuli.synthetic] image_size (now "
            f"{settings.image_size}) or set transforms = \"lucent\", whose jitter and scale "
            "keep the size") from None


def to_uint8(images: Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8, rounded."""
    array = images.clamp(0, 1).mul(255).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def score_images(model: LoadedModel, pixels: np.ndarray,
                 units: Sequence[tuple[str, int]]) -> list[float]:
    """The channel mean of unit i on image i, on the image as saved, with no transforms."""
    x = torch.from_numpy(pixels).to(model.device).permute(0, 3, 1, 2).float().div(255)
    layers = list(dict.fromkeys(layer for layer, _ in units))
    with torch.inference_mode(), FeatureTap(model.module, layers, reduce=spatial_mean) as tap:
        outputs = tap(model.preprocess(x))
    return [float(outputs[layer][i, channel]) for i, (layer, channel) in enumerate(units)]


def render_targets(
    model: LoadedModel,
    targets: Sequence[RenderTarget],
    settings: RenderSettings,
    *,
    transform_seed: int,
    layer_order: dict[str, int],
    chunk_images: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Iterator[list[RenderedGroup]]:
    """Render `targets` chunk by chunk, yielding each chunk's groups as soon as it is done.

    A chunk that runs out of GPU memory is split in two and retried.
    """
    per_chunk = chunk_images or default_chunk_images(model.device, settings.image_size)
    pending = plan_chunks(targets, layer_order, per_chunk // settings.n_images)
    while pending:
        chunk = pending.pop(0)
        try:
            done = render_chunk(model, chunk, settings, transform_seed=transform_seed,
                                on_step=partial(on_step, len(chunk)) if on_step else None)
        except torch.cuda.OutOfMemoryError:
            if len(chunk) == 1:
                raise CrowdkitError(
                    f"out of GPU memory rendering one unit ({settings.n_images} images of "
                    f"{settings.image_size} px); lower n_images or image_size, or use "
                    "--device cpu") from None
            torch.cuda.empty_cache()
            half = len(chunk) // 2
            pending[:0] = [chunk[:half], chunk[half:]]
            continue
        yield done


def plan_chunks(targets: Sequence[RenderTarget], layer_order: dict[str, int],
                groups_per_chunk: int) -> list[list[RenderTarget]]:
    """Chunks of at most `groups_per_chunk` groups, shallow layers first, so a chunk's
    forward pass stops as early as its members allow."""
    ordered = sorted(targets, key=lambda t: (layer_order.get(t.layer, 0), t.layer, t.key,
                                             DIRECTIONS.index(t.direction)))
    size = max(1, groups_per_chunk)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def default_chunk_images(device: torch.device, image_size: int) -> int:
    """Images per optimisation by device.

    On a CPU one big batch is slower per image than several small ones, so a chunk holds
    about ten 256 px images' worth of pixels. On a GPU batching is the big lever: fill
    roughly a quarter of its memory (about 60 MB per 256 px image through InceptionV1).
    """
    pixels = (256 / image_size) ** 2
    if device.type == "cuda":
        total_gb = torch.cuda.get_device_properties(device).total_memory / 2**30
        return max(16, int(total_gb * 4 * pixels))
    return max(1, int(10 * pixels))
