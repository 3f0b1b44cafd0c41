"""Errors a user can cause and fix. The CLI prints them as one line, never as a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CrowdkitError(Exception):
    """A problem the user can fix: bad input, a missing file, a refused action.

    `exit_code` is what the CLI exits with; `lines` are printed one per line (a malformed
    study.toml has one line per problem).
    """

    exit_code = 1

    def __init__(self, message: str, *, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or [message]


class ConfigError(CrowdkitError):
    """study.toml, a manifest or another input file is malformed."""

    exit_code = 2


class LedgerBusy(CrowdkitError):
    """Another crowdkit process holds the study's write lock."""

    exit_code = 3


class Incomplete(CrowdkitError):
    """Some calls still failed after their retries: what was done is recorded, and running
    the command again does the rest. Exits non-zero so a script knows."""

    exit_code = 4


class NotConfirmed(CrowdkitError):
    """The user answered no (or nothing) to a confirmation: nothing was done."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """" (did you mean 'sandbox'?)" for the choice closest to a mistyped `value`, else ""."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
