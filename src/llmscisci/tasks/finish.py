"""The end of a labelling run: metrics.json and predictions.csv from its predictions, and how complete
the run is (`partial` when fewer items were labelled than planned), and whether its answers depend on the
text (`diagnostics`, the `placebo` check read from placebo.jsonl, `warnings`). Shared by study runs,
streamed corpus runs and `llmscisci eval`. `unanswered` counts the items whose latest attempt got no answer
from the server (every runner records it; the command then exits 3, see docs/results-integrity.md)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable

from llmscisci.data.codebook import Codebook
from llmscisci.metrics.diagnostics import AnswerDiagnostics, placebo_summary, prompt_examples, warnings
from llmscisci.runs import RunFolder, iter_jsonl

PLACEBO_FILE = "placebo.jsonl"  # the placebo check's answers, kept apart from predictions.jsonl


def answer_diagnostics(config: dict, codebook: Codebook) -> AnswerDiagnostics:
    return AnswerDiagnostics(prompt_examples(config), codebook.shorts)


def read_placebo(run: RunFolder) -> dict | None:
    path = run.path / PLACEBO_FILE
    return placebo_summary(list(iter_jsonl(path))) if path.is_file() else None


def add_diagnostics(metrics: dict, run: RunFolder, codebook: Codebook, records: Iterable | None = None,
                    diag: AnswerDiagnostics | None = None) -> dict:
    """`diagnostics`, `placebo` (when the check was run) and `warnings` of a run, into `metrics`."""
    if diag is None:
        diag = answer_diagnostics(run.config, codebook)
        for rec in records or []:
            diag.add(rec)
    metrics["diagnostics"] = diag.as_dict()
    placebo = read_placebo(run)
    if placebo is not None:
        metrics["placebo"] = placebo
    else:
        metrics.pop("placebo", None)
    metrics["warnings"] = warnings(metrics["diagnostics"], placebo)
    return metrics


def planned_items(config: dict) -> int | None:
    """How many items a run set out to label: its item list, or a streamed corpus's count (and --limit)."""
    items = config.get("items")
    if isinstance(items, list):
        return len(items) or None
    if isinstance(items, dict) and isinstance(items.get("n"), int):
        limit = config.get("limit")
        return min(items["n"], limit) if isinstance(limit, int) else items["n"]
    return None


def completeness(n_done: int, planned: int | None, bad_lines: int = 0) -> dict:
    """How much of the planned run the predictions cover (`partial` when fewer than planned)."""
    out: dict = {}
    if planned:
        out = {"n_planned": planned, "partial": n_done < planned}
    if bad_lines:
        out["bad_lines_skipped"] = bad_lines
    return out


def has_references(config: dict) -> bool:
    """Whether a labelling run's items have reference labels to score against: the study's always; a
    corpus run's (`streamed`) when its input had them."""
    return bool((config.get("input") or {}).get("references")) if config.get("streamed") else True


def finish_run(run: RunFolder, codebook: Codebook, wall_seconds: float | None = None, n_resumed: int = 0,
               skip_bad: bool = False, *, references: bool | None = None, by: str | None = None,
               bad_lines: int = 0) -> dict:
    """The one finisher of a labelling run (study, corpus, `llmscisci eval`): metrics.json and
    predictions.csv (and predictions.parquet when large) from the predictions, one per item, its latest
    attempt. With `references` (None: from config.json) the rows are scored (evaluate(), in item order:
    no number depends on the completion order; the rows are then in memory, as a coded sample is
    small), else the run is read once in bounded memory. Both get the label distribution (grouped by
    `by`, else config.json's `by`), the call totals (records.CallTotals) and the answer diagnostics.

    An unreadable line other than a torn last one is an error unless `skip_bad` (scored runs);
    `bad_lines`: the lines a caller has already counted as skipped."""
    from llmscisci.metrics.evaluate import evaluate
    from llmscisci.records import CallTotals, is_valid
    from llmscisci.tasks.stream_finish import CSV_FIELDS, Distribution, csv_row, maybe_parquet

    cfg = run.config
    references = has_references(cfg) if references is None else references
    dist = Distribution(codebook, by if by is not None else cfg.get("by"))
    diag = answer_diagnostics(cfg, codebook)
    if references:
        # item order, not completion order: concurrency and resumes must not change any number
        records = sorted(run.records(skip_bad=skip_bad), key=lambda r: (str(r.task), str(r.doi)))
        bad_lines = bad_lines or run.bad_lines
    else:
        records = run.iter_records()
    totals, invalid = CallTotals(), 0
    tmp = run.path / ".predictions.csv.tmp"
    fields = [*CSV_FIELDS, *codebook.columns("pred", None), *codebook.columns("ref", None),
              "tokens_in", "tokens_out", "seconds"]
    try:  # predictions.csv written row by row, replaced only once complete
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            out = csv.DictWriter(fh, fieldnames=fields)
            out.writeheader()
            for rec in records:
                totals.add(rec)
                dist.add(rec)
                diag.add(rec)
                invalid += not is_valid(rec)
                out.writerow(csv_row(rec, codebook))
        os.replace(tmp, run.path / "predictions.csv")
    finally:
        tmp.unlink(missing_ok=True)
    if references:  # `records` is the sorted list read above
        metrics = evaluate(records, codebook, train_reference=cfg.get("train_reference") or None)
        metrics["exact_format_rate"] = sum(bool(r.exact_format) for r in records) / max(len(records), 1)
    else:
        metrics = {"n": totals.n, "references": False, "invalid": invalid}
    metrics |= completeness(totals.n, planned_items(cfg), bad_lines)
    metrics |= totals.as_metrics()
    metrics["distribution"] = dist.as_dict()
    prev = run.metrics().get("timing", {})
    if wall_seconds is not None:
        metrics["timing"] = {"last_wall_seconds": round(wall_seconds, 3), "resumed_items": n_resumed,
                             "previous": prev or None}
    elif prev:  # `llmscisci eval` recomputes scores; the run's timing stays what it was
        metrics["timing"] = prev
    add_diagnostics(metrics, run, codebook, diag=diag)
    if cfg.get("seen_in_training"):  # a fitted classifier labelling items it was fitted on
        metrics["warnings"].append(seen_warning(cfg["seen_in_training"], totals.n))
    run.write_metrics(metrics)
    maybe_parquet(run, totals.n)
    return metrics


def seen_warning(n_seen: int, n: int) -> str:
    return (f"{n_seen} of the {n} items labelled were in the classifier's training data: its scores on them "
            "measure how well it fits them, not how well it labels new texts (baseline's cross-validated scores "
            "do)")
