"""The grid's working objects: a `Cell` (one run folder to be), the `Grid` of cells, the `Inputs` the
cells read (items per codebook, the extraction page, candidate label files), and the `GridContext` in
which a task kind plans and runs a cell."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.items import Item
from llmscisci.tasks import registry
from llmscisci.tasks.grid.estimate import Estimator
from llmscisci.tasks.grid.spec import GridSpec

GRID_FILE = "grid.json"


@dataclass
class Cell:
    kind: str  # a registered task kind: label | baseline | extract | judge | ...
    task: str  # the codebook's task name, or "extract"
    model: str
    variant: str  # "-" for baselines
    seed: int
    paraphrase: int | None = None  # label cells only
    codebook: Codebook | None = None
    max_new_tokens: int | None = None  # the model entry's override
    deps: list[str] = field(default_factory=list)  # ids of label cells a judge cell reads
    refs: list[str] = field(default_factory=list)  # the judge's candidates as given (paths or grid: refs)
    # filled by plan() and run_grid()
    status: str = "pending"  # pending | partial | done | waiting | running | failed | blocked
    previous: str | None = None  # done | partial: what the output folder held before this run
    hash: str | None = None
    dir: str | None = None  # relative to the grid's output folder
    n_items: int = 0  # items (label), calls (judge: items x orders), units (extract)
    n_done: int = 0
    calls: int = 0  # model calls still to make
    tokens_in: int = 0  # estimated, for the calls still to make
    tokens_out: int = 0  # upper bound: max_new_tokens per call
    cost_usd: float | None = 0.0  # estimated; None: no price known
    seconds: float | None = None
    error: str | None = None
    headline: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        parts = [self.kind, self.task, self.model]
        if self.variant != "-":  # a kind without prompt variants (a baseline) has none
            parts.append(self.variant)
        if self.paraphrase is not None:
            parts.append(f"p{self.paraphrase}")
        parts.append(f"s{self.seed}")
        return "/".join(parts)

    def entry(self) -> dict:
        """The cell's line in grid.json."""
        return {
            "id": self.id, "kind": self.kind, "task": self.task, "model": self.model, "variant": self.variant,
            "paraphrase": self.paraphrase, "seed": self.seed, "status": self.status,
            "previous": self.previous,
            "dir": self.dir, "hash": self.hash, "items": self.n_items, "done_before": self.n_done,
            "calls": self.calls, "estimated_tokens_in": self.tokens_in, "max_tokens_out": self.tokens_out,
            "estimated_cost_usd": self.cost_usd, "seconds": self.seconds, "depends_on": self.deps or None,
            "error": self.error, "headline": self.headline or None,
        }


@dataclass
class Grid:
    spec: GridSpec
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)

    def cell(self, cid: str) -> Cell:
        for c in self.cells:
            if c.id == cid:
                return c
        raise KeyError(cid)


def find_input(path: str, data_dir: Path) -> Path:
    """A path from the grid file: relative to the data folder if it exists there, else as given."""
    p = Path(path).expanduser()
    if not p.is_absolute() and (data_dir / p).exists():
        return data_dir / p
    return p


@dataclass
class Inputs:
    """What the cells read: items per codebook, the extraction page and answer key, candidate label sets."""

    data_dir: Path
    out: Path
    items: dict[str, list[Item]] = field(default_factory=dict)
    page: object = None
    truth: object = None
    label_sets: dict[str, object] = field(default_factory=dict)

    def items_of(self, cb: Codebook) -> list[Item]:
        if cb.task not in self.items:
            from llmscisci.data.items import load_items

            self.items[cb.task] = load_items(cb, data_dir=self.data_dir)
        return self.items[cb.task]

    def page_and_truth(self, spec: GridSpec):
        if self.page is None:
            from llmscisci.tasks.extract.source import read_page
            from llmscisci.tasks.extract.truth import load_truth

            self.page = read_page(find_input(spec.extract.page, self.data_dir))
            self.truth = load_truth(find_input(spec.extract.bib, self.data_dir))
        return self.page, self.truth

    def label_set(self, path: Path, books: dict[str, Codebook], name: str | None = None):
        key = f"{path}|{name}"
        if key not in self.label_sets:
            from llmscisci.data.labelfiles import load_labels

            self.label_sets[key] = load_labels(path, books, name=name)
        return self.label_sets[key]


def index_runs(out: Path) -> dict[str, Path]:
    """hash -> run folder, for the run folders directly below the grid's output folder."""
    found: dict[str, Path] = {}
    if not out.is_dir():
        return found
    for d in sorted(out.iterdir()):
        cfg_path = d / "config.json"
        if not cfg_path.is_file():
            continue
        try:
            cfg = json.loads(cfg_path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(cfg, dict) and cfg.get("hash"):
            found.setdefault(str(cfg["hash"]), d)
    return found


def books(spec: GridSpec) -> dict[str, Codebook]:
    """Every codebook the grid names, and the built-in ones, by task name."""
    books = {t: load_codebook(t) for t in BUILTIN}
    for t in [*spec.tasks, *spec.judge.tasks]:
        if not registry.is_grid_task(t):
            cb = load_codebook(t)
            books[cb.task] = cb
    return books


def set_state(cell: Cell, run_dir: Path | None, n_done: int, out: Path) -> None:
    """Set a planned cell's status from what its run folder holds."""
    cell.n_done = n_done
    if run_dir is None:
        cell.status, cell.previous = "pending", None
        return
    cell.dir = str(run_dir.relative_to(out)) if run_dir.is_relative_to(out) else str(run_dir)
    finished = (run_dir / "metrics.json").is_file() and n_done >= cell.n_items
    cell.status = cell.previous = "done" if finished else "partial"



@dataclass
class GridContext:
    """What a task kind plans and runs a cell with: the grid, its inputs, the run folders already in the
    output folder (by hash) and, when planning estimates cost, the estimator."""

    grid: Grid
    inputs: Inputs
    index: dict[str, Path] = field(default_factory=dict)
    est: Estimator | None = None

    @property
    def spec(self) -> GridSpec:
        return self.grid.spec

    @property
    def out(self) -> Path:
        return self.inputs.out

    def run_dir(self, cell: Cell) -> Path | None:
        """The cell's run folder when planning found one (a partial run is resumed in place)."""
        return self.out / cell.dir if cell.dir else None

    def state(self, cell: Cell, run_dir: Path | None, n_done: int) -> None:
        set_state(cell, run_dir, n_done, self.out)

    def estimate(self, cell: Cell, conversations: list[list[dict]], max_new_tokens: int) -> None:
        """The calls left, their prompt tokens and cost (when planning estimates)."""
        if self.est is not None:
            self.est.fill(cell, cell.model, conversations, max_new_tokens)

    def find(self, path: str) -> Path:
        return find_input(path, self.inputs.data_dir)
