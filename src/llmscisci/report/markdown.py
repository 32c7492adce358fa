"""The Markdown twin of the HTML report: the same sections and tables, figures as PNG files next to it."""

from __future__ import annotations

from llmscisci.report.document import Figure, Report, Section, Table, Text

PREFIX = {"note": "> **Note:** ", "warn": "> **Warning:** "}


def _esc(v) -> str:
    return str(v).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> str:
    cols = list(t.columns)
    if not any(cols):
        cols = [" "] * len(cols)
    lines = []
    if t.caption:
        lines.append(f"**{_esc(t.caption)}**\n")
    lines.append("| " + " | ".join(_esc(c) for c in cols) + " |")
    lines.append("|" + "|".join("---:" if t.numeric(j) else "---" for j in range(len(cols))) + "|")
    for row in t.rows:
        cells = [_esc(v) for v in row] + [""] * (len(cols) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _blocks(blocks, base_level: int) -> list[str]:
    out = []
    for b in blocks:
        if isinstance(b, Text):
            out.append(PREFIX.get(b.kind, "") + b.text)
        elif isinstance(b, Table):
            out.append(_table(b))
        elif isinstance(b, Figure):
            out.append(f"![{_esc(b.caption or b.name)}]({b.name}.png)\n\n*{_esc(b.caption)}*")
        elif isinstance(b, Section):
            out += _section(b)
    return out


def _section(s: Section) -> list[str]:
    return ["#" * min(max(s.level, 2), 4) + " " + s.title] + _blocks(s.blocks, s.level)


def render_markdown(rep: Report, footer: str = "") -> str:
    parts = [f"# {rep.title}"]
    for s in rep.sections:
        parts += _section(s)
    if footer:
        parts.append(f"---\n\n*{footer}*")
    return "\n\n".join(parts) + "\n"
