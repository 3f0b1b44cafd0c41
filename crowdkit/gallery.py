"""stimuli/gallery.html: every unit's stimuli on one page, to check before spending money.

A researcher looks at the stimuli once, all of them, before publishing: do the maximally
activating images look alike, do the minimal ones differ from them, did any feature
visualization fail? The page shows each unit's contact sheet (or, for a manifest made by
hand, its batch-0 natural exemplars and its feature visualizations), with the model and a
warning for random weights and for each unit whose stimuli do not separate. It links the
images relative to stimuli/, so it opens from disk with no network and no copy of the files.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from crowdkit.files import write_atomically
from crowdkit.manifest import ImageRef, Manifest, Unit, load_manifest
from stimgen.job import overlap_warnings

GALLERY = "gallery.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.1rem; margin: 2rem 0 0.3rem; }
.meta { color: #555; } .unit { border-top: 1px solid #ddd; padding-top: 0.5rem; }
.warning { background: #fff4e5; border-left: 4px solid #e08a00; padding: 0.4rem 0.8rem; }
.sheet { max-width: 100%; border: 1px solid #eee; }
.row { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin: 2px 0; }
.row span { width: 9rem; font-size: 0.85rem; color: #444; }
.row img { width: 72px; height: 72px; object-fit: cover; }
"""


def write_gallery(manifest_path: Path, out: Path | None = None, *,
                  manifest: Manifest | None = None) -> Path:
    """Write the gallery of the stimuli `manifest_path` describes; return its path
    (default: gallery.html beside the manifest, where its relative links resolve).
    `manifest` is that file already read (the stimuli run's own), so it is not read again."""
    manifest = manifest or load_manifest(manifest_path)
    out = out or manifest_path.parent / GALLERY
    write_atomically(out, gallery_html(manifest, _prefix(manifest_path.parent, out.parent)))
    return out


def gallery_html(manifest: Manifest, prefix: str = "") -> str:
    """The page; image paths are the manifest's, relative to stimuli/, behind `prefix`."""
    found = overlap_warnings(manifest)
    warnings = {u.id: [w for w in found if w.startswith(f"unit {u.id}: ")]
                for u in manifest.units}
    sheets = manifest.parameters.get("contact_sheets") or {}
    model = manifest.model
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>stimuli: {len(manifest.units)} units</title><style>{STYLE}</style></head>",
        "<body><h1>Stimuli gallery</h1>",
        f'<p class="meta">model {escape(model.name)}, weights {escape(str(model.weights))}; '
        f"{len(manifest.units)} units; {sum(map(bool, warnings.values()))} whose stimuli do "
        "not separate</p>",
    ]
    if model.random_weights:
        parts.append('<p class="warning" id="random-weights">Random weights: these images '
                     "show an untrained network. Fine for trying crowdkit out; meaningless "
                     "for a study.</p>")
    for unit in manifest.units:
        parts.append(_unit(unit, sheets.get(unit.id), warnings[unit.id], prefix))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _unit(unit: Unit, sheet: str | None, warnings: list[str], prefix: str) -> str:
    html = [f'<section class="unit" id="unit-{escape(unit.id)}">',
            f"<h2>{escape(unit.id)} <small>({escape(unit.label)}, {escape(unit.layer)} "
            f"channel {unit.channel}, {escape(unit.selection)})</small></h2>"]
    html += [f'<p class="warning">{escape(warning)}</p>' for warning in warnings]
    if sheet:
        html.append(f'<img class="sheet" src="{escape(prefix + sheet)}" '
                    f'alt="contact sheet of {escape(unit.id)}">')
    else:
        first = unit.natural.batches[0] if unit.natural.batches else None
        rows = [("natural min", first.min if first else []),
                ("natural max", first.max if first else [])]
        if unit.synthetic is not None:
            rows += [("synthetic min", unit.synthetic.min), ("synthetic max", unit.synthetic.max)]
        html += [_row(label, refs, prefix) for label, refs in rows if refs]
    html.append("</section>")
    return "\n".join(html)


def _row(label: str, refs: list[ImageRef], prefix: str) -> str:
    images = "".join(
        f'<img src="{escape(prefix + r.path)}" alt="{escape(label)}" '
        f'title="activation {r.activation:.3f}">' if r.activation is not None else
        f'<img src="{escape(prefix + r.path)}" alt="{escape(label)}">'
        for r in refs)
    return f'<div class="row"><span>{escape(label)}</span>{images}</div>'


def _prefix(stimuli_dir: Path, page_dir: Path) -> str:
    """How a page in `page_dir` reaches files relative to `stimuli_dir`."""
    relative = os.path.relpath(stimuli_dir.resolve(), page_dir.resolve())
    return "" if relative == "." else Path(relative).as_posix() + "/"
