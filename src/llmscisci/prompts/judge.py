"""Judge prompts: templates (judge.toml) + a codebook + candidates -> chat messages, and the schema."""

from __future__ import annotations

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


def _fields(codebook: Codebook, k: int) -> dict:
    return {
        "question": codebook.question or f"The task: which categories of {codebook.task!r} apply to the passage?",
        "title": codebook.title or codebook.task,
        "rubric": rubric(codebook),
        "none_rule": none_rule(codebook),
        "n": codebook.n,
        "k": k,
        "shorts": ", ".join(codebook.shorts),
        # the structured answer's score fields, named without values: no answer a model could copy
        "score_fields": ", ".join(f"llm_{i}" for i in range(1, k + 1)),
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
