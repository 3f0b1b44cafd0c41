"""How long-running library work reports progress without printing anything.

Library functions never print and never draw progress bars. A function that takes long
accepts a `progress: Progress` argument and wraps each stretch of work in it:

    with progress("uploading images", total=len(images)) as advance:
        for image in images:
            upload(image)
            advance(1)

The caller decides what that looks like: the CLI (crowdkit.cli.render) draws a rich bar on a
terminal and writes plain "done / total, time left" lines when output goes to a log; tests
and library users pass nothing and get `silent`, or `logged` for lines through `logging`.
Everything else a module has to say goes through `logging.getLogger(__name__)` or its
return value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    """A factory of progress contexts: `with progress(description, total) as advance`."""

    def __call__(self, description: str, total: int) -> AbstractContextManager[Advance]: ...


@contextmanager
def silent(description: str, total: int) -> Iterator[Advance]:
    """Progress that shows nothing: the default of every library function."""
    yield lambda n: None


class Logged:
    """Progress as plain log lines: the first, then at most one per `every_s` seconds, and
    the last.

    Each line reads "uploading images: 40/100, 0:12 left", which is what a batch job's log
    needs when no terminal draws a bar; the first ("scanning 5 units: 0/50000") says a
    stretch began, so a log shows what a job is doing before the first ten seconds pass.
    """

    def __init__(self, logger: logging.Logger | None = None, every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger or logging.getLogger("crowdkit.progress")
        self.every_s = every_s
        self.clock = clock

    @contextmanager
    def __call__(self, description: str, total: int) -> Iterator[Advance]:
        started = last = self.clock()
        done = 0
        if total > 0:
            self.logger.info(progress_line(description, 0, total, 0.0))

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = self.clock()
            if now - last >= self.every_s or done >= total:
                last = now
                self.logger.info(progress_line(description, done, total, now - started))

        yield advance


def logged(description: str, total: int) -> AbstractContextManager[Advance]:
    """Progress through the `crowdkit.progress` logger, a line every ten seconds."""
    return Logged()(description, total)


def progress_line(description: str, done: int, total: int, elapsed_s: float) -> str:
    """"description: done/total, m:ss left" (time left from the rate so far)."""
    text = f"{description}: {done}/{total}"
    if 0 < done < total and elapsed_s > 0:
        left = elapsed_s / done * (total - done)
        text += f", {format_clock(left)} left"
    elif done >= total:
        text += f", done in {format_clock(elapsed_s)}"
    return text


def format_clock(seconds: float) -> str:
    """Seconds as h:mm:ss or m:ss."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
