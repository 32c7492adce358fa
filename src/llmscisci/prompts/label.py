"""Labelling prompts: templates (label.toml) + a codebook -> chat messages, and the structured schema."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, create_model

from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError

VARIANTS = ("icl", "guidelines", "structured", "score")


@lru_cache(maxsize=None)
def _label_toml() -> dict:
    return tomllib.loads(resources.files("llmscisci.prompts").joinpath("label.toml").read_text("utf-8"))


def templates() -> dict:
    return _label_toml()["variants"]


def framing(codebook: Codebook) -> tuple[str, str]:
    """(domain, persona) of a codebook's system prompt: its own, else the study's for a built-in task,
    else a neutral one naming its title."""
    f = _label_toml()["framing"]
    title = codebook.title or codebook.task
    builtin = codebook.source == "builtin"
    domain = codebook.domain or (f["builtin_domain"] if builtin else f["domain"].format(title=title))
    if codebook.persona:
        persona = codebook.persona
    elif codebook.domain or builtin:
        persona = f["persona"].format(domain=domain)
    else:
        persona = f["neutral_persona"].format(title=title)
    return domain, persona


def check_variant(variant: str) -> dict:
    tpl = templates()
    if variant not in tpl:
        raise UserError(f"unknown variant {variant!r}: use one of {', '.join(tpl)}")
    return tpl[variant]


@lru_cache(maxsize=None)
def _paraphrases() -> dict:
    text = resources.files("llmscisci.prompts").joinpath("label_paraphrases.toml").read_text("utf-8")
    return tomllib.loads(text)["variants"]


def paraphrases(variant: str) -> list[str]:
    """The variant's alternative system-prompt wordings (paraphrase k is entry k-1; 0 is the original)."""
    check_variant(variant)
    return list(_paraphrases().get(variant, {}).get("system", []))


def check_paraphrase(variant: str, paraphrase: int) -> None:
    n = len(paraphrases(variant))
    if not isinstance(paraphrase, int) or isinstance(paraphrase, bool) or not 0 <= paraphrase <= n:
        raise UserError(f"paraphrase {paraphrase!r} of variant {variant!r}: use 0 (the original wording) "
                        f"to {n}")


def rubric(codebook: Codebook) -> str:
    lines = []
    for i, c in enumerate(codebook.categories, start=1):
        desc = f": {c.description}" if c.description else ""
        lines.append(f"{i}. {c.name}{desc}")
    return "\n".join(lines)


def _fields(codebook: Codebook) -> dict:
    none_i = codebook.none_index
    domain, persona = framing(codebook)
    return {
        "domain": domain,
        "persona": persona,
        "question": codebook.question or f"Which categories of the task {codebook.task!r} apply?",
        "title": codebook.title or codebook.task,
        "rubric": rubric(codebook),
        "n": codebook.n,
        "none_number": (none_i + 1) if none_i is not None else "-",
        "none_name": codebook.categories[none_i].name if none_i is not None else "-",
        # the structured answer's fields, named without values: no answer a model could copy
        "field_names": ", ".join(codebook.shorts),
    }


def _delegated(variant: str) -> bool:
    return check_variant(variant).get("delegate") == "cot"


def system_prompt(codebook: Codebook, variant: str, paraphrase: int = 0) -> str:
    tpl = check_variant(variant)
    if paraphrase:
        check_paraphrase(variant, paraphrase)
        return paraphrases(variant)[paraphrase - 1].strip().format(**_fields(codebook))
    if _delegated(variant):
        from llmscisci.prompts import cot

        return cot.system_prompt()
    return tpl["system"].strip().format(**_fields(codebook))


def user_prompt(text: str, codebook: Codebook, variant: str) -> str:
    tpl = check_variant(variant)
    if is_scoring(variant):  # the template of every category's question (for the prompt hash)
        return tpl["user"].format(**_fields(codebook), text=text, category="{category}",
                                  description="{description}")
    if _delegated(variant):
        from llmscisci.prompts import cot

        return cot.user_prompt(text, codebook)
    return tpl["user"].format(**_fields(codebook), text=text.strip() or "(empty)")


def build_messages(
    text: str, codebook: Codebook, variant: str, shots: list[tuple[str, str]] | None = None,
    paraphrase: int = 0,
) -> list[dict]:
    """System prompt (shared by all items) + optional k-shot turns (fixed per run) + the item's text."""
    msgs = [{"role": "system", "content": system_prompt(codebook, variant, paraphrase)}]
    for shot_text, shot_answer in shots or []:
        msgs.append({"role": "user", "content": user_prompt(shot_text, codebook, variant)})
        msgs.append({"role": "assistant", "content": shot_answer})
    msgs.append({"role": "user", "content": user_prompt(text, codebook, variant)})
    return msgs


def shown_examples(codebook: Codebook, variant: str, shots: list[tuple[str, str]] | None = None) -> list[str]:
    """The complete answers a run's prompt shows: the k-shot answers and, for the chain-of-thought variant,
    the example label vector of its task prompt. A run whose answers equal one of them copies the prompt
    (the `example_copy_rate` of its diagnostics)."""
    examples = [answer for _, answer in shots or []]
    if _delegated(variant):
        from llmscisci.prompts import cot

        examples.append(cot.fields(codebook)["example"])
    return examples


def is_scoring(variant: str) -> bool:
    """A variant whose labels come from the log-odds of yes/no answers, not from generated text."""
    return bool(check_variant(variant).get("scoring", False))


def check_generating(variant: str, what: str) -> None:
    """`what` (training, preference pairs) needs an answer the model writes: not the score variant."""
    if is_scoring(variant):
        raise UserError(f"{what} needs a variant whose answer is written text (icl, guidelines, structured); "
                        f"{variant!r} labels by likelihood")


def score_categories(codebook: Codebook) -> list[int]:
    """The categories a scoring variant asks about: all but the exclusive `none`, which follows from the
    others by the label policy (no other category -> none)."""
    return [i for i in range(codebook.n) if i != codebook.none_index]


def content_free(variant: str) -> str:
    """The content-free passage of contextual calibration (Zhao et al. 2021)."""
    return str(check_variant(variant).get("content_free", "N/A"))


def score_messages(text: str, codebook: Codebook, variant: str, category: int,
                   paraphrase: int = 0) -> list[dict]:
    """The yes/no question about one category of one passage (system prompt + one user turn)."""
    tpl = check_variant(variant)
    c = codebook.categories[category]
    user = tpl["user"].format(**_fields(codebook), text=text.strip() or "(empty)", category=c.name,
                              description=c.description or c.name)
    return [{"role": "system", "content": system_prompt(codebook, variant, paraphrase)},
            {"role": "user", "content": user}]


def item_score_messages(text: str, codebook: Codebook, variant: str, paraphrase: int = 0) -> list[list[dict]]:
    """One conversation per scored category of a passage, in `score_categories` order."""
    return [score_messages(text, codebook, variant, k, paraphrase) for k in score_categories(codebook)]


def is_structured(variant: str) -> bool:
    return bool(check_variant(variant).get("structured", False))


@lru_cache(maxsize=None)
def _schema_for(task: str, shorts: tuple[str, ...]) -> type[BaseModel]:
    fields = {s: (bool, ...) for s in shorts}
    name = "".join(p.capitalize() for p in task.replace("-", "_").split("_") if p) + "Labels"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def label_schema(codebook: Codebook) -> type[BaseModel]:
    """The structured variant's output: one boolean per category, in rubric order."""
    return _schema_for(codebook.task, tuple(codebook.shorts))


def prompt_hash(codebook: Codebook, variant: str, shots=None, paraphrase: int = 0) -> str:
    from llmscisci.runs import stable_hash

    return stable_hash({"system": system_prompt(codebook, variant, paraphrase),
                        "user": user_prompt("{text}", codebook, variant), "shots": shots or []})
