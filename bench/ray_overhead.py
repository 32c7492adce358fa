"""The Ray route's overhead: `llmscisci label --input` on 2,000 OpenAlex-style works against a local
OpenAI-compatible server answering after 50 ms, in one process (--concurrency 16) and with
`--engine ray --workers 2 --concurrency 8` (the same 16 requests in flight), each command a fresh process
timed from start to exit (the Ray run includes starting a local Ray instance). The ratio: Ray / one process
(above 1: what the route costs on one machine; its gain is on a cluster).

Writes bench/results/ray_overhead.json.

    .venv/bin/python bench/ray_overhead.py [--n 2000] [--latency 0.05] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "corpus"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(FIX))

from fakeservers import FakeOpenAI  # noqa: E402
from make_openalex import work  # noqa: E402


def label(srv, inp: Path, out: Path, *extra: str) -> float:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-not-a-real-key",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "llmscisci", "label", "--input", str(inp), "--task", str(FIX / "open_science.toml"),
           "--model", "openai:gpt-4o-mini", "--base-url", srv.base_url, "--out", str(out), "--no-cache", *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"label failed: {res.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 400 if args.quick else args.n
    out: dict = {"n_items": n, "server_latency_s": args.latency, "cpus": os.cpu_count(),
                 "load_avg_1m": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(latency=args.latency) as srv:
        inp = Path(tmp) / "works.jsonl"
        rng = random.Random(26)
        inp.write_text("".join(json.dumps(work(i, rng)) + "\n" for i in range(n)), encoding="utf-8")
        one_s = label(srv, inp, Path(tmp) / "one", "--concurrency", "16")
        calls = srv.calls
        srv.reset()
        ray_s = label(srv, inp, Path(tmp) / "ray", "--engine", "ray", "--workers", "2", "--concurrency", "8")
        same = [json.loads(p.read_text())["hash"] for p in Path(tmp).glob("*/*/config.json")]
        out["one_process"] = {"concurrency": 16, "seconds": round(one_s, 2), "requests": calls}
        out["ray"] = {"workers": 2, "concurrency_per_worker": 8, "seconds": round(ray_s, 2), "requests": srv.calls,
                      "same_run_hash": len(set(same)) == 1}
    out["ratios"] = {"ray_vs_one_process_time": round(ray_s / one_s, 2)}
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "ray_overhead.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"one process, concurrency 16        : {one_s:7.2f} s  ({n} items, {args.latency * 1000:.0f} ms per request)")
    print(f"ray, 2 workers x concurrency 8     : {ray_s:7.2f} s  -> {ray_s / one_s:.2f}x the one-process time")
    print(f"written to {res_dir / 'ray_overhead.json'}")


if __name__ == "__main__":
    main()
