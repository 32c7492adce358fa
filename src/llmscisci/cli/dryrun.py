"""`--dry-run` of label, extract and judge: the plan of a run (calls, the first prompt in full, tokens in,
output cap, cost or ETA), computed without sending anything or writing a file."""

from __future__ import annotations

import sys
from collections.abc import Iterable

BASELINE_PREFIX = "baseline:"


def plan_conversations(model: str, conversations: Iterable[list[dict] | None], params, opts, schema=None,
                       what: str = "items"):
    """The Plan of sending `conversations` (None: an item that needs no call) to `model`. API models are
    counted with tiktoken (or chars/4) and priced from the price table without building a client; a
    local model is loaded, counted with its own tokenizer and timed on three conversations."""
    from llmscisci.backends.aliases import api_alias
    from llmscisci.backends.pricing import lookup
    from llmscisci.backends.registry import split_provider
    from llmscisci.tasks.plan import Plan, api_counter, backend_counter, format_plan, make_plan, probe_eta

    if model.startswith(BASELINE_PREFIX) or model == "baseline":
        plan = Plan(n_items=sum(1 for _ in conversations), token_method="classifier")
        plan.notes.append(f"{model} needs no language model: no prompts, no tokens, no cost")
        plan.text = format_plan(plan, what)
        return plan
    provider, name = split_provider(model)
    if provider is None and api_alias(model):
        provider, name = api_alias(model)
    if provider is not None:
        plan = make_plan(conversations, params, api_counter(name), lookup(provider, name, opts.prices_path))
    else:
        from llmscisci.backends.registry import load_backend

        backend = load_backend(model, opts)
        first: list[list[dict]] = []

        def keep(convs):
            for c in convs:
                if c is not None and len(first) < 3:
                    first.append(c)
                yield c

        plan = make_plan(keep(conversations), params, backend_counter(backend))
        probe_eta(plan, backend, params, first, schema)
    plan.text = format_plan(plan, what)
    return plan


def emit_text(result, texts: list, as_json: bool = False, json_out=None) -> None:
    """`emit` for plain text that must reach the reader unchanged (a prompt: never wrapped or cropped):
    on stdout, or on stderr under --json; rich tables through the usual consoles."""
    from llmscisci.cli.common import console, emit, out

    stream = sys.stderr if as_json else sys.stdout
    for t in texts:
        if isinstance(t, str):
            stream.write(t.rstrip("\n") + "\n")
            stream.flush()
        else:
            (console if as_json else out).print(t)
    emit(result, None, as_json, json_out)
