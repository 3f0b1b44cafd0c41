"""stimgen and the machine observer on a local Ray cluster of 2 CPUs, started here: the
results are the in-process run's (same exemplars, ranks, images; the manifest differs only
in its timing field), shards merge exactly, and an interrupted sharded scan resumes from the
shards it finished."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from crowdkit.stimuli import render_study_stimuli
from crowdkit.study import load_study
from stimgen import distributed
from stimgen.exemplars import StreamingExtremes
from tests.test_stimgen_pipeline import make_study_dir, no_downloads

__all__ = ["no_downloads"]

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
TIMING = ("created_at",)  # manifest fields that say when, not what


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for this module (no dashboard, nothing remote)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
    yield "local"
    ray.shutdown()


def manifest_json(root: Path) -> dict:
    data = json.loads((root / "stimuli" / "manifest.json").read_text())
    for key in TIMING:
        data.pop(key, None)
    return data


def test_shards_cover_the_dataset_in_whole_batches():
    plan = distributed.shards(n_images=103, batch_size=8, n_shards=4)
    assert plan[0].start == 0 and plan[-1].stop == 103
    assert all(a.stop == b.start for a, b in zip(plan, plan[1:], strict=False))
    assert all(s.start % 8 == 0 for s in plan)
    assert len(distributed.shards(10, 8, 16)) == 2  # never more shards than batches


def test_merging_shards_is_exact_and_associative():
    gen = torch.Generator().manual_seed(0)
    values = torch.randint(0, 5, (60, 3), generator=gen).float()  # many ties
    indices = torch.arange(60)
    whole = StreamingExtremes(3, 7).merged(values, indices)
    parts = [StreamingExtremes(3, 7).merged(values[a:b], indices[a:b])
             for a, b in ((0, 17), (17, 40), (40, 60))]
    left = parts[0].merged_extremes(parts[1]).merged_extremes(parts[2])
    right = parts[0].merged_extremes(parts[1].merged_extremes(parts[2]))
    backwards = parts[2].merged_extremes(parts[1]).merged_extremes(parts[0])
    for merged in (left, right, backwards):
        for unit in range(3):
            assert merged.ranked(unit) == whole.ranked(unit)


def test_stimuli_on_ray_equal_the_in_process_run(tmp_path, cluster):
    here = make_study_dir(tmp_path / "here", extra="scan_batch_size = 4")
    there = tmp_path / "there"
    shutil.copytree(here, there)
    render_study_stimuli(load_study(here), estimate=False)
    render_study_stimuli(load_study(there), estimate=False, ray=cluster)
    assert manifest_json(there) == manifest_json(here)
    records = sorted(p.name for p in (there / "stimuli" / ".cache" / "scan-shard").iterdir())
    assert len(records) >= 2  # the scan really was sharded


def test_an_interrupted_sharded_scan_redoes_only_unfinished_shards(tmp_path, cluster,
                                                                   monkeypatch):
    root = make_study_dir(tmp_path / "study", extra="scan_batch_size = 4")
    render_study_stimuli(load_study(root), estimate=False, ray=cluster)
    expected = manifest_json(root)
    cache = root / "stimuli" / ".cache"
    shard_records = sorted((cache / "scan-shard").iterdir())
    shard_records[0].unlink()  # as if the run had stopped before this shard finished
    for kind in ("scan", "natural"):  # and before the scan's result was recorded
        shutil.rmtree(cache / kind)
    scanned: list[int] = []
    real = distributed._scan_shard

    def counting(shard, *args):
        scanned.append(shard.index)
        return real(shard, *args)

    monkeypatch.setattr(distributed, "map_tasks", _in_process_map)
    monkeypatch.setattr(distributed, "_scan_shard", counting)
    render_study_stimuli(load_study(root), estimate=False, ray=cluster)
    assert scanned == [int(shard_records[0].stem.rsplit("-", 1)[1])]
    assert manifest_json(root) == expected


def _in_process_map(address, function, items, *args, device="cpu", on_done=None):
    """map_tasks without Ray, so a test can see which shards were computed."""
    results = []
    for i, item in enumerate(items):
        results.append(function(item, *args))
        if on_done is not None:
            on_done(i, results[-1])
    return results


def test_the_machine_observer_on_ray_equals_the_in_process_run(tmp_path, cluster):
    from crowdkit.design import design_study
    from crowdkit.observers.run import run_mis
    from tests.factories import make_study

    root = make_study(tmp_path / "mis", tasks=2, trials=4, catch=2, practice=0)
    with (root / "study.toml").open("a") as f:
        f.write('\n[mis]\nsimilarity = "features"\nbatch_size = 4\n')
    study = load_study(root)
    design_study(study)
    here = run_mis(study, device="cpu")
    shutil.rmtree(root / ".cache" / "mis")  # embed everything again, on Ray this time
    there = run_mis(study, device="cpu", ray=cluster)
    assert there.embedded == here.embedded > 0
    assert there.trials.equals(here.trials)
    assert there.scores.equals(here.scores)


def test_tasks_ask_for_a_gpu_only_when_the_run_uses_one(monkeypatch):
    """On a cluster with GPUs, a CPU run's tasks ask for none (one GPU per task would leave
    all but a few idle); `auto` takes the cluster's GPUs, `cpu` never does."""
    asked: dict = {}

    class Remote:
        def remote(self, function, threads, item, *args):
            return ("ref", item)

    class Cluster:
        def cluster_resources(self):
            return {"CPU": 64.0, "GPU": 8.0}

        def remote(self, **options):
            asked.update(options)
            return lambda function: Remote()

        def wait(self, pending, num_returns):
            return pending[:1], pending[1:]

        def get(self, ref):
            return ref[1]

    monkeypatch.setattr(distributed, "connect", lambda address: Cluster())
    assert distributed.map_tasks("cluster", str, [1, 2], device="cpu") == [1, 2]
    assert asked["num_gpus"] == 0
    distributed.map_tasks("cluster", str, [1], device="cuda")
    assert asked["num_gpus"] == 1
    assert distributed.worker_device("cpu", Cluster()) == "cpu"
    assert distributed.worker_device("auto", Cluster()) == "cuda"
