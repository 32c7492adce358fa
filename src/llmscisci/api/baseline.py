"""`ls.baseline(...)`: the Python face of `llmscisci baseline` (classical classifiers, grouped k-fold
cross-validation over DOIs plus the canonical split, judged with the same metrics as the LLMs)."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.inputs import codebook_of, corpus_path
from llmscisci.api.run import Run
from llmscisci.errors import UserError


def baseline(data=None, *, task="easy", method: str = "tfidf-logreg", folds: int = 5, seed: int = 2025,
             data_dir: str | Path | None = None, out: str | Path = "runs", save: str | Path | None = None,
             labels: str | Path | None = None, id_column: str | None = None,
             text_column: str | None = None) -> Run:
    """Fit `method` (tfidf-logreg, embed-logreg, majority, prior) on the study's data or on a coded sample
    (`data`: a file, a DataFrame or a list of dicts with one column per category, or `labels=` a label
    file); `save=DIR` also writes the fitted model (label with it as `model="baseline:DIR"`)."""
    import numpy as np

    from llmscisci.data.items import load_items
    from llmscisci.paths import cache_dir
    from llmscisci.paths import data_dir as resolve
    from llmscisci.tasks.baseline import METHODS, run_baseline

    if method not in METHODS:
        raise UserError(f"unknown --method {method!r}: use one of {', '.join(METHODS)}")
    if save is not None:
        from llmscisci.tasks.baseline_model import SAVABLE

        if method not in SAVABLE:
            raise UserError(f"--save needs --method {' or '.join(SAVABLE)}")
    if labels is not None and data is None:
        raise UserError("labels goes with data (a coded sample)")
    cb = codebook_of(task)
    path = corpus_path(data, out)
    if path is not None:
        from llmscisci.data.coded import load_coded

        items = load_coded(path, cb, labels, id_column=id_column, text_column=text_column)
        src = str(path)
    else:
        src = str(resolve(data_dir))
        items = load_items(cb, data_dir=src)
    run = run_baseline(cb, items, method, out, k=folds, seed=seed, data_source=src, cache_dir=cache_dir())
    if save is not None:
        from llmscisci.tasks.baseline_model import save_model

        coded = [it for it in items if it.labels is not None]
        met = run.metrics()
        cv = {k: v for k, v in met["cv"].items() if k != "folds"}
        save_model(save, method, cb, [it.text for it in coded], np.array([it.labels for it in coded]), seed,
                   cv={**cv, "test_macro_f1": met["test"]["macro_f1"]})
    return Run(run.path)
