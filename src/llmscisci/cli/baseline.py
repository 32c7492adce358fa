"""`llmscisci baseline`: classical classifiers judged with the same metrics as the LLMs, fitted on
reference labels or (distillation, `--labels RUN_DIR`) on a labelling run's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import DataDirOpt, JsonOpt, JsonOutOpt, OutOpt, TasksOpt, console, emit


def baseline(
    ctx: typer.Context,
    task: TasksOpt = "easy,difficult",
    method: Annotated[str, typer.Option("--method", help="tfidf-logreg | embed-logreg | llm-states | majority | prior (comma-separated for several)")] = "tfidf-logreg",
    states_model: Annotated[Optional[str], typer.Option("--states-model", help="llm-states: the local causal LM whose hidden states are the features (default smollm2-135m; a catalogue name, a model folder).")] = None,
    folds: Annotated[int, typer.Option("--folds", help="k of the DOI-grouped cross-validation.")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    data_dir: DataDirOpt = None,
    out_dir: OutOpt = Path("runs"),
    save: Annotated[Optional[Path], typer.Option("--save", help="Also fit on all given items and write the model folder here (one method, one task).")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", help="A coded sample (any corpus format) instead of --data-dir.")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="A labelling run folder to learn its answers (distillation; texts from --input or the study data), or with --input a label file for it.")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id-column", help="--input: the id column.")] = None,
    text_column: Annotated[Optional[str], typer.Option("--text-column", help="--input: the text column.")] = None,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
) -> None:
    """Fit a classical classifier: grouped k-fold CV over DOIs plus the canonical train/test split."""
    from llmscisci.api.baseline_runs import baseline_runs
    from llmscisci.cli.common import explicit
    from llmscisci.metrics.evaluate import format_table

    done = baseline_runs([t.strip() for t in task.split(",") if t.strip()],
                         [m.strip() for m in method.split(",") if m.strip()], states_model=states_model,
                         folds=folds, seed=seed, data_dir=data_dir, out_dir=out_dir, save=save,
                         input_path=input_path, labels=labels, id_column=id_column, text_column=text_column,
                         task_given=explicit(ctx, "task"), say=console.print)
    tables = [line for f in done for line in (format_table(f.run.metrics()), *f.lines())]
    results = [f.result() for f in done]
    emit(results[0] if len(results) == 1 else results, tables, as_json, json_out)


def register(app: typer.Typer) -> None:
    app.command("baseline")(baseline)
