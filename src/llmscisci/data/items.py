"""Items: the unit a labelling task works on (one text of one report), with reference labels and split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.labelfiles import LabelSet, load_labels
from llmscisci.data.problems import Collector
from llmscisci.data.reports import load_reports, read_csv
from llmscisci.data.split import canonical_split
from llmscisci.data.validate import LabelError, check_shape
from llmscisci.errors import DataError

REFERENCE = Path("labels") / "reference.csv"


@dataclass(frozen=True)
class Item:
    doi: str
    task: str
    text: str
    labels: tuple[int, ...] | None = None  # reference labels, when known
    split: str = "train"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.doi, self.task)


def text_sha(text: str | None) -> str:
    """A short fingerprint of one text (kept with each prediction as `text_sha`)."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:12]


class TextsDigest:
    """The fingerprint of a list of texts, in order, fed one text at a time (a corpus is never held)."""

    def __init__(self) -> None:
        self._d = hashlib.sha256()

    def add(self, text: str | None) -> None:
        self._d.update(text_sha(text).encode() + b"\n")

    def hexdigest(self) -> str:
        return self._d.hexdigest()[:16]


def texts_fingerprint(texts: Iterable[str | None]) -> str:
    """The fingerprint of the texts a run labels (part of the run's identity: changed texts, new run)."""
    d = TextsDigest()
    for t in texts:
        d.add(t)
    return d.hexdigest()


def _user_csv_items(path: Path, codebook: Codebook, col: Collector) -> list[tuple[str, str, tuple | None, dict]]:
    df = read_csv(path)
    id_col = "doi" if "doi" in df.columns else ("id" if "id" in df.columns else None)
    if id_col is None:
        raise DataError(path, "missing column (an identifier column 'doi' or 'id' is needed)", column="doi")
    if codebook.text_column not in df.columns:
        raise DataError(path, f"missing text column of task {codebook.task!r}", column=codebook.text_column)
    has_onehot = all(s in df.columns for s in codebook.shorts)
    rows = []
    seen = set()
    for i, r in enumerate(df.to_dict("records"), start=1):
        doi = r[id_col].strip()
        if doi in seen:
            col.error(path, f"duplicate id {doi}", row=i, column=id_col)
        seen.add(doi)
        labels = None
        try:
            if has_onehot and all(str(r[s]).strip() != "" for s in codebook.shorts):
                labels = check_shape([int(float(r[s])) for s in codebook.shorts], codebook.n)
            elif r.get("labels", "").strip():
                import json

                labels = check_shape(json.loads(r["labels"]), codebook.n)
        except (LabelError, ValueError) as exc:
            col.error(path, f"bad labels: {exc}", row=i, column="labels")
        meta = {k: v for k, v in r.items() if k in ("mlrc_year", "title", "year", "group")}
        text = r[codebook.text_column].strip()
        if not text:
            col.warning(path, "empty text", row=i, column=codebook.text_column)
        rows.append((doi, text, labels, meta))
    return rows


def load_items(
    codebook: Codebook,
    data_dir: str | Path | None = None,
    input_csv: str | Path | None = None,
    reference: str | Path | LabelSet | None = None,
    collector: Collector | None = None,
) -> list[Item]:
    """Items of one task: texts from the data directory's reports (or a user's CSV), reference labels
    from labels/reference.csv (or `reference`), each with its canonical split."""
    col = collector or Collector(strict=True)
    if input_csv is not None:
        rows = _user_csv_items(Path(input_csv), codebook, col)
    else:
        if data_dir is None:
            raise DataError("<data>", "no data directory or input CSV given")
        reports = load_reports(data_dir, col, text_columns=(codebook.text_column,))
        if codebook.text_column not in reports.columns:
            raise DataError(reports.attrs["path"], "missing text column", column=codebook.text_column)
        rows = [
            (r["doi"], r[codebook.text_column], None, {"mlrc_year": r["mlrc_year"], "title": r["title"]})
            for r in reports.to_dict("records")
        ]
        if reference is None and (Path(data_dir) / REFERENCE).is_file():
            reference = Path(data_dir) / REFERENCE
    ref: dict[str, tuple] = {}
    if isinstance(reference, LabelSet):
        ref = reference.labels(codebook.task)
    elif reference is not None:
        books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
        ref = load_labels(reference, books, known_dois=[r[0] for r in rows], collector=col).labels(codebook.task)
    split = canonical_split(r[0] for r in rows)
    return [
        Item(doi, codebook.task, text, labels if labels is not None else ref.get(doi), split[doi], meta)
        for doi, text, labels, meta in rows
    ]


def to_dataset_dict(items: list[Item], codebook: Codebook):
    """Export items as a Hugging Face DatasetDict with the canonical train/test split."""
    from datasets import Dataset, DatasetDict

    def rows(split: str) -> dict:
        sel = [it for it in items if it.split == split]
        return {
            "doi": [it.doi for it in sel],
            "task": [it.task for it in sel],
            "text": [it.text for it in sel],
            "labels": [list(it.labels) if it.labels is not None else None for it in sel],
            "label_names": [codebook.names_of(it.labels) if it.labels else [] for it in sel],
        }

    return DatasetDict({s: Dataset.from_dict(rows(s)) for s in ("train", "test")})
