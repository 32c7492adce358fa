"""The chain-of-thought prompt (prompts/grpo.toml): the system prompt asking for
``<think>...</think><label>[...]</label>``, the task prompt with the item's text inside ``<text>`` tags,
the teacher's prompt, and the completion format. Used by the `cot` label variant and by the GRPO data
builder (llmscisci.train.cot).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

from llmscisci.data.codebook import Codebook
from llmscisci.runs import stable_hash

__all__ = ["clean_trace", "completion_text", "fields", "prompt_hash", "prompt_messages", "system_prompt",
           "teacher_messages", "templates", "user_prompt", "vector_text"]

_TAGS = re.compile(r"</?\s*(think|label|text)\s*>", re.IGNORECASE)


@lru_cache(maxsize=None)
def templates() -> dict:
    return tomllib.loads(resources.files("llmscisci.prompts").joinpath("grpo.toml").read_text("utf-8"))


def vector_text(labels: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in labels) + "]"


def fields(codebook: Codebook) -> dict:
    none_i = codebook.none_index
    # the format example obeys the prompt's own rule: it never marks the exclusive `none` category
    others = [i for i in range(codebook.n) if i != none_i] or [0]
    example = [0] * codebook.n
    example[others[0]] = 1
    if codebook.n >= 4 and len(others) >= 3:
        example[others[2]] = 1
    return {
        "question": codebook.question or f"Which categories of the task {codebook.task!r} apply?",
        "title": codebook.title or codebook.task,
        "rubric": "\n".join(f"{i}. {c.name}" + (f": {c.description}" if c.description else "")
                            for i, c in enumerate(codebook.categories, start=1)),
        "n": codebook.n,
        "order": "[" + ", ".join(codebook.shorts) + "]",
        "none_number": (none_i + 1) if none_i is not None else "-",
        "none_name": codebook.categories[none_i].name if none_i is not None else "-",
        "example": vector_text(example),
    }


def system_prompt() -> str:
    return templates()["system"].strip()


def user_prompt(text: str, codebook: Codebook) -> str:
    return templates()["user"].format(**fields(codebook), text=text.strip() or "(empty)")


def prompt_messages(text: str, codebook: Codebook) -> list[dict]:
    return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": user_prompt(text, codebook)}]


def teacher_messages(text: str, labels: Sequence[int], codebook: Codebook) -> list[dict]:
    answer = "; ".join(c.name for c, v in zip(codebook.categories, labels) if v) or "(none)"
    user = templates()["teacher_user"].format(**fields(codebook), text=text.strip() or "(empty)", answer=answer)
    return [{"role": "system", "content": templates()["teacher_system"].strip()}, {"role": "user", "content": user}]


def clean_trace(text: str) -> str:
    """A trace without the tags that delimit the answer (a trace holding them would break the format)."""
    return _TAGS.sub("", text or "").strip()


def completion_text(trace: str, labels: Sequence[int]) -> str:
    return f"<think>\n{clean_trace(trace)}\n</think>\n<label>\n{vector_text(labels)}\n</label>"


def prompt_hash() -> str:
    t = templates()
    return stable_hash({k: t[k] for k in ("system", "user", "teacher_system", "teacher_user")})
