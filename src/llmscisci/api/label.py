"""`ls.label(...)`: the Python face of `llmscisci label`. The same runners, with the same checks, so
the same input gives the same run folder (name, hash, labels) as the command line: the study's data
through the in-memory runner, a corpus (a file, a DataFrame, a list of dicts) through the streamed one."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.inputs import codebooks_of, corpus_path
from llmscisci.api.options import backend_settings, batch_options, load_run_backend, split_options
from llmscisci.api.options import encoding as use_encoding
from llmscisci.api.progress import show_progress
from llmscisci.api.run import Run
from llmscisci.errors import UserError

DEFAULT_MODEL = "smollm2-135m"
BASELINE_PREFIX = "baseline:"  # `model="baseline:DIR"`: a saved classifier labels instead of an LLM


def label(data=None, *, task="easy", model: str = DEFAULT_MODEL, variant: str = "structured",
          out: str | Path = "runs", limit: int | None = None, split: str = "all", shots: int = 0,
          data_dir: str | Path | None = None, id_column: str | None = None, text_column: str | None = None,
          text: str | None = None, by: str | None = None, chunk_size: int = 1000,
          max_new_tokens: int | None = None, temperature: float = 0.0, seed: int = 2025,
          progress: bool | None = None, encoding: str | None = None, calibrate: str | None = None,
          placebo: int | None = None, engine: str = "local", workers: int = 1, ray_address: str | None = None,
          **options):
    """Label texts with an LLM (or a saved classifier, `model="baseline:DIR"`) and return the `Run`.

    `data`: None (the study's data, or `data_dir`), a corpus file in any format, a pandas DataFrame or a
    list of dicts (`id_column`, `text_column`, `text` as `--id-column`, `--text-column`, `--text`).
    `task`: a built-in name, a codebook .toml file, a `Codebook`, or a list of them (then a list of Runs).
    Any backend option of the command line is a keyword (`base_url=`, `concurrency=`, `structured_mode=`,
    `no_cache=`, ...), and so is batch mode (`batch=True`, `batch_file=`, ...); `encoding` is the corpus
    file's when not UTF-8. `variant="score"` labels by likelihood (`calibrate=` a source of reference labels:
    "bundled", a data folder or a coded label file); `placebo=N` asks N items again with a neutral passage;
    `engine="ray"` (with `workers=`, `ray_address=`) labels a corpus on Ray. Calling again with the same
    arguments continues an interrupted run in its folder."""
    with use_encoding(encoding):
        return _label(data, task, model, variant, out, limit, split, shots, data_dir, id_column, text_column, text,
                      by, chunk_size, max_new_tokens, temperature, seed, progress, options,
                      extra=dict(calibrate=calibrate, placebo=placebo, engine=(engine, workers, ray_address)))


def _label(data, task, model, variant, out, limit, split, shots, data_dir, id_column, text_column, text, by,
           chunk_size, max_new_tokens, temperature, seed, progress, options, extra):
    from llmscisci.backends.base import GenParams
    from llmscisci.prompts.label import check_variant
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS

    backend_opts, batch_kw, _ = split_options(options)
    check_variant(variant)
    _check(limit, split, shots, max_new_tokens, temperature, chunk_size)
    settings = backend_settings(backend_opts)
    batch = batch_options(**batch_kw)
    _check_extra(model, variant, shots, batch, data, **extra)
    books = codebooks_of(task)
    if batch is not None and batch.file is not None and len(books) > 1:
        raise UserError("--batch-file writes one run's requests: give one task")
    if (id_column or text_column or text or by) and data is None:
        raise UserError("id_column, text_column, text and by apply to a corpus given as data")
    params = GenParams(max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(variant, 64),
                       temperature=temperature, seed=seed)
    path = corpus_path(data, out)
    shown = show_progress(progress)
    common = dict(model=model, variant=variant, params=params, opts=settings.options(), limit=limit, out=out,
                  batch=batch, progress=shown, calibrate=extra["calibrate"], placebo=extra["placebo"])
    if path is not None:
        if shots:
            raise UserError("--shots needs the study's data (--data-dir); with --input, label without examples")
        runs = [_label_corpus(cb, path, id_column=id_column, text_column=text_column, template=text, by=by,
                              chunk_size=chunk_size, engine=extra["engine"], **common) for cb in books]
    else:
        runs = _label_study(books, split=split, shots=shots, data_dir=data_dir, **common)
    return runs if isinstance(task, (list, tuple)) else runs[0]


def _check(limit, split, shots, max_new_tokens, temperature, chunk_size) -> None:
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    if split not in ("all", "train", "test"):
        raise UserError(f"unknown --split {split!r}: use all, train or test")
    if shots < 0:
        raise UserError(f"--shots {shots}: must be 0 or more")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    if temperature < 0:
        raise UserError(f"--temperature {temperature}: must be 0 or more")
    if chunk_size < 1:
        raise UserError(f"--chunk-size {chunk_size}: must be at least 1")


def _check_extra(model, variant, shots, batch, data, *, calibrate, placebo, engine) -> None:
    """The score variant's, the placebo check's and the engine's options, as the command checks them."""
    from llmscisci.prompts.label import is_scoring
    from llmscisci.tasks.label_ray import check_engine
    from llmscisci.tasks.placebo import check_placebo_options
    from llmscisci.tasks.score import check_score_options

    check_score_options(variant, model, shots, calibrate)
    check_engine(*engine)
    check_placebo_options(placebo, model, batch)
    if batch is not None and is_scoring(variant):
        raise UserError("--batch and --batch-file send generation requests; the score variant scores live")
    if engine[0] != "local" and data is None:
        raise UserError("--engine ray labels a corpus given as data")
    if engine[0] != "local" and (placebo or is_scoring(variant) or batch is not None
                                 or model.startswith(BASELINE_PREFIX)):
        raise UserError("--engine ray sends live generation requests: not with placebo, the score variant, "
                        "batch mode or a saved classifier")


def _placebo(run, backend, placebo) -> Run:
    if placebo:
        from llmscisci.tasks.placebo import run_placebo

        run_placebo(run, backend, placebo)
    return Run(run.path)


def _label_study(books, *, split, shots, data_dir, model, variant, params, opts, limit, out, batch,
                 progress, calibrate, placebo) -> list[Run]:
    from llmscisci.backends.batch import BatchPending
    from llmscisci.data.items import load_items
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.paths import data_label
    from llmscisci.tasks.label import LabelSpec, draw_shots, run_label, select_items

    source_dir = resolve_data_dir(data_dir)
    loaded = [(cb, load_items(cb, data_dir=source_dir)) for cb in books]
    for cb, items in loaded:  # split, limit and shots against the data, before the model loads
        select_items(items, split, limit)
        draw_shots(items, cb, variant, shots, params.seed)
    fitted = model.startswith(BASELINE_PREFIX)
    backend = None if fitted else load_run_backend(model, opts, batch)
    classifiers = [_labeller(model, opts, cb) for cb, _ in loaded] if fitted else []
    runs = []
    for i, (cb, items) in enumerate(loaded):
        spec = LabelSpec(codebook=cb, variant=variant, model=model, params=params, shots=shots, limit=limit,
                         split=split, data_source=data_label(source_dir), calibrate=calibrate)
        try:
            if fitted:
                from llmscisci.tasks.label_fitted import run_label_classifier

                runs.append(Run(run_label_classifier(spec, items, classifiers[i], out).path))
            else:
                runs.append(_placebo(run_label(spec, items, backend, out, show_progress=progress), backend, placebo))
        except BatchPending as exc:
            runs.append(_pending(exc))
    return runs


def _label_corpus(cb, path: Path, *, model, variant, params, opts, limit, out, batch, progress, id_column,
                  text_column, template, by, chunk_size, calibrate, placebo, engine) -> Run:
    from llmscisci.backends.batch import BatchPending
    from llmscisci.data.corpus import CorpusPlan
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_stream import run_label_stream

    corpus = CorpusPlan.open(path, cb, id_column=id_column, text_column=text_column, template=template)
    if by is not None:
        first = next(corpus.items())
        if by not in first.meta:
            raise UserError(f"--by {by!r}: no such metadata column in {path} (have: {', '.join(first.meta)})")
    if batch is not None:  # one provider batch over the whole corpus, not one per chunk
        if model.startswith(BASELINE_PREFIX):
            raise UserError("--batch and --batch-file are for LLMs, not a saved classifier")
        labeller = load_run_backend(model, opts, batch)
        chunk_size = max(chunk_size, corpus.n_items)
    elif engine[0] == "ray":  # the same run, its model calls on a pool of Ray actors
        from llmscisci.tasks.label_ray import RayPool

        labeller = RayPool(model, opts, workers=engine[1], address=engine[2])
    else:
        labeller = _labeller(model, opts, cb)
    spec = LabelSpec(codebook=cb, variant=variant, model=model, params=params, limit=limit, data_source=str(path),
                     calibrate=calibrate)
    try:
        run = run_label_stream(spec, corpus, labeller, out, chunk_size=chunk_size, by=by, show_progress=progress)
    except BatchPending as exc:
        return _pending(exc)
    finally:
        if engine[0] == "ray":
            labeller.close()
    return _placebo(run, labeller, placebo)


def _labeller(model: str, opts, codebook):
    """A saved classifier for `baseline:DIR` (checked against the codebook), else an LLM backend."""
    if model.startswith(BASELINE_PREFIX):
        from llmscisci.tasks.baseline_model import load_model

        clf = load_model(model[len(BASELINE_PREFIX):])
        clf.check_codebook(codebook)
        return clf
    from llmscisci.backends.registry import load_backend

    return load_backend(model, opts)


def _pending(exc) -> Run:
    """batch_file: the request rows are written and nothing is scored yet; the Run says so."""
    from llmscisci.console import console

    console.print(f"{exc}\nrun it (OpenAI batch upload or vllm run-batch), then: llmscisci batch import "
                  f"{exc.run_dir} RESULTS.jsonl", markup=False, highlight=False)
    return Run(exc.run_dir)
