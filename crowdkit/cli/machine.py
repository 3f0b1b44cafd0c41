"""The commands about machine observers and planning: `crowdkit mis` and `crowdkit power`.

Kept apart from crowdkit.cli so that module stays readable; crowdkit.cli registers them on
its app. Like every command they load study.toml first, call one library function and
render what it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crowdkit.cli import render

DirArgument = Annotated[Path, typer.Argument(help="The study directory (holds study.toml).")]


def mis(
    directory: DirArgument = Path("."),
    all_units: Annotated[int, typer.Option(
        "--all-units", help="Also score every unit of the manifest on N tasks per condition "
                            "drawn the MIS paper's way (0: the designed tasks only).",
        min=0)] = 0,
    device: Annotated[str | None, typer.Option(
        help="auto, cpu, cuda or cuda:N (default: [mis] device, auto).")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Embed on a Ray cluster: local or its address (default: [compute] "
                      "ray; unset: in this process).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """The machine observer (MIS) answers the designed trials: data/machine_trials.parquet
    and data/mis.csv."""
    from crowdkit.observers.run import run_mis
    from crowdkit.study import load_study

    result = run_mis(load_study(directory), all_units=all_units, device=device, ray=ray,
                     progress=render.progress(progress))
    render.warnings(result.notes)
    render.lines(result.summary_lines())


def power(
    directory: DirArgument = Path("."),
    half_width: Annotated[float, typer.Option(
        help="The 95 % CI half-width wanted per condition.", min=0.001, max=0.5)] = 0.05,
    difference: Annotated[float, typer.Option(
        help="The difference between conditions to detect (80 % power, alpha 0.05).",
        min=0.001, max=1)] = 0.10,
    source: Annotated[str, typer.Option(
        help="pilot (the study's human data), machine (data/machine_trials.parquet) or "
             "auto (pilot where there is any).")] = "auto",
    target: Annotated[str | None, typer.Option(
        "--target", help="Whose pilot data: local, sandbox or live (default: [mturk] "
                         "target).")] = None,
) -> None:
    """Participants needed per condition: for a CI half-width, and to detect a difference
    between conditions with 80 % power, by the study's design."""
    from crowdkit.power import study_power
    from crowdkit.study import load_study

    result = study_power(load_study(directory), half_width=half_width,
                         difference=difference, source=source, target=target)
    render.warnings(result.notes)
    render.lines(result.lines())
