"""Natural exemplars: one streaming pass over a dataset, then the paper's batches.

The scan scores every image once for all requested units (the spatial mean of each unit's
feature map) and keeps only the top and bottom K per unit, merging each batch into the
running lists, so memory does not grow with the dataset. It checkpoints as it goes and
continues from the checkpoint after an interruption.

Batches follow the paper. The K most extreme images of a side, sorted most extreme first,
are cut into `images_per_batch` rank bins of `batches` images each; bin j holds sorted ranks
[j * batches, (j + 1) * batches). Batch b takes the b-th image of every bin j: with
`bin_order = "ranked"` the image at rank j * batches + b, so batch 0 gets the most extreme
image of every bin; with "shuffled" (as the paper's authors did) the b-th image of the bin
after a shuffle seeded by the feature map. Either way each batch holds one image per bin,
its query (its most extreme image) comes from the most extreme bin, and every image of the
top K is used once. Ties in activation are broken by dataset index, lowest first.

The authors' release (`save_natural_stimuli.py`) indexed the sorted list with
`batch + batch_size * image_idx_in_batch`, a stride of `images_per_batch` (10) instead of
`batches` (20): only positions 0-109 of each list of 200 were used, and batches overlapped.
Its lists were in ascending activation, so on the max side only the 110 *least* activating
of the top 200 were shown and the roughly 90 most activating never were; the max query came
from ranks 81-120 of the top 200 (1 = most activating). On the min side ascending order is
most extreme first, so the min side showed its 110 most weakly activating images and left
out the 90 least extreme ones. crowdkit does not reproduce this stride (docs/stimuli.md
lists it among the remaining differences from the authors' stimuli).
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from crowdkit.files import write_atomically
from stimgen.datasets import CropDataset, ImageFolder
from stimgen.models import FeatureTap, LoadedModel, spatial_mean
from stimgen.units import UnitRef

T = TypeVar("T")


def assign_batches(ranked: Sequence[T], batches: int, per_batch: int,
                   shuffle_seed: int | None = None) -> list[list[T]]:
    """Split a most-extreme-first ranking into `batches` batches of `per_batch` items.

    Returns, per batch, its items most extreme first. Without `shuffle_seed` batch b is
    [ranked[b], ranked[batches + b], ranked[2 * batches + b], ...]; with it, each rank bin
    ranked[j * batches:(j + 1) * batches] is shuffled first (one generator from the seed,
    bin after bin) and batch b takes the b-th item of every shuffled bin.
    """
    needed = batches * per_batch
    if len(ranked) < needed:
        raise ValueError(
            f"need {needed} ranked items for {batches} x {per_batch}, got {len(ranked)}")
    bins = [list(ranked[j * batches:(j + 1) * batches]) for j in range(per_batch)]
    if shuffle_seed is not None:
        rng = random.Random(shuffle_seed)
        for members in bins:
            rng.shuffle(members)
    return [[bins[j][b] for j in range(per_batch)] for b in range(batches)]


class StreamingExtremes:
    """The top and bottom K values per unit over a stream of scored images.

    Each side is a (K, units) tensor pair of activations and dataset indices, most extreme
    first. Merging sorts candidates by dataset index, then stably by activation, so equal
    activations rank by lowest dataset index whatever the batch boundaries were. `merged`
    returns a new object, so a scan's state is swapped in one assignment and an interrupt
    never leaves half a merge behind.
    """

    def __init__(self, n_units: int, k: int, tensors: dict[str, Tensor] | None = None) -> None:
        self.k = k
        self.n_units = n_units
        if tensors is None:
            empty_v = torch.empty(0, n_units, dtype=torch.float32)
            empty_i = torch.empty(0, n_units, dtype=torch.long)
            tensors = {"top_values": empty_v, "top_indices": empty_i,
                       "bottom_values": empty_v.clone(), "bottom_indices": empty_i.clone()}
        self.tensors = tensors

    def merged(self, values: Tensor, indices: Tensor) -> StreamingExtremes:
        """Merge a batch: `values` (N, units) activations, `indices` (N,) dataset indices."""
        if values.numel() == 0:
            return self
        values = values.detach().to("cpu", torch.float32)
        idx = indices.to("cpu", torch.long).view(-1, 1).expand(-1, self.n_units)
        t = self.tensors
        top_v, top_i = _merge(t["top_values"], t["top_indices"],
                              values.nan_to_num(nan=float("-inf")), idx, self.k, descending=True)
        bot_v, bot_i = _merge(t["bottom_values"], t["bottom_indices"],
                              values.nan_to_num(nan=float("inf")), idx, self.k, descending=False)
        return StreamingExtremes(self.n_units, self.k, {
            "top_values": top_v, "top_indices": top_i,
            "bottom_values": bot_v, "bottom_indices": bot_i})

    def merged_extremes(self, other: StreamingExtremes) -> StreamingExtremes:
        """Merge another scan's top and bottom K (a shard's): exact and associative, since
        both sides are kept by one total order, activation then dataset index."""
        t, o = self.tensors, other.tensors
        top_v, top_i = _merge(t["top_values"], t["top_indices"], o["top_values"],
                              o["top_indices"], self.k, descending=True)
        bot_v, bot_i = _merge(t["bottom_values"], t["bottom_indices"], o["bottom_values"],
                              o["bottom_indices"], self.k, descending=False)
        return StreamingExtremes(self.n_units, self.k, {
            "top_values": top_v, "top_indices": top_i,
            "bottom_values": bot_v, "bottom_indices": bot_i})

    def ranked(self, unit: int) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        """(top, bottom) for one unit as (activation, dataset index), most extreme first."""
        t = self.tensors
        top = list(zip(t["top_values"][:, unit].tolist(), t["top_indices"][:, unit].tolist(),
                       strict=True))
        bottom = list(zip(t["bottom_values"][:, unit].tolist(),
                          t["bottom_indices"][:, unit].tolist(), strict=True))
        return top, bottom


def _merge(values: Tensor, indices: Tensor, new_values: Tensor, new_indices: Tensor, k: int,
           *, descending: bool) -> tuple[Tensor, Tensor]:
    all_values = torch.cat([values, new_values])
    all_indices = torch.cat([indices, new_indices])
    by_index = torch.argsort(all_indices, dim=0, stable=True)
    all_values, all_indices = all_values.gather(0, by_index), all_indices.gather(0, by_index)
    order = torch.sort(all_values, dim=0, descending=descending, stable=True).indices[:k]
    return all_values.gather(0, order), all_indices.gather(0, order)


@dataclass
class ScanResult:
    """What one pass over the dataset found: per unit id, top and bottom K."""

    n_images: int
    n_skipped: int
    skipped: list[str]
    top: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    bottom: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


def default_workers(device: torch.device) -> int:
    """Decoding processes for the scan's DataLoader.

    Feed a GPU generously. On a CPU the model is the bottleneck: decoding and cropping an
    ImageNet-sized JPEG takes about 2 ms against 30-50 ms for the forward pass, so one worker
    is plenty, and on two cores or fewer a worker competing with the model's threads costs
    more than it saves (measured: 29 images/s in-process against 24 with one worker).
    """
    cores = len(_available_cores())
    if device.type == "cuda":
        return max(2, min(8, cores - 1))
    return 0 if cores <= 2 else 1


def default_batch_size(device: torch.device) -> int:
    """Images per scan batch. lucent's InceptionV1 keeps every intermediate of its forward
    pass alive until it returns (about 40 MB per 224 px image), so a CPU batch stays small."""
    return 128 if device.type == "cuda" else 32


def _available_cores() -> set[int]:
    import os

    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class _ScanState:
    """Everything a checkpoint holds; replaced whole after each batch."""

    extremes: StreamingExtremes
    next_index: int = 0
    n_skipped: int = 0
    skipped: tuple[str, ...] = ()

    def to_checkpoint(self, key: str) -> dict:
        return {"key": key, "k": self.extremes.k, "n_units": self.extremes.n_units,
                "tensors": self.extremes.tensors, "next_index": self.next_index,
                "n_skipped": self.n_skipped, "skipped": list(self.skipped)}

    @classmethod
    def from_checkpoint(cls, saved: dict) -> _ScanState:
        extremes = StreamingExtremes(saved["n_units"], saved["k"], saved["tensors"])
        return cls(extremes, saved["next_index"], saved["n_skipped"], tuple(saved["skipped"]))


def scan_dataset(
    model: LoadedModel,
    units: list[UnitRef],
    folder: ImageFolder,
    *,
    k: int,
    batch_size: int | None = None,
    num_workers: int | None = None,
    checkpoint: Path | None = None,
    key: str = "",
    checkpoint_every_s: float = 30.0,
    progress: Callable[[int], None] | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> ScanResult:
    """Score every image of `folder` for all `units` in one pass; keep the top and bottom K.

    With `checkpoint`, state is saved there every `checkpoint_every_s` seconds and when the
    scan is interrupted, and a checkpoint saved under the same `key` is continued from.
    `progress(n)` is called with the images done per batch; `after_batch(batches_done)` is
    called after each batch.
    """
    extremes, n_skipped, skipped = scan_shard(
        model, units, folder, start=0, stop=len(folder), k=k, batch_size=batch_size,
        num_workers=num_workers, checkpoint=checkpoint, key=key,
        checkpoint_every_s=checkpoint_every_s, progress=progress, after_batch=after_batch)
    result = ScanResult(len(folder), n_skipped, skipped)
    for column, unit in enumerate(units):
        result.top[unit.id], result.bottom[unit.id] = extremes.ranked(column)
    return result


def scan_shard(
    model: LoadedModel,
    units: list[UnitRef],
    folder: ImageFolder,
    *,
    start: int,
    stop: int,
    k: int,
    batch_size: int | None = None,
    num_workers: int | None = None,
    checkpoint: Path | None = None,
    key: str = "",
    checkpoint_every_s: float = 30.0,
    progress: Callable[[int], None] | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> tuple[StreamingExtremes, int, list[str]]:
    """The scan of dataset indices [start, stop): (top and bottom K, images skipped, the
    first skipped files). `scan_dataset` is this over the whole dataset; a Ray scan runs
    one per shard (stimgen.distributed) and merges them."""
    layers = list(dict.fromkeys(u.layer for u in units))
    columns = [(layers.index(u.layer), u.channel) for u in units]
    state = _ScanState(StreamingExtremes(len(units), k), next_index=start)
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if saved.get("key") == key and saved.get("k") == k and saved["n_units"] == len(units):
            state = _ScanState.from_checkpoint(saved)
            if progress:
                progress(state.next_index - start)

    def save() -> None:
        if checkpoint is not None:
            buffer = io.BytesIO()
            torch.save(state.to_checkpoint(key), buffer)
            write_atomically(checkpoint, buffer.getvalue())

    device = model.device
    workers = default_workers(device) if num_workers is None else num_workers
    batch_size = batch_size or default_batch_size(device)
    loader = DataLoader(
        CropDataset(folder, start=state.next_index, stop=stop), batch_size=batch_size,
        shuffle=False, num_workers=workers, pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    last_save = time.monotonic()
    batches_done = 0
    try:
        with torch.inference_mode(), FeatureTap(model.module, layers, reduce=spatial_mean) as tap:
            for indices, crops, readable in loader:
                x = crops.to(device, non_blocking=True).float().div_(255)
                outputs = tap(model.preprocess(x))
                values = torch.stack([outputs[layers[li]][:, ch] for li, ch in columns], dim=1)
                keep = readable.to(torch.bool)
                unreadable = [folder.files[i] for i in indices[~keep].tolist()]
                state = _ScanState(
                    state.extremes.merged(values.cpu()[keep], indices[keep]),
                    int(indices[-1]) + 1,
                    state.n_skipped + len(unreadable),
                    (state.skipped + tuple(unreadable))[:20],
                )
                batches_done += 1
                if progress:
                    progress(len(indices))
                if time.monotonic() - last_save >= checkpoint_every_s:
                    save()
                    last_save = time.monotonic()
                if after_batch:
                    after_batch(batches_done)
    except BaseException:
        save()
        raise
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return state.extremes, state.n_skipped, list(state.skipped)
