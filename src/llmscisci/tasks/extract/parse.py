"""Model answers -> publication records, robustly.

Free-text answers hide JSON in chatter and code fences, use other key names (``title``, ``number``,
``author``), put the author list in one string, or stop mid-way (token limit). The parser finds the
first JSON value that reads as records and maps it onto the schema leniently; a cut-off answer is
closed at its last complete value (flagged `repaired`). Anything else is recorded as invalid; the
parser never raises.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from llmscisci.tasks.extract.normalize import split_authors, text_or_none, value_or_none
from llmscisci.tasks.extract.schema import FIELDS, MAX_AUTHORS, MAX_CHARS, Publication

# other names models use for the schema's keys
ALIASES = {
    "title": "pub_title", "pubtitle": "pub_title", "publication_title": "pub_title", "article_title": "pub_title",
    "name": "pub_title",
    "author": "authors", "author_list": "authors", "creators": "authors",
    "number": "issue", "no": "issue", "issue_number": "issue",
    "page": "pages", "article_number": "pages",
    "journal_name": "journal", "venue": "journal", "journaltitle": "journal",
    "link": "url", "pdf": "url", "pdf_url": "url", "article_url": "url",
    "publication_year": "year", "date": "year",
    "confidence": "confidence_score", "score": "confidence_score",
    "warnings": "extraction_warnings", "warning": "extraction_warnings",
}
LIST_KEYS = ("publications", "records", "items", "articles", "entries", "results", "papers", "data")
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_OPEN = re.compile(r"[\[{]")


@dataclass
class Parsed:
    records: list[Publication] = field(default_factory=list)
    valid: bool = False
    repaired: bool = False  # a cut-off answer, closed at its last complete value
    error: str | None = None


def _key(k: str) -> str:
    k = re.sub(r"[^a-z0-9]+", "_", str(k).strip().lower()).strip("_")
    return ALIASES.get(k, k)


def _n_fields(d: dict) -> int:
    return sum(_key(k) in FIELDS for k in d)


def _is_recordish(d) -> bool:
    return isinstance(d, dict) and _n_fields(d) >= 2


def _to_float(v) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(str(v).strip().rstrip("%"))
    except ValueError:
        return None
    if (isinstance(v, str) and v.strip().endswith("%")) or 1.0 < x <= 100.0:
        x /= 100.0
    return min(1.0, max(0.0, x)) if x == x else None


def _to_year(v) -> int | None:
    s = text_or_none(v)
    if s is None:
        return None
    m = re.search(r"(?<!\d)(\d{4})(?!\d)", s)
    return int(m.group(1)) if m else None


def _to_str(v, limit: int) -> str | None:
    if isinstance(v, (list, tuple)):
        v = ", ".join(str(x) for x in v if x is not None)
    elif isinstance(v, dict):
        v = json.dumps(v, ensure_ascii=False)
    s = value_or_none(v)
    return s[:limit] if s is not None else None


def coerce_record(d: dict) -> Publication:
    """A dict with any of the schema's keys (or their aliases), values of any type -> Publication."""
    vals: dict = {}
    for k, v in d.items():
        k = _key(k)
        if k not in vals:
            vals[k] = v
    warnings = vals.get("extraction_warnings")
    if isinstance(warnings, str):
        warnings = [warnings]
    return Publication(
        pub_title=_to_str(vals.get("pub_title"), MAX_CHARS["pub_title"]),
        doi=_to_str(vals.get("doi"), MAX_CHARS["doi"]),
        journal=_to_str(vals.get("journal"), MAX_CHARS["journal"]),
        year=_to_year(vals.get("year")),
        authors=[a[:MAX_CHARS["author"]] for a in split_authors(vals.get("authors"))][:MAX_AUTHORS],
        volume=_to_str(vals.get("volume"), MAX_CHARS["volume"]),
        issue=_to_str(vals.get("issue"), MAX_CHARS["issue"]),
        pages=_to_str(vals.get("pages"), MAX_CHARS["pages"]),
        url=_to_str(vals.get("url"), MAX_CHARS["url"]),
        confidence_score=_to_float(vals.get("confidence_score")),
        extraction_warnings=[str(w)[:MAX_CHARS["warning"]] for w in (warnings or []) if text_or_none(w)][:8]
        if isinstance(warnings, (list, tuple)) else [],
    )


def records_from_value(value) -> list[dict] | None:
    """The list of record dicts a decoded JSON value stands for, or None if it is not records."""
    if isinstance(value, list):
        recs = [x for x in value if isinstance(x, dict)]
        if all(isinstance(x, dict) and not x for x in value):  # [] or a list of records cut before any value
            return []
        # records: dicts with schema keys, at least one clearly a record (a cut-off last record may
        # hold a single field); empty dicts are dropped
        if recs and any(_is_recordish(x) for x in recs) and all(_n_fields(x) or not x for x in recs):
            return [x for x in recs if x]
        return None
    if isinstance(value, dict):
        for k in value:
            if _key(k) in LIST_KEYS or str(k).lower() in LIST_KEYS:
                inner = value[k]
                if isinstance(inner, list):
                    return records_from_value(inner)
                if isinstance(inner, dict):
                    return records_from_value([inner])
        if _is_recordish(value):
            return [value]
        for v in value.values():  # {"result": {"publications": [...]}}
            if isinstance(v, (dict, list)):
                got = records_from_value(v)
                if got is not None:
                    return got
    return None


def _json_values(text: str):
    """(value, nested) for every JSON object/array that decodes at some '{' or '[' of `text`, in order.
    `nested`: the value sits inside brackets left open before it (an answer cut off mid-way)."""
    dec = json.JSONDecoder()
    i = 0
    while True:
        m = _OPEN.search(text, i)
        if m is None:
            return
        start = m.start()
        for candidate in (text[start:], _TRAILING_COMMA.sub(r"\1", text[start:])):
            try:
                value, end = dec.raw_decode(candidate)
            except json.JSONDecodeError:
                continue
            yield value, _depth(text[:start]) > 0
            break
        i = start + 1


def _depth(prefix: str) -> int:
    """Brackets opened and not closed in `prefix`, ignoring those inside JSON strings."""
    prefix = re.sub(r'"(?:[^"\\]|\\.)*"', '""', prefix)
    return prefix.count("{") + prefix.count("[") - prefix.count("}") - prefix.count("]")


def _salvage(text: str) -> list[dict]:
    """Record-like objects that decode completely inside a broken answer, left to right."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        j = text.find("{", i)
        if j < 0:
            return out
        try:
            value, end = dec.raw_decode(text, j)
        except json.JSONDecodeError:
            i = j + 1
            continue
        if _is_recordish(value):
            out.append(value)
            i = end
        else:
            i = j + 1


def close_json(prefix: str, max_tries: int = 400):
    """The value of a JSON text cut off mid-way, closed at its last complete element (an unfinished
    string, key or number is dropped, open arrays and objects are closed); None if that fails.

    `{"publications": [{"pub_title": "A", "authors": ["X", "Y` reads as
    `{"publications": [{"pub_title": "A", "authors": ["X"]}]}`.
    """
    stack: list[str] = []
    in_str = esc = False
    cuts: list[tuple[int, str]] = []  # (cut position, closers) at places outside strings
    for i, ch in enumerate(prefix):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                cuts.append((i + 1, "".join(reversed(stack))))
            continue
        if ch == '"':
            in_str = True
            cuts.append((i, "".join(reversed(stack))))
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            cuts.append((i + 1, "".join(reversed(stack))))
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                return None
            stack.pop()
            cuts.append((i + 1, "".join(reversed(stack))))
            if not stack:
                break
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
    for pos, closers in reversed(cuts[-max_tries:]):
        head = prefix[:pos].rstrip()
        while head.endswith((",", ":")):
            head = head[:-1].rstrip()
        try:
            return json.loads(head + closers)
        except json.JSONDecodeError:
            continue
    return None


def parse_output(text: str | None) -> Parsed:
    """Parse one model answer. Never raises."""
    try:
        return _parse(text or "")
    except Exception as exc:  # a parser must not take a run down
        return Parsed(error=f"parser error: {type(exc).__name__}")


def _parse(text: str) -> Parsed:
    if not text.strip():
        return Parsed(error="empty answer")
    bodies = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for body in bodies:
        for value, nested in _json_values(body):
            recs = records_from_value(value)
            if recs is not None and not nested:
                return Parsed(records=[coerce_record(r) for r in recs], valid=True)
            if recs is not None:  # a complete piece of a cut-off answer: close the whole answer
                break
    # a cut-off answer (token limit): close it at its last complete element
    for m in list(_OPEN.finditer(text))[:8]:
        closed = close_json(text[m.start():])
        recs = records_from_value(closed) if closed is not None else None
        if recs is not None:
            return Parsed(records=[coerce_record(r) for r in recs], valid=True, repaired=True)
    salvaged = _salvage(text)
    if salvaged:
        return Parsed(records=[coerce_record(r) for r in salvaged], valid=True, repaired=True)
    return Parsed(error="no JSON records found")
