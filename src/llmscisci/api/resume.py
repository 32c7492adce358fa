"""Continuing a run folder from its config.json alone, as `llmscisci batch collect` and `batch import` do:
the run's task kind (registry) rebuilds its spec and inputs and continues it with the backend its model
names (live, or in batch mode: then the answers come from the batches the folder records)."""

from __future__ import annotations

from pathlib import Path

from llmscisci.errors import UserError


def resume_batch(run_dir: str | Path, opts, batch=None, *, progress: bool = True):
    """(the run's task kind, the continued RunFolder); `opts` the backend options (BackendOptions), `batch`
    the BatchOptions (None: live)."""
    from llmscisci.api.options import load_run_backend
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.registry import of_run

    kind = of_run(RunFolder(run_dir).config)
    if not kind.can_resume():
        raise UserError(f"{run_dir}: a {kind.name} run is not continued from its folder; run it again")
    cfg = kind.resumed_config(run_dir)
    backend = load_run_backend(cfg["model"], opts, batch)
    return kind, kind.resume(run_dir, backend, show_progress=progress)
