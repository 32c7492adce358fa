"""Normalisation of bibliographic field values, so a prediction and the answer key compare fairly.

Handles what separates the journal page, the BibTeX answer key and a model's answer without changing
the meaning: case, whitespace, HTML entities, LaTeX accents and braces (``Andra\\v{z}``, ``{\\'e}``,
``{{Title}}``), page dashes and stray markup (a pages value ``{#48}`` is ``48``), month names vs
numbers, DOI and URL spellings (``https://doi.org/...``, ``doi:``), and author names written
"Last, First" on the page but "First Last" in the bib. Diacritics are folded (``é`` == ``e``) and, for
titles, punctuation is ignored. All functions are pure and never raise on odd input.
"""

from __future__ import annotations

import calendar
import html
import re
import unicodedata
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

_WS = re.compile(r"\s+")
_DASHES = re.compile(r"\s*(?:-{1,3}|[\u2010-\u2015\u2212])\s*")
_LATEX_HINT = re.compile(r"[\\{}$~]")
_DOI_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/)+|^doi\s*:\s*", re.I)
_DOI_UNDERSCORE = re.compile(r"^(10\.\d{4,9})_")


def text_or_none(value) -> str | None:
    """A scalar as a stripped string; None, empty and whitespace-only values are None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None)
    s = str(value).strip()
    return s or None


# Values that stand for "no value" (a generator printing Python's None: 6 journals in published.bib).
PLACEHOLDERS = frozenset({"none", "null", "nil", "n/a", "na", "unknown", "-"})


def value_or_none(value) -> str | None:
    """text_or_none, with placeholder values ("None", "null", "N/A") read as missing."""
    s = text_or_none(value)
    return None if s is None or s.strip("{} ").casefold() in PLACEHOLDERS else s


@lru_cache(maxsize=1)
def _l2t() -> LatexNodes2Text:
    return LatexNodes2Text(math_mode="text", strict_latex_spaces=False)


def latex_to_text(s: str) -> str:
    """LaTeX markup to Unicode (accents, braces, ``~``, ``\\&``); plain text passes through unchanged.

    A bare ``%`` would start a LaTeX comment and cut the text, so it is escaped first.
    """
    if not _LATEX_HINT.search(s):
        return s
    s = re.sub(r"(?<!\\)%", r"\\%", s)
    try:
        return _l2t().latex_to_text(s)
    except Exception:  # pylatexenc is lenient, but never let odd input crash scoring
        return s.replace("{", "").replace("}", "").replace("~", " ")


def fold(s: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded, spaces collapsed."""
    s = unicodedata.normalize("NFKD", s)
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return _WS.sub(" ", s.casefold()).strip()


def clean_text(value) -> str | None:
    """HTML entities and LaTeX decoded, whitespace collapsed, original case kept (for display)."""
    s = text_or_none(value)
    if s is None:
        return None
    s = latex_to_text(html.unescape(s)).replace("\u00a0", " ")
    s = _WS.sub(" ", s).strip()
    return s or None


def normalize_text(value) -> str | None:
    """Free text (journal, generic fields): decoded, folded, whitespace collapsed."""
    s = clean_text(value)
    return fold(s) or None if s is not None else None


def normalize_title(value) -> str | None:
    """Titles: as normalize_text, and punctuation ignored (``[Re] A: b`` == ``re a b``)."""
    s = normalize_text(value)
    if s is None:
        return None
    s = _WS.sub(" ", re.sub(r"[^\w]+|_", " ", s)).strip()
    return s or None


def normalize_number(value) -> str | None:
    """Volume, issue, year-like numbers: the first integer in the value, leading zeros dropped.

    ``{8}``, ``Vol. 8``, ``08`` and ``8`` are all ``8``; a value without digits is kept as folded text.
    """
    s = clean_text(value)
    if s is None:
        return None
    m = re.search(r"\d+", s)
    if m:
        return str(int(m.group()))
    return fold(s) or None


def normalize_year(value) -> str | None:
    """A four-digit year anywhere in the value (``May 2022`` -> ``2022``), else the first number."""
    s = clean_text(value)
    if s is None:
        return None
    m = re.search(r"(?<!\d)(1[5-9]\d\d|2\d\d\d)(?!\d)", s)
    return m.group(1) if m else normalize_number(s)


_MONTHS = {fold(n): i for i, n in enumerate(calendar.month_name) if n}
_MONTHS.update({fold(n): i for i, n in enumerate(calendar.month_abbr) if n})
_MONTHS["sept"] = 9


def normalize_month(value) -> int | None:
    """Month as 1..12 from a number, a name or an abbreviation (``may``, ``Sept.``, ``{5}``, ``05``)."""
    s = clean_text(value)
    if s is None:
        return None
    s = fold(s).strip(" .{}")
    if s.isdigit():
        n = int(s)
        return n if 1 <= n <= 12 else None
    return _MONTHS.get(s.rstrip("."))


def normalize_pages(value) -> str | None:
    """Pages: braces, ``#``, ``pp.``/``p.`` and spaces dropped; any dash (``--``, en/em dash) is ``-``."""
    s = clean_text(value)
    if s is None:
        return None
    s = fold(s)
    s = re.sub(r"^(?:pages?|pp?)\.?\s*", "", s)
    s = s.replace("#", "").replace("{", "").replace("}", "")
    s = _DASHES.sub("-", s)
    s = re.sub(r"\s+", "", s).strip("-")
    return s or None


def normalize_doi(value) -> str | None:
    """DOI in bare lower-case form: resolver prefixes (``https://doi.org/``, ``http://dx.doi.org/``,
    ``doi:``) stripped, trailing punctuation dropped, ``10.5281_zenodo.X`` read as ``10.5281/zenodo.X``."""
    s = text_or_none(value)
    if s is None:
        return None
    s = html.unescape(s).strip().strip("{}<>\"' ").strip()
    prev = None
    while prev != s:
        prev = s
        s = _DOI_PREFIX.sub("", s).strip()
    s = _DOI_UNDERSCORE.sub(r"\1/", s)
    s = s.rstrip(".,;:)]}").casefold()
    return s or None


def normalize_url(value) -> str | None:
    """URL without scheme and ``www.``, lower-cased, trailing slash and wrapping markup dropped."""
    s = text_or_none(value)
    if s is None:
        return None
    s = html.unescape(s).strip().strip("{}<>\"' ").strip()
    s = re.sub(r"^(?:https?://)?(?:www\.)?", "", s, flags=re.I)
    s = s.rstrip("/").casefold()
    return s or None


# ---- author names ----------------------------------------------------------------------------------
_ETAL = {"et al", "et al.", "others", "and others", "etal"}


def split_authors(value) -> list[str]:
    """An author list from a list, or a string joined by ``and`` / ``;`` / newlines (BibTeX style).

    "et al." and "others" entries are dropped (they name nobody).
    """
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):  # {"name": ...} or {"first": .., "last": ..}
            item = item.get("name") or " ".join(str(item.get(k, "")) for k in ("first", "last"))
        s = text_or_none(item)
        if s is None:
            continue
        for part in re.split(r"\s+and\s+|;|\n|&", s):
            for name in _split_commas(part.strip().strip(",").strip()):
                if name and not _is_etal(name):
                    out.append(name)
    return out


def _is_etal(s: str) -> bool:
    return fold(s).strip(" .,") in {x.rstrip(".") for x in _ETAL}


def _split_commas(part: str) -> list[str]:
    """A comma-joined list of several names: "Sinha, K., Dodge, J." (pairs of Last, First) or
    "Koustuv Sinha, Jesse Dodge" (each piece a full name). One comma is one "Last, First" name."""
    if part.count(",") < 2:
        return [part]
    toks = [t.strip() for t in part.split(",") if t.strip() and not _is_etal(t)]
    if all(" " in t for t in toks):
        return toks
    if len(toks) % 2 == 0:
        return [f"{toks[i]}, {toks[i + 1]}" for i in range(0, len(toks), 2)]
    return [part]


def normalize_name(value) -> str | None:
    """One author name as ``first middle last``: "Last, First" reordered, decoded, folded, dots,
    apostrophes and hyphens dropped (``Sinha, Koustuv`` == ``Koustuv Sinha``; ``Marc-Andr{\\'e}`` ==
    ``marc andre``)."""
    s = clean_text(value)
    if s is None:
        return None
    parts = [p.strip() for p in s.split(",") if p.strip()]
    if len(parts) == 2:
        s = f"{parts[1]} {parts[0]}"
    elif len(parts) == 3:  # "von Last, Jr, First"
        s = f"{parts[2]} {parts[0]} {parts[1]}"
    s = fold(s)
    s = re.sub(r"['\u2019`\u00b4]", "", s)
    s = re.sub(r"[^\w]+|_", " ", s)
    s = _WS.sub(" ", s).strip()
    return s or None


def name_key(normalized: str) -> tuple[str, str]:
    """(surname, first initial) of a normalised ``first ... last`` name: the lenient author key."""
    toks = normalized.split()
    if not toks:
        return ("", "")
    return (toks[-1], toks[0][0] if len(toks) > 1 else "")


def normalize_authors(value) -> list[str]:
    """Author list -> normalised names, in order."""
    out = []
    for a in split_authors(value):
        n = normalize_name(a)
        if n:
            out.append(n)
    return out


NORMALIZERS = {
    "pub_title": normalize_title,
    "doi": normalize_doi,
    "journal": normalize_text,
    "year": normalize_year,
    "volume": normalize_number,
    "issue": normalize_number,
    "pages": normalize_pages,
    "url": normalize_url,
}


def normalize_field(field: str, value):
    """The comparable form of one field's value (authors: the list of normalised names)."""
    if field == "authors":
        return normalize_authors(value)
    return NORMALIZERS.get(field, normalize_text)(value)
