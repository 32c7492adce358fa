"""Expand a grid into cells, in the order of the file: the `tasks` list (a codebook gives one cell per model
and, for each kind that takes the model, its variants, paraphrases and seeds; a task kind named in
`tasks`, such as extract, gives its own cells), then the kinds of later stages (judge, which may read
the label cells). Every kind comes from the registry: nothing here knows a kind by name."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmscisci.backends.registry import resolve_model
from llmscisci.data.codebook import Codebook, load_codebook
from llmscisci.errors import UserError
from llmscisci.tasks import registry
from llmscisci.tasks.grid.cells import Cell, Grid
from llmscisci.tasks.grid.spec import GridSpec, ModelEntry


@dataclass
class Expansion:
    """The state of an expansion that kinds add cells to: the spec, the codebooks by task entry, the cells
    so far, and the notes (paraphrases missing, variants a kind does not have)."""

    spec: GridSpec
    books: dict[str, Codebook]
    cells: list[Cell] = field(default_factory=list)
    missing_paraphrases: set[str] = field(default_factory=set)
    skipped: set[tuple[str, str]] = field(default_factory=set)

    def variants(self, kind: str) -> list[str]:
        """The grid's variants that `kind` has a prompt for (the others are noted)."""
        out = []
        for v in self.spec.variants:
            if registry.get(kind).has_variant(v):
                out.append(v)
            else:
                self.skipped.add((kind, v))
        return out

    @property
    def llms(self) -> list[ModelEntry]:
        """The grid's language models (not the classical baselines)."""
        return [m for m in self.spec.models if not resolve_model(m.name).is_baseline]


def expand(spec: GridSpec) -> Grid:
    """The grid's cells, in the order of the file (tasks, then models, variants, paraphrases, seeds)."""
    kinds = registry.kinds()
    grid = Grid(spec, [])
    unknown = [v for v in spec.variants if not any(k.has_variant(v) for k in kinds)]
    if unknown:
        raise UserError(f"unknown variant {unknown[0]!r}: use icl, guidelines, structured "
                        "(or cot, score for labelling)")
    books: dict[str, Codebook] = {}
    for t in spec.tasks:
        if not registry.is_grid_task(t):
            books[t] = load_codebook(t)
    named = [registry.get(t) for t in spec.tasks if registry.is_grid_task(t)]
    read = [cb for k in named for cb in k.codebooks(spec)]
    clash = sorted({cb.task for cb in [*books.values(), *read] if registry.is_grid_task(cb.task)})
    if clash:
        raise UserError(f"codebook task name {clash[0]!r} clashes with the grid task of that name")
    exp = Expansion(spec, books)
    per_codebook = [k for k in kinds if not k.grid_task]
    for t in spec.tasks:
        if registry.is_grid_task(t):
            kind = registry.get(t)
            if kind.stage == 0:
                exp.cells += kind.grid_cells(exp)
            continue  # a later stage: after the cells it may read
        for m in spec.models:
            for kind in per_codebook:
                if kind.accepts(m.name):
                    exp.cells += kind.codebook_cells(exp, books[t], m)
    for kind in sorted((k for k in named if k.stage > 0), key=lambda k: k.stage):
        exp.cells += kind.grid_cells(exp)
    grid.cells = exp.cells
    if exp.missing_paraphrases:
        grid.notes.append(f"paraphrases = {spec.paraphrases}, but fewer wordings exist for: "
                          f"{', '.join(sorted(exp.missing_paraphrases))}; those variants run every wording they "
                          "have")
    for kind, v in sorted(exp.skipped):
        grid.notes.append(f"variant {v!r} has no {kind} prompt: no {kind} cells for it")
    if not grid.cells:
        raise UserError("the grid has no cells (check tasks, models and variants)")
    seen: set[str] = set()
    dup = next((c.id for c in grid.cells if c.id in seen or seen.add(c.id)), None)
    if dup:
        raise UserError(f"two cells would both be {dup}: do two codebooks share a task name?")
    return grid
