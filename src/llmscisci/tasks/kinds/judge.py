"""The judge task kind: one codebook x judge model x variant x seed; the candidates are label files (by
default the data folder's three annotator files) or the grid's own label cells (`grid:MODEL/VARIANT`),
which then run first (stage 1)."""

from __future__ import annotations

from llmscisci.backends.base import GenParams
from llmscisci.prompts import judge as judge_prompts
from llmscisci.data.codebook import Codebook, load_codebook
from llmscisci.errors import UserError
from llmscisci.runs import RunFolder
from llmscisci.tasks.base import TaskKind
from llmscisci.tasks.grid.cells import Cell, GridContext, books
from llmscisci.tasks.grid.spec import GRID_REF, GridSpec


def judge_limit(spec: GridSpec) -> int | None:
    return spec.judge.limit or spec.limit


def judge_spec(ctx: GridContext, cell: Cell, n_candidates: int):
    from llmscisci.tasks.judge import JudgeSpec, default_max_new_tokens

    spec = ctx.spec
    mnt = (cell.max_new_tokens or spec.judge.max_new_tokens
           or default_max_new_tokens(cell.variant, n_candidates, cell.codebook.n))
    return JudgeSpec(codebook=cell.codebook, variant=cell.variant, model=cell.model,
                     params=GenParams(max_new_tokens=mnt, temperature=spec.temperature, seed=cell.seed),
                     orders=spec.judge.orders, limit=judge_limit(spec), split=spec.split,
                     data_source=str(ctx.inputs.data_dir))


def judge_candidates(ctx: GridContext, cell: Cell) -> list:
    """The judge cell's candidates: label files, and its grid label cells' run folders (finished)."""
    from llmscisci.tasks.judge import candidates_from_sets

    inputs, grid = ctx.inputs, ctx.grid
    all_books = books(grid.spec)
    sets, deps = [], iter(cell.deps)
    for ref in cell.refs:
        if ref.startswith(GRID_REF):
            dep = grid.cell(next(deps))
            if dep.status != "done" or not dep.dir:
                raise UserError(f"judge candidate {ref}: its label cell has not finished")
            sets.append(inputs.label_set(inputs.out / dep.dir, all_books, name=ref[len(GRID_REF):]))
        else:
            p = ctx.find(ref)
            if not p.exists():
                raise UserError(f"judge candidate {ref}: no such label file or run folder (relative paths "
                                f"are looked up in the data folder {inputs.data_dir}, then in the current "
                                "folder)")
            sets.append(inputs.label_set(p, all_books))
    return candidates_from_sets(sets, cell.task)


def _grid_ref(ref: str, cb: Codebook, seed: int, cells: list[Cell], spec: GridSpec) -> Cell:
    """The label cell `grid:MODEL/VARIANT` names, for codebook `cb` (original wording; the judge cell's seed
    if the grid has it, else the grid's first seed)."""
    body = ref[len(GRID_REF):]
    model, sep, variant = body.rpartition("/")
    if not sep or not model or not variant:
        raise UserError(f"judge candidate {ref!r}: write grid:MODEL/VARIANT")
    for s in (seed, spec.seeds[0]):
        for c in cells:  # only a label cell has paraphrase 0
            if (c.task, c.model, c.variant, c.paraphrase, c.seed) == (cb.task, model, variant, 0, s):
                return c
    raise UserError(f"judge candidate {ref!r}: this grid has no label cell {model} / {variant} for task "
                    f"{cb.task!r} (add the task to `tasks`, the model to `models` and the variant to "
                    "`variants`)")


class Judge(TaskKind):
    name = "judge"
    prompts = judge_prompts
    grid_task = True
    stage = 1  # after the label cells it may read
    results_title = "judge"
    headline_columns = [("valid answers", "valid_rate"), ("score = exact", "exact_agreement")]
    items_column = "calls"

    def codebooks(self, spec):
        return [load_codebook(t) for t in spec.judge.tasks]

    def grid_cells(self, exp):
        spec, cells = exp.spec, []
        for cb in self.codebooks(spec):
            for m in exp.llms:
                for v in exp.variants(self.name):
                    for s in spec.seeds:
                        c = Cell(self.name, cb.task, m.name, v, s, codebook=cb, max_new_tokens=m.max_new_tokens,
                                 refs=list(spec.judge.candidates))
                        c.deps = [_grid_ref(ref, cb, s, exp.cells, spec).id
                                  for ref in spec.judge.candidates if ref.startswith(GRID_REF)]
                        cells.append(c)
        return cells

    def plan(self, ctx, cell):
        from llmscisci.prompts import judge as prompts
        from llmscisci.tasks.judge import call_key, make_orders, predictions, prepare
        from llmscisci.tasks.texts import find_run

        grid = ctx.grid
        items = ctx.inputs.items_of(cell.codebook)
        k = len(cell.refs)
        if not all(grid.cell(d).status == "done" for d in cell.deps):
            # its candidates do not exist yet: estimate from the items it will most likely judge
            selected = [it for it in items if it.labels is not None and (grid.spec.split == "all"
                                                                         or it.split == grid.spec.split)]
            limits = [x for x in (judge_limit(grid.spec), grid.spec.limit) if x]
            selected = selected[:min(limits)] if limits else selected
            orders = make_orders(k, grid.spec.judge.orders, cell.seed)
            spec = judge_spec(ctx, cell, k)
            cell.status, cell.n_items, cell.n_done = "waiting", len(selected) * len(orders), 0
            shown = [[prompts.Shown(it.labels, None)] * k for it in selected]
            convs = [prompts.build_messages(it.text, it.labels, s, cell.codebook, cell.variant)
                     for it, s in zip(selected, shown) for _ in orders]
            cell.calls = len(convs)
            ctx.estimate(cell, convs, spec.params.max_new_tokens)
            return
        candidates = judge_candidates(ctx, cell)
        spec = judge_spec(ctx, cell, len(candidates))
        selected, orders, _skipped = prepare(spec, items, candidates)
        cell.hash, cell.n_items = spec.hash(selected, candidates, orders), len(selected) * len(orders)
        run_dir = find_run(ctx.index, spec.core(selected, candidates, orders))
        done = {call_key(r) for r in predictions(RunFolder(run_dir))} if run_dir else set()
        ctx.state(cell, run_dir, len(done))
        convs = []
        if cell.status != "done":
            for it in selected:
                for order in orders:
                    names = [candidates[i].name for i in order]
                    if (it.doi, it.task, tuple(names)) in done:
                        continue
                    recs = [candidates[i].records[it.doi] for i in order]
                    shown = [prompts.Shown(r.labels, r.response) for r in recs]
                    convs.append(prompts.build_messages(it.text, it.labels, shown, cell.codebook, cell.variant))
        cell.calls = len(convs)
        ctx.estimate(cell, convs, spec.params.max_new_tokens)

    def run(self, ctx, cell, backend, show_progress=True):
        from llmscisci.tasks.judge import run_judge

        candidates = judge_candidates(ctx, cell)
        return run_judge(judge_spec(ctx, cell, len(candidates)), ctx.inputs.items_of(cell.codebook), candidates,
                         backend, ctx.out, run_dir=ctx.run_dir(cell), show_progress=show_progress)

    def finish(self, ctx, cell):
        from llmscisci.tasks.judge import finish_judge

        run = RunFolder(ctx.out / cell.dir)
        finish_judge(run, cell.codebook)
        return run

    def headline(self, metrics):
        s = ((metrics.get("audit") or {}).get("scores") or {}).get("exact_agreement")
        return {"valid_rate": metrics.get("valid_rate"),
                "exact_agreement": s.get("value") if isinstance(s, dict) else s}

    def resume_inputs(self, run_dir, *, data_dir=None, reference=None) -> tuple:
        """What a judge run is continued with: (spec, items, candidates), its items from its data folder
        (config.json's `data_source`, or `data_dir`; `reference`: the reference labels it was given), its
        candidates from the files config.json names."""
        from pathlib import Path

        from llmscisci.data.items import load_items
        from llmscisci.paths import data_dir as resolve_data_dir
        from llmscisci.paths import data_label
        from llmscisci.tasks.judge import JudgeSpec

        cfg = self.resumed_config(run_dir)
        spec = JudgeSpec.from_config(cfg)
        source = resolve_data_dir(data_dir or spec.data_source or None)
        if data_dir is not None:  # moved: config.json then names where the data is now
            spec.data_source = data_label(source)
        candidates = recorded_candidates(cfg, spec.codebook, Path(run_dir))
        if reference is not None and not Path(reference).is_file():
            raise UserError(f"--reference {reference}: file not found")
        return spec, load_items(spec.codebook, data_dir=source, reference=reference), candidates

    def resume(self, run_dir, backend, *, show_progress=True, data_dir=None, reference=None, inputs=None):
        """Continue a judge run with `inputs` (from `resume_inputs`, read here when None)."""
        from pathlib import Path

        from llmscisci.tasks.judge import run_judge

        spec, items, candidates = inputs or self.resume_inputs(run_dir, data_dir=data_dir, reference=reference)
        path = Path(run_dir)
        return run_judge(spec, items, candidates, backend, path.parent, run_dir=path, show_progress=show_progress)

    def reevaluate(self, run_dir, reparse=False, skip_bad=False):
        from llmscisci.tasks.judge import reevaluate_judge
        from llmscisci.tasks.registry import check_predictions

        check_predictions(run_dir, skip_bad)
        return reevaluate_judge(run_dir, reparse=reparse)


def recorded_candidates(cfg: dict, codebook: Codebook, run_dir) -> list:
    """A judge run's candidates as its config.json records them (name and file, in order), read again."""
    from pathlib import Path

    from llmscisci.data.codebook import BUILTIN
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.tasks.judge import Candidate

    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    found = []
    for c in cfg.get("candidates") or []:
        if not Path(c["path"]).exists():
            raise UserError(f"{run_dir}: its candidate {c['name']} ({c['path']}) is gone: no such label file "
                            "or run folder")
        found.append(Candidate(c["name"], c["path"], load_labels(c["path"], books).for_task(codebook.task)))
    return found
