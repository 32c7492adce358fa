"""Labelling the study data with a fitted classifier (`label --model baseline:DIR`, no `--input`): the
same run folder as an LLM's labelling run (config, predictions scored against the references, metrics,
CSV), with the classifier's description in place of a backend's and no prompt sent anywhere.

A classifier scored on items it was fitted on measures its fit, not its accuracy: the run counts them
(`seen_in_training` in config.json) and metrics.json carries a warning saying so.
"""

from __future__ import annotations

import time
from pathlib import Path

from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.runs import RunFolder, slug
from llmscisci.tasks.finish import finish_run
from llmscisci.tasks.label import LabelSpec, empty_record, select_items, split_empty
from llmscisci.tasks.label_stream import Classifier, classifier_record


def run_label_classifier(spec: LabelSpec, items: list[Item], classifier: Classifier, out: str | Path,
                         run_dir: str | Path | None = None) -> RunFolder:
    """Label `items` (already loaded) with `classifier`; write (or resume) the run folder; return it."""
    if spec.shots:
        raise UserError("--shots is for language models: a saved classifier takes no examples")
    selected = select_items(items, spec.split, spec.limit)
    train_ref = [list(it.labels) for it in items if it.split == "train" and it.labels is not None]
    seen = getattr(classifier, "train_ids", frozenset())
    n_seen = sum(1 for it in selected if it.doi in seen)
    config = spec.config(classifier, selected, [], train_ref) | {"seen_in_training": n_seen}
    phash = config["prompt_hash"]
    path = Path(run_dir) if run_dir else (
        Path(out) / f"label_{spec.codebook.task}_{spec.variant}_{slug(spec.model)}_{config['hash'][:8]}")
    with RunFolder(path).writing():
        run = RunFolder.create(path, config, resume=True)
        run.repair_tail()
        done = run.done_keys()
        todo, empty = split_empty([it for it in selected if it.key not in done])
        t0 = time.perf_counter()
        run.append([empty_record(it, spec.codebook, phash) for it in empty])
        labels = classifier.predict_texts([it.text for it in todo])
        run.append([classifier_record(it, lab, phash) for it, lab in zip(todo, labels)])
        metrics = finish_run(run, spec.codebook, wall_seconds=time.perf_counter() - t0, n_resumed=len(done))
        if n_seen:
            metrics["warnings"] = [*metrics.get("warnings", []), seen_warning(n_seen, len(selected))]
            run.write_metrics(metrics)
    return run


def seen_warning(n_seen: int, n: int) -> str:
    return (f"{n_seen} of the {n} items labelled were in the classifier's training data: its scores on them "
            "measure how well it fits them, not how well it labels new texts (baseline's cross-validated scores "
            "do)")
