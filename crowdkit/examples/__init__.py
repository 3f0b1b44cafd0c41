"""Example studies that `crowdkit init --example NAME` copies into a new study directory.

An example must run as it is: the quickstart's [stimuli] dataset is `images/`, so init
writes sample photographs there (crops of the two photographs scikit-learn ships, no
download) and `crowdkit stimuli` works on a fresh study without another step.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from crowdkit.errors import CrowdkitError, did_you_mean
from crowdkit.files import write_atomically
from crowdkit.study import STUDY_FILE, parse_study_toml

EXAMPLES = ("quickstart", "iclr2021-exp1", "iclr2021-exp1-lab")
# Examples whose dataset init writes: how many sample photographs, in which folder.
SAMPLE_IMAGES = {"quickstart": ("images", 60)}


@dataclass(frozen=True)
class InitResult:
    """What `crowdkit init` wrote: the study.toml and, for some examples, sample images."""

    study_toml: Path
    sample_dir: Path | None = None
    sample_images: int = 0

    def summary_lines(self) -> list[str]:
        lines = [f"wrote {self.study_toml}"]
        if self.sample_dir is not None:
            lines.append(f"wrote {self.sample_images} sample photographs to {self.sample_dir} "
                         "(crops of scikit-learn's two sample photographs: enough to try "
                         "crowdkit out; point [stimuli] dataset at your own images for a study)")
        directory = self.study_toml.parent
        lines.append(f"next: `crowdkit stimuli {directory}`, then `crowdkit publish "
                     f"{directory} --target local` (and `crowdkit serve` to take the HITs "
                     "in a browser)")
        return lines


def example_toml(name: str) -> str:
    """The commented study.toml of an example."""
    if name not in EXAMPLES:
        raise CrowdkitError(f"unknown example {name!r}{did_you_mean(name, EXAMPLES)}; choose "
                            f"one of: {', '.join(EXAMPLES)}")
    return resources.files("crowdkit.examples").joinpath(name, STUDY_FILE).read_text("utf-8")


def create_study(directory: Path, example: str = "quickstart", *,
                 name: str | None = None) -> InitResult:
    """Write DIR/study.toml from an example, and the example's sample images if it has any.

    Refuses to overwrite an existing study.toml. Sample images go only into a folder that
    is missing or empty: a researcher's own images are never touched.
    """
    path = init_study(directory, example, name=name)
    if example not in SAMPLE_IMAGES:
        return InitResult(path)
    folder_name, count = SAMPLE_IMAGES[example]
    folder = directory / folder_name
    if folder.is_dir() and any(folder.iterdir()):
        return InitResult(path)
    from stimgen.sample_data import write_sample_images  # numpy and PIL, only here

    seed = parse_study_toml(path.read_text(encoding="utf-8"), str(path)).study.seed
    written = write_sample_images(folder, count, seed=seed)
    return InitResult(path, folder, len(written))


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
