"""`ls.baseline(...)`: the Python face of `llmscisci baseline` (classical classifiers, grouped k-fold
cross-validation over DOIs plus the canonical split, judged with the same metrics as the LLMs)."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.inputs import codebook_of, corpus_path
from llmscisci.api.run import Run
from llmscisci.errors import UserError


def baseline(data=None, *, task=None, method: str = "tfidf-logreg", states_model: str | None = None,
             folds: int = 5, seed: int = 2025, data_dir: str | Path | None = None, out: str | Path = "runs",
             save: str | Path | None = None, labels: str | Path | None = None, id_column: str | None = None,
             text_column: str | None = None) -> Run:
    """Fit `method` (tfidf-logreg, embed-logreg, llm-states, majority, prior) on the study's data or on a
    coded sample (`data`: a file, a DataFrame or a list of dicts with one column per category, or
    `labels=` a label file for it); `labels=RUN_DIR` (or a `Run`) learns a labelling run's answers instead
    (distillation; texts from `data` or the run's own input). `task`: default easy, or the run's task.
    llm-states takes the hidden states of `states_model` (default smollm2-135m). `save=DIR` also writes
    the fitted model (label with it as `model="baseline:DIR"`)."""
    from llmscisci.api.baseline_runs import baseline_runs, check_methods

    if "," in method:
        raise UserError(f"method {method!r}: give one method per call")
    check_methods([method], states_model)  # before a DataFrame is stored
    labels = getattr(labels, "path", labels)  # a Run is its folder
    if labels is not None and data is None and not Path(labels).is_dir():
        raise UserError("labels goes with data (a coded sample), or names a labelling run folder to learn from")
    book = codebook_of("easy" if task is None else task)
    [fitted] = baseline_runs([book], [method], states_model=states_model, folds=folds, seed=seed,
                             data_dir=data_dir, out_dir=out, save=save, input_path=corpus_path(data, out),
                             labels=labels, id_column=id_column, text_column=text_column,
                             task_given=task is not None)
    return Run(fitted.run.path)
