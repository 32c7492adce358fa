"""Experiment grids and reports: `llmscisci report RUN_OR_GRID_DIR` (and `llmscisci grid CONFIG.toml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import console


def report(
    run_dir: Annotated[Path, typer.Argument(
        help="A run folder, a grid folder, or any folder of run folders, training folders and agreement "
             "tables.",
        show_default=False)],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for report.html, report.md and the "
                                                   "figures (default: RUN_OR_GRID_DIR/report).",
                                                   show_default=False)] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples (of DOIs).")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 2025,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    adjust: Annotated[str, typer.Option("--adjust", help="Multiple-comparison adjustment of paired tests: "
                                                         "holm, fdr_bh or bonferroni.")] = "holm",
    title: Annotated[Optional[str], typer.Option("--title", help="Report title.", show_default=False)] = None,
) -> None:
    """Write a self-contained HTML report and a Markdown twin: metrics with bootstrap CIs per cell, paired
    comparisons, per-label F1, confusion, invalid outputs, tokens/cost/time, agreement tables and
    training curves."""
    from llmscisci.errors import UserError
    from llmscisci.metrics.stats import METHODS
    from llmscisci.report import write_report

    if adjust not in METHODS:
        raise UserError(f"--adjust {adjust!r}: choose one of {', '.join(METHODS)}")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such folder")
    w = write_report(run_dir, out_dir, n_boot=n_boot, seed=seed, level=level, adjust=adjust, title=title,
                     progress=True)
    console.print(f"report: {w.n_label_runs} labelling run(s), {w.n_train_runs} training folder(s), "
                  f"{w.n_tables} table(s), {len(w.figures)} figure(s)")
    typer.echo(str(w.html))  # plain: paths must not be wrapped
    typer.echo(str(w.markdown))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    # `llmscisci grid CONFIG.toml` is registered here as well, by the grid runner:
    #     app.command("grid")(grid)
