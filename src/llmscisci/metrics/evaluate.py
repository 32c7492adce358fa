"""Evaluation of a labelling run's predictions: one entry point reused by every run folder.

`evaluate(records, codebook)` takes prediction records (doi, task, split, reference, labels, valid,
repaired) and returns the metrics dict written to metrics.json: scores on all scored items, on the
canonical test split, on the train split (for choosing a variant without touching the test split) and
on valid outputs only; invalid and repaired rates; majority and per-label
prior baselines fitted on the training split only. `format_table` renders the short summary printed at
the end of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from rich.table import Table

from llmscisci.console import fmt
from llmscisci.data.codebook import Codebook
from llmscisci.data.validate import LabelError, check_shape
from llmscisci.metrics.multilabel import ZERO_DIVISION, majority_vector, prior_predictions, scores
from llmscisci.records import LabelPrediction, typed
from llmscisci.records import is_valid as record_is_valid

INVALID_POLICY = "invalid outputs are scored as predicting no category (all zeros)"
SCORE_KEYS = ("hamming_loss", "subset_accuracy", "micro_f1", "macro_f1", "macro_f1_present")
FEW_POSITIVES = 5  # a category with fewer reference positives than this gets a wide, unstable F1


def _vector(value, n: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return check_shape(list(value), n)
    except (LabelError, TypeError):
        return None


def _matrix(rows: Sequence[Sequence[int]], n: int) -> np.ndarray:
    return np.asarray(rows, dtype=int).reshape(len(rows), n)


def evaluate(
    records: Sequence[LabelPrediction] | Sequence[dict],
    codebook: Codebook,
    seed: int = 2025,
    *,
    train_reference: Sequence[Sequence[int]] | None = None,
) -> dict:
    """Metrics of one run's predictions.

    Items without a reference are counted (`n_items`, the rates) but not scored. A prediction that is
    invalid (or whose labels are missing or malformed) is scored as an all-zero vector, which is always
    wrong (a valid vector is never all zero under the none policy). Rates are over all items.
    Baselines are fitted on the references of the records in the train split, or on
    `train_reference` when given (e.g. the whole training split when the run covered a subset), and
    never see test labels.

    `records`: `LabelPrediction`s (`RunFolder.predictions()`); dicts as read from predictions.jsonl are
    accepted too (validated into `LabelPrediction` here).
    """
    records = list(typed(records, LabelPrediction))
    n = codebook.n
    names = codebook.shorts
    tasks = {r.task for r in records} - {None}
    if tasks - {codebook.task}:
        raise ValueError(f"records of task(s) {sorted(tasks)} evaluated with codebook {codebook.task!r}")

    n_items = len(records)
    valid_flags, repaired_flags = [], []
    y_true, y_pred, is_test, is_train, is_valid, train_rows = [], [], [], [], [], []
    for r in records:
        pred = _vector(r.labels, n)
        valid = record_is_valid(r) and pred is not None
        valid_flags.append(valid)
        repaired_flags.append(valid and bool(r.repaired))
        ref = _vector(r.reference, n)
        if ref is None:
            continue
        y_true.append(ref)
        y_pred.append(pred if valid else (0,) * n)
        is_test.append(r.split == "test")
        is_train.append(r.split == "train")
        is_valid.append(valid)
        if r.split == "train":
            train_rows.append(ref)

    t, p = _matrix(y_true, n), _matrix(y_pred, n)
    test = np.asarray(is_test, dtype=bool)
    train = np.asarray(is_train, dtype=bool)
    valid_mask = np.asarray(is_valid, dtype=bool)
    out = {
        "n_items": n_items,
        "n_scored": int(t.shape[0]),
        "n_test": int(test.sum()),
        "invalid_rate": (1 - sum(valid_flags) / n_items) if n_items else None,
        "repaired_rate": (sum(repaired_flags) / n_items) if n_items else None,
        "all": scores(t, p, names),
        "test": scores(t[test], p[test], names),
        # for choosing a prompt variant or a model without looking at the test split
        "train": scores(t[train], p[train], names),
        "valid_only": scores(t[valid_mask], p[valid_mask], names),
        "baselines": _baselines(t, test, train_reference if train_reference is not None else train_rows,
                                codebook, seed),
        "invalid_policy": INVALID_POLICY,
        "zero_division": ZERO_DIVISION,
        "seed": seed,
    }
    return out


def _baselines(t: np.ndarray, test: np.ndarray, train_rows, codebook: Codebook, seed: int) -> dict:
    n = codebook.n
    train = _matrix([check_shape(list(r), n) for r in train_rows], n)
    if train.shape[0] == 0:
        return {"fitted_on": "train", "n_train": 0, "majority": None, "prior": None,
                "note": "no training-split references among the evaluated items; baselines not computed"}
    vector = majority_vector(train, none_index=codebook.none_index)
    majority = np.tile(vector, (t.shape[0], 1))
    prior = prior_predictions(train, t.shape[0], seed, none_index=codebook.none_index)
    return {
        "fitted_on": "train",
        "n_train": int(train.shape[0]),
        "majority": {"vector": vector.tolist(),
                     "all": scores(t, majority, codebook.shorts),
                     "test": scores(t[test], majority[test], codebook.shorts)},
        "prior": {"seed": seed,
                  "all": scores(t, prior, codebook.shorts),
                  "test": scores(t[test], prior[test], codebook.shorts)},
    }


_fmt = partial(fmt, none="–", compact=False)


def completeness_note(metrics: dict) -> str | None:
    """'PARTIAL: 2 of 6 planned items' for an interrupted run, else None."""
    planned = metrics.get("n_planned")
    if metrics.get("partial") and planned:
        return f"PARTIAL: {metrics.get('n_items', 0)} of {planned} planned items"
    return None


def format_table(metrics: dict, task: str | None = None) -> Table:
    """A short summary: metric rows; the model on all items and on the test split, with the majority
    and prior baselines alongside; n, invalid and repaired rates in the caption. Fits 80 columns (two-line
    headers, numbers never cut), so it stays legible in a terminal, a log file or a pipe. `task` names the
    task in the title (a run of several tasks prints one table each)."""
    base = metrics.get("baselines") or {}
    maj, pri = base.get("majority") or {}, base.get("prior") or {}
    partial = completeness_note(metrics)
    title = "Labelling metrics" + (f": task {task}" if task else "") + (f" — {partial}" if partial else "")
    table = Table(title=title, title_justify="left", caption_justify="left")
    table.add_column("metric", no_wrap=True)
    for head in ("all", "test", "maj.\nall", "maj.\ntest", "prior\nall", "prior\ntest"):
        table.add_column(head, justify="right", no_wrap=True, min_width=5)
    sources = [metrics.get("all"), metrics.get("test"), maj.get("all"), maj.get("test"), pri.get("all"),
               pri.get("test")]
    labels = {"hamming_loss": "Hamming loss ↓", "subset_accuracy": "subset accuracy",
              "micro_f1": "micro F1", "macro_f1": "macro F1", "macro_f1_present": "macro F1 present*"}
    for key in SCORE_KEYS:
        table.add_row(labels[key], *[_fmt((s or {}).get(key)) for s in sources])
    table.add_row("n", *[str(s.get("n", 0)) if s else "–" for s in sources])
    extra = ""
    if metrics.get("empty"):
        extra += f"; {metrics['empty']} empty texts labelled none without a model call"
    if metrics.get("bad_lines_skipped"):
        extra += f"; {metrics['bad_lines_skipped']} unreadable prediction lines skipped"
    table.caption = (
        (f"{partial} (interrupted: resume it to finish); " if partial else "")
        + f"{metrics.get('n_items', 0)} items ({metrics.get('n_scored', 0)} with a reference); "
        f"invalid {_fmt(metrics.get('invalid_rate'))}, repaired {_fmt(metrics.get('repaired_rate'))}; "
        "invalid scored as all zeros; baselines fitted on train" + extra + "\n" + support_note(metrics)
    )
    return table


def support_note(metrics: dict) -> str:
    """Support per category (reference positives), what macro F1 present* leaves out, the categories
    with few positives, and the zero-division rule: what the macro averages are over."""
    parts = []
    for split in ("all", "test"):
        sc = metrics.get(split) or {}
        per = sc.get("per_label") or {}
        if not per:
            continue
        support = ", ".join(f"{k} {v.get('support', 0)}" for k, v in per.items())
        parts.append(f"support on {split} (reference positives): {support}")
        few = [f"{k} {v['support']}" for k, v in per.items() if 0 < v.get("support", 0) < FEW_POSITIVES]
        if few:
            parts.append(f"  fewer than {FEW_POSITIVES} positives (unstable F1): {', '.join(few)}")
        left = sc.get("macro_f1_left_out") or []
        if left:
            parts.append(f"  macro F1 present* on {split} leaves out (0 positives): {', '.join(left)}")
    if parts:
        parts.append("*present: macro F1 over the categories with reference positives; F1 is 0 where "
                     "undefined (zero_division=0)")
    return "\n".join(parts)
