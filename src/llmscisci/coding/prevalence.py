"""Prevalence of each category in a labelled corpus, from a label run and the human codes of a sample of
its items (the plumbing of `llmscisci prevalence`): the run's predictions, the gold codes and the
sampling design, handed to the estimators in metrics/prevalence.py (naive, coded only, PPI, DSL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmscisci.coding.gold import Gold, load_gold
from llmscisci.coding.runs import LoadedRun, load_run
from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError
from llmscisci.runs import meta_column


@dataclass
class CorpusPrevalence:
    payload: dict  # what `llmscisci prevalence` prints with --json and writes to prevalence.json
    result: dict  # the estimates (Prevalence.to_dict())
    codebook: Codebook
    run: LoadedRun
    gold: Gold
    valid: np.ndarray  # per item: the model's output was valid
    design: str  # the sampling design, in words


def corpus_prevalence(run_dir: str | Path, gold: str | Path, *, by: str | None = None, level: float = 0.95,
                      data_dir: str | Path | None = None) -> CorpusPrevalence:
    """Estimate each category's share of the run's corpus (per group of item column `by` too)."""
    from llmscisci.metrics.prevalence import prevalence as estimate
    from llmscisci.metrics.stats import as_prediction_matrix

    own = meta_column(Path(run_dir), by)[0] if by is not None and by != "split" else {}
    run = load_run(run_dir, data_dir, need_items=by is not None and not own)
    cb = run.codebook
    g = load_gold(gold, cb, run.dois)
    dois = run.dois
    groups = None
    if own:  # a run of one's own corpus keeps each item's columns in its records
        groups = [own.get(d, "") or "(none)" for d in dois]
    elif by is not None:
        if by == "split":
            groups = [run.items[d].split for d in dois]
        else:
            have = sorted({k for it in run.items.values() for k in it.meta} | {"split"})
            if by not in have:
                raise UserError(f"--by {by!r}: not an item column (available: {', '.join(have)})")
            groups = [str(run.items[d].meta.get(by, "")) or "(none)" for d in dois]
    preds = [run.predictions[d] for d in dois]
    yhat = as_prediction_matrix(preds, cb.n)
    valid = np.array([p is not None for p in preds])
    y = np.full((len(dois), cb.n), np.nan)
    for i, d in enumerate(dois):
        if d in g.labels:
            y[i] = g.labels[d]
    n_coded = len(g.labels)
    if g.pi is not None:
        pi = np.array([g.pi.get(d, np.nan) for d in dois])
        design = "sampling probabilities recorded in the gold file"
    else:
        pi = np.full(len(dois), n_coded / len(dois))
        design = f"no sampling probabilities in the gold file: taken as a simple random sample ({n_coded}/{len(dois)})"
    result = estimate(yhat, y, pi, cb.shorts, valid=valid, groups=groups, by=by, level=level).to_dict()
    payload = {"run": str(run_dir), "gold": str(gold), "task": cb.task, "model": run.config.get("model"),
               "variant": run.config.get("variant"), "n_items": len(dois), "n_invalid": int((~valid).sum()),
               "n_coded": n_coded, "coded_outside_run": len(g.outside), "design": design, **result}
    return CorpusPrevalence(payload, result, cb, run, g, valid, design)
