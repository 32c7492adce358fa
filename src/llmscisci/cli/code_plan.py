"""`llmscisci code plan`: how many items people must code, in total, for every category's corrected
prevalence interval to reach a target half-width, from a pilot coded sample (metrics/sample_size.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from llmscisci.cli.common import DataDirOpt, JsonOpt, JsonOutOpt, console, out
from llmscisci.cli.tables import print_table


def _say(text: str, to=None) -> None:
    (to or out).print(text, markup=False, highlight=False)


def _pm(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def plan(
    run_dir: Annotated[Path, typer.Argument(help="The label run whose items will be coded.", show_default=False)],
    pilot: Annotated[Path, typer.Option("--pilot", help="A pilot coded sample of the run's items (any label file, e.g. from `code import`).", show_default=False)],
    halfwidth: Annotated[float, typer.Option("--halfwidth", help="Target half-width of each category's corrected interval, as a share (0.05 = +-5 points).")] = 0.05,
    design: Annotated[str, typer.Option("--design", help="How the items will be drawn: stratified (as `code export --strategy stratified`; DSL) | random (simple random sample; PPI).")] = "stratified",
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    assurance: Annotated[float, typer.Option("--assurance", help="Plan with this upper confidence bound of the pilot's error rates (higher: more items, less risk of falling short).")] = 0.9,
    edition: Annotated[str, typer.Option("--edition", help="Item column that stratifies by edition (as in `code export`).")] = "mlrc_year",
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """How many items people must code for a target interval half-width, from a pilot coded sample.

    From a pilot coded sample, the total number of items people must code so that every category's
    corrected prevalence interval reaches the target half-width (PPI formula for a random sample, the
    expected DSL variance for the stratified design), how narrow the naive interval would wrongly claim
    to be, and, where the target cannot be reached even by coding every item, the half-width that can."""
    from llmscisci.api.coding import plan_coding
    from llmscisci.runs import write_json

    done = plan_coding(run_dir, pilot, halfwidth=halfwidth, design=design, level=level, assurance=assurance,
                       edition=edition, data_dir=data_dir)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_out, done.payload)
    show_plan(done, console if as_json else out)  # with --json the tables go to stderr
    if as_json:
        sys.stdout.write(json.dumps(done.payload, indent=2, ensure_ascii=False) + "\n")
    if json_out is not None:
        _say(f"JSON written to {json_out}", console)


def show_plan(done, to) -> None:
    """The plan's table and notes, on `to`."""
    p0, plans, n_items = done.payload, done.plans, done.payload["n_items"]
    halfwidth, design = p0["halfwidth"], p0["design"]
    t = Table(title=f"{p0['task']}: items to code for +-{100 * halfwidth:g} points ({design} design, "
                    f"{round(100 * p0['level'])}% CI half-widths in points)",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("category", "pilot errors", "to code", "planned", "all coded", "naive"):
        t.add_column(col, justify="left" if col == "category" else "right", no_wrap=True)
    for p in plans:
        e = p.pilot_errors
        t.add_row(p.category, f"{e['false_alarms'] + e['misses']}/{p.pilot_n}",
                  str(p.n_needed) if p.reachable else "unreachable", _pm(p.halfwidth_planned),
                  _pm(p.halfwidth_all_coded), _pm(p.halfwidth_naive))
    print_table(to, t)
    _say(f"{n_items} items labelled by {done.run.config.get('model', '?')}; pilot of {p0['pilot_n']} coded "
         f"items (error rates planned at their {round(100 * p0['assurance'])}% upper bounds). Half-widths in "
         "points; naive: the interval that takes the labels as truth would claim this, whatever the "
         "model's errors.", to)
    for p in plans:
        if not p.reachable:
            _say(f"{p.category}: +-{100 * halfwidth:g} cannot be reached even by coding all {n_items} items; "
                 f"the narrowest reachable is +-{100 * p.halfwidth_all_coded:.1f}", to)
    if done.gold.outside:
        _say(f"note: {len(done.gold.outside)} pilot items are not among the run's items and were left out", console)
    _say(f"code {p0['total']} items in total: llmscisci code export {p0['run']} --n {p0['total']} --strategy "
         f"{design}", to)
