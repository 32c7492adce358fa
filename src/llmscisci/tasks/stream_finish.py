"""Finishing a streamed labelling run: one pass over predictions.jsonl, in bounded memory.

Without reference labels there is nothing to score, so metrics.json holds the label distribution
(items per category and their share; per group of a metadata column with `--by`), the counts of
invalid, failed, refused and empty items, tokens and cost. predictions.csv is written row by row, and
a run of at least PARQUET_FROM items also gets predictions.parquet (typed columns). With reference
labels (a coded sample: small) the usual scores are computed as for any labelling run, plus the
distribution.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

from llmscisci.data.codebook import Codebook
from llmscisci.data.corpus import CorpusPlan
from llmscisci.records import is_valid
from llmscisci.runs import RunFolder

PARQUET_FROM = 10_000
CSV_FIELDS = ("doi", "task", "split", "valid", "repaired", "exact_format", "empty", "error")


def iter_predictions(run: RunFolder) -> Iterator[dict]:
    """predictions.jsonl one record per item, its latest attempt (a torn last line skipped)."""
    return run.iter_predictions()


class Distribution:
    """Counts of predicted categories, overall and per group."""

    def __init__(self, codebook: Codebook, by: str | None = None):
        self.cb, self.by = codebook, by
        self.counts = [0] * codebook.n
        self.n = 0
        self.groups: dict[str, list[int]] = {}  # group -> [n, count per category...]

    def add(self, rec: dict) -> None:
        labels = rec.get("labels") if is_valid(rec) else None
        if labels is None:
            return
        self.n += 1
        for j, v in enumerate(labels):
            self.counts[j] += int(v)
        if self.by:
            key = str((rec.get("meta") or {}).get(self.by, ""))
            g = self.groups.setdefault(key, [0] * (self.cb.n + 1))
            g[0] += 1
            for j, v in enumerate(labels):
                g[j + 1] += int(v)

    def _table(self, n: int, counts: list[int]) -> dict:
        """n and, per category, count, share and its 95% Wilson interval (about the model's labels)."""
        from statsmodels.stats.proportion import proportion_confint

        out: dict = {"n": n}
        for s, c in zip(self.cb.shorts, counts):
            lo, hi = proportion_confint(c, n, alpha=0.05, method="wilson") if n else (None, None)
            out[s] = {"count": c, "share": round(c / n, 4) if n else None,
                      "low": None if lo is None else round(float(lo), 4),
                      "high": None if hi is None else round(float(hi), 4)}
        return out

    def as_dict(self) -> dict:
        out = {"note": "predicted labels of the valid predictions; shares are of those items, with 95% Wilson "
                       "intervals (about the model's labels, not the truth: see `llmscisci prevalence`)",
               "all": self._table(self.n, self.counts)}
        if self.by:
            out["by"] = self.by
            out["groups"] = {k: self._table(g[0], g[1:]) for k, g in sorted(self.groups.items())}
        return out


def csv_row(rec: dict, cb: Codebook) -> dict:
    row = {k: rec.get(k) for k in CSV_FIELDS}
    row["empty"] = bool(rec.get("empty"))
    row |= cb.columns("pred", rec.get("labels")) | cb.columns("ref", rec.get("reference"))
    row["tokens_in"], row["tokens_out"], row["seconds"] = rec.get("tokens_in"), rec.get("tokens_out"), rec.get("seconds")
    return row


def finish_stream(run: RunFolder, codebook: Codebook, plan: CorpusPlan | None = None, by: str | None = None,
                  wall_seconds: float | None = None) -> dict:
    """metrics.json, predictions.csv (and .parquet when large) of a streamed run; `plan` None: from the
    run's config (`llmscisci eval`), keeping the `--by` grouping the run was made with."""
    cfg = run.config
    references = plan.has_references if plan is not None else bool((cfg.get("input") or {}).get("references"))
    by = by if plan is not None else cfg.get("by")
    dist = Distribution(codebook, by)
    if references:
        from llmscisci.tasks.finish import finish_run

        metrics = finish_run(run, codebook, wall_seconds=wall_seconds)
        for rec in iter_predictions(run):
            dist.add(rec)
        metrics["distribution"] = dist.as_dict()
        metrics["empty"] = sum(1 for r in iter_predictions(run) if r.get("empty"))
        run.write_metrics(metrics)
        _maybe_parquet(run, codebook, metrics["n"] if "n" in metrics else dist.n)
        return metrics
    from llmscisci.tasks.finish import add_diagnostics, answer_diagnostics

    diag = answer_diagnostics(cfg, codebook)
    n = invalid = failed = refusals = empty = tok_in = tok_out = no_answer = 0
    last_error = None
    cost, seconds, versions = None, 0.0, set()
    tmp = run.path / ".predictions.csv.tmp"
    fields = [*CSV_FIELDS, *codebook.columns("pred", None), *codebook.columns("ref", None),
              "tokens_in", "tokens_out", "seconds"]
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for rec in iter_predictions(run):
            n += 1
            invalid += not is_valid(rec)
            failed += bool(rec.get("error"))
            if rec.get("call_failed"):
                no_answer, last_error = no_answer + 1, rec.get("error")
            refusals += bool(rec.get("refusal"))
            empty += bool(rec.get("empty"))
            tok_in += rec.get("tokens_in") or 0
            tok_out += rec.get("tokens_out") or 0
            seconds += rec.get("seconds") or 0.0
            if rec.get("cost_usd") is not None:
                cost = (cost or 0.0) + rec["cost_usd"]
            if rec.get("model_version"):
                versions.add(rec["model_version"])
            dist.add(rec)
            diag.add(rec)
            w.writerow(csv_row(rec, codebook))
    os.replace(tmp, run.path / "predictions.csv")
    prev = run.metrics().get("timing")
    metrics = {"n": n, "references": False, "distribution": dist.as_dict(), "invalid": invalid,
               "failed": failed, "unanswered": no_answer, "last_error": last_error, "refusals": refusals,
               "empty": empty, "tokens": {"in": tok_in, "out": tok_out},
               "cost_usd": round(cost, 6) if cost is not None else None, "generation_seconds": round(seconds, 3)}
    from llmscisci.tasks.finish import completeness, planned_items

    metrics |= completeness(n, planned_items(run.config))  # `partial` when the run was interrupted
    if wall_seconds is not None:
        metrics["timing"] = {"last_wall_seconds": round(wall_seconds, 3), "previous": prev or None}
    if versions:
        metrics["model_versions"] = sorted(versions)
    add_diagnostics(metrics, run, codebook, diag=diag)
    run.write_metrics(metrics)
    _maybe_parquet(run, codebook, n)
    return metrics


def _maybe_parquet(run: RunFolder, codebook: Codebook, n: int) -> None:
    if n >= PARQUET_FROM:
        from llmscisci.report.export import export_run

        export_run(run.path, "parquet", Path(run.path) / "predictions.parquet")


def distribution_table(metrics: dict) -> str:
    """The distribution as a plain-text table (80 columns)."""
    dist = metrics.get("distribution") or {}
    rows = [("all", dist.get("all", {}))] + [(f"{dist.get('by')}={k}", v) for k, v in (dist.get("groups") or {}).items()]
    if not rows or not rows[0][1]:
        return ""
    shorts = [k for k in rows[0][1] if k != "n"]
    width = max(12, *(len(name) for name, _ in rows))
    head = f"{'group':<{width}} {'n':>7} " + " ".join(f"{s[:9]:>9}" for s in shorts)
    lines = ["label distribution (share of valid predictions)", head]
    for name, t in rows:
        cells = " ".join(f"{(t[s]['share'] or 0) * 100:8.1f}%" for s in shorts)
        lines.append(f"{name[:width]:<{width}} {t['n']:>7} {cells}")
    n = metrics["n"] if "n" in metrics else metrics.get("n_items")  # a run with references: evaluate()'s keys
    invalid = metrics.get("invalid")
    if invalid is None and n and metrics.get("invalid_rate") is not None:
        invalid = round(metrics["invalid_rate"] * n)
    lines.append(f"items {n}, invalid {invalid or 0}, failed {metrics.get('failed', 0)}, "
                 f"empty {metrics.get('empty', 0)}" + (f", cost ${metrics['cost_usd']:.4f}"
                                                       if metrics.get("cost_usd") is not None else ""))
    if metrics.get("partial"):
        lines.append(f"PARTIAL: {n} of {metrics.get('n_planned')} planned items (interrupted: resume it)")
    from llmscisci.metrics.diagnostics import summary_lines

    lines += summary_lines(metrics)
    return "\n".join(lines)
