"""Batched feature visualization against lucent's `render_vis`, one unit at a time.

Prints one JSON object: {"batched_unit_steps_per_s", "lucent_unit_steps_per_s", "ratio",
...settings}. A unit-step is one Adam step for one unit's batch of images.

Both sides use the same settings: InceptionV1 with the same (random) weights, 8 units spread
over mixed3a-mixed4e, the paper's image size (256 px), batch of images per unit (10),
transforms (jitter 16, scale 0.95-1.05, rotate -5..5, jitter 8), objective (channel mean
minus 100 x diversity) and optimiser (Adam, lr 0.05). lucent renders each unit with its own
`render_vis` call through the whole network; stimgen renders all 8 with
`stimgen.featurevis.render_targets`, stopping each forward pass at the deepest layer its
chunk needs and choosing chunk sizes by device (one unit per chunk on a CPU, all 8 together
on a GPU). The goals: a ratio of at least 1.3 on a CPU and at least 5 on a GPU.

Usage: python benchmarks/featurevis.py [--device cpu|cuda] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNITS = ["3a:189", "3b:178", "4a:257", "4b:339", "4c:247", "4d:342", "4e:524", "4e:816"]
SIZE, N_IMAGES, LR, DIVERSITY = 256, 10, 0.05, 100.0
SCALES = [1.0, 0.975, 1.025, 0.95, 1.05]
ROTATIONS = list(range(-5, 6))
ROUNDS = 2  # best of, each side


def lucent_renderer(units, device, steps: int):
    """A function timing lucent's own render_vis over `units`, one after the other."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lucent.modelzoo import inceptionv1
        from lucent.optvis import objectives, param, render, transform

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same random weights stimgen loads with seed 0
        model = inceptionv1().to(device).eval()
    transforms = [transform.jitter(16), transform.random_scale(SCALES),
                  transform.random_rotate(ROTATIONS), transform.jitter(8)]

    def render_one(unit, n_steps: int) -> None:
        objective = (objectives.channel(unit.layer, unit.channel)
                     - DIVERSITY * objectives.diversity(unit.layer))
        render.render_vis(
            model, objective, param_f=lambda: param.image(SIZE, batch=N_IMAGES),
            optimizer=lambda params: torch.optim.Adam(params, lr=LR), transforms=transforms,
            thresholds=(n_steps,), show_image=False, progress=False)

    def rate() -> float:
        _sync(device)
        start = time.perf_counter()
        for unit in units:
            render_one(unit, steps)
        _sync(device)
        return len(units) * steps / (time.perf_counter() - start)

    render_one(units[0], 1)  # warm-up
    return rate


def stimgen_renderer(model, units, steps: int):
    """A function timing stimgen's batched renderer on the same work."""
    from stimgen.featurevis import RenderSettings, RenderTarget, render_targets
    from stimgen.models import probe_layers

    device = model.device
    settings = RenderSettings(steps=steps, image_size=SIZE, crop=16, lr=LR,
                              diversity_weight=DIVERSITY, n_images=N_IMAGES, jitter=16,
                              scales=tuple(SCALES), rotations=tuple(ROTATIONS), final_jitter=8)
    targets = [RenderTarget(u.id, u.layer, u.channel, "max", i) for i, u in enumerate(units)]
    order = {n: info.order for n, info in probe_layers(model, [u.layer for u in units]).items()}

    def rate() -> float:
        _sync(device)
        start = time.perf_counter()
        for _ in render_targets(model, targets, settings, transform_seed=0, layer_order=order):
            pass
        _sync(device)
        return len(units) * steps / (time.perf_counter() - start)

    warm = RenderSettings(**{**settings.__dict__, "steps": 1})
    list(render_targets(model, targets[:1], warm, transform_seed=0, layer_order=order))
    return rate


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    import torch

    from stimgen.models import load_model
    from stimgen.units import UnitResolver

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per unit (default: 2 on a CPU, 50 on a GPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (50 if device.type == "cuda" else 2)
    model = load_model("inceptionv1", "random", seed=0, device=device)
    resolver = UnitResolver(model)
    units = [resolver.resolve(u) for u in UNITS]

    ours_rate = stimgen_renderer(model, units, steps)
    theirs_rate = lucent_renderer(units, device, steps)
    ours, theirs = [], []
    for _ in range(ROUNDS):  # alternate, so load from other programs hits both alike
        ours.append(ours_rate())
        theirs.append(theirs_rate())
    ours, theirs = max(ours), max(theirs)
    print(json.dumps({
        "batched_unit_steps_per_s": round(ours, 3),
        "lucent_unit_steps_per_s": round(theirs, 3),
        "ratio": round(ours / theirs, 2),
        "units": UNITS,
        "steps_per_unit": steps,
        "rounds": ROUNDS,
        "image_size": SIZE,
        "images_per_unit": N_IMAGES,
        "model": "inceptionv1, random weights",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
