"""The report's figures, each written as PNG (for the report) and SVG (for a paper).

Figures are matplotlib `Figure` objects rendered by the Agg canvas: nothing needs a display,
no pyplot state leaks between calls, and matplotlib is imported only when a figure is drawn.
Each condition keeps one colour in every figure: its source's colour (crowdkit.sources), or
for conditions without one (published data sets use their own names) a fixed extra palette.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crowdkit import sources
from crowdkit.analysis.result import Analysis, summary_parts
from crowdkit.analysis.stats import ALL, FEW_PARTICIPANTS, OUTCOMES

if TYPE_CHECKING:  # matplotlib itself is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CHANCE = 0.5
# Said under every accuracy figure: what is drawn differs from the tables in these ways.
CLIPPED = ("Intervals are the paper's ± 1.96 × SEM, drawn clipped to [0, 1] where they run "
           "past it (the tables give them unclipped).")
FEW = f"Hollow: fewer than {FEW_PARTICIPANTS} participants, an unreliable interval."
EXTRA_COLORS = ("#519e3e", "#c53a32", "#8d69b8", "#84584e", "#d57dbe", "#bcbc45", "#58bbcc")


def _source_color(condition: str) -> str | None:
    source = sources.find(condition)
    return source.color if source is not None else None


def condition_color(condition: str, conditions: Sequence[str]) -> str:
    """`condition`'s colour among `conditions`: its source's, else the next extra colour."""
    color = _source_color(condition)
    if color is not None:
        return color
    others = [c for c in conditions if _source_color(c) is None]
    return (
        EXTRA_COLORS[others.index(condition) % len(EXTRA_COLORS)]
        if condition in others
        else "#555555"
    )


@dataclass(frozen=True)
class FigureFile:
    """One figure written as PNG and SVG, and the PNG's bytes for embedding in the report."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path
    png_bytes: bytes

def _new_figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    # Figure objects (not pyplot) render with the Agg canvas and leave no global state.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def _save(figure: Figure, out_dir: Path, name: str, title: str, caption: str) -> FigureFile:
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150)
    png.write_bytes(buffer.getvalue())
    figure.savefig(svg, format="svg")
    return FigureFile(name, title, caption, png, svg, buffer.getvalue())


def _accuracy_axis(axis: Axes) -> None:
    """Proportion correct from 0 to 1 with the chance line, on every accuracy figure."""
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("proportion correct")
    axis.axhline(CHANCE, color="black", linestyle="--", linewidth=1, zorder=0)
    axis.text(
        1.0, CHANCE, " chance", transform=axis.get_yaxis_transform(), va="center", ha="left",
        fontsize=8,
    )
    axis.spines[["top", "right"]].set_visible(False)


def _error(table: pd.DataFrame, measure: str) -> np.ndarray:
    """Error bar lengths below and above `measure` from its 95 % CI columns (0 when absent).

    A proportion's interval is drawn within [0, 1]: mean ± 1.96 × SEM can run past the
    ends, which no proportion can (the reported numbers stay unclipped in the tables)."""
    prefix = "" if measure == "accuracy" else f"{measure}_"
    low, high = table[f"{prefix}ci95_low"], table[f"{prefix}ci95_high"]
    if measure == "accuracy":
        low, high = low.clip(lower=0.0), high.clip(upper=1.0)
    below = (table[measure] - low).fillna(0).clip(lower=0).to_numpy(dtype=float)
    above = (high - table[measure]).fillna(0).clip(lower=0).to_numpy(dtype=float)
    return np.vstack([below, above])


def _few(rows: pd.DataFrame) -> list[bool]:
    """Which rows rest on too few participants to trust their interval."""
    return [not pd.isna(n) and int(n) < FEW_PARTICIPANTS for n in rows["n_participants"]]


def _bars(axis: Axes, x: np.ndarray, rows: pd.DataFrame, measure: str, *, capsize: float,
          **style: Any) -> None:
    """Bars of `measure` with their 95 % CIs as error bars; a missing value draws nothing.
    Bars from fewer than FEW_PARTICIPANTS participants are hollow (white, edged)."""
    bars = axis.bar(x, rows[measure].fillna(0), **style)
    for bar, few in zip(bars, _few(rows), strict=True):
        if few:
            bar.set_edgecolor(bar.get_facecolor())
            bar.set_facecolor("white")
            bar.set_linewidth(1.5)
    axis.errorbar(
        x, rows[measure], yerr=_error(rows, measure), fmt="none", ecolor="black",
        capsize=capsize, linewidth=1,
    )


def _grouped_bars(
    axis: Axes, table: pd.DataFrame, measure: str, column: str, groups: Sequence[str],
    alphas: Iterable[float], conditions: list[str],
) -> list[tuple[np.ndarray, pd.DataFrame]]:
    """One bar per condition and group (`column` value), shaded by group; the bars' x and rows."""
    width = 0.8 / len(groups)
    drawn = []
    for number, (group, alpha) in enumerate(zip(groups, alphas, strict=True)):
        rows = table[table[column] == group].set_index("condition").reindex(conditions)
        x = np.arange(len(conditions)) + (number - (len(groups) - 1) / 2) * width
        _bars(
            axis, x, rows, measure, capsize=3, width=width * 0.95, label=group, alpha=alpha,
            color=[condition_color(c, conditions) for c in conditions], edgecolor="black",
            linewidth=0.5,
        )
        drawn.append((x, rows))
    axis.set_xticks(range(len(conditions)), conditions)
    axis.spines[["top", "right"]].set_visible(False)
    return drawn


def figure_accuracy_by_condition(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    """The paper's Figure 1B: bars of accuracy per condition, CIs, participants, chance."""
    rows = summary_parts(analysis)[0]
    if rows.empty:  # everyone excluded: nothing to draw
        return None
    conditions = list(rows["condition"])
    figure, (axis,) = _new_figure(1.2 + 1.1 * len(conditions), 3.6)
    positions = np.arange(len(conditions))
    _bars(
        axis, positions, rows, "accuracy", capsize=4, width=0.6, alpha=0.85,
        color=[condition_color(c, conditions) for c in conditions],
    )
    jitter = np.random.default_rng(0)
    per_participant = analysis.participant_accuracy
    for position, condition in zip(positions, conditions, strict=True):
        scores = per_participant.loc[per_participant["condition"] == condition, "accuracy"]
        offsets = jitter.uniform(-0.12, 0.12, len(scores))
        axis.scatter(
            position + offsets, scores, s=12, color="black", alpha=0.5, zorder=3, linewidths=0
        )
    axis.set_xticks(
        positions,
        [f"{c}\n(n={n})" for c, n in zip(conditions, rows["n_participants"], strict=True)],
    )
    _accuracy_axis(axis)
    caption = (_caption(rows) + " Dots: participants; error bars: 95 % CI (1.96 × SEM). "
               + CLIPPED + _few_note(rows))
    return _save(figure, out_dir, "accuracy_by_condition", "Accuracy per condition", caption)


def figure_accuracy_by_layer(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    """Accuracy per layer, one line per condition (when the data has `layer`)."""
    table = analysis.by_layer
    if table is None or table.empty:
        return None
    layers = list(dict.fromkeys(table["layer"]))
    conditions = sources.order(list(table["condition"]))
    figure, (axis,) = _new_figure(max(4.0, 0.6 * len(layers) + 2), 3.6)
    positions = {layer: index for index, layer in enumerate(layers)}
    offset_step = 0.08
    for number, condition in enumerate(conditions):
        rows = table[table["condition"] == condition]
        x = np.array([positions[layer] for layer in rows["layer"]], dtype=float)
        x += (number - (len(conditions) - 1) / 2) * offset_step
        color = condition_color(condition, conditions)
        axis.errorbar(
            x,
            rows["accuracy"],
            yerr=_error(rows, "accuracy"),
            marker="none",
            capsize=3,
            linewidth=1.2,
            label=condition,
            color=color,
        )
        few = np.array(_few(rows), dtype=bool)
        axis.scatter(x[~few], rows["accuracy"][~few], s=18, color=color, zorder=3)
        axis.scatter(x[few], rows["accuracy"][few], s=18, facecolors="white",
                     edgecolors=color, linewidths=1.2, zorder=3)
    labels = [str(layer) for layer in layers]
    slanted = len(layers) > 6 or max(len(label) for label in labels) > 10
    axis.set_xticks(range(len(layers)), labels, rotation=30 if slanted else 0,
                    ha="right" if slanted else "center", fontsize=8 if slanted else None)
    axis.set_xlabel("layer")
    _accuracy_axis(axis)
    axis.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.08, 1.0))
    caption = _caption(table) + " Error bars: 95 % CI. " + CLIPPED + _few_note(table)
    return _save(figure, out_dir, "accuracy_by_layer", "Accuracy per layer", caption)


def figure_accuracy_by_expert_level(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    """Accuracy per condition, one shade per expert level (when the data has them)."""
    table = summary_parts(analysis)[1]
    if table.empty:
        return None
    conditions = sources.order(list(table["condition"]))
    levels = list(dict.fromkeys(table["expert_level"]))
    figure, (axis,) = _new_figure(2.5 + 1.2 * len(conditions), 3.6)
    shades = np.linspace(1.0, 0.45, len(levels))
    drawn = _grouped_bars(axis, table, "accuracy", "expert_level", levels, shades, conditions)
    for x, rows in drawn:
        for xi, n in zip(x, rows["n_participants"], strict=True):
            if not pd.isna(n):
                axis.text(xi, 0.02, f"n={int(n)}", ha="center", va="bottom", fontsize=7)
    _accuracy_axis(axis)
    axis.legend(
        title="expert level", frameon=False, fontsize=8, title_fontsize=8, loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    caption = (_caption(table) + " Shades: expert levels; error bars: 95 % CI. " + CLIPPED
               + _few_note(table))
    return _save(figure, out_dir, "accuracy_by_expert_level", "Accuracy per expert level", caption)


def figure_rt_confidence(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    """RT and confidence per condition on all, correct and incorrect trials."""
    table = analysis.rt_confidence
    measures = [m for m in ("rt_ms", "confidence") if m in table and table[m].notna().any()]
    if table.empty or not measures:
        return None
    conditions = sources.order(list(table["condition"]))
    figure, axes = _new_figure(1.0 + 3.2 * len(measures), 3.6, columns=len(measures))
    labels = {
        "rt_ms": "reaction time (ms, median per participant)",
        "confidence": "confidence (1 to 3)",
    }
    for axis, measure in zip(axes, measures, strict=True):
        _grouped_bars(axis, table, measure, "outcome", OUTCOMES, (1.0, 0.65, 0.35), conditions)
        axis.set_ylabel(labels[measure])
        if measure == "confidence":
            axis.set_ylim(0, 3.2)
    axes[0].legend(title="trials", frameon=False, fontsize=8, title_fontsize=8)
    caption = (
        _caption(table[table["outcome"] == ALL])
        + " Shades: all, correct and incorrect trials; error bars: 95 % CI."
        + _few_note(table)
    )
    return _save(figure, out_dir, "rt_confidence", "Reaction time and confidence", caption)


def _caption(table: pd.DataFrame) -> str:
    """The participants and trials behind a figure: per bar, or as a range for many points."""
    if len(table) > 6:
        return (
            f"Each point: {_range(table['n_participants'])} participants, "
            f"{_range(table['n_trials'])} trials."
        )
    parts = []
    for _, row in table.iterrows():
        label = " / ".join(
            str(row[c])
            for c in ("condition", "expert_level", "layer")
            if c in row and row[c] != ALL
        )
        parts.append(
            f"{label}: {int(row['n_participants'])} participants, {int(row['n_trials'])} trials"
        )
    return "; ".join(parts) + "."


def _few_note(rows: pd.DataFrame) -> str:
    return " " + FEW if any(_few(rows)) else ""


def _range(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low} to {high}"


def figure_ratings(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    """The paper's intuitiveness figure: the mean rating per unit and all units pooled, one
    bar per rating time (start, end), 95 % CIs, zero marked (when the data has ratings)."""
    table = analysis.ratings
    if table.empty:
        return None
    rows = table[table["expert_level"] == ALL]
    groups = list(dict.fromkeys(zip(rows["condition"], rows["unit"], strict=True)))
    times = list(dict.fromkeys(rows["rating_time"]))
    several = len({c for c, _ in groups}) > 1
    figure, (axis,) = _new_figure(1.6 + 0.9 * len(groups) * max(1, len(times)) / 1.5, 3.6)
    width = 0.8 / len(times)
    for number, (time, alpha) in enumerate(zip(times, (1.0, 0.55), strict=False)):
        picked = rows[rows["rating_time"] == time].set_index(["condition", "unit"])
        picked = picked.reindex(groups).reset_index()
        picked = picked.assign(mean_ci95_low=picked["ci95_low"], mean_ci95_high=picked["ci95_high"])
        x = np.arange(len(groups)) + (number - (len(times) - 1) / 2) * width
        _bars(axis, x, picked, "mean", capsize=3, width=width * 0.95, alpha=alpha,
              label=time, color=[condition_color(c, [g[0] for g in groups]) for c, _ in groups],
              edgecolor="black", linewidth=0.5)
    labels = [f"{c}\n{u}" if several else u for c, u in groups]
    axis.set_xticks(range(len(groups)), labels)
    axis.axhline(0, color="black", linewidth=1, zorder=0)
    axis.set_ylabel("rating (mean of participants' means)")
    axis.spines[["top", "right"]].set_visible(False)
    if len(times) > 1:
        axis.legend(title="asked at", frameon=False, fontsize=8, title_fontsize=8)
    counts = ", ".join(f"{t}: {int(rows[rows['rating_time'] == t]['n_participants'].max())}"
                       for t in times)
    caption = (f"Participants ({counts}); \"all\": each participant's ratings of every unit "
               "averaged first. Error bars: 95 % CI (1.96 × SEM)." + _few_note(rows))
    return _save(figure, out_dir, "ratings", "Intuitiveness ratings", caption)


def figure_human_vs_machine(analysis: Analysis, out_dir: Path) -> FigureFile | None:
    """Each unit's human accuracy against its MIS, one colour per condition, the diagonal
    and chance marked (when the machine observer has answered the same trials)."""
    compared = analysis.human_vs_machine
    if compared is None or compared.units.empty:
        return None
    units = compared.units
    conditions = sources.order(list(dict.fromkeys(units["condition"])))
    figure, (axis,) = _new_figure(4.6, 4.2)
    for condition in conditions:
        rows = units[units["condition"] == condition]
        axis.scatter(rows["mis"], rows["human_accuracy"], s=28, alpha=0.85, label=condition,
                     color=condition_color(condition, conditions), edgecolor="black",
                     linewidth=0.4)
    axis.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle=":", zorder=0)
    axis.axhline(CHANCE, color="#bbbbbb", linewidth=0.8, zorder=0)
    axis.axvline(CHANCE, color="#bbbbbb", linewidth=0.8, zorder=0)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel(f"MIS ({compared.observer})")
    axis.set_ylabel("human accuracy (share of trials right)")
    axis.spines[["top", "right"]].set_visible(False)
    axis.legend(frameon=False, fontsize=8)
    corr = compared.correlations
    pooled = corr[corr["condition"] == corr["condition"].iloc[-1]] if len(corr) else corr
    said = ""
    if len(pooled) and not pd.isna(pooled["pearson_r"].iloc[0]):
        row = pooled.iloc[0]
        said = (f" Over {int(row['n_units'])} units ({row['condition']}): Pearson r = "
                f"{row['pearson_r']:.2f}, Spearman rho = {row['spearman_rho']:.2f}.")
    caption = ("One point per unit and condition: people's accuracy on its main trials "
               "against the machine observer's MIS on the same trials." + said
               + (f" Note: {compared.note}." if compared.note else ""))
    return _save(figure, out_dir, "human_vs_machine", "Human against machine", caption)


FIGURES: tuple[Callable[[Analysis, Path], FigureFile | None], ...] = (
    figure_accuracy_by_condition,
    figure_accuracy_by_layer,
    figure_accuracy_by_expert_level,
    figure_rt_confidence,
    figure_ratings,
    figure_human_vs_machine,
)
"""Every figure of the report, in its order; each returns None when its columns are absent."""
