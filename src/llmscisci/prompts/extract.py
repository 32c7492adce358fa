"""Extraction prompts: templates (extract.toml) -> chat messages for one unit of a page."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from llmscisci.errors import UserError

VARIANTS = ("icl", "guidelines", "structured")


@lru_cache(maxsize=None)
def templates() -> dict:
    text = resources.files("llmscisci.prompts").joinpath("extract.toml").read_text("utf-8")
    return tomllib.loads(text)


def check_variant(variant: str) -> dict:
    tpl = templates()["variants"]
    if variant not in tpl:
        raise UserError(f"unknown variant {variant!r}: use one of {', '.join(tpl)}")
    return tpl[variant]


def is_structured(variant: str) -> bool:
    return bool(check_variant(variant).get("structured", False))


def _fields() -> dict:
    t = templates()
    return {
        "fields": "\n".join(f"- {k}: {v}" for k, v in t["fields"].items()),
        "example_input": t["example"]["input"].strip(),
        "example_output": t["example"]["output"].strip(),
    }


def system_prompt(variant: str) -> str:
    return check_variant(variant)["system"].strip().format(**_fields())


def user_prompt(text: str, variant: str) -> str:
    return check_variant(variant)["user"].format(text=text.strip() or "(empty)")


def build_messages(text: str, variant: str) -> list[dict]:
    """System prompt (shared by all units of a run) + the unit's markup."""
    return [{"role": "system", "content": system_prompt(variant)},
            {"role": "user", "content": user_prompt(text, variant)}]


def prompt_hash(variant: str) -> str:
    from llmscisci.runs import stable_hash

    return stable_hash({"system": system_prompt(variant), "user": check_variant(variant)["user"]})
