"""The natural-exemplar scan against the model's own forward rate, and its memory at 1x and 4x.

Prints one JSON object: {"scan_images_per_s", "forward_images_per_s", "ratio",
"peak_rss_mb_1x", "peak_rss_mb_4x", ...sizes}.

- scan_images_per_s: `stimgen.exemplars.scan_dataset` over N JPEG photographs (500 x 375,
  written by `stimgen.sample_data`), decoding, cropping, forward pass and top/bottom-K merge
  for all units at once, as `crowdkit stimuli` runs it.
- forward_images_per_s: the same model and layers, forward only, on the same preprocessed
  batches already in memory. Scans and forward passes alternate in one process (best of
  ROUNDS each), so load from other programs on a shared machine hits both alike.
- peak_rss_mb_1x / _4x: peak resident memory of a fresh process scanning N images, and of
  one scanning 4N images. Memory must not grow with the dataset: the goal is 4x within
  10 % of 1x, and a ratio of at least 0.8.

Usage: python benchmarks/exemplar_scan.py [--images N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The paper's hand-picked unit of each of the 9 mixed layers: the scan runs to mixed5b.
UNITS = ["3a:230", "3b:462", "4a:501", "4b:465", "4c:449", "4d:516", "4e:809", "5a:720",
         "5b:946"]
BATCHES, PER_BATCH = 20, 10  # the paper's K = 200 per side
ROUNDS = 2
FORWARD_IMAGES = 128  # forward-only images per round


def setup(device_name: str):
    import torch

    from stimgen.models import load_model
    from stimgen.units import UnitResolver

    device = torch.device(device_name)
    model = load_model("inceptionv1", "random", seed=0, device=device)
    resolver = UnitResolver(model)
    return model, [resolver.resolve(u) for u in UNITS]


def scan_rate(model, units, folder, workers: int | None) -> float:
    from stimgen.exemplars import scan_dataset

    start = time.perf_counter()
    scan_dataset(model, units, folder, k=BATCHES * PER_BATCH, num_workers=workers)
    return len(folder) / (time.perf_counter() - start)


def forward_rate(model, units, folder) -> float:
    """Forward only: same model, layers and batch size, crops decoded beforehand."""
    import numpy as np
    import torch

    from stimgen.datasets import load_crop
    from stimgen.exemplars import default_batch_size
    from stimgen.models import FeatureTap, spatial_mean

    n = min(len(folder), FORWARD_IMAGES)
    crops = np.stack([np.asarray(load_crop(folder.path(i))) for i in range(n)])
    size = default_batch_size(model.device)  # the scan's batch size
    batches = [torch.from_numpy(crops[i:i + size]).permute(0, 3, 1, 2)
               for i in range(0, len(crops), size)]
    layers = list(dict.fromkeys(u.layer for u in units))
    with torch.inference_mode(), FeatureTap(model.module, layers, reduce=spatial_mean) as tap:
        start = time.perf_counter()
        for batch in batches:
            out = tap(model.preprocess(batch.to(model.device).float().div_(255)))
            torch.stack([out[u.layer][:, u.channel] for u in units], 1).cpu()
        if model.device.type == "cuda":
            torch.cuda.synchronize()
    return len(crops) / (time.perf_counter() - start)


def run_child(images: Path, device_name: str, workers: int | None, compare: bool) -> None:
    """One process: scans (and with `compare`, forward passes, alternating, so that load
    from other programs hits both alike; the best of each counts). Prints rates and this
    process's peak memory."""
    from stimgen.datasets import ImageFolder
    from stimgen.exemplars import default_batch_size

    model, units = setup(device_name)
    folder = ImageFolder.scan(images)
    warm = ImageFolder(folder.root, folder.files[:default_batch_size(model.device)])
    scan_rate(model, units, warm, 0)  # warm-up: first-call allocations, kernel choice
    scans, forwards = [], []
    for _ in range(ROUNDS if compare else 1):
        scans.append(scan_rate(model, units, folder, workers))
        if compare:
            forwards.append(forward_rate(model, units, folder))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"scan": max(scans), "forward": max(forwards, default=0.0),
                      "peak_rss_mb": peak_mb}))


def child(images: Path, args: argparse.Namespace, compare: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(images), "--device", args.device]
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    if compare:
        command.append("--compare")
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2 * BATCHES * PER_BATCH)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=None, help="default: by device")
    parser.add_argument("--child", type=Path)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.device, args.workers, args.compare)
        return

    import torch

    from stimgen.exemplars import default_batch_size, default_workers
    from stimgen.sample_data import write_sample_images

    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "1x", Path(tmp) / "4x"
        write_sample_images(small, args.images, seed=1)
        write_sample_images(large, 4 * args.images, seed=2)
        rates = child(small, args, compare=True)
        one = child(small, args, compare=False)
        four = child(large, args, compare=False)
    workers = args.workers
    if workers is None:
        workers = default_workers(torch.device(args.device))
    print(json.dumps({
        "scan_images_per_s": round(rates["scan"], 2),
        "forward_images_per_s": round(rates["forward"], 2),
        "ratio": round(rates["scan"] / rates["forward"], 3),
        "peak_rss_mb_1x": round(one["peak_rss_mb"], 1),
        "peak_rss_mb_4x": round(four["peak_rss_mb"], 1),
        "rss_growth_4x": round(four["peak_rss_mb"] / one["peak_rss_mb"] - 1, 4),
        "scan_images_per_s_4x": round(four["scan"], 2),
        "images_1x": args.images,
        "images_4x": 4 * args.images,
        "image_size": "500x375 JPEG",
        "units": len(UNITS),
        "deepest_layer": "mixed5b",
        "k_per_side": BATCHES * PER_BATCH,
        "batch_size": default_batch_size(torch.device(args.device)),
        "workers": workers,
        "rounds": ROUNDS,
        "model": "inceptionv1, random weights",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
