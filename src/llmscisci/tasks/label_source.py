"""Where a labelling run's items come from: the one runner (tasks/label_runner.py) reads them through
`ItemSource`, whether they are the study's items (a list in memory: `ItemList`) or a corpus of any
size read in chunks (`CorpusItems`, over a `data.corpus.CorpusPlan`).

A source gives the items in order, chunk by chunk, how many there are, its share of the run's
identity (the core: the study's DOI list, or a corpus's count and fingerprints), what config.json
records about it, whether its items have reference labels, and the few-shot examples its prompts show.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from llmscisci.data.corpus import CorpusPlan
from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.tasks.label_spec import LabelSpec, draw_shots, select_items, text_keys
from llmscisci.tasks.texts import TEXTS_KEY


class ItemSource(Protocol):
    """What the runner needs from its input."""

    count: int  # items the run labels (after --split and --limit)
    has_references: bool  # rows are scored against references (else: the label distribution)
    shots: list[tuple[str, str]]  # (text, answer) examples every prompt shows
    by: str | None  # the metadata column the label distribution is grouped by
    keeps_meta: bool  # each prediction keeps the item's metadata (a corpus's columns, for `--by`)
    checkpoints: bool  # progress.json marks whole chunks done (else a resumed run reads every prediction)

    def chunks(self, size: int) -> Iterator[list[Item]]:
        """The items in order, `size` at a time."""
        ...

    def identity(self) -> dict:
        """The source's share of the run's core (what names the run and finds it again)."""
        ...

    def extras(self) -> dict:
        """What config.json records about the source (not part of the identity)."""
        ...

    def text_keys(self) -> Iterator[tuple[str, str]]:
        """(id, text fingerprint) of every item, for checking a resumed run's texts."""
        ...


class ItemList:
    """The study's items (loaded in memory): `spec.split` and `spec.limit` select them, few-shot examples
    are drawn from the train split, and the train split's references feed the baselines."""

    has_references = True  # the study's items are coded; an item without labels is counted, not scored
    by = None
    keeps_meta = False  # a prediction keeps the grouping columns only (tasks/label_spec.py)
    checkpoints = False  # small: a resumed run finds what is done from the predictions themselves

    def __init__(self, spec: LabelSpec, items: list[Item], *, shots: bool = True):
        self.spec = spec
        self.items = select_items(items, spec.split, spec.limit)
        self.shots = draw_shots(items, spec.codebook, spec.variant, spec.shots, spec.params.seed) if shots else []
        self.train_reference = [list(it.labels) for it in items if it.split == "train" and it.labels is not None]
        self.count = len(self.items)

    def chunks(self, size: int) -> Iterator[list[Item]]:
        for i in range(0, len(self.items), size):
            yield self.items[i:i + size]

    def identity(self) -> dict:
        return self.spec.items_part(self.items)

    def extras(self) -> dict:
        return self.spec.study_extras(self.train_reference)

    def text_keys(self) -> Iterator[tuple[str, str]]:
        return text_keys(self.items)


class CorpusItems:
    """A corpus file read in chunks (bounded memory): the core holds its count and fingerprints in place
    of an id list; `spec.limit` labels its first items. No few-shot examples (they need the study's data)."""

    keeps_meta = True
    checkpoints = True  # a resumed run skips whole chunks without reading their predictions
    shots: list[tuple[str, str]] = []

    def __init__(self, spec: LabelSpec, plan: CorpusPlan, by: str | None = None):
        if spec.shots:
            raise UserError("--shots needs the study's data (--data-dir); with --input, label without examples")
        self.spec, self.plan, self.by = spec, plan, by
        self.has_references = plan.has_references
        self.count = plan.n_items if spec.limit is None else min(plan.n_items, spec.limit)

    def chunks(self, size: int) -> Iterator[list[Item]]:
        left = self.count
        for chunk in self.plan.chunks(size):
            if left <= 0:
                return
            yield chunk[:left]
            left -= len(chunk)

    def identity(self) -> dict:
        plan = self.plan
        return {"shots": 0, "split_filter": "all",
                "items": {"n": plan.n_items, "ids_sha256": plan.fingerprint, "id_column": plan.id_column,
                          "text": plan.text_spec, TEXTS_KEY: plan.texts_fingerprint}}

    def extras(self) -> dict:
        return {"data_source": str(self.plan.path.resolve()), "input": self.plan.describe(), "train_reference": [],
                "streamed": True, "by": self.by}

    def text_keys(self) -> Iterator[tuple[str, str]]:
        return text_keys(self.plan.items())


__all__ = ["CorpusItems", "ItemList", "ItemSource"]
