"""The Python face of `llmscisci batch`: the provider batches a run folder records in batches.json.
`batch_status` reads them, `batch_collect` waits for them and finishes the run, `batch_import` finishes
a `batch_file` run from a results file, `batch_cancel` cancels the batches still running. Collecting and
importing continue the run through its task kind (api/resume.py), as the command does. `run_dir` is a run
folder or a `Run`."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.options import backend_settings
from llmscisci.api.progress import show_progress
from llmscisci.api.run import Run

STATUS_FIELDS = ("id", "attempt", "status", "state", "counts", "collected")


def batch_status(run_dir: str | Path) -> dict:
    """The run's batches and their requests' states, as `llmscisci batch status --json` prints them:
    `backend`, `mode` (submit | file), `file` (a request file's path, rows, model), `summary` (requests,
    `by_state`) and `batches` (id, attempt, status, state, counts, collected, requests). Reads batches.json
    only (takes no lock: safe while another process collects)."""
    from llmscisci.backends.batch.state import read_state

    run_dir = _folder(run_dir)
    data = read_state(run_dir)
    batches = [{k: b.get(k) for k in STATUS_FIELDS} | {"requests": len(b.get("ids", []))}
               for b in data.get("batches", [])]
    return {"run_dir": str(run_dir), "backend": data.get("backend"), "mode": data.get("mode"),
            "file": data.get("file"), "summary": data.get("summary") or {}, "batches": batches}


def batch_collect(run_dir: str | Path, *, poll_interval: float = 60.0, batch_attempts: int = 2,
                  batch_fallback: str = "none", base_url: str | None = None, cache: str | Path | None = None,
                  no_cache: bool = False, prices: str | Path | None = None, progress: bool | None = None) -> Run:
    """Wait for the run's submitted batches, collect their results and finish the run folder (as `llmscisci
    batch collect`); returns the `Run`. Failed or expired rows are resubmitted up to `batch_attempts`
    submissions; `batch_fallback="live"` asks what is still failing as live requests. `base_url` defaults
    to the one the run recorded."""
    from llmscisci.backends.batch import BatchOptions

    opts = BatchOptions(poll_interval=poll_interval, attempts=batch_attempts, fallback=batch_fallback)
    opts.check()
    backend = dict(cache=cache, no_cache=no_cache, prices=prices, base_url=base_url)
    return _continued(_folder(run_dir), opts, backend, progress)


def batch_import(run_dir: str | Path, results: str | Path, *, cache: str | Path | None = None,
                 no_cache: bool = False, prices: str | Path | None = None, progress: bool | None = None) -> Run:
    """Finish a run made with `batch_file=` from the results file its requests got (OpenAI batch output
    JSONL, as OpenAI or vllm run-batch write it), as `llmscisci batch import`; returns the `Run`. A row whose
    id the run did not ask is an error, and nothing is imported then."""
    from llmscisci.backends.batch import BatchOptions
    from llmscisci.backends.batch.files import read_results
    from llmscisci.backends.batch.state import read_state

    run_dir = _folder(run_dir)
    state = read_state(run_dir)
    rows = read_results(Path(results), set(state.get("requests", {})))
    model = (state.get("file") or {}).get("model")
    opts = BatchOptions(imported=rows, import_source=str(results), file_model=model)
    return _continued(run_dir, opts, dict(cache=cache, no_cache=no_cache, prices=prices), progress)


def batch_cancel(run_dir: str | Path, *, base_url: str | None = None) -> list[dict]:
    """Cancel the run's batches that are still running (rows already done stay collectable: `batch_collect`
    then gets them); returns the batches cancelled (`id`, `requests`), an empty list when none was open."""
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.batch import BatchOptions, make_batch_backend
    from llmscisci.backends.batch.state import BatchState, read_state

    run_dir = _folder(run_dir)
    data = read_state(run_dir)
    st = BatchState.load(run_dir)
    open_ = st.open_batches()
    if not open_:
        return []
    be = make_batch_backend(data["backend"], BackendOptions(base_url=base_url or data.get("base_url"),
                                                            use_cache=False), BatchOptions())
    for b in open_:
        be.provider.cancel(b["id"])
        b["status"] = "cancelling"
    st.save()
    return [{"id": b["id"], "requests": len(b["ids"])} for b in open_]


def _folder(run_dir):
    """A run folder as given, or a `Run`'s."""
    return getattr(run_dir, "path", run_dir)


def _continued(run_dir, batch, backend: dict, progress: bool | None) -> Run:
    """Continue the run folder through its task kind in batch mode (its answers from its batches)."""
    from llmscisci.api.resume import resume_batch
    from llmscisci.backends.batch.state import read_state

    state = read_state(run_dir)
    backend["base_url"] = backend.get("base_url") or state.get("base_url")
    settings = backend_settings(backend)
    _, run = resume_batch(run_dir, settings.options(), batch, progress=show_progress(progress))
    return Run(run.path)
