"""Experiment grids from Python, as `llmscisci grid` runs them: `ls.grid(config)` expands a grid file
(tasks x models x prompt variants x paraphrases x seeds) into cells, runs those not yet finished (one
run folder each, partial ones resumed item by item) and returns the cells' grid.json lines as a
DataFrame; `dry_run=True` plans and runs nothing."""

from __future__ import annotations

from pathlib import Path

from llmscisci.errors import UserError


def plan_grid(config, *, data_dir=None, out=None, limit: int | None = None):
    """The grid of `config` expanded and planned, nothing run or written: (Grid, Inputs). `limit`
    overrides every limit of the file (the first N items, judge items or extraction units per cell)."""
    from llmscisci.tasks.grid import load_grid, prepare_grid

    spec = load_grid(config)
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        spec = spec.model_copy(update={
            "limit": limit,
            "judge": spec.judge.model_copy(update={"limit": None}),
            "extract": spec.extract.model_copy(update={"limit": None}),
        })
    return prepare_grid(spec, data_dir=data_dir, out=out)


def failed_cells(g) -> list:
    """The cells that failed or were blocked by a failed one."""
    return [c for c in g.cells if c.status in ("failed", "blocked")]


def check_cells(g, inputs) -> None:
    """The command's error when cells failed or were blocked (grid.json holds each one's error)."""
    from llmscisci.tasks.grid import GRID_FILE

    bad = failed_cells(g)
    if bad:
        raise UserError(f"{len(bad)} of {len(g.cells)} cells failed or were blocked "
                        f"(see {inputs.out / GRID_FILE})")


def unanswered_cells(g, inputs) -> dict[str, dict]:
    """The finished cells whose run folder holds items the server never answered (metrics.json
    `unanswered` > 0): cell id -> its metrics. A re-run of the grid asks those items again."""
    from llmscisci.runs import RunFolder

    found = {}
    for c in g.cells:
        if c.status == "done" and c.dir:
            m = RunFolder(Path(inputs.out) / c.dir).metrics()
            if int(m.get("unanswered") or 0) > 0:
                found[c.id] = m
    return found


def grid(config, *, data_dir=None, out=None, limit: int | None = None, fail_fast: bool = False,
         dry_run: bool = False, progress: bool = True):
    """Run the grid of `config` (a grid TOML file) into `out` (default: the file's `out`): a DataFrame of
    its cells as grid.json records them (id, kind, task, model, variant, status, dir, items, calls,
    estimated tokens and cost, headline scores, `unanswered`: items of a finished cell the server never
    answered), `.attrs["path"]` the output folder. Cells that fail are recorded and the others go on
    (unless `fail_fast`); then a `UserError` says how many failed. Unanswered items raise nothing:
    `llmscisci grid` exits 3 for them, and a re-run asks them again."""
    import pandas as pd

    from llmscisci.tasks.grid import run_grid

    g, inputs = plan_grid(config, data_dir=data_dir, out=out, limit=limit)
    if not dry_run:
        run_grid(g, inputs, config_path=str(config), fail_fast=fail_fast, show_progress=progress)
        check_cells(g, inputs)
    missing = unanswered_cells(g, inputs)
    df = pd.DataFrame([c.entry() | {"unanswered": int(missing.get(c.id, {}).get("unanswered") or 0)}
                       for c in g.cells])
    df.attrs["path"] = str(Path(inputs.out))
    return df
