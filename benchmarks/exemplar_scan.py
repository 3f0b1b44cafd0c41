"""The natural-exemplar scan against the model's own forward rate, and its memory at 1x and 4x.

Prints one JSON object: {"scan_images_per_s", "forward_images_per_s", "ratio",
"peak_rss_mb_1x", "peak_rss_mb_4x", ...sizes}.

- scan_images_per_s: `stimgen.exemplars.scan_dataset` over N JPEG photographs (500 x 375,
  written by `stimgen.sample_data`), decoding, cropping, forward pass and top/bottom-K merge
  for all units at once, as `crowdkit stimuli` runs it.
- forward_images_per_s: the same model and layers, forward only, on the same preprocessed
  batches already in memory.
- peak_rss_mb_1x / _4x: peak resident memory of a scan over N and over 4N images, each in a
  fresh process. Memory must not grow with the dataset: the goal is 4x within 10 % of 1x,
  and a ratio of at least 0.8.

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
BATCH_SIZE = 64


def setup(device_name: str):
    import torch

    from stimgen.models import load_model
    from stimgen.units import UnitResolver

    device = torch.device(device_name)
    model = load_model("inceptionv1", "random", seed=0, device=device)
    resolver = UnitResolver(model)
    return model, [resolver.resolve(u) for u in UNITS]


def run_scan(images: Path, device_name: str) -> None:
    """Child process: one scan; prints its rate and this process's peak memory."""
    from stimgen.datasets import ImageFolder
    from stimgen.exemplars import scan_dataset

    model, units = setup(device_name)
    folder = ImageFolder.scan(images)
    start = time.perf_counter()
    scan_dataset(model, units, folder, k=BATCHES * PER_BATCH, batch_size=BATCH_SIZE)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images_per_s": len(folder) / seconds, "peak_rss_mb": peak_mb}))


def forward_rate(images: Path, device_name: str, n: int) -> float:
    """Forward only, same model, layers and batches, crops already decoded in memory."""
    import numpy as np
    import torch

    from stimgen.datasets import ImageFolder, load_crop
    from stimgen.models import FeatureTap, spatial_mean

    model, units = setup(device_name)
    folder = ImageFolder.scan(images)
    crops = np.stack([np.asarray(load_crop(folder.path(i))) for i in range(n)])
    batches = [torch.from_numpy(crops[i:i + BATCH_SIZE]).permute(0, 3, 1, 2).contiguous()
               for i in range(0, n, BATCH_SIZE)]
    layers = list(dict.fromkeys(u.layer for u in units))
    with torch.inference_mode(), FeatureTap(model.module, layers, reduce=spatial_mean) as tap:
        tap(model.preprocess(batches[0].to(model.device).float().div_(255)))  # warm-up
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for batch in batches:
            out = tap(model.preprocess(batch.to(model.device).float().div_(255)))
            torch.stack([out[u.layer][:, u.channel] for u in units], 1).cpu()
        seconds = time.perf_counter() - start
    return n / seconds


def child(images: Path, device_name: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(images), "--device",
                          device_name], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2 * BATCHES * PER_BATCH)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        run_scan(args.child, args.device)
        return

    from stimgen.sample_data import write_sample_images

    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "1x", Path(tmp) / "4x"
        write_sample_images(small, args.images, seed=1)
        write_sample_images(large, 4 * args.images, seed=2)
        scan_1x = child(small, args.device)
        scan_4x = child(large, args.device)
        forward = forward_rate(small, args.device, min(args.images, 4 * BATCH_SIZE))
    scan_rate = scan_1x["images_per_s"]
    print(json.dumps({
        "scan_images_per_s": round(scan_rate, 2),
        "forward_images_per_s": round(forward, 2),
        "ratio": round(scan_rate / forward, 3),
        "peak_rss_mb_1x": round(scan_1x["peak_rss_mb"], 1),
        "peak_rss_mb_4x": round(scan_4x["peak_rss_mb"], 1),
        "rss_growth_4x": round(scan_4x["peak_rss_mb"] / scan_1x["peak_rss_mb"] - 1, 4),
        "scan_images_per_s_4x": round(scan_4x["images_per_s"], 2),
        "images_1x": args.images,
        "images_4x": 4 * args.images,
        "image_size": "500x375 JPEG",
        "units": len(UNITS),
        "deepest_layer": "mixed5b",
        "k_per_side": BATCHES * PER_BATCH,
        "batch_size": BATCH_SIZE,
        "model": "inceptionv1, random weights",
        "device": args.device,
    }))


if __name__ == "__main__":
    main()
