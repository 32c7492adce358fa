"""Judge prompts: templates (judge.toml) + a codebook + candidates -> chat messages, and the schema."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, create_model

from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError

VARIANTS = ("icl", "guidelines", "structured")


@dataclass(frozen=True)
class Shown:
    """What the judge sees of one candidate: its label vector (None: no valid one) and its answer."""

    labels: tuple[int, ...] | None
    answer: str | None = None


@cache
def _toml() -> dict:
    text = resources.files("llmscisci.prompts").joinpath("judge.toml").read_text("utf-8")
    return tomllib.loads(text)


def templates() -> dict:
    return _toml()["variants"]


def render_settings() -> dict:
    return _toml().get("render", {})


def check_variant(variant: str) -> dict:
    tpl = templates()
    if variant not in tpl:
        raise UserError(f"unknown judge variant {variant!r}: use one of {', '.join(tpl)}")
    return tpl[variant]


def is_structured(variant: str) -> bool:
    return bool(check_variant(variant).get("structured", False))


def rubric(codebook: Codebook) -> str:
    return "\n".join(
        f"- {c.short} ({c.name})" + (f": {c.description}" if c.description else "") for c in codebook.categories
    )


def none_rule(codebook: Codebook) -> str:
    i = codebook.none_index
    if i is None:
        return "Several categories may apply at once."
    c = codebook.categories[i]
    return (f"Several categories may apply at once, except '{c.short}' ({c.name}), which is exclusive: it applies "
            "only when no other category does, and never together with another category.")


def names(labels: Sequence[int] | None, codebook: Codebook) -> str:
    """A label vector as the category short names, for the prompt."""
    if labels is None:
        return "(none given)"
    chosen = codebook.names_of(labels)
    return ", ".join(chosen) if chosen else "(no category)"


def _example(codebook: Codebook, k: int) -> tuple[str, str]:
    n = codebook.n
    scores = [n - (i % 2) for i in range(k)]
    final = [s for s in codebook.shorts[:2] if s != codebook.none] or codebook.shorts[:1]
    lines = "\n".join(f"LLM {i + 1}: {s}" for i, s in enumerate(scores)) + "\nFinal: " + ", ".join(final)
    obj = {f"llm_{i + 1}": s for i, s in enumerate(scores)}
    obj["final"] = {s: s in final for s in codebook.shorts}
    return lines, json.dumps(obj)


def _fields(codebook: Codebook, k: int) -> dict:
    lines, obj = _example(codebook, k)
    return {
        "question": codebook.question or f"The task: which categories of {codebook.task!r} apply to the passage?",
        "title": codebook.title or codebook.task,
        "rubric": rubric(codebook),
        "none_rule": none_rule(codebook),
        "n": codebook.n,
        "k": k,
        "shorts": ", ".join(codebook.shorts),
        "example_lines": lines,
        "example_json": obj,
    }


def render_outputs(candidates: Sequence[Shown], codebook: Codebook) -> str:
    cfg = render_settings()
    show, limit = bool(cfg.get("show_answer", True)), int(cfg.get("answer_chars", 400))
    blocks = []
    for pos, cand in enumerate(candidates, start=1):
        lines = [f"LLM {pos}", f"Classification: {names(cand.labels, codebook)}"]
        if cand.labels is None:
            lines.append(str(cfg.get("no_answer", "(no valid classification)")))
        if show and cand.answer and cand.answer.strip():
            answer = " ".join(cand.answer.split())
            if len(answer) > limit:
                answer = answer[:limit].rstrip() + " ..."
            lines.append(f"Answer: {answer}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def system_prompt(codebook: Codebook, variant: str, k: int) -> str:
    return check_variant(variant)["system"].strip().format(**_fields(codebook, k))


def user_prompt(text: str, truth: Sequence[int], candidates: Sequence[Shown], codebook: Codebook,
                variant: str) -> str:
    tpl = check_variant(variant)
    return tpl["user"].format(
        **_fields(codebook, len(candidates)),
        text=text.strip() or "(empty)",
        truth=names(truth, codebook),
        outputs=render_outputs(candidates, codebook),
    )


def build_messages(text: str, truth: Sequence[int], candidates: Sequence[Shown], codebook: Codebook,
                   variant: str) -> list[dict]:
    """System prompt (the same for every call of a run) + the user turn with passage, truth and outputs."""
    return [
        {"role": "system", "content": system_prompt(codebook, variant, len(candidates))},
        {"role": "user", "content": user_prompt(text, truth, candidates, codebook, variant)},
    ]


@cache
def _schema_for(task: str, shorts: tuple[str, ...], k: int) -> type[BaseModel]:
    n = len(shorts)
    score = Literal[tuple(range(n + 1))]  # type: ignore[valid-type]
    final = create_model("FinalLabels", __config__=ConfigDict(extra="forbid"), **{s: (bool, ...) for s in shorts})
    fields = {f"llm_{i}": (score, ...) for i in range(1, k + 1)}
    name = "".join(p.capitalize() for p in task.replace("-", "_").split("_") if p) + "Verdict"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields, final=(final, ...))


def judge_schema(codebook: Codebook, k: int) -> type[BaseModel]:
    """The structured variant's output: llm_1..llm_k integer scores 0..n, and `final` with one boolean
    per category (rubric order)."""
    return _schema_for(codebook.task, tuple(codebook.shorts), k)


def prompt_hash(codebook: Codebook, variant: str, k: int) -> str:
    from llmscisci.runs import stable_hash

    return stable_hash({"system": system_prompt(codebook, variant, k), "user": check_variant(variant)["user"],
                        "render": render_settings()})
