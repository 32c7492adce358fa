"""The one labelling runner: an item source (tasks/label_source.py: the study's items or a corpus of any
size) + a labeller (an LLM backend, or a fitted classifier for `baseline:DIR`) -> a run folder.

Items are read, labelled and written chunk by chunk, so memory is bounded by the chunk, not the corpus
(the study's items go as one chunk). Each prediction is appended to predictions.jsonl as it arrives
(flushed at once, fsynced once per chunk). A corpus's `progress.json` records how many whole chunks are
done: a killed run resumes where it stopped, whole chunks are skipped, and within the interrupted chunk
the items already written are not asked again (the study's items: every item already written is
skipped). Items whose latest attempt got no answer are asked again wherever they are (a new line each:
readers count an item once, its latest attempt).

Texts that are empty after stripping get a `none` prediction marked `"empty": true`, with no model call.
A prompt that does not fit the backend's context window is recorded as failed, never sent (every
backend). The `score` variant scores yes/no log-odds instead of generating (tasks/score.py). The run
ends with the one finisher (tasks/finish.py): scores for items with references, the label
distribution for all.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from llmscisci.backends.base import Backend, Generation
from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.prompts import label as prompts
from llmscisci.runs import RunFolder, iter_jsonl, write_json
from llmscisci.tasks.label_source import ItemSource
from llmscisci.tasks.label_spec import (Classifier, LabelSpec, check_spec, classifier_record, empty_record,
                                        is_empty, prediction_record)
from llmscisci.tasks.stoprule import StopRule
from llmscisci.tasks.stream_progress import StreamProgress
from llmscisci.tasks.texts import reconcile

DEFAULT_CHUNK = 1000
PROGRESS = "progress.json"


def _drop_unanswered(path: Path, offset: int) -> list[dict]:
    """The records after the last checkpoint, less those whose call got no answer (a stopped run's):
    rewritten in place so that a resumed run asks for them again without writing an item twice."""
    recs = list(iter_jsonl(path, start=offset))  # the torn last line is gone (`repair_tail`), a bad one skipped
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
    written), fsynced at each checkpoint. With `keep_meta`, each record keeps its item's metadata."""

    def __init__(self, path: Path, keep_meta: bool = True):
        self.run_path = path.parent
        self.keep_meta = keep_meta
        self.fh = path.open("a", encoding="utf-8")

    def write(self, rec: dict, item: Item) -> None:
        if self.keep_meta and item.meta:
            rec["meta"] = item.meta
        self.fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        self.fh.flush()

    def sync(self) -> int:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.fh.tell()

    def close(self) -> None:
        self.fh.close()


def run_labelling(spec: LabelSpec, source: ItemSource, labeller: Backend | Classifier, out: str | Path,
                  run_dir: str | Path | None = None, *, chunk_size: int | None = None, show_progress: bool = True,
                  after_chunk: Callable[[int], None] | None = None, extra_config: dict | None = None) -> RunFolder:
    """Label every item of `source` into a run folder (new, or resumed: `run_dir`, or the folder the
    configuration names under `out`) and finish it (metrics, CSV); `chunk_size` None: one chunk. A batch
    backend always gets one chunk: one provider batch over all the items, not one per chunk."""
    from llmscisci.backends.batch import BatchBackend

    if chunk_size is not None and chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")
    if isinstance(labeller, BatchBackend):
        chunk_size = None
    check_spec(spec, labeller)
    part = source.identity()
    config = spec.config_of(part, labeller.describe(), source.shots, source.extras()) | (extra_config or {})
    path = Path(run_dir) if run_dir else Path(out) / spec.folder(config["hash"])
    config = reconcile(path, spec.core_of(part, source.shots), config, source.text_keys)
    with RunFolder(path).writing():  # one writer per run folder
        return _label_into(path, config, spec, source, labeller, chunk_size or max(source.count, 1),
                           show_progress, after_chunk)


def _label_into(path: Path, config: dict, spec: LabelSpec, source: ItemSource, labeller, chunk_size: int,
                show_progress: bool, after_chunk) -> RunFolder:
    from llmscisci.tasks.finish import finish_run

    phash = config["prompt_hash"]
    # a resumed score run keeps its calibration (create rewrites config.json)
    previous = RunFolder(path).config.get("calibration") if (path / "config.json").is_file() else None
    run = RunFolder.create(path, config, resume=True)
    run.repair_tail()
    if hasattr(labeller, "bind_run"):  # batch mode keeps its request -> item map in the run folder
        labeller.bind_run(run.path)
    ckpt_path = run.path / PROGRESS
    ckpt = json.loads(ckpt_path.read_text("utf-8")) if ckpt_path.is_file() else {"chunks": 0, "offset": 0}
    if source.checkpoints:  # the items written since the last checkpoint (those that got no answer dropped)
        tail = {r.get("doi") for r in _drop_unanswered(run.predictions_path, int(ckpt.get("offset", 0)))}
    else:  # every item done (a line per attempt stays: an unanswered item gets a new line)
        tail = {doi for doi, _ in run.done_keys()}
    # items of finished chunks whose latest attempt got no answer: asked again (a new line each)
    retry = {doi for doi, _ in run.unanswered_keys()} if source.checkpoints else set()
    is_classifier = isinstance(labeller, Classifier)
    writer = Appender(run.predictions_path, keep_meta=source.keeps_meta)
    rule = StopRule()  # shared by the chunks: a run of permanent failures may span two
    bar = StreamProgress(f"label {spec.codebook.task}/{spec.variant}", source.count, show_progress)
    cal, known = None, {}
    if prompts.is_scoring(spec.variant) and not is_classifier:
        from llmscisci.tasks.score import run_calibration

        # `known`: the calibration source's log-odds by text; its items are not scored twice
        cal = run_calibration(run, labeller, spec.codebook, spec.variant, spec.calibrate, spec.paraphrase, previous,
                              known)
    t0 = time.perf_counter()
    seen = 0
    try:
        with bar:
            for ci, chunk in enumerate(source.chunks(chunk_size)):
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
                    _score(labeller, todo, spec, phash, cal, known, writer, bar, rule, run)
                elif todo:
                    _generate(labeller, todo, spec, source.shots, phash, writer, bar, rule)
                if finished or not source.checkpoints:  # a finished chunk's checkpoint stays: its offset still
                    writer.sync()                          # marks where the unfinished chunk starts
                    continue
                ckpt = {"chunks": ci + 1, "offset": writer.sync(), "items": seen}
                write_json(ckpt_path, ckpt)
                tail = set()
                if after_chunk is not None:
                    after_chunk(ci + 1)
    finally:
        writer.close()
        run.update_config({"backend": labeller.describe()})  # e.g. the structured-output form used
    finish_run(run, spec.codebook, wall_seconds=time.perf_counter() - t0, n_resumed=bar.skipped,
               references=source.has_references, by=source.by)
    return run


def _generate(backend: Backend, todo: list[Item], spec: LabelSpec, shots: list[tuple[str, str]], phash: str,
              writer: Appender, bar: StreamProgress, rule: StopRule) -> None:
    """A chunk's generation: prompts checked against the context window (every backend), one backend call
    for the rest, each answer written as it arrives."""
    schema = prompts.label_schema(spec.codebook) if prompts.is_structured(spec.variant) else None
    convs, sent = [], []
    for it in todo:
        msgs = prompts.build_messages(it.text, spec.codebook, spec.variant, shots, spec.paraphrase)
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
        if hasattr(backend, "bind_items"):  # batch mode: the item each conversation stands for
            backend.bind_items([(it.doi, it.task) for it in sent])
        backend.generate(convs, spec.params, schema=schema, on_result=on_result)


def _score(backend: Backend, todo: list[Item], spec: LabelSpec, phash: str, cal, known: dict, writer: Appender,
           bar: StreamProgress, rule: StopRule, run: RunFolder) -> None:
    """The score variant's chunk: yes/no log-odds per category (tasks/score.py), written as they come."""
    from llmscisci.tasks.score import score_into

    def write(it: Item, rec: dict) -> None:
        writer.write(rec, it)
        bar.advance(invalid=not rec["valid"], cost=rec.get("cost_usd"))

    score_into(run, backend, todo, cal, spec.codebook, spec.variant, phash, "", paraphrase=spec.paraphrase,
               known=known, write=write, rule=rule)
