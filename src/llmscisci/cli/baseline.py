"""`llmscisci baseline`: classical classifiers judged with the same metrics as the LLMs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import DataDirOpt, JsonOpt, JsonOutOpt, OutOpt, TasksOpt, console, emit


def baseline(
    task: TasksOpt = "easy,difficult",
    method: Annotated[str, typer.Option("--method", help="tfidf-logreg | embed-logreg | majority | prior (comma-separated for several)")] = "tfidf-logreg",
    folds: Annotated[int, typer.Option("--folds", help="k of the DOI-grouped cross-validation.")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    data_dir: DataDirOpt = None,
    out_dir: OutOpt = Path("runs"),
    save: Annotated[Optional[Path], typer.Option("--save", help="Also fit on all given items and write the model folder here (one method, one task).")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", help="A coded sample (any corpus format) instead of --data-dir.")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="With --input: a label file for it (else its own category columns).")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id-column", help="--input: the id column.")] = None,
    text_column: Annotated[Optional[str], typer.Option("--text-column", help="--input: the text column.")] = None,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
) -> None:
    """Fit a classical classifier: grouped k-fold CV over DOIs plus the canonical train/test split."""
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.errors import UserError
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.paths import cache_dir
    from llmscisci.paths import data_dir as resolve
    from llmscisci.tasks.baseline import METHODS, run_baseline

    methods = [m.strip() for m in method.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"unknown --method {bad[0]!r}: use one of {', '.join(METHODS)}")
    tasks = [t.strip() for t in task.split(",") if t.strip()]
    if save is not None:
        from llmscisci.tasks.baseline_model import SAVABLE

        if len(tasks) != 1 or len(methods) != 1 or methods[0] not in SAVABLE:
            raise UserError(f"--save needs one --task and one --method ({' or '.join(SAVABLE)})")
    from llmscisci.paths import check_output_path

    check_output_path(out_dir, "folder")
    if save is not None:
        check_output_path(save, "folder", "--save")
    if labels is not None and input_path is None:
        raise UserError("--labels goes with --input (a coded sample)")
    src = str(input_path) if input_path is not None else str(resolve(data_dir))
    results, tables = [], []
    for t in tasks:
        cb = load_codebook(t)
        if input_path is not None:
            from llmscisci.data.coded import load_coded

            items = load_coded(input_path, cb, labels, id_column=id_column, text_column=text_column)
        else:
            items = load_items(cb, data_dir=src)
        for m in methods:
            run = run_baseline(cb, items, m, out_dir, k=folds, seed=seed, data_source=src, cache_dir=cache_dir())
            if save is not None:
                import numpy as np

                from llmscisci.tasks.baseline_model import save_model

                coded = [it for it in items if it.labels is not None]
                cv = {k: v for k, v in run.metrics()["cv"].items() if k != "folds"}
                save_model(save, m, cb, [it.text for it in coded], np.array([it.labels for it in coded]), seed,
                           cv={**cv, "test_macro_f1": run.metrics()["test"]["macro_f1"]})
                console.print(f"model folder: {save}")
            met = run.metrics()
            cv = met["cv"]
            results.append({"task": t, "method": m, "run_dir": str(run.path), "metrics": met})
            tables += [format_table(met),
                       f"{t} {m}: CV macro-F1 {cv['macro_f1_mean']:.3f} ± {cv['macro_f1_std']:.3f} "
                       f"(k={cv['k']}); canonical test macro-F1 {met['test']['macro_f1']:.3f}; run folder {run.path}"]
    emit(results[0] if len(results) == 1 else results, tables, as_json, json_out)


def register(app: typer.Typer) -> None:
    app.command("baseline")(baseline)
