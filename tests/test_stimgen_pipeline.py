"""`crowdkit stimuli` end to end on a tiny study: the manifest it writes, the exact crops,
the paper's batches, re-runs that reuse work, interruptions, and clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from crowdkit.cli import app
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.files import file_digest as sha256_file
from crowdkit.manifest import Manifest, load_manifest
from crowdkit.stimuli import render_study_stimuli
from crowdkit.study import load_study
from stimgen import pipeline
from stimgen.featurevis import score_images
from stimgen.models import load_model
from stimgen.sample_data import write_sample_images

ROOT = Path(__file__).resolve().parents[1]
STUDY = """
[study]
name = "stim"
seed = 5

[stimuli]
weights = "random"
dataset = "images"
units = ["3a:70", "mixed3b_3x3_pre_relu_conv:72"]
random_layers = ["mixed3a_5x5_pre_relu_conv"]
batches = 2
images_per_batch = 3
device = "cpu"
num_workers = 0
{extra}

[stimuli.synthetic]
steps = {steps}
image_size = 32
crop = 2
n_images = 2
transforms = "lucent"  # lucid's crops would shrink 32 px below what mixed3b needs

[hit]
title = "t"
description = "d"
reward = "0.50"
"""


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)


def make_study_dir(root: Path, *, steps: int = 3, extra: str = "", n_images: int = 14) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "study.toml").write_text(STUDY.format(steps=steps, extra=extra))
    write_sample_images(root / "images", n_images, seed=3, size=(96, 72))
    return root


@dataclass
class Stretch:
    description: str
    total: int
    done: int = 0
    finished: bool = False


@dataclass
class RecordingProgress:
    """A `crowdkit.progress.Progress` that remembers every stretch of work and its advances."""

    stretches: list[Stretch] = field(default_factory=list)

    @contextmanager
    def __call__(self, description: str, total: int) -> Iterator:
        stretch = Stretch(description, total)
        assert all(s.finished for s in self.stretches), "stretches do not nest"
        self.stretches.append(stretch)

        def advance(n: int) -> None:
            assert not stretch.finished and n >= 0
            stretch.done += n

        yield advance
        stretch.finished = True

    def described(self) -> list[str]:
        return [s.description for s in self.stretches]


@pytest.fixture(scope="module")
def recorded() -> RecordingProgress:
    """What the `rendered` study reported through its progress."""
    return RecordingProgress()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, recorded) -> tuple[Path, pipeline.StimuliResult]:
    root = make_study_dir(tmp_path_factory.mktemp("study"))
    return root, render_study_stimuli(load_study(root), progress=recorded)


@pytest.fixture(scope="module")
def model():
    """The model the `rendered` study used: seed 5, random weights."""
    return load_model("inceptionv1", "random", seed=5, device=torch.device("cpu"))


@pytest.fixture
def copy_of_rendered(rendered, tmp_path) -> Path:
    return Path(shutil.copytree(rendered[0], tmp_path / "study"))


def test_manifest_is_valid_and_names_every_file_with_its_hash(rendered):
    root, result = rendered
    manifest = load_manifest(root / "stimuli" / "manifest.json", check_files=True)
    assert manifest == result.manifest
    assert manifest.generator.startswith("crowdkit stimuli")
    assert manifest.model.random_weights and manifest.model.weights == "random (seed 5)"
    assert manifest.dataset is not None
    assert (manifest.dataset.n_images, manifest.dataset.n_skipped) == (14, 0)
    assert [(u.id, u.label, u.selection) for u in manifest.units[:2]] == [
        ("3a:70", "3a, 3x3", "picked"), ("3b:200", "3b, 3x3", "picked")]
    assert manifest.units[2].selection == "random" and manifest.units[2].label == "3a, 5x5"
    for path in manifest.image_paths():
        refs = [r for u in manifest.units for b in u.natural.batches for r in [*b.max, *b.min]
                if r.path == path]
        refs += [r for u in manifest.units for r in [*u.synthetic.max, *u.synthetic.min]
                 if r.path == path]
        assert all(r.sha256 == sha256_file(root / "stimuli" / path) for r in refs)
    raw = json.loads((root / "stimuli" / "manifest.json").read_text())
    assert raw["schema_version"] == 1
    assert raw["parameters"]["seed"] == 5 and raw["parameters"]["batches"] == 2


def test_batches_are_ascending_and_follow_the_rank_bins(rendered):
    root, result = rendered
    for unit in result.manifest.units:
        batches = unit.natural.batches
        assert [b.index for b in batches] == [0, 1]
        for b in batches:
            assert len(b.max) == len(b.min) == 3
            assert [r.activation for r in b.max] == sorted(r.activation for r in b.max)
            assert [r.activation for r in b.min] == sorted(r.activation for r in b.min)
        # the top K = 6, most active first; batch b holds ranks b, 2 + b, 4 + b
        top = sorted((r for b in batches for r in b.max), key=lambda r: -r.activation)
        bottom = sorted((r for b in batches for r in b.min), key=lambda r: r.activation)
        for b in batches:
            assert [r.dataset_index for r in reversed(b.max)] == [
                top[j * 2 + b.index].dataset_index for j in range(3)]
            assert [r.dataset_index for r in b.min] == [
                bottom[j * 2 + b.index].dataset_index for j in range(3)]
        # the max side's images all beat the min side's: K from each end of the dataset
        assert min(r.activation for r in top) > max(r.activation for r in bottom)
        assert len({r.dataset_index for r in [*top, *bottom]}) == 12


def test_saved_natural_images_are_exactly_the_crops_that_were_scored(rendered, model):
    root, result = rendered
    for unit in result.manifest.units[:2]:
        refs = [r for b in unit.natural.batches for r in [*b.max, *b.min]]
        pixels = np.stack([np.asarray(Image.open(root / "stimuli" / r.path)) for r in refs])
        assert pixels.shape[1:] == (224, 224, 3)
        scores = score_images(model, pixels, [(unit.layer, unit.channel)] * len(refs))
        assert scores == pytest.approx([r.activation for r in refs], rel=1e-4, abs=1e-5)
        assert all(r.source == f"sample_{r.dataset_index:05d}.jpg" for r in refs)


def test_synthetic_images_are_rescored_and_recorded_with_their_settings(rendered):
    root, result = rendered
    for unit in result.manifest.units:
        synthetic = unit.synthetic
        assert synthetic is not None and len(synthetic.max) == len(synthetic.min) == 2
        for side in (synthetic.max, synthetic.min):
            assert [r.activation for r in side] == sorted(r.activation for r in side)
            with Image.open(root / "stimuli" / side[0].path) as image:
                assert image.size == (28, 28)  # 32 px cropped by 2 px per side
        params = synthetic.parameters
        assert params["preset"] == "iclr2021"  # the preset's name is kept with its overrides
        assert (params["steps"], params["image_size"], params["crop"]) == (3, 32, 2)
        assert (params["lr"], params["diversity_weight"], params["jitter"]) == (0.05, 100.0, 16)
        assert params["init_seed"]["max"] != params["init_seed"]["min"]


def test_synthetic_activations_are_the_saved_files_rescored(rendered, model):
    root, result = rendered
    for unit in result.manifest.units:
        refs = [*unit.synthetic.max, *unit.synthetic.min]
        pixels = np.stack([np.asarray(Image.open(root / "stimuli" / r.path)) for r in refs])
        scores = score_images(model, pixels, [(unit.layer, unit.channel)] * len(refs))
        assert scores == pytest.approx([r.activation for r in refs], rel=1e-4, abs=1e-5)


def test_contact_sheets_for_every_unit(rendered):
    root, result = rendered
    sheets = result.manifest.parameters["contact_sheets"]
    assert set(sheets) == {u.id for u in result.manifest.units}
    with Image.open(root / "stimuli" / sheets["3a:70"]) as sheet:
        assert sheet.format == "PNG" and sheet.width > 3 * 96
    assert any("random weights" in line for line in result.summary_lines())


def test_rendering_reports_each_stretch_of_work_through_progress(rendered, recorded):
    _, result = rendered
    manifest = result.manifest
    assert recorded.described() == ["scanning 3 units", "saving exemplars",
                                    "rendering 6 unit-directions", "contact sheets"]
    assert all(s.finished and s.done == s.total for s in recorded.stretches), recorded
    scan, saving, rendering, sheets = (s.total for s in recorded.stretches)
    sources = {r.dataset_index for u in manifest.units for b in u.natural.batches
               for r in [*b.max, *b.min]}
    assert (scan, saving, sheets) == (14, len(sources), 3)
    assert rendering == 6 * 3  # unit-directions x steps


def test_the_default_progress_is_silent():
    from crowdkit.progress import silent
    from crowdkit.stimuli import render_study_stimuli as render
    from stimgen.pipeline import render_stimuli

    for function in (render, render_stimuli):
        defaults = function.__kwdefaults__
        assert defaults["progress"] is silent and defaults["on_plan"] is None
        assert defaults["device"] is None


def test_a_rerun_with_the_same_inputs_reuses_everything(copy_of_rendered):
    root = copy_of_rendered
    before = {p: p.stat().st_mtime_ns for p in (root / "stimuli").rglob("*.png")
              if "contact_sheets" not in p.parts}
    progress = RecordingProgress()
    result = render_study_stimuli(load_study(root), progress=progress)
    assert (result.scanned_images, result.natural_written, result.natural_reused) == (0, 0, 3)
    assert (result.synthetic_rendered, result.synthetic_reused) == (0, 6)
    assert before == {p: p.stat().st_mtime_ns for p in before}
    assert progress.described() == ["contact sheets"]  # nothing else had work to do


def test_changing_a_synthetic_setting_rerenders_only_the_synthetic_images(copy_of_rendered):
    root = copy_of_rendered
    toml = (root / "study.toml").read_text().replace("steps = 3", "steps = 2")
    (root / "study.toml").write_text(toml)
    result = render_study_stimuli(load_study(root))
    assert (result.scanned_images, result.natural_reused) == (0, 3)
    assert (result.synthetic_rendered, result.synthetic_reused) == (6, 0)
    assert result.manifest.units[0].synthetic.parameters["steps"] == 2


def test_a_changed_image_file_is_rewritten(copy_of_rendered):
    root = copy_of_rendered
    manifest = Manifest.model_validate_json((root / "stimuli/manifest.json").read_text())
    victim = root / "stimuli" / manifest.units[0].natural.batches[0].max[0].path
    victim.write_bytes(b"damaged")
    result = render_study_stimuli(load_study(root))
    assert (result.natural_written, result.natural_reused, result.scanned_images) == (1, 2, 0)
    assert sha256_file(victim) == manifest.units[0].natural.batches[0].max[0].sha256


def test_an_interrupted_render_keeps_the_finished_chunks(tmp_path, monkeypatch):
    root = make_study_dir(tmp_path / "study", extra="")
    toml = (root / "study.toml").read_text().replace("n_images = 2", "n_images = 2\n"
                                                     "chunk_images = 2")
    (root / "study.toml").write_text(toml)
    saved = []
    original = pipeline._save_group

    def interrupted_after_two(*args, **kwargs):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(args[2].target)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_save_group", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        render_study_stimuli(load_study(root))
    assert not (root / "stimuli" / "manifest.json").exists()  # nothing half-way
    monkeypatch.setattr(pipeline, "_save_group", original)
    result = render_study_stimuli(load_study(root))
    assert (result.synthetic_reused, result.synthetic_rendered) == (2, 4)
    assert (result.natural_reused, result.scanned_images) == (3, 0)


def test_jpeg_output_and_no_synthetic(tmp_path):
    root = make_study_dir(tmp_path / "study", extra='image_format = "jpeg"\njpeg_quality = 90')
    toml = (root / "study.toml").read_text().replace("[stimuli.synthetic]",
                                                     "[stimuli.synthetic]\nenabled = false")
    (root / "study.toml").write_text(toml)
    result = render_study_stimuli(load_study(root))
    paths = result.manifest.image_paths()
    assert paths and all(p.endswith(".jpg") for p in paths)
    assert all(u.synthetic is None for u in result.manifest.units)
    with Image.open(root / "stimuli" / paths[0]) as image:
        assert image.format == "JPEG"


def test_shuffled_bins_are_seeded_by_the_feature_map_and_recorded(tmp_path, rendered):
    root = make_study_dir(tmp_path / "a", extra='bin_order = "shuffled"')
    toml = (root / "study.toml").read_text().replace("[stimuli.synthetic]",
                                                     "[stimuli.synthetic]\nenabled = false")
    (root / "study.toml").write_text(toml)
    shuffled = render_study_stimuli(load_study(root)).manifest
    assert shuffled.parameters["bin_order"] == "shuffled"
    assert "shuffled" in shuffled.parameters["batch_assignment"]
    ranked = rendered[1].manifest
    picked = [u for u in shuffled.units if u.selection == "picked"]
    indices = [[[r.dataset_index for r in b.max] for b in u.natural.batches] for u in picked]
    ranked_indices = [[[r.dataset_index for r in b.max] for b in u.natural.batches]
                      for u in ranked.units if u.selection == "picked"]
    assert indices != ranked_indices  # another deal of the same bins ...
    for unit, before in zip(picked, ranked.units, strict=False):
        bins = [sorted(b.max[-1 - j].dataset_index for b in unit.natural.batches)
                for j in range(3)]
        assert bins == [sorted(b.max[-1 - j].dataset_index for b in before.natural.batches)
                        for j in range(3)]
    # ... seeded by the feature map and side alone (not by the study's seed)
    from stimgen.config import StimuliConfig
    from stimgen.units import UnitRef

    cfg = StimuliConfig(bin_order="shuffled", seed=1)
    unit = UnitRef("4a:257", "mixed4a_3x3_pre_relu_conv", 65, "4a, 3x3", "picked")
    same = UnitRef("4a:257", "mixed4a_3x3_pre_relu_conv", 65, "4a, 3x3", "random")
    other = UnitRef("4a:258", "mixed4a_3x3_pre_relu_conv", 66, "4a, 3x3", "picked")
    seed = pipeline._bin_seed(cfg, unit, "max")
    assert seed == pipeline._bin_seed(StimuliConfig(bin_order="shuffled", seed=9), same, "max")
    assert seed not in (pipeline._bin_seed(cfg, other, "max"),
                        pipeline._bin_seed(cfg, unit, "min"))
    assert pipeline._bin_seed(StimuliConfig(), unit, "max") is None  # ranked


def test_a_hand_written_manifest_is_never_overwritten(tmp_path):
    root = make_study_dir(tmp_path / "study", n_images=0)
    (root / "stimuli").mkdir()
    (root / "stimuli" / "manifest.json").write_text('{"generator": "hand-written"}')
    with pytest.raises(CrowdkitError, match="was not written by `crowdkit stimuli`"):
        render_study_stimuli(load_study(root))


@pytest.mark.parametrize(("n_images", "message"), [
    (0, "[stimuli] dataset: no images in"),
    (11, "has 11 images; batches x images_per_batch = 6 per side needs at least 12"),
])
def test_too_small_a_dataset_is_a_clear_error(tmp_path, n_images, message):
    root = make_study_dir(tmp_path / "study", n_images=n_images)
    with pytest.raises(ConfigError) as err:
        render_study_stimuli(load_study(root))
    assert message in str(err.value)
    assert not (root / "stimuli").exists()


def test_cli_prints_a_summary_that_flags_random_weights(copy_of_rendered):
    result = CliRunner().invoke(app, ["stimuli", str(copy_of_rendered), "--no-progress",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "WARNING: random weights" in result.output
    assert "natural exemplars: 0 units written, 3 reused" in result.output


def test_cli_errors_are_one_line(tmp_path):
    root = make_study_dir(tmp_path / "study")
    toml = (root / "study.toml").read_text().replace('"3a:70"', '"4a:999"')
    (root / "study.toml").write_text(toml)
    run = subprocess.run([sys.executable, "-m", "crowdkit", "stimuli", str(root)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: [stimuli] units: '4a:999': channel 999 is out of range for 4a (0-507)"]
    assert not (root / "stimuli").exists()


def test_a_source_image_that_breaks_after_the_scan_is_a_clear_error(copy_of_rendered):
    root = copy_of_rendered
    manifest = load_manifest(root / "stimuli" / "manifest.json")
    ref = manifest.units[0].natural.batches[0].max[0]
    (root / "stimuli" / ref.path).write_bytes(b"damaged")  # so its crop is saved again
    source = root / "images" / ref.source
    stat = source.stat()
    source.write_bytes(b"x" * stat.st_size)  # same size and time: the scan is reused
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(CrowdkitError, match="could not be read again after the scan"):
        render_study_stimuli(load_study(root))


def test_an_interrupted_scan_continues_where_it_stopped(tmp_path, monkeypatch, rendered):
    root = make_study_dir(tmp_path / "study", extra="scan_batch_size = 4")
    toml = (root / "study.toml").read_text().replace("[stimuli.synthetic]",
                                                     "[stimuli.synthetic]\nenabled = false")
    (root / "study.toml").write_text(toml)
    original = pipeline.scan_dataset
    batches: list[int] = []

    def scan_stopping_after(stop: int | None):
        def scan(*args, **kwargs):
            def after_batch(done: int) -> None:
                batches.append(done)
                if done == stop:
                    raise KeyboardInterrupt
            return original(*args, after_batch=after_batch, **kwargs)
        return scan

    monkeypatch.setattr(pipeline, "scan_dataset", scan_stopping_after(2))
    with pytest.raises(KeyboardInterrupt):
        render_study_stimuli(load_study(root))
    checkpoints = list((root / "stimuli" / ".cache" / "scan").glob("partial-*.pt"))
    assert len(checkpoints) == 1 and not (root / "stimuli" / "manifest.json").exists()

    batches.clear()
    monkeypatch.setattr(pipeline, "scan_dataset", scan_stopping_after(None))
    progress = RecordingProgress()
    result = render_study_stimuli(load_study(root), progress=progress)
    assert batches == [1, 2]  # 14 images in batches of 4: the last 2 of 4 batches
    scan = progress.stretches[0]  # the resumed images count too: the bar ends at its total
    assert (scan.description, scan.done, scan.total, scan.finished) == (
        "scanning 3 units", 14, 14, True)
    assert not checkpoints[0].exists()
    uninterrupted = rendered[1].manifest
    for unit, reference in zip(result.manifest.units, uninterrupted.units, strict=True):
        for batch, ref_batch in zip(unit.natural.batches, reference.natural.batches,
                                    strict=True):
            for side, ref_side in ((batch.max, ref_batch.max), (batch.min, ref_batch.min)):
                assert [r.dataset_index for r in side] == [r.dataset_index for r in ref_side]
                assert [r.activation for r in side] == pytest.approx(
                    [r.activation for r in ref_side], rel=1e-4, abs=1e-5)
