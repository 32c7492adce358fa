"""Policy vs reference on the held-out split, with the labelling evaluator: the product of DPO/GRPO."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from llmscisci.console import fmt as _fmt
from llmscisci.runs import write_json

HEADLINE = ("macro_f1", "micro_f1", "hamming_loss", "subset_accuracy")


def compare_runs(policy_metrics: dict, reference_metrics: dict, section: str = "test") -> dict:
    """Side-by-side headline metrics with their difference (policy minus reference), plus per label F1."""
    p, r = policy_metrics.get(section, {}), reference_metrics.get(section, {})
    out = {m: {"policy": p.get(m), "reference": r.get(m),
               "diff": None if p.get(m) is None or r.get(m) is None else p[m] - r[m]} for m in HEADLINE}
    for m in ("invalid_rate", "exact_format_rate"):
        pv, rv = policy_metrics.get(m), reference_metrics.get(m)
        out[m] = {"policy": pv, "reference": rv, "diff": None if pv is None or rv is None else pv - rv}
    out["per_label_f1"] = {
        k: {"policy": p.get("per_label", {}).get(k, {}).get("f1"), "reference": v.get("f1")}
        for k, v in r.get("per_label", {}).items()
    }
    return out


def evaluate_policy(policy: str, reference: str, tasks: list, variant: str, data_dir: str | None,
                    out: str | Path, split: str = "test", max_new_tokens: int | None = None,
                    batch_size: int = 8) -> dict:
    """Label the held-out split with the policy and with the reference (same prompts, greedy decoding),
    and write comparison.json next to the two run folders. `tasks`: built-in names, codebook files or
    Codebooks; the result is keyed by each codebook's task name."""
    from llmscisci.backends.base import BackendOptions, GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.data.codebook import Codebook, load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.paths import data_dir as resolve
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS, LabelSpec, run_label

    src = str(resolve(data_dir or None))
    out = Path(out)
    params = GenParams(max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(variant, 64))
    result = {"policy": policy, "reference": reference, "variant": variant, "split": split, "tasks": {}}
    backends = {}
    for book in tasks:
        cb = book if isinstance(book, Codebook) else load_codebook(book)
        t = cb.task
        items = load_items(cb, data_dir=src)
        runs = {}
        for role, name in (("policy", policy), ("reference", reference)):
            if name not in backends:
                backends[name] = load_backend(name, BackendOptions(batch_size=batch_size))
            spec = LabelSpec(codebook=cb, variant=variant, model=name, params=params, split=split, data_source=src)
            runs[role] = run_label(spec, items, backends[name], out / role)
        result["tasks"][t] = {
            "runs": {k: str(v.path) for k, v in runs.items()},
            "metrics": compare_runs(runs["policy"].metrics(), runs["reference"].metrics()),
        }
        by_doi = {p.doi: p for p in runs["reference"].records()}
        items_out = [{"doi": p.doi, "reference_labels": p.reference, "policy_raw": p.raw,
                      "policy_labels": p.labels, "ref_model_raw": getattr(by_doi.get(p.doi), "raw", None),
                      "ref_model_labels": getattr(by_doi.get(p.doi), "labels", None)}
                     for p in runs["policy"].records()]
        (out / f"items_{t}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items_out), encoding="utf-8")
    write_json(out / "comparison.json", result)
    return result


def comparison_table(result: dict):
    from rich.table import Table

    table = Table(title=f"policy vs reference ({result['split']} split, variant {result['variant']})")
    for col in ("task", "metric", "reference", "policy", "diff"):
        table.add_column(col, justify="right" if col not in ("task", "metric") else "left")

    fmt = partial(_fmt, none="-", compact=False, thousands=False)

    for t, data in result["tasks"].items():
        for m, v in data["metrics"].items():
            if m == "per_label_f1":
                continue
            d = v["diff"]
            table.add_row(t, m, fmt(v["reference"]), fmt(v["policy"]), "-" if d is None else f"{d:+.3f}")
        for label, v in data["metrics"].get("per_label_f1", {}).items():
            pv, rv = v.get("policy"), v.get("reference")
            d = None if pv is None or rv is None else pv - rv
            table.add_row(t, f"F1 {label}", fmt(rv), fmt(pv), "-" if d is None else f"{d:+.3f}")
    return table
