"""The Ray-sharded exemplar scan against the in-process scan, on the same cores.

Prints one JSON object: {"in_process_s", "ray_s", "overhead_ratio", "same_result", ...}.

- in_process_s: `stimgen.exemplars.scan_dataset` over N JPEG photographs (500 x 375,
  written by `stimgen.sample_data`) for the paper's 9 hand-picked units up to mixed5b,
  K = 200 per side, as `crowdkit stimuli` runs it here.
- ray_s: `stimgen.distributed.scan_sharded` over the same images on a local Ray cluster
  with as many CPUs as this process may use (the same cores), four shards per CPU, each
  worker loading the model once. The cluster is started (and its workers warmed up with
  a tiny scan) before the clock starts, and shut down while the in-process side runs (idle
  workers' threads would take its CPU): a cluster normally outlives one scan;
  `cluster_start_s` says what starting it cost.
- overhead_ratio: ray_s / in_process_s, best of ROUNDS each, the two sides alternating so
  that load from other programs hits both alike. Goal: at most 1.15.
- same_result: whether both found the same top and bottom K, in the same order.
- per_image_s: in_process_s / N, the per-image cost docs/scale.md projects from.

Usage: python benchmarks/ray_scan.py [--images N] [--cpus C]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNITS = ["3a:230", "3b:462", "4a:501", "4b:465", "4c:449", "4d:516", "4e:809", "5a:720",
         "5b:946"]
K = 200
ROUNDS = 2
BATCH = 32  # the CPU scan batch (stimgen.exemplars.default_batch_size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--cpus", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    import ray
    import torch

    from stimgen import distributed
    from stimgen.datasets import ImageFolder
    from stimgen.exemplars import scan_dataset
    from stimgen.models import load_model
    from stimgen.sample_data import write_sample_images
    from stimgen.units import UnitResolver

    model = load_model("inceptionv1", "random", seed=0, device=torch.device("cpu"))
    resolver = UnitResolver(model)
    units = [resolver.resolve(u) for u in UNITS]
    spec = distributed.ModelSpec("inceptionv1", "random", 0, "cpu", str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        write_sample_images(Path(tmp) / "images", args.images, seed=1)
        folder = ImageFolder.scan(Path(tmp) / "images")
        warm = ImageFolder(folder.root, folder.files[:BATCH])
        scan_dataset(model, units, warm, k=K, num_workers=0)  # warm-up in-process
        here, there, starts = [], [], []
        for _ in range(ROUNDS):
            # in-process with no cluster alive: idle Ray workers would take CPU from it
            start = time.perf_counter()
            local = scan_dataset(model, units, folder, k=K, num_workers=0, batch_size=BATCH)
            here.append(time.perf_counter() - start)
            start = time.perf_counter()
            ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
            sharded(distributed, spec, units, warm, Path(tmp), args.cpus)  # workers up
            starts.append(time.perf_counter() - start)
            start = time.perf_counter()
            remote = sharded(distributed, spec, units, folder, Path(tmp),
                             distributed.default_shards(ray))
            there.append(time.perf_counter() - start)
            ray.shutdown()
        same = local.top == remote.top and local.bottom == remote.bottom
        cluster_start = min(starts)
    print(json.dumps({
        "in_process_s": round(min(here), 2),
        "ray_s": round(min(there), 2),
        "overhead_ratio": round(min(there) / min(here), 3),
        "same_result": same,
        "cluster_start_s": round(cluster_start, 1),
        "per_image_s": round(min(here) / args.images, 4),
        "images": args.images,
        "image_size": "500x375 JPEG",
        "units": len(UNITS),
        "deepest_layer": "mixed5b",
        "k_per_side": K,
        "cpus": args.cpus,
        "shards": len(distributed.shards(args.images, BATCH, args.cpus * 4)),
        "torch_threads": torch.get_num_threads(),
        "model": "inceptionv1, random weights",
        "rounds": ROUNDS,
    }))


def sharded(distributed, spec, units, folder, tmp: Path, n_shards: int):
    """One sharded scan with nothing recorded (every shard computed)."""
    return distributed.scan_sharded(
        "local", spec, units, folder, k=K, batch_size=BATCH, checkpoint_dir=tmp / "ckpt",
        key=f"bench-{time.monotonic_ns()}", finished=lambda i: None,
        record=lambda i, result: None, n_shards=n_shards)


if __name__ == "__main__":
    main()
