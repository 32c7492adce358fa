"""Reading a researcher's corpus file as a stream of records, whatever its format.

Recognised by content, not by file name: CSV, TSV, JSON Lines, a JSON array, Parquet (each plain or
gzip-compressed where the format allows: not Parquet, which compresses itself), a folder written by
Hugging Face `datasets` (`save_to_disk`), and OpenAlex works (JSON Lines of work records, such as the
snapshot's gzipped parts, or the API's JSON pages `{"meta": ..., "results": [...]}`).

`open_corpus(path)` returns a `Source`; `Source.records()` yields `(row, record)` pairs one at a time
(row: 1-based data row; the header of a CSV is row 0), so a corpus of any size is read in bounded
memory. Bytes that are not UTF-8 and rows that cannot be parsed raise a one-line `DataError` naming the
file and the row.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmscisci.data.openalex import is_work, work_record
from llmscisci.data.textio import decode, decode_line
from llmscisci.errors import DataError

HEAD_BYTES = 64 * 1024
BATCH = 2048
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "hf", "openalex", "openalex-page")


@dataclass(frozen=True)
class Source:
    path: Path
    format: str  # one of FORMATS
    gzipped: bool = False

    @property
    def describe(self) -> str:
        return self.format + (" (gzip)" if self.gzipped else "")

    def records(self) -> Iterator[tuple[int, dict]]:
        reader = {"csv": _delimited, "tsv": _delimited, "jsonl": _jsonl, "openalex": _jsonl,
                  "json": _json_doc, "openalex-page": _json_doc, "parquet": _parquet, "hf": _hf}[self.format]
        return reader(self)


def _open_binary(src: Source):
    return gzip.open(src.path, "rb") if src.gzipped else src.path.open("rb")


def _head(path: Path) -> tuple[bytes, bool]:
    with path.open("rb") as fh:
        raw = fh.read(HEAD_BYTES)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(HEAD_BYTES), True
        except (OSError, EOFError) as exc:
            raise DataError(path, f"not a readable gzip file ({exc})") from None
    return raw, False


def _first_line(head: bytes) -> str:
    line = head.split(b"\n", 1)[0]
    return line.decode("utf-8-sig", errors="replace").strip()


def open_corpus(path: str | Path) -> Source:
    """Recognise the corpus format of `path` from its content."""
    path = Path(path)
    if path.is_dir():
        if any((path / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return Source(path, "hf")
        raise DataError(path, "a folder, but not one saved by Hugging Face datasets (no dataset_info.json, "
                              "state.json or dataset_dict.json)")
    if not path.is_file():
        raise DataError(path, "file not found")
    head, gz = _head(path)
    if head[:4] == b"PAR1":
        if gz:
            raise DataError(path, "gzip-compressed Parquet is not supported (Parquet compresses itself): unzip it")
        return Source(path, "parquet")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise DataError(path, "the file is empty")
    if text[:1] == b"[":
        return Source(path, "json", gz)
    if text[:1] == b"{":
        first = _first_line(text)
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "results" not in obj:  # one object per line
            return Source(path, "openalex" if is_work(obj) else "jsonl", gz)
        if isinstance(obj, dict) and "results" in obj or b'"results"' in text:
            return Source(path, "openalex-page", gz)  # the API's pages: {"meta": ..., "results": [...]}
        return Source(path, "json", gz)  # one (pretty-printed) JSON document
    first = _first_line(text)
    return Source(path, "tsv" if first.count("\t") > first.count(",") else "csv", gz)


def _decoded_lines(src: Source, counter: list[int]) -> Iterator[str]:
    """The file's lines decoded strictly (UTF-8, or the command's --encoding; textio names the first bad
    line); `counter[0]` = records yielded so far."""
    with _open_binary(src) as fh:
        for lineno, raw in enumerate(fh, start=1):
            yield decode_line(raw, src.path, lineno, row=counter[0] + 1)


def _delimited(src: Source) -> Iterator[tuple[int, dict]]:
    csv.field_size_limit(sys.maxsize)
    counter = [0]
    reader = csv.reader(_decoded_lines(src, counter), delimiter="\t" if src.format == "tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(src.path, "the file is empty") from None
    except csv.Error as exc:
        raise DataError(src.path, f"not a readable {src.format.upper()} ({exc})", row=0) from None
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataError(src.path, f"duplicate column name in the header: {dup[0]!r}", row=0)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(src.path, f"not a readable {src.format.upper()} ({exc})", row=counter[0] + 1) from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        counter[0] += 1
        if len(row) > len(header):
            raise DataError(src.path, f"{len(row)} fields but the header has {len(header)}", row=counter[0])
        yield counter[0], dict(zip(header, row + [""] * (len(header) - len(row))))


def _jsonl(src: Source) -> Iterator[tuple[int, dict]]:
    counter = [0]
    openalex = src.format == "openalex"
    for line in _decoded_lines(src, counter):
        line = line.strip()
        if not line:
            continue
        counter[0] += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(src.path, f"not valid JSON ({exc.msg}, character {exc.colno})", row=counter[0]) from None
        if not isinstance(obj, dict):
            raise DataError(src.path, f"each line must be a JSON object, got {type(obj).__name__}", row=counter[0])
        yield counter[0], (work_record(obj) if openalex else obj)


def _json_doc(src: Source) -> Iterator[tuple[int, dict]]:
    """A JSON array of records, or an OpenAlex API page (read whole: pages are small)."""
    with _open_binary(src) as fh:
        raw = fh.read()
    try:
        doc = json.loads(decode(raw, src.path))
    except json.JSONDecodeError as exc:
        raise DataError(src.path, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if isinstance(doc, dict):
        if not isinstance(doc.get("results"), list):
            raise DataError(src.path, "a JSON object without a 'results' list (expected JSON Lines, a JSON array "
                                      "or an OpenAlex API page)")
        doc = doc["results"]
    for i, obj in enumerate(doc, start=1):
        if not isinstance(obj, dict):
            raise DataError(src.path, f"each record must be a JSON object, got {type(obj).__name__}", row=i)
        yield i, (work_record(obj) if is_work(obj) else obj)


def _parquet(src: Source) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(src.path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise DataError(src.path, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=BATCH):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec


def _hf(src: Source) -> Iterator[tuple[int, dict]]:
    from datasets import DatasetDict, load_from_disk

    try:
        ds = load_from_disk(str(src.path))
    except Exception as exc:  # noqa: BLE001 - datasets raises several types for a damaged folder
        raise DataError(src.path, f"not a readable Hugging Face dataset folder ({str(exc).splitlines()[0]})") from None
    parts = list(ds.values()) if isinstance(ds, DatasetDict) else [ds]
    row = 0
    for part in parts:
        for batch in part.iter(batch_size=BATCH):
            cols = list(batch)
            for values in zip(*(batch[c] for c in cols)):
                row += 1
                yield row, dict(zip(cols, values))


def read_records(path: str | Path) -> list[dict]:
    """All records of a (small) corpus file, in order."""
    return [rec for _, rec in open_corpus(path).records()]


def text_of(value) -> str:
    """A cell as text: None -> '', numbers as written, strings stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).strip()


__all__ = ["FORMATS", "Source", "open_corpus", "read_records", "text_of"]
