"""DPO step time and peak memory, same data and settings, three ways: LoRA with the reference = the
base with adapters disabled (the toolkit's path); full-parameter training with a separate reference
copy (TRL's setting without PEFT, the usual alternative); and LoRA with a separate reference copy
(isolates what the copy alone costs). Each runs in its own process so peak RSS is its own. Writes
bench/results/dpo_step.json.

    python bench/dpo_step.py [--steps 3] [--model smollm2-135m] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args) -> None:
    import torch  # noqa: F401 - the libraries' own footprint is the baseline, not the model's
    import transformers  # noqa: F401
    import trl  # noqa: F401

    from llmscisci.train.config import load_config
    from llmscisci.train.dpo import DEFAULTS, train_dpo

    baseline = rss_mb()
    cfg = load_config(None, DEFAULTS, [f"train.max_steps={args.steps}", "train.batch_size=2",
                                       f"train.max_length={args.max_length}",
                                       f"train.gradient_checkpointing={'true' if args.gc else 'false'}",
                                       f"dpo.separate_reference={'true' if args.separate else 'false'}",
                                       f"dpo.full_finetune={'true' if args.full else 'false'}"])
    cfg["model"]["name"] = args.model
    cfg["data"]["preferences"] = args.prefs
    cfg["output"]["dir"] = args.out
    t0 = time.perf_counter()
    out = train_dpo(cfg)
    total = time.perf_counter() - t0
    secs = next((r["train_seconds"] for r in out.read_log() if "train_seconds" in r), total)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds_per_step": secs / args.steps, "peak_rss_mb": peak, "baseline_rss_mb": baseline,
                      "training_rss_mb": peak - baseline}))


def build_prefs(dest: Path, n: int) -> None:
    from llmscisci.data import load_codebook, load_items, load_labels
    from llmscisci.train import preferences as P

    cb = load_codebook("difficult")
    from llmscisci.paths import data_dir

    data = data_dir(None)  # $LLMSCISCI_DATA, else the bundled dataset
    items = load_items(cb, data_dir=data)
    sets = [load_labels(f) for f in sorted((data / "labels").glob("annotator_*.jsonl"))]
    rows = P.by_correctness(items, cb, "guidelines", sets)
    if len(rows) < n:  # the annotators rarely disagree: pad with rendered reference vs an all-none answer
        from llmscisci.tasks.parse import render_answer

        for it in items:
            if len(rows) >= n:
                break
            if it.labels != (0, 0, 0, 0, 1):
                good = P.Answer("reference", it.labels, render_answer(it.labels, cb, "guidelines"))
                bad = P.Answer("none", (0, 0, 0, 0, 1), render_answer((0, 0, 0, 0, 1), cb, "guidelines"))
                rows.append(P._row(it, cb, "guidelines", good, bad))
    for r in rows:
        r["split"] = "train"
    P.save_preferences(rows[:n], dest, {"strategy": "bench"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--separate", action="store_true")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--prefs")
    ap.add_argument("--out")
    ap.add_argument("--max-length", type=int, default=0, help="max tokens per sequence (0: no limit)")
    ap.add_argument("--no-gc", dest="gc", action="store_false", help="gradient checkpointing off")
    args = ap.parse_args()
    if args.child:
        return child(args)
    steps = 2 if args.quick else args.steps
    with tempfile.TemporaryDirectory() as tmp:
        prefs = Path(tmp) / "prefs"
        build_prefs(prefs, 2 * steps)
        res = {}
        for name, flags in (("lora", []), ("full_separate_reference", ["--full"]),
                            ("separate_reference", ["--separate"])):
            cmd = [sys.executable, __file__, "--child", "--steps", str(steps), "--model", args.model,
                   "--prefs", str(prefs), "--out", str(Path(tmp) / name), "--max-length", str(args.max_length)]
            cmd += flags + ([] if args.gc else ["--no-gc"])
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"{name} failed")
            res[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:20s} {res[name]['seconds_per_step']:.2f} s/step, peak RSS {res[name]['peak_rss_mb']:.0f} MB "
                  f"({res[name]['training_rss_mb']:.0f} MB above the imported libraries)")
    lora, full, sep = res["lora"], res["full_separate_reference"], res["separate_reference"]
    ratios = {"memory_lora_vs_full": lora["training_rss_mb"] / full["training_rss_mb"],
              "peak_rss_lora_vs_full": lora["peak_rss_mb"] / full["peak_rss_mb"],
              "time_lora_vs_full": lora["seconds_per_step"] / full["seconds_per_step"],
              "memory_lora_vs_lora_separate_copy": lora["training_rss_mb"] / sep["training_rss_mb"],
              "time_lora_vs_lora_separate_copy": lora["seconds_per_step"] / sep["seconds_per_step"]}
    print(f"memory ratio LoRA / full + separate reference: {ratios['memory_lora_vs_full']:.2f} above the "
          f"libraries (goal <= 0.6), {ratios['peak_rss_lora_vs_full']:.2f} in whole-process peak RSS")
    print(f"memory ratio LoRA / LoRA + separate reference copy: {ratios['memory_lora_vs_lora_separate_copy']:.2f}")
    print(f"time ratio LoRA / full + separate reference:   {ratios['time_lora_vs_full']:.2f}")
    out = {"benchmark": "dpo_step", "model": args.model, "steps": steps, "max_length": args.max_length,
           "gradient_checkpointing": args.gc, "results": res, "ratios": ratios,
           "targets": {"memory_lora_vs_full": "<= 0.6"},
           "machine": f"{platform.machine()} {os.cpu_count()} cores", "when": time.strftime("%Y-%m-%d %H:%M")}
    dest = ROOT / "bench" / "results" / "dpo_step.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
