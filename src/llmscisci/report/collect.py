"""Find and read what a report shows: labelling run folders, grids of them, training output folders,
agreement tables and other run folders (extraction, judge), below one directory.

* labelling run: config.json (kind "label", or predictions with reference/labels vectors) +
  predictions.jsonl (+ metrics.json); a classical baseline (kind "baseline") is one too: its
  out-of-fold cross-validation predictions on all items, its train-split fit on the test split;
* training folder: train_log.jsonl (one JSON per logging step) + train_config.json;
* agreement table: a `*agree*.json` file (a list of rows, or tables keyed by name), or any JSON
  shaped like `llmscisci agree --json` output;
* other run: config.json + metrics.json of another kind (its numbers are shown flat);
* grid: a folder with grid.json and run folders below it; the cells' order follows grid.json.

A folder identified as a run is not searched further (checkpoints inside training folders carry
their own config.json). Runs whose config has a `paraphrase` key (an index or name of the prompt
wording) are grouped by (task, model, variant) for the prompt-sensitivity summary.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from llmscisci.errors import UserError
from llmscisci.records import LabelPrediction
from llmscisci.runs import read_jsonl

PARAPHRASE_KEYS = ("paraphrase", "paraphrase_id", "paraphrase_index")
# run kinds read as labelling runs (predictions with label vectors); the task registry declares each kind
# here (tasks/registry.py), so this layer needs no import of the tasks. A folder without a kind is an old
# labelling run; any other declared kind is shown flat from its metrics.json.
LABEL_KINDS = {"label", "baseline"}
# run kind -> a sentence the report's results add when they show runs of that kind (declared likewise)
KIND_NOTES: dict[str, str] = {}


def declare_kind(name: str, *, label_like: bool, note: str = "") -> None:
    """How a run kind's folders are read: as labelling runs or as other runs; `note`: what the report
    says of them."""
    (LABEL_KINDS.add if label_like else LABEL_KINDS.discard)(name)
    if note:
        KIND_NOTES[name] = note
    else:
        KIND_NOTES.pop(name, None)
SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules"}
MAX_DEPTH = 8


def _read_json(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _model_name(model) -> str:
    if isinstance(model, dict):
        model = (model.get("name") or model.get("model") or model.get("path")
                 or json.dumps(model, sort_keys=True))
    s = str(model or "?")
    if s.startswith(("/", "./", "../", "~")) or Path(s).is_dir():  # a local (e.g. trained) model folder
        return Path(s).name or s
    return s


@dataclass
class LabelRun:
    path: Path
    config: dict
    records: list[LabelPrediction]  # one per item, the latest attempt
    metrics: dict
    shorts: list[str]
    name: str = ""  # display name, unique within a task (model / variant [/ paraphrase])
    rel: str = ""  # folder relative to the report's root
    original_wording_only: bool = False  # set when no run of the collection used a paraphrase
    # per-split records that replace `records` on that split: a baseline's test split is scored from
    # its fit on the train split, its other items from out-of-fold cross-validation
    split_records: dict[str, list[LabelPrediction]] = field(default_factory=dict)
    bad_lines: int = 0  # unreadable prediction lines skipped (only with --skip-bad-lines)

    @property
    def planned(self) -> int | None:
        """Items the run set out to label (config.json), when recorded."""
        items, limit = self.config.get("items"), self.config.get("limit")
        if isinstance(items, dict) and isinstance(items.get("n"), int):  # a streamed corpus run
            return min(items["n"], limit) if isinstance(limit, int) else items["n"]
        return len(items) if isinstance(items, list) and items else None

    @property
    def partial(self) -> bool:
        return self.planned is not None and len(self.records) < self.planned

    @property
    def task(self) -> str:
        return str(self.config.get("task") or (self.records[0].task if self.records else "?"))

    @property
    def variant(self) -> str:
        return str(self.config.get("variant") or "-")

    @property
    def model(self) -> str:
        return _model_name(self.config.get("model"))

    @property
    def paraphrase(self) -> str | None:
        if self.original_wording_only:
            return None
        for key in PARAPHRASE_KEYS:
            if self.config.get(key) is not None:
                return str(self.config[key])
        return None

    @property
    def cell(self) -> tuple[str, str, str | None]:
        return (self.model, self.variant, self.paraphrase)

    def scored(self, split: str | None = None) -> list[LabelPrediction]:
        """Records that can be scored (a reference vector), optionally on one split only."""
        out = []
        for r in self.split_records.get(split, self.records) if split is not None else self.records:
            if r.reference is None:
                continue
            if split is not None and r.split != split:
                continue
            out.append(r)
        return out


@dataclass
class TrainRun:
    path: Path
    log: list[dict]
    config: dict
    metrics: dict
    name: str = ""

    @property
    def method(self) -> str:
        for key in ("method", "kind", "trainer", "algorithm"):
            v = self.config.get(key)
            if isinstance(v, str) and v:
                return v.upper() if len(v) <= 5 else v
        keys = {k for rec in self.log for k in rec}
        if any(k.startswith("rewards/chosen") for k in keys):
            return "DPO"
        if "kl" in keys or any(k.startswith("reward") for k in keys):
            return "GRPO"
        return "SFT"


@dataclass
class OtherRun:
    path: Path
    config: dict
    metrics: dict
    name: str = ""

    @property
    def kind(self) -> str:
        return str(self.config.get("kind") or "run")


@dataclass
class JsonTable:
    path: Path
    name: str
    data: object


@dataclass
class Collection:
    root: Path
    label_runs: list[LabelRun] = field(default_factory=list)
    train_runs: list[TrainRun] = field(default_factory=list)
    other_runs: list[OtherRun] = field(default_factory=list)
    agreement: list[JsonTable] = field(default_factory=list)
    robustness: list[JsonTable] = field(default_factory=list)  # `llmscisci robustness --json-out` files
    grid: dict | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.label_runs or self.train_runs or self.other_runs or self.agreement or self.robustness)

    @property
    def tasks(self) -> list[str]:
        seen: list[str] = []
        for r in self.label_runs:
            if r.task not in seen:
                seen.append(r.task)
        return seen


def _shorts(config: dict, records: list[dict], task: str) -> list[str]:
    cb = config.get("codebook")
    if isinstance(cb, dict) and isinstance(cb.get("shorts"), list) and cb["shorts"]:
        return [str(s) for s in cb["shorts"]]
    if isinstance(cb, dict) and isinstance(cb.get("categories"), list) and cb["categories"]:
        cats = cb["categories"]  # a codebook as config.json records it (a user's own, too)
        if all(isinstance(c, dict) and c.get("short") for c in cats):
            return [str(c["short"]) for c in cats]
    try:
        from llmscisci.data.codebook import BUILTIN, load_codebook

        if task in BUILTIN:
            return list(load_codebook(task).shorts)
    except Exception:  # noqa: BLE001 - fall back to positional names below
        pass
    vectors = (v for r in records for v in (r.get("reference"), r.get("labels")) if isinstance(v, list))
    n = next((len(v) for v in vectors), 0)
    return [f"label_{i + 1}" for i in range(n)]


def _is_label_records(records: list[dict]) -> bool:
    return any(isinstance(r.get("reference"), list) or isinstance(r.get("labels"), list) for r in records)


def _fitting(rec: dict, n: int) -> LabelPrediction | None:
    """A prediction line as a record the report can score: a valid LabelPrediction whose label and
    reference vectors (where present) have the codebook's length; None for any other line."""
    try:
        p = LabelPrediction.model_validate(rec)
    except ValidationError as exc:
        if any(e["loc"] and e["loc"][0] in ("labels", "reference") for e in exc.errors()):
            return None
        p = LabelPrediction.model_construct(**rec)  # an odd field elsewhere: the vectors still score
    return p if all(v is None or len(v) == n for v in (p.reference, p.labels)) else None


def _load_label_run(path: Path, config: dict, skip_bad: bool = False) -> LabelRun | None:
    lines = read_jsonl(path / "predictions.jsonl", skip_bad=skip_bad)
    by_key = {LabelPrediction.line_key(r): r for r in lines}  # last wins
    records = list(by_key.values())
    if not records or ("kind" not in config and not _is_label_records(records)):
        return None  # an old folder without a declared kind is a labelling run only if its records are
    task = str(config.get("task") or records[0].get("task") or "?")
    shorts = _shorts(config, records, task)
    n = len(shorts)
    clean = [p for p in (_fitting(r, n) for r in records) if p is not None]
    metrics = _read_json(path / "metrics.json") or {}
    run = LabelRun(path, config, clean, metrics if isinstance(metrics, dict) else {}, shorts,
                   bad_lines=lines.bad_lines)
    canonical = path / "canonical_predictions.jsonl"
    if canonical.is_file():  # a baseline's train-split fit, scored on the test split
        run.split_records["test"] = [p for p in map(LabelPrediction.read, read_jsonl(canonical))
                                     if isinstance(p.labels, list) and len(p.labels) == n]
    return run


def _load_train_run(path: Path) -> TrainRun:
    log = [r for r in read_jsonl(path / "train_log.jsonl") if isinstance(r, dict)]
    cfg = _read_json(path / "train_config.json")
    metrics = _read_json(path / "metrics.json")
    return TrainRun(path, log, cfg if isinstance(cfg, dict) else {},
                    metrics if isinstance(metrics, dict) else {})


KNOWN_JSON = {"config.json", "metrics.json", "grid.json", "train_config.json", "tokenizer.json",
              "tokenizer_config.json", "adapter_config.json", "generation_config.json",
              "special_tokens_map.json", "trainer_state.json"}


def _looks_like_agreement(data) -> bool:
    """`llmscisci agree --json` output: {"tasks": {task: {"pairs": [...], "per_label": [...]}}} or one such
    report."""
    if not isinstance(data, dict):
        return False
    if "pairs" in data and "per_label" in data:
        return True
    tasks = data.get("tasks")
    return isinstance(tasks, dict) and any(isinstance(v, dict) and "pairs" in v for v in tasks.values())


def _agreement_data(p: Path):
    """The JSON of an agreement table file: named *agree*.json, or any other small JSON shaped like one."""
    if p.suffix != ".json" or p.name in KNOWN_JSON:
        return None
    named = "agree" in p.name.lower()
    try:
        if not named and p.stat().st_size > 5_000_000:
            return None
    except OSError:
        return None
    data = _read_json(p)
    if data is None:
        return False if named else None  # False: named like one but unreadable
    return data if named or _looks_like_agreement(data) else None


def _robustness_data(p: Path):
    """The JSON of a `llmscisci robustness` file ({"kind": "robustness", "tasks": {...}}), else None."""
    if p.suffix != ".json" or p.name in KNOWN_JSON:
        return None
    try:
        if p.stat().st_size > 50_000_000:
            return None
    except OSError:
        return None
    data = _read_json(p)
    ok = isinstance(data, dict) and data.get("kind") == "robustness" and isinstance(data.get("tasks"), dict)
    return data if ok else None


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return path.name
    return str(rel) if str(rel) != "." else (root.name or str(root))


def collect(root: str | Path, *, exclude: Path | None = None, skip_bad: bool = False) -> Collection:
    """Read every run below `root` (a run folder, a grid folder, or any folder of runs).

    A predictions file with an unreadable line other than a torn last one is an error unless
    `skip_bad` (then the lines are skipped and counted per run)."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if root.is_file():
        raise UserError(f"{root} is a file; give the run or grid folder that holds it")
    out = Collection(root=root)
    grid = _read_json(root / "grid.json")
    out.grid = grid if isinstance(grid, dict) else None
    excl = exclude.resolve() if exclude is not None else None

    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        depth = len(d.relative_to(root).parts)
        dirnames[:] = sorted(
            n for n in dirnames
            if n not in SKIP_DIRS and not n.startswith(".") and (excl is None or (d / n).resolve() != excl)
        )
        if depth >= MAX_DEPTH:
            dirnames[:] = []
        files = set(filenames)
        for fn in sorted(files):
            rob = _robustness_data(d / fn)
            if rob is not None:
                out.robustness.append(JsonTable(d / fn, _rel(d / fn, root), rob))
                continue
            data = _agreement_data(d / fn)
            if data is False:
                out.skipped.append(f"{_rel(d / fn, root)}: not valid JSON")
            elif data is not None:
                out.agreement.append(JsonTable(d / fn, _rel(d / fn, root), data))
        if "train_log.jsonl" in files:
            tr = _load_train_run(d)
            tr.name = _rel(d, root)
            if tr.log:
                out.train_runs.append(tr)
            else:
                out.skipped.append(f"{tr.name}: empty train_log.jsonl")
            dirnames[:] = []
            continue
        if "config.json" not in files:
            continue
        config = _read_json(d / "config.json")
        if not isinstance(config, dict):
            continue  # not ours (or unreadable): keep looking below
        if "predictions.jsonl" in files and config.get("kind", "label") in LABEL_KINDS:
            run = _load_label_run(d, config, skip_bad)
            if run is not None:
                run.rel = run.name = _rel(d, root)
                out.label_runs.append(run)
                dirnames[:] = []
                continue
        if "metrics.json" in files and ("kind" in config or "hash" in config):
            metrics = _read_json(d / "metrics.json")
            if isinstance(metrics, dict):
                out.other_runs.append(OtherRun(d, config, metrics, _rel(d, root)))
                dirnames[:] = []
                continue
        if "kind" in config or "hash" in config:
            out.skipped.append(f"{_rel(d, root)}: run folder without results yet")
            dirnames[:] = []

    _order(out)
    return out


def _grid_order(grid: dict | None) -> list[str]:
    if not grid:
        return []
    cells = grid.get("cells")
    if not isinstance(cells, list):
        return []
    order = []
    for c in cells:
        if isinstance(c, str):
            order.append(c)
        elif isinstance(c, dict):
            for key in ("dir", "path", "folder", "out", "run_dir", "name"):
                if isinstance(c.get(key), str):
                    order.append(c[key])
                    break
    return order


def _order(col: Collection) -> None:
    order = _grid_order(col.grid)

    def grid_pos(run: LabelRun) -> int:
        for i, key in enumerate(order):
            k = key.rstrip("/")
            if run.rel == k or run.rel.endswith("/" + k) or Path(k).name == run.path.name:
                return i
        return len(order)

    # every labelling run records its wording (0 = the original); a column of zeros says nothing
    if all(r.paraphrase in (None, "0") for r in col.label_runs):
        for r in col.label_runs:
            r.original_wording_only = True
    builtin = ("easy", "difficult")
    task_order: dict[str, tuple[int, int, int]] = {}  # grid order, else easy, difficult, others as found
    for i, r in enumerate(col.label_runs):
        key = (grid_pos(r), builtin.index(r.task) if r.task in builtin else len(builtin), i)
        task_order[r.task] = min(task_order.get(r.task, key), key)
    col.label_runs.sort(key=lambda r: (task_order[r.task], grid_pos(r), r.model, r.variant,
                                       r.paraphrase or "", r.name))
    # unique display names: model / variant [/ paraphrase], the folder when those collide
    seen: dict[tuple, int] = {}
    for r in col.label_runs:
        key = (r.task, *r.cell)
        seen[key] = seen.get(key, 0) + 1
    for r in col.label_runs:
        if seen[(r.task, *r.cell)] > 1:
            r.name = f"{r.model} / {r.variant} ({r.rel})"
        else:
            r.name = f"{r.model} / {r.variant}" + (f" / p{r.paraphrase}" if r.paraphrase is not None else "")
    col.train_runs.sort(key=lambda t: t.name)
    col.other_runs.sort(key=lambda o: (o.kind, o.name))
