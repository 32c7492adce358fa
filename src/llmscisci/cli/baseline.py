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
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.errors import UserError
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.paths import cache_dir
    from llmscisci.paths import data_dir as resolve
    from llmscisci.tasks.baseline import METHODS, run_baseline
    from llmscisci.tasks.llm_states import CACHE_NAME, DEFAULT_STATES_MODEL, StatesEmbedder

    methods = [m.strip() for m in method.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"unknown --method {bad[0]!r}: use one of {', '.join(METHODS)}")
    if states_model is not None and "llm-states" not in methods:
        raise UserError("--states-model goes with --method llm-states")
    states = None
    if "llm-states" in methods:
        try:
            states = StatesEmbedder(states_model or DEFAULT_STATES_MODEL, cache_dir() / CACHE_NAME)
        except UserError as exc:
            raise UserError(f"--states-model: {exc}") from None
    teacher = None
    if labels is not None and labels.is_dir():  # distillation: learn a labelling run's answers
        from llmscisci.cli.label import explicit
        from llmscisci.tasks.distill import read_teacher

        teacher = read_teacher(labels)
        if explicit(ctx, "task") and ("," in task or load_codebook(task.strip()).shorts != teacher.codebook.shorts):
            raise UserError(f"--labels {labels}: the run labels task {teacher.codebook.task!r}, not {task!r}")
        task = teacher.codebook.task
    tasks = [t.strip() for t in task.split(",") if t.strip()]
    if save is not None:
        from llmscisci.tasks.baseline_model import SAVABLE

        if len(tasks) != 1 or len(methods) != 1 or methods[0] not in SAVABLE:
            raise UserError(f"--save needs one --task and one --method ({' or '.join(SAVABLE)})")
    from llmscisci.paths import check_output_path

    check_output_path(out_dir, "folder")
    if save is not None:
        check_output_path(save, "folder", "--save")
    if labels is not None and input_path is None and teacher is None:
        raise UserError(f"--labels {labels}: a label file goes with --input (a coded sample); to learn a labelling "
                        "run's answers, give its run folder")
    if teacher is not None and input_path is None and data_dir is None and teacher.input_spec().get("path"):
        input_path = Path(teacher.input_spec()["path"])  # a corpus run: its own input, where it still is
        if not input_path.exists():
            raise UserError(f"--labels {labels}: the corpus it labelled ({input_path}) is not there; give --input")
    if teacher is not None and input_path is None and data_dir is None:
        data_dir = teacher.config.get("data_source") or None
    src = str(input_path) if input_path is not None else str(resolve(data_dir))
    taught_by = teacher.record() if teacher is not None else None
    results, tables = [], []
    for t in tasks:
        cb = load_codebook(t) if teacher is None else teacher.codebook
        if teacher is not None:
            from llmscisci.tasks.distill import corpus_items, taught_items

            if input_path is not None:
                items = corpus_items(teacher, input_path, id_column, text_column)
            else:
                items = taught_items(load_items(cb, data_dir=src), teacher, f"the data in {src}")
        elif input_path is not None:
            from llmscisci.data.coded import load_coded

            items = load_coded(input_path, cb, labels, id_column=id_column, text_column=text_column)
        else:
            items = load_items(cb, data_dir=src)
        for m in methods:
            run = run_baseline(cb, items, m, out_dir, k=folds, seed=seed, data_source=src, cache_dir=cache_dir(),
                               states=states, teacher=taught_by)
            if save is not None:
                import numpy as np

                from llmscisci.tasks.baseline_model import save_model

                coded = [it for it in items if it.labels is not None]
                cv = {k: v for k, v in run.metrics()["cv"].items() if k != "folds"}
                save_model(save, m, cb, [it.text for it in coded], np.array([it.labels for it in coded]), seed,
                           cv={**cv, "test_macro_f1": run.metrics()["test"]["macro_f1"]}, states=states,
                           teacher=taught_by, train_ids=[it.doi for it in coded])
                console.print(f"model folder: {save}")
            met = run.metrics()
            cv = met["cv"]
            results.append({"task": t, "method": m, "run_dir": str(run.path), "metrics": met})
            tables += [format_table(met),
                       f"{t} {m}: CV macro-F1 {cv['macro_f1_mean']:.3f} ± {cv['macro_f1_std']:.3f} "
                       f"(k={cv['k']}); canonical test macro-F1 {met['test']['macro_f1']:.3f}; run folder {run.path}"]
            if teacher is not None:  # the scores measure agreement with the teacher, not with references
                tables.append(f"labels learnt and scored against: the answers of {teacher.config.get('model')} in "
                              f"{teacher.path} ({len(teacher.labels)} items; {teacher.n_left_out} left out: failed, "
                              "unparseable or empty)")
    emit(results[0] if len(results) == 1 else results, tables, as_json, json_out)


def register(app: typer.Typer) -> None:
    app.command("baseline")(baseline)
