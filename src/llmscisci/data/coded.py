"""A coded sample for training a classifier: any corpus file, with labels in its own category columns
or in a separate label file (`--labels`), split by the canonical DOI-grouped rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.corpus import load_corpus_items
from llmscisci.data.labelfiles import load_labels
from llmscisci.data.split import canonical_split
from llmscisci.errors import DataError


def load_coded(path: str | Path, codebook: Codebook, labels: str | Path | None = None,
               id_column: str | None = None, text_column: str | None = None) -> list:
    items = load_corpus_items(path, codebook, id_column=id_column, text_column=text_column)
    if labels is not None:
        books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
        ref = load_labels(labels, books, known_dois=[it.doi for it in items]).labels(codebook.task)
        items = [replace(it, labels=ref.get(it.doi, it.labels)) for it in items]
    if not any(it.labels is not None for it in items):
        raise DataError(path, f"no coded items: give one 0/1 column per category ({', '.join(codebook.shorts)}) "
                              "or a label file with --labels")
    split = canonical_split(it.doi for it in items)
    return [replace(it, split=split[it.doi]) for it in items]
