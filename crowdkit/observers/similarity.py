"""Perceptual similarity functions for the machine observer, and their embedding cache.

A similarity function turns images into embeddings once (`embed`) and compares pairs of
embeddings (`similarity`, higher is more alike), so every image is embedded once per
function however many tasks show it. Three are built in:

- `dreamsim` (Fu et al. 2023): the MIS's choice. Its weights download on first use (about
  a GB, into `cache_dir`); similarity is the cosine of DreamSim's embeddings, which is
  1 - DreamSim's distance.
- `lpips` (Zhang et al. 2018): AlexNet features, unit-normalised per layer and weighted by
  LPIPS's learned linear layers; similarity is minus the LPIPS distance. Images are compared
  at 64 px, the patch size LPIPS was trained on, which keeps each embedding near 128 KB.
  The AlexNet backbone downloads through torchvision on first use.
- `features`: a torchvision (or lucent) model's features, no download by default
  (`weights = "random"`, seeded): per named layer, a 4 x 4 grid of channel means and the
  channel means, each centred and unit-normalised, concatenated (`FeatureSimilarity.embed`).
  Tests and the offline demo use it, and every output built on it says so, as random-weight
  stimuli are said to be.

`load_similarity(settings, device)` builds one from `[mis]`; `EmbeddingCache` keeps
embeddings on disk by the content hash of each image's decoded pixels, so a catch trial's
copy and a served, padded file share the embedding of the stimulus they copy.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.files import write_atomically

NO_DOWNLOAD_NOTE = ("the machine observer's similarity is a network with RANDOM weights (no "
                    "download): its scores show the machinery works, not what DreamSim "
                    "measures; set [mis] similarity = \"dreamsim\" for the MIS")
FEATURE_LAYERS = {"resnet18": ["layer1", "layer2", "layer3", "layer4"],
                  "resnet50": ["layer1", "layer2", "layer3", "layer4"],
                  "inceptionv1": ["mixed3a", "mixed4a", "mixed4d", "mixed5b"]}
GRID = 4  # features: the spatial grid of channel means
DETAIL_SIZE = 48  # features: the image's fine detail is compared at this size (pixels)
EMBED_SIZE = 224  # pixels; every image is resized to this square before it is embedded


class Similarity(Protocol):
    """What the machine observer needs of a similarity function."""

    name: str  # "dreamsim", "lpips", "features:resnet18"
    fingerprint: str  # changes whenever its embeddings would
    note: str | None  # what every output built on it must say (random weights), or None

    def embed(self, pixels: Tensor) -> Tensor:
        """(N, 3, H, W) RGB in [0, 1] on the device -> (N, D) embeddings."""
        ...

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """(..., D) and (..., D) -> (...): higher is more alike."""
        ...


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """The similarity of unit-normalised embeddings."""
    return (a * b).sum(dim=-1)


@dataclass
class FeatureSimilarity:
    """A vision model's pooled features as a similarity (no download with random weights)."""

    model_name: str
    weights: str
    seed: int
    device: torch.device
    layers: list[str] = field(default_factory=list)
    base_dir: Path | None = None

    def __post_init__(self) -> None:
        from stimgen.models import load_model

        self.model = load_model(self.model_name, self.weights, seed=self.seed,
                                device=self.device, base_dir=self.base_dir)
        self.layers = self.layers or FEATURE_LAYERS.get(self.model.name, [])
        if not self.layers:
            raise ConfigError(f"[mis] feature_layers: name the layers of {self.model_name!r} "
                              "whose features the observer compares")
        self.name = f"features:{self.model.name}"
        self.fingerprint = hashlib.sha256(
            f"{self.name}:{self.model.weights_sha256}:{','.join(self.layers)}:v3".encode()
        ).hexdigest()[:16]
        self.note: str | None = NO_DOWNLOAD_NOTE if self.model.random_weights else None

    def embed(self, pixels: Tensor) -> Tensor:
        """The network's part and the image's fine detail, weighted alike.

        The network's part: per layer, a 4 x 4 grid of channel means, centred per channel
        over the grid (where things are), and the channel means centred across channels
        (what there is), each unit-normalised. Random-weight features share one large
        common direction; centring takes it out, so similarities spread over a useful
        range (about 0.3 +- 0.2 between unrelated photographs).

        The detail: the image at 48 px minus its local (5 x 5) mean. Two different images'
        details are all but orthogonal, an exact copy's are the same, so a copy of a
        reference stands out as it does to a person (and to DreamSim, whose unrelated
        images lie far below 1), where random-weight features alone find all noise-like
        feature visualizations alike (about 0.8) and a copy adds little to the mean.
        """
        from stimgen.models import FeatureTap

        with torch.inference_mode(), FeatureTap(self.model.module, self.layers) as tap:
            outputs = tap(self.model.preprocess(pixels))
        parts = []
        for layer in self.layers:
            grid = F.adaptive_avg_pool2d(outputs[layer].float(), GRID)
            where = grid - grid.mean(dim=(2, 3), keepdim=True)
            what = grid.mean(dim=(2, 3))
            parts += [F.normalize(where.flatten(1), dim=1),
                      F.normalize(what - what.mean(dim=1, keepdim=True), dim=1)]
        network = F.normalize(torch.cat(parts, dim=1), dim=1)
        return F.normalize(torch.cat([network, detail(pixels)], dim=1), dim=1)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        return cosine(a, b)


def detail(pixels: Tensor) -> Tensor:
    """An image's fine detail (DETAIL_SIZE px, minus its 5 x 5 local mean), unit-normalised."""
    small = F.interpolate(pixels.float(), size=DETAIL_SIZE, mode="area")
    local = F.avg_pool2d(small, 5, stride=1, padding=2, count_include_pad=False)
    return F.normalize((small - local).flatten(1), dim=1)


@dataclass
class DreamSimSimilarity:
    """DreamSim's ensemble embedding (weights downloaded into `cache_dir` on first use)."""

    device: torch.device
    cache_dir: Path

    def __post_init__(self) -> None:
        try:
            from dreamsim import dreamsim
        except ImportError:
            raise ConfigError('[mis] similarity = "dreamsim" needs the dreamsim package: '
                              "pip install 'crowdkit[dreamsim]'") from None
        try:
            self.model, _ = dreamsim(pretrained=True, device=str(self.device),
                                     cache_dir=str(self.cache_dir))
        except OSError as exc:
            raise CrowdkitError(f"DreamSim's weights could not be downloaded into "
                                f"{self.cache_dir} ({exc}); with no network, use [mis] "
                                'similarity = "features"') from None
        self.name = "dreamsim"
        self.fingerprint = "dreamsim-ensemble-0.2.1"
        self.note: str | None = None

    def embed(self, pixels: Tensor) -> Tensor:
        with torch.inference_mode():
            return F.normalize(self.model.embed(pixels).float(), dim=-1)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        return cosine(a, b)


LPIPS_SIZE = 64


@dataclass
class LpipsSimilarity:
    """LPIPS (AlexNet) on 64 px images, as minus the distance between cached features."""

    device: torch.device

    def __post_init__(self) -> None:
        try:
            import lpips
        except ImportError:
            raise ConfigError('[mis] similarity = "lpips" needs the lpips package: '
                              "pip install 'crowdkit[lpips]'") from None
        try:
            self.model = lpips.LPIPS(net="alex", verbose=False).to(self.device).eval()
        except OSError as exc:
            raise CrowdkitError(f"LPIPS's AlexNet weights could not be downloaded ({exc}); "
                                'with no network, use [mis] similarity = "features"') from None
        self.name = "lpips"
        self.fingerprint = "lpips-alex-0.1-64px"
        self.note: str | None = None
        self.shapes: list[tuple[int, int, int]] = []

    def embed(self, pixels: Tensor) -> Tensor:
        x = F.interpolate(pixels, size=(LPIPS_SIZE, LPIPS_SIZE), mode="bilinear",
                          align_corners=False) * 2 - 1
        with torch.inference_mode():
            feats = self.model.net.forward(self.model.scaling_layer(x))
            parts = []
            self.shapes = []
            for index, feat in enumerate(feats):
                normed = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
                weight = self.model.lins[index].model[-1].weight.view(1, -1, 1, 1)
                # sqrt(w) * f, so that a squared difference of two embeddings is w * (df)^2
                parts.append((normed * weight.clamp(min=0).sqrt()).flatten(1))
                self.shapes.append(tuple(feat.shape[1:]))
        return torch.cat(parts, dim=1)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        if not self.shapes:
            self.embed(torch.zeros(1, 3, LPIPS_SIZE, LPIPS_SIZE, device=a.device))
        total = torch.zeros(a.shape[:-1], device=a.device)
        start = 0
        for channels, height, width in self.shapes:
            size = channels * height * width
            diff = (a[..., start:start + size] - b[..., start:start + size]).pow(2)
            total = total + diff.sum(dim=-1) / (height * width)
            start += size
        return -total


@dataclass(frozen=True)
class SimilaritySpec:
    """Everything needed to build a similarity function again (in a Ray worker, say)."""

    kind: str  # dreamsim, lpips or features
    model: str = "resnet18"
    weights: str = "random"
    seed: int = 0
    layers: tuple[str, ...] = ()
    cache_dir: str = ""
    base_dir: str = ""


def load_similarity(spec: SimilaritySpec, device: torch.device) -> Similarity:
    """The similarity function `spec` names, on `device`."""
    if spec.kind == "dreamsim":
        return DreamSimSimilarity(device, Path(spec.cache_dir or "."))
    if spec.kind == "lpips":
        return LpipsSimilarity(device)
    if spec.kind == "features":
        return FeatureSimilarity(spec.model, spec.weights, spec.seed, device, list(spec.layers),
                                 Path(spec.base_dir) if spec.base_dir else None)
    raise ConfigError(f"[mis] similarity: unknown {spec.kind!r}; use dreamsim, lpips or "
                      "features")


# -- images and their embeddings ----------------------------------------------------------


def decode(data: bytes) -> tuple[str, np.ndarray]:
    """(content hash of the decoded pixels, uint8 HxWx3 at EMBED_SIZE) of an image file.

    The hash is of the pixels, so files that differ only in padding or metadata (a served
    copy, a catch trial's copy) are one image to the observer."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
    except OSError as exc:
        raise CrowdkitError(f"an image could not be decoded ({exc})") from None
    array = np.asarray(rgb, dtype=np.uint8)
    digest = hashlib.sha256(f"{array.shape}".encode() + array.tobytes()).hexdigest()
    if rgb.size != (EMBED_SIZE, EMBED_SIZE):
        rgb = rgb.resize((EMBED_SIZE, EMBED_SIZE), Image.Resampling.BILINEAR)
        array = np.asarray(rgb, dtype=np.uint8)
    return digest, array


def embed_arrays(similarity: Similarity, arrays: Sequence[np.ndarray], device: torch.device,
                 batch_size: int) -> Tensor:
    """Embed uint8 images in batches (pinned and copied asynchronously on a GPU); a batch
    that runs out of GPU memory is split in two and retried."""
    out: list[Tensor] = []
    pending = [list(range(i, min(i + batch_size, len(arrays))))
               for i in range(0, len(arrays), batch_size)]
    while pending:
        batch = pending.pop(0)
        x = torch.from_numpy(np.stack([arrays[i] for i in batch])).permute(0, 3, 1, 2)
        if device.type == "cuda":
            x = x.pin_memory()
        try:
            pixels = x.to(device, non_blocking=True).float().div_(255)
            out.append(similarity.embed(pixels).float().cpu())
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(batch) // 2
            pending[:0] = [batch[:half], batch[half:]]
    return torch.cat(out) if out else torch.empty(0)


class EmbeddingCache:
    """Embeddings by pixel hash for one similarity function, kept in one file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.vectors: dict[str, Tensor] = {}
        if path is not None and path.is_file():
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                self.vectors = dict(zip(saved["hashes"], saved["vectors"], strict=True))
            except (OSError, RuntimeError, KeyError, ValueError):
                self.vectors = {}  # a damaged cache only costs embedding again
        self.added = 0

    def missing(self, hashes: Sequence[str]) -> list[str]:
        return [h for h in dict.fromkeys(hashes) if h not in self.vectors]

    def add(self, hashes: Sequence[str], vectors: Tensor) -> None:
        for h, v in zip(hashes, vectors, strict=True):
            self.vectors[h] = v.clone()
        self.added += len(hashes)

    def matrix(self, hashes: Sequence[str]) -> Tensor:
        return torch.stack([self.vectors[h] for h in hashes])

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        buffer = io.BytesIO()
        hashes = list(self.vectors)
        torch.save({"hashes": hashes, "vectors": torch.stack([self.vectors[h] for h in hashes])},
                   buffer)
        write_atomically(self.path, buffer.getvalue())

