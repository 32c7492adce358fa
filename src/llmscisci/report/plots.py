"""Report figures as PNG bytes. Headless: figures are drawn on matplotlib's Agg canvas directly
(no pyplot, no global backend state), so this works without a display and from any thread."""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from llmscisci.metrics.stats import Interval

DPI = 100
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
           "#CCB974", "#64B5CD"]
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8}


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _styled(fn):
    """Draw inside the report's rc style (rcParams are read while artists are created)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _new(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _short(s: str, n: int = 38) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


@_styled
def forest(cells: Sequence[str], panels: Mapping[str, Sequence[Interval | None]], title: str = "") -> bytes:
    """Point estimate and CI per cell, one panel per metric, cells top to bottom."""
    k = len(panels)
    fig = _new(min(3.0 * k + 2.2, 13), 0.9 + 0.32 * max(len(cells), 2))
    axes = fig.subplots(1, k, sharey=True, squeeze=False)[0]
    ys = list(range(len(cells)))[::-1]
    for ax, (metric, ivs) in zip(axes, panels.items()):
        _style(ax)
        for y, iv, i in zip(ys, ivs, range(len(cells))):
            if iv is None or math.isnan(iv.estimate):
                continue
            lo = iv.estimate - iv.low if not math.isnan(iv.low) else 0
            hi = iv.high - iv.estimate if not math.isnan(iv.high) else 0
            ax.errorbar(iv.estimate, y, xerr=[[max(lo, 0)], [max(hi, 0)]], fmt="o", color=color(i),
                        ecolor=color(i), elinewidth=2, capsize=3, markersize=5)
        ax.set_title(metric)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.7, len(cells) - 0.3)
    axes[0].set_yticks(ys, [_short(c) for c in cells])
    if title:
        fig.suptitle(title, fontsize=11)
    return to_png(fig)


@_styled
def grouped_bars(
    labels: Sequence[str],
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    title: str = "",
    ylabel: str = "F1",
    ylim: tuple[float, float] | None = (0, 1.05),
) -> bytes:
    """Bars per label (x), one bar per series (e.g. model), one panel per group (e.g. variant)."""
    names: list[str] = []
    for series in panels.values():
        for s in series:
            if s not in names:
                names.append(s)
    k = max(len(panels), 1)
    ncol = min(k, 3)
    nrow = math.ceil(k / ncol)
    fig = _new(min(4.2 * ncol, 13), 2.9 * nrow + 0.6)
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True).ravel()
    for ax, (panel, series) in zip(axes, panels.items()):
        _style(ax)
        ax.grid(False, axis="x")
        ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
        present = [n for n in names if n in series]  # bars centred on the label; colours shared by panels
        width = 0.8 / max(len(present), 1)
        for slot, name in enumerate(present):
            j = names.index(name)
            vals = series[name]
            xs = [i - 0.4 + width * (slot + 0.5) for i in range(len(labels))]
            ax.bar(xs, [0 if v is None or math.isnan(v) else v for v in vals], width=width * 0.92,
                   color=color(j), label=_short(name, 30))
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels)) > 9 else 0)
        ax.set_title(panel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    legend: dict[str, object] = {}  # every series of every panel, once
    for ax in axes[: len(panels)]:
        for h, lbl in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lbl, h)
    if len(legend) > 1:
        fig.legend(list(legend.values()), list(legend), loc="outside lower center",
                   ncol=min(len(legend), 5), frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return to_png(fig)


@_styled
def cell_bars(cells: Sequence[str], panels: Mapping[str, Sequence[float | None]], title: str = "") -> bytes:
    """Horizontal bars: one panel per quantity (invalid rate, seconds/item ...), one bar per cell."""
    k = max(len(panels), 1)
    fig = _new(min(3.1 * k + 2.4, 13), 0.9 + 0.3 * max(len(cells), 2))
    axes = fig.subplots(1, k, sharey=True, squeeze=False)[0]
    ys = list(range(len(cells)))[::-1]
    for ax, (name, vals) in zip(axes, panels.items()):
        _style(ax)
        clean = [0 if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in vals]
        ax.barh(ys, clean, color=[color(i) for i in range(len(cells))], height=0.65)
        ax.set_title(name)
        top = max(clean) if clean else 0
        ax.set_xlim(0, top * 1.15 if top > 0 else 1)
    axes[0].set_yticks(ys, [_short(c) for c in cells])
    if title:
        fig.suptitle(title, fontsize=11)
    return to_png(fig)


@_styled
def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "",
           xlabel: str = "step") -> bytes:
    """Small multiples of logged training quantities against the step."""
    k = max(len(series), 1)
    ncol = min(k, 3)
    nrow = math.ceil(k / ncol)
    fig = _new(min(3.9 * ncol, 12), 2.3 * nrow + 0.5)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for i, (ax, (name, (xs, ys))) in enumerate(zip(axes, series.items())):
        _style(ax)
        ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
        ax.plot(xs, ys, color=color(i), linewidth=1.6, marker="o" if len(xs) <= 20 else None, markersize=3)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
    for ax in axes[len(series):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return to_png(fig)
