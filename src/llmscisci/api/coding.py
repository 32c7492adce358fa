"""The human coding round trip from Python, as `llmscisci code import|plan` do it: `ls.code_import` reads
a coded sheet or Label Studio export back into label files (one per coder), `ls.code_plan` says how many
items people must code for a target interval half-width, from a pilot coded sample."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmscisci.errors import UserError


# --- code import ---------------------------------------------------------------------------------
@dataclass
class CodedImport:
    """What `code import` read and wrote: `imported` (the ImportResult: records, skipped rows), `paths`
    (coder -> label file written), the export's `design` (its run folders), the codebook file (`book_file`,
    None for a built-in task) and whether the DOIs were checked against the reports (`checked`)."""

    imported: Any
    paths: dict
    design: dict = field(default_factory=dict)
    book_file: str | None = None
    checked: bool = False

    def rows(self) -> list[dict]:
        """Per coder: items, tasks, repaired codes and the label file."""
        out = []
        for c, p in self.paths.items():
            recs = [r for r in self.imported.records if r.coder == c]
            out.append({"coder": c, "items": len(recs), "tasks": ", ".join(sorted({r.task for r in recs})),
                        "repaired": sum(r.repaired for r in recs), "label_file": str(p)})
        return out


def _report_dois(source) -> list[str] | None:
    """The DOIs of the reports in `source` (None: none given), the loaders' own warnings silenced."""
    if source is None:
        return None
    if not Path(source).exists():
        raise UserError(f"--data-dir {source}: no such folder or file")
    import logging

    from llmscisci.data.reports import load_reports

    quiet = logging.getLogger("llmscisci.data")  # the reports' own quirks are not news here
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return list(load_reports(source)["doi"])
    finally:
        quiet.setLevel(level)


def import_codes(file, *, coder: str | None = None, task=None, out=None, data_dir=None,
                 force: bool = False) -> CodedImport:
    """Read a coded sheet (.csv) or a Label Studio export (.json) back, validate every code and write one
    label file per coder (`out`: default FILE.coded.jsonl; several coders: OUT-stem.CODER.jsonl). `task`
    for rows that name none (a name, a codebook file or a Codebook; default: the export's codebook
    file); DOIs are checked against the reports of `data_dir` (default $LLMSCISCI_DATA, else unchecked)."""
    from llmscisci.api.inputs import codebook_of
    from llmscisci.coding import import_coded, output_paths, sample_design, write_coded
    from llmscisci.data.codebook import check_codebook_file
    from llmscisci.paths import DATA_ENV

    file = Path(file)
    books, task_name, book_file = {}, None, None
    found = sample_design(file)  # the export's design file: the run(s) and the codebook file
    design = found[1] if found else {}
    if task:
        cb = codebook_of(task)
        books[cb.task], task_name = cb, cb.task
        book_file = cb.source if cb.source not in ("builtin", "python") else None
    elif design.get("codebook_file"):
        cb = check_codebook_file(design["codebook_file"], f"{file} (design {found[0]})")
        books[cb.task], book_file = cb, cb.source
    known = _report_dois(data_dir or (Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else None))
    imported = import_coded(file, coder=coder, task=task_name, known_dois=known, codebooks=books)
    paths = output_paths(imported, Path(out) if out is not None else None)
    write_coded(imported, paths, books, force)
    return CodedImport(imported, paths, design, book_file, known is not None)


def code_import(file, *, coder: str | None = None, task=None, out=None, data_dir=None, force: bool = False):
    """`llmscisci code import` from Python: a DataFrame, one row per coder (coder, items, tasks, repaired,
    label_file), the label files written; `.attrs["skipped"]`: rows left uncoded."""
    import pandas as pd

    done = import_codes(file, coder=coder, task=task, out=out, data_dir=data_dir, force=force)
    df = pd.DataFrame(done.rows())
    df.attrs["skipped"] = done.imported.skipped
    return df


# --- code plan -----------------------------------------------------------------------------------
@dataclass
class CodingPlan:
    """`code plan`'s result: `payload` (the JSON), `plans` (one CategoryPlan per category), the run read
    (`run`: codebook, items, config) and the pilot (`gold`)."""

    payload: dict
    plans: list
    run: Any
    gold: Any


def check_plan_options(halfwidth: float, design: str, level: float, assurance: float) -> None:
    from llmscisci.metrics.sample_size import DESIGNS

    if design not in DESIGNS:
        raise UserError(f"--design {design!r}: use one of {', '.join(DESIGNS)}")
    if not 0 < halfwidth < 1:
        raise UserError(f"--halfwidth {halfwidth}: give a share between 0 and 1 (0.05 = +-5 points)")
    if not 0 < level < 1:
        raise UserError(f"--level {level}: must be between 0 and 1 (e.g. 0.95)")
    if not 0.5 <= assurance < 1:
        raise UserError(f"--assurance {assurance}: must be in [0.5, 1)")


def _pi_for_n(run, preds: list, edition: str):
    """The stratified design's inclusion probabilities for a sample of n (strata: edition x predictions)."""
    from llmscisci.coding import stratified_probabilities, stratum_keys

    dois, editions = run.dois, None
    if run.items and all(str(run.items.get(d).meta.get(edition, "")).strip() if d in run.items else False
                         for d in dois):
        editions = [str(run.items[d].meta[edition]) for d in dois]
    strata = stratum_keys(preds, run.codebook, editions)
    return lambda n: stratified_probabilities(strata, n)


def plan_coding(run, pilot, *, halfwidth: float = 0.05, design: str = "stratified", level: float = 0.95,
                assurance: float = 0.9, edition: str = "mlrc_year", data_dir=None) -> CodingPlan:
    """The plan of `code plan` (see `code_plan`), with what it was drawn from."""
    import numpy as np

    from llmscisci.coding import load_gold, load_run
    from llmscisci.metrics.sample_size import plan_category, total_to_code
    from llmscisci.metrics.stats import as_prediction_matrix

    check_plan_options(halfwidth, design, level, assurance)
    run_dir = Path(getattr(run, "path", run))
    loaded = load_run(run_dir, data_dir, need_items=False, items_if_found=True)  # editions, when found
    cb, dois = loaded.codebook, loaded.dois
    pilot = Path(getattr(pilot, "path", pilot))
    g = load_gold(pilot, cb, dois)
    preds = [loaded.predictions[d] for d in dois]
    yhat = as_prediction_matrix(preds, cb.n).astype(float)
    valid = np.array([p is not None for p in preds])
    pos = {d: i for i, d in enumerate(dois)}
    idx = np.array([pos[d] for d in g.labels])
    y_pilot = np.array([g.labels[d] for d in g.labels], dtype=float)
    pi_for_n = _pi_for_n(loaded, preds, edition) if design == "stratified" else None
    plans = [plan_category(short, yhat[:, j], y_pilot[:, j], yhat[idx, j], halfwidth, design=design,
                           pi_for_n=pi_for_n, level=level, assurance=assurance, valid=valid)
             for j, short in enumerate(cb.shorts)]
    total = total_to_code(plans, len(dois))
    payload = {"kind": "code_plan", "run": str(run_dir), "pilot": str(pilot), "task": cb.task, "design": design,
               "halfwidth": halfwidth, "level": level, "assurance": assurance, "n_items": len(dois),
               "pilot_n": len(g.labels), "total": total, "all_reachable": all(p.reachable for p in plans),
               "categories": [p.to_dict() for p in plans]}
    return CodingPlan(payload, plans, loaded, g)


def code_plan(run, pilot, *, halfwidth: float = 0.05, design: str = "stratified", level: float = 0.95,
              assurance: float = 0.9, edition: str = "mlrc_year", data_dir=None) -> dict:
    """How many items people must code, in total, for every category's corrected prevalence interval to
    reach `halfwidth` (a share: 0.05 = +-5 points), from a pilot coded sample of the run's items
    (`design`: stratified, as `code export` draws, or random), as `llmscisci code plan --json` gives it:
    `total`, and per category the items needed, the planned, all-coded and naive half-widths."""
    return plan_coding(run, pilot, halfwidth=halfwidth, design=design, level=level, assurance=assurance,
                       edition=edition, data_dir=data_dir).payload
