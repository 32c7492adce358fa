"""The plan of a labelling run (`--dry-run`, `ls.label(dry_run=True)`) and of any list of conversations:
calls, the first prompt in full, tokens in, output cap, cost or ETA; nothing is sent or written."""

from __future__ import annotations

from collections.abc import Iterable


def plan_conversations(model: str, conversations: Iterable[list[dict] | None], params, opts, schema=None,
                       what: str = "items"):
    """The Plan of sending `conversations` (None: an item that needs no call) to `model`. API models are
    counted with tiktoken (or chars/4) and priced from the price table without building a client; a
    local model is loaded, counted with its own tokenizer and timed on three conversations."""
    from llmscisci.backends.pricing import lookup
    from llmscisci.backends.registry import resolve_model
    from llmscisci.tasks.plan import Plan, api_counter, backend_counter, format_plan, make_plan, probe_eta

    m = resolve_model(model)
    if m.is_baseline:  # `--model baseline:DIR`: a saved classifier labels instead of an LLM
        plan = Plan(n_items=sum(1 for _ in conversations), token_method="classifier")
        plan.notes.append(f"{model} needs no language model: no prompts, no tokens, no cost")
        plan.text = format_plan(plan, what)
        return plan
    if m.is_api:
        plan = make_plan(conversations, params, api_counter(m.model), lookup(m.provider, m.model, opts.prices_path))
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



def _messages(items, codebook, variant, paraphrase):
    from llmscisci.prompts.label import build_messages, is_scoring, item_score_messages

    for it in items:
        if not it.text.strip():
            yield None
        elif is_scoring(variant):  # one yes/no question per category: one call each
            yield from item_score_messages(it.text, codebook, variant, paraphrase)
        else:
            yield build_messages(it.text, codebook, variant, [], paraphrase)


def dry_run_items(codebook, items, *, model, variant, params, opts, shots=0, paraphrase=0):
    """The plan for labelling `items` (an iterable), its text in `plan.text`; nothing is sent or written."""
    from llmscisci.prompts.label import is_scoring, is_structured, label_schema, score_categories

    schema = label_schema(codebook) if is_structured(variant) else None
    if not is_scoring(variant):
        return plan_conversations(model, _messages(items, codebook, variant, paraphrase), params, opts, schema)
    from dataclasses import replace

    k = len(score_categories(codebook))
    plan = plan_conversations(model, _messages(items, codebook, variant, paraphrase), replace(params, max_new_tokens=1),
                              opts, None, what=f"yes/no questions ({k} per item, one forward pass or call each)")
    plan.notes.append(f"plus {k} questions on the content-free passage (calibration), once per run; "
                      "--calibrate adds the calibration source's items")
    from llmscisci.tasks.plan import format_plan

    plan.text = format_plan(plan, f"yes/no questions ({k} per item)")
    return plan
