"""report.html: every table and figure on one page that needs nothing but itself.

The page embeds its figures as data: URIs and its CSS inline, so it can be mailed or
archived as one file and opens without any network access. jinja2 is imported only here,
when a report is rendered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from crowdkit.analysis.figures import FIGURES, FigureFile
from crowdkit.analysis.result import Analysis
from crowdkit.analysis.tables import (
    LABEL_COLUMNS,
    footnotes,
    format_accuracy,
    reasons_text,
    text_tables,
)
from crowdkit.errors import CrowdkitError
from crowdkit.files import write_atomically
from crowdkit.progress import Progress, silent

TEMPLATE = "report.html.j2"


def write_report(analysis: Analysis, out_dir: Path | str, progress: Progress = silent) -> Path:
    """Write the figures (PNG and SVG), analysis.json and a self-contained report.html.

    Drawing the figures takes a few seconds; it is reported through `progress` (see
    crowdkit.progress), one step per figure. Returns the path of report.html.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CrowdkitError(f"{out_dir}: cannot create the report directory: {exc}") from exc
    figures: list[FigureFile] = []
    with progress("drawing figures", total=len(FIGURES)) as advance:
        for make in FIGURES:
            figure = make(analysis, out_dir)
            if figure is not None:
                figures.append(figure)
            advance(1)
    write_atomically(
        out_dir / "analysis.json", json.dumps(analysis.to_json(), indent=2, allow_nan=False) + "\n"
    )
    report = out_dir / "report.html"
    write_atomically(report, render_report(analysis, figures))
    return report


def render_report(analysis: Analysis, figures: Sequence[FigureFile]) -> str:
    """report.html as a string: the tables and the figures, with no external resource."""
    import jinja2

    template_text = resources.files("crowdkit.analysis").joinpath(TEMPLATE).read_text("utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    titled = [(title, table) for title, table in text_tables(analysis) if not table.empty]
    if analysis.by_layer is not None and "layer" not in analysis.by:
        titled.insert(1, ("Accuracy by layer", format_accuracy(analysis.by_layer)))
    labels = LABEL_COLUMNS | {"layer", *analysis.by}
    tables = [
        {
            "title": title,
            "columns": [(column, column in labels) for column in table.columns],
            "rows": [
                list(zip(map(str, row), (c in labels for c in table.columns), strict=True))
                for row in table.itertuples(index=False)
            ],
        }
        for title, table in titled
    ]
    return environment.from_string(template_text).render(
        analysis=analysis,
        reasons=reasons_text(analysis.participants),
        facts=analysis.facts.lines(),
        notes=analysis.notes,
        footnotes=footnotes(analysis),
        tables=tables,
        figures=[
            {
                "title": f.title,
                "caption": f.caption,
                "name": f.name,
                "src": "data:image/png;base64," + base64.b64encode(f.png_bytes).decode("ascii"),
            }
            for f in figures
        ],
    )
