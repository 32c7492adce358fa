"""Your own corpus as labelling items, in chunks: which column is the id, which text is labelled.

`CorpusPlan.open(path, codebook, id_column=, text_column=, template=)` checks the columns on the first
record, then scans the corpus once (ids only, 8 bytes each) to count the items, find duplicate or empty
ids and fingerprint the item list and the texts as labelled (each hashed as it passes). `plan.chunks(size)` then yields lists of `Item`s, `size` at a time,
so labelling a million abstracts holds one chunk in memory, never the corpus.

What is labelled: `--text-column C` (default: the codebook's text column), or `--text "{title}.
{abstract}"`, a template over columns (plain `{column}` fields only). The id: `--id-column C` (default:
`doi`, else `id`;
OpenAlex works: the work id, as DOIs can be missing). Reference labels, when the corpus has them: one 0/1 column per category short name,
or a JSON list in a `labels` column. Every other column is kept as item metadata.
"""

from __future__ import annotations

import hashlib
import json
from array import array
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmscisci.data.codebook import Codebook
from llmscisci.data.corpus_read import Source, open_corpus, text_of
from llmscisci.data.items import Item, TextsDigest
from llmscisci.data.split import canonical_split
from llmscisci.data.validate import LabelError, check_shape
from llmscisci.errors import DataError, UserError

NO_SPLIT = "unsplit"  # items of a corpus without reference labels: no train/test split is needed


def parse_template(template: str) -> list[tuple[str, str | None]]:
    """[(literal, column or None)] of a `--text` template; only plain `{column}` fields are allowed."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UserError(f"--text {template!r}: {exc}") from None
    out = []
    for literal, name, spec, conv in parts:
        if name is not None and (not name or spec or conv or any(c in name for c in ".[]")):
            raise UserError(f"--text {template!r}: use plain {{column}} fields (got {{{name}}})")
        out.append((literal, name))
    if not any(name for _, name in out):
        raise UserError(f"--text {template!r} names no column (write e.g. '{{title}}. {{abstract}}')")
    return out


AUTO_TEXT = ("text", "abstract")  # picked by themselves when the codebook's text column is absent


def pick_text_column(columns: list[str], codebook: Codebook, path: Path) -> str:
    """The codebook's text column when the corpus has it, else the one column named `text` or
    `abstract`; none or both of those is a one-line error listing the columns."""
    if codebook.text_column and codebook.text_column in columns:
        return codebook.text_column
    found = [c for c in AUTO_TEXT if c in columns]
    if len(found) == 1:
        return found[0]
    shown = ", ".join(columns[:15]) + (" ..." if len(columns) > 15 else "")
    which = f"the codebook's text column {codebook.text_column!r} is absent" if codebook.text_column else \
        "the codebook names no text column"
    also = "both 'text' and 'abstract' are there" if found else "no column 'text' or 'abstract'"
    raise DataError(path, f"{which} and {also} (found: {shown}); choose one with --text-column or "
                          "--text '{title}. {abstract}'")


@dataclass
class CorpusPlan:
    source: Source
    codebook: Codebook
    id_column: str
    text_columns: list[str]
    template: list[tuple[str, str | None]] | None
    label_mode: str | None  # "onehot" | "json" | None
    n_items: int = 0
    fingerprint: str = ""
    texts_fingerprint: str = ""  # of the texts as labelled (the --text template's result), in order
    split: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def has_references(self) -> bool:
        return self.label_mode is not None

    @classmethod
    def open(cls, path: str | Path, codebook: Codebook, id_column: str | None = None,
             text_column: str | None = None, template: str | None = None) -> "CorpusPlan":
        source = open_corpus(path)
        first = next(iter(source.records()), None)
        if first is None:
            raise DataError(source.path, "no records (the corpus is empty)")
        columns = list(first[1])
        shown = ", ".join(columns[:15]) + (" ..." if len(columns) > 15 else "")
        if id_column is None:
            order = ("id", "doi") if source.format.startswith("openalex") else ("doi", "id")
            id_column = next((c for c in order if c in columns), None)
            if id_column is None:
                raise DataError(source.path, f"missing column (an id column 'doi' or 'id' is needed; found: {shown}; "
                                             "name one with --id-column)", column="doi")
        elif id_column not in columns:
            raise DataError(source.path, f"missing --id-column (found: {shown})", column=id_column)
        parts = None
        if template is not None:
            if text_column is not None:
                raise UserError("give --text-column or --text, not both")
            parts = parse_template(template)
            text_columns = [name for _, name in parts if name]
        else:
            text_columns = [text_column or pick_text_column(columns, codebook, source.path)]
        for c in text_columns:
            if c not in columns:
                raise DataError(source.path, f"missing text column (found: {shown}; choose one with --text-column "
                                             "or --text '{title}. {abstract}')", column=c)
        mode = "onehot" if all(s in columns for s in codebook.shorts) else ("json" if "labels" in columns else None)
        plan = cls(source, codebook, id_column, text_columns, parts, mode)
        plan._scan()
        return plan

    # --- the one pass over ids ------------------------------------------------------------------
    def _ids(self, texts: TextsDigest | None = None) -> Iterator[tuple[int, str]]:
        for row, rec in self.source.records():
            if self.id_column not in rec:
                raise DataError(self.path, "missing column", row=row, column=self.id_column)
            ident = text_of(rec[self.id_column])
            if not ident:
                raise DataError(self.path, "empty id (every item needs one; choose another --id-column?)", row=row,
                                column=self.id_column)
            if texts is not None:
                texts.add(self.text(rec))
            yield row, ident

    def _scan(self) -> None:
        """Count items, reject duplicate ids, fingerprint the id list and the texts (memory: 8 bytes per
        item; the texts are hashed as they pass, never kept)."""
        digest = hashlib.sha256()
        texts = TextsDigest()
        hashes = array("Q")  # 8 bytes per id, not a Python int each
        ids: list[str] = []
        for _, ident in self._ids(texts):
            raw = ident.encode()
            digest.update(raw + b"\n")
            hashes.append(int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little"))
            if self.has_references:
                ids.append(ident)
        arr = np.frombuffer(hashes, dtype=np.uint64) if len(hashes) else np.zeros(0, dtype=np.uint64)
        self.n_items, self.fingerprint = len(arr), digest.hexdigest()[:16]
        self.texts_fingerprint = texts.hexdigest()
        uniq, counts = np.unique(arr, return_counts=True)
        if len(uniq) != len(arr):
            self._report_duplicate({int(h) for h in uniq[counts > 1][:1]})
        if self.has_references:  # a coded sample: the canonical split (for metrics and few-shot examples)
            self.split = canonical_split(ids)

    def _report_duplicate(self, suspects: set[int]) -> None:
        first: dict[str, int] = {}
        for row, ident in self._ids():
            h = int.from_bytes(hashlib.blake2b(ident.encode(), digest_size=8).digest(), "little")
            if h in suspects:
                if ident in first:
                    raise DataError(self.path, f"duplicate id {ident} (first at row {first[ident]})",
                                    row=row, column=self.id_column)
                first[ident] = row

    # --- items ---------------------------------------------------------------------------------
    def text(self, rec: dict) -> str:
        if self.template is None:
            return text_of(rec.get(self.text_columns[0]))
        return "".join(lit + (text_of(rec.get(name)) if name else "") for lit, name in self.template).strip()

    def labels(self, rec: dict, row: int) -> tuple[int, ...] | None:
        cb = self.codebook
        try:
            if self.label_mode == "onehot":
                cells = [text_of(rec.get(s)) for s in cb.shorts]
                if all(cells):
                    return check_shape([int(float(c)) for c in cells], cb.n)
            elif self.label_mode == "json":
                val = rec.get("labels")
                if isinstance(val, str) and val.strip():
                    val = json.loads(val)
                if val not in (None, "") and val != []:
                    return check_shape(list(val), cb.n)
        except (LabelError, ValueError, TypeError) as exc:
            raise DataError(self.path, f"bad labels: {exc}", row=row,
                            column="labels" if self.label_mode == "json" else None) from None
        return None

    def item(self, row: int, rec: dict) -> Item:
        ident = text_of(rec.get(self.id_column))
        skip = {self.id_column, *self.codebook.shorts, "labels"} | (set() if self.template else set(self.text_columns))
        meta = {k: v for k, v in rec.items() if k not in skip}
        meta["row"] = row
        split = self.split.get(ident, NO_SPLIT) if self.has_references else NO_SPLIT
        return Item(ident, self.codebook.task, self.text(rec), self.labels(rec, row), split, meta)

    def items(self) -> Iterator[Item]:
        for row, rec in self.source.records():
            yield self.item(row, rec)

    def chunks(self, size: int) -> Iterator[list[Item]]:
        if size < 1:
            raise UserError("--chunk-size must be at least 1")
        chunk: list[Item] = []
        for it in self.items():
            chunk.append(it)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def describe(self) -> dict:
        """What config.json records about the input (a fingerprint of the ids instead of the id list)."""
        return {"path": str(self.path.resolve()), "format": self.source.format, "gzip": self.source.gzipped,
                "id_column": self.id_column, "text": self.text_spec, "n_items": self.n_items,
                "ids_sha256": self.fingerprint, "texts_sha256": self.texts_fingerprint,
                "references": self.has_references}

    @property
    def text_spec(self) -> str:
        if self.template is None:
            return self.text_columns[0]
        return "".join(lit + (f"{{{name}}}" if name else "") for lit, name in self.template)


def load_corpus_items(path: str | Path, codebook: Codebook, id_column: str | None = None,
                      text_column: str | None = None, template: str | None = None) -> list[Item]:
    """Every item of a (small) corpus in memory: a coded sample for training a classifier, say."""
    return list(CorpusPlan.open(path, codebook, id_column, text_column, template).items())
