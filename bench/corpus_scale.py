"""Benchmark: labelling a corpus of 1,000, 10,000 and 100,000 synthetic abstracts against a local
OpenAI-compatible server with no latency (the tests' fake server, in its own process), through the
streamed `label --input` path (chunked reading, predictions written as they arrive).

Each size runs in a fresh child process. Time: the labelling alone (corpus scan, labelling, finishing
the run folder), not interpreter start-up or imports. Memory: the child's peak RSS minus the peak RSS of
the same child given a corpus of 0 items (imports, backend and server connection included there), so
the figure is what the corpus adds. Targets: time_ratio_100k_over_1k <= 110 (linear within 10%),
rss_growth_ratio_100k_over_10k <= 1.5 (bounded: nothing grows with the corpus). Each run's seconds are
kept (`seconds_each`): the spread between repeats on the same machine is there to read. Then a 100,000-item
run is killed (SIGKILL) halfway and resumed; it must end with exactly 100,000 distinct predictions.

    python bench/corpus_scale.py [--quick]    -> bench/results/corpus_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "corpus_scale.json"
CODEBOOK = ROOT / "tests" / "fixtures" / "corpus" / "open_science.toml"
WORDS = ("citation data code open access funding grant repository software survey journal method analysis "
         "result sample metric impact review author field study model network dataset archive licence").split()


def write_corpus(path: Path, n: int, seed: int = 2025) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,abstract,year\n")
        for i in range(n):
            fh.write(f"W{i:07d},{' '.join(rng.choices(WORDS, k=40))}.,{2015 + i % 10}\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(args) -> None:
    """Label one corpus; print a JSON line with the timings and the peak RSS."""
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["OPENAI_API_KEY"] = "sk-bench-local"
    from llmscisci.backends.base import BackendOptions, GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.corpus import CorpusPlan
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_stream import run_label_stream
    import llmscisci.tasks.stream_finish  # noqa: F401 - imported here so that the 0-item baseline holds it
    import llmscisci.report.export  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    cb = load_codebook(CODEBOOK)
    backend = load_backend("openai:gpt-4o-mini", BackendOptions(base_url=args.url, use_cache=False,
                                                                concurrency=args.concurrency, timeout=30))
    backend.generate([[{"role": "user", "content": "warm up"}]], GenParams(max_new_tokens=8))  # connection
    spec = LabelSpec(codebook=cb, variant="guidelines", model="openai:gpt-4o-mini", params=GenParams(max_new_tokens=32))
    t0 = time.perf_counter()
    n = 0
    if args.n > 0:
        plan = CorpusPlan.open(args.corpus, cb)
        run = run_label_stream(spec, plan, backend, args.out, run_dir=args.run_dir, chunk_size=args.chunk_size,
                               show_progress=False)
        n = run.metrics()["n"]
    seconds = time.perf_counter() - t0
    print(json.dumps({"n": n, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}), flush=True)


def run_child(url: str, corpus: Path, n: int, work: Path, run_dir: Path | None = None, **kw) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--url", url, "--corpus", str(corpus), "--out", str(work),
           "--chunk-size", str(kw.get("chunk_size", 1000)), "--concurrency", str(kw.get("concurrency", 8))]
    if run_dir is not None:
        cmd += ["--run-dir", str(run_dir)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"child failed ({n} items): {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def count_predictions(run_dir: Path) -> tuple[int, int]:
    lines, ids = 0, set()
    with (run_dir / "predictions.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                lines += 1
                ids.add(json.loads(line)["doi"])
    return lines, len(ids)


def kill_and_resume(url: str, corpus: Path, n: int, work: Path) -> dict:
    run_dir = work / "killed"
    cmd = [sys.executable, __file__, "--child", str(n), "--url", url, "--corpus", str(corpus), "--out", str(work),
           "--run-dir", str(run_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    preds = run_dir / "predictions.jsonl"
    while proc.poll() is None:
        time.sleep(0.5)
        if preds.is_file() and preds.stat().st_size > 0:
            with preds.open("rb") as fh:
                done = sum(1 for _ in fh)
            if done >= n // 2:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
    killed_at, _ = count_predictions(run_dir)
    resumed = run_child(url, corpus, n, work, run_dir=run_dir)
    lines, distinct = count_predictions(run_dir)
    return {"n": n, "killed_after_predictions": killed_at, "resume_seconds": round(resumed["seconds"], 2),
            "predictions_lines": lines, "distinct_predictions": distinct,
            "exact": lines == n and distinct == n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 / 1,000 / 10,000 items (ratios not comparable)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--url", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of the two small sizes (median taken; at least 5 of the smallest)")
    args = ap.parse_args(argv)
    if args.child is not None:
        args.n = args.child
        child(args)
        return 0
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    sizes = (100, 1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeservers.py"), "openai"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # resets on kill
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="llmscisci-corpus-scale-") as tmp:
            work = Path(tmp)
            corpora = {}
            for n in (0, *sizes):
                corpora[n] = work / f"corpus_{n}.csv"
                write_corpus(corpora[n], n)
            load0 = os.getloadavg()
            base = [run_child(url, corpora[0], 0, work / "r0") for _ in range(args.repeats)]
            base_rss = statistics.median(b["peak_rss_mb"] for b in base)
            results = {}
            for n in sizes:
                # the smallest size runs a few seconds: more repeats, as its noise weighs most in the time ratio
                reps = 1 if n == sizes[-1] else max(args.repeats, 5) if n == sizes[0] else args.repeats
                runs = [run_child(url, corpora[n], n, work / f"r{n}_{k}", chunk_size=args.chunk_size,
                                  concurrency=args.concurrency) for k in range(reps)]
                assert all(r["n"] == n for r in runs), runs
                secs = statistics.median(r["seconds"] for r in runs)
                rss = statistics.median(r["peak_rss_mb"] for r in runs)
                results[n] = {"items": n, "seconds": round(secs, 3), "items_per_s": round(n / secs, 1),
                              "peak_rss_mb": round(rss, 1), "rss_growth_mb": round(rss - base_rss, 1),
                              "runs": len(runs), "seconds_each": [round(r["seconds"], 2) for r in runs]}
                print(f"{n:>7,} items: {secs:8.2f} s, {n / secs:7.1f} items/s, peak RSS {rss:.1f} MB "
                      f"(+{rss - base_rss:.1f} MB over 0 items)", flush=True)
            small, mid, big = sizes
            resume = kill_and_resume(url, corpora[big], big, work)
            print(f"killed after {resume['killed_after_predictions']:,} predictions, resumed: "
                  f"{resume['distinct_predictions']:,} distinct of {resume['predictions_lines']:,} lines", flush=True)
            load1 = os.getloadavg()
    finally:
        server.terminate()
        server.wait()
    key = lambda n: f"{n // 1000}k" if n >= 1000 else str(n)  # noqa: E731
    ratios = {f"time_ratio_{key(big)}_over_{key(small)}": round(results[big]["seconds"] / results[small]["seconds"], 2),
              f"rss_growth_ratio_{key(big)}_over_{key(mid)}":
                  round(results[big]["rss_growth_mb"] / max(results[mid]["rss_growth_mb"], 0.1), 2)}
    report = {
        "benchmark": "corpus_scale", "quick": quick, "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": len(os.sched_getaffinity(0))},
        "load_average_before_after": [round(load0[0], 2), round(load1[0], 2)],
        "setup": {"server": "tests/fakeservers.py FakeOpenAI, no latency, own process", "variant": "guidelines",
                  "chunk_size": args.chunk_size, "concurrency": args.concurrency, "cache": "off",
                  "baseline_rss_mb_0_items": round(base_rss, 1), "repeats_small_sizes": args.repeats},
        "sizes": {key(n): results[n] for n in sizes},
        "items_per_s": {key(n): results[n]["items_per_s"] for n in sizes},
        "resume": resume,
        "ratios": ratios,
        "targets": {} if quick else {"time_ratio_100k_over_1k": "<= 110", "rss_growth_ratio_100k_over_10k": "<= 1.5",
                                     "resume.exact": "true"},
    }
    if not quick or not OUT.exists() or json.loads(OUT.read_text()).get("quick", True):
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(ratios), f"resume exact: {resume['exact']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
