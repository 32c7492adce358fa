"""The library's output: one stderr console for progress and notes, one stdout console for results,
and the one number formatter every table uses.

stdout carries results only (tables, `--json`); everything else goes to stderr. Both consoles look
up `sys.stdout`/`sys.stderr` when they write, so captured or redirected streams are honoured.
"""

from __future__ import annotations

import math

from rich.console import Console

__all__ = ["DASH", "console", "fmt", "fmt_p", "out", "pct"]

console = Console(stderr=True)
out = Console()

DASH = "—"


def fmt(x, digits: int = 3, *, none: str = DASH, thousands: bool = True, compact: bool = False,
        sign: bool = False, trim: bool = False) -> str:
    """A number (or a Stat-like dict {"value": ...}, or None) as table text.

    `digits` decimals for floats; `compact` switches very large or very small floats to `g` notation;
    `thousands` groups integers (12,345); `sign` shows "+" on positive floats; `trim` drops trailing
    zeros (0.500 -> 0.5); None and NaN print as `none`.
    """
    if isinstance(x, dict):
        x = x.get("value")
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}" if thousands else str(x)
    if isinstance(x, float):
        if (compact and x != 0 and (abs(x) >= 1e5 or abs(x) < 10 ** -digits)) or (trim and abs(x) >= 1e6):
            return f"{x:.{digits}g}"
        text = f"{x:{'+' if sign else ''}.{digits}f}"
        return text.rstrip("0").rstrip(".") if trim else text
    return str(x)


def fmt_p(p: float | None) -> str:
    """A p-value: three decimals, "<0.001" below that."""
    if p is None or math.isnan(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def pct(x, digits: int = 1, *, none: str = DASH, sign: bool = True) -> str:
    """A share as a percentage (`digits` decimals; `sign`: with the % sign)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return f"{100 * x:.{digits}f}" + ("%" if sign else "")
