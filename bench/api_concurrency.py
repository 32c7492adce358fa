"""API throughput: 100 labelling requests against a local OpenAI-compatible server answering each
request after 200 ms, sent sequentially, with --concurrency 16, and again fully from the response cache.

Goals (reported, not asserted): 100 requests in <= 2 s with concurrency 16; the cached re-run >= 50x
faster than the first run. Writes bench/results/api_concurrency.json.

    .venv/bin/python bench/api_concurrency.py [--n 100] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakeservers import FakeOpenAI  # noqa: E402

from llmscisci.backends.base import BackendOptions, GenParams  # noqa: E402
from llmscisci.backends.registry import load_backend  # noqa: E402


def label_conversations(n: int) -> tuple[list[list[dict]], str]:
    """n labelling prompts built from the data folder ($LLMSCISCI_DATA, else the bundled dataset: easy and
    difficult texts), else synthetic ones. The result names the data as `bundled` or its folder's name."""
    from llmscisci.paths import data_dir, data_label

    data = data_dir(None)
    try:
        from llmscisci.data.codebook import load_codebook
        from llmscisci.data.items import load_items
        from llmscisci.prompts.label import build_messages

        convs = []
        for task in ("easy", "difficult"):
            cb = load_codebook(task)
            convs += [build_messages(it.text, cb, "guidelines") for it in load_items(cb, data_dir=data)]
        if len(convs) >= n:
            return convs[:n], f"label prompts (guidelines variant) from {data_label(data)}"
    except Exception as exc:  # noqa: BLE001 - the benchmark also runs without the data
        print(f"(data not usable: {exc}; using synthetic prompts)", file=sys.stderr)
    return ([[{"role": "user", "content": f"Passage {i}: the code was easy to run."}] for i in range(n)],
            "synthetic prompts")


def timed(backend, convs, params) -> tuple[float, list]:
    t0 = time.perf_counter()
    gens = backend.generate(convs, params)
    return time.perf_counter() - t0, gens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    convs, source = label_conversations(args.n)
    params = GenParams(max_new_tokens=32)
    out: dict = {"n_requests": args.n, "server_latency_s": args.latency, "concurrency": args.concurrency,
                 "prompts": source, "python": sys.version.split()[0], "platform": platform.platform(),
                 "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(latency=args.latency) as srv:
        def backend(**kw):
            opts = dict(base_url=srv.base_url, timeout=30.0, use_cache=False, cache_path=str(Path(tmp) / "c.sqlite"))
            opts.update(kw)
            return load_backend("openai:gpt-4o-mini", BackendOptions(**opts))

        backend(concurrency=1).generate(convs[:1], GenParams(max_new_tokens=1))  # warm up imports, connection
        srv.reset()
        seq_s, g1 = timed(backend(concurrency=1), convs, params)
        out["sequential"] = {"seconds": round(seq_s, 3), "calls": srv.calls, "failed": sum(bool(g.error) for g in g1)}
        srv.reset()
        conc_s, g2 = timed(backend(concurrency=args.concurrency, use_cache=True), convs, params)
        out["concurrent_first_run"] = {"seconds": round(conc_s, 3), "calls": srv.calls,
                                       "max_in_flight": srv.max_inflight, "failed": sum(bool(g.error) for g in g2)}
        srv.reset()
        cached_s, g3 = timed(backend(concurrency=args.concurrency, use_cache=True), convs, params)
        out["cached_rerun"] = {"seconds": round(cached_s, 4), "calls": srv.calls,
                               "all_cached": all(g.cached for g in g3)}
    out["speedup_concurrency_vs_sequential"] = round(seq_s / conc_s, 2)
    out["speedup_cached_vs_first_run"] = round(conc_s / cached_s, 1)
    out["goals"] = {
        "concurrent_100_requests_le_2s": conc_s <= 2.0,
        "cached_rerun_ge_50x_faster": conc_s / cached_s >= 50,
    }
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "api_concurrency.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"sequential        : {seq_s:7.3f} s  ({args.n} requests, {args.latency * 1000:.0f} ms each)")
    print(f"concurrency {args.concurrency:<5} : {conc_s:7.3f} s  -> {seq_s / conc_s:5.1f}x faster "
          f"(goal <= 2 s: {'met' if conc_s <= 2.0 else 'NOT met'})")
    print(f"cached re-run     : {cached_s:7.4f} s  -> {conc_s / cached_s:5.1f}x faster than the first run "
          f"(goal >= 50x: {'met' if conc_s / cached_s >= 50 else 'NOT met'}); server calls {out['cached_rerun']['calls']}")
    print(f"written to {res_dir / 'api_concurrency.json'}")


if __name__ == "__main__":
    main()
