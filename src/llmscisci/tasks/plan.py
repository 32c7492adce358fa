"""A plan before a long run (`--dry-run` of label, extract and judge): what would be sent, and its cost.

`make_plan` takes the conversations one at a time (an iterator: a corpus of any size), counts them and
their prompt tokens (tiktoken for API models, the model's tokenizer for a local one), keeps the first
conversation in full, and prices the run from the price table (output at the cap: an upper bound). For a
local model, `probe_eta` times three items and extrapolates. Nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from llmscisci.backends.base import Backend, GenParams


@dataclass
class Plan:
    n_items: int = 0
    tokens_in: int = 0
    token_method: str = ""
    max_new_tokens: int = 0
    first_messages: list[dict] = field(default_factory=list)
    price_row: str | None = None
    cost_usd_max: float | None = None
    batch_cost_usd_max: float | None = None  # the same calls through the provider's batch API (--batch)
    eta_seconds: float | None = None
    probe_seconds_per_item: float | None = None
    skipped_empty: int = 0
    notes: list[str] = field(default_factory=list)
    text: str = ""  # the plan as a person reads it (format_plan)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "text"}


def make_plan(conversations: Iterable[list[dict] | None], params: GenParams,
              count: Callable[[list[dict]], tuple[int, str]], price=None) -> Plan:
    """`conversations` yields each item's messages (None: an empty text, no call); `count` -> (tokens, method)."""
    plan = Plan(max_new_tokens=params.max_new_tokens)
    for msgs in conversations:
        plan.n_items += 1
        if msgs is None:
            plan.skipped_empty += 1
            continue
        if not plan.first_messages:
            plan.first_messages = msgs
        n, method = count(msgs)
        plan.tokens_in += n
        plan.token_method = method
    calls = plan.n_items - plan.skipped_empty
    if price is not None:
        plan.price_row = price.model
        plan.cost_usd_max = price.cost(plan.tokens_in, calls * params.max_new_tokens)
        plan.batch_cost_usd_max = price.batch_cost(plan.tokens_in, calls * params.max_new_tokens)
    return plan


def api_counter(model: str) -> Callable[[list[dict]], tuple[int, str]]:
    from llmscisci.backends.tokens import count_messages

    return lambda msgs: count_messages(msgs, model)


def backend_counter(backend: Backend) -> Callable[[list[dict]], tuple[int, str]]:
    return lambda msgs: (backend.count_tokens(msgs), "model tokenizer")


def probe_eta(plan: Plan, backend: Backend, params: GenParams, conversations: list[list[dict]], schema=None) -> None:
    """Time three items on a local model, after one untimed warm-up item (first-call costs: compiled
    kernels, the shared prompt prefix); the ETA of all calls at that pace."""
    probe = conversations[:3]
    if not probe:
        return
    backend.generate(probe[:1], params, schema=schema)  # warm-up, not timed
    t0 = time.perf_counter()
    for conv in probe:  # one at a time: a run's batches are usually faster, so this errs long
        backend.generate([conv], params, schema=schema)
    per = (time.perf_counter() - t0) / len(probe)
    plan.probe_seconds_per_item = round(per, 3)
    plan.eta_seconds = round(per * (plan.n_items - plan.skipped_empty), 1)
    plan.notes.append(f"ETA from a {len(probe)}-item timing probe after one warm-up item, one item at a time "
                      "(a run batches items: usually faster)")


def format_plan(plan: Plan, what: str = "items") -> str:
    lines = ["dry run: nothing was sent or written", f"{what}: {plan.n_items:,}"]
    if plan.token_method == "classifier":
        return "\n".join(lines + [f"note: {n}" for n in plan.notes])
    if plan.skipped_empty:
        lines.append(f"  empty texts (labelled none, no call): {plan.skipped_empty:,}")
    lines.append(f"tokens in: {plan.tokens_in:,} ({plan.token_method or 'n/a'})")
    lines.append(f"output cap: {plan.max_new_tokens} tokens per call "
                 f"(at most {plan.max_new_tokens * (plan.n_items - plan.skipped_empty):,})")
    if plan.cost_usd_max is not None:
        lines.append(f"estimated cost: at most ${plan.cost_usd_max:,.4f} (price row {plan.price_row!r}, "
                     "output at the cap)")
        if plan.batch_cost_usd_max is not None:
            lines.append(f"  with --batch: at most ${plan.batch_cost_usd_max:,.4f} (provider batch price, "
                         "answers within 24 h)")
    elif plan.price_row is None and plan.eta_seconds is None:
        lines.append("estimated cost: unknown (model not in the price table; add it with --prices)")
    if plan.eta_seconds is not None:
        lines.append(f"estimated time: {_hms(plan.eta_seconds)} ({plan.probe_seconds_per_item} s per item)")
    lines += [f"note: {n}" for n in plan.notes]
    if plan.first_messages:
        lines.append("first item's messages:")
        for m in plan.first_messages:
            lines.append(f"--- {m.get('role')} ---")
            lines.append(str(m.get("content")))
    return "\n".join(lines)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
