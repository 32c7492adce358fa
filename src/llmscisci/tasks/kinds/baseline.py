"""The classical baseline task kind: one codebook x `baseline:METHOD` x seed (grouped k-fold
cross-validation; no model backend, no prompt variants)."""

from __future__ import annotations

from llmscisci.backends.registry import BASELINE_PREFIX, resolve_model
from llmscisci.tasks.base import TaskKind
from llmscisci.tasks.grid.cells import Cell
from llmscisci.tasks.kinds.label import Label


def baseline_spec(ctx, cell: Cell):
    from llmscisci.tasks.baseline import BaselineSpec

    return BaselineSpec(cell.codebook, resolve_model(cell.model).model, ctx.spec.baseline.folds, cell.seed,
                        str(ctx.inputs.data_dir))


class Baseline(TaskKind):
    name = "baseline"
    needs_model = False
    label_like = True
    results_with = "label"
    report_note = ("Classical baselines (baseline:…): on all items, out-of-fold predictions of grouped "
                   "cross-validation over DOIs; on the test split, the fit on the canonical train split.")

    def accepts(self, model: str) -> bool:
        return resolve_model(model).is_baseline

    def codebook_cells(self, exp, codebook, model):
        return [Cell(self.name, codebook.task, model.name, "-", s, codebook=codebook) for s in exp.spec.seeds]

    def plan(self, ctx, cell):
        items = [it for it in ctx.inputs.items_of(cell.codebook) if it.labels is not None]
        cell.n_items = len(items)
        h = baseline_spec(ctx, cell).hash(items)
        run_dir = ctx.index.get(h)
        if run_dir is not None:
            cell.hash = h
        ctx.state(cell, run_dir, cell.n_items if run_dir and (run_dir / "metrics.json").is_file() else 0)
        cell.calls, cell.tokens_in, cell.tokens_out, cell.cost_usd = 0, 0, 0, 0.0

    def run(self, ctx, cell, backend, show_progress=True):
        from llmscisci.paths import cache_dir
        from llmscisci.tasks.baseline import run_baseline

        s = baseline_spec(ctx, cell)
        return run_baseline(s.codebook, ctx.inputs.items_of(cell.codebook), s.method, ctx.out, k=s.folds,
                            seed=s.seed, data_source=s.data_source, cache_dir=cache_dir())

    def headline(self, metrics):
        return Label().headline(metrics)

    def model_of(self, config):
        model = super().model_of(config)  # its config names the method; older ones the model too
        return model if resolve_model(model).is_baseline else f"{BASELINE_PREFIX}{config.get('method', '?')}"

    def reevaluate(self, run_dir, reparse=False, skip_bad=False):
        return Label().reevaluate(run_dir, reparse=reparse, skip_bad=skip_bad)
