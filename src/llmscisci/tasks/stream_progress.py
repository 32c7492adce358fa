"""The progress line of a long labelling run: done/total, items/s, ETA and, for API models, the running cost.

Written to stderr by rich (refreshed a few times a second, not per item), so a million-item run pays
a few microseconds per item for it.
"""

from __future__ import annotations

import time

from llmscisci.console import console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class StreamProgress:
    def __init__(self, title: str, total: int, show: bool = True):
        self.total, self.show = total, show
        self.done = self.skipped = self.invalid = self.empty = 0
        self.cost: float | None = None
        self.t0 = time.perf_counter()
        self._last = 0.0
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                            TextColumn("{task.fields[status]}"), console=console,
                            disable=not show, transient=False)
        self.task = self.bar.add_task(title, total=total, rate="", status="")

    def __enter__(self) -> "StreamProgress":
        self.t0 = time.perf_counter()
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._refresh(force=True)
        self.bar.__exit__(*exc)

    def skip(self, n: int) -> None:
        """Items already done by an earlier attempt (a resumed run): counted, not in the rate."""
        if n:
            self.skipped += n
            self.bar.update(self.task, advance=n)

    def advance(self, invalid: bool = False, empty: bool = False, cost: float | None = None) -> None:
        self.done += 1
        self.invalid += invalid
        self.empty += empty
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
        self._refresh()

    @property
    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.t0, 1e-9)

    def _refresh(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        status = f"invalid {self.invalid}"
        if self.empty:
            status += f" empty {self.empty}"
        if self.cost is not None:
            status += f" ${self.cost:.4f}"
        self.bar.update(self.task, completed=self.skipped + self.done, rate=f"{self.rate:,.1f} items/s",
                        status=status)
