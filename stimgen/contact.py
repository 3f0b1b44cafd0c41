"""Contact sheets: one PNG per unit showing its min and max images, natural and synthetic.

They are for the researcher, not for participants: a quick look tells whether a unit's
exemplars and visualizations look sensible before money is spent on a study.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from crowdkit.manifest import ImageRef, Unit

THUMB = 96
GAP = 4
LABEL_WIDTH = 150
TITLE_HEIGHT = 26
CAPTION_HEIGHT = 14
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


def contact_rows(unit: Unit) -> list[tuple[str, list[ImageRef]]]:
    """The rows shown: natural batch 0 (its most extreme images), then synthetic, min first."""
    rows: list[tuple[str, list[ImageRef]]] = []
    batch = unit.natural.batches[0]
    rows.append(("natural min\n(batch 0)", list(batch.min)))
    rows.append(("natural max\n(batch 0)", list(batch.max)))
    if unit.synthetic is not None:
        if unit.synthetic.min:
            rows.append(("synthetic min", list(unit.synthetic.min)))
        rows.append(("synthetic max", list(unit.synthetic.max)))
    return rows


def write_contact_sheet(unit: Unit, stimuli_dir: Path, dest: Path) -> Path:
    """Draw `unit`'s contact sheet to `dest` (PNG); activations are printed under each image."""
    rows = contact_rows(unit)
    columns = max(len(refs) for _, refs in rows)
    row_height = THUMB + CAPTION_HEIGHT + GAP
    width = LABEL_WIDTH + columns * (THUMB + GAP) + GAP
    height = TITLE_HEIGHT + len(rows) * row_height + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    title = f"{unit.label or unit.id}   ({unit.id}, {unit.layer} channel {unit.channel}, " \
            f"{unit.selection})"
    draw.text((GAP, 6), title, fill=INK, font=font)
    for r, (label, refs) in enumerate(rows):
        y = TITLE_HEIGHT + r * row_height
        draw.multiline_text((GAP, y + THUMB // 3), label, fill=INK, font=font)
        for c, ref in enumerate(refs):
            x = LABEL_WIDTH + c * (THUMB + GAP)
            with Image.open(stimuli_dir / ref.path) as image:
                sheet.paste(image.convert("RGB").resize((THUMB, THUMB)), (x, y))
            if ref.activation is not None:
                draw.text((x, y + THUMB + 1), f"{ref.activation:.3g}", fill=INK, font=font)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, format="PNG")
    return dest
