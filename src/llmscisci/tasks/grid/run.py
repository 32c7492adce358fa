"""Run a planned grid: every cell not yet finished, model by model in the order of the file (each model's
backend loaded once, when its first cell is due, and released after its last), resuming partial cells;
grid.json is kept up to date as cells start and end. A cell runs through its task kind (registry); a started
cell continues through the kind's `resume`, as `--resume` does."""

from __future__ import annotations

import gc
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.runs import RunFolder, write_json
from llmscisci.tasks import registry
from llmscisci.tasks.grid.cells import GRID_FILE, Cell, Grid, GridContext, Inputs, index_runs
from llmscisci.tasks.grid.expand import expand
from llmscisci.tasks.grid.plan import plan, totals
from llmscisci.tasks.grid.spec import GridSpec, load_model_backend


def write_grid(grid: Grid, inputs: Inputs, config_path: str | None = None) -> Path:
    t = totals(grid)
    counts: dict[str, int] = {}
    for c in grid.cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    doc = {
        "name": grid.spec.name,
        "config": config_path,
        "data_dir": str(inputs.data_dir),
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": counts,
        "estimate": {"calls": t.calls, "api_tokens_in": t.api_tokens_in,
                     "api_max_tokens_out": t.api_tokens_out, "api_cost_usd": t.api_cost_usd},
        "notes": grid.notes,
        "spec": grid.spec.model_dump(),
        "cells": [c.entry() for c in grid.cells],
    }
    path = inputs.out / GRID_FILE
    write_json(path, doc)
    return path


def _headline(cell: Cell, run: RunFolder) -> dict:
    return registry.get(cell.kind).headline(run.metrics())


def _one_line(exc: BaseException) -> str:
    """A failure as one line: a UserError's own message, else the exception's type and first line."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, UserError):
        return first or "error"
    return f"{type(exc).__name__}: {first}"[:400]


def needs_model(cell: Cell) -> bool:
    """Whether running the cell needs its model: not for a kind that runs without one (a baseline), nor
    for a run folder that holds every answer but no metrics yet (killed while scoring): that one is only
    scored."""
    if not registry.get(cell.kind).needs_model:
        return False
    return not (cell.status == "partial" and cell.calls == 0 and cell.dir and cell.hash)


def _release(backend) -> None:
    close = getattr(backend, "close", None)
    if callable(close):  # a pool of Ray actors (engine = "ray"): its actors stop
        close()
    del backend
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class _Loaded(dict):
    """model -> loaded backend; whatever is still loaded is released on leaving, an error included."""

    def __enter__(self) -> "_Loaded":
        return self

    def __exit__(self, *exc) -> None:
        for model in list(self):
            _release(self.pop(model))


def _schedule(grid: Grid) -> list[str]:
    """Models in the order of the file."""
    return [m.name for m in grid.spec.models]


def run_grid(grid: Grid, inputs: Inputs, *, config_path: str | None = None, fail_fast: bool = False,
             show_progress: bool = True) -> Grid:
    """Run every cell not yet finished (a planned grid), resuming partial ones; update grid.json as cells
    start and end. Each model's backend is loaded once, when its first cell is due, and released after
    its last; a failing cell is recorded (status failed, error) and the others go on, unless fail_fast."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    inputs.out.mkdir(parents=True, exist_ok=True)
    write_grid(grid, inputs, config_path)
    todo = [c for c in grid.cells if c.status != "done"]
    options = grid.spec.backend.options()
    backends = _Loaded()  # each model's backend (engine = "ray": its pool), for all its cells
    failed_models: dict[str, str] = {}

    def save() -> None:
        write_grid(grid, inputs, config_path)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with backends, Progress(*columns, transient=False) as bar:
        tid = bar.add_task(f"grid {grid.spec.name}", total=len(todo), status="", visible=show_progress)
        n = {"done": 0, "failed": 0}

        def status(text: str) -> None:
            bar.update(tid, status=f"done {n['done']} failed {n['failed']} | {text}")

        def finish(cell: Cell, state: str, error: str | None = None) -> None:
            cell.status, cell.error = state, error
            n["done" if state == "done" else "failed"] += 1
            bar.update(tid, advance=1)
            save()

        while todo:
            progressed = False
            for model in _schedule(grid):
                for cell in [c for c in todo if c.model == model]:
                    deps = [grid.cell(d) for d in cell.deps]
                    bad = [d for d in deps if d.status in ("failed", "blocked")]
                    if bad:
                        todo.remove(cell)
                        progressed = True
                        finish(cell, "blocked", f"candidate cell {bad[0].id} {bad[0].status}")
                        continue
                    if any(d.status != "done" for d in deps):
                        continue  # waits for a label cell of a later model
                    todo.remove(cell)
                    progressed = True
                    if model in failed_models:
                        finish(cell, "failed", failed_models[model])
                        continue
                    backend = None
                    if needs_model(cell):
                        if model not in backends:
                            status(f"loading {model}")
                            try:
                                backends[model] = load_model_backend(grid.spec, model, options)
                            except Exception as exc:  # noqa: BLE001 - recorded; the other models go on
                                if fail_fast:
                                    save()
                                    raise
                                failed_models[model] = f"loading the model failed: {_one_line(exc)}"
                                finish(cell, "failed", failed_models[model])
                                continue
                        backend = backends[model]
                    status(cell.id)
                    cell.status, cell.error = "running", None
                    save()
                    t0 = time.perf_counter()
                    try:
                        kind = registry.get(cell.kind)
                        ctx = GridContext(grid, inputs, index_runs(inputs.out))
                        if cell.deps and cell.hash is None:  # its candidates exist now: plan it for real
                            kind.plan(ctx, cell)
                        started = ctx.run_dir(cell)
                        if backend is None and kind.needs_model:
                            run = kind.finish(ctx, cell)
                        elif started is not None and (started / "config.json").is_file() and kind.can_resume():
                            run = kind.resume(started, backend, show_progress=show_progress)  # from its config.json
                        else:
                            run = kind.run(ctx, cell, backend, show_progress)
                    except KeyboardInterrupt:
                        cell.status, cell.error = "partial", "interrupted"
                        save()
                        raise
                    except Exception as exc:  # noqa: BLE001 - recorded; the other cells go on
                        cell.seconds = round(time.perf_counter() - t0, 3)
                        if fail_fast:
                            cell.status, cell.error = "failed", _one_line(exc)
                            save()
                            raise
                        finish(cell, "failed", _one_line(exc))
                        continue
                    cell.seconds = round(time.perf_counter() - t0, 3)
                    cell.dir = str(run.path.relative_to(inputs.out)) if run.path.is_relative_to(inputs.out) \
                        else str(run.path)
                    cell.hash = run.config.get("hash", cell.hash)
                    cell.headline = _headline(cell, run)
                    finish(cell, "done")
                if model in backends and not any(c.model == model for c in todo):
                    _release(backends.pop(model))
            if not progressed:  # only cells waiting on cells that cannot run remain
                for cell in list(todo):
                    todo.remove(cell)
                    finish(cell, "blocked", "its candidate label cells did not run")
        status("finished")
    for cell in grid.cells:  # finished before this run: their results from their run folders
        if cell.status == "done" and not cell.headline and cell.dir:
            cell.headline = _headline(cell, RunFolder(inputs.out / cell.dir))
    save()
    return grid


def prepare_grid(spec: GridSpec, data_dir: str | Path | None = None, out: str | Path | None = None,
                 estimate: bool = True) -> tuple[Grid, Inputs]:
    """Expand and plan a grid (validating everything it needs) without writing anything."""
    from llmscisci.paths import data_dir as resolve_data_dir

    grid = expand(spec)
    inputs = Inputs(data_dir=resolve_data_dir(data_dir or spec.data_dir), out=Path(out or spec.out))
    if inputs.out.exists() and not inputs.out.is_dir():
        raise UserError(f"output folder {inputs.out} is a file")
    plan(grid, inputs, estimate=estimate)
    _carry_over(grid, inputs)
    return grid, inputs


def _carry_over(grid: Grid, inputs: Inputs) -> None:
    """Cells finished by an earlier run keep the time that run recorded for them in grid.json."""
    try:
        old = json.loads((inputs.out / GRID_FILE).read_text("utf-8"))
        entries = {e["id"]: e for e in old.get("cells", []) if isinstance(e, dict) and "id" in e}
    except (OSError, ValueError, AttributeError, TypeError):
        return
    for c in grid.cells:
        e = entries.get(c.id)
        if c.status == "done" and e and e.get("hash") == c.hash and e.get("dir") == c.dir:
            c.seconds = e.get("seconds")
