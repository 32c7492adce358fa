"""Several servers behind one `--base-url` list: 200 labelling requests against local OpenAI-compatible
servers that answer after 200 ms and serve at most 8 requests at a time each (a GPU's batch; further
requests wait in the server's queue). Timed with one server at --concurrency 8, with one server at
--concurrency 16 (the server is the limit: no gain), and with two servers at --concurrency 16 (8 per
server, spread to the least busy). The ratio: one server (8) / two servers (16).

Writes bench/results/server_spread.json.

    .venv/bin/python bench/server_spread.py [--n 200] [--latency 0.2] [--per-server 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from api_concurrency import label_conversations  # noqa: E402
from fakeservers import FakeOpenAI  # noqa: E402

from llmscisci.backends.base import BackendOptions, GenParams  # noqa: E402
from llmscisci.backends.registry import load_backend  # noqa: E402


class BoundedServer(FakeOpenAI):
    """A fake server that works on at most `capacity` requests at once; the rest wait their turn."""

    def __init__(self, capacity: int, **kw):
        super().__init__(**kw)
        self.slots = threading.Semaphore(capacity)

    def _respond(self, h, body, model):
        with self.slots:
            super()._respond(h, body, model)


def timed(urls: list[str], concurrency: int, convs, params) -> tuple[float, int]:
    be = load_backend("openai:gpt-4o-mini", BackendOptions(base_url=",".join(urls), timeout=60.0,
                                                            concurrency=concurrency, use_cache=False))
    t0 = time.perf_counter()
    gens = be.generate(convs, params)
    return time.perf_counter() - t0, sum(bool(g.error) for g in gens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--per-server", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 80 if args.quick else args.n
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    convs, source = label_conversations(n)
    params = GenParams(max_new_tokens=32)
    k = args.per_server
    out: dict = {"n_requests": n, "server_latency_s": args.latency, "server_capacity": k, "prompts": source,
                 "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    with BoundedServer(k, latency=args.latency) as a, BoundedServer(k, latency=args.latency) as b:
        timed([a.base_url], 1, convs[:1], GenParams(max_new_tokens=1))  # warm up imports, connection
        a.reset()
        one_s, f1 = timed([a.base_url], k, convs, params)
        one_2k_s, f2 = timed([a.base_url], 2 * k, convs, params)
        a.reset()
        two_s, f3 = timed([a.base_url, b.base_url], 2 * k, convs, params)
        out["one_server"] = {"concurrency": k, "seconds": round(one_s, 3), "failed": f1}
        out["one_server_double_concurrency"] = {"concurrency": 2 * k, "seconds": round(one_2k_s, 3), "failed": f2}
        out["two_servers"] = {"concurrency": 2 * k, "seconds": round(two_s, 3), "failed": f3,
                              "requests": [a.calls, b.calls]}
    ideal = n / k * args.latency
    out["ideal_one_server_s"] = round(ideal, 3)
    out["ratios"] = {"two_servers_vs_one": round(one_s / two_s, 2),
                     "one_server_double_concurrency_vs_one": round(one_s / one_2k_s, 2)}
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "server_spread.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"one server,  concurrency {k:<3}: {one_s:7.3f} s  (ideal {ideal:.2f} s)")
    print(f"one server,  concurrency {2 * k:<3}: {one_2k_s:7.3f} s  (the server is the limit)")
    print(f"two servers, concurrency {2 * k:<3}: {two_s:7.3f} s  requests {a.calls} + {b.calls}"
          f"  -> {one_s / two_s:.2f}x faster than one server")
    print(f"written to {res_dir / 'server_spread.json'}")


if __name__ == "__main__":
    main()
