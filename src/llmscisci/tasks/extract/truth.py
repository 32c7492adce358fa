"""The answer key: a BibTeX bibliography (published.bib), indexed by normalised DOI.

The truth set of an input (a page, a block, a window) is the bib entries whose DOI occurs in it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser
from bibtexparser import middlewares as mw

from llmscisci.errors import DataError, UserError
from llmscisci.tasks.extract.normalize import (
    clean_text,
    normalize_doi,
    normalize_month,
    text_or_none,
    value_or_none,
)

# A DOI as written in HTML or BibTeX: stops at whitespace, quotes, tags and braces. `10.5281_zenodo.X`
# (an underscore for the slash, seen in the bib) is accepted too.
DOI_RE = re.compile(r"10\.\d{4,9}[/_][^\s\"'<>{}|\\]+")


@dataclass(frozen=True)
class TruthRecord:
    """One bib entry, with raw (LaTeX-decoded) values; scoring normalises both sides itself."""

    key: str
    doi: str  # normalised
    pub_title: str | None = None
    journal: str | None = None
    year: str | None = None
    month: int | None = None
    authors: tuple[str, ...] = ()
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    url: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def get(self, name: str):
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k != "extra"}


def strip_braces(value) -> str | None:
    """A BibTeX value without its protective braces (``{{Title}}`` -> ``Title``); LaTeX kept."""
    s = text_or_none(value)
    if s is None:
        return None
    while len(s) >= 2 and s[0] == "{" and s[-1] == "}" and _balanced(s[1:-1]):
        s = s[1:-1].strip()
    return s or None


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def parse_bibtex(text: str) -> tuple[list[dict], int]:
    """BibTeX text -> (entries as {"key", "type", field: value} with authors split, n failed blocks)."""
    log = logging.getLogger("bibtexparser")
    level = log.level
    log.setLevel(logging.ERROR)  # a broken block is counted, not printed
    try:
        lib = bibtexparser.parse_string(text, append_middleware=[mw.SeparateCoAuthors(), mw.MonthIntMiddleware(True)])
    finally:
        log.setLevel(level)
    out = []
    for e in lib.entries:
        d = {"key": e.key, "type": e.entry_type}
        for k, f in e.fields_dict.items():
            d[k.lower()] = f.value
        out.append(d)
    return out, len(lib.failed_blocks)


def record_from_fields(d: dict) -> dict:
    """Schema-named values from one parsed BibTeX entry (issue = number): braces stripped, LaTeX
    decoded for text fields, DOI and URL kept verbatim, placeholders ("None") read as missing."""
    authors = d.get("author") or []
    if isinstance(authors, str):
        authors = [authors]
    month = d.get("month")

    def raw(*keys):
        for k in keys:
            v = value_or_none(strip_braces(d.get(k)))
            if v is not None:
                return v
        return None

    return {
        "pub_title": clean_text(raw("title")),
        "doi": raw("doi"),
        "journal": clean_text(raw("journal", "journaltitle")),
        "year": raw("year"),
        "month": month if isinstance(month, int) else normalize_month(strip_braces(month)),
        "authors": [clean_text(strip_braces(a)) for a in authors if value_or_none(a)],
        "volume": raw("volume"),
        "issue": raw("number", "issue"),
        "pages": raw("pages"),
        "url": raw("url"),
    }


class TruthIndex:
    """Bib entries keyed by normalised DOI."""

    def __init__(self, records: list[TruthRecord], source: str = ""):
        self.records = {r.doi: r for r in records}
        self.source = source

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, doi: str) -> bool:
        return doi in self.records

    def get(self, doi: str | None) -> TruthRecord | None:
        return self.records.get(normalize_doi(doi)) if doi else None

    def dois_in(self, text: str) -> list[str]:
        """Bib DOIs occurring in `text`, in order of first appearance (each once)."""
        out: dict[str, None] = {}
        for raw in DOI_RE.findall(text):
            doi = normalize_doi(raw)
            if doi in self.records:
                out.setdefault(doi)
        return list(out)

    def by_title(self) -> dict[str, str]:
        """normalised title -> DOI (titles shared by several entries are left out: ambiguous)."""
        from llmscisci.tasks.extract.normalize import normalize_title

        seen: dict[str, list[str]] = {}
        for r in self.records.values():
            t = normalize_title(r.pub_title)
            if t:
                seen.setdefault(t, []).append(r.doi)
        return {t: ds[0] for t, ds in seen.items() if len(ds) == 1}


def load_truth(path: str | Path) -> TruthIndex:
    """Read a bibliography. Entries without a DOI cannot be joined and are skipped; a file with no
    usable entry, or DOIs used twice, is an error naming the file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"bibliography {p} not found (pass --bib FILE or --data-dir with rescience/published.bib)")
    try:
        text = p.read_text("utf-8")
    except UnicodeDecodeError:
        text = p.read_text("latin-1")
    entries, failed = parse_bibtex(text)
    records: list[TruthRecord] = []
    seen: dict[str, str] = {}
    for d in entries:
        vals = record_from_fields(d)
        doi = normalize_doi(vals.pop("doi"))
        if not doi:
            continue
        if doi in seen:
            raise DataError(p, f"DOI {doi} used by two entries ({seen[doi]} and {d['key']})")
        seen[doi] = d["key"]
        vals["authors"] = tuple(vals["authors"])
        records.append(TruthRecord(key=d["key"], doi=doi, **vals))
    if not records:
        why = f" ({failed} unparseable blocks)" if failed else ""
        raise DataError(p, f"no BibTeX entries with a DOI{why}")
    return TruthIndex(records, source=str(p))
