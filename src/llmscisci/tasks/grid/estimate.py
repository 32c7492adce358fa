"""The grid's estimate of the calls still to make: prompt tokens (the backends' offline count) and cost
from the price table (output at the max_new_tokens cap; models run in batch mode at the batch rate)."""

from __future__ import annotations

from llmscisci.backends.registry import resolve_model


class Estimator:
    """Prompt tokens of the calls still to make (the backends' offline count: tiktoken if its file is
    cached, else characters / 4) and their cost from the price table (output at the max_new_tokens cap)."""

    def __init__(self, prices: str | None, batch: set[str] = frozenset()):
        self.prices = prices
        self.batch = batch  # models run through a batch API: priced at the batch rate
        self._price: dict[str, object] = {}
        self.unpriced: set[str] = set()

    def count(self, model: str, conversations: list[list[dict]]) -> int:
        from llmscisci.backends.tokens import count_messages

        m = resolve_model(model)
        target = m.model if m.is_api else ""
        return sum(count_messages(msgs, target, use_tiktoken=m.is_api)[0] for msgs in conversations)

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        m = resolve_model(model)
        if not m.is_api:
            return 0.0
        if model not in self._price:
            from llmscisci.backends.pricing import lookup

            self._price[model] = lookup(m.provider, m.model, self.prices)
        price = self._price[model]
        if price is None:
            cost = None
        elif model in self.batch:
            cost = price.batch_cost(tokens_in, tokens_out)
        else:
            cost = price.cost(tokens_in, tokens_out)
        if cost is None:
            self.unpriced.add(model)
        return cost

    def fill(self, cell, model: str, conversations: list[list[dict]], max_new_tokens: int) -> None:
        cell.calls = len(conversations)
        cell.tokens_in = self.count(model, conversations)
        cell.tokens_out = max_new_tokens * len(conversations)
        cell.cost_usd = self.cost(model, cell.tokens_in, cell.tokens_out) if conversations else 0.0
