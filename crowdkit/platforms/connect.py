"""Opening a study's crowd platform at a target."""

from __future__ import annotations

import importlib
from typing import Any

from crowdkit.errors import ConfigError
from crowdkit.platforms import PLATFORMS
from crowdkit.platforms.base import Platform
from crowdkit.study import Study


def open_platform(study: Study, target: str | None = None, *,
                  client: Any = None) -> Platform:  # client: whatever the platform's SDK makes
    """The study's crowd platform at `target` (default: the study's configured target).

    `client` passes in an already made client of the platform's SDK (tests and the demo
    pass one for an in-process local twin). Nothing is contacted until the first call.
    """
    name = study.config.study.platform
    if name not in PLATFORMS:
        raise ConfigError(f"[study] platform: unknown platform {name!r}; known: "
                          f"{', '.join(PLATFORMS)}")
    module_name, _, class_name = PLATFORMS[name].partition(":")
    factory = getattr(importlib.import_module(module_name), class_name)
    platform: Platform = factory(study.config, target or study.config.mturk.target,
                                 client=client)
    return platform
