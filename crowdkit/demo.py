"""`crowdkit demo`: the whole loop, offline, on a CPU, in a few minutes.

Init -> sample images -> stimuli -> local MTurk in-process -> publish -> simulated
participants -> collect -> review -> analyze. Every step is the same library call the
individual commands make; the demo only wires them to an in-process local service.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from crowdkit.errors import CrowdkitError
from crowdkit.study import STUDY_FILE, Study, load_study

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
    summary: list[dict] = field(default_factory=list)


def run_demo(
    directory: Path,
    *,
    participants: int = 8,
    small: bool = False,
    port: int | None = None,
    serve: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    wait_forever: Callable[[], None] | None = None,
) -> DemoResult:
    """Run the whole loop in `directory` (created from examples/quickstart if needed).

    Re-running continues: stimuli, HITs and answers that exist are reused, never duplicated.
    `port` defaults to the port of `[mturk] local_endpoint` (8765), so that a later
    `crowdkit serve` with the demo's database serves the same HITs with working images.
    """
    started = time.monotonic()
    result = DemoResult(study_dir=directory)
    study = _study(directory, small, echo)
    _sample_images(study, echo)
    _stimuli(study, result, progress, echo)

    from crowdkit.localturk import LocalTurk

    port = _port(study) if port is None else port
    with LocalTurk(directory / LOCALTURK_DB, port=port,
                   files_dir=directory / LOCALTURK_FILES) as turk:
        echo(f"[4/8] local MTurk service running at {turk.base_url} (in-process)")
        client = turk.boto3_client()
        _publish(study, turk, client, result, progress, echo)
        _simulate(study, turk, participants, echo)
        _collect_and_review(study, client, echo)
        _analyze(study, result, echo)
        result.worker_url = turk.worker_url
        _closing_lines(result, serve, round(time.monotonic() - started), echo)
        if serve:
            (wait_forever or _wait_for_interrupt)()
    return result


def _study(directory: Path, small: bool, echo: Callable[[str], None]) -> Study:
    from crowdkit.examples import init_study

    if (directory / STUDY_FILE).exists():
        echo(f"[1/8] using the study in {directory} (delete the directory to start afresh)")
    else:
        path = init_study(directory, "quickstart")
        if small:
            path.write_text(shrink(path.read_text(encoding="utf-8")), encoding="utf-8")
        echo(f"[1/8] created {path} from examples/quickstart" + (" (small)" if small else ""))
    return load_study(directory)


def shrink(toml_text: str) -> str:
    """The quickstart at `--small` size: fewer units, steps and trials."""
    for old, new in SMALL_OVERRIDES:
        if old not in toml_text:
            raise RuntimeError(f"examples/quickstart/study.toml no longer has {old!r}")
        toml_text = toml_text.replace(old, new, 1)
    return toml_text


def _sample_images(study: Study, echo: Callable[[str], None]) -> None:
    """A small natural-image set that needs no download: crops of scikit-learn's photos."""
    dataset = study.config.stimuli.dataset
    if dataset is None:
        raise CrowdkitError(f"{study.toml_path}: [stimuli] dataset is not set")
    folder = study.root / dataset
    if folder.is_dir() and any(folder.iterdir()):
        echo(f"[2/8] natural images: using {folder}")
        return
    from stimgen.sample_data import write_sample_images

    write_sample_images(folder, SAMPLE_IMAGES, seed=study.config.study.seed)
    echo(f"[2/8] natural images: wrote {SAMPLE_IMAGES} crops of the photographs scikit-learn "
         f"ships to {folder}")


def _stimuli(study: Study, result: DemoResult, progress: bool,
             echo: Callable[[str], None]) -> None:
    from stimgen import render_study_stimuli

    echo("[3/8] rendering stimuli (natural exemplars and feature visualizations) ...")
    rendered = render_study_stimuli(study, progress=progress)
    _indented(echo)("\n".join(rendered.summary_lines()))
    result.random_weights = rendered.manifest.model.random_weights


def _publish(study: Study, turk, client, result: DemoResult, progress: bool,
             echo: Callable[[str], None]) -> None:
    from crowdkit.publish import publish
    from crowdkit.store import LocalStore

    echo("[5/8] publishing HITs to the local service ...")
    published = publish(study, target="local", yes=True, client=client,
                        store=LocalStore(turk.files_dir, turk.base_url),
                        echo=_indented(echo), show_progress=progress)
    result.hits = published.hits_total


def _simulate(study: Study, turk, participants: int, echo: Callable[[str], None]) -> None:
    from crowdkit.simulate import SimulationSettings, simulate

    careless = 1 if participants >= 4 else 0
    echo(f"[6/8] {participants} simulated participants take the HITs over HTTP "
         f"({careless} careless) ...")
    settings = SimulationSettings(participants=participants, careless=careless, fraudulent=0,
                                  seed=study.config.study.seed)
    _indented(echo)(simulate(study, settings, endpoint=turk.base_url).summary())


def _collect_and_review(study: Study, client, echo: Callable[[str], None]) -> None:
    from crowdkit.collect import collect
    from crowdkit.review import review

    echo("[7/8] collecting answers, applying the quality rules, reviewing ...")
    quiet = _indented(echo)
    # review follows at once (and warns itself), so collect's reminder would be noise
    collected = collect(study, lambda target: client, echo=quiet, warn_auto_approval=False)
    quiet(collected.summary())
    reviewed = review(study, lambda target: client, echo=quiet)
    if reviewed is not None:
        quiet(reviewed.summary())


def _analyze(study: Study, result: DemoResult, echo: Callable[[str], None]) -> None:
    from crowdkit import analysis

    echo("[8/8] analysing ...")
    analysed = analysis.analyze_file(study.root)
    result.report_html = analysis.write_report(analysed, study.report_dir)
    from rich.console import Console
    Console(soft_wrap=True).print(analysis.terminal_output(analysed, result.report_html))
    result.summary = analysed.to_json(result.report_html)["summary"]


def _closing_lines(result: DemoResult, serve: bool, seconds: int,
                   echo: Callable[[str], None]) -> None:
    echo(f"the whole loop took {seconds} s")
    if result.random_weights:
        echo("note: the stimuli come from a network with RANDOM weights (no download); the "
             "numbers show the machinery works, not what people see in a trained network")
    if serve:
        echo(f"take a HIT yourself: {result.worker_url}  (Ctrl-C stops the service)")
    else:
        db = result.study_dir / LOCALTURK_DB
        files = result.study_dir / LOCALTURK_FILES
        echo(f"take a HIT yourself: run `crowdkit demo {result.study_dir} --serve` (or "
             f"`crowdkit serve --db {db} --files-dir {files}`) and open {result.worker_url}")


def _indented(echo: Callable[[str], None]) -> Callable[[str], None]:
    """Indent every line a step prints, so the demo's own step lines stand out."""
    return lambda text: echo(textwrap.indent(str(text).strip("\n"), "      "))


def _port(study: Study) -> int:
    parsed = urlparse(study.config.mturk.local_endpoint)
    return parsed.port or 8765


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
