"""`ls.label(...)`: the Python face of `llmscisci label`. The same checks and runners (api/label_runs.py),
so the same input gives the same run folder (name, hash, labels) as the command line: the study's data
through the in-memory runner, a corpus (a file, a DataFrame, a list of dicts) through the streamed one."""

from __future__ import annotations

import inspect
from pathlib import Path

from llmscisci.api.inputs import codebooks_of, corpus_path
from llmscisci.api.options import backend_settings, batch_options, split_options
from llmscisci.api.options import encoding as use_encoding
from llmscisci.api.progress import show_progress
from llmscisci.api.label_runs import label_runs
from llmscisci.api.run import Run

DEFAULT_MODEL = "smollm2-135m"
# the options a resumed run takes from its config.json (given at another value than label()'s default:
# refused); their defaults are read from label()'s signature below
RESUMED = ("task", "model", "variant", "limit", "split", "shots", "max_new_tokens", "temperature", "seed",
           "calibrate")


def label(data=None, *, task="easy", model: str = DEFAULT_MODEL, variant: str = "structured",
          out: str | Path = "runs", limit: int | None = None, split: str = "all", shots: int = 0,
          data_dir: str | Path | None = None, id_column: str | None = None, text_column: str | None = None,
          text: str | None = None, by: str | None = None, chunk_size: int = 1000,
          max_new_tokens: int | None = None, temperature: float = 0.0, seed: int = 2025,
          progress: bool | None = None, encoding: str | None = None, calibrate: str | None = None,
          placebo: int | None = None, engine: str = "local", workers: int = 1, ray_address: str | None = None,
          resume: str | Path | None = None, dry_run: bool = False, **options):
    """Label texts with an LLM (or a saved classifier, `model="baseline:DIR"`) and return the `Run`.

    `data`: None (the study's data, or `data_dir`), a corpus file in any format, a pandas DataFrame or a
    list of dicts (`id_column`, `text_column`, `text` as `--id-column`, `--text-column`, `--text`).
    `task`: a built-in name, a codebook .toml file, a `Codebook`, or a list of them (then a list of Runs).
    Any backend option of the command line is a keyword (`base_url=`, `concurrency=`, `structured_mode=`,
    `no_cache=`, ...), and so is batch mode (`batch=True`, `batch_file=`, ...); `encoding` is the corpus
    file's when not UTF-8. `variant="score"` labels by likelihood (`calibrate=` a source of reference labels:
    "bundled", a data folder or a coded label file); `placebo=N` asks N items again with a neutral passage;
    `engine="ray"` (with `workers=`, `ray_address=`) labels a corpus on Ray. Calling again with the same
    arguments continues an interrupted run in its folder, and so does `resume=RUN_DIR` (the run's own
    configuration; another value of its options is refused). `dry_run=True` returns the plan (calls, the
    first prompt, tokens, cost or ETA; `.text` as the command prints it) and writes nothing."""
    with use_encoding(encoding):
        backend_opts, batch_kw, _ = split_options(options)
        settings = backend_settings(backend_opts)
        batch = batch_options(**batch_kw)
        given = {k: v for k, v in dict(task=task, model=model, variant=variant, limit=limit, split=split,
                                       shots=shots, max_new_tokens=max_new_tokens, temperature=temperature,
                                       seed=seed, calibrate=calibrate).items()
                 if v != DEFAULTS[k] and (k != "task" or isinstance(v, (str, Path)))}
        books = task if resume is not None and isinstance(task, str) else codebooks_of(task)
        done = label_runs(task=books, model=model, variant=variant, out_dir=out, limit=limit, split=split,
                          shots=shots, data_dir=data_dir, input_path=corpus_path(data, out), id_column=id_column,
                          text_column=text_column, text_template=text, by=by, chunk_size=chunk_size,
                          max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, calibrate=calibrate,
                          placebo=placebo, engine=engine, workers=workers, ray_address=ray_address, resume=resume,
                          dry_run=dry_run, opts=settings.options(), batch=batch, given=given,
                          progress=show_progress(progress))
    runs = [_returned(d) for d in done]
    return runs if isinstance(task, (list, tuple)) else runs[0]


def _returned(done):
    """What a call returns for one task: the Run, or a dry run's plan."""
    if done.plan is not None:
        return done.plan
    if done.pending is not None:  # batch_file: the request rows are written, nothing is scored yet
        from llmscisci.api.label_runs import pending_line
        from llmscisci.console import console

        console.print(pending_line(done.pending), markup=False, highlight=False)
        return Run(done.pending.run_dir)
    return Run(done.run.path)


DEFAULTS = {k: inspect.signature(label).parameters[k].default for k in RESUMED}
