"""How long a rendering will take, from a short measurement on the machine it runs on.

Before `crowdkit stimuli` starts its long stretches it times a little of each: decoding
and scoring one batch of dataset images, and two optimisation steps of the first chunk of
feature visualizations. The estimate scales those to the whole job. It is "about": caches,
data-loader workers and a GPU's warm-up all move the real figure, but it tells a two-hour
job from a two-day one before the researcher waits for either.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from stimgen.config import StimuliConfig
from stimgen.datasets import ImageFolder, load_crop
from stimgen.exemplars import default_batch_size, default_workers
from stimgen.featurevis import (
    RenderSettings,
    RenderTarget,
    default_chunk_images,
    plan_chunks,
    render_chunk,
)
from stimgen.job import StimuliPlan
from stimgen.models import FeatureTap, LoadedModel, probe_layers, spatial_mean
from stimgen.units import UnitRef

SCAN_SAMPLE = 16  # images decoded and scored to time the scan
RENDER_SAMPLE_STEPS = 2  # optimisation steps timed on the first chunk
OVERHEAD = 1.05  # saving images, contact sheets, the manifest


def plan_rendering(
    cfg: StimuliConfig, model: LoadedModel, units: Sequence[UnitRef], folder: ImageFolder, *,
    requested_device: str, scan_units: Sequence[UnitRef], natural_todo: int,
    targets: Sequence[RenderTarget], settings: RenderSettings | None, transform_seed: int,
    synthetic_reused: int, estimate: bool = True,
) -> StimuliPlan:
    """What the rendering will do, with warnings a researcher needs before waiting for it
    and, unless `estimate` is False, the time a short measurement predicts."""
    device = model.device
    plan = StimuliPlan(
        device=_device_name(device), model=model.name, weights=model.weights,
        random_weights=model.random_weights, units=len(units),
        random_units=sum(u.selection == "random" for u in units), dataset=str(folder.root),
        dataset_images=len(folder), scan_images=len(folder) if scan_units else 0,
        natural_units=natural_todo, synthetic_targets=len(targets),
        synthetic_reused=synthetic_reused, steps=settings.steps if settings else 0,
        image_size=settings.image_size if settings else 0,
        images_per_target=settings.n_images if settings else 0,
        warnings=_warnings(cfg, model, requested_device))
    if estimate and (scan_units or natural_todo or targets):
        per_image = decode = None
        if scan_units or natural_todo:
            decode, forward = scan_seconds_per_image(model, scan_units or units, folder)
            per_image = decode + forward
        # saving exemplars decodes each chosen image once more (at most the whole dataset)
        saved = min(len(folder), natural_todo * 2 * cfg.images_per_side)
        render_s = None
        if targets and settings is not None:
            order = {name: info.order
                     for name, info in probe_layers(model, [t.layer for t in targets]).items()}
            render_s = render_seconds(model, targets, settings, transform_seed=transform_seed,
                                      layer_order=order,
                                      chunk_images=cfg.synthetic.chunk_images)
        plan.estimate_s = OVERHEAD * ((per_image or 0) * plan.scan_images
                                      + (decode or 0) * saved + (render_s or 0))
        plan.measured = describe(per_image, render_s, plan.steps)
    return plan


def _warnings(cfg: StimuliConfig, model: LoadedModel, requested_device: str) -> list[str]:
    """Up front, not only at the end: random weights, and the paper's preset on a CPU."""
    warnings = []
    if model.random_weights:
        warnings.append("random weights: these stimuli will show an untrained network; fine "
                        "for trying crowdkit out, meaningless for a study")
    if model.device.type == "cpu" and cfg.synthetic.enabled and cfg.synthetic.preset == "iclr2021":
        asked = (f" ([stimuli] device or --device is {requested_device!r})"
                 if requested_device not in ("auto", "") else "")
        warnings.append("no GPU found: the paper's feature visualizations (preset iclr2021, "
                        f"{cfg.synthetic.resolved('steps')} steps) will run on the CPU{asked}, "
                        "which takes many hours; use a machine with CUDA, or a smaller "
                        "[stimuli.synthetic] preset = \"custom\" to try things out")
    return warnings


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def scan_seconds_per_image(model: LoadedModel, units: Sequence[UnitRef],
                           folder: ImageFolder) -> tuple[float, float]:
    """Seconds per image the scan spends (decoding, shared by the loader's workers; the
    forward pass), timed on the first images of the dataset after one warm-up image."""
    n = max(1, min(SCAN_SAMPLE, default_batch_size(model.device), len(folder)))
    layers = list(dict.fromkeys(u.layer for u in units))
    started = time.perf_counter()
    crops = [load_crop(folder.path(i)) for i in range(n)]
    decode_s = time.perf_counter() - started
    batch = torch.from_numpy(np.stack([np.asarray(c) for c in crops])).permute(0, 3, 1, 2)
    x = batch.to(model.device).float().div_(255)
    with torch.inference_mode(), FeatureTap(model.module, layers, reduce=spatial_mean) as tap:
        tap(model.preprocess(x[:1]))  # warm-up: the first pass pays for set-up
        _sync(model.device)
        started = time.perf_counter()
        tap(model.preprocess(x))
        _sync(model.device)
        forward_s = time.perf_counter() - started
    workers = max(1, default_workers(model.device))
    return decode_s / workers / n, forward_s / n


def render_seconds(model: LoadedModel, targets: Sequence[RenderTarget],
                   settings: RenderSettings, *, transform_seed: int,
                   layer_order: dict[str, int], chunk_images: int | None) -> float:
    """Seconds to render every target: two steps of the first chunk, timed and scaled to
    every chunk's size and the settings' number of steps."""
    if not targets or settings.steps == 0:
        return 0.0
    per_chunk = chunk_images or default_chunk_images(model.device, settings.image_size)
    chunks = plan_chunks(targets, layer_order, per_chunk // settings.n_images)
    sample = replace(settings, steps=RENDER_SAMPLE_STEPS)
    started = time.perf_counter()
    render_chunk(model, chunks[0], sample, transform_seed=transform_seed)
    _sync(model.device)
    per_step = (time.perf_counter() - started) / RENDER_SAMPLE_STEPS
    groups = sum(len(c) for c in chunks)
    return per_step * settings.steps * groups / len(chunks[0])


def describe(scan_per_image: float | None, render_s: float | None, steps: int) -> str:
    """What the estimate was measured on, for the plan's line."""
    parts = []
    if scan_per_image is not None:
        parts.append(f"{1 / scan_per_image:.0f} images/s scanned" if scan_per_image > 0
                     else "the scan")
    if render_s is not None:
        parts.append(f"{RENDER_SAMPLE_STEPS} of {steps} optimisation steps")
    return ", ".join(parts)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
