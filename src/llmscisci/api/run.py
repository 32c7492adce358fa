"""`Run`: a run folder as a Python object (its config, metrics, predictions as a DataFrame, the
diagnostics and warnings), shown as a summary table in a notebook; `open_run(path)` opens any run folder
the command line or the API wrote."""

from __future__ import annotations

import html
from functools import cached_property
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.runs import RunFolder

__all__ = ["Run", "open_run"]

SCORES = ("macro_f1", "micro_f1", "subset_accuracy", "hamming_loss")
SPLITS = ("all", "test")


def open_run(path: str | Path) -> "Run":
    """The run in folder `path` (label, baseline, judge, extraction or evaluation runs)."""
    return Run(path)


class Run:
    """One run folder. `.predictions` is a pandas DataFrame (label-style runs: one row per item in input
    order, one 0/1 column per category, `valid`/`failed` flags, tokens and cost)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such run folder")
        self._folder = RunFolder(self.path)
        self.config  # noqa: B018 - a folder without config.json is an error now, not on first use

    # --- what the folder holds ------------------------------------------------------------------
    @cached_property
    def config(self) -> dict:
        return self._folder.config

    @property
    def metrics(self) -> dict:
        return self._folder.metrics()

    @property
    def kind(self) -> str:
        return str(self.config.get("kind", "label"))

    @property
    def diagnostics(self) -> dict:
        """metrics.json's `diagnostics` (empty when the run has none)."""
        return self.metrics.get("diagnostics") or {}

    @property
    def codebook(self):
        from llmscisci.data.codebook import Codebook

        book = self.config.get("codebook")
        return Codebook(**book) if isinstance(book, dict) else None

    @property
    def warnings(self) -> list[str]:
        """What a reader should know before trusting the numbers: a partial run, failed calls, refusals,
        invalid outputs, unreadable lines, and any warnings the run's diagnostics give."""
        m, out = self.metrics, []
        if not m:
            out.append("no metrics.json: the run has not finished (continue it by running it again)")
        if m.get("partial"):
            out.append(f"partial run: {m.get('n_items', '?')} of {m.get('n_planned')} items labelled "
                       "(run it again to finish)")
        if m.get("failed"):
            out.append(f"{m['failed']} items got no valid answer from the model (errors)")
        if m.get("refusals"):
            out.append(f"{m['refusals']} refusals")
        invalid = m.get("invalid_rate")
        if isinstance(invalid, (int, float)) and invalid > 0:
            out.append(f"invalid outputs: {invalid:.1%} (scored as all zeros)")
        if m.get("bad_lines_skipped"):
            out.append(f"{m['bad_lines_skipped']} unreadable prediction lines skipped")
        diag = self.diagnostics
        for w in (diag.get("warnings") or []) if isinstance(diag, dict) else []:
            out.append(str(w.get("message", w)) if isinstance(w, dict) else str(w))
        return out

    def records(self) -> list[dict]:
        """predictions.jsonl's records, one per call: per item (label-style runs) or per item and candidate
        order (judge runs); the last written wins."""
        from llmscisci.runs import read_jsonl
        from llmscisci.tasks import registry

        path = self._folder.predictions_path
        if not path.is_file():
            return []
        kind = registry.of_run(self.config)
        seen: dict = {}
        for i, rec in enumerate(read_jsonl(path)):
            key = kind.record_key(rec)
            seen[i if key is None else key] = rec
        return list(seen.values())

    @property
    def predictions(self):
        """A DataFrame: for label-style runs id, task, split, one 0/1 column per category (missing for an
        invalid answer), valid, failed, empty, refusal, tokens_in, tokens_out, cost_usd, and the
        reference as `ref_<category>` where there is one; otherwise the records as they are."""
        import pandas as pd

        recs = self.records()
        book = self.codebook
        if book is None or not recs or "labels" not in {k for r in recs[:50] for k in r}:
            return pd.DataFrame(recs)
        recs = _in_input_order(recs, self.config, book)
        rows = []
        for r in recs:
            labels = r.get("labels") if r.get("valid") else None
            row = {"id": r.get("doi"), "task": r.get("task"), "split": r.get("split")}
            row |= {s: (None if labels is None else int(labels[j])) for j, s in enumerate(book.shorts)}
            row |= {"valid": bool(r.get("valid")), "failed": bool(r.get("error")) or bool(r.get("call_failed")),
                    "empty": bool(r.get("empty")), "refusal": bool(r.get("refusal")),
                    "tokens_in": r.get("tokens_in"), "tokens_out": r.get("tokens_out"),
                    "cost_usd": r.get("cost_usd")}
            if r.get("reference") is not None:
                row |= {f"ref_{s}": int(r["reference"][j]) for j, s in enumerate(book.shorts)}
            rows.append(row)
        df = pd.DataFrame(rows)
        for s in book.shorts + [f"ref_{s}" for s in book.shorts]:
            if s in df:
                df[s] = df[s].astype("Int8")
        return df

    def to_parquet(self, path: str | Path) -> Path:
        """Write `.predictions` to a Parquet file; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.predictions.to_parquet(path, index=False)
        return path

    def intervals(self, *, n_boot: int = 1000, level: float = 0.95, seed: int = 2025):
        """The headline scores with cluster-bootstrap confidence intervals (DOIs resampled, as in the
        report), per split with references: a DataFrame (split, metric, estimate, low, high, n)."""
        import pandas as pd

        from llmscisci.metrics import stats as S

        if not 0 < level < 1:
            raise UserError(f"level {level}: must be between 0 and 1 (e.g. 0.95)")
        book = self.codebook
        recs = [r for r in self.records() if r.get("reference") is not None]
        if book is None or not recs:
            raise UserError(f"{self.path}: no predictions with a reference to score")
        rows = []
        for split in SPLITS:
            sel = [r for r in recs if split == "all" or r.get("split") == split]
            if not sel:
                continue
            y = S.as_prediction_matrix([r["reference"] for r in sel], book.n)
            p = S.as_prediction_matrix([r.get("labels") if r.get("valid") else None for r in sel], book.n)
            ci = S.label_bootstrap(y, p, [str(r.get("doi")) for r in sel], n_boot=n_boot, level=level, seed=seed)
            rows += [{"split": split, "metric": k, "estimate": v.estimate, "low": v.low, "high": v.high,
                      "n": v.n_items} for k, v in ci.items()]
        return pd.DataFrame(rows)

    # --- display --------------------------------------------------------------------------------
    def title(self) -> str:
        c = self.config
        what = "/".join(str(x) for x in (c.get("task"), c.get("variant")) if x)
        model = c.get("model") or c.get("model_name") or ""
        return " ".join(x for x in (f"{self.kind} run", what, str(model)) if x)

    def summary(self):
        """The summary table as a DataFrame: scores (all items, test split) for a run with references,
        the share of each category for a corpus run without, the scalar metrics otherwise."""
        import pandas as pd

        m = self.metrics
        if isinstance(m.get("all"), dict) and "macro_f1" in m["all"]:
            data = {f"{s} (n={(m.get(s) or {}).get('n')})": [(m.get(s) or {}).get(k) for k in SCORES]
                    for s in SPLITS if isinstance(m.get(s), dict)}
            return pd.DataFrame(data, index=list(SCORES))
        dist = (m.get("distribution") or {}).get("all") if isinstance(m.get("distribution"), dict) else None
        if isinstance(dist, dict):
            rows = {k: v for k, v in dist.items() if isinstance(v, dict)}
            df = pd.DataFrame(rows).T[["count", "share", "low", "high"]]
            return df.astype({"count": int, "share": float, "low": float, "high": float})
        flat = {k: v for k, v in m.items() if isinstance(v, (int, float, str, bool)) or v is None}
        return pd.DataFrame({"value": list(flat.values())}, index=list(flat))

    def _head(self) -> str:
        m = self.metrics
        n = m.get("n_items")
        if n is None and isinstance(m.get("distribution"), dict):
            n = (m["distribution"].get("all") or {}).get("n")
        return f"{self.title()}" + (f", {n} items" if n is not None else "") + f" — {self.path}"

    def __repr__(self) -> str:
        lines = [f"<Run {self._head()}>"]
        if self.metrics:
            lines.append(self.summary().to_string(float_format=lambda x: f"{x:.3f}"))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{html.escape(self.title())}</b> &nbsp;<code>{html.escape(str(self.path))}</code></p>"]
        if self.metrics:
            parts.append(self.summary().to_html(float_format=lambda x: f"{x:.3f}", na_rep="–"))
        for w in self.warnings:
            parts.append(f'<p style="color:#a15c00">⚠ {html.escape(w)}</p>')
        return "\n".join(parts)


def _in_input_order(recs: list[dict], config: dict, codebook) -> list[dict]:
    """Records in the order of the run's items: the config's id list (study runs) or the corpus file's
    ids (streamed runs, when the file is still there); as written otherwise."""
    order: list[str] | None = None
    items = config.get("items")
    if isinstance(items, list):
        order = [str(x) for x in items]
    elif config.get("streamed") and isinstance(config.get("input"), dict):
        order = _corpus_ids(config["input"])
    if not order:
        return recs
    rank = {doi: i for i, doi in enumerate(order)}
    return sorted(recs, key=lambda r: (rank.get(str(r.get("doi")), len(rank)), str(r.get("task"))))


def _corpus_ids(inp: dict) -> list[str] | None:
    from llmscisci.data.corpus_read import open_corpus, text_of

    path, column = Path(str(inp.get("path", ""))), inp.get("id_column")
    if not column or not path.is_file():
        return None
    try:
        return [text_of(rec.get(column)) for _, rec in open_corpus(path).records()]
    except UserError:
        return None
