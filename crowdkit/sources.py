"""Reference sources: what a trial shows beside the queries, one registry for every stage.

A *condition* of a study is the name of a reference source. The paper's three are built in:

- `natural`: the batch's natural exemplars (max ranks 0-8, min ranks 1-9 of the batch);
- `synthetic`: the unit's feature visualizations (`unit.synthetic` in the manifest);
- `none`: no references at all, only the two queries (the paper's baseline); `none_pre`
  and `none_post` are the same, shown in blocks before and after the others (the lab
  design's `[design] baseline`, named as in the paper's published data).

Images that any other explanation method produced come in through the manifest: a unit's
`references` maps a method's name to its images (same shape as `synthetic`), and the
manifest's `methods` may describe it. Such a method is a condition like the others, with no
code: `sources_for(manifest)` registers an `ImageSetSource` for every method the manifest
names. A source that needs code of its own (another way to pick images, say) subclasses
`ReferenceSource` and calls `register`.

design asks a source which images to show, analysis and reports ask it for a label, an
order and a colour, simulate for a plausible accuracy, and the CLI for the list of names;
no module lists the conditions by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crowdkit.errors import ConfigError

if TYPE_CHECKING:
    from crowdkit.manifest import ExemplarBatch, ImageRef, ImageSet, Manifest, MethodInfo, Unit

MIN_MAX = "min+max"
STRONGEST = "strongest"  # image sets: the n most extreme images of each side
FIXED = "fixed"  # image sets: the ranks a natural batch shows (max 0-8, min 1-9), as the paper
SELECTIONS = (STRONGEST, FIXED)


@dataclass(frozen=True)
class ReferenceSource:
    """One kind of reference image a trial can show (a condition).

    `simulated_accuracy` is what a simulated participant gets right by default;
    `color` is the condition's colour in every figure (None: one of a fixed palette).
    """

    name: str
    label: str
    color: str | None = None
    simulated_accuracy: float = 0.75
    shows_references: bool = True

    def references(self, unit: Unit, batch: ExemplarBatch, n: int, mode: str,
                   selection: str = STRONGEST) -> tuple[list[ImageRef], list[ImageRef]]:
        """(max-side, min-side) references of one trial, each in ascending activation.

        `selection` says which images of a larger set to show ([design] image_selection);
        sources that have no choice to make ignore it."""
        raise NotImplementedError

    def problem(self, unit: Unit, n: int, mode: str, selection: str = STRONGEST
                ) -> str | None:
        """Why this unit cannot show `n` references of this source, or None when it can."""
        return None


def fixed_positions(max_side: Sequence[ImageRef], min_side: Sequence[ImageRef], n: int,
                    mode: str) -> tuple[list[ImageRef], list[ImageRef]]:
    """Max ranks 0..8 and min ranks 1..9 of two ascending lists of 10: the positions beside
    a batch's queries (max rank 9, min rank 0). With n < 9 the ones nearest the extreme."""
    max_refs = list(max_side[-1 - n:-1])
    min_refs = list(min_side[1:1 + n]) if mode == MIN_MAX else []
    return max_refs, min_refs


class NaturalSource(ReferenceSource):
    """The batch's own exemplars beside its queries: max ranks 0..8, min ranks 1..9.

    With fewer than 9 references the ones nearest the query's extreme are kept.
    """

    def references(self, unit: Unit, batch: ExemplarBatch, n: int, mode: str,
                   selection: str = STRONGEST) -> tuple[list[ImageRef], list[ImageRef]]:
        return fixed_positions(batch.max, batch.min, n, mode)


class NoReferences(ReferenceSource):
    """Queries only: how well people do without any explanation."""

    def references(self, unit: Unit, batch: ExemplarBatch, n: int, mode: str,
                   selection: str = STRONGEST) -> tuple[list[ImageRef], list[ImageRef]]:
        return [], []


@dataclass(frozen=True)
class ImageSetSource(ReferenceSource):
    """Images an explanation method made per unit, listed in the manifest.

    `field` "synthetic" reads `unit.synthetic` (the feature visualizations stimgen renders);
    any other name reads `unit.references[name]`. Each side lists its images in ascending
    activation. `selection` "strongest" shows the n most extreme (the last n max and the
    first n min images); "fixed" shows the positions a natural batch shows beside its
    queries, max ranks 0-8 and min ranks 1-9 of the 10 images the paper's authors rendered
    per side (their display code treated both kinds of images alike), and needs n + 1.
    """

    field: str = ""

    def image_set(self, unit: Unit) -> ImageSet | None:
        key = self.field or self.name
        if key == "synthetic":
            return unit.synthetic
        return unit.references.get(key)

    def references(self, unit: Unit, batch: ExemplarBatch, n: int, mode: str,
                   selection: str = STRONGEST) -> tuple[list[ImageRef], list[ImageRef]]:
        images = self.image_set(unit)
        if images is None:
            raise ConfigError(f"manifest: unit {unit.id} has no {self.name} images")
        if selection == FIXED:
            return fixed_positions(images.max, images.min, n, mode)
        min_refs = list(images.min[:n]) if mode == MIN_MAX else []
        return list(images.max[-n:]), min_refs

    def problem(self, unit: Unit, n: int, mode: str, selection: str = STRONGEST
                ) -> str | None:
        images = self.image_set(unit)
        need = n + 1 if selection == FIXED else n
        need_min = need if mode == MIN_MAX else 0
        if images is None or len(images.max) < need or len(images.min) < need_min:
            needs = f"{need} max" + (f" and {need} min" if need_min else "")
            why = (f", image_selection = \"{FIXED}\" shows ranks 0-{n - 1} of {need}"
                   if selection == FIXED else "")
            return (f"manifest: unit {unit.id} lacks {self.name} images for the {self.name} "
                    f"condition (needs {needs}{why})")
        return None


_REGISTRY: dict[str, ReferenceSource] = {}


def register(source: ReferenceSource) -> ReferenceSource:
    """Make `source` a condition every stage knows; a later registration of a name wins."""
    _REGISTRY[source.name] = source
    return source


def unregister(name: str) -> None:
    """Forget a registered source (tests that register their own clean up with this)."""
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    """Every registered condition, the paper's three first, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> ReferenceSource:
    """The registered source `name`; an unknown name is a ConfigError naming the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown condition {name!r}; known: {', '.join(names())} "
                          "(another method's images come in through the manifest's "
                          "unit references)") from None


def find(name: str) -> ReferenceSource | None:
    """The registered source `name`, or None (analysis of published data meets others)."""
    return _REGISTRY.get(name)


def sources_for(manifest: Manifest) -> list[ReferenceSource]:
    """Register an ImageSetSource for every method the manifest brings images of.

    Returns every registered source, the manifest's included. A method with a description in
    the manifest's `methods` takes its label from there.
    """
    methods: dict[str, MethodInfo | None] = dict(manifest.methods)
    for unit in manifest.units:
        for method in unit.references:
            methods.setdefault(method, None)
    for method, info in methods.items():
        if method in _REGISTRY and not isinstance(_REGISTRY[method], ImageSetSource):
            continue
        label = info.label if info is not None and info.label else f"{method} images"
        color = info.color if info is not None else None
        register(ImageSetSource(method, label, color=color, field=method))
    return [_REGISTRY[name] for name in names()]


def order(conditions: list[str] | tuple[str, ...]) -> list[str]:
    """Conditions in registry order (the paper's first), unknown ones after, as they came."""
    seen = list(dict.fromkeys(conditions))
    known = [name for name in names() if name in seen]
    return known + [name for name in seen if name not in _REGISTRY]


register(NaturalSource("natural", "natural exemplars", color="#3b75af",
                       simulated_accuracy=0.9))
register(ImageSetSource("synthetic", "feature visualizations", color="#ef8636",
                        simulated_accuracy=0.8, field="synthetic"))
register(NoReferences("none", "no references", color="#8c8c8c", simulated_accuracy=0.5,
                      shows_references=False))
register(NoReferences("none_pre", "no references, before", color="#b4b4b4",
                      simulated_accuracy=0.5, shows_references=False))
register(NoReferences("none_post", "no references, after", color="#5e5e5e",
                      simulated_accuracy=0.5, shows_references=False))
BASELINES = {"pre": "none_pre", "post": "none_post"}  # [design] baseline -> its condition
