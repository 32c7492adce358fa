"""Preference sets for DPO: prompt / chosen / rejected rows from label files or the model's own answers.

Strategies
  by-source       chosen from one label file, rejected from another, joined on DOI (the seed's way:
                  the two files' raw responses as the texts; the seed also kept identical pairs)
  by-correctness  any number of label files; each answer scored against the reference (Hamming loss);
                  chosen = better, rejected = worse, ties dropped, the margin kept as a column
  self            rejected = the target model's own sampled answers that are wrong against the
                  reference; chosen = the reference rendered in the prompt variant's answer format
Rows are conversational (TRL applies the target model's chat template to prompt, chosen and rejected)
and keep doi, task, split. Lengths are measured in the target tokenizer's tokens; rows longer than the
p95-based limits are filtered, and the limits chosen are recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item
from llmscisci.data.labelfiles import LabelSet
from llmscisci.errors import UserError
from llmscisci.prompts.label import build_messages

STRATEGIES = ("by-source", "by-correctness", "self")


@dataclass(frozen=True)
class Answer:
    source: str
    labels: tuple[int, ...]
    text: str


def hamming(a, b) -> float:
    return float(np.mean(np.asarray(a) != np.asarray(b)))


def _row(item: Item, codebook: Codebook, variant: str, chosen: Answer, rejected: Answer) -> dict:
    return {
        "prompt": build_messages(item.text, codebook, variant),
        "chosen": [{"role": "assistant", "content": chosen.text}],
        "rejected": [{"role": "assistant", "content": rejected.text}],
        "doi": item.doi, "task": item.task, "split": item.split,
        "chosen_source": chosen.source, "rejected_source": rejected.source,
        "chosen_labels": list(chosen.labels), "rejected_labels": list(rejected.labels),
        "reference": list(item.labels) if item.labels is not None else None,
        "margin": (hamming(rejected.labels, item.labels) - hamming(chosen.labels, item.labels))
        if item.labels is not None else None,
    }


def answers_from(labelset: LabelSet, codebook: Codebook, variant: str, use_response: bool) -> dict[str, Answer]:
    from llmscisci.tasks.parse import render_answer

    out = {}
    for doi, rec in labelset.for_task(codebook.task).items():
        if rec.labels is None:
            continue
        text = rec.response if (use_response and rec.response) else render_answer(rec.labels, codebook, variant)
        out[doi] = Answer(labelset.name, rec.labels, text)
    return out


def by_source(items: list[Item], codebook: Codebook, variant: str, chosen: LabelSet, rejected: LabelSet,
              use_response: bool = True, keep_ties: bool = False) -> list[dict]:
    """Pairs of the two files' answers for the same item. `use_response`: the raw response texts (a
    record without one is rendered from its labels); else the labels rendered in the variant's answer
    format. `keep_ties`: keep pairs whose answers give the same labels."""
    ca = answers_from(chosen, codebook, variant, use_response)
    ra = answers_from(rejected, codebook, variant, use_response)
    rows = []
    for it in items:
        if it.doi in ca and it.doi in ra:
            if not keep_ties and ca[it.doi].labels == ra[it.doi].labels:
                continue
            rows.append(_row(it, codebook, variant, ca[it.doi], ra[it.doi]))
    return rows


def by_correctness(items: list[Item], codebook: Codebook, variant: str, sets: list[LabelSet],
                   use_response: bool = False, min_margin: float = 0.0) -> list[dict]:
    answers = [answers_from(s, codebook, variant, use_response) for s in sets]
    rows = []
    for it in items:
        if it.labels is None:
            continue
        cands = [a[it.doi] for a in answers if it.doi in a]
        for i in range(len(cands)):
            for j in range(i + 1, len(cands)):
                hi, hj = hamming(cands[i].labels, it.labels), hamming(cands[j].labels, it.labels)
                if hi == hj or abs(hi - hj) <= min_margin:
                    continue  # ties dropped
                good, bad = (cands[i], cands[j]) if hi < hj else (cands[j], cands[i])
                rows.append(_row(it, codebook, variant, good, bad))
    return rows


def self_pairs(items: list[Item], codebook: Codebook, variant: str, samples: dict[str, list[str]],
               chosen: dict[str, Answer] | None = None) -> list[dict]:
    """`samples`: doi -> the target model's sampled raw answers. Wrong (or unparseable) ones are rejected."""
    from llmscisci.tasks.parse import parse_answer, render_answer

    rows = []
    for it in items:
        if it.labels is None:
            continue
        good = (chosen or {}).get(it.doi) or Answer("reference", it.labels, render_answer(it.labels, codebook, variant))
        seen = set()
        for raw in samples.get(it.doi, []):
            parsed = parse_answer(raw, codebook)
            labels = parsed.labels
            if labels is not None and tuple(labels) == tuple(it.labels):
                continue  # a correct sample is no rejected answer
            if raw in seen:
                continue
            seen.add(raw)
            bad = Answer("self", tuple(labels) if labels is not None else tuple([0] * codebook.n), raw)
            row = _row(it, codebook, variant, good, bad)
            if labels is None:
                row["margin"] = None
            rows.append(row)
    return rows


def sample_answers(items: list[Item], codebook: Codebook, variant: str, model: str, k: int, seed: int,
                   temperature: float = 0.9, max_new_tokens: int = 48, cache_file: Path | None = None,
                   options=None) -> dict[str, list[str]]:
    """k sampled answers of the target model per item, cached in a JSONL file keyed by model/prompt/seed."""
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.runs import iter_jsonl, stable_hash

    cache: dict[str, list[str]] = {}
    if cache_file and cache_file.is_file():
        for rec in iter_jsonl(cache_file):  # a torn last line (a killed run) or a damaged one is asked again
            if "key" in rec and "samples" in rec:
                cache[rec["key"]] = rec["samples"]
    out, todo = {}, []
    for it in items:
        key = stable_hash([model, build_messages(it.text, codebook, variant), k, seed, temperature, max_new_tokens])
        if key in cache:
            out[it.doi] = cache[key]
        else:
            todo.append((it, key))
    if todo:
        backend = load_backend(model, options)
        convs = [build_messages(it.text, codebook, variant) for it, _ in todo for _ in range(k)]
        gens = backend.generate(convs, GenParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed))
        for n, (it, key) in enumerate(todo):
            samples = [g.text for g in gens[n * k:(n + 1) * k]]
            out[it.doi] = samples
            if cache_file:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                with cache_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "doi": it.doi, "samples": samples}) + "\n")
    return out


def length_filter(rows: list[dict], tokenizer, quantile: float = 0.95) -> tuple[list[dict], dict]:
    """Token lengths of prompt and prompt+answer under the target tokenizer; drop rows over the p95 limits."""
    if not rows:
        return rows, {}

    def n_tokens(msgs, gen_prompt):
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen_prompt)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    p_len = np.array([n_tokens(r["prompt"], True) for r in rows])
    full = np.array([max(n_tokens(r["prompt"] + r["chosen"], False), n_tokens(r["prompt"] + r["rejected"], False))
                     for r in rows])
    max_prompt = int(np.ceil(np.quantile(p_len, quantile)))
    max_len = int(np.ceil(np.quantile(full, quantile)))
    kept = [r for r, pl, fl in zip(rows, p_len, full) if pl <= max_prompt and fl <= max_len]
    info = {"quantile": quantile, "max_prompt_length": max_prompt, "max_length": max_len,
            "prompt_p95": float(np.quantile(p_len, 0.95)), "full_p95": float(np.quantile(full, 0.95)),
            "rows_before": len(rows), "rows_after": len(kept)}
    return kept, info


def save_preferences(rows: list[dict], out: Path, card: dict) -> None:
    """DatasetDict (train/test by the canonical split) on disk and as parquet, with a README card."""
    from datasets import Dataset, DatasetDict

    if not rows:
        raise UserError("no preference pairs were built (all ties or no overlapping items)")
    # an empty split is left out (datasets cannot reload a zero-shard split)
    splits = {s: Dataset.from_list(sel) for s in ("train", "test") if (sel := [r for r in rows if r["split"] == s])}
    dd = DatasetDict(splits)
    out.mkdir(parents=True, exist_ok=True)
    dd.save_to_disk(str(out / "dataset"))
    for s, ds in dd.items():
        ds.to_parquet(str(out / f"{s}.parquet"))
    card = {**card, "rows": {s: len(dd[s]) if s in dd else 0 for s in ("train", "test")}}
    (out / "card.json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    lines = ["# Preference set", "", f"Built by `llmscisci dpo build` with strategy **{card.get('strategy')}**.", ""]
    lines += [f"- {k}: {v}" for k, v in card.items() if k != "strategy"]
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_preferences(path: Path):
    from datasets import load_from_disk

    p = Path(path) / "dataset"
    if not p.is_dir():
        raise UserError(f"{path}: not a preference set (no dataset/ folder; build one with `llmscisci dpo build`)")
    return load_from_disk(str(p))
