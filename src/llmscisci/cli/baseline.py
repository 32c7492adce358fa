"""`llmscisci baseline`: classical classifiers judged with the same metrics as the LLMs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmscisci.cli.common import DataDirOpt, OutOpt, out
from llmscisci.cli.tables import print_table


def baseline(
    task: Annotated[str, typer.Option("--task", help="easy, difficult, or a codebook .toml (comma-separated for several).")] = "easy,difficult",
    method: Annotated[str, typer.Option("--method", help="tfidf-logreg | embed-logreg | majority | prior (comma-separated for several)")] = "tfidf-logreg",
    folds: Annotated[int, typer.Option("--folds", help="k of the DOI-grouped cross-validation.")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    data_dir: DataDirOpt = None,
    out_dir: OutOpt = Path("runs"),
) -> None:
    """Fit a classical classifier: grouped k-fold CV over DOIs plus the canonical train/test split."""
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.paths import cache_dir
    from llmscisci.paths import data_dir as resolve
    from llmscisci.tasks.baseline import METHODS, run_baseline
    from llmscisci.errors import UserError

    methods = [m.strip() for m in method.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"unknown --method {bad[0]!r}: use one of {', '.join(METHODS)}")
    src = resolve(data_dir)
    for t in [t.strip() for t in task.split(",") if t.strip()]:
        cb = load_codebook(t)
        items = load_items(cb, data_dir=src)
        for m in methods:
            run = run_baseline(cb, items, m, out_dir, k=folds, seed=seed, data_source=str(src), cache_dir=cache_dir())
            met = run.metrics()
            print_table(out, format_table(met))
            cv = met["cv"]
            out.print(f"{t} {m}: CV macro-F1 {cv['macro_f1_mean']:.3f} ± {cv['macro_f1_std']:.3f} "
                      f"(k={cv['k']}); canonical test macro-F1 {met['test']['macro_f1']:.3f}; run folder {run.path}")


def register(app: typer.Typer) -> None:
    app.command("baseline")(baseline)
