"""`llmscisci label --input CORPUS`: a researcher's own corpus, streamed; `--dry-run` plans; `baseline:DIR`
labels with a saved classifier instead of an LLM."""

from __future__ import annotations

from pathlib import Path

from llmscisci.cli.common import console
from llmscisci.cli.dryrun import BASELINE_PREFIX, emit_text, plan_conversations  # noqa: F401 - emit_text re-exported


def load_labeller(model: str, opts, codebook):
    """A saved classifier for `baseline:DIR` (checked against the codebook), else an LLM backend."""
    if model.startswith(BASELINE_PREFIX):
        from llmscisci.tasks.baseline_model import load_model

        clf = load_model(model[len(BASELINE_PREFIX):])
        clf.check_codebook(codebook)
        return clf
    from llmscisci.backends.registry import load_backend

    return load_backend(model, opts)


def _messages(items, codebook, variant, paraphrase):
    from llmscisci.prompts.label import build_messages, is_scoring, item_score_messages

    for it in items:
        if not it.text.strip():
            yield None
        elif is_scoring(variant):  # one yes/no question per category: one call each
            yield from item_score_messages(it.text, codebook, variant, paraphrase)
        else:
            yield build_messages(it.text, codebook, variant, [], paraphrase)


def dry_run_items(codebook, items, *, model, variant, params, opts, shots=0, paraphrase=0):
    """The plan for labelling `items` (an iterable), its text in `plan.text`; nothing is sent or written."""
    from llmscisci.prompts.label import is_scoring, is_structured, label_schema, score_categories

    schema = label_schema(codebook) if is_structured(variant) else None
    if not is_scoring(variant):
        return plan_conversations(model, _messages(items, codebook, variant, paraphrase), params, opts, schema)
    from dataclasses import replace

    k = len(score_categories(codebook))
    plan = plan_conversations(model, _messages(items, codebook, variant, paraphrase), replace(params, max_new_tokens=1),
                              opts, None, what=f"yes/no questions ({k} per item, one forward pass or call each)")
    plan.notes.append(f"plus {k} questions on the content-free passage (calibration), once per run; "
                      "--calibrate adds the calibration source's items")
    from llmscisci.tasks.plan import format_plan

    plan.text = format_plan(plan, f"yes/no questions ({k} per item)")
    return plan


def label_corpus(codebook, path: Path, *, model, variant, params, opts, limit, shots, paraphrase, out_dir, resume,
                 id_column, text_column, template, by, chunk_size, dry_run, batch=None, placebo=None, calibrate=None,
                 engine: tuple = ("local", 1, None)) -> dict:
    """Label (or plan) one codebook over the corpus; {"result": JSON result, "tables": what a person reads}."""

    from llmscisci.data.corpus import CorpusPlan
    from llmscisci.errors import UserError
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_stream import run_label_stream
    from llmscisci.tasks.stream_finish import distribution_table

    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")
    if shots:
        raise UserError("--shots needs the study's data (--data-dir); with --input, label without examples")
    corpus = CorpusPlan.open(path, codebook, id_column=id_column, text_column=text_column, template=template)
    if by is not None:
        first = next(corpus.items())
        if by not in first.meta:
            raise UserError(f"--by {by!r}: no such metadata column in {path} (have: {', '.join(first.meta)})")
    labeller = load_labeller(model, opts, codebook) if model.startswith(BASELINE_PREFIX) and not dry_run else None
    console.print(f"{path}: {corpus.source.describe}, {corpus.n_items:,} items, id column {corpus.id_column!r}, "
                  f"text {corpus.text_spec!r}", markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        import itertools

        items = corpus.items() if limit is None else itertools.islice(corpus.items(), limit)
        plan = dry_run_items(codebook, items, model=model, variant=variant, params=params, opts=opts,
                             paraphrase=paraphrase)
        return {"result": {"task": codebook.task, "input": corpus.describe(), "dry_run": plan.as_dict()},
                "tables": [plan.text]}
    if batch is not None:  # one provider batch run over the whole corpus, not one per chunk
        from llmscisci.cli.batch import load_run_backend

        if model.startswith(BASELINE_PREFIX):
            raise UserError("--batch and --batch-file are for LLMs, not a saved classifier")
        labeller = load_run_backend(model, opts, batch)
        chunk_size = max(chunk_size, corpus.n_items)
    if engine[0] == "ray":  # the same run, its model calls on a pool of Ray actors (tasks/label_ray.py)
        if batch is not None or model.startswith(BASELINE_PREFIX):
            raise UserError("--engine ray is for live LLM calls, not --batch or a saved classifier")
        from llmscisci.tasks.label_ray import RayPool

        labeller = RayPool(model, opts, workers=engine[1], address=engine[2])
    labeller = labeller or load_labeller(model, opts, codebook)
    spec = LabelSpec(codebook=codebook, variant=variant, model=model, params=params, limit=limit,
                     data_source=str(path), paraphrase=paraphrase, calibrate=calibrate)
    from llmscisci.backends.batch import BatchPending

    try:
        run = run_label_stream(spec, corpus, labeller, out_dir, run_dir=resume, chunk_size=chunk_size, by=by)
    except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
        from llmscisci.cli.batch import pending_result

        res, line = pending_result(codebook.task, exc)
        return {"result": res, "tables": [line]}
    finally:
        if engine[0] == "ray":  # the Ray workers go with the run
            labeller.close()
    if placebo:
        from llmscisci.tasks.placebo import run_placebo

        metrics = run_placebo(run, labeller, placebo)
    else:
        metrics = run.metrics()
    tables = []
    if isinstance(metrics.get("all"), dict) and "macro_f1" in metrics["all"]:
        tables.append(format_table(metrics, codebook.task))
    tables += [distribution_table(metrics), f"run folder: {run.path}"]
    from llmscisci.cli.common import run_result

    return {"result": run_result(codebook.task, run.path, metrics), "tables": tables}
