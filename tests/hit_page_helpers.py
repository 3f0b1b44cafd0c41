"""Shared by the HIT page tests: small sample tasks with real PNG files, and Chromium.

A sample task is built the way `crowdkit.design` builds one -- content-hash keys, opaque
trial ids, max references on one side, catch queries as pixel-identical copies under a new
key -- and keeps its answer key beside it, so tests know which query is the max one.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from crowdkit.design import (
    Feedback,
    PublicTask,
    PublicTrial,
    Queries,
    References,
    image_key,
    tagged_copy,
)
from crowdkit.study import StudyConfig, parse_study_toml
from tests.browser import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def study_config(page: str = "", design: str = "") -> StudyConfig:
    """A valid study config; `page` and `design` are extra TOML lines for those sections."""
    return parse_study_toml(
        f"""
[study]
name = "pagetest"
[design]
{design}
[hit]
title = "Which image does the network respond to?"
description = "Look at example images and pick the matching one. About 40 short trials."
reward = "1.25"
expected_time = "12m"
[page]
{page}
"""
    )


def striped(rng: random.Random, size: int) -> Image.Image:
    """A "strongly activating" image: a coloured grating near the vertical."""
    angle = rng.uniform(-0.35, 0.35)
    freq = rng.uniform(0.18, 0.3) * 64 / size
    y, x = np.mgrid[0:size, 0:size]
    wave = 0.5 + 0.5 * np.sin(freq * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 6))
    a = np.array([rng.randint(0, 90), rng.randint(60, 160), rng.randint(150, 255)])
    b = np.array([rng.randint(200, 255), rng.randint(180, 240), rng.randint(0, 80)])
    pixels = wave[..., None] * a + (1 - wave[..., None]) * b
    return Image.fromarray(pixels.astype(np.uint8))


def blotchy(rng: random.Random, size: int) -> Image.Image:
    """A "weakly activating" image: smooth, muted blotches."""
    grey = np.array([[rng.randint(70, 190) for _ in range(4)] for _ in range(4)])
    tint = np.array([rng.randint(-25, 25) for _ in range(3)])
    grid = np.clip(grey[..., None] + tint, 0, 255).astype(np.uint8)
    small = Image.fromarray(grid)
    return small.resize((size, size), Image.Resampling.BICUBIC)


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class SampleTask:
    """A public task, its image files by key, and the truth the page must never see."""

    task: PublicTask
    images: dict[str, Path]
    max_position: dict[str, str] = field(default_factory=dict)
    catch_ids: set[str] = field(default_factory=set)

    @property
    def test_trials(self) -> list[PublicTrial]:
        return [t for t in self.task.trials if t.phase == "test"]

    @property
    def practice_trials(self) -> list[PublicTrial]:
        return [t for t in self.task.trials if t.phase == "practice"]


def build_sample_task(
    folder: Path,
    *,
    practice: int = 2,
    blocks: tuple[tuple[str, int], ...] = (("natural", 3), ("synthetic", 3)),
    catch_positions: tuple[int, ...] = (1,),
    n_references: int = 9,
    max_only: bool = False,
    max_side: str = "right",
    key_of: Callable[[bytes], str] = lambda data: image_key(data, ".png"),
    image_size: int = 48,
    seed: int = 7,
) -> SampleTask:
    """Write PNGs under `folder` and return a task over them.

    `blocks` lists (condition, number of test trials); condition "none" shows no
    references. `catch_positions` are indexes among the test trials that become catch
    trials: their max query is a pixel-identical copy of one max reference
    (`crowdkit.design.tagged_copy`). Keys are `crowdkit.design.image_key`s unless `key_of`
    says otherwise.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}

    def store(data: bytes) -> str:
        key = key_of(data)
        path = folder / key
        path.write_bytes(data)
        images[key] = path
        return key

    def new_image(strong: bool) -> tuple[str, bytes]:
        data = png_bytes(striped(rng, image_size) if strong else blotchy(rng, image_size))
        return store(data), data

    sample = SampleTask(task=PublicTask(task_id="t0007", study="pagetest", trials=[]),
                        images=images)
    plan = [("practice", "natural", False)] * practice
    test_index = 0
    for condition, count in blocks:
        for _ in range(count):
            plan.append(("test", condition, test_index in catch_positions))
            test_index += 1

    positions = ["top", "bottom"] * ((len(plan) + 1) // 2)
    rng.shuffle(positions)
    trials = []
    for (phase, condition, is_catch), max_pos in zip(plan, positions, strict=False):
        trial_id = f"{rng.getrandbits(40):010x}"
        refs_shown = condition != "none" or is_catch
        strong = [new_image(True) for _ in range(n_references if refs_shown else 0)]
        weak = [] if max_only else [new_image(False) for _ in range(len(strong))]
        if is_catch:
            max_key = store(tagged_copy(rng.choice(strong)[1], ".png", trial_id))
        else:
            max_key = new_image(True)[0]
        min_key = new_image(False)[0]
        strong_keys, weak_keys = [k for k, _ in strong], [k for k, _ in weak]
        refs = (References(left=weak_keys, right=strong_keys) if max_side == "right"
                else References(left=strong_keys, right=weak_keys))
        min_pos = "bottom" if max_pos == "top" else "top"
        trials.append(PublicTrial(
            trial_id=trial_id, phase=phase, condition=condition, references=refs,
            queries=Queries(**{max_pos: max_key, min_pos: min_key}),
            feedback=Feedback(correct=max_pos) if phase == "practice" else None,
        ))
        sample.max_position[trial_id] = max_pos
        if is_catch:
            sample.catch_ids.add(trial_id)
    sample.task = PublicTask(task_id="t0007", study="pagetest", trials=trials)
    return sample


def designed_sample(folder: Path, **study_options) -> tuple[SampleTask, StudyConfig]:
    """The first task of a real `crowdkit.design` design over a generated study."""
    from crowdkit.design import design_for
    from crowdkit.study import load_study
    from tests.factories import make_study

    study = load_study(make_study(folder, **study_options))
    design = design_for(study)
    designed = design.tasks[0]
    sample = SampleTask(task=designed.public, images=design.images)
    for key in designed.key.trials:
        sample.max_position[key.trial_id] = key.max_position
        if key.phase == "catch":
            sample.catch_ids.add(key.trial_id)
    return sample, study.config


def launch_chromium(playwright):
    """Debian's Chromium, headless, with nothing phoning home."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def screenshot_trial(out: Path, *, width: int = 1280, height: int = 800) -> None:
    """Save a screenshot of the first main trial of a sample task (docs/trial.png)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from crowdkit.preview import PreviewServer

    with tempfile.TemporaryDirectory() as folder:
        sample = build_sample_task(Path(folder), practice=0, blocks=(("natural", 3),),
                                   catch_positions=(), image_size=128, seed=3)
        config = study_config(page="inter_trial_ms = 0")
        with PreviewServer(sample.task, config, sample.images) as server, \
                sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(server.worker_url)
            page.click("#start")
            page.click("#message-continue")
            page.wait_for_selector("#stage.ready")
            page.screenshot(path=str(out))
            browser.close()


if __name__ == "__main__":
    import sys

    screenshot_trial(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/trial.png"))
