"""Running stimgen's work, and the machine observer's, on a Ray cluster (`--ray ADDRESS`).

Ray is an optional extra (`pip install 'crowdkit[ray]'`). `connect("local")` starts a local
cluster (or joins the one this process already started); any other address is passed to
`ray.init(address=...)`: "auto", "ray://host:10001", "127.0.0.1:6379". Tasks request a GPU
where the cluster has one, else one CPU.

Three kinds of work go to Ray, each merged so that the result is the in-process run's:

- the exemplar scan (`scan_sharded`): the dataset in contiguous shards, their boundaries on
  multiples of the scan batch, so every forward pass sees the batches the in-process scan
  sees; each task keeps its shard's top and bottom K (`StreamingExtremes`), and the driver
  merges them in shard order. The merge sorts by (activation, dataset index), a total order,
  so it is associative and exact. Each finished shard is recorded, and an interrupted shard
  continues from its own checkpoint: a re-run redoes only unfinished shards.
- feature visualization chunks (`RayTarget.render`): stimgen's chunks as they are planned
  in-process, one task each (a chunk's images do not depend on which chunk it is in, nor
  where it runs).
- machine-observer embedding batches (`map_tasks` with the observer's function).

Each task runs with the driver's torch thread count, so its numbers are the driver's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from crowdkit.errors import ConfigError, CrowdkitError

T = TypeVar("T")
R = TypeVar("R")
LOCAL = "local"
RAY_MISSING = ("--ray needs Ray: pip install 'crowdkit[ray]' (or set [compute] ray = \"\" to "
               "run in this process)")


def connect(address: str) -> Any:  # the ray module: it ships no types we check against
    """Join (or start, for "local") the Ray cluster at `address`; return the ray module."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    if not ray.is_initialized():
        try:
            if address == LOCAL:
                ray.init(include_dashboard=False, logging_level=logging.ERROR,
                         log_to_driver=False)
            else:
                ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise CrowdkitError(f"--ray {address}: cannot reach a Ray cluster there "
                                f"({exc})") from None
    return ray


def gpus_per_task(ray: Any) -> float:
    """One GPU per task where the cluster has GPUs, else none."""
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def map_tasks(address: str, function: Callable[..., R], items: Sequence[T],
              *args: Any, device: str = "cpu",
              on_done: Callable[[int, R], None] | None = None) -> list[R]:
    """`function(item, *args)` for each item as Ray tasks; results in item order.

    Each task asks for a GPU only when `device` (the workers' device, `worker_device`) is
    CUDA: a CPU run on a cluster with GPUs must not hold one GPU per task and idle.
    `on_done(index, result)` is called as each finishes, in completion order."""
    ray = connect(address)
    gpus = 1.0 if device.startswith("cuda") else 0.0
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=2)(_call)
    threads = _threads()
    refs = [remote.remote(function, threads, item, *args) for item in items]
    index_of = {ref: i for i, ref in enumerate(refs)}
    results: dict[int, R] = {}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index_of[ref]
                results[i] = ray.get(ref)
                if on_done is not None:
                    on_done(i, results[i])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [results[i] for i in range(len(items))]


def _call(function: Callable[..., R], threads: int, *args: Any) -> R:
    import torch

    torch.set_num_threads(threads)
    return function(*args)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


# -- the exemplar scan -------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load the driver's model (stimgen.models.load_model)."""

    name: str
    weights: str
    seed: int
    device: str
    base_dir: str


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int


def shards(n_images: int, batch_size: int, n_shards: int) -> list[Shard]:
    """Contiguous ranges covering the dataset, each a whole number of scan batches."""
    n_batches = -(-n_images // batch_size)
    n_shards = max(1, min(n_shards, n_batches))
    out = []
    for i in range(n_shards):
        first = n_batches * i // n_shards
        last = n_batches * (i + 1) // n_shards
        out.append(Shard(i, first * batch_size, min(n_images, last * batch_size)))
    return out


def default_shards(ray: Any) -> int:
    """Four shards per worker slot, so a slow worker does not hold the rest up."""
    slots = ray.cluster_resources().get("GPU", 0) or ray.cluster_resources().get("CPU", 1)
    return max(1, int(slots) * 4)


def scan_sharded(
    address: str, spec: ModelSpec, units: list[Any], folder: Any, *, k: int,
    batch_size: int, checkpoint_dir: Path, key: str,
    finished: Callable[[int], dict[str, Any] | None],
    record: Callable[[int, dict[str, Any]], None],
    progress: Callable[[int], None] | None = None, n_shards: int | None = None,
) -> Any:
    """The scan of `folder` for `units`, sharded over Ray; returns a `ScanResult` equal to
    `scan_dataset`'s in-process one (same top and bottom K, same order).

    `finished(shard)` returns a shard's recorded result (a re-run skips it), `record(shard,
    result)` records one as it finishes; each shard checkpoints under `checkpoint_dir`."""
    import torch

    from stimgen.exemplars import ScanResult, StreamingExtremes

    ray = connect(address)
    plan = shards(len(folder), batch_size, n_shards or default_shards(ray))
    units = list(units)
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for shard in plan:
        saved = finished(shard.index)
        if saved is None:
            todo.append(shard)
        else:
            results[shard.index] = saved
            if progress:
                progress(shard.stop - shard.start)

    def done(i: int, result: dict[str, Any]) -> None:
        shard = todo[i]
        results[shard.index] = result
        record(shard.index, result)
        if progress:
            progress(shard.stop - shard.start)

    map_tasks(address, _scan_shard, todo, spec, units, folder, k, batch_size,
              str(checkpoint_dir), key, device=spec.device, on_done=done)
    extremes = StreamingExtremes(len(units), k)
    n_skipped, skipped = 0, []
    for shard in plan:  # in dataset order: the merge is exact in any order, this is tidy
        part = results[shard.index]
        tensors = {name: torch.tensor(value) for name, value in part["tensors"].items()}
        extremes = extremes.merged_extremes(StreamingExtremes(len(units), k, tensors))
        n_skipped += part["n_skipped"]
        skipped += part["skipped"]
    out = ScanResult(len(folder), n_skipped, skipped[:20])
    for column, unit in enumerate(units):
        out.top[unit.id], out.bottom[unit.id] = extremes.ranked(column)
    return out


_MODELS: dict[ModelSpec, Any] = {}  # per worker process: each model is loaded once


def worker_model(spec: ModelSpec) -> Any:
    """The model `spec` names, loaded once per worker process (Ray reuses its workers)."""
    import torch

    from stimgen.models import load_model

    if spec not in _MODELS:
        _MODELS.clear()  # one model at a time: a worker's memory holds one
        _MODELS[spec] = load_model(spec.name, spec.weights, seed=spec.seed,
                                   device=torch.device(spec.device),
                                   base_dir=Path(spec.base_dir))
    return _MODELS[spec]


def _scan_shard(shard: Shard, spec: ModelSpec, units: list[Any], folder: Any, k: int,
                batch_size: int, checkpoint_dir: str, key: str) -> dict[str, Any]:
    """One shard, in a Ray worker: its top and bottom K as plain lists."""
    from stimgen.exemplars import scan_shard

    model = worker_model(spec)
    checkpoint = Path(checkpoint_dir) / f"partial-{key}-shard{shard.index}.pt"
    extremes, n_skipped, skipped = scan_shard(
        model, units, folder, start=shard.start, stop=shard.stop, k=k, batch_size=batch_size,
        checkpoint=checkpoint, key=f"{key}:{shard.start}:{shard.stop}")
    return {"tensors": {name: t.tolist() for name, t in extremes.tensors.items()},
            "n_skipped": n_skipped, "skipped": skipped}


# -- feature visualization chunks ----------------------------------------------------------


def _render_chunk(chunk: list[Any], spec: ModelSpec, settings: Any, transform_seed: int,
                  layer_order: dict[str, int]) -> list[Any]:
    """One chunk's rendered groups in a worker, with the layer order the driver probed."""
    from stimgen.featurevis import render_targets

    model = worker_model(spec)
    groups: list[Any] = []
    for part in render_targets(model, chunk, settings, transform_seed=transform_seed,
                               layer_order=layer_order,
                               chunk_images=len(chunk) * settings.n_images):
        groups += part
    return groups


@dataclass(frozen=True)
class RayTarget:
    """A rendering's work on Ray: the cluster's address and the model a worker loads."""

    address: str
    spec: ModelSpec

    @classmethod
    def for_job(cls, job: Any, device: str, natural: Any, synthetic: Any) -> RayTarget | None:
        """The Ray side of a `StimuliJob`: None when it runs in this process, or when the
        run has nothing to compute (`natural`'s scans and `synthetic`'s renderings all
        reused), so a rerun starts no cluster."""
        if not job.ray or not (natural.scan_units or (synthetic and synthetic.todo)):
            return None
        ray = connect(job.ray)
        cfg = job.config
        return cls(job.ray, ModelSpec(cfg.model, cfg.weights, job.seed,
                                      worker_device(device, ray), str(job.root)))

    def scan(self, units: list[Any], folder: Any, *, k: int, key: str, batch_size: int,
             store: Any, progress: Callable[[int], None] | None = None) -> Any:
        """The sharded scan, each finished shard recorded in the pipeline's store."""
        def finished(shard: int) -> dict[str, Any] | None:
            return store.get("scan-shard", f"{key}-{shard}", key)

        def record(shard: int, result: dict[str, Any]) -> None:
            store.put("scan-shard", f"{key}-{shard}", key, result)

        return scan_sharded(self.address, self.spec, units, folder, k=k, batch_size=batch_size,
                            checkpoint_dir=store.root / "scan", key=key, finished=finished,
                            record=record, progress=progress)

    def render(self, todo: list[Any], settings: Any, transform_seed: int,
               layer_order: dict[str, int], chunk_images: int | None,
               finish: Callable[[list[Any]], None], advance: Callable[[int], None]) -> None:
        """stimgen's chunks of feature visualizations, one Ray task each; `finish(groups)`
        saves each chunk's images as it comes back."""
        from stimgen.featurevis import plan_chunks

        per_chunk = chunk_images or self._chunk_images(settings.image_size)
        chunks = plan_chunks(todo, layer_order, per_chunk // settings.n_images)

        def done(i: int, groups: list[Any]) -> None:
            finish(groups)
            advance(len(chunks[i]) * settings.steps)

        map_tasks(self.address, _render_chunk, chunks, self.spec, settings, transform_seed,
                  layer_order, device=self.spec.device, on_done=done)

    def _chunk_images(self, image_size: int) -> int:
        """Images per chunk for the workers' device, measured where that device is: a
        driver without the workers' GPU asks a worker."""
        import torch

        device = torch.device(self.spec.device)
        if device.type != "cuda" or torch.cuda.is_available():
            return _default_chunk_images(image_size, self.spec.device)
        return map_tasks(self.address, _default_chunk_images, [image_size], self.spec.device,
                         device=self.spec.device)[0]


def _default_chunk_images(image_size: int, device: str) -> int:
    import torch

    from stimgen.featurevis import default_chunk_images

    return default_chunk_images(torch.device(device), image_size)


def worker_device(requested: str, ray: Any) -> str:
    """The device a task uses: CUDA where the cluster gave it a GPU, else the CPU."""
    if requested.startswith("cuda") or (requested == "auto" and gpus_per_task(ray)):
        return "cuda"
    return "cpu"


