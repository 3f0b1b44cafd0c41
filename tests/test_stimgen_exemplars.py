"""Natural exemplars: the batch and rank-bin assignment, the streaming top/bottom K, the scan
(one pass, unreadable files skipped), and resumption after an interruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stimgen.datasets import ImageFolder, load_crop
from stimgen.exemplars import StreamingExtremes, assign_batches, scan_dataset
from stimgen.models import FeatureTap, load_model, spatial_mean
from stimgen.sample_data import write_sample_images
from stimgen.units import UnitResolver

CPU = torch.device("cpu")


def test_batch_b_takes_rank_j_times_batches_plus_b_of_every_bin():
    ranked = list(range(200))  # 0 = most extreme
    batches = assign_batches(ranked, batches=20, per_batch=10)
    assert len(batches) == 20
    assert batches[0] == [0, 20, 40, 60, 80, 100, 120, 140, 160, 180]
    assert batches[7] == [7, 27, 47, 67, 87, 107, 127, 147, 167, 187]
    assert batches[19] == [19, 39, 59, 79, 99, 119, 139, 159, 179, 199]
    for b, batch in enumerate(batches):
        # one image from each bin j = ranks [20 j, 20 j + 20), in bin order ...
        assert [rank // 20 for rank in batch] == list(range(10))
        # ... and the batch's most extreme image comes from the most extreme bin
        assert batch[0] == b
    # every image of the top K is used exactly once (the authors' stride of 10 used only
    # positions 0-109 of their ascending lists: on the max side the ~90 most activating
    # images were never shown)
    assert sorted(r for batch in batches for r in batch) == ranked


def test_shuffled_bins_deal_each_bin_to_the_batches_in_a_seeded_order():
    ranked = list(range(200))
    shuffled = assign_batches(ranked, batches=20, per_batch=10, shuffle_seed=11)
    assert shuffled == assign_batches(ranked, batches=20, per_batch=10, shuffle_seed=11)
    assert shuffled != assign_batches(ranked, batches=20, per_batch=10)
    for batch in shuffled:  # still one image per bin, most extreme bin first
        assert [rank // 20 for rank in batch] == list(range(10))
    assert sorted(r for batch in shuffled for r in batch) == ranked
    # batch 0 no longer always holds the most extreme image of every bin
    assert shuffled[0] != [0, 20, 40, 60, 80, 100, 120, 140, 160, 180]


def test_assignment_with_other_shapes_and_too_few_items():
    assert assign_batches(list("abcdef"), batches=2, per_batch=3) == [
        ["a", "c", "e"], ["b", "d", "f"]]
    assert assign_batches(list("abc"), batches=1, per_batch=3) == [["a", "b", "c"]]
    with pytest.raises(ValueError, match="need 6 ranked items"):
        assign_batches(list("abcde"), batches=2, per_batch=3)


def reference_extremes(values: np.ndarray, k: int) -> tuple[list[int], list[int]]:
    """Full sort: most extreme first, ties by lowest index."""
    n = len(values)
    top = sorted(range(n), key=lambda i: (-values[i], i))[:k]
    bottom = sorted(range(n), key=lambda i: (values[i], i))[:k]
    return top, bottom


@pytest.mark.parametrize("batch_size", [1, 7, 64, 300])
def test_streaming_merge_equals_a_full_sort_with_ties_by_index(batch_size: int):
    rng = np.random.default_rng(batch_size)
    n, units, k = 300, 3, 25
    values = rng.integers(0, 12, size=(n, units)).astype(np.float32)  # many ties
    extremes = StreamingExtremes(units, k)
    for start in range(0, n, batch_size):
        chunk = slice(start, start + batch_size)
        extremes = extremes.merged(torch.from_numpy(values[chunk]),
                                   torch.arange(n)[chunk])
        assert extremes.tensors["top_values"].shape[0] <= k  # memory is bounded by K
    for u in range(units):
        top, bottom = extremes.ranked(u)
        ref_top, ref_bottom = reference_extremes(values[:, u], k)
        assert [i for _, i in top] == ref_top
        assert [i for _, i in bottom] == ref_bottom
        assert [v for v, _ in top] == [float(values[i, u]) for i in ref_top]


@pytest.fixture(scope="module")
def model():
    return load_model("inceptionv1", "random", seed=0, device=CPU)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_sample_images(root / "n01", 10, seed=1, size=(120, 90))
    write_sample_images(root / "n02", 10, seed=2, size=(90, 120))
    (root / "n02" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def units_of(model, specs):
    resolver = UnitResolver(model)
    return [resolver.resolve(s) for s in specs]


def direct_activations(model, folder: ImageFolder, units) -> dict[str, dict[int, float]]:
    """Every readable image scored in one forward pass, for comparison with the scan."""
    indices, crops = [], []
    for index in range(len(folder)):
        try:
            crops.append(np.asarray(load_crop(folder.path(index))))
        except OSError:
            continue
        indices.append(index)
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad(), FeatureTap(model.module, [u.layer for u in units],
                                     reduce=spatial_mean) as tap:
        feats = tap(model.preprocess(x))
    return {u.id: {index: float(feats[u.layer][row, u.channel])
                   for row, index in enumerate(indices)} for u in units}


def test_folder_is_searched_recursively_in_a_stable_order(images):
    folder = ImageFolder.scan(images)
    assert len(folder) == 21
    assert folder.files[0] == "n01/sample_00000.jpg"
    assert "n02/broken.jpg" in folder.files
    assert all(not f.endswith(".txt") for f in folder.files)


def test_one_pass_scores_all_units_and_skips_unreadable_files(model, images):
    folder = ImageFolder.scan(images)
    units = units_of(model, ["3a:70", "3b:200", "mixed3a_3x3_bottleneck_pre_relu_conv:3"])
    seen: list[int] = []
    result = scan_dataset(model, units, folder, k=6, batch_size=4, num_workers=0,
                          progress=seen.append)
    assert sum(seen) == 21
    assert (result.n_images, result.n_skipped) == (21, 1)
    assert result.skipped == ["n02/broken.jpg"]
    direct = direct_activations(model, folder, units)
    broken = folder.files.index("n02/broken.jpg")
    for unit in units:
        scores = direct[unit.id]
        assert broken not in scores
        top = sorted(scores, key=lambda i: (-scores[i], i))[:6]
        bottom = sorted(scores, key=lambda i: (scores[i], i))[:6]
        assert [i for _, i in result.top[unit.id]] == top
        assert [i for _, i in result.bottom[unit.id]] == bottom
        for value, index in result.top[unit.id]:
            assert value == pytest.approx(scores[index], rel=1e-4, abs=1e-5)


def test_an_interrupted_scan_continues_from_its_checkpoint(model, images, tmp_path):
    folder = ImageFolder.scan(images)
    units = units_of(model, ["3a:70", "3b:200"])
    full = scan_dataset(model, units, folder, k=5, batch_size=3, num_workers=0)

    checkpoint = tmp_path / "scan.pt"

    def interrupt(batches_done: int) -> None:
        if batches_done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_dataset(model, units, folder, k=5, batch_size=3, num_workers=0,
                     checkpoint=checkpoint, key="same inputs", after_batch=interrupt)
    assert checkpoint.is_file()

    done: list[int] = []
    resumed = scan_dataset(model, units, folder, k=5, batch_size=3, num_workers=0,
                           checkpoint=checkpoint, key="same inputs",
                           after_batch=done.append)
    assert len(done) == 4  # 21 images in batches of 3: 7 batches, 3 done before the stop
    assert resumed.top == full.top and resumed.bottom == full.bottom
    assert resumed.n_skipped == full.n_skipped == 1
    assert not checkpoint.exists()  # a finished scan leaves no checkpoint behind


def test_a_checkpoint_from_other_inputs_is_not_used(model, images, tmp_path):
    folder = ImageFolder.scan(images)
    units = units_of(model, ["3a:70"])
    checkpoint = tmp_path / "scan.pt"

    def interrupt(batches_done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_dataset(model, units, folder, k=5, batch_size=3, num_workers=0,
                     checkpoint=checkpoint, key="old", after_batch=interrupt)
    done: list[int] = []
    scan_dataset(model, units, folder, k=5, batch_size=3, num_workers=0,
                 checkpoint=checkpoint, key="new", after_batch=done.append)
    assert len(done) == 7  # started over


def test_scan_with_worker_processes_matches_in_process(model, images):
    folder = ImageFolder.scan(images)
    units = units_of(model, ["3a:70"])
    a = scan_dataset(model, units, folder, k=5, batch_size=4, num_workers=0)
    b = scan_dataset(model, units, folder, k=5, batch_size=4, num_workers=2)
    assert a.top == b.top and a.bottom == b.bottom


def test_saved_crop_is_the_crop_the_model_saw(images, tmp_path):
    path = ImageFolder.scan(images).path(0)
    crop = load_crop(path)
    assert crop.size == (224, 224)
    crop.save(tmp_path / "crop.png")
    with Image.open(tmp_path / "crop.png") as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(crop))
