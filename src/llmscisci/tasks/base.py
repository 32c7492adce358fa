"""The contract every task kind follows, in the spirit of inspect_ai's `Task(dataset, solver, scorer)`.

A task kind (label, baseline, extract, judge, ...) is one class deriving from `TaskKind`, registered by
name in `llmscisci.tasks.registry`. The grid, `llmscisci eval`, `llmscisci report` and the CLI reach a
kind only through the registry, so a new kind is one module plus one registry line. What a kind gives:

* class attributes: `name` (config.json's "kind", the grid's cell kind), `prompts` (its prompt module
  under llmscisci.prompts, for its variants), `grid_task` (named in a grid's `tasks`, like extract and
  judge, or run once per codebook, like label), `needs_model`, `label_like` (how `report` reads its
  folders), `report_note` (what the report says of its runs), `stage` (a later stage runs after the
  cells it may read);
* the grid: `grid_cells` or `codebook_cells` (expansion), `plan` (hash, what the output folder holds,
  calls left and their estimate), `run` (run or resume one cell with a loaded backend), `finish`
  (score a folder that holds every answer, without a model), `headline` (a finished cell in one line);
* an existing run folder: `reevaluate` (`llmscisci eval`), `resume` (continue it with a loaded backend: its
  spec from config.json, `Spec.from_config`; `--resume`, `llmscisci batch collect` and a grid's started
  cell all continue a run through it).
  Which predictions.jsonl records answer the same call is the record's own `key` (records.py).

Nothing outside the registry compares a kind's name with a literal: code asks the kind (these
attributes and methods) instead, so a new kind needs no edit elsewhere.

Each runner has a typed spec (`LabelSpec`, `JudgeSpec`, `ExtractSpec`, `BaselineSpec`) with `core(...)`,
the fields that define the experiment (their stable hash names the run folder and finds it again to
resume), and `config(...)`, that core plus the record written to config.json. docs/architecture.md
walks through adding a kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from llmscisci.errors import UserError

if TYPE_CHECKING:  # typing only (the grid modules import this one)
    from llmscisci.data.codebook import Codebook
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.grid.cells import Cell, GridContext
    from llmscisci.tasks.grid.expand import Expansion
    from llmscisci.tasks.grid.spec import GridSpec, ModelEntry


class TaskKind:
    """One task kind: class attributes describe it, methods implement the contract (module docstring)."""

    name: ClassVar[str] = ""
    prompts: ClassVar[ModuleType | None] = None  # its prompt module (check_variant knows its variants); None: none
    grid_task: ClassVar[bool] = False  # named in a grid's `tasks` itself (else: one cell set per codebook)
    needs_model: ClassVar[bool] = True  # a classical baseline runs without a model backend
    label_like: ClassVar[bool] = False  # report: a labelling run (scored with intervals), else metrics shown flat
    stage: ClassVar[int] = 0  # a grid runs a later stage after the cells it may read
    report_note: ClassVar[str] = ""  # a sentence `llmscisci report` adds to its results when it shows such runs
    # `llmscisci grid`'s result table: its title, the headline columns [(column, headline key)], the
    # headers of the task and item columns; `results_with`: show the cells in another kind's table
    results_title: ClassVar[str] = ""
    headline_columns: ClassVar[list[tuple[str, str]]] = []
    task_column: ClassVar[str] = "task"
    items_column: ClassVar[str] = "items"
    results_with: ClassVar[str | None] = None

    def task_of(self, cell: Cell, spec: GridSpec) -> str:
        """What the result table's task column shows for a cell."""
        return cell.task

    # --- variants ---------------------------------------------------------------------------------------
    def has_variant(self, variant: str) -> bool:
        """Whether this kind has a prompt variant of that name."""
        if self.prompts is None:
            return False
        try:
            self.prompts.check_variant(variant)
        except UserError:
            return False
        return True

    # --- expansion of a grid ------------------------------------------------------------------------------
    def accepts(self, model: str) -> bool:
        """Whether a per-codebook kind makes cells for this model of the grid."""
        return False

    def codebooks(self, spec: GridSpec) -> list[Codebook]:
        """The codebooks a grid-task kind reads besides the grid's own (their names must not clash)."""
        return []

    def grid_cells(self, exp: Expansion) -> Iterable[Cell]:
        """A grid-task kind's cells (it is named in the grid's `tasks`)."""
        return []

    def codebook_cells(self, exp: Expansion, codebook: Codebook, model: ModelEntry) -> Iterable[Cell]:
        """A per-codebook kind's cells for one codebook and one model it accepts."""
        return []

    # --- planning and running a cell ---------------------------------------------------------------------
    def plan(self, ctx: GridContext, cell: Cell) -> None:
        """Set the cell's hash, items, status (ctx.state) and calls left (ctx.estimate)."""
        raise NotImplementedError

    def run(self, ctx: GridContext, cell: Cell, backend, show_progress: bool = True) -> RunFolder:
        """Run (or resume, in ctx.run_dir(cell)) one cell; return its run folder."""
        raise NotImplementedError

    def finish(self, ctx: GridContext, cell: Cell) -> RunFolder:
        """Score a run folder that holds every answer, without a model."""
        raise UserError(f"{self.name} runs cannot be scored without running them")

    def headline(self, metrics: dict) -> dict:
        """A finished cell's headline numbers (grid.json, `llmscisci grid` tables)."""
        return {}

    # --- an existing run folder ------------------------------------------------------------------------
    def model_of(self, config: dict) -> str:
        """The model a run folder's config.json names, as `--model` and a grid's `models` write it."""
        return str(config.get("model") or config.get("method") or "?")

    def reevaluate(self, run_dir: str | Path, reparse: bool = False, skip_bad: bool = False) -> dict:
        """`llmscisci eval`: recompute the run's metrics from its predictions."""
        raise UserError(f"{run_dir}: {self.name} runs cannot be re-evaluated")

    def resume(self, run_dir: str | Path, backend, *, show_progress: bool = True, **sources) -> RunFolder:
        """Continue the run folder `run_dir` with `backend` (its spec rebuilt from config.json, so the same hash;
        texts checked unchanged, tasks/texts.py); `sources`: where its inputs are now, when they moved
        (each kind names its own, e.g. label's `data_dir`)."""
        raise UserError(f"{run_dir}: a {self.name} run cannot be resumed; run it again")

    def can_resume(self) -> bool:
        """Whether this kind continues a run folder (it implements `resume`)."""
        return type(self).resume is not TaskKind.resume

    def resumed_config(self, run_dir: str | Path) -> dict:
        """config.json of a run folder to continue, checked: a folder with one, of this kind."""
        import json

        path = Path(run_dir)
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise UserError(f"--resume {path}: not a run folder (no config.json)")
        try:
            cfg = json.loads(cfg_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{cfg_path}: unreadable ({exc})") from None
        # folders written before config.json named its kind are labelling runs (registry.DEFAULT_KIND)
        kind = (cfg.get("kind") or "label") if isinstance(cfg, dict) else None
        if kind != self.name or not isinstance(cfg, dict) or "model" not in cfg:
            raise UserError(f"--resume {path}: not a {self.name} run (kind {kind!r})")
        return cfg

    def __repr__(self) -> str:
        return f"<task kind {self.name!r}>"
