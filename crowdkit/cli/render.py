"""How the command line shows what the library reports: progress, lines, questions.

The library never prints (crowdkit.progress). Here is where its reports become output:

- progress: a rich bar on a terminal; on a pipe or in a batch job's log, a plain line such
  as "uploading images: 40/100, 0:12 left" every ten seconds and at the end;
- results and plans: lines on standard output; warnings as "warning: ..." on standard error;
- the `crowdkit` logger (what long-running library code such as the demo says as it goes):
  its INFO lines on standard output, its warnings on standard error;
- questions: "y/N" prompts, where end of input and "n" both mean no, and a no ends the
  command the same way everywhere (`confirm`: "not confirmed; nothing was ...", exit 1).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

from crowdkit.errors import NotConfirmed
from crowdkit.progress import Advance, Logged, Progress

if TYPE_CHECKING:  # rich's console is imported when something is shown
    from rich.console import RenderableType

    from stimgen.job import StimuliPlan


def echo(line: str = "") -> None:
    typer.echo(line)


def lines(texts: Iterable[str]) -> None:
    for text in texts:
        typer.echo(text)


def aside(text: str) -> None:
    """A remark beside the results (standard error), so `--json` output stays one object."""
    typer.echo(text, err=True)


def warn(text: str) -> None:
    typer.echo(f"warning: {text}", err=True)


def warnings(texts: Iterable[str]) -> None:
    for text in texts:
        warn(text)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def show(renderable: RenderableType) -> None:
    """A rich renderable (a table, a group) on standard output."""
    from rich.console import Console

    Console(soft_wrap=True).print(renderable)


def ask(question: str) -> bool:
    """A yes/no question whose default, and whose answer at end of input, is no."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:  # end of input: the answer is no
        typer.echo("", err=True)
        return False


def confirm(question: str, nothing_done: str) -> bool:
    """Ask; on no, stop the command the same way in every command.

    A refusal raises NotConfirmed ("not confirmed; nothing was published ..."), which the
    CLI prints without "error:" and exits 1 with: publish, review and expire all end alike.
    """
    if ask(question):
        return True
    raise NotConfirmed(f"not confirmed; {nothing_done} (pass --yes to skip the question)")


def stimuli_plan(plan: StimuliPlan) -> None:
    """What `crowdkit stimuli` is about to do, before it starts; warnings first."""
    warnings(plan.warnings)
    lines(plan.lines())


def interrupted(kept: list[str], again: str) -> NoReturn:
    """Ctrl-C in a long command: what is kept, how to go on, and exit status 130."""
    typer.echo(f"interrupted; kept: {'; '.join(kept)}", err=True)
    typer.echo(f"run `{again}` again to continue where it stopped", err=True)
    raise typer.Exit(130)


class _PlainLines(logging.Handler):
    """INFO lines as they are on stdout; warnings and errors prefixed on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not stop a command
            text = str(record.msg)
        if record.levelno >= logging.WARNING:
            typer.echo(f"warning: {text}", err=True)
        else:
            typer.echo(text)


def configure_logging(verbose: bool = False) -> None:
    """Show the `crowdkit` logger's INFO (DEBUG with `verbose`) lines, once."""
    logger = logging.getLogger("crowdkit")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, _PlainLines) for h in logger.handlers):
        logger.addHandler(_PlainLines())
    logger.propagate = False


def progress(enabled: bool = True) -> Progress:
    """The Progress the library gets: bars on a terminal, plain lines in a log, or none."""
    if not enabled:
        from crowdkit.progress import silent

        return silent
    if is_terminal():
        return _bar
    logger = logging.getLogger("crowdkit.progress")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _PlainLines) for h in logger.handlers):
        logger.addHandler(_PlainLines())
    logger.propagate = False  # shown once, whether or not configure_logging ran
    return Logged(logger)


@contextmanager
def _bar(description: str, total: int) -> Iterator[Advance]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=total == 0) as bars:
        task = bars.add_task(description, total=total)
        yield lambda n: bars.advance(task, n)
