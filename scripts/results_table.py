"""Print a Markdown table of headline metrics from run folders (label, baseline, SFT/DPO/GRPO evaluation runs).

    python scripts/results_table.py runs/label_* runs/baseline_* [--section test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--section", default="all", help="all | test | train")
    args = ap.parse_args()
    print(f"| task | model | variant | n | macro-F1 | micro-F1 | Hamming loss | subset acc. | invalid | repaired |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        cfg_p, met_p = run / "config.json", run / "metrics.json"
        if not (cfg_p.is_file() and met_p.is_file()):
            continue
        cfg, met = json.loads(cfg_p.read_text()), json.loads(met_p.read_text())
        s = met.get(args.section) or {}
        if not s:
            continue
        print(f"| {cfg.get('task')} | {cfg.get('model')} | {cfg.get('variant')} | {s.get('n')} | {s['macro_f1']:.3f} | "
              f"{s['micro_f1']:.3f} | {s['hamming_loss']:.3f} | {s['subset_accuracy']:.3f} | "
              f"{met.get('invalid_rate', 0):.3f} | {met.get('repaired_rate', 0):.3f} |")


if __name__ == "__main__":
    main()
