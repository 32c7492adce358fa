"""Labelling the study data with a fitted classifier (`label --model baseline:DIR`, no `--input`): the
same run folder as an LLM's labelling run (config, predictions scored against the references, metrics,
CSV), made by the same runner (tasks/label_runner.py), with the classifier's description in place of a
backend's and no prompt sent anywhere.

A classifier scored on items it was fitted on measures its fit, not its accuracy: the run counts them
(`seen_in_training` in config.json) and metrics.json carries a warning saying so.
"""

from __future__ import annotations

from pathlib import Path

from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.runs import RunFolder
from llmscisci.tasks.finish import seen_warning  # noqa: F401 - re-exported
from llmscisci.tasks.label_runner import run_labelling
from llmscisci.tasks.label_source import ItemList
from llmscisci.tasks.label_spec import Classifier, LabelSpec


def run_label_classifier(spec: LabelSpec, items: list[Item], classifier: Classifier, out: str | Path,
                         run_dir: str | Path | None = None) -> RunFolder:
    """Label `items` (already loaded) with `classifier`; write (or resume) the run folder; return it."""
    if spec.shots:
        raise UserError("--shots is for language models: a saved classifier takes no examples")
    source = ItemList(spec, items, shots=False)
    seen = getattr(classifier, "train_ids", frozenset())
    n_seen = sum(1 for it in source.items if it.doi in seen)
    # the finisher adds the warning (tasks/finish.py `seen_warning`), so `llmscisci eval` keeps it
    return run_labelling(spec, source, classifier, out, run_dir, show_progress=False,
                         extra_config={"seen_in_training": n_seen})
