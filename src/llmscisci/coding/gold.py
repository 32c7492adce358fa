"""Gold codes for the prevalence estimators: human codes of a sample of a run's items, with the
sampling probabilities an imported sample records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.labelfiles import load_labels
from llmscisci.errors import DataError, UserError
from llmscisci.runs import iter_jsonl


# =================================================================================================
# gold codes for the prevalence estimators
# =================================================================================================
@dataclass
class Gold:
    path: Path
    labels: dict[str, tuple[int, ...]]  # doi -> human codes (this task)
    pi: dict[str, float] | None  # doi -> sampling probability, when the file records the design
    outside: list[str]  # coded DOIs that are not among the run's items


def load_gold(path: str | Path, codebook: Codebook, run_dois: Sequence[str]) -> Gold:
    """Human codes for one task from any label file (a coded sheet's import, reference.csv, ...), with
    the sampling probabilities an imported sample records."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"--gold {p}: no such file")
    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    labels = load_labels(p, books).labels(codebook.task)
    if not labels:
        raise UserError(f"--gold {p}: no codes for task {codebook.task!r}")
    inside = set(run_dois)
    outside = [d for d in labels if d not in inside]
    labels = {d: v for d, v in labels.items() if d in inside}
    if not labels:
        raise UserError(f"--gold {p}: none of its {len(outside)} coded items is among the run's items")
    pi = None
    src = p / "predictions.jsonl" if p.is_dir() else p
    if src.suffix == ".jsonl":
        probs: dict[str, float] = {}
        rows: dict[str, int] = {}
        for i, _, rec in iter_jsonl(src, positions=True):  # a run folder's reader: unreadable lines skipped
            if rec.get("task") == codebook.task and str(rec.get("doi", "")).strip() in labels:
                doi = str(rec["doi"]).strip()
                rows[doi] = i
                if rec.get("sampling_prob") is not None:
                    try:
                        v = float(rec["sampling_prob"])
                    except (TypeError, ValueError):
                        v = float("nan")
                    if not 0 < v <= 1:
                        raise DataError(src, f"sampling probability {rec['sampling_prob']!r} is not in (0, 1]",
                                        row=i, column="sampling_prob")
                    probs[doi] = v
        if probs:
            lacking = [d for d in labels if d not in probs]
            if lacking:
                raise DataError(src, "sampling_prob missing while other items have one", row=rows.get(lacking[0]),
                                column="sampling_prob")
            pi = probs
    return Gold(p, labels, pi, outside)
