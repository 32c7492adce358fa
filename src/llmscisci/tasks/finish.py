"""The end of a labelling run: metrics.json and predictions.csv from its predictions, and how complete
the run is (`partial` when fewer items were labelled than planned), and whether its answers depend on the
text (`diagnostics`, the `placebo` check read from placebo.jsonl, `warnings`). Shared by study runs,
streamed corpus runs and `llmscisci eval`. `unanswered` counts the items whose latest attempt got no answer
from the server (every runner records it; the command then exits 3, see docs/results-integrity.md)."""

from __future__ import annotations

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


def add_diagnostics(metrics: dict, run: RunFolder, codebook: Codebook, records: Iterable[dict] | None = None,
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


def unanswered(records: Iterable) -> dict:
    """{"unanswered": items whose latest attempt got no answer, "last_error": the last such error}
    (records: dicts or record objects, one per item)."""
    n, last = 0, None
    for r in records:
        failed, error = (r.get("call_failed"), r.get("error")) if isinstance(r, dict) else (r.call_failed, r.error)
        if failed:
            n, last = n + 1, error
    return {"unanswered": n, "last_error": last}


def completeness(n_done: int, planned: int | None, bad_lines: int = 0) -> dict:
    """How much of the planned run the predictions cover (`partial` when fewer than planned)."""
    out: dict = {}
    if planned:
        out = {"n_planned": planned, "partial": n_done < planned}
    if bad_lines:
        out["bad_lines_skipped"] = bad_lines
    return out


def finish_run(run: RunFolder, codebook: Codebook, wall_seconds: float | None = None, n_resumed: int = 0,
               skip_bad: bool = False) -> dict:
    """Compute metrics from the predictions and write metrics.json and predictions.csv."""
    from llmscisci.metrics.evaluate import evaluate

    # item order, not completion order: concurrency and resumes must not change any number
    preds = sorted(run.predictions(skip_bad=skip_bad), key=lambda p: (str(p.get("task")), str(p.get("doi"))))
    metrics = evaluate(preds, codebook, train_reference=run.config.get("train_reference") or None)
    metrics |= completeness(len(preds), planned_items(run.config), run.bad_lines)
    metrics["empty"] = sum(1 for p in preds if p.get("empty"))
    metrics["exact_format_rate"] = sum(bool(p.get("exact_format")) for p in preds) / max(len(preds), 1)
    metrics["failed"] = sum(1 for p in preds if p.get("error"))
    metrics |= unanswered(preds)
    metrics["refusals"] = sum(1 for p in preds if p.get("refusal"))
    metrics["tokens"] = {
        "in": sum(p.get("tokens_in") or 0 for p in preds),
        "out": sum(p.get("tokens_out") or 0 for p in preds),
    }
    costs = [p["cost_usd"] for p in preds if p.get("cost_usd") is not None]
    metrics["cost_usd"] = round(sum(costs), 6) if costs else None
    metrics["generation_seconds"] = round(sum(p.get("seconds") or 0 for p in preds), 3)
    prev = run.metrics().get("timing", {})
    if wall_seconds is not None:
        metrics["timing"] = {"last_wall_seconds": round(wall_seconds, 3), "resumed_items": n_resumed,
                             "previous": prev or None}
    elif prev:  # `llmscisci eval` recomputes scores; the run's timing stays what it was
        metrics["timing"] = prev
    versions = sorted({p["model_version"] for p in preds if p.get("model_version")})
    if versions:
        metrics["model_versions"] = versions
    add_diagnostics(metrics, run, codebook, preds)
    run.write_metrics(metrics)
    rows = []
    for p in preds:
        row = {k: p.get(k) for k in ("doi", "task", "split", "valid", "repaired", "exact_format", "error")}
        row |= codebook.columns("pred", p.get("labels")) | codebook.columns("ref", p.get("reference"))
        row["tokens_in"], row["tokens_out"], row["seconds"] = p.get("tokens_in"), p.get("tokens_out"), p.get("seconds")
        rows.append(row)
    run.write_csv(rows)
    return metrics
