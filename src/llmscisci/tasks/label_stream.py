"""Labelling a corpus of any size (`label --input`): the corpus plan read chunk by chunk through the one
runner (tasks/label_runner.py), so memory is bounded by the chunk, not the corpus, and a killed run
resumes from its last whole chunk (`progress.json`).

The labeller is an LLM backend (prompted with the codebook) or a fitted classifier (`baseline:DIR`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmscisci.backends.base import Backend
from llmscisci.data.corpus import CorpusPlan
from llmscisci.errors import UserError
from llmscisci.prompts import label as prompts
from llmscisci.runs import RunFolder
from llmscisci.tasks.label_runner import DEFAULT_CHUNK, PROGRESS, run_labelling  # noqa: F401 - re-exported
from llmscisci.tasks.label_source import CorpusItems
from llmscisci.tasks.label_spec import Classifier, LabelSpec, classifier_record  # noqa: F401 - re-exported


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
    return run_labelling(spec, CorpusItems(spec, plan, by), labeller, out, run_dir, chunk_size=chunk_size,
                         show_progress=show_progress, after_chunk=after_chunk)
