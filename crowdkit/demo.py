"""`crowdkit demo`: the whole loop, offline, on a CPU, in a few minutes.

Init -> sample images -> stimuli -> local MTurk in-process -> publish -> the machine
observer (`crowdkit mis`) -> simulated participants answering with its probabilities ->
collect -> review -> analyze (human against machine included). Every step is the same
library call the individual commands make; the demo only wires them to an in-process local
service. It says what it does step by step through the `crowdkit.demo` logger (the CLI shows
those lines).
"""

from __future__ import annotations

import logging
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from crowdkit.errors import CrowdkitError
from crowdkit.progress import Progress, silent
from crowdkit.study import STUDY_FILE, Study, load_study
from crowdkit.units import plural

if TYPE_CHECKING:  # each step imports what it runs, when it runs
    from crowdkit.localturk import LocalTurk
    from crowdkit.platforms.base import Platform
    from crowdkit.review import ReviewPlan

LOG = logging.getLogger(__name__)

SAMPLE_IMAGES = 60

# `--small`: the same loop at a size that runs in well under a minute (for tests and CI).
# Each (old, new) line must be in examples/quickstart/study.toml; a mismatch is an error.
SMALL_OVERRIDES = [
    ('units = ["3a:70", "3a:130", "3b:200", "3b:300", "4a:257"]',
     'units = ["3a:70", "3a:130", "3b:200"]'),
    ("steps = 24", "steps = 3"),
    ("image_size = 96", "image_size = 48"),
    ("trials_per_task = 8", "trials_per_task = 4"),
]
LOCALTURK_DB = "localturk.db"
LOCALTURK_FILES = "localturk-files"


@dataclass
class DemoResult:
    study_dir: Path
    report_html: Path | None = None
    worker_url: str = ""
    hits: int = 0
    random_weights: bool = True
    summary: list[dict[str, Any]] = field(default_factory=list)  # the analysis' JSON rows


def run_demo(
    directory: Path,
    *,
    participants: int = 8,
    small: bool = False,
    port: int | None = None,
    serve: bool = False,
    progress: Progress = silent,
    wait_forever: Callable[[], None] | None = None,
) -> DemoResult:
    """Run the whole loop in `directory` (created from examples/quickstart if needed).

    Re-running continues: stimuli, HITs and answers that exist are reused, never duplicated.
    `port` defaults to the port of `[mturk] local_endpoint` (8765), so that a later
    `crowdkit serve` with the demo's database serves the same HITs with working images.
    """
    from crowdkit.localturk import LocalTurk
    from crowdkit.platforms.connect import open_platform

    started = time.monotonic()
    result = DemoResult(study_dir=directory)
    study = _study(directory, small)
    _stimuli(study, result, progress)

    port = _port(study) if port is None else port
    with LocalTurk(directory / LOCALTURK_DB, port=port,
                   files_dir=directory / LOCALTURK_FILES) as turk:
        LOG.info("[4/8] local MTurk service running at %s (in-process)", turk.base_url)
        platform = open_platform(study, "local", client=turk.boto3_client())
        _publish(study, turk, platform, result, progress)
        _simulate(study, turk, participants, progress)
        _collect_and_review(study, platform)
        _analyze(study, result)
        result.worker_url = turk.worker_url
        _closing_lines(result, serve, round(time.monotonic() - started))
        if serve:
            (wait_forever or _wait_for_interrupt)()
    return result


def _study(directory: Path, small: bool) -> Study:
    """The demo's study: created from the quickstart (sample images included) if needed."""
    from crowdkit.examples import create_study

    if (directory / STUDY_FILE).exists():
        LOG.info("[1/8] using the study in %s (delete the directory to start afresh)",
                 directory)
        study = load_study(directory)
        _sample_images(study)
        return study
    created = create_study(directory, "quickstart")
    path = created.study_toml
    if small:
        path.write_text(shrink(path.read_text(encoding="utf-8")), encoding="utf-8")
    LOG.info("[1/8] created %s from examples/quickstart%s", path, " (small)" if small else "")
    study = load_study(directory)
    if created.sample_dir is None:
        _sample_images(study)
    else:
        LOG.info("[2/8] natural images: wrote %d crops of the photographs scikit-learn ships "
                 "to %s", created.sample_images, created.sample_dir)
    return study


def shrink(toml_text: str) -> str:
    """The quickstart at `--small` size: fewer units, steps and trials."""
    for old, new in SMALL_OVERRIDES:
        if old not in toml_text:
            raise RuntimeError(f"examples/quickstart/study.toml no longer has {old!r}")
        toml_text = toml_text.replace(old, new, 1)
    return toml_text


def _sample_images(study: Study) -> None:
    """A small natural-image set that needs no download: crops of scikit-learn's photos."""
    dataset = study.config.stimuli.dataset
    if dataset is None:
        raise CrowdkitError(f"{study.toml_path}: [stimuli] dataset is not set")
    folder = study.root / dataset
    if folder.is_dir() and any(folder.iterdir()):
        LOG.info("[2/8] natural images: using %s", folder)
        return
    from stimgen.sample_data import write_sample_images

    write_sample_images(folder, SAMPLE_IMAGES, seed=study.config.study.seed)
    LOG.info("[2/8] natural images: wrote %d crops of the photographs scikit-learn ships "
             "to %s", SAMPLE_IMAGES, folder)


def _stimuli(study: Study, result: DemoResult, progress: Progress) -> None:
    from crowdkit.stimuli import render_study_stimuli

    LOG.info("[3/8] rendering stimuli (natural exemplars and feature visualizations) ...")
    rendered = render_study_stimuli(study, progress=progress)
    _details("\n".join(rendered.summary_lines()))
    result.random_weights = rendered.manifest.model.random_weights


def _publish(study: Study, turk: LocalTurk, platform: Platform, result: DemoResult,
             progress: Progress) -> None:
    from crowdkit.publish import publish
    from crowdkit.store import LocalStore

    LOG.info("[5/8] publishing HITs to the local service ...")
    published = publish(study, platform, yes=True, progress=progress,
                        store=LocalStore(turk.files_dir, turk.base_url), on_plan=_details_lines)
    _details_lines(published.notes)
    _details(published.summary())
    result.hits = published.hits_total


def _simulate(study: Study, turk: LocalTurk, participants: int, progress: Progress) -> None:
    from crowdkit.observers.run import run_mis
    from crowdkit.simulate import SimulationSettings, simulate

    careless = 1 if participants >= 4 else 0
    LOG.info("[6/8] the machine observer answers the designed trials (`crowdkit mis`); %s "
             "take the HITs over HTTP with its probabilities (%d careless) ...",
             plural(participants, "simulated participant"), careless)
    scored = run_mis(study, progress=progress)
    for note in scored.notes:
        LOG.warning("note: %s", note)
    _details_lines(scored.summary_lines())
    settings = SimulationSettings(participants=participants, careless=careless, fraudulent=0,
                                  seed=study.config.study.seed)
    _details(simulate(study, settings, endpoint=turk.base_url, progress=progress,
                      observer="mis").summary())


def _collect_and_review(study: Study, platform: Platform) -> None:
    from crowdkit.collect import collect
    from crowdkit.review import review

    LOG.info("[7/8] collecting answers, applying the quality rules, reviewing ...")
    # review follows at once (and warns itself), so collect's reminder would be noise
    collected = collect(study, platform, warn_auto_approval=False)
    for line in collected.warnings:
        LOG.warning(line)
    _details(collected.summary())
    def show_plan(plan: ReviewPlan) -> None:
        for line in plan.warnings:
            LOG.warning(line)
        _details(plan.describe())

    reviewed = review(study, platform, on_plan=show_plan)
    if reviewed is not None:
        _details(reviewed.summary())


def _analyze(study: Study, result: DemoResult) -> None:
    from crowdkit import analysis

    LOG.info("[8/8] analysing ...")
    analysed = analysis.analyze_file(study.root)
    result.report_html = analysis.write_report(analysed, study.report_dir)
    LOG.info("%s", analysis.terminal_text(analysed, result.report_html))
    result.summary = analysed.to_json(result.report_html)["summary"]


def _closing_lines(result: DemoResult, serve: bool, seconds: int) -> None:
    LOG.info("the whole loop took %d s", seconds)
    if result.random_weights:
        LOG.info("note: the stimuli come from a network with RANDOM weights (no download); "
                 "the numbers show the machinery works, not what people see in a trained "
                 "network")
    if serve:
        LOG.info("take a HIT yourself: %s  (Ctrl-C stops the service)", result.worker_url)
    else:
        db = result.study_dir / LOCALTURK_DB
        files = result.study_dir / LOCALTURK_FILES
        port = urlparse(result.worker_url).port
        LOG.info("take a HIT yourself: run `crowdkit demo %s --serve --port %s` (or `crowdkit "
                 "serve --port %s --db %s --files-dir %s`) and open %s", result.study_dir, port,
                 port, db, files, result.worker_url)


def _details(text: str) -> None:
    """A step's own report, indented so the demo's step lines stand out."""
    LOG.info("%s", textwrap.indent(str(text).strip("\n"), "      "))


def _details_lines(lines: list[str]) -> None:
    if lines:
        _details("\n".join(lines))


def _port(study: Study) -> int:
    parsed = urlparse(study.config.mturk.local_endpoint)
    return parsed.port or 8765


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
