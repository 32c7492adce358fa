"""Chain-of-thought data for GRPO (and its SFT warm start): prompt / completion rows.

Prompt: the system prompt asking for ``<think>...</think><label>[...]</label>`` and the task prompt with
the item's text inside ``<text>`` tags (prompts/grpo.toml). Completion: ``<think>`` a reasoning trace
``</think>`` then ``<label>`` the reference vector ``</label>``. Columns ``doi``, ``task``, ``labels``
(ground truth, read by the rewards), ``label_names`` and ``trace_source`` are kept. Splits are the
canonical DOI-grouped train/test split of the items.

Traces come from
  * a teacher model (any backend: ``provider:model`` or a local model), given the text and its
    ground-truth categories; API backends cache every answer, so a rebuild costs nothing; or
  * offline, the annotators' free-text ``response`` (labels/annotator_*.jsonl): per item the
    annotators whose label vector equals the reference (the first of them, or each of them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item
from llmscisci.data.labelfiles import LabelSet
from llmscisci.errors import UserError
from llmscisci.runs import atomic_folder
from llmscisci.prompts.cot import (clean_trace, completion_text, prompt_hash, prompt_messages, system_prompt,
                                   teacher_messages)

__all__ = ["ANNOTATORS", "FORMATS", "PER_ITEM", "Trace", "annotator_traces", "build_cot", "build_rows",
           "check_out", "clean_trace", "completion_text", "drop_long", "length_report", "load_cot", "make_row",
           "prompt_hash", "prompt_messages", "save_cot", "system_prompt", "teacher_messages", "teacher_traces",
           "to_dataset_dict"]

FORMATS = ("conversational", "standard")
PER_ITEM = ("one", "all")
ANNOTATORS = "annotators"


# --- traces ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    text: str
    source: str


def annotator_traces(items: list[Item], sets: list[LabelSet], per_item: str = "one") -> dict[str, list[Trace]]:
    """Per DOI, the responses of annotators whose labels equal the item's reference labels (in the
    order of `sets`): the first (`one`) or all of them (`all`). Items with none get no entry."""
    if per_item not in PER_ITEM:
        raise UserError(f"unknown per-item choice {per_item!r}: use one or all")
    out: dict[str, list[Trace]] = {}
    for it in items:
        found = []
        for ls in sets:
            rec = ls.records.get((it.doi, it.task))
            if rec is None or rec.labels is None or not (rec.response or "").strip():
                continue
            if it.labels is not None and tuple(rec.labels) == tuple(it.labels):
                found.append(Trace(clean_trace(rec.response), f"annotator:{ls.name}"))
        if found:
            out[it.doi] = found if per_item == "all" else found[:1]
    return out


def teacher_traces(items: list[Item], codebook: Codebook, backend, max_new_tokens: int = 384,
                   progress: bool = True) -> dict[str, Trace]:
    """Per DOI, the teacher's trace given the text and its ground truth (failed answers left out)."""
    from llmscisci.backends.base import GenParams

    todo = [it for it in items if it.labels is not None]
    convs = [teacher_messages(it.text, it.labels, codebook) for it in todo]
    params = GenParams(max_new_tokens=max_new_tokens, temperature=0.0)
    name = getattr(backend, "name", "teacher")
    if progress and convs:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"teacher traces ({codebook.task})", total=len(convs))
            gens = backend.generate(convs, params, on_result=lambda i, g: bar.advance(task))
    else:
        gens = backend.generate(convs, params) if convs else []
    out = {}
    for it, g in zip(todo, gens):
        text = clean_trace(g.text)
        if g.error or g.refusal or not text:
            continue
        out[it.doi] = Trace(text, f"teacher:{name}")
    return out


# --- rows ------------------------------------------------------------------------------------------
def make_row(item: Item, codebook: Codebook, trace: Trace, fmt: str = "conversational") -> dict:
    prompt = prompt_messages(item.text, codebook)
    completion = completion_text(trace.text, item.labels)
    if fmt == "standard":
        prompt = prompt[0]["content"] + "\n\n" + prompt[1]["content"]
    else:
        completion = [{"role": "assistant", "content": completion}]
    return {
        "prompt": prompt,
        "completion": completion,
        "doi": item.doi,
        "task": item.task,
        "labels": [int(v) for v in item.labels],
        "label_names": codebook.names_of(item.labels),
        "trace_source": trace.source,
        "split": item.split,
    }


def build_rows(
    items: list[Item],
    codebook: Codebook,
    annotator: dict[str, list[Trace]] | None = None,
    teacher: dict[str, Trace] | None = None,
    fmt: str = "conversational",
) -> tuple[list[dict], dict]:
    """Rows for one task: the teacher's trace where there is one, else the annotators' (a failed
    teacher answer falls back to them). Returns (rows, counts of what was used and skipped)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    rows, info = [], {"items": len(items), "no_labels": 0, "no_trace": 0, "teacher": 0, "annotator": 0,
                      "teacher_fallback": 0}
    for it in items:
        if it.labels is None:
            info["no_labels"] += 1
            continue
        traces: list[Trace] = []
        if teacher is not None:
            if it.doi in teacher:
                traces = [teacher[it.doi]]
                info["teacher"] += 1
            elif annotator and it.doi in annotator:
                traces = annotator[it.doi][:1]
                info["teacher_fallback"] += 1
        elif annotator and it.doi in annotator:
            traces = annotator[it.doi]
            info["annotator"] += 1
        if not traces:
            info["no_trace"] += 1
            continue
        rows += [make_row(it, codebook, tr, fmt) for tr in traces]
    return rows, info


# --- lengths ---------------------------------------------------------------------------------------
def _text_of(x) -> str:
    if isinstance(x, str):
        return x
    return "\n".join(str(m.get("content", "")) for m in x)


def length_report(rows: list[dict], tokenizer=None, quantile: float = 0.95, label: str | None = None) -> dict:
    """Token lengths of prompts (chat template applied when the tokenizer has one), completions and
    think traces: p50, the `quantile` and max, and the limits a trainer should use (ceil of the
    quantile) — the seed's p95 analysis."""
    from llmscisci.rewards.core import think_text
    from llmscisci.rewards.tokens import token_counter

    if not 0 < quantile <= 1:
        raise UserError(f"quantile must be in (0, 1], got {quantile}")
    count, method = token_counter(tokenizer, special_tokens=False)
    method = label or method
    templ = tokenizer is not None and not isinstance(tokenizer, str) and hasattr(tokenizer, "apply_chat_template") \
        and getattr(tokenizer, "chat_template", None)

    def prompt_len(p) -> int:
        if templ and not isinstance(p, str):
            text = tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
            return count(text)
        return count(_text_of(p))

    if not rows:
        return {"rows": 0, "method": method}
    p = np.array([prompt_len(r["prompt"]) for r in rows])
    c = np.array([count(_text_of(r["completion"])) for r in rows])
    t = np.array([count(think_text(_text_of(r["completion"]))) for r in rows])

    def stats(a):
        return {"p50": float(np.quantile(a, 0.5)), f"p{round(quantile * 100)}": float(np.quantile(a, quantile)),
                "max": int(a.max()), "mean": float(a.mean())}

    return {
        "rows": len(rows), "method": method, "chat_template": bool(templ), "quantile": quantile,
        "prompt": stats(p), "completion": stats(c), "think": stats(t), "total": stats(p + c),
        "max_prompt_length": int(math.ceil(np.quantile(p, quantile))),
        "max_completion_length": int(math.ceil(np.quantile(c, quantile))),
        "_lengths": {"prompt": p.tolist(), "completion": c.tolist()},
    }


def drop_long(rows: list[dict], report: dict) -> list[dict]:
    """Rows whose prompt and completion both fit the report's limits (the seed's p95 filter)."""
    lens = report.get("_lengths")
    if not lens:
        return rows
    return [r for r, pl, cl in zip(rows, lens["prompt"], lens["completion"])
            if pl <= report["max_prompt_length"] and cl <= report["max_completion_length"]]


# --- saving ----------------------------------------------------------------------------------------
def to_dataset_dict(rows: list[dict]):
    from datasets import Dataset, DatasetDict

    if not rows:
        raise UserError("no chain-of-thought rows were built (no item had labels and a trace)")
    splits = {}
    for s in ("train", "test"):
        sel = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == s]
        splits[s] = Dataset.from_list(sel) if sel else \
            Dataset.from_list([{k: v for k, v in rows[0].items() if k != "split"}]).select([])
    return DatasetDict(splits)


def check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already holds files; choose another --out or pass --force to replace it")


def _card_markdown(card: dict) -> str:
    lines = [
        "# Chain-of-thought data for GRPO",
        "",
        "Built by `llmscisci grpo build`. Each row: `prompt` (system prompt asking for "
        "`<think>...</think><label>[...]</label>`, then the task prompt with the text inside `<text>` tags), "
        "`completion` (`<think>` reasoning trace `</think>` + `<label>` reference vector `</label>`), "
        "`doi`, `task`, `labels` (ground truth for the rewards), `label_names`, `trace_source`.",
        "",
        f"- traces: {card.get('source')}",
        f"- format: {card.get('format')}",
        f"- split: {json.dumps(card.get('split'))}",
        f"- rows: {json.dumps(card.get('rows'))}",
        f"- per task: {json.dumps(card.get('per_task'))}",
        f"- prompt hash: {card.get('prompt_hash')}",
    ]
    lengths = card.get("lengths") or {}
    if lengths.get("rows"):
        q = f"p{round(lengths['quantile'] * 100)}"
        lines += ["", f"## Lengths ({lengths['method']}{', chat template' if lengths.get('chat_template') else ''})",
                  "", f"| part | p50 | {q} | max |", "| --- | --- | --- | --- |"]
        for part in ("prompt", "completion", "think", "total"):
            s = lengths[part]
            lines.append(f"| {part} | {s['p50']:.0f} | {s[q]:.0f} | {s['max']} |")
        lines += ["", f"Suggested limits: max_prompt_length {lengths['max_prompt_length']}, "
                      f"max_completion_length {lengths['max_completion_length']}."]
    return "\n".join(lines) + "\n"


def save_cot(rows: list[dict], out: Path, card: dict, force: bool = False) -> dict:
    """DatasetDict (save_to_disk) + one parquet file per split + card.json + README.md, written into a
    temporary folder and moved into place (never half-written)."""
    out = Path(out)
    check_out(out, force)
    dd = to_dataset_dict(rows)
    card = {**card, "rows": {s: len(ds) for s, ds in dd.items()}, "columns": dd["train"].column_names}
    card.get("lengths", {}).pop("_lengths", None)
    from datasets import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled

    bars = is_progress_bar_enabled()
    disable_progress_bars()  # a few hundred rows: the per-shard bars are noise
    try:
        with atomic_folder(out) as tmp:
            dd.save_to_disk(str(tmp / "dataset"))
            for s, ds in dd.items():
                ds.to_parquet(str(tmp / f"{s}.parquet"))
            (tmp / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
            (tmp / "README.md").write_text(_card_markdown(card), encoding="utf-8")
    finally:
        if bars:
            enable_progress_bars()
    return card


def load_cot(path: str | Path):
    from datasets import load_from_disk

    p = Path(path) / "dataset"
    if not p.is_dir():
        raise UserError(f"{path}: not a chain-of-thought data folder (no dataset/; build one with `llmscisci grpo build`)")
    return load_from_disk(str(p))


# --- the whole build -------------------------------------------------------------------------------
def build_cot(
    tasks: Sequence[str],
    data_dir: str | Path,
    *,
    teacher=None,
    annotator_files: Sequence[str | Path] | None = None,
    per_item: str = "one",
    fmt: str = "conversational",
    tokenizer=None,
    quantile: float = 0.95,
    drop_over: bool = False,
    max_new_tokens: int = 384,
    progress: bool = True,
    tokenizer_label: str | None = None,
) -> tuple[list[dict], dict]:
    """Rows and card for the given tasks. `teacher`: a Backend writing the traces (None: annotator
    responses only); annotator responses are always loaded when present, as the offline source and
    the fallback for failed teacher answers. `tokenizer`: the policy's tokenizer (object or model
    name) for the length analysis, None for whitespace pieces."""
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.data.split import SPLIT_INFO

    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    if per_item not in PER_ITEM:
        raise UserError(f"unknown per-item choice {per_item!r}: use one or all")
    data_dir = Path(data_dir)
    files = ([Path(f) for f in annotator_files] if annotator_files is not None
             else sorted((data_dir / "labels").glob("annotator_*.jsonl")))
    for f in files:
        if not f.is_file():
            raise UserError(f"annotator file {f} not found")
    if teacher is None and not files:
        raise UserError(f"no annotator files (labels/annotator_*.jsonl in {data_dir} or --annotators) and no "
                        "teacher model (--source MODEL): nothing to take reasoning traces from")
    rows, per_task = [], {}
    for t in tasks:
        cb = load_codebook(t)
        items = load_items(cb, data_dir=data_dir)
        books = {b: load_codebook(b) for b in BUILTIN} | {cb.task: cb}
        sets = [load_labels(f, books, known_dois=[it.doi for it in items]) for f in files]
        ann = annotator_traces(items, sets, per_item)
        tea = teacher_traces(items, cb, teacher, max_new_tokens, progress) if teacher is not None else None
        r, info = build_rows(items, cb, ann, tea, fmt)
        rows += r
        per_task[cb.task] = {**info, "rows": len(r)}
    lengths = length_report(rows, tokenizer, quantile, tokenizer_label)
    if drop_over:
        before = len(rows)
        rows = drop_long(rows, lengths)
        lengths["dropped_over_limits"] = before - len(rows)
    lengths.pop("_lengths", None)
    card = {
        "kind": "cot",
        "tasks": list(tasks),
        "source": f"teacher:{getattr(teacher, 'name', 'teacher')}" if teacher is not None else ANNOTATORS,
        "teacher": teacher.describe() if teacher is not None and hasattr(teacher, "describe") else None,
        "annotator_files": [str(f) for f in files],
        "per_item": per_item,
        "format": fmt,
        "split": SPLIT_INFO,
        "per_task": per_task,
        "prompt_hash": prompt_hash(),
        "system_prompt": system_prompt(),
        "lengths": lengths,
    }
    return rows, card
