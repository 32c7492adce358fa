"""Benchmark: the embedded model's GGUF served by llama-cpp-python's OpenAI-compatible server, called
through `--base-url`, against the built-in local backend, on the same labelling items.

Both label the first N items of the `easy` codebook with the same prompts (the labelling run's messages),
greedy, the labelling defaults for max_new_tokens. The built-in backend runs on CPU in float32 with its
batching and shared-prefix cache (batch 8); the server runs the package's Q4_1 GGUF with llama.cpp,
one request at a time (the server decodes one sequence at a time). Both get the same number of CPU
threads. Work is interleaved chunk by chunk (order alternating) so that load from other processes on a
shared machine hits both alike. Reported per variant: items/s of each path and their ratio, the share of
valid answers, and the share of items where both gave the same labels (the weights differ: the
built-in backend de-quantises the Q4_1 file to float32; llama.cpp computes in Q4_1).

llama-cpp-python is not a dependency of the project (PyPI has only its source, compiled at install):
pass the Python that has it installed (`pip install "llama-cpp-python[server]"`).

    python bench/local_server.py --server-python /path/to/venv/bin/python [--limit 20] [--threads 2]
        -> bench/results/local_server.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "bench" / "results" / "local_server.json"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# llama.cpp's extra buffer types (weight repacking, AMX on recent Xeons) off: with llama-cpp-python
# 0.3.36 built for the native CPU they crashed (segmentation fault) on the first multi-token prompt here
NO_EXTRA_BUFTS = """
import runpy, llama_cpp.llama_cpp as C
_orig = C.llama_model_default_params
def _params():
    p = _orig()
    p.use_extra_bufts = False
    return p
C.llama_model_default_params = _params
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def start_server(python: str, gguf: Path, port: int, threads: int, n_ctx: int,
                 extra_bufts: bool = False) -> subprocess.Popen:
    launch = ["-m", "llama_cpp.server"] if extra_bufts else ["-c", NO_EXTRA_BUFTS]
    cmd = [python, *launch, "--model", str(gguf), "--model_alias", "smollm2",
           "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
           "--host", "127.0.0.1", "--port", str(port)]
    log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)
    # the server's log goes to a file: llama.cpp logs a lot while loading, and a full pipe would stall it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1/models"
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the server did not answer within 60 s (log: {log.name})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server-python", default=os.environ.get("LLAMA_CPP_PYTHON"),
                    help="a Python with llama-cpp-python[server] installed (or $LLAMA_CPP_PYTHON)")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=5)
    ap.add_argument("--variants", default="guidelines,structured")
    ap.add_argument("--quick", action="store_true", help="8 items")
    ap.add_argument("--extra-bufts", action="store_true",
                    help="keep llama.cpp's extra buffer types (weight repacking; off by default, see NO_EXTRA_BUFTS)")
    args = ap.parse_args(argv)
    if not args.server_python:
        print("skipped: no --server-python with llama-cpp-python (see the docstring)", file=sys.stderr)
        return 0
    import torch

    from llmscisci.backends.base import BackendOptions, GenParams
    from llmscisci.backends.embedded import gguf_path
    from llmscisci.backends.local import LocalBackend
    from llmscisci.backends.openai_backend import OpenAIBackend
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.prompts.label import build_messages, is_structured, label_schema
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS
    from llmscisci.tasks.parse import parse_answer

    torch.set_num_threads(args.threads)
    limit = 8 if args.quick else args.limit
    data = Path(os.environ.get("LLMSCISCI_DATA") or ROOT.parent / "shared" / "data")
    cb = load_codebook("easy")
    items = [it for it in load_items(cb, data_dir=data) if it.text.strip()][:limit]
    load_before = load()
    port = free_port()
    server = start_server(args.server_python, gguf_path(), port, args.threads, 2048, args.extra_bufts)
    results: dict = {}
    try:
        builtin = LocalBackend("smollm2-135m", BackendOptions(device="cpu", dtype="float32", batch_size=8))
        remote = OpenAIBackend("smollm2", BackendOptions(base_url=f"http://127.0.0.1:{port}/v1", concurrency=1,
                                                         use_cache=False, timeout=600, max_attempts=1,
                                                         structured_mode="json_object"))
        for variant in args.variants.split(","):
            convs = [build_messages(it.text, cb, variant) for it in items]
            schema = label_schema(cb) if is_structured(variant) else None
            params = GenParams(max_new_tokens=DEFAULT_MAX_NEW_TOKENS[variant])
            builtin.generate(convs[:1], GenParams(max_new_tokens=2), schema=schema)  # warm-up: one-off costs
            remote.generate(convs[:1], GenParams(max_new_tokens=2), schema=schema)
            secs = {"builtin": 0.0, "server": 0.0}
            gens: dict = {"builtin": [], "server": []}
            for k in range(0, len(convs), args.chunk):
                sub = convs[k:k + args.chunk]
                order = [("builtin", builtin), ("server", remote)]
                for name, be in (order if (k // args.chunk) % 2 == 0 else order[::-1]):
                    t0 = time.perf_counter()
                    gens[name] += be.generate(sub, params, schema=schema)
                    secs[name] += time.perf_counter() - t0
            parsed = {n: [parse_answer(g.text, cb) if g.error is None else None for g in gs] for n, gs in gens.items()}
            valid = {n: sum(bool(p and p.valid) for p in ps) / len(ps) for n, ps in parsed.items()}
            same = sum(bool(a and b and a.valid and b.valid and a.labels == b.labels)
                       for a, b in zip(parsed["builtin"], parsed["server"])) / len(items)
            rate = {n: len(items) / s for n, s in secs.items()}
            results[variant] = {
                "items": len(items), "max_new_tokens": params.max_new_tokens,
                "seconds": {n: round(s, 2) for n, s in secs.items()},
                "items_per_s": {n: round(r, 3) for n, r in rate.items()},
                "valid_share": {n: round(v, 3) for n, v in valid.items()},
                "same_labels_share": round(same, 3),
                "errors": {n: sum(g.error is not None for g in gs) for n, gs in gens.items()},
            }
            print(f"{variant}: built-in {rate['builtin']:.2f} items/s, server {rate['server']:.2f} items/s "
                  f"(ratio {rate['server'] / rate['builtin']:.2f}); valid {valid}; same labels {same:.2f}",
                  file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    import importlib.metadata as md

    out = {
        "what": "llama-cpp-python server (GGUF Q4_1, via --base-url) vs the built-in local backend "
                "(float32, batch 8), same items and prompts",
        "threads": args.threads, "load_before": load_before, "load_after": load(),
        "llama_cpp_extra_buffer_types": args.extra_bufts,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "llama_cpp_python": subprocess.run([args.server_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                                           capture_output=True, text=True).stdout.strip(),
        "torch": md.version("torch"),
        "variants": results,
        "ratios": {f"{v}.server_over_builtin": round(r["items_per_s"]["server"] / r["items_per_s"]["builtin"], 3)
                   for v, r in results.items()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
