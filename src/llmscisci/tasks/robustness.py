"""Gather the inputs of `llmscisci robustness`: configurations (grid folders, run folders, label files),
the corpus they share, its groups and the human-coded sample; then hand the arrays to
metrics/robustness.py.

* A configuration is one run folder (config.json + predictions.jsonl of a labelling run) or one label
  file (annotator JSONL, reference CSV, ...). A grid folder (or any folder of runs) stands for every
  labelling run below it. Its factors: model, variant, paraphrase (0 = the original wording) and, only
  when it sampled with temperature > 0, its seed; a label file is its own "model".
* The corpus of a task is the items that every configuration labelled (an invalid output counts as a 0
  label, as in `llmscisci prevalence`), and, with ``--by``, that have a value in the grouping column:
  an item column the runs' own records keep (a run of one's own corpus), else a reports-table column.
* The coded sample: any label file (a `code import` file with recorded sampling probabilities, or any
  other label file: a simple random sample).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.labelfiles import load_labels
from llmscisci.errors import UserError
from llmscisci.runs import meta_column
from llmscisci.coding import load_gold

MAX_DEPTH = 4


@dataclass
class Configuration:
    name: str
    source: Path
    task: str
    factors: dict
    labels: dict[str, tuple[int, ...] | None]  # doi -> labels (None: invalid output)
    codebook: Codebook | None = None

    def display(self, paraphrases: bool) -> str:
        f = self.factors
        parts = [f["model"]] + ([f["variant"]] if f.get("variant", "-") != "-" else [])
        if paraphrases and f.get("variant", "-") != "-":
            parts.append(f"p{f.get('paraphrase', 0)}")
        if "seed" in f:
            parts.append(f"s{f['seed']}")
        return "/".join(parts)

    def describe(self) -> dict:
        n_invalid = sum(v is None for v in self.labels.values())
        return {
            "name": self.name,
            "source": str(self.source),
            "factors": self.factors,
            "n_items": len(self.labels),
            "n_invalid": n_invalid,
        }


@dataclass
class Inputs:
    task: str
    codebook: Codebook
    configurations: list[Configuration]
    dois: list[str]
    groups: np.ndarray | None
    y: np.ndarray  # (N, L), NaN rows uncoded
    pi: np.ndarray | None
    design: str
    n_coded: int
    notes: list[str] = field(default_factory=list)

    def predictions(self) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for c in self.configurations:
            vecs = [c.labels[d] for d in self.dois]
            yhat = np.array([v if v is not None else [0] * self.codebook.n for v in vecs], dtype=float)
            out.append((yhat, np.array([v is not None for v in vecs])))
        return out


def _read_config(path: Path) -> dict | None:
    import json

    try:
        cfg = json.loads((path / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) else None


def _label_like(kind: str) -> bool:
    """Whether runs of this kind hold label predictions (the task registry says)."""
    from llmscisci.tasks import registry

    return kind in registry.KINDS and registry.get(kind).label_like


def _is_label_run(path: Path) -> bool:
    cfg = _read_config(path)
    return (
        cfg is not None and (path / "predictions.jsonl").is_file() and _label_like(cfg.get("kind", "label"))
    )


def run_folders(folder: Path) -> list[Path]:
    """The labelling run folders at or below `folder` (a run, a grid or any folder of runs)."""
    if _is_label_run(folder):
        return [folder]
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if len(sub.relative_to(folder).parts) <= MAX_DEPTH:
            found += run_folders(sub)
    return found


def _factors(cfg: dict) -> dict:
    params = cfg.get("params") if isinstance(cfg.get("params"), dict) else {}
    from llmscisci.tasks import registry

    f = {
        "model": registry.of_run(cfg).model_of(cfg),
        "variant": str(cfg.get("variant") or "-"),
        "paraphrase": str(cfg.get("paraphrase") or 0),
    }
    if float(params.get("temperature") or 0) > 0:
        f["seed"] = str(params.get("seed"))
    return f


def _order(c: Configuration) -> tuple:
    f = c.factors
    para = str(f.get("paraphrase", "0"))
    return (
        c.task,
        f.get("model", ""),
        f.get("variant", ""),
        int(para) if para.isdigit() else 0,
        para,
        str(f.get("seed", "")),
        c.name,
    )


def codebooks(extra: Codebook | None = None) -> dict[str, Codebook]:
    books = {t: load_codebook(t) for t in BUILTIN}
    if extra is not None:
        books[extra.task] = extra
    return books


def load_configurations(
    sources: list[Path], codebook: Codebook | None = None, skipped: list[tuple[str, str]] | None = None
) -> list[Configuration]:
    """Every configuration of every task that the sources hold. Unfinished runs (no metrics.json: killed
    or still running) found inside a folder are left out and named in `skipped`; a run folder given
    directly is always used. `skipped` collects (task, note) pairs."""
    books = codebooks(codebook)
    out: list[Configuration] = []
    for src in sources:
        if not src.exists():
            raise UserError(f"{src}: no such file or folder")
        if src.is_dir():
            runs = run_folders(src)
            if not runs:
                raise UserError(
                    f"{src}: no labelling run folder (config.json + predictions.jsonl) in or below it"
                )
            found: list[Configuration] = []
            for run in runs:
                if run != src and not (run / "metrics.json").is_file():
                    if skipped is not None:
                        task = str((_read_config(run) or {}).get("task") or "")
                        skipped.append((task, f"{run.name}: unfinished run (no metrics.json), left out"))
                    continue
                cfg = _read_config(run) or {}
                task = str(cfg.get("task") or (cfg.get("codebook") or {}).get("task") or "")
                cb = books.get(task)
                if cb is None and isinstance(cfg.get("codebook"), dict):
                    try:
                        cb = Codebook(**cfg["codebook"])
                        books[cb.task] = cb
                    except (TypeError, ValueError):
                        cb = None
                if cb is None:
                    raise UserError(f"{run}/config.json: unknown task {task!r} and no usable codebook")
                recs = load_labels(run, books).for_task(cb.task)
                if not recs:
                    raise UserError(f"{run}: no predictions for task {cb.task!r}")
                name = run.name if src == run else str(run.relative_to(src))
                found.append(
                    Configuration(
                        name, run, cb.task, _factors(cfg), {d: r.labels for d, r in recs.items()}, cb
                    )
                )
            out += sorted(found, key=_order)
        else:
            ls = load_labels(src, books)
            tasks = sorted({t for _, t in ls.records})
            for t in tasks:
                recs = ls.for_task(t)
                out.append(
                    Configuration(
                        src.stem,
                        src,
                        t,
                        {"model": src.stem, "variant": "-", "paraphrase": "0"},
                        {d: r.labels for d, r in recs.items()},
                        books[t],
                    )
                )
    seen: dict[tuple[str, str], int] = {}
    for c in out:  # unique names within a task
        seen[(c.task, c.name)] = seen.get((c.task, c.name), 0) + 1
    for c in out:
        if seen[(c.task, c.name)] > 1:
            c.name = str(c.source)
    return out


def group_column(data_source: Path | None, by: str, configs: list[Configuration] | None = None
                 ) -> dict[str, str]:
    """doi -> the value of column `by` (rows with an empty value left out): from the runs' own records
    (a corpus run keeps each item's columns) when they hold that column, else from the reports table
    (--data-dir, $LLMSCISCI_DATA, else the bundled one)."""
    from llmscisci.data.reports import load_reports
    from llmscisci.paths import bundled_data_dir

    own: dict[str, str] = {}
    columns: list[str] = []
    for c in configs or []:
        if Path(c.source).is_dir():
            values, seen = meta_column(Path(c.source), by)
            own |= values
            columns += [k for k in seen if k not in columns]
    if own:
        return own
    if data_source is None and columns:  # runs of one's own corpus: their columns, not the study's table
        raise UserError(f"--by {by!r}: not an item column of the runs (columns: {', '.join(columns)})")
    if data_source is None:
        data_source = bundled_data_dir()
    quiet = logging.getLogger("llmscisci.data")  # the reports' own quirks are not news here
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        df = load_reports(data_source)
    finally:
        quiet.setLevel(level)
    if by not in df.columns:
        raise UserError(f"--by {by!r}: not a column of the reports table (columns: {', '.join(df.columns)})")
    return {str(d).strip(): str(v).strip() for d, v in zip(df["doi"], df[by]) if str(v).strip()}


def gather(configs: list[Configuration], task: str, gold: Path, groups_of: dict[str, str] | None) -> Inputs:
    """The inputs of one task: configurations of that task, the shared corpus, the codes on it."""
    mine = [c for c in configs if c.task == task]
    if not mine:
        raise UserError(f"--task {task}: no configuration labels this task")
    cb = mine[0].codebook
    common = set(mine[0].labels)
    for c in mine[1:]:
        common &= set(c.labels)
    notes = []
    if groups_of is not None:
        outside = common - set(groups_of)
        if outside:
            notes.append(f"{len(outside)} items without a group value left out")
        common &= set(groups_of)
    order = [d for d in mine[0].labels if d in common]
    if len(order) < 4:
        raise UserError(f"task {task}: only {len(order)} items are labelled by every configuration")
    for c in mine:
        if len(c.labels) > len(order):
            notes.append(f"{c.name}: {len(c.labels) - len(order)} of its items are outside the shared corpus")
    g = load_gold(gold, cb, order)
    y = np.full((len(order), cb.n), np.nan)
    pos = {d: i for i, d in enumerate(order)}
    for d, v in g.labels.items():
        y[pos[d]] = v
    if g.outside:
        notes.append(
            f"{len(g.outside)} coded items of {gold} are outside the shared corpus and were left out"
        )
    n = len(g.labels)
    if g.pi is not None:
        pi = np.array([g.pi.get(d, 1.0) for d in order])
        design = "sampling probabilities recorded in the coded file"
    else:
        pi = None
        design = (
            f"no sampling probabilities in the coded file: a simple random sample ({n} of {len(order)}; "
            "within a group, n_g of N_g)"
        )
    groups = None if groups_of is None else np.array([groups_of[d] for d in order])
    return Inputs(task, cb, mine, order, groups, y, pi, design, n, notes)
