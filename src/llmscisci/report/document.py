"""The report as data: sections of text, tables and figures. html.py and markdown.py render the same
document, so the two files always show the same content."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Text:
    text: str
    kind: str = "p"  # p | note | warn


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    def numeric(self, j: int) -> bool:
        """A column whose cells all look like numbers is right-aligned."""
        vals = [r[j] for r in self.rows if j < len(r) and r[j] not in ("", "-", "—", "n/a")]
        return bool(vals) and all(_NUM.match(v) for v in vals)


_NUM = re.compile(r"^[<>≤≥]?[-+−]?(\d|\.\d)")


@dataclass
class Figure:
    name: str  # file stem for the Markdown twin, e.g. "fig-01-results-easy"
    png: bytes
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    level: int = 2
    collapsed: bool = False  # long detail (HTML: a <details> element)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"

    def add(self, block) -> Section:
        self.blocks.append(block)
        return self


@dataclass
class Report:
    title: str
    meta: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        out: list[Figure] = []

        def walk(blocks):
            for b in blocks:
                if isinstance(b, Figure):
                    out.append(b)
                elif isinstance(b, Section):
                    walk(b.blocks)

        for s in self.sections:
            walk(s.blocks)
        return out

    def tables(self) -> list[Table]:
        out: list[Table] = []

        def walk(blocks):
            for b in blocks:
                if isinstance(b, Table):
                    out.append(b)
                elif isinstance(b, Section):
                    walk(b.blocks)

        for s in self.sections:
            walk(s.blocks)
        return out
