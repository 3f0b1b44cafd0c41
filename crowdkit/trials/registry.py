"""The registry of trial types: name -> TrialType.

Built-in types are listed by import path and loaded on first use, so importing the
registry stays light and no trial type module has to import it back. A trial type from
elsewhere registers an instance with `register`.
"""

from __future__ import annotations

import importlib

from crowdkit.errors import ConfigError
from crowdkit.trials.base import DEFAULT_TYPE, TrialType

BUILTIN = {
    "2afc": "crowdkit.trials.twoafc:TwoAFC",
    "rating": "crowdkit.trials.rating:Rating",
}
_LOADED: dict[str, TrialType] = {}


def register(trial_type: TrialType) -> TrialType:
    """Make a trial type known by its `name` (a later registration of a name wins)."""
    _LOADED[trial_type.name] = trial_type
    return trial_type


def get(name: str = DEFAULT_TYPE) -> TrialType:
    """The trial type called `name`, loading a built-in one on first use."""
    if name in _LOADED:
        return _LOADED[name]
    if name not in BUILTIN:
        raise ConfigError(f"unknown trial type {name!r}; known: {', '.join(names())}")
    module_name, _, class_name = BUILTIN[name].partition(":")
    trial_type = getattr(importlib.import_module(module_name), class_name)()
    return register(trial_type)


def names() -> list[str]:
    return list(dict.fromkeys([*BUILTIN, *_LOADED]))
