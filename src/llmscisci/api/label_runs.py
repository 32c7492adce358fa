"""The one copy of labelling behind `llmscisci label` and `ls.label(...)`: the option checks (done before
anything heavy loads), `resume` (the run's configuration from its config.json, an option given with
another value refused), the plan of a dry run, and the runners: the study's data through the in-memory
runner, a corpus file through the streamed one, a saved classifier (`baseline:DIR`) or an LLM (live, in
batch mode, or on Ray). Each face turns the `Labelled` results into what it shows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmscisci.backends.registry import resolve_model
from llmscisci.errors import UserError

SPLITS = ("all", "train", "test")
# options a resumed run takes from its config.json: giving another value is an error, never ignored
RESUMED = {"task": "--task", "variant": "--variant", "model": "--model", "limit": "--limit", "split": "--split",
           "shots": "--shots", "max_new_tokens": "--max-new-tokens", "temperature": "--temperature",
           "seed": "--seed", "calibrate": "--calibrate"}


@dataclass
class Labelled:
    """One task's outcome: a finished run (`run`, `metrics`), request rows written for a batch file
    (`pending`, the BatchPending), or a dry run's `plan`. `streamed`: from a corpus file (`corpus`
describes it in a dry run's plan)."""

    task: str
    run: Any = None
    metrics: dict | None = None
    pending: Any = None
    plan: Any = None
    corpus: dict | None = None
    streamed: bool = False


def pending_line(exc) -> str:
    """What to do with a batch file's request rows (`exc`: the BatchPending)."""
    return (f"{exc}\nrun it (OpenAI batch upload or vllm run-batch), then: "
            f"llmscisci batch import {exc.run_dir} RESULTS.jsonl")


def check_label_options(limit, split, shots, max_new_tokens, temperature, input_path) -> None:
    """Range, enum and format checks, done before any data or model is loaded (one-line errors)."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    if split not in SPLITS:
        raise UserError(f"unknown --split {split!r}: use all, train or test")
    if shots < 0:
        raise UserError(f"--shots {shots}: must be 0 or more")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    if temperature < 0:
        raise UserError(f"--temperature {temperature}: must be 0 or more")
    if input_path is not None and not Path(input_path).exists():
        raise UserError(f"--input {input_path}: file not found")


def resume_conflicts(given: dict, cfg: dict) -> None:
    """A resumed run keeps its configuration: an option given (`given`: only those the user gave) with
    another value is an error."""
    source_book = cfg["codebook"].get("source", "builtin")
    stored = {"task": cfg["task"] if source_book == "builtin" else source_book, "variant": cfg["variant"],
              "model": cfg["model"], "limit": cfg.get("limit"), "split": cfg.get("split_filter", "all"),
              "shots": cfg.get("shots", 0), "calibrate": cfg.get("calibrate"),
              **{k: cfg["params"][k] for k in ("max_new_tokens", "temperature", "seed")}}
    if source_book != "builtin" and given.get("task"):  # a codebook file, however its path is spelled
        given = {**given, "task": str(Path(str(given["task"])).resolve())}
        stored["task"] = str(Path(source_book).resolve())
    for name, flag in RESUMED.items():
        if name in given and given[name] != stored[name]:
            raise UserError(f"--resume keeps the run's configuration: {flag} {given[name]} differs from the "
                            f"run's {stored[name]!r}; drop {flag} or start a new run")


def _check_first(o: dict) -> None:
    """Every check that needs no file read, in the command's order."""
    from llmscisci.prompts.label import check_variant, is_scoring
    from llmscisci.tasks.label_ray import check_engine
    from llmscisci.tasks.placebo import check_placebo_options
    from llmscisci.tasks.score import check_score_options

    check_variant(o["variant"])
    check_label_options(o["limit"], o["split"], o["shots"], o["max_new_tokens"], o["temperature"], o["input_path"])
    if o["resume"] is None:  # a resumed run's variant comes from its config.json (checked there)
        check_score_options(o["variant"], o["model"], o["shots"], o["calibrate"])
    check_engine(o["engine"], o["workers"], o["ray_address"])
    if o["engine"] != "local" and (o["placebo"] or is_scoring(o["variant"])):
        raise UserError("--engine ray sends generation requests: not with --placebo (run `llmscisci eval RUN "
                        "--placebo N` after the run) nor with the score variant")
    if callable(o["batch"]):  # the command's batch options, checked here (in the command's order)
        o["batch"] = o["batch"]()
    check_placebo_options(o["placebo"], o["model"], o["batch"])
    if o["resume"] is None and o["batch"] is not None and is_scoring(o["variant"]):
        raise UserError("--batch and --batch-file send generation requests; the score variant scores live")
    if o["chunk_size"] < 1:
        raise UserError(f"--chunk-size {o['chunk_size']}: must be at least 1")
    if not o["dry_run"]:  # every output path is checked before anything is loaded or sent
        from llmscisci.paths import check_output_path

        if o["resume"] is not None:
            check_output_path(o["resume"], "folder", "--resume")
        else:
            check_output_path(o["out_dir"], "folder")
    if (o["id_column"] or o["text_column"] or o["text_template"] or o["by"]) and o["input_path"] is None \
            and o["resume"] is None:
        raise UserError("--id-column, --text-column, --text and --by apply to --input")


def label_resumed(o: dict, given: dict) -> Labelled:
    """`resume`: continue the run folder through the label kind (its spec from its config.json; an option
    given with another value refused), or plan what is left of it (`dry_run`)."""
    from llmscisci.backends.batch import BatchPending
    from llmscisci.prompts.label import is_scoring
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.registry import get
    from llmscisci.tasks.score import check_score_options

    kind, resume = get("label"), o["resume"]
    cfg = kind.resumed_config(resume)
    if "codebook" not in cfg:
        raise UserError(f"--resume {resume}: not a labelling run (config.json has no codebook)")
    resume_conflicts(given, cfg)
    spec = LabelSpec.from_config(cfg)
    check_score_options(spec.variant, spec.model, spec.shots, spec.calibrate)
    batch, fitted = o["batch"], resolve_model(spec.model).is_baseline
    if batch is not None and is_scoring(spec.variant):
        raise UserError("--batch and --batch-file send generation requests; the score variant scores live")
    if fitted and batch is not None:
        raise UserError("--batch and --batch-file are for LLMs, not a saved classifier")
    where = None
    if o["input_path"] is not None:  # the corpus moved: where it is now, read as the command says
        where = {"path": o["input_path"], "id_column": o["id_column"], "text_column": o["text_column"],
                 "template": o["text_template"]}
    elif cfg.get("streamed"):
        from llmscisci.tasks.kinds.label import resumed_corpus

        where = resumed_corpus(cfg)
        if not Path(where["path"]).is_file():
            raise UserError(f"--resume {resume}: its corpus {where['path']} is gone (pass --input with where "
                            "it is now)")
    if where is None and o["engine"] != "local":
        raise UserError("--engine ray labels a corpus given with --input")
    corpus = None if where is None else _open_corpus(spec.codebook, where, o["by"])
    if corpus is not None:
        _describe(corpus, where["path"], o["say"])
    if o["dry_run"]:
        return _resumed_plan(spec, corpus, o)
    labeller = _labeller(spec.model, spec.codebook, o)
    try:
        run = kind.resume(resume, labeller, data_dir=o["data_dir"], corpus=corpus, by=o["by"],
                          chunk_size=o["chunk_size"], **_progress(o))
    except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
        return Labelled(spec.codebook.task, pending=exc, streamed=corpus is not None)
    finally:
        if o["engine"] == "ray":  # the Ray workers go with the run
            labeller.close()
    return _finished(spec.codebook.task, run, labeller, o["placebo"], streamed=corpus is not None)


def _labeller(model: str, codebook, o: dict):
    """What labels a corpus or continues a run: a saved classifier (`baseline:DIR`), or an LLM live, in
    batch mode (`o["batch"]`) or on a pool of Ray actors (`o["engine"]`)."""
    fitted = resolve_model(model).is_baseline  # with --batch: refused before (label_runs, label_resumed)
    if o["engine"] == "ray":  # the same run, its model calls on Ray actors (tasks/label_ray.py)
        if o["batch"] is not None or fitted:
            raise UserError("--engine ray is for live LLM calls, not --batch or a saved classifier")
        from llmscisci.tasks.label_ray import RayPool

        return RayPool(model, o["opts"], workers=o["workers"], address=o["ray_address"])
    if fitted:
        return labeller_for(model, o["opts"], codebook)
    from llmscisci.api.options import load_run_backend

    return load_run_backend(model, o["opts"], o["batch"])


def _open_corpus(codebook, where: dict, by):
    """The corpus a run labels (its one counting pass), `by` checked against its columns. `where`: its
    path and how to read it (id and text columns, text template)."""
    from llmscisci.data.corpus import CorpusPlan

    path = where["path"]
    corpus = CorpusPlan.open(path, codebook, id_column=where.get("id_column"), text_column=where.get("text_column"),
                             template=where.get("template"))
    if by is not None:
        first = next(corpus.items())
        if by not in first.meta:
            raise UserError(f"--by {by!r}: no such metadata column in {path} (have: {', '.join(first.meta)})")
    return corpus


def _describe(corpus, path, say) -> None:
    """The corpus at `path` (as given) in one line, for the person running the command (`say`)."""
    if say is not None:
        say(f"{path}: {corpus.source.describe}, {corpus.n_items:,} items, id column {corpus.id_column!r}, "
            f"text {corpus.text_spec!r}")


def _resumed_plan(spec, corpus, o: dict) -> Labelled:
    """A dry run of a resumed run: the plan of its items under its own configuration."""
    import itertools

    from llmscisci.tasks.label_plan import dry_run_items

    common = dict(model=spec.model, variant=spec.variant, params=spec.params, opts=o["opts"],
                  paraphrase=spec.paraphrase)
    if corpus is not None:
        items = corpus.items() if spec.limit is None else itertools.islice(corpus.items(), spec.limit)
        return Labelled(spec.codebook.task, plan=dry_run_items(spec.codebook, items, **common),
                        corpus=corpus.describe(), streamed=True)
    from llmscisci.data.items import load_items
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.tasks.label import select_items

    items = load_items(spec.codebook, data_dir=resolve_data_dir(o["data_dir"] or spec.data_source or None))
    return Labelled(spec.codebook.task, plan=dry_run_items(spec.codebook, select_items(items, spec.split, spec.limit),
                                                           **common))


def _codebooks(task) -> list:
    """A comma-separated task string (the command's `--task`) or a list of Codebooks (the API's)."""
    from llmscisci.data.codebook import load_codebook

    if isinstance(task, (list, tuple)):
        books = list(task)
    else:
        books = [load_codebook(t.strip()) for t in str(task).split(",") if t.strip()]
    if not books:
        raise UserError("--task is empty")
    return books


def label_runs(*, task, variant: str, model: str, opts, batch=None, limit: int | None = None, split: str = "all",
               shots: int = 0, data_dir=None, input_path=None, id_column=None, text_column=None,
               text_template=None, by=None, chunk_size: int = 1000, calibrate=None, dry_run: bool = False,
               placebo: int | None = None, out_dir="runs", resume=None, max_new_tokens=None,
               temperature: float = 0.0, seed: int = 2025, engine: str = "local", workers: int = 1,
               ray_address=None, given: dict | None = None, say: Callable[[str], None] | None = None,
               progress: bool | None = None) -> list[Labelled]:
    """Label (or plan, `dry_run`) every task; one `Labelled` per task, in order. `opts` are the backend
    options (BackendOptions), `batch` the BatchOptions, None, or a function giving them (called where the
command checks them); `given` holds the options the user gave
    (name -> value: a resumed run refuses another value); `say` shows a corpus's description line."""
    o = dict(locals())
    from llmscisci.backends.base import GenParams
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS

    o["paraphrase"] = 0
    _check_first(o)
    if resume is not None:
        return [label_resumed(o, given or {})]
    books, batch = _codebooks(o["task"]), o["batch"]
    if batch is not None and batch.file is not None and len(books) > 1:
        raise UserError("--batch-file writes one run's requests: give one --task")
    name = resolve_model(o["model"])
    fitted = name.is_baseline  # a saved classifier (`baseline --save DIR`), not an LLM
    if fitted and not name.model:
        raise UserError(f"--model {name.name}: name the saved classifier's folder (baseline:DIR)")
    if fitted and batch is not None:
        raise UserError("--batch and --batch-file are for LLMs, not a saved classifier")
    if fitted and o["shots"]:
        raise UserError("--shots is for language models: a saved classifier takes no examples")
    o["params"] = GenParams(max_new_tokens=o["max_new_tokens"] or DEFAULT_MAX_NEW_TOKENS.get(o["variant"], 64),
                            temperature=o["temperature"], seed=o["seed"])
    if o["input_path"] is not None:
        return [label_corpus(cb, o) for cb in books]
    if engine != "local":
        raise UserError("--engine ray labels a corpus given with --input")
    return label_study(books, o)


def labeller_for(model: str, opts, codebook):
    """A saved classifier for `baseline:DIR` (checked against the codebook), else an LLM backend."""
    name = resolve_model(model)
    if name.is_baseline:
        from llmscisci.tasks.baseline_model import load_model

        clf = load_model(name.model)
        clf.check_codebook(codebook)
        return clf
    from llmscisci.backends.registry import load_backend

    return load_backend(model, opts)


def _progress(o: dict) -> dict:
    return {} if o["progress"] is None else {"show_progress": o["progress"]}


def label_study(books: list, o: dict) -> list[Labelled]:
    """The study's data (bundled, or `data_dir`) through the label runner (its items as one chunk), one run
    per codebook."""
    from llmscisci.api.options import load_run_backend
    from llmscisci.backends.batch import BatchPending
    from llmscisci.data.items import load_items
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.paths import data_label
    from llmscisci.tasks.label import LabelSpec, draw_shots, run_label, select_items
    from llmscisci.tasks.label_plan import dry_run_items

    model, variant, params, opts = o["model"], o["variant"], o["params"], o["opts"]
    source_dir = resolve_data_dir(o["data_dir"])
    loaded = [(cb, load_items(cb, data_dir=source_dir)) for cb in books]
    for cb, items in loaded:  # --split/--limit/--shots against the data, before the model loads
        select_items(items, o["split"], o["limit"])
        draw_shots(items, cb, variant, o["shots"], o["seed"])
    if o["dry_run"]:
        return [Labelled(cb.task, plan=dry_run_items(cb, select_items(items, o["split"], o["limit"]), model=model,
                                                     variant=variant, params=params, opts=opts,
                                                     paraphrase=o["paraphrase"])) for cb, items in loaded]
    fitted = resolve_model(model).is_baseline
    backend = None if fitted else load_run_backend(model, opts, o["batch"])
    # every task's codebook checked against the classifier before any run is written
    classifiers = [labeller_for(model, opts, cb) for cb, _ in loaded] if fitted else []
    done = []
    for i, (cb, items) in enumerate(loaded):
        spec = LabelSpec(codebook=cb, variant=variant, model=model, params=params, shots=o["shots"],
                         limit=o["limit"], split=o["split"], data_source=data_label(source_dir),
                         paraphrase=o["paraphrase"], calibrate=o["calibrate"])
        try:
            if fitted:
                from llmscisci.tasks.label_fitted import run_label_classifier

                run = run_label_classifier(spec, items, classifiers[i], o["out_dir"])
            else:
                run = run_label(spec, items, backend, o["out_dir"], **_progress(o))
        except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
            done.append(Labelled(cb.task, pending=exc))
            continue
        done.append(_finished(cb.task, run, backend, o["placebo"]))
    return done


def _finished(task: str, run, backend, placebo, streamed: bool = False) -> Labelled:
    """A finished run with its metrics (the placebo check's, when asked); its warnings are in them."""
    if placebo:
        from llmscisci.tasks.placebo import run_placebo

        return Labelled(task, run=run, metrics=run_placebo(run, backend, placebo), streamed=streamed)
    return Labelled(task, run=run, metrics=run.metrics(), streamed=streamed)


def label_corpus(codebook, o: dict) -> Labelled:
    """Label (or plan) one codebook over the corpus file `o["input_path"]`, streamed in chunks."""
    from llmscisci.backends.batch import BatchPending
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_stream import run_label_stream

    if o["shots"]:
        raise UserError("--shots needs the study's data (--data-dir); with --input, label without examples")
    where = {"path": o["input_path"], "id_column": o["id_column"], "text_column": o["text_column"],
             "template": o["text_template"]}
    corpus = _open_corpus(codebook, where, o["by"])
    # a saved classifier is checked before the corpus is described, an LLM loads after
    fitted = resolve_model(o["model"]).is_baseline and not o["dry_run"]
    labeller = _labeller(o["model"], codebook, o) if fitted else None
    _describe(corpus, where["path"], o["say"])
    if o["dry_run"]:
        return Labelled(codebook.task, plan=_corpus_plan(codebook, corpus, o), corpus=corpus.describe(),
                        streamed=True)
    labeller = labeller or _labeller(o["model"], codebook, o)
    spec = LabelSpec(codebook=codebook, variant=o["variant"], model=o["model"], params=o["params"],
                     limit=o["limit"], data_source=str(o["input_path"]), paraphrase=o["paraphrase"],
                     calibrate=o["calibrate"])
    try:
        run = run_label_stream(spec, corpus, labeller, o["out_dir"], chunk_size=o["chunk_size"], by=o["by"],
                               **_progress(o))
    except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
        return Labelled(codebook.task, pending=exc, streamed=True)
    finally:
        if o["engine"] == "ray":  # the Ray workers go with the run
            labeller.close()
    return _finished(codebook.task, run, labeller, o["placebo"], streamed=True)


def _corpus_plan(codebook, corpus, o: dict):
    import itertools

    from llmscisci.tasks.label_plan import dry_run_items

    items = corpus.items() if o["limit"] is None else itertools.islice(corpus.items(), o["limit"])
    return dry_run_items(codebook, items, model=o["model"], variant=o["variant"], params=o["params"],
                         opts=o["opts"], paraphrase=o["paraphrase"])
