"""Labelling a corpus of any size: items read, labelled and written chunk by chunk.

Memory is bounded by the chunk, not the corpus: the input is read `chunk_size` items at a time, each
prediction is appended to predictions.jsonl as it arrives (flushed at once, fsynced once per chunk), and
`progress.json` records how many whole chunks are done. A killed run resumes where it stopped: whole
chunks are skipped, and within the interrupted chunk the items already written are not asked again;
items whose latest attempt got no answer are asked again wherever they are (a new line each: readers
count an item once, its latest attempt).

Texts that are empty after stripping get a `none` prediction marked `"empty": true`, with no model call.
The labeller is an LLM backend (prompted with the codebook) or a fitted classifier (`baseline:DIR`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from llmscisci.backends.base import Backend, Generation
from llmscisci.data.corpus import CorpusPlan
from llmscisci.data.items import Item, text_sha
from llmscisci.errors import UserError
from llmscisci.prompts import label as prompts
from llmscisci.runs import RunFolder, stable_hash, write_json
from llmscisci.runs import slug
from llmscisci.tasks.label import LabelSpec, check_scoring, empty_record, is_empty, prediction_record
from llmscisci.tasks.stoprule import StopRule
from llmscisci.tasks.stream_progress import StreamProgress
from llmscisci.tasks.texts import TEXTS_KEY, reconcile

DEFAULT_CHUNK = 1000
PROGRESS = "progress.json"


class Classifier:
    """What a fitted classifier offers the runner: label vectors for texts, and a description."""

    name = "classifier"

    def predict_texts(self, texts: list[str]) -> list[list[int]]:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict:  # pragma: no cover - interface
        return {"name": self.name}


def classifier_record(item: Item, labels: list[int], phash: str) -> dict:
    return {"doi": item.doi, "task": item.task, "split": item.split, "text_sha": text_sha(item.text),
            "prompt_hash": phash,
            "raw": json.dumps(labels), "labels": labels, "valid": True, "repaired": False, "exact_format": True,
            "reference": list(item.labels) if item.labels is not None else None, "tokens_in": 0, "tokens_out": 0,
            "seconds": 0.0, "error": None, "refusal": False, "cached": False, "model_version": None,
            "cost_usd": None}


def stream_core(spec: LabelSpec, plan: CorpusPlan) -> dict:
    """The run's identity: the labelling spec with the corpus's id and text fingerprints in place of an
    id list."""
    shots: list = []
    prompt_hash = prompts.prompt_hash(spec.codebook, spec.variant, shots, spec.paraphrase)
    core = {"kind": "label", "task": spec.codebook.task, "variant": spec.variant, "model": spec.model,
            "params": spec.params.as_dict(), "shots": 0, "limit": spec.limit, "split_filter": "all",
            "prompt_hash": prompt_hash, "codebook": spec.codebook.model_dump(),
            "items": {"n": plan.n_items, "ids_sha256": plan.fingerprint, "id_column": plan.id_column,
                      "text": plan.text_spec, TEXTS_KEY: plan.texts_fingerprint}}
    if spec.paraphrase:
        core["paraphrase"] = spec.paraphrase
    if spec.calibrate:
        core["calibrate"] = spec.calibrate
    return core


def stream_config(spec: LabelSpec, plan: CorpusPlan, describe: dict, by: str | None = None) -> dict:
    """The run's config: its core (`stream_core`), the hash of that, and what describes the run."""
    core = stream_core(spec, plan)
    return {**core, "hash": stable_hash(core), "data_source": str(plan.path.resolve()), "input": plan.describe(),
            "backend": describe, "structured": prompts.is_structured(spec.variant),
            "system_prompt": prompts.system_prompt(spec.codebook, spec.variant, spec.paraphrase),
            "paraphrase": spec.paraphrase, "seed": spec.params.seed, "shot_examples": [], "train_reference": [],
            "prompt_examples": prompts.shown_examples(spec.codebook, spec.variant),
            "streamed": True, "by": by}


def _read_from(path: Path, offset: int) -> Iterator[dict]:
    if not path.is_file():
        return
    with path.open("rb") as fh:
        fh.seek(offset)
        for line in fh:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _drop_unanswered(path: Path, offset: int) -> list[dict]:
    """The records after the last checkpoint, less those whose call got no answer (a stopped run's):
    rewritten in place so that a resumed run asks for them again without writing an item twice."""
    recs = list(_read_from(path, offset))
    kept = [r for r in recs if not r.get("call_failed")]
    if len(kept) != len(recs):
        with path.open("r+b") as fh:
            fh.truncate(offset)
            fh.seek(offset)
            fh.write("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in kept).encode())
            fh.flush()
            os.fsync(fh.fileno())
    return kept


class Appender:
    """predictions.jsonl kept open: each record written and flushed (a killed process loses nothing
    written), fsynced at each checkpoint."""

    def __init__(self, path: Path):
        self.run_path = path.parent
        self.fh = path.open("a", encoding="utf-8")

    def write(self, rec: dict, item: Item) -> None:
        if item.meta:
            rec["meta"] = item.meta
        self.fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        self.fh.flush()

    def sync(self) -> int:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.fh.tell()

    def close(self) -> None:
        self.fh.close()


def run_label_stream(
    spec: LabelSpec,
    plan: CorpusPlan,
    labeller: Backend | Classifier,
    out: str | Path,
    run_dir: str | Path | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    by: str | None = None,
    show_progress: bool = True,
    after_chunk: Callable[[int], None] | None = None,
) -> RunFolder:
    """Label every item of `plan` into a run folder (new or resumed) and finish it (metrics, CSV)."""
    if chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")
    prompts.check_variant(spec.variant)
    prompts.check_paraphrase(spec.variant, spec.paraphrase)
    if spec.shots:
        raise UserError("--shots needs the study's data (--data-dir); with --input, label without examples")
    if not isinstance(labeller, Classifier):
        check_scoring(spec, labeller)
    config = stream_config(spec, plan, labeller.describe(), by)
    para = f"_p{spec.paraphrase}" if spec.paraphrase else ""
    path = Path(run_dir) if run_dir else (
        Path(out) / f"label_{spec.codebook.task}_{spec.variant}{para}_{slug(spec.model)}_{config['hash'][:8]}")
    config = reconcile(path, stream_core(spec, plan), config, lambda: ((it.doi, text_sha(it.text)) for it in plan.items()))
    with RunFolder(path).writing():  # one writer per run folder
        return _stream_into(path, config, spec, plan, labeller, chunk_size, by, show_progress, after_chunk)


def _stream_into(path: Path, config: dict, spec: LabelSpec, plan: CorpusPlan, labeller, chunk_size: int,
                 by: str | None, show_progress: bool, after_chunk) -> RunFolder:
    from llmscisci.tasks.stream_finish import finish_stream

    phash = config["prompt_hash"]
    # a resumed score run keeps its calibration (create rewrites config.json)
    previous = RunFolder(path).config.get("calibration") if (path / "config.json").is_file() else None
    run = RunFolder.create(path, config, resume=True)
    run.repair_tail()
    if hasattr(labeller, "bind_run"):  # batch mode keeps its request -> item map in the run folder
        labeller.bind_run(run.path)
    ckpt_path = run.path / PROGRESS
    ckpt = json.loads(ckpt_path.read_text("utf-8")) if ckpt_path.is_file() else {"chunks": 0, "offset": 0}
    tail = {r.get("doi") for r in _drop_unanswered(run.predictions_path, int(ckpt.get("offset", 0)))}
    # items of finished chunks whose latest attempt got no answer: asked again (a new line each)
    retry = {r.get("doi") for r in run.iter_predictions() if r.get("call_failed")}
    total = plan.n_items if spec.limit is None else min(plan.n_items, spec.limit)
    schema = prompts.label_schema(spec.codebook) if prompts.is_structured(spec.variant) else None
    is_classifier = isinstance(labeller, Classifier)
    writer = Appender(run.predictions_path)
    rule = StopRule()  # shared by the chunks: a run of permanent failures may span two
    bar = StreamProgress(f"label {spec.codebook.task}/{spec.variant}", total, show_progress)
    cal = None
    if prompts.is_scoring(spec.variant) and not is_classifier:
        from llmscisci.tasks.score import run_calibration

        cal = run_calibration(run, labeller, spec.codebook, spec.variant, spec.calibrate, spec.paraphrase, previous)
    t0 = time.perf_counter()
    seen = 0
    try:
        with bar:
            for ci, chunk in enumerate(plan.chunks(chunk_size)):
                if seen >= total:
                    break
                chunk = chunk[: total - seen]
                seen += len(chunk)
                finished = ci < int(ckpt.get("chunks", 0))
                pending = [it for it in chunk if (it.doi in retry if finished else it.doi not in tail)]
                bar.skip(len(chunk) - len(pending))
                todo = []
                for it in pending:
                    if not is_empty(it):
                        todo.append(it)
                    else:  # the empty-text rule of every labelling run: `none`, marked empty, no call
                        writer.write(empty_record(it, spec.codebook, phash), it)
                        bar.advance(empty=True)
                if is_classifier:
                    for it, labels in zip(todo, labeller.predict_texts([it.text for it in todo])):
                        writer.write(classifier_record(it, labels, phash), it)
                        bar.advance()
                elif todo and cal is not None:
                    _score(labeller, todo, spec, phash, cal, writer, bar, rule, run)
                elif todo:
                    _generate(labeller, todo, spec, phash, schema, writer, bar, rule)
                if finished:  # the checkpoint stays: its offset still marks where the unfinished chunk starts
                    writer.sync()
                    continue
                ckpt = {"chunks": ci + 1, "offset": writer.sync(), "items": seen}
                write_json(ckpt_path, ckpt)
                tail = set()
                if after_chunk is not None:
                    after_chunk(ci + 1)
    finally:
        writer.close()
        run.update_config({"backend": labeller.describe()})  # e.g. the structured-output form used
    finish_stream(run, spec.codebook, plan, by=by, wall_seconds=time.perf_counter() - t0)
    return run


def _generate(backend: Backend, todo: list[Item], spec: LabelSpec, phash: str, schema, writer: Appender,
              bar: StreamProgress, rule: StopRule) -> None:
    from llmscisci.backends.api_common import APIBackend

    convs, sent = [], []
    for it in todo:
        msgs = prompts.build_messages(it.text, spec.codebook, spec.variant, [], spec.paraphrase)
        if not isinstance(backend, APIBackend):  # API backends check the context window themselves
            fits, n = backend.check_context(msgs, spec.params.max_new_tokens)
            if not fits:
                writer.write(prediction_record(it, Generation(error=f"prompt of {n} tokens exceeds the context window"),
                                               spec.codebook, spec.variant, phash), it)
                bar.advance(invalid=True)
                continue
        convs.append(msgs)
        sent.append(it)

    written = [0]

    def on_result(i: int, gen: Generation) -> None:
        rec = prediction_record(sent[i], gen, spec.codebook, spec.variant, phash)
        if gen.extra.get("call_failed"):
            rec["call_failed"] = True
        writer.write(rec, sent[i])
        written[0] += 1
        bar.advance(invalid=not rec["valid"], cost=gen.cost_usd)
        rule.check(gen, backend, written[0], writer.run_path)

    if convs:
        if hasattr(backend, "bind_items"):
            backend.bind_items([(it.doi, it.task) for it in sent])
        backend.generate(convs, spec.params, schema=schema, on_result=on_result)


def _score(backend: Backend, todo: list[Item], spec: LabelSpec, phash: str, cal, writer: Appender,
           bar: StreamProgress, rule: StopRule, run: RunFolder) -> None:
    """The score variant's chunk: yes/no log-odds per category (tasks/score.py), written as they come."""
    from llmscisci.tasks.score import score_into

    def write(it: Item, rec: dict) -> None:
        writer.write(rec, it)
        bar.advance(invalid=not rec["valid"], cost=rec.get("cost_usd"))

    score_into(run, backend, todo, cal, spec.codebook, spec.variant, phash, "", paraphrase=spec.paraphrase,
               write=write, rule=rule)
