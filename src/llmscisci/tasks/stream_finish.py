"""What the labelling finisher (tasks/finish.py) writes beside the scores, in bounded memory: the label
distribution (items per category and their share, with intervals; per group of a metadata column with
`--by`), predictions.csv's rows (written one by one), predictions.parquet for a run of at least
PARQUET_FROM items, and the distribution as a table for the terminal.
"""

from __future__ import annotations

from pathlib import Path

from llmscisci.data.codebook import Codebook
from llmscisci.records import LabelPrediction, is_valid
from llmscisci.runs import RunFolder

PARQUET_FROM = 10_000
CSV_FIELDS = ("doi", "task", "split", "valid", "repaired", "exact_format", "empty", "error")


class Distribution:
    """Counts of predicted categories, overall and per group."""

    def __init__(self, codebook: Codebook, by: str | None = None):
        self.cb, self.by = codebook, by
        self.counts = [0] * codebook.n
        self.n = 0
        self.groups: dict[str, list[int]] = {}  # group -> [n, count per category...]

    def add(self, rec: LabelPrediction | dict) -> None:
        """Count one prediction (a `LabelPrediction`; a dict as read is validated into one)."""
        if isinstance(rec, dict):
            rec = LabelPrediction.read(rec)
        labels = rec.labels if is_valid(rec) else None
        if labels is None:
            return
        self.n += 1
        for j, v in enumerate(labels):
            self.counts[j] += int(v)
        if self.by:
            key = str((rec.meta or {}).get(self.by, ""))
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


def csv_row(rec: LabelPrediction | dict, cb: Codebook) -> dict:
    """predictions.csv's row of a record (a dict as read is validated into one); a field the line did
    not carry is left blank (not its default)."""
    if isinstance(rec, dict):
        rec = LabelPrediction.read(rec)
    given = rec.model_fields_set
    row = {k: getattr(rec, k) if k in given else None for k in CSV_FIELDS}
    row["empty"] = bool(rec.empty)
    row |= cb.columns("pred", rec.labels) | cb.columns("ref", rec.reference)
    row["tokens_in"], row["tokens_out"], row["seconds"] = rec.tokens_in, rec.tokens_out, rec.seconds
    return row


def maybe_parquet(run: RunFolder, n: int) -> None:
    """predictions.parquet (typed columns) beside the CSV of a run of at least PARQUET_FROM items."""
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
