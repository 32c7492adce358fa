"""Benchmark: the reward library vs a seed-style implementation, and what each reward pays the prior.

Throughput (completions per second) of the mix format + label + stepwise + hamming, scored through
the TRL adapters in batches of 64 with the ground truth from the batch's `labels` column, against the seed's way:
every reward function on its own, the ground truth looked up per completion in a pandas dataframe
(filter by doi and task), parsed with ast.literal_eval, Hamming loss from sklearn, the format by
re.match of the seed's pattern, and every reward but the format paying 0 without it (as the seed's;
the seed's Hamming raises there). Before timing, the seed-style side is checked against the seed's
own values on `tests/fixtures/seed/reward_vectors.jsonl`. Dataframes of 70 and 7,000 rows (the real 70 `easy` items, then
synthetic DOIs with random valid vectors); completions are realistic answers to rows drawn at
random (well-formed right or wrong labels and malformed ones), all distinct. Also timed: the
seed-style lookup with a pure-Python Hamming (the lookup's cost alone). The library's label-parse
cache is cleared before every timed pass; best of several passes, sizes interleaved. Goal: >= 100x,
flat in dataset size.

Second part ("prior"): on the real reference labels, the mean reward of the per-label majority vector
(from the train split) relative to the mean reward of the right answer, on the test split, per task
and reward. Hamming pays the majority vector most of the reward; balanced and F1 rewards much less.

    python bench/rewards.py [--quick]     -> bench/results/rewards.json
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pandas as pd  # noqa: E402
from sklearn.metrics import hamming_loss  # noqa: E402

from llmscisci.rewards import core  # noqa: E402
from llmscisci.rewards.registry import RewardContext, build_mix  # noqa: E402

SEED_PATTERN = r"(?sm).*<think>.*?</think>\s*<label>.*?</label>.*"
MIX = "format:1,label:1,stepwise:1,hamming:1"
BATCH = 64  # completions per reward call (a TRL generation batch: prompts x num_generations)


def data_dir() -> Path:
    """$LLMSCISCI_DATA, else the dataset bundled with the package."""
    from llmscisci.paths import data_dir as resolve

    return resolve(None)


# --- the seed-style implementation --------------------------------------------------------------
def seed_extract_label(text: str) -> str:
    return text.split("<label>")[-1].split("</label>")[0].strip()


def seed_is_valid_onehot(label: str) -> bool:
    try:
        v = ast.literal_eval(label)
        return isinstance(v, list) and len(v) == 5 and all(isinstance(x, int) and x in (0, 1) for x in v)
    except Exception:  # noqa: BLE001
        return False


def seed_format(completions, **kw):
    return [1.0 if re.match(SEED_PATTERN, c) else 0.0 for c in completions]


def seed_label(completions, **kw):
    return [0.5 if re.match(SEED_PATTERN, c) and seed_is_valid_onehot(seed_extract_label(c)) else 0.0
            for c in completions]


def seed_stepwise(completions, **kw):
    out = []
    for c in completions:
        if not re.match(SEED_PATTERN, c):  # the seed scores only a completion with the format
            out.append(0.0)
            continue
        lab = seed_extract_label(c)
        r = 0.0
        if lab:
            r += 0.125
        cleaned = re.sub(r"[\[\],\s]", "", lab)
        if cleaned and all(ch in "01" for ch in cleaned):
            r += 0.125
        if lab.startswith("[") and lab.endswith("]"):
            r += 0.125
        if seed_is_valid_onehot(lab):
            r += 0.625
        out.append(r)
    return out


def make_seed_hamming(df: pd.DataFrame, sklearn: bool = True):
    def seed_hamming(completions, doi, task, **kw):
        out = []
        for c, d, t in zip(completions, doi, task):
            row = df[(df["doi"] == d) & (df["task"] == t)]
            truth = ast.literal_eval(row["labels"].iloc[0])
            if not re.match(SEED_PATTERN, c):  # the seed raises here; 0 is the reading kept
                out.append(0.0)
                continue
            lab = seed_extract_label(c)
            if not seed_is_valid_onehot(lab):
                out.append(0.0)
                continue
            pred = ast.literal_eval(lab)
            if sklearn:
                out.append(1.0 - hamming_loss([truth], [pred]))
            else:
                out.append(1.0 - sum(a != b for a, b in zip(truth, pred)) / len(truth))
        return out

    return seed_hamming


SEED_VECTORS = ROOT / "tests" / "fixtures" / "seed" / "reward_vectors.jsonl"


def check_seed_side(path: Path = SEED_VECTORS) -> int:
    """The seed-style functions give the seed's own values on every line of its reward vectors
    (AssertionError otherwise); returns the number of lines checked."""
    rows = [json.loads(ln) for ln in path.read_text("utf-8").split("\n") if ln]
    df = pd.DataFrame({"doi": [str(i) for i in range(len(rows))], "task": ["easy"] * len(rows),
                       "labels": [json.dumps(r["truth"]) for r in rows]})
    comps, dois = [r["completion"] for r in rows], [str(i) for i in range(len(rows))]
    got = {"format": seed_format(comps), "label": seed_label(comps), "stepwise": seed_stepwise(comps),
           "hamming": make_seed_hamming(df)(comps, doi=dois, task=["easy"] * len(rows))}
    for name, values in got.items():
        want = [0.0 if r[name] is None else r[name] for r in rows]
        bad = [r["id"] for r, g, w in zip(rows, values, want) if abs(g - w) > 1e-9]
        assert not bad, f"seed-style {name} differs from the seed on {len(bad)} vectors: {bad[:5]}"
    return len(rows)


# --- data ---------------------------------------------------------------------------------------
def real_rows() -> list[tuple[str, str, list[int]]]:
    ref = pd.read_csv(data_dir() / "labels" / "reference.csv", dtype=str)
    ref = ref[ref["task"] == "easy"]
    return [(r.doi, r.task, json.loads(r.labels)) for r in ref.itertuples()]


def random_valid(rng: random.Random) -> list[int]:
    v = [rng.randint(0, 1) for _ in range(4)]
    return v + [0] if any(v) else [0, 0, 0, 0, 1]


def frame(n_rows: int, rng: random.Random) -> pd.DataFrame:
    rows = real_rows()
    k = 0
    while len(rows) < n_rows:
        rows.append((f"10.5281/zenodo.9{k:06d}", "easy", random_valid(rng)))
        k += 1
    rows = rows[:n_rows]
    return pd.DataFrame({"doi": [r[0] for r in rows], "task": [r[1] for r in rows],
                         "labels": [json.dumps(r[2]) for r in rows]})


def completion_for(truth: list[int], rng: random.Random, i: int) -> str:
    think = f"Reading {i}: the passage mentions {rng.choice(['code', 'data', 'clear text', 'setup'])}."
    kind = rng.random()
    vec = truth if kind < 0.5 else random_valid(rng)
    label = "[" + ", ".join(map(str, vec)) + "]"
    if kind < 0.8:
        return f"<think>\n{think}\n</think>\n<label>\n{label}\n</label>"
    if kind < 0.9:
        return f"<think>{think}</think> {label}"  # no label block
    return f"<think>{think}</think><label>{', '.join(map(str, vec))} maybe</label>"  # malformed


def batch(df: pd.DataFrame, m: int, seed: int) -> dict:
    """m completions for rows drawn at random; the kinds of completion (right, wrong, malformed) follow
    their own random stream, so every dataset size gets the same mix."""
    pick, write = random.Random(seed), random.Random(seed + 1)
    idx = [pick.randrange(len(df)) for _ in range(m)]
    truths = [json.loads(df["labels"].iat[j]) for j in idx]
    return {"completions": [completion_for(truths[k], write, k) for k in range(m)], "labels": truths,
            "doi": [df["doi"].iat[j] for j in idx], "task": [df["task"].iat[j] for j in idx]}


# --- timing -------------------------------------------------------------------------------------
def once(fn) -> float:
    core.clear_caches()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def setup(n_rows: int, m_lib: int, m_seed: int) -> dict:
    df = frame(n_rows, random.Random(1))
    big = batch(df, m_lib, 7)
    small = {k: v[:m_seed] for k, v in big.items()}
    mix = build_mix(MIX, RewardContext())
    seed_funcs = [seed_format, seed_label, seed_stepwise, make_seed_hamming(df, sklearn=True)]
    lookup_funcs = [seed_format, seed_label, seed_stepwise, make_seed_hamming(df, sklearn=False)]

    def lib():  # in TRL-sized batches: each reward of the mix is called on one batch in turn
        for s in range(0, m_lib, BATCH):
            mix.score(big["completions"][s:s + BATCH], labels=big["labels"][s:s + BATCH],
                      doi=big["doi"][s:s + BATCH], task=big["task"][s:s + BATCH])

    def seed(funcs):
        def run():
            return [f(completions=small["completions"], doi=small["doi"], task=small["task"]) for f in funcs]
        return run

    # the two implementations agree on every completion
    lib_scores = mix.score(small["completions"], labels=small["labels"])
    seed_scores = seed(seed_funcs)()
    for k, name in enumerate(["format", "label", "stepwise", "hamming"]):
        assert [round(x, 9) for x in lib_scores[name]] == [round(x, 9) for x in seed_scores[k]], name
    return {"lib": lib, "seed": seed(seed_funcs), "lookup": seed(lookup_funcs)}


def throughput(sizes: tuple[int, ...], m_lib: int, m_seed: int, repeat: int) -> dict:
    """Best of `repeat` passes (library) and of 2 (seed-style), the sizes interleaved in every round so
    that the load of a shared machine hits both alike."""
    runs = {n: setup(n, m_lib, m_seed) for n in sizes}
    best: dict = {n: {"lib": [], "seed": [], "lookup": []} for n in sizes}
    for r in range(repeat):
        for n in sizes:
            best[n]["lib"].append(once(runs[n]["lib"]))
            if r < 2:
                best[n]["seed"].append(once(runs[n]["seed"]))
                best[n]["lookup"].append(once(runs[n]["lookup"]))
    out = {}
    for n in sizes:
        t_lib, t_seed, t_lookup = (min(best[n][k]) for k in ("lib", "seed", "lookup"))
        out[str(n)] = {
            "rows": n,
            "library_completions_per_s": m_lib / t_lib,
            "seed_completions_per_s": m_seed / t_seed,
            "seed_lookup_only_completions_per_s": m_seed / t_lookup,
            "library_us_per_completion": 1e6 * t_lib / m_lib,
            "seed_us_per_completion": 1e6 * t_seed / m_seed,
            "seed_lookup_only_us_per_completion": 1e6 * t_lookup / m_seed,
            "completions_timed": {"library": m_lib, "seed": m_seed},
        }
    return out


# --- what each reward pays the per-label majority -------------------------------------------------
def prior_payoff() -> dict:
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items

    out = {}
    names = ["hamming", "balanced", "f1_micro", "f1_macro", "group_f1"]
    for task in ("easy", "difficult"):
        cb = load_codebook(task)
        items = [it for it in load_items(cb, data_dir=data_dir()) if it.labels is not None]
        train = [it.labels for it in items if it.split == "train"]
        test = [it for it in items if it.split == "test"]
        prev = core.prevalence(train)
        majority = [1 if sum(v[j] for v in train) * 2 > len(train) else 0 for j in range(cb.n)]
        mix = build_mix(",".join(names), RewardContext(n_labels=cb.n, none_index=cb.none_index,
                                                       prevalence={task: prev}))

        def fmt(v):
            return "<think>x</think><label>[" + ", ".join(map(str, v)) + "]</label>"

        # one batch: each test item answered once right and once with the majority vector
        comps = [fmt(it.labels) for it in test] + [fmt(majority) for _ in test]
        labels = [list(it.labels) for it in test] * 2
        s = mix.score(comps, labels=labels, task=[task] * len(comps))
        k = len(test)
        res = {"majority_vector": majority, "test_items": k,
               "items_where_majority_is_wrong": sum(tuple(it.labels) != tuple(majority) for it in test)}
        for n in names:
            right = statistics.mean(s[n][:k])
            maj = statistics.mean(s[n][k:])
            res[n] = {"right": round(right, 4), "majority": round(maj, 4),
                      "majority_share": round(maj / right, 4) if right else None}
        out[task] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    checked = check_seed_side()
    print(f"seed-style side: the seed's values on all {checked} reward vectors")
    m_lib, m_seed, repeat = (2000, 200, 3) if quick else (20000, 1000, 5)
    sizes = throughput((70, 7000), m_lib, m_seed, repeat)
    for n_rows in (70, 7000):
        r = sizes[str(n_rows)]
        print(f"{n_rows:>5} rows: library {r['library_completions_per_s']:>10,.0f}/s "
              f"({r['library_us_per_completion']:.1f} us), seed-style {r['seed_completions_per_s']:>8,.0f}/s "
              f"({r['seed_us_per_completion']:.0f} us), seed lookup only {r['seed_lookup_only_completions_per_s']:>8,.0f}/s")
    ratios = {}
    for n_rows in ("70", "7000"):
        r = sizes[n_rows]
        ratios[f"vs_seed_{n_rows}_rows"] = r["library_completions_per_s"] / r["seed_completions_per_s"]
        ratios[f"vs_seed_lookup_only_{n_rows}_rows"] = (r["library_completions_per_s"]
                                                        / r["seed_lookup_only_completions_per_s"])
    ratios["library_flatness_7000_over_70"] = (sizes["7000"]["library_completions_per_s"]
                                               / sizes["70"]["library_completions_per_s"])
    ratios["seed_flatness_7000_over_70"] = (sizes["7000"]["seed_completions_per_s"]
                                            / sizes["70"]["seed_completions_per_s"])
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}x")
    prior = prior_payoff()
    for task, res in prior.items():
        shares = ", ".join(f"{n} {res[n]['majority_share']}" for n in ("hamming", "balanced", "f1_micro",
                                                                       "f1_macro", "group_f1"))
        print(f"{task}: majority vector {res['majority_vector']} earns, relative to the right answer: {shares}")
    result = {
        "benchmark": "rewards",
        "mix": MIX,
        "quick": quick,
        "seed_side_checked_on_vectors": checked,
        "sizes": sizes,
        "ratios": ratios,
        "targets": {"vs_seed_70_rows": ">= 100", "vs_seed_7000_rows": ">= 100",
                    "library_flatness_7000_over_70": "about 1"},
        "prior": prior,
    }
    dest = ROOT / "bench" / "results" / "rewards.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
