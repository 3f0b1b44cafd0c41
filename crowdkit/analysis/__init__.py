"""Accuracy tables with confidence intervals, condition comparisons, figures and a report.

Everything here works on the tidy trials table (docs/analysis.md, docs/data.md),
so a study's own data/<target>/trials.parquet and a published data set mapped to the same columns go
through exactly the same code. The package is split along the way data flows:

- `load`: read a trials file (CSV, Parquet, a study directory) into one typed table;
- `stats`: the pure statistics, DataFrame in, DataFrame out (the paper's accuracy and CI,
  splits, catch trials, RT and confidence, paired or unpaired comparisons);
- `result`: `analyze` runs them all into one `Analysis`, which `to_json` renders;
- `tables`: the tables people read, as data (`text_tables`) or rich objects to print;
- `figures` and `report`: PNG/SVG figures and a self-contained report.html.

Nothing here prints or draws a progress bar: the CLI prints what `tables` returns, and
`write_report` reports through a `crowdkit.progress.Progress`. Importing this package does not
import matplotlib or jinja2; drawing a figure or rendering a report does.
"""

from crowdkit.analysis.figures import FIGURES, FigureFile, condition_color
from crowdkit.analysis.load import (
    REQUIRED_COLUMNS,
    load_trials,
    normalize_trials,
    parse_by,
    trials_file,
)
from crowdkit.analysis.report import render_report, write_report
from crowdkit.analysis.result import Analysis, analyze, analyze_file, records, summary_parts
from crowdkit.analysis.stats import (
    ACCURACY_COLUMNS,
    ALL,
    CATCH,
    MAIN,
    accuracy_table,
    catch_accuracy,
    compare_conditions,
    excluded_participants,
    included,
    infer_design,
    main_trials,
    mean_ci,
    participant_accuracy,
    participant_counts,
    rt_and_confidence,
    summarize,
)
from crowdkit.analysis.tables import (
    comparison_title,
    headline,
    rich_tables,
    terminal_output,
    terminal_text,
    text_tables,
)

__all__ = [
    "ACCURACY_COLUMNS",
    "ALL",
    "CATCH",
    "FIGURES",
    "MAIN",
    "REQUIRED_COLUMNS",
    "Analysis",
    "FigureFile",
    "accuracy_table",
    "analyze",
    "analyze_file",
    "catch_accuracy",
    "compare_conditions",
    "comparison_title",
    "condition_color",
    "excluded_participants",
    "headline",
    "included",
    "infer_design",
    "load_trials",
    "main_trials",
    "mean_ci",
    "normalize_trials",
    "parse_by",
    "participant_accuracy",
    "participant_counts",
    "records",
    "render_report",
    "rich_tables",
    "rt_and_confidence",
    "summarize",
    "summary_parts",
    "terminal_output",
    "terminal_text",
    "text_tables",
    "trials_file",
    "write_report",
]
