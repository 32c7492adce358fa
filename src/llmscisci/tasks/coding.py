"""Human coding round trip: draw a sample of a label run's items for people to code, export it as a
CSV sheet (+ a sheet explaining every column) and as Label Studio tasks (+ a labelling config made from
the codebook), and import the coded sheet or a Label Studio export back as label files.

Sampling designs (every item's inclusion probability is known and recorded, so the prevalence
estimators stay valid whatever the design; see metrics/prevalence.py):

* ``random``        simple random sample of n items, pi = n / N.
* ``stratified``    strata = edition x the item's rarest predicted category (``invalid`` for an invalid
  output); square-root allocation (a stratum of size N_h gets about n sqrt(N_h) / sum sqrt(N_h') items,
  at most N_h), so rare predicted categories are coded more often than in proportion. Drawn by
  systematic sampling through the items sorted by stratum (random order within), which gives every
  stratum the floor or the ceiling of its allocation and every item exactly its pi.
* ``disagreement``  several run folders (models or prompt variants) label the same items; an item's
  disagreement is the share of its label positions the runs split on (Gini 4p(1-p), an invalid
  output counting as full disagreement). Items are drawn with probability proportional to
  FLOOR + disagreement (capped at 1: the most disputed items are certain to be drawn), by randomized
  systematic sampling. Every item keeps a chance to be drawn, so the sample still supports
  design-based estimates of the whole corpus.

The coder sheet never shows the model's labels or the stratum (they would anchor the coders); its
rows are shuffled. Imported codes go through the data layer's validator (one-line errors naming
file, row and column) and are stored as annotator-format JSONL (doi, task, labels, coder,
sampling_prob), one file per coder, which every command that reads label files accepts.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.items import Item, load_items
from llmscisci.data.labelfiles import load_labels
from llmscisci.data.problems import Collector
from llmscisci.data.reports import read_csv
from llmscisci.data.validate import LabelError, apply_none_rule, check_shape
from llmscisci.errors import DataError, UserError
from llmscisci.paths import DATA_ENV
from llmscisci.runs import RunFolder, atomic_write, versions, write_json

STRATEGIES = ("stratified", "disagreement", "random")
FLOOR = 0.1  # disagreement design: size measure FLOOR + disagreement (an agreed item still has a chance)
DEFAULT_SEED = 2025
INVALID = "invalid"
EXTRA_COLUMNS = ("coder", "notes", "sampling_prob")
LS_FROM_NAME = "labels"


# =================================================================================================
# label runs
# =================================================================================================
@dataclass
class LoadedRun:
    path: Path
    config: dict
    codebook: Codebook
    dois: list[str]  # items with a prediction, in the run's order
    predictions: dict[str, tuple[int, ...] | None]  # None: invalid output
    items: dict[str, Item] = field(default_factory=dict)  # texts and metadata, when the data are found

    @property
    def task(self) -> str:
        return self.codebook.task


def _data_source(cfg: dict, data_dir: str | Path | None) -> Path | None:
    """--data-dir, else the run's recorded data source, else $LLMSCISCI_DATA.

    A run on the user's own CSV (its data source a file) looks for that file in a --data-dir folder,
    never for the study's reports table."""
    src = cfg.get("data_source")
    if data_dir is not None:
        given = Path(data_dir)
        if not given.exists():
            raise UserError(f"--data-dir {data_dir}: no such folder or file")
        if given.is_dir() and src and Path(src).suffix.lower() in (".csv", ".tsv", ".txt"):
            own = given / Path(src).name
            if not own.is_file():
                raise UserError(f"--data-dir {data_dir}: the run labelled the CSV file {Path(src).name}, which is "
                                "not in this folder; give the CSV itself or its folder")
            return own
        return given
    if src and Path(src).exists():
        return Path(src)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env and Path(env).is_dir() else None


def load_run(run_dir: str | Path, data_dir: str | Path | None = None, *, need_items: bool = True) -> LoadedRun:
    """A labelling run folder: its codebook, its predictions and (from its data source, or `data_dir`)
    the items' texts and metadata."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder")
    cfg = RunFolder(path).config
    if "codebook" not in cfg:
        raise UserError(f"{path}: config.json has no codebook; not a labelling run")
    try:
        codebook = Codebook(**cfg["codebook"])
    except (TypeError, ValueError) as exc:  # a hand-edited config (pydantic's errors are ValueErrors)
        raise UserError(f"{path}/config.json: bad codebook ({str(exc).splitlines()[0]})") from None
    if not (path / "predictions.jsonl").is_file():
        raise UserError(f"{path}: no predictions.jsonl (has the run started?)")
    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    labels = load_labels(path, books)
    recs = labels.for_task(codebook.task)
    if not recs:
        raise UserError(f"{path}: no predictions for task {codebook.task!r}")
    run = LoadedRun(path, cfg, codebook, list(recs), {d: r.labels for d, r in recs.items()})
    if not need_items and data_dir is None:
        return run  # the predictions are enough (prevalence without --by): no texts to load
    source = _data_source(cfg, data_dir)
    if source is None:
        if need_items:
            raise UserError(f"{path}: its data source {cfg.get('data_source')!r} is not found; pass --data-dir")
        return run
    if cfg.get("streamed"):  # a corpus run (`label --input`): read the corpus as that run did
        from llmscisci.data.corpus import load_corpus_items

        inp, text = cfg.get("input") or {}, (cfg.get("items") or {}).get("text") or None
        items = load_corpus_items(source, codebook, id_column=inp.get("id_column"),
                                  text_column=None if text and "{" in text else text,
                                  template=text if text and "{" in text else None)
    elif source.is_file():
        items = load_items(codebook, input_csv=source)
    else:
        items = load_items(codebook, data_dir=source)
    by_doi = {it.doi: it for it in items}
    missing = [d for d in run.dois if d not in by_doi]
    if missing and need_items:
        raise UserError(f"{path}: {len(missing)} predicted items (e.g. {missing[0]}) are not in the data source "
                        f"{source}; pass the right --data-dir")
    run.items = {d: by_doi[d] for d in run.dois if d in by_doi}
    return run


# =================================================================================================
# sampling designs (pure functions of arrays)
# =================================================================================================
def pps_probabilities(sizes: Sequence[float], n: int) -> np.ndarray:
    """Inclusion probabilities proportional to `sizes` for a sample of n, capped at 1 (the capped items
    are certain; the rest share the remainder in proportion). They sum to n."""
    s = np.asarray(sizes, dtype=float)
    if (s <= 0).any() or not np.isfinite(s).all():
        raise ValueError("sizes must be positive and finite")
    if not 0 <= n <= s.size:
        raise ValueError(f"sample size {n} outside 0..{s.size}")
    pi = np.zeros(s.size)
    certain = np.zeros(s.size, dtype=bool)
    while True:
        rest = ~certain
        left = n - certain.sum()
        pi[certain] = 1.0
        pi[rest] = left * s[rest] / s[rest].sum() if rest.any() else 0.0
        over = rest & (pi >= 1.0)
        if not over.any():
            return np.minimum(pi, 1.0)
        certain |= over


def systematic_sample(pi: Sequence[float], order: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Systematic sampling with unequal probabilities (Madow): walk the items in `order`, laying their
    pi end to end, and take the items hit by u, u+1, ..., u+n-1 (u uniform in [0, 1)). Each item is
    drawn with probability exactly pi_i (pi_i <= 1) and the sample has exactly n = sum(pi) items."""
    p = np.asarray(pi, dtype=float)[np.asarray(order)]
    n = int(np.rint(p.sum()))
    if abs(p.sum() - n) > 1e-6:
        raise ValueError(f"inclusion probabilities must sum to a whole number, got {p.sum()}")
    cum = np.cumsum(p)
    cum[-1] = n  # remove rounding drift
    points = rng.uniform() + np.arange(n)
    hit = np.searchsorted(cum, points, side="right")
    picked = np.asarray(order)[hit]
    if np.unique(picked).size != n:  # only possible through floating-point ties at a boundary
        raise RuntimeError("systematic sampling drew an item twice; try another seed")
    return picked


def stratum_keys(predictions: Sequence[tuple[int, ...] | None], codebook: Codebook,
                 editions: Sequence[str] | None = None) -> list[str]:
    """Stratum per item: its edition (when given) x its rarest predicted category (by the corpus's
    predicted counts; ties in codebook order), `invalid` for an invalid output."""
    counts = np.zeros(codebook.n)
    for v in predictions:
        if v is not None:
            counts += np.asarray(v)
    keys = []
    for i, v in enumerate(predictions):
        if v is None or not any(v):
            cat = INVALID
        else:
            on = [j for j in range(codebook.n) if v[j]]
            cat = codebook.shorts[min(on, key=lambda j: (counts[j], j))]
        keys.append(f"{editions[i]}/{cat}" if editions is not None and str(editions[i]) else cat)
    return keys


def stratified_probabilities(strata: Sequence[str], n: int) -> np.ndarray:
    """Square-root allocation: each stratum's expected sample size is proportional to sqrt(N_h)
    (capped at N_h); within a stratum every item has the same probability."""
    keys = [str(s) for s in strata]
    weight = {s: 1.0 / np.sqrt(c) for s, c in Counter(keys).items()}
    return pps_probabilities([weight[s] for s in keys], n)


def disagreement(vectors: Sequence[tuple[int, ...] | None]) -> float:
    """How much K runs disagree on one item, in [0, 1]: the mean over label positions of 4p(1-p) (p the
    share of runs saying 1) among valid outputs, an invalid output counting as full disagreement."""
    k = len(vectors)
    if k < 2:
        return 0.0
    valid = [v for v in vectors if v is not None]
    gini = 0.0
    if valid:
        p = np.mean(np.asarray(valid, dtype=float), axis=0)
        gini = float(np.mean(4 * p * (1 - p)))
    return ((k - len(valid)) + len(valid) * gini) / k


# =================================================================================================
# export
# =================================================================================================
@dataclass(frozen=True)
class SampleRow:
    doi: str
    task: str
    text: str
    meta: dict
    pi: float
    stratum: str
    disagreement: float | None = None


@dataclass
class Sample:
    codebook: Codebook
    rows: list[SampleRow]  # shuffled: the order the coders see
    design: dict


def draw_sample(runs: Sequence[LoadedRun], n: int, strategy: str = "stratified", seed: int = DEFAULT_SEED,
                edition: str = "mlrc_year") -> Sample:
    """Draw n items of the first run for human coding (see the module docstring for the designs)."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if not runs:
        raise UserError("give at least one label run folder")
    if strategy == "disagreement" and len(runs) < 2:
        raise UserError("--strategy disagreement needs two or more run folders (models or prompt variants "
                        "that labelled the same items)")
    if strategy != "disagreement" and len(runs) > 1:
        raise UserError(f"--strategy {strategy} samples one run; give several run folders only with "
                        "--strategy disagreement")
    first = runs[0]
    for r in runs[1:]:
        if r.task != first.task:
            raise UserError(f"{r.path}: task {r.task!r} differs from {first.path}'s {first.task!r}")
    dois = [d for d in first.dois if d in first.items]
    big_n = len(dois)
    if not 1 <= n <= big_n:
        raise UserError(f"--n {n}: choose between 1 and the run's {big_n} items")
    rng = np.random.default_rng(seed)
    preds = [first.predictions[d] for d in dois]
    editions = None
    if all(str(first.items[d].meta.get(edition, "")).strip() for d in dois):
        editions = [str(first.items[d].meta[edition]) for d in dois]
    dis = None
    if strategy == "random":
        strata = ["all"] * big_n
        pi = np.full(big_n, n / big_n)
        picked = np.sort(rng.choice(big_n, size=n, replace=False))
    elif strategy == "stratified":
        strata = stratum_keys(preds, first.codebook, editions)
        pi = stratified_probabilities(strata, n)
        perm = rng.permutation(big_n)
        order = sorted(perm, key=lambda i: strata[i])  # stable: random within each stratum
        picked = systematic_sample(pi, order, rng)
    else:
        dis = np.array([disagreement([r.predictions[d] for r in runs if d in r.predictions]) for d in dois])
        strata = ["all"] * big_n
        pi = pps_probabilities(FLOOR + dis, n)
        picked = systematic_sample(pi, rng.permutation(big_n), rng)
    shown = rng.permutation(picked)
    rows = [SampleRow(dois[i], first.task, first.items[dois[i]].text, dict(first.items[dois[i]].meta),
                      float(pi[i]), strata[i], None if dis is None else float(dis[i])) for i in shown]
    sizes = Counter(strata)
    drawn = Counter(strata[i] for i in picked)
    expected: dict[str, float] = {}
    for i, s in enumerate(strata):
        expected[s] = expected.get(s, 0.0) + float(pi[i])
    design = {
        "tool": "llmscisci code export",
        "strategy": strategy,
        "seed": seed,
        "task": first.task,
        "n": n,
        "N": big_n,
        "runs": [str(r.path) for r in runs],
        "run_hashes": [r.config.get("hash") for r in runs],
        "edition_column": edition if editions is not None else None,
        "floor": FLOOR if strategy == "disagreement" else None,
        "strata": {s: {"N": sizes[s], "expected": round(expected[s], 6), "drawn": drawn.get(s, 0)}
                   for s in sorted(sizes)},
        "items": [{"doi": r.doi, "task": r.task, "sampling_prob": r.pi, "stratum": r.stratum,
                   "disagreement": r.disagreement} for r in rows],
        "versions": versions(),
    }
    return Sample(first.codebook, rows, design)


def _meta_columns(rows: Sequence[SampleRow]) -> list[str]:
    cols = []
    for key in ("mlrc_year",):
        if any(str(r.meta.get(key, "")).strip() for r in rows):
            cols.append(key)
    return cols


def sheet_csv(sample: Sample) -> str:
    """The coder sheet: doi, task, (edition), text, one empty 0/1 column per category, coder, notes,
    sampling_prob."""
    cb = sample.codebook
    meta = _meta_columns(sample.rows)
    header = ["doi", "task", *meta, "text", *cb.shorts, *EXTRA_COLUMNS]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in sample.rows:
        w.writerow([r.doi, r.task, *[r.meta.get(m, "") for m in meta], r.text, *[""] * cb.n, "", "",
                    f"{r.pi:.10g}"])
    return buf.getvalue()


def codebook_csv(codebook: Codebook, meta_columns: Sequence[str] = ("mlrc_year",)) -> str:
    """The second sheet: what every column of the coder sheet means, with the codebook's descriptions."""
    rows = [("doi", "the report's DOI", "identifies the item; do not edit", ""),
            ("task", "the labelling task", f"{codebook.task}: {codebook.title}; do not edit", "")]
    if "mlrc_year" in meta_columns:
        rows.append(("mlrc_year", "challenge edition", "do not edit", ""))
    rows.append(("text", "the text to code", codebook.question or codebook.title, ""))
    for c in codebook.categories:
        rule = "1 if the text names this, else 0 (an empty cell in a coded row counts as 0)"
        if c.short == codebook.none:
            rule = "1 only when no other category applies (exclusive); else 0"
        rows.append((c.short, c.name, f"{c.description} {rule}".strip(), "; ".join(c.keywords)))
    rows += [("coder", "your name or initials", ("the same in every row you code; leave a row's category "
                                                "cells all empty to skip it"), ""),
             ("notes", "optional", "anything unclear about this item", ""),
             ("sampling_prob", "the item's probability of being drawn into the sample",
              "do not edit: the prevalence estimators weight by it", "")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["column", "meaning", "description", "keywords"])
    w.writerows(rows)
    return buf.getvalue()


def labelstudio_tasks(sample: Sample) -> list[dict]:
    """Label Studio's JSON import format: one task per item, the text in data.text."""
    out = []
    for r in sample.rows:
        data = {"text": r.text, "doi": r.doi, "task": r.task, "sampling_prob": r.pi}
        data |= {m: r.meta[m] for m in _meta_columns(sample.rows) if m in r.meta}
        out.append({"data": data})
    return out


def labelstudio_config(codebook: Codebook) -> str:
    """A Label Studio labelling config: the text and one multiple-choice question with a choice per
    category (shown by name, stored by short name through `alias`, description as hint)."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="$doi")
    ET.SubElement(view, "Text", name="text", value="$text")
    ET.SubElement(view, "Header", value=codebook.question or codebook.title or codebook.task, size="5")
    choices = ET.SubElement(view, "Choices", name=LS_FROM_NAME, toName="text", choice="multiple",
                            showInline="false", required="true",
                            requiredMessage="Choose every category the text names (or the exclusive none).")
    for c in codebook.categories:
        hint = c.description + (" (exclusive: only when no other applies)" if c.short == codebook.none else "")
        ET.SubElement(choices, "Choice", value=c.name, alias=c.short, hint=hint)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def export_paths(out: str | Path) -> dict[str, Path]:
    p = Path(out)
    if p.suffix.lower() != ".csv":
        raise UserError(f"--out {p}: give a .csv file name (the other files are named after it)")
    stem = p.with_suffix("")
    return {"sheet": p, "codebook": Path(f"{stem}.codebook.csv"), "labelstudio": Path(f"{stem}.labelstudio.json"),
            "labelstudio_config": Path(f"{stem}.labelstudio.xml"), "design": Path(f"{stem}.design.json")}


def check_export_target(out: str | Path, force: bool = False) -> dict[str, Path]:
    """Validate the output names before anything is drawn or written."""
    paths = export_paths(out)
    folder = paths["sheet"].parent
    if not folder.is_dir():
        raise UserError(f"--out {paths['sheet']}: folder {folder} does not exist")
    if not force:
        there = [p for p in paths.values() if p.exists()]
        if there:
            raise UserError(f"{there[0]} exists (it may hold someone's codes); choose another --out or pass --force")
    return paths


def write_export(sample: Sample, out: str | Path, force: bool = False) -> dict[str, Path]:
    """Write the coder sheet (UTF-8 with BOM, so spreadsheet programs read it right), the codebook sheet,
    the Label Studio tasks and config, and the design (every item's sampling probability)."""
    paths = check_export_target(out, force)
    bom = "\ufeff"
    atomic_write(paths["sheet"], bom + sheet_csv(sample))
    atomic_write(paths["codebook"], bom + codebook_csv(sample.codebook, _meta_columns(sample.rows)))
    atomic_write(paths["labelstudio"], json.dumps(labelstudio_tasks(sample), ensure_ascii=False, indent=1) + "\n")
    atomic_write(paths["labelstudio_config"], labelstudio_config(sample.codebook))
    write_json(paths["design"], sample.design)
    return paths


# =================================================================================================
# import
# =================================================================================================
@dataclass(frozen=True)
class CodedRecord:
    doi: str
    task: str
    labels: tuple[int, ...]
    coder: str
    sampling_prob: float | None
    row: int
    repaired: bool = False

    def to_json(self, codebook: Codebook) -> dict:
        rec = {"doi": self.doi, "task": self.task, "labels": list(self.labels),
               "label_names": codebook.names_of(self.labels), "coder": self.coder}
        if self.sampling_prob is not None:
            rec["sampling_prob"] = self.sampling_prob
        return rec


@dataclass
class Imported:
    path: Path
    records: list[CodedRecord]
    skipped: int  # items left uncoded
    problems: Collector

    def coders(self) -> list[str]:
        return list(dict.fromkeys(r.coder for r in self.records))


class _Builder:
    """Turns raw codes into validated records, reporting problems against the input file."""

    def __init__(self, path: Path, books: dict[str, Codebook], known: set[str] | None, col: Collector):
        self.path, self.books, self.known, self.col = path, books, known, col
        self.records: list[CodedRecord] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.skipped = 0

    def book(self, task: str, row: int, column: str = "task") -> Codebook | None:
        if task not in self.books:
            self.col.error(self.path, f"unknown task {task!r} (known: {', '.join(self.books)})", row=row,
                           column=column)
            return None
        return self.books[task]

    def prob(self, raw, row: int, column: str = "sampling_prob") -> float | None:
        if raw is None or str(raw).strip() == "":
            return None
        try:
            p = float(raw)
        except (TypeError, ValueError):
            p = float("nan")
        if not 0 < p <= 1:
            self.col.error(self.path, f"sampling probability {raw!r} is not in (0, 1]", row=row, column=column)
            return None
        return p

    def add(self, doi: str, task: str, vector: list[int], coder: str, prob: float | None, row: int,
            column: str) -> None:
        if not doi:
            self.col.error(self.path, "empty DOI", row=row, column="doi")
            return
        if self.known is not None and doi not in self.known:
            self.col.error(self.path, f"unknown DOI {doi} (not in the reports)", row=row, column="doi")
            return
        book = self.books[task]
        try:
            vec = check_shape(vector, book.n)
        except LabelError as exc:
            self.col.error(self.path, f"bad label vector for task {task!r}: {exc}", row=row, column=column)
            return
        checked = apply_none_rule(vec, book.none_index)
        if checked.repaired:
            self.col.warning(self.path, f"codes {book.names_of(vec) or 'all 0'} break the exclusive-none rule; "
                                        f"stored as {book.names_of(checked.labels)}", row, column)
        key = (doi, task, coder)
        if key in self.seen:
            self.col.error(self.path, f"duplicate item {doi} / {task} for coder {coder!r}", row=row, column="doi")
            return
        self.seen.add(key)
        self.records.append(CodedRecord(doi, task, checked.labels, coder, prob, row, checked.repaired))


_CODE = {"": None, "0": 0, "1": 1, "0.0": 0, "1.0": 1}


def _read_sheet(path: Path):
    df = read_csv(path)
    if len(df.columns) == 1 and ";" in df.columns[0]:  # a spreadsheet saved with semicolons
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", sep=";")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_coded_csv(path: Path, books: dict[str, Codebook], coder: str, known: set[str] | None,
                   task: str | None, col: Collector) -> _Builder:
    df = _read_sheet(path)
    b = _Builder(path, books, known, col)
    if "doi" not in df.columns:
        raise DataError(path, "missing column (the coder sheet's identifier)", column="doi")
    if "task" not in df.columns and task is None:
        raise DataError(path, "missing column (or pass --task)", column="task")
    needed = [books[task]] if task else [books[t] for t in {str(x).strip() for x in df["task"]} if t in books]
    for cb in needed:
        for s in cb.shorts:
            if s not in df.columns:
                raise DataError(path, f"missing category column of task {cb.task!r}", column=s)
    for i, r in enumerate(df.to_dict("records"), start=1):
        t = str(r.get("task") or task or "").strip() if "task" in df.columns else task
        cb = b.book(t, i)
        if cb is None:
            continue
        values = []
        for s in cb.shorts:
            cell = str(r.get(s, "")).strip()
            if cell not in _CODE:
                col.error(path, f"bad code {cell!r}: use 1, 0 or leave empty", row=i, column=s)
                values = None
                break
            values.append(_CODE[cell])
        if values is None:
            continue
        if all(v is None for v in values):
            b.skipped += 1
            continue
        who = str(r.get("coder", "")).strip() or coder
        b.add(str(r["doi"]).strip(), t, [v or 0 for v in values], who, b.prob(r.get("sampling_prob"), i), i,
              cb.none or cb.shorts[0])
    return b


def _choices_of(result) -> list[str] | None:
    """The choices of a Label Studio annotation result list (None when it holds no choices)."""
    found = None
    for res in result or []:
        if not isinstance(res, dict):
            continue
        val = res.get("value") or {}
        if isinstance(val, dict) and "choices" in val and (
                res.get("from_name", LS_FROM_NAME) == LS_FROM_NAME or found is None):
            found = list(val["choices"])
    return found


def _coder_of(ann: dict, default: str) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or f"user{who.get('id')}")
    if ann.get("created_username"):
        return str(ann["created_username"]).split(",")[0].strip()
    if who is not None:
        return f"user{who}"
    return default


def read_labelstudio(path: Path, books: dict[str, Codebook], coder: str, known: set[str] | None,
                     task: str | None, col: Collector) -> _Builder:
    """Label Studio's JSON export (tasks with `annotations`) or JSON-MIN (one flat record per annotation)."""
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a JSON file ({exc})") from None
    if not isinstance(data, list):
        raise DataError(path, "expected a list of tasks (Label Studio's JSON or JSON-MIN export)")
    b = _Builder(path, books, known, col)

    def one(i: int, fields: dict, choices, who: str, column: str) -> None:
        t = str(fields.get("task") or task or "").strip()
        if not t:
            col.error(path, "no task in the task data (or pass --task)", row=i, column="task")
            return
        cb = b.book(t, i)
        if cb is None:
            return
        if isinstance(choices, str):
            choices = [choices]
        if not choices:
            b.skipped += 1
            return
        lookup = {s.lower(): s for s in cb.shorts} | {c.name.lower(): c.short for c in cb.categories}
        vec = [0] * cb.n
        for c in choices:
            short = lookup.get(str(c).strip().lower())
            if short is None:
                col.error(path, f"unknown choice {c!r} for task {t!r} (known: {', '.join(cb.shorts)})", row=i,
                          column=column)
                return
            vec[cb.index(short)] = 1
        b.add(str(fields.get("doi") or "").strip(), t, vec, who, b.prob(fields.get("sampling_prob"), i), i,
              column)

    for i, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            col.error(path, "a task must be a JSON object", row=i)
            continue
        if "annotations" in entry or "data" in entry:
            fields = entry.get("data") or {}
            anns = [a for a in entry.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
            if not anns:
                b.skipped += 1
                continue
            for j, ann in enumerate(anns):
                one(i, fields, _choices_of(ann.get("result")), _coder_of(ann, coder), f"annotations[{j}]")
        else:  # JSON-MIN
            raw = entry.get(LS_FROM_NAME)
            if isinstance(raw, dict):
                raw = raw.get("choices")
            one(i, entry, raw, str(entry.get("annotator") or coder), LS_FROM_NAME)
    return b


def import_coded(path: str | Path, *, coder: str | None = None, task: str | None = None,
                 known_dois: Sequence[str] | None = None, codebooks: dict[str, Codebook] | None = None,
                 collector: Collector | None = None) -> Imported:
    """Read a coded sheet (.csv) or a Label Studio export (.json) and validate every code.
    Raises DataError (file, row, column) at the first error unless given a non-strict collector."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    books = {t: load_codebook(t) for t in BUILTIN} | dict(codebooks or {})
    if task is not None and task not in books:
        raise UserError(f"--task {task!r}: unknown (known: {', '.join(books)})")
    col = collector or Collector(strict=True)
    known = set(known_dois) if known_dois is not None else None
    who = coder or re.sub(r"\.(csv|json)$", "", p.name)
    suffix = p.suffix.lower()
    if suffix == ".json":
        b = read_labelstudio(p, books, who, known, task, col)
    elif suffix in (".csv", ".txt"):
        b = read_coded_csv(p, books, who, known, task, col)
    else:
        raise UserError(f"{p}: unsupported file type {p.suffix!r}: give the coded .csv sheet or a Label Studio "
                        ".json export")
    if not b.records and not col.errors:
        raise DataError(p, f"no coded item ({b.skipped} rows left uncoded)")
    return Imported(p, b.records, b.skipped, col)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "coder"


def output_paths(imported: Imported, out: str | Path | None = None) -> dict[str, Path]:
    """One label file per coder: OUT (or FILE.coded.jsonl) for one coder, OUT-stem.CODER.jsonl for several."""
    base = Path(out) if out is not None else imported.path.with_name(
        re.sub(r"\.(csv|json|txt)$", "", imported.path.name, flags=re.IGNORECASE) + ".coded.jsonl")
    if base.suffix != ".jsonl":
        raise UserError(f"--out {base}: give a .jsonl file name")
    coders = imported.coders()
    if len(coders) == 1:
        return {coders[0]: base}
    stem = base.with_suffix("")
    paths = {c: Path(f"{stem}.{slug(c)}.jsonl") for c in coders}
    if len(set(paths.values())) != len(paths):
        raise UserError(f"coder names {coders} collide as file names")
    return paths


def write_coded(imported: Imported, paths: dict[str, Path], codebooks: dict[str, Codebook] | None = None,
                force: bool = False) -> dict[str, Path]:
    """Write each coder's records as annotator-format JSONL (atomic), then read each file back with the
    data layer's label loader to prove it is usable everywhere a label file is."""
    books = {t: load_codebook(t) for t in BUILTIN} | dict(codebooks or {})
    for c, p in paths.items():
        if not p.parent.is_dir():
            raise UserError(f"{p}: folder {p.parent} does not exist")
        if p.exists() and not force:
            raise UserError(f"{p} exists; choose another --out or pass --force")
    for c, p in paths.items():
        lines = [json.dumps(r.to_json(books[r.task]), ensure_ascii=False) for r in imported.records if r.coder == c]
        atomic_write(p, "\n".join(lines) + "\n")
        load_labels(p, books)
    return paths


# =================================================================================================
# gold codes for the prevalence estimators
# =================================================================================================
@dataclass
class Gold:
    path: Path
    labels: dict[str, tuple[int, ...]]  # doi -> human codes (this task)
    pi: dict[str, float] | None  # doi -> sampling probability, when the file records the design
    outside: list[str]  # coded DOIs that are not among the run's items


def load_gold(path: str | Path, codebook: Codebook, run_dois: Sequence[str]) -> Gold:
    """Human codes for one task from any label file (a coded sheet's import, reference.csv, ...), with
    the sampling probabilities an imported sample records."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"--gold {p}: no such file")
    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    labels = load_labels(p, books).labels(codebook.task)
    if not labels:
        raise UserError(f"--gold {p}: no codes for task {codebook.task!r}")
    inside = set(run_dois)
    outside = [d for d in labels if d not in inside]
    labels = {d: v for d, v in labels.items() if d in inside}
    if not labels:
        raise UserError(f"--gold {p}: none of its {len(outside)} coded items is among the run's items")
    pi = None
    src = p / "predictions.jsonl" if p.is_dir() else p
    if src.suffix == ".jsonl":
        probs: dict[str, float] = {}
        rows: dict[str, int] = {}
        for i, line in enumerate(src.read_text("utf-8").splitlines(), start=1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("task") == codebook.task and str(rec.get("doi", "")).strip() in labels:
                doi = str(rec["doi"]).strip()
                rows[doi] = i
                if rec.get("sampling_prob") is not None:
                    try:
                        v = float(rec["sampling_prob"])
                    except (TypeError, ValueError):
                        v = float("nan")
                    if not 0 < v <= 1:
                        raise DataError(src, f"sampling probability {rec['sampling_prob']!r} is not in (0, 1]",
                                        row=i, column="sampling_prob")
                    probs[doi] = v
        if probs:
            lacking = [d for d in labels if d not in probs]
            if lacking:
                raise DataError(src, "sampling_prob missing while other items have one", row=rows.get(lacking[0]),
                                column="sampling_prob")
            pi = probs
    return Gold(p, labels, pi, outside)

