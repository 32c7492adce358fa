"""The labelling task: items + codebook + prompt variant -> backend -> parsed labels -> a run folder.

`run_label` labels the study's items (a list in memory), `tasks/label_stream.py`'s `run_label_stream` a
corpus read in chunks; both are entry points to the one runner (tasks/label_runner.py), which appends
predictions item by item as the backend returns them, so a killed run resumes where it stopped
(re-running the same configuration into the same --out folder, or --resume RUN_DIR). `reevaluate`
(`llmscisci eval`) recomputes any labelling run's metrics with the same finisher (tasks/finish.py).
"""

from __future__ import annotations

from pathlib import Path

from llmscisci.backends.base import Backend
from llmscisci.data.codebook import Codebook
from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.prompts import label as prompts
from llmscisci.runs import Records, RunFolder, iter_jsonl
from llmscisci.tasks.finish import completeness, finish_run, planned_items  # noqa: F401 - re-exported
from llmscisci.tasks.label_runner import run_labelling
from llmscisci.tasks.label_source import ItemList
from llmscisci.tasks.label_spec import (  # noqa: F401 - re-exported: the spec and records of a labelling run
    DEFAULT_MAX_NEW_TOKENS, LabelSpec, check_scoring, check_spec, draw_shots, empty_record, is_empty, prediction_record,
    select_items)
from llmscisci.tasks.parse import is_exact_format, parse_answer


def run_label(
    spec: LabelSpec,
    items: list[Item],
    backend: Backend,
    out: str | Path,
    run_dir: str | Path | None = None,
    show_progress: bool = True,
) -> RunFolder:
    """Label `items` (already loaded; `spec.split` and `spec.limit` select them) with `backend`; write (or
    resume) the run folder; return it. The items go to the backend as one chunk."""
    check_spec(spec, backend)  # before the items are selected, as always
    return run_labelling(spec, ItemList(spec, items), backend, out, run_dir, show_progress=show_progress)


def reevaluate(run_dir: str | Path, reparse: bool = False, skip_bad: bool = False) -> dict:
    """Recompute a labelling run's metrics from its predictions (optionally re-parsing raw output).
    `llmscisci eval` reaches it through the task registry, which picks the runner by the run's kind.

    An unreadable predictions line other than a torn last one is an error unless `skip_bad`."""
    run = RunFolder(run_dir)
    cfg = run.config
    with run.writing():
        return _reevaluate(run, cfg, reparse, skip_bad)


def _reevaluate(run: RunFolder, cfg: dict, reparse: bool, skip_bad: bool) -> dict:
    run_dir = run.path
    checked = Records()  # refuse a damaged file before anything is rewritten (one pass, bounded memory)
    for _ in iter_jsonl(run.predictions_path, skip_bad=skip_bad, into=checked):
        pass
    if "codebook" not in cfg:
        raise UserError(f"{run_dir}: config.json has no codebook; not a labelling-style run")
    codebook = Codebook(**cfg["codebook"])
    if reparse and prompts.is_scoring(cfg.get("variant", "guidelines")):
        reparse = False  # labels come from log-odds, not from text: nothing to parse again
    if reparse:
        variant = cfg.get("variant", "guidelines")
        run.rewrite_predictions([_reparsed(p, codebook, variant) for p in run.predictions(skip_bad=skip_bad)])
    # the one finisher, as at the end of the run (a corpus run without references: its bounded-memory pass,
    # which skips unreadable lines: `checked` says how many)
    return finish_run(run, codebook, skip_bad=skip_bad, bad_lines=checked.bad_lines)


def _reparsed(rec, codebook: Codebook, variant: str):
    """`rec` with its raw answer parsed again (a record whose call failed or whose text was empty as it is)."""
    if rec.error or rec.empty:
        return rec
    parsed = parse_answer(rec.raw or "", codebook)
    return rec.model_copy(update={"labels": list(parsed.labels) if parsed.labels is not None else None,
                                  "valid": parsed.valid, "repaired": parsed.repaired,
                                  "exact_format": is_exact_format(rec.raw or "", codebook, variant)})
