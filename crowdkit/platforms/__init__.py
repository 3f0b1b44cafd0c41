"""Crowd platforms: where a study's tasks are posted and its answers come from.

`crowdkit.platforms.base` says what a study needs from a crowd (the `Platform` protocol and
its error types); each platform is a module of its own, listed in `PLATFORMS` by import
path and loaded on first use by `crowdkit.platforms.connect.open_platform`: MTurk
(`crowdkit.platforms.mturk`) is the first, with the local twin `crowdkit.localturk`. A
second platform is one new module, its local twin and one line here; publish, collect,
review and status do not change.
"""

from __future__ import annotations

PLATFORMS = {
    "mturk": "crowdkit.platforms.mturk:MTurk",
}


def names() -> list[str]:
    return list(PLATFORMS)
