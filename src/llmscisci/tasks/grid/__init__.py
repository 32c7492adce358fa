"""Experiment grids: one TOML file -> tasks x models x prompt variants (x paraphrases x seeds) -> run folders.

A grid is data (`GridSpec`, spec.py). `expand` (expand.py) turns it into cells; `plan` (plan.py) reads
the inputs, computes every cell's configuration hash and looks in the output folder for run folders that
already hold it (finished: metrics.json and every item done; partial: a killed run); `run_grid` (run.py)
runs what is left, loading each model's backend once for all its cells, and keeps `grid.json` up to date.

Every cell is a normal run folder written by its task kind's own runner directly below the grid's output
folder, so `llmscisci eval`, `llmscisci report` and resuming work on a cell exactly as on a run made by
hand. A cell killed mid-way resumes item by item. The kinds (label, baseline, extract, judge, ...) come
from the task registry (tasks/registry.py); the grid code knows none by name.
"""

from llmscisci.tasks.grid.cells import GRID_FILE, Cell, Grid, GridContext, Inputs
from llmscisci.tasks.grid.expand import expand
from llmscisci.tasks.grid.plan import Totals, plan, totals
from llmscisci.tasks.grid.run import needs_model, prepare_grid, run_grid, write_grid
from llmscisci.tasks.grid.spec import (ANNOTATORS, GRID_REF, BackendSection, GridSpec, ModelEntry, check_models,
                                       load_grid, load_model_backend, parse_grid)

__all__ = ["ANNOTATORS", "BackendSection", "Cell", "GRID_FILE", "GRID_REF", "Grid",
           "GridContext", "GridSpec", "Inputs", "ModelEntry", "Totals", "check_models", "expand",
           "load_grid", "load_model_backend", "needs_model", "parse_grid", "plan", "prepare_grid",
           "run_grid", "totals", "write_grid"]
