"""Benchmark: throughput of the local labelling path (batched, shared-prefix KV cache) against a
one-item-at-a-time `model.generate` loop, and the cost of constrained (structured) decoding.

Model: the embedded smollm2-135m (float32, CPU). Prompts: the label prompts of the `easy` codebook
(system prompt with the rubric, identical for every item, + the item's text) for every report of
`mlrc_reports.csv` in the data directory. Every path decodes greedily with the same max_new_tokens
(the labelling defaults: 32 for `guidelines`, 64 for `structured`); the baseline tokenises exactly
as the backend does and runs `model.generate` on one prompt at a time, no padding, no cache reuse.

Measured, interleaved chunk by chunk (each chunk's items through every path, order alternating) so
that load from other processes on a shared machine hits all paths alike:
  - single: the one-at-a-time loop (the reference);
  - batched: `LocalBackend.generate` as the labelling run calls it (sorted batches, shared-prefix KV
    cache computed once and reused by later calls, preallocated KV buffers);
  - batched_no_prefix: the same batches without the shared-prefix cache (plain left padding);
and whether the batched greedy answers equal the single ones. Then the structured variant: each batch
decoded under the JSON-schema constraint (outlines-core), against free decoding of the same batches
forced to the same number of new tokens (min_new_tokens = the batch's longest structured answer).
The schema's one-off compilation is timed separately.

    python bench/label_throughput.py [--quick] [--limit N] [--batch-size 8] [--also-batch 32] [--threads 1]
                                     -> bench/results/label_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from llmscisci.backends.base import BackendOptions, GenParams  # noqa: E402
from llmscisci.backends.local import LocalBackend  # noqa: E402
from llmscisci.data.codebook import load_codebook  # noqa: E402
from llmscisci.data.items import load_items  # noqa: E402

OUT = ROOT / "bench" / "results" / "label_throughput.json"
DEFAULT_MAX_NEW = {"icl": 48, "guidelines": 32, "structured": 64}


def data_dir() -> Path:
    """$LLMSCISCI_DATA, else the dataset bundled with the package."""
    from llmscisci.paths import data_dir as resolve

    return resolve(None)


def messages_builder():
    """The project's prompt builder when present, else an equivalent local one (rubric + rules)."""
    try:
        from llmscisci.prompts.label import build_messages, label_schema

        def build_project(text, cb, variant):
            return build_messages(text, cb, variant)

        return build_project, label_schema, "llmscisci.prompts"
    except ImportError:
        from pydantic import ConfigDict, create_model

        def build(text, cb, variant):
            rubric = "\n".join(f"{i}. {c.name}: {c.description}" for i, c in enumerate(cb.categories, 1))
            fmt = (
                "a JSON object with one true/false field per category"
                if variant == "structured"
                else "a JSON list of category numbers, for example [1, 3]"
            )
            system = (
                f"You label passages from machine-learning reproducibility reports.\n{cb.question}\n\n"
                f"Categories:\n{rubric}\n\nGuidelines:\n- Several categories may apply at once.\n"
                f"- Category {cb.none_index + 1} is exclusive.\n- Output format: {fmt}."
            )
            return [{"role": "system", "content": system}, {"role": "user", "content": f"Passage:\n{text}"}]

        def schema(cb):
            fields = {s: (bool, ...) for s in cb.shorts}
            return create_model("Labels", __config__=ConfigDict(extra="forbid"), **fields)

        return build, schema, "bench-local"


def single_generate(be: LocalBackend, conversation, max_new_tokens: int) -> str:
    """The reference: one prompt, plain `model.generate`, greedy."""
    tok, model = be.tokenizer, be.model
    ids = torch.tensor([be.prompt_ids(conversation)])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=be._eos_ids,
            pad_token_id=tok.pad_token_id,
        )
    new = out[0, ids.shape[1] :].tolist()
    eos = set(be._eos_ids)
    stop = next((k for k, t in enumerate(new) if t in eos), len(new))
    return tok.decode(new[:stop], skip_special_tokens=True)


def chunks(seq, n):
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="easy")
    ap.add_argument("--variant", default="guidelines", choices=("icl", "guidelines"))
    ap.add_argument("--limit", type=int, default=None, help="first N items (default: all)")
    ap.add_argument("--batch-size", type=int, default=8, help="the labelling run's batch (CLI default 8)")
    ap.add_argument("--also-batch", type=int, default=32, help="a second, larger batch size (0: none)")
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for every path (default 1: on a shared 2-core machine a "
                         "second thread mostly waits; 0 keeps torch's default)")
    ap.add_argument("--chunk", type=int, default=None,
                    help="items per interleaved chunk (default: the largest batch)")
    ap.add_argument("--no-structured", action="store_true")
    ap.add_argument("--quick", action="store_true", help="16 items, no second batch size")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    limit = args.limit or (16 if args.quick or os.environ.get("BENCH_QUICK") else None)
    max_new = args.max_new_tokens or DEFAULT_MAX_NEW[args.variant]
    bs = args.batch_size
    quick = args.quick or bool(os.environ.get("BENCH_QUICK"))
    big = args.also_batch if args.also_batch and args.also_batch != bs and not quick else None
    chunk = args.chunk or max(bs, big or 0)

    cb = load_codebook(args.task)
    items = load_items(cb, data_dir=data_dir())[:limit]
    build, schema_for, prompt_source = messages_builder()
    convs = [build(it.text, cb, args.variant) for it in items]
    opts = BackendOptions(device="cpu", dtype="float32", batch_size=bs)
    t0 = time.perf_counter()
    be = LocalBackend("smollm2-135m", opts)
    load_s = time.perf_counter() - t0
    plain = LocalBackend("smollm2-135m", opts, loaded=be.loaded, prefix_cache=False)
    big_be = None
    if big:
        big_opts = BackendOptions(device="cpu", dtype="float32", batch_size=big)
        big_be = LocalBackend("smollm2-135m", big_opts, loaded=be.loaded)
    n_prompt = [be.count_tokens(c) for c in convs]
    print(f"{len(convs)} items, prompt tokens {min(n_prompt)}..{max(n_prompt)} "
          f"(mean {sum(n_prompt) / len(n_prompt):.0f}), max_new_tokens {max_new}, batch {bs}, "
          f"threads {torch.get_num_threads()}, model loaded in {load_s:.1f}s", file=sys.stderr)
    # warm-up: first calls pay one-off costs (allocators, kernels) on every path
    single_generate(be, convs[0], 2)
    plain.generate(convs[:2], GenParams(max_new_tokens=2))
    be.clear_prefix_cache()

    params = GenParams(max_new_tokens=max_new)
    t = {"single": 0.0, "batched": 0.0, "batched_no_prefix": 0.0}
    if big_be is not None:
        t[f"batched_b{big}"] = 0.0
    big_txt = [None] * len(convs)
    single_txt, batched_txt = [None] * len(convs), [None] * len(convs)
    tokens_out = 0
    idx_chunks = chunks(list(range(len(convs))), chunk)
    for k, idx in enumerate(idx_chunks):
        sub = [convs[i] for i in idx]

        def run_single():
            for i in idx:
                single_txt[i] = single_generate(be, convs[i], max_new)

        def run_batched():
            nonlocal tokens_out
            gens = be.generate(sub, params)
            for i, g in zip(idx, gens):
                batched_txt[i] = g.text
                tokens_out += g.tokens_out

        def run_plain():
            plain.generate(sub, params)

        def run_big():
            for i, g in zip(idx, big_be.generate(sub, params)):
                big_txt[i] = g.text

        order = [("single", run_single), ("batched", run_batched), ("batched_no_prefix", run_plain)]
        if big_be is not None:
            order.append((f"batched_b{big}", run_big))
        if k % 2:
            order.reverse()
        for name, fn in order:
            s = time.perf_counter()
            fn()
            t[name] += time.perf_counter() - s
        done = idx[-1] + 1
        rates = ", ".join(f"{k} {done / v:.3f}" for k, v in t.items())
        print(f"  {done}/{len(convs)} items/s: {rates}", file=sys.stderr)
    n = len(convs)
    ips = {k: n / v for k, v in t.items()}
    same = sum(a == b for a, b in zip(single_txt, batched_txt))
    same_big = sum(a == b for a, b in zip(single_txt, big_txt)) if big_be is not None else None
    result = {
        "model": "smollm2-135m (float32, cpu)",
        "task": args.task,
        "variant": args.variant,
        "prompts_from": prompt_source,
        "items": n,
        "batch_size": bs,
        "max_new_tokens": max_new,
        "prompt_tokens_mean": round(sum(n_prompt) / n, 1),
        "shared_prefix_tokens": len(be._prefix[0]) if be._prefix else 0,
        "generated_tokens_batched": tokens_out,
        "torch_threads": torch.get_num_threads(),
        "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "seconds": {k: round(v, 2) for k, v in t.items()},
        "items_per_s": {k: round(v, 4) for k, v in ips.items()},
        "greedy_answers_identical": f"{same}/{n}",
    }
    if big_be is not None:
        result[f"greedy_answers_identical_b{big}"] = f"{same_big}/{n}"
    ratios = {
        "batched_vs_single": round(ips["batched"] / ips["single"], 2),
        "batched_no_prefix_vs_single": round(ips["batched_no_prefix"] / ips["single"], 2),
        "prefix_cache_gain": round(ips["batched"] / ips["batched_no_prefix"], 2),
    }
    if big_be is not None:
        ratios[f"batched_b{big}_vs_single"] = round(ips[f"batched_b{big}"] / ips["single"], 2)

    if not args.no_structured:
        sconvs = [build(it.text, cb, "structured") for it in items]
        schema = schema_for(cb)
        smax = DEFAULT_MAX_NEW["structured"]
        s = time.perf_counter()
        proc = be._processor(schema)
        be.generate(sconvs[:1], GenParams(max_new_tokens=smax), schema=schema)  # first use builds the guide
        compile_s = time.perf_counter() - s
        rows = [be.prompt_ids(c) for c in sconvs]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        be.clear_prefix_cache()
        prefix = be._shared_prefix(rows)
        ts = {"structured": 0.0, "free_same_length": 0.0}
        parsed, steps = 0, 0
        for k, idx in enumerate(chunks(order, bs)):
            batch = [rows[i] for i in idx]
            lengths = []

            def run_struct():
                gens = be.generate_batch(batch, GenParams(max_new_tokens=smax), processor=proc, prefix=prefix)
                lengths.extend(g.tokens_out for g in gens)
                nonlocal parsed
                for g in gens:
                    try:
                        schema.model_validate_json(g.text)
                        parsed += 1
                    except ValueError:
                        pass

            def run_free():
                L = max(lengths)
                be.generate_batch(batch, GenParams(max_new_tokens=L), min_new_tokens=L, prefix=prefix)

            s = time.perf_counter()
            run_struct()
            ts["structured"] += time.perf_counter() - s
            s = time.perf_counter()
            run_free()
            ts["free_same_length"] += time.perf_counter() - s
            steps += max(lengths)
        result["structured"] = {
            "max_new_tokens": smax,
            "schema_compile_seconds": round(compile_s, 2),
            "seconds": {k: round(v, 2) for k, v in ts.items()},
            "decode_steps": steps,
            "parsed": f"{parsed}/{n}",
        }
        ratios["structured_over_free"] = round(ts["structured"] / ts["free_same_length"], 3)

    result["ratios"] = ratios
    result["targets"] = {"batched_vs_single": ">= 8", "structured_over_free": "<= 1.2"}
    if big_be is not None:
        result["targets"][f"batched_b{big}_vs_single"] = ">= 8"
    result["machine"] = {
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, OUT)
    print(f"\nlabel throughput ({n} items, {args.variant}, max_new_tokens {max_new}, batch {bs}):")
    for k, v in result["items_per_s"].items():
        print(f"  {k:<20} {v:8.3f} items/s")
    print(f"  greedy answers identical (batched vs single): {result['greedy_answers_identical']}"
          + (f", batch {big}: {result[f'greedy_answers_identical_b{big}']}" if big_be is not None else ""))
    for k, v in ratios.items():
        print(f"  {k:<28} {v:6.2f}x")
    print(f"written: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
