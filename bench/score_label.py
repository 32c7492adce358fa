"""Benchmark: the `score` prompt variant (labels from yes/no log-odds) on the embedded model, against the
per-label prior and TF-IDF baselines, and its speed against the structured variant.

Model: the embedded smollm2-135m (float32, CPU), as `llmscisci label` loads it. Data: the bundled study
data (70 reports, tasks `easy` and `difficult`).

Quality. Every report's yes/no log-odds per category are computed once (plus the content-free passage of
contextual calibration); thresholds are then cross-fitted over the project's 5 DOI-grouped folds (the
folds `llmscisci baseline` uses, data/split.py): each fold is labelled with per-category thresholds
fitted (max F1) on the other four folds only, so every label is out-of-sample. The baselines run through
`run_baseline` on the same folds (out-of-fold macro-F1, all categories, zero-division 0). Also reported:
the labels with the default threshold 0 (content-free calibration only, no reference labels used) and
the number of distinct answer vectors.

Speed. The 70 `easy` texts through `run_label` (the real labelling path, into a temporary folder), once
with the structured variant (constrained JSON decoding, max 64 new tokens) and once with `score`, on the
same loaded model after one untimed warm-up item of each; the ratio score / structured is the target
(<= 1.5).

    python bench/score_label.py [--quick] [--threads 1] -> bench/results/score_label.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llmscisci.backends.base import BackendOptions, GenParams  # noqa: E402
from llmscisci.backends.registry import load_backend  # noqa: E402
from llmscisci.data.codebook import load_codebook  # noqa: E402
from llmscisci.data.items import load_items  # noqa: E402
from llmscisci.data.split import grouped_folds  # noqa: E402
from llmscisci.data.validate import apply_none_rule  # noqa: E402
from llmscisci.metrics.evaluate import evaluate  # noqa: E402
from llmscisci.metrics.thresholds import apply_thresholds, cross_fit  # noqa: E402
from llmscisci.paths import bundled_data_dir  # noqa: E402
from llmscisci.prompts import label as prompts  # noqa: E402
from llmscisci.tasks.baseline import run_baseline  # noqa: E402
from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS, LabelSpec, run_label  # noqa: E402
from llmscisci.tasks.score import content_free_odds, log_odds, score_texts  # noqa: E402

OUT = ROOT / "bench" / "results" / "score_label.json"
MODEL = "smollm2-135m"


def full_vectors(pred_scored: np.ndarray, codebook) -> list[list[int]]:
    """Scored-category labels -> full label vectors under the none rule."""
    idx = prompts.score_categories(codebook)
    out = []
    for row in pred_scored:
        vec = [0] * codebook.n
        for k, v in zip(idx, row):
            vec[k] = int(v)
        out.append(list(apply_none_rule(vec, codebook.none_index).labels))
    return out


def macro(items, vectors, codebook) -> dict:
    preds = [{"doi": it.doi, "task": it.task, "split": it.split, "labels": v, "valid": True, "repaired": False,
              "reference": list(it.labels)} for it, v in zip(items, vectors)]
    a = evaluate(preds, codebook)["all"]
    return {"macro_f1": round(a["macro_f1"], 4), "micro_f1": round(a["micro_f1"], 4),
            "distinct_answers": len({tuple(v) for v in vectors})}


def quality(backend, task: str, limit: int | None) -> dict:
    cb = load_codebook(task)
    items = [it for it in load_items(cb, data_dir=bundled_data_dir()) if it.labels is not None][:limit]
    t0 = time.perf_counter()
    cf = content_free_odds(backend, cb, "score")
    gens = score_texts(backend, cb, "score", [it.text for it in items])
    seconds = time.perf_counter() - t0
    raw = np.array([log_odds(g) for g in gens])
    calibrated = raw - np.array(cf)[None, :]
    idx = prompts.score_categories(cb)
    y = np.array([[it.labels[k] for k in idx] for it in items])
    folds = grouped_folds([it.doi for it in items], k=5)
    fold_of = [folds[it.doi] for it in items]
    oof, fitted = cross_fit(calibrated, y, fold_of)
    res = {
        "items": len(items), "scored_categories": [cb.shorts[k] for k in idx], "scoring_seconds": round(seconds, 2),
        "content_free_log_odds": [round(v, 3) for v in cf],
        "score_cross_fitted": macro(items, full_vectors(oof, cb), cb),
        "score_threshold_0": macro(items, full_vectors(apply_thresholds(calibrated, [0.0] * len(idx)), cb), cb),
        "score_uncalibrated_0": macro(items, full_vectors(apply_thresholds(raw, [0.0] * len(idx)), cb), cb),
        "thresholds_per_fold": {str(f): [round(t, 3) for t in th] for f, th in fitted.items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("prior", "tfidf-logreg"):
            run = run_baseline(cb, items, method, tmp, k=5)
            m = run.metrics()["all"]
            res[method] = {"macro_f1": round(m["macro_f1"], 4), "micro_f1": round(m["micro_f1"], 4)}
    s = res["score_cross_fitted"]["macro_f1"]
    res["beats_prior"] = s > res["prior"]["macro_f1"]
    res["gap_to_tfidf"] = round(s - res["tfidf-logreg"]["macro_f1"], 4)
    return res


def speed(backend, limit: int | None) -> dict:
    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=bundled_data_dir())][:limit]
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("structured", "score"):  # untimed warm-up: schema compilation, prefix cache
            spec = LabelSpec(codebook=cb, variant=variant, model=MODEL, limit=1,
                             params=GenParams(max_new_tokens=DEFAULT_MAX_NEW_TOKENS[variant]))
            run_label(spec, items, backend, Path(tmp) / "warm", show_progress=False)
        for variant in ("structured", "score"):
            spec = LabelSpec(codebook=cb, variant=variant, model=MODEL,
                             params=GenParams(max_new_tokens=DEFAULT_MAX_NEW_TOKENS[variant]))
            t0 = time.perf_counter()
            run = run_label(spec, items, backend, Path(tmp) / "timed", show_progress=False)
            seconds[variant] = round(time.perf_counter() - t0, 2)
            m = run.metrics()
            seconds[f"{variant}_macro_f1"] = round(m["all"]["macro_f1"], 4)
    return {"items": len(items), "seconds": {k: v for k, v in seconds.items() if not k.endswith("f1")},
            "macro_f1_uncalibrated_run": {k[:-9]: v for k, v in seconds.items() if k.endswith("f1")},
            "score_over_structured": round(seconds["score"] / seconds["structured"], 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--quick", action="store_true", help="first 20 items only")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    limit = 20 if args.quick or os.environ.get("BENCH_QUICK") else None
    load0 = os.getloadavg()[0]
    backend = load_backend(MODEL, BackendOptions(device="cpu"))
    result: dict = {"model": f"{MODEL} (float32, cpu)", "torch_threads": torch.get_num_threads(),
                    "batch_size": backend.batch_size, "load_average_start": round(load0, 2)}
    result["speed"] = speed(backend, limit)
    for task in ("easy", "difficult"):
        result[task] = quality(backend, task, limit)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    result["ratios"] = {"score_over_structured": result["speed"]["score_over_structured"],
                        "easy_gap_to_tfidf": result["easy"]["gap_to_tfidf"]}
    result["targets"] = {"score_over_structured": "<= 1.5", "easy_gap_to_tfidf": ">= -0.02"}
    result["target_met"] = {
        "speed": result["speed"]["score_over_structured"] <= 1.5,
        "beats_prior_both_tasks": all(result[t]["beats_prior"] for t in ("easy", "difficult")),
        "easy_within_0.02_of_tfidf": result["easy"]["gap_to_tfidf"] >= -0.02,
        "distinct_answers_ge_5": all(result[t]["score_cross_fitted"]["distinct_answers"] >= 5
                                     for t in ("easy", "difficult")),
    }
    if not limit:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
