"""The bibliographic extraction task kind: the data folder's journal page x model x variant x seed."""

from __future__ import annotations

from llmscisci.backends.base import GenParams
from llmscisci.prompts import extract as extract_prompts
from llmscisci.runs import RunFolder
from llmscisci.tasks.base import TaskKind
from llmscisci.tasks.grid.cells import Cell


def extract_spec(ctx, cell: Cell):
    from llmscisci.tasks.extract.run import ExtractSpec, default_max_new_tokens

    spec = ctx.spec
    e = spec.extract
    mnt = cell.max_new_tokens or e.max_new_tokens or default_max_new_tokens(e.unit, e.window)
    return ExtractSpec(variant=cell.variant, model=cell.model, unit=e.unit, window=e.window,
                       limit=e.limit or spec.limit,
                       params=GenParams(max_new_tokens=mnt, temperature=spec.temperature, seed=cell.seed))


class Extract(TaskKind):
    name = "extract"
    prompts = extract_prompts
    grid_task = True
    results_title = "extraction"
    headline_columns = [("record F1", "record.f1"), ("field acc.", "mean_field_accuracy"), ("valid", "valid_rate")]
    task_column = "unit"

    def task_of(self, cell, spec):
        return spec.extract.unit

    def grid_cells(self, exp):
        return [Cell(self.name, self.name, m.name, v, s, max_new_tokens=m.max_new_tokens)
                for m in exp.llms for v in exp.variants(self.name) for s in exp.spec.seeds]

    def plan(self, ctx, cell):
        from llmscisci.prompts import extract as prompts
        from llmscisci.tasks.extract.run import plan_units

        spec = extract_spec(ctx, cell)
        page, _truth = ctx.inputs.page_and_truth(ctx.spec)
        units, _n_blocks = plan_units(spec, page, None)
        cell.n_items = len(units)
        run_dir = None
        if spec.unit != "page":  # page units depend on the model's context window: known only once loaded
            cell.hash = spec.hash(page, units)
            run_dir = ctx.index.get(cell.hash)
        done = {u for (u, _t) in RunFolder(run_dir).done_keys()} if run_dir else set()
        ctx.state(cell, run_dir, len(done & {u.id for u in units}))
        pending = [u for u in units if u.id not in done] if cell.status != "done" else []
        cell.calls = len(pending)
        ctx.estimate(cell, [prompts.build_messages(u.text, spec.variant) for u in pending] if ctx.est else [],
                     spec.params.max_new_tokens)

    def run(self, ctx, cell, backend, show_progress=True):
        from llmscisci.tasks.extract.run import run_extract

        page, truth = ctx.inputs.page_and_truth(ctx.spec)
        return run_extract(extract_spec(ctx, cell), page, truth, backend, ctx.out, run_dir=ctx.run_dir(cell),
                           show_progress=show_progress)

    def finish(self, ctx, cell):
        from llmscisci.tasks.extract.run import finish_run

        run = RunFolder(ctx.out / cell.dir)
        finish_run(run, ctx.inputs.page_and_truth(ctx.spec)[1])
        return run

    def resume(self, run_dir, backend, *, show_progress=True, page=None, bib=None, truth=None, blocks=None):
        """Continue an extraction run over its page (config.json's `source`, or `page`: the page read, or
        where it is now) against its answer key (`truth` as loaded, else read from `bib`, else from
        config.json's); `blocks`: the page's blocks when already split; `backend` None for the baseline."""
        from pathlib import Path

        from llmscisci.tasks.extract.run import ExtractSpec, run_extract
        from llmscisci.tasks.extract.source import read_page
        from llmscisci.tasks.extract.truth import load_truth

        cfg = self.resumed_config(run_dir)
        spec, path = ExtractSpec.from_config(cfg), Path(run_dir)
        src = read_page(str(page or cfg["source"])) if page is None or isinstance(page, (str, Path)) else page
        check_same_page(cfg, src, path)
        truth = truth if truth is not None else load_truth(bib or cfg["bib"])
        return run_extract(spec, src, truth, backend, path.parent, run_dir=path, show_progress=show_progress,
                           blocks=blocks)

    def headline(self, metrics):
        h = (metrics.get("headline") or {}).get("model") or {}
        return {k: h.get(k) for k in ("record.f1", "mean_field_accuracy", "valid_rate")}

    def reevaluate(self, run_dir, reparse=False, skip_bad=False):
        from llmscisci.tasks.extract.run import reevaluate
        from llmscisci.tasks.registry import check_predictions

        check_predictions(run_dir, skip_bad)
        return reevaluate(run_dir, reparse=reparse)


def check_same_page(cfg: dict, src, run_dir) -> None:
    """A resumed extraction goes on over the page it started on: another page, or the same one whose
    content changed, would be another run."""
    from llmscisci.errors import UserError

    if src.sha256 != cfg.get("source_sha256"):
        raise UserError(f"--resume {run_dir}: the page {src.origin} is not the one the run extracted from "
                        f"({cfg.get('source')}; its content differs); extract it into a new run folder")
