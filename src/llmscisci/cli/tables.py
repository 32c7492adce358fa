"""Results tables that fit the terminal, a log file or a pipe (80 columns): numbers are never cut.

`fit_table(table, width)` returns the table itself when it fits; otherwise the same rows split into
several tables that each fit, every part repeating the leading label columns (coder names, the metric,
the group) and carrying a share of the value columns. Value columns are exactly as wide as their
widest value (headers wrap between words); label columns wrap their text when they must. Commands
print through `print_table`, so every results table gets the same treatment.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

# a column costs its text plus one space of padding on each side and one border line
_PAD = 3
LABEL_MAX = 24  # a label column wider than this wraps its text


def _plain(cell) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def _cells(col: Column) -> list:
    return list(col._cells)  # rich keeps a column's cells here


def _value_width(col: Column) -> int:
    """The width a value column needs: its widest cell, and its header's longest word."""
    cells = max((cell_len(line) for c in _cells(col) for line in _plain(c).splitlines() or [""]), default=0)
    words = max((cell_len(w) for w in _plain(col.header).split()), default=0)
    return max(cells, words, 1)


def _label_width(col: Column) -> int:
    natural = max([cell_len(_plain(c)) for c in _cells(col)] + [cell_len(w) for w in _plain(col.header).split()]
                  + [1])
    return min(natural, LABEL_MAX)


def _natural_width(table: Table) -> int:
    widths = []
    for col in table.columns:
        lines = [_plain(c) for c in _cells(col)] + _plain(col.header).splitlines()
        widths.append(max((cell_len(x) for x in lines), default=1))
    return sum(widths) + _PAD * len(widths) + 1


def _is_label(col: Column) -> bool:
    return col.justify in ("left", "default", None)


def _copy(table: Table, title, caption) -> Table:
    return Table(title=title, caption=caption, title_justify=table.title_justify,
                 caption_justify=table.caption_justify, show_lines=table.show_lines, box=table.box,
                 show_header=table.show_header, show_edge=table.show_edge, pad_edge=table.pad_edge,
                 header_style=table.header_style, row_styles=table.row_styles)


def fit_table(table: Table, width: int = 80) -> list[Table]:
    """`table` as one or more tables no wider than `width`, with every value whole."""
    cols = list(table.columns)
    if _natural_width(table) <= width or not cols:
        return [table]
    n_label = 0
    while n_label < len(cols) - 1 and _is_label(cols[n_label]):
        n_label += 1
    label_cols, value_cols = cols[:n_label], cols[n_label:]
    label_w = sum(_label_width(c) + _PAD for c in label_cols) + 1
    groups: list[list[Column]] = [[]]
    used = label_w
    for col in value_cols:
        w = _value_width(col) + _PAD
        if groups[-1] and used + w > width:
            groups.append([])
            used = label_w
        groups[-1].append(col)
        used += w
    n_rows = table.row_count
    parts = []
    for k, group in enumerate(groups):
        title = table.title
        if len(groups) > 1 and title is not None:
            title = f"{_plain(title)} ({k + 1}/{len(groups)})"
        part = _copy(table, title, table.caption if k == len(groups) - 1 else None)
        for col in label_cols:
            part.add_column(col.header, justify=col.justify, style=col.style, header_style=col.header_style,
                            max_width=_label_width(col), overflow="fold")
        for col in group:
            w = _value_width(col)
            part.add_column(col.header, justify=col.justify, style=col.style, header_style=col.header_style,
                            min_width=w, max_width=w, overflow="fold")  # values fit; headers wrap
        for i in range(n_rows):
            part.add_row(*[_cells(c)[i] for c in label_cols + group])
        parts.append(part)
    return parts


def print_table(console: Console, table) -> None:
    """Print a results table (or any renderable) fitted to the console's width."""
    if not isinstance(table, Table):
        console.print(table)
        return
    for part in fit_table(table, console.width):
        console.print(part)
