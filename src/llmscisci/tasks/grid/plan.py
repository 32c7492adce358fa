"""Plan a grid: every cell's hash, what the output folder already holds (finished, partial), the calls
left and, optionally, their tokens and cost; then the totals per model. Reads the inputs, writes nothing,
loads no model. Each cell is planned by its task kind (registry), kinds of later stages last."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmscisci.backends.registry import resolve_model
from llmscisci.tasks import registry
from llmscisci.tasks.grid.cells import Grid, GridContext, Inputs, index_runs
from llmscisci.tasks.grid.estimate import Estimator
from llmscisci.tasks.grid.spec import batch_models, check_models


def plan(grid: Grid, inputs: Inputs, estimate: bool = True) -> Grid:
    """Work out every cell: its hash, what the output folder already holds, the calls left and (estimate)
    their tokens and cost. Reads the inputs; writes nothing and loads no model."""
    check_models(grid.spec)
    est = Estimator(grid.spec.backend.prices, batch_models(grid.spec))
    ctx = GridContext(grid, inputs, index_runs(inputs.out), est if estimate else None)
    for cell in sorted(grid.cells, key=lambda c: registry.get(c.kind).stage):  # stable: file order within
        registry.get(cell.kind).plan(ctx, cell)
    for model in sorted(est.unpriced):
        grid.notes.append(f"{model}: no row in the price table, cost unknown (add one with [backend] prices)")
    return grid


@dataclass
class Totals:
    cells: int = 0
    done: int = 0
    partial: int = 0
    to_run: int = 0
    calls: int = 0
    api_calls: int = 0
    api_tokens_in: int = 0
    api_tokens_out: int = 0
    api_cost_usd: float | None = 0.0
    per_model: dict[str, dict] = field(default_factory=dict)


def totals(grid: Grid) -> Totals:
    t = Totals(cells=len(grid.cells))
    for c in grid.cells:
        t.done += c.status == "done"
        t.partial += c.status == "partial"
        t.to_run += c.status != "done"
        t.calls += c.calls
        name = resolve_model(c.model)
        m = t.per_model.setdefault(c.model, {"kind": name.kind, "cells": 0, "to_run": 0, "calls": 0,
                                             "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0})
        m["cells"] += 1
        m["to_run"] += c.status != "done"
        m["calls"] += c.calls
        m["tokens_in"] += c.tokens_in
        m["tokens_out"] += c.tokens_out
        if m["cost_usd"] is not None:
            m["cost_usd"] = None if c.cost_usd is None else m["cost_usd"] + c.cost_usd
        if name.is_api:
            t.api_calls += c.calls
            t.api_tokens_in += c.tokens_in
            t.api_tokens_out += c.tokens_out
            if t.api_cost_usd is not None:
                t.api_cost_usd = None if c.cost_usd is None else t.api_cost_usd + c.cost_usd
    return t
