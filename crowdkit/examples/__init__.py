"""Example studies that `crowdkit init --example NAME` copies into a new study directory."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from crowdkit.errors import CrowdkitError
from crowdkit.files import write_atomically
from crowdkit.study import STUDY_FILE, parse_study_toml

EXAMPLES = ("quickstart", "iclr2021-exp1")


def example_toml(name: str) -> str:
    """The commented study.toml of an example."""
    if name not in EXAMPLES:
        raise CrowdkitError(f"unknown example {name!r}; choose one of: {', '.join(EXAMPLES)}")
    return resources.files("crowdkit.examples").joinpath(name, STUDY_FILE).read_text("utf-8")


def init_study(directory: Path, example: str = "quickstart", *, name: str | None = None) -> Path:
    """Write DIR/study.toml from an example. Refuses to overwrite an existing study.toml."""
    text = example_toml(example)
    if name is not None:
        text = text.replace(f'name = "{example}"', f'name = "{name}"', 1)
    parse_study_toml(text, f"example {example}")  # an example must always be valid
    path = directory / STUDY_FILE
    if path.exists():
        raise CrowdkitError(f"{path} already exists; not overwriting it")
    if directory.exists() and not directory.is_dir():
        raise CrowdkitError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
    return path
