"""Price table (prices.toml, user-overridable) -> cost of a call; also each model's context window."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.paths import read_toml


@dataclass(frozen=True)
class ModelPrice:
    model: str  # the table row that matched
    input: float | None  # USD per million prompt tokens
    output: float | None  # USD per million completion tokens
    context: int | None
    batch_input: float | None = None  # USD per million tokens through the provider's batch API
    batch_output: float | None = None

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        if self.input is None or self.output is None:
            return None
        return round((tokens_in * self.input + tokens_out * self.output) / 1e6, 8)

    def batch_cost(self, tokens_in: int, tokens_out: int) -> float | None:
        if self.batch_input is None or self.batch_output is None:
            return None
        return round((tokens_in * self.batch_input + tokens_out * self.batch_output) / 1e6, 8)


@lru_cache(maxsize=1)
def _packaged() -> dict:
    text = resources.files("llmscisci.backends").joinpath("prices.toml").read_text("utf-8")
    return tomllib.loads(text)


def load_table(override: str | Path | None = None) -> dict[str, dict[str, dict]]:
    """{provider: {model: {input, output, context}}}: the packaged table with the user's rows on top."""
    table = {p: dict(rows) for p, rows in _packaged().items() if isinstance(rows, dict) and p != "batch_discount"}
    if override:
        path = Path(override).expanduser()
        user = read_toml(path, "price table")
        for provider, rows in user.items():
            if not isinstance(rows, dict):
                continue
            for model, row in rows.items():
                if not isinstance(row, dict):
                    raise UserError(f"{path}: [{provider}.{model!r}] must be a table with input/output/context")
                for k in ("input", "output", "context", "batch_input", "batch_output"):
                    if k in row and not isinstance(row[k], (int, float)):
                        raise UserError(f"{path}: [{provider}.{model!r}] {k} must be a number")
                table.setdefault(provider, {})[model] = {**table.get(provider, {}).get(model, {}), **row}
    return table


def match_model(rows: dict[str, dict], model: str) -> str | None:
    """Exact row, else the longest row name that is a prefix of `model` followed by '-'."""
    if model in rows:
        return model
    best = None
    for name in rows:
        if model.startswith(name + "-") and (best is None or len(name) > len(best)):
            best = name
    return best


def lookup(provider: str, model: str, override: str | Path | None = None) -> ModelPrice | None:
    rows = load_table(override).get(provider, {})
    name = match_model(rows, model)
    if name is None:
        return None
    row = rows[name]
    ctx = row.get("context")
    inp, outp = row.get("input"), row.get("output")
    discount = batch_discount(provider)
    b_in = row.get("batch_input", inp * discount if inp is not None else None)
    b_out = row.get("batch_output", outp * discount if outp is not None else None)
    return ModelPrice(name, inp, outp, int(ctx) if ctx else None, b_in, b_out)


def batch_discount(provider: str) -> float:
    """Batch price / live price for a provider without explicit batch_input/batch_output rows."""
    table = _packaged().get("batch_discount", {})
    value = table.get(provider, 0.5) if isinstance(table, dict) else 0.5
    return float(value)
