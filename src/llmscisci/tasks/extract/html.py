"""Split a journal page into candidate record blocks, and blocks into the units sent to a model.

A block is one publication's stretch of markup. On ReScience's "read" page (jekyll-scholar) that is an
``<li>`` of an ``<ol class="bibliography">``; other pages fall back to list items holding a ``<pre>`` or
a DOI, then to bare ``<pre>`` BibTeX blocks, then to block elements holding a DOI. A candidate nested
inside another (an unclosed tag makes the parser nest the following entries) becomes its own block,
cut out of its parent's markup; what is left without a DOI or ``<pre>`` is dropped.

Units: ``block`` (one block), ``window`` (N consecutive blocks) or ``page`` (the raw page cut into
pieces that fit the model's context).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag

from llmscisci.errors import UserError
from llmscisci.tasks.extract.truth import DOI_RE

UNITS = ("block", "window", "page")


@dataclass
class Block:
    index: int
    html: str  # the block's markup, whitespace collapsed
    section: str = ""  # nearest preceding h2/h3 headings, e.g. "Volume 8 (2022) / Issue 2"
    has_bibtex: bool = False


@dataclass
class Unit:
    """What one model call sees."""

    id: str
    kind: str
    text: str
    blocks: list[int] = field(default_factory=list)  # block indices ([] for page pieces)
    expected_records: int = 1  # how many records the unit may hold (bounds the structured schema)


def collapse_ws(markup: str) -> str:
    """Runs of spaces/tabs -> one space; blank lines dropped; lines stripped. Keeps the markup."""
    lines = (re.sub(r"[ \t\r\f\v]+", " ", ln).strip() for ln in markup.split("\n"))
    return "\n".join(ln for ln in lines if ln)


def parse_html(text: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        return BeautifulSoup(text, "lxml")


def _sections(soup: BeautifulSoup, tags: list[Tag]) -> list[str]:
    """The headings each tag sits under ("Volume 8 (2022) / Issue 2 (...)"), in one document pass."""
    wanted = {id(t): i for i, t in enumerate(tags)}
    out = [""] * len(tags)
    h2 = h3 = ""
    for el in soup.find_all(True):
        if el.name == "h2":
            h2, h3 = el.get_text(" ", strip=True), ""
        elif el.name == "h3":
            h3 = el.get_text(" ", strip=True)
        elif id(el) in wanted:
            out[wanted[id(el)]] = " / ".join(x for x in (h2, h3) if x)
    return out


def _has_doi(tag: Tag) -> bool:
    return bool(DOI_RE.search(str(tag)))


def _candidates(soup: BeautifulSoup) -> list[Tag]:
    # 1. jekyll-scholar bibliography lists (both ReScience snapshots); any depth, because an unclosed
    #    tag in malformed markup makes the parser nest the next entries inside the previous one
    items = [li for li in soup.select("ol.bibliography li, ul.bibliography li")
             if li.find("pre") is not None or _has_doi(li)]
    if items:
        return items
    # 2. list items that carry a BibTeX block or a DOI
    lis = [li for li in soup.find_all("li") if li.find("pre") is not None or _has_doi(li)]
    if lis:
        return lis
    # 3. bare BibTeX blocks
    pres = [p for p in soup.find_all("pre") if "@" in p.get_text()]
    if pres:
        return pres
    # 4. the block-level elements holding a DOI
    return [t for t in soup.find_all(["p", "div", "tr", "article", "section", "dd"]) if _has_doi(t)]


def _own_markup(tags: list[Tag]) -> list[str]:
    """Each tag's markup without the markup of candidates nested inside it, so nested (or wrongly
    nested) entries become separate blocks instead of one block holding several records."""
    ids = {id(t) for t in tags}
    nested: dict[int, list[Tag]] = {}
    for t in tags:
        for parent in t.parents:
            if id(parent) in ids:
                nested.setdefault(id(parent), []).append(t)
                break
    out = []
    for t in tags:
        html = str(t)
        for inner in nested.get(id(t), []):
            html = html.replace(str(inner), "", 1)
        out.append(html)
    return out


def _is_record(markup: str) -> bool:
    return "<pre" in markup or bool(DOI_RE.search(markup))


def split_blocks(page: str, source: str = "page") -> list[Block]:
    """Candidate record blocks of a page, in page order. An empty page, something that is not HTML,
    or a page without any record-like block is a UserError naming `source`."""
    if not page or not page.strip():
        raise UserError(f"{source} is empty")
    soup = parse_html(page)
    if soup.find() is None:
        raise UserError(f"{source} does not look like HTML (no elements found)")
    tags = _candidates(soup)
    blocks: list[Block] = []
    for tag, markup, sec in zip(tags, _own_markup(tags), _sections(soup, tags)):
        if _is_record(markup):
            blocks.append(Block(index=len(blocks), html=collapse_ws(markup), section=sec,
                                has_bibtex="<pre" in markup))
    if not blocks:
        raise UserError(f"{source}: no publication records found (no bibliography list items, "
                        "BibTeX <pre> blocks or DOIs)")
    return blocks


def block_units(blocks: list[Block]) -> list[Unit]:
    return [Unit(id=f"block-{b.index:04d}", kind="block", text=b.html, blocks=[b.index]) for b in blocks]


def window_units(blocks: list[Block], n: int) -> list[Unit]:
    """Consecutive, non-overlapping windows of `n` blocks (the last may be shorter)."""
    if n < 1:
        raise UserError("--window must be at least 1")
    out = []
    for k, start in enumerate(range(0, len(blocks), n)):
        chunk = blocks[start:start + n]
        out.append(Unit(id=f"window-{k:04d}", kind="window", text="\n".join(b.html for b in chunk),
                        blocks=[b.index for b in chunk], expected_records=len(chunk)))
    return out


def page_units(
    page: str,
    fits: Callable[[str], bool] | None = None,
    limit: int | None = None,
    max_chars: int | None = None,
) -> list[Unit]:
    """The raw page (whitespace collapsed) cut into consecutive pieces that fit the context.

    `fits(text)` says whether a piece fits the model's context with room for the answer; each piece is
    the longest prefix of the rest that fits (found by bisection), cut back to a line end. Without
    `fits` (or `max_chars`) the whole page is one piece. `limit` stops after that many pieces.
    """
    text = collapse_ws(page)
    if fits is None and max_chars is None:
        return [Unit(id="page-0000", kind="page", text=text, expected_records=_n_records(text))]
    units: list[Unit] = []
    pos = 0
    while pos < len(text) and (limit is None or len(units) < limit):
        rest = text[pos:]
        hi = min(len(rest), max_chars or len(rest))
        n = hi if fits is None or fits(rest[:hi]) else _longest_fit(rest, hi, fits)
        if n <= 0:
            raise UserError("the model's context is too small for even one line of the page "
                            "(lower --max-new-tokens or use --unit block)")
        if pos + n < len(text):
            cut = rest.rfind("\n", 0, n)
            if cut > n // 2:
                n = cut + 1
        piece = rest[:n].strip()
        if piece:
            units.append(Unit(id=f"page-{len(units):04d}", kind="page", text=piece,
                              expected_records=_n_records(piece)))
        pos += n
    return units


def _longest_fit(rest: str, hi: int, fits: Callable[[str], bool]) -> int:
    lo, best = 1, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(rest[:mid]):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def _n_records(text: str) -> int:
    """How many records a page piece may hold: its BibTeX blocks, else its distinct DOIs (at least 1)."""
    n = len(re.findall(r"<pre\b", text, re.I))
    return max(1, n or len(set(DOI_RE.findall(text))))


def make_units(
    blocks: list[Block],
    page: str,
    unit: str = "block",
    window: int = 3,
    limit: int | None = None,
    fits: Callable[[str], bool] | None = None,
    max_chars: int | None = None,
) -> list[Unit]:
    """The units of a run, the first `limit` of them when given. `fits`/`max_chars`: see page_units."""
    if unit not in UNITS:
        raise UserError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if unit == "block":
        units = block_units(blocks)
    elif unit == "window":
        units = window_units(blocks, window)
    else:
        units = page_units(page, fits=fits, limit=limit, max_chars=max_chars)
    return units[:limit] if limit is not None else units
