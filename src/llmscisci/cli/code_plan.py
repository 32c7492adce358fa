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
from llmscisci.errors import UserError


def _say(text: str, to=None) -> None:
    (to or out).print(text, markup=False, highlight=False)


def _pm(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def plan(
    run_dir: Annotated[
        Path, typer.Argument(help="The label run whose items will be coded.", show_default=False)
    ],
    pilot: Annotated[
        Path,
        typer.Option(
            "--pilot",
            help="A pilot coded sample of the run's items (any label file, e.g. from `code import`).",
            show_default=False,
        ),
    ],
    halfwidth: Annotated[
        float,
        typer.Option(
            "--halfwidth",
            help="Target half-width of each category's corrected interval, as a share (0.05 = +-5 points).",
        ),
    ] = 0.05,
    design: Annotated[
        str,
        typer.Option(
            "--design",
            help="How the items will be drawn: stratified (as `code "
            "export --strategy stratified`; DSL) | random "
            "(simple random sample; PPI).",
        ),
    ] = "stratified",
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    assurance: Annotated[
        float,
        typer.Option(
            "--assurance",
            help="Plan with this upper confidence bound of the pilot's error rates (higher: "
            "more items, less risk of falling short).",
        ),
    ] = 0.9,
    edition: Annotated[
        str, typer.Option("--edition", help="Item column that stratifies by edition (as in `code export`).")
    ] = "mlrc_year",
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """How many items people must code for a target interval half-width, from a pilot coded sample.

    From a pilot coded sample, the total number of items people must code so that every category's
    corrected prevalence interval reaches the target half-width (PPI formula for a random sample, the
    expected DSL variance for the stratified design), how narrow the naive interval would wrongly claim
    to be, and, where the target cannot be reached even by coding every item, the half-width that can."""
    import numpy as np

    from llmscisci.metrics.sample_size import DESIGNS, plan_category, total_to_code
    from llmscisci.metrics.stats import as_prediction_matrix
    from llmscisci.runs import write_json
    from llmscisci.coding import load_gold, load_run, stratified_probabilities, stratum_keys

    if design not in DESIGNS:
        raise UserError(f"--design {design!r}: use one of {', '.join(DESIGNS)}")
    if not 0 < halfwidth < 1:
        raise UserError(f"--halfwidth {halfwidth}: give a share between 0 and 1 (0.05 = +-5 points)")
    if not 0 < level < 1:
        raise UserError(f"--level {level}: must be between 0 and 1 (e.g. 0.95)")
    if not 0.5 <= assurance < 1:
        raise UserError(f"--assurance {assurance}: must be in [0.5, 1)")
    run = load_run(run_dir, data_dir, need_items=False, items_if_found=True)  # editions, when found
    cb = run.codebook
    dois = run.dois
    g = load_gold(pilot, cb, dois)
    preds = [run.predictions[d] for d in dois]
    yhat = as_prediction_matrix(preds, cb.n).astype(float)
    valid = np.array([p is not None for p in preds])
    pos = {d: i for i, d in enumerate(dois)}
    idx = np.array([pos[d] for d in g.labels])
    y_pilot = np.array([g.labels[d] for d in g.labels], dtype=float)
    pi_for_n = None
    if design == "stratified":
        editions = None
        if run.items and all(
            str(run.items.get(d).meta.get(edition, "")).strip() if d in run.items else False for d in dois
        ):
            editions = [str(run.items[d].meta[edition]) for d in dois]
        strata = stratum_keys(preds, cb, editions)

        def pi_for_n(n: int) -> np.ndarray:
            return stratified_probabilities(strata, n)

    plans = [
        plan_category(
            short,
            yhat[:, j],
            y_pilot[:, j],
            yhat[idx, j],
            halfwidth,
            design=design,
            pi_for_n=pi_for_n,
            level=level,
            assurance=assurance,
            valid=valid,
        )
        for j, short in enumerate(cb.shorts)
    ]
    total = total_to_code(plans, len(dois))
    payload = {
        "kind": "code_plan",
        "run": str(run_dir),
        "pilot": str(pilot),
        "task": cb.task,
        "design": design,
        "halfwidth": halfwidth,
        "level": level,
        "assurance": assurance,
        "n_items": len(dois),
        "pilot_n": len(g.labels),
        "total": total,
        "all_reachable": all(p.reachable for p in plans),
        "categories": [p.to_dict() for p in plans],
    }
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_out, payload)
    to = console if as_json else out  # with --json the tables go to stderr
    t = Table(
        title=f"{cb.task}: items to code for +-{100 * halfwidth:g} points ({design} design, "
        f"{round(100 * level)}% CI half-widths in points)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for col in ("category", "pilot errors", "to code", "planned", "all coded", "naive"):
        t.add_column(col, justify="left" if col == "category" else "right", no_wrap=True)
    for p in plans:
        e = p.pilot_errors
        t.add_row(
            p.category,
            f"{e['false_alarms'] + e['misses']}/{p.pilot_n}",
            str(p.n_needed) if p.reachable else "unreachable",
            _pm(p.halfwidth_planned),
            _pm(p.halfwidth_all_coded),
            _pm(p.halfwidth_naive),
        )
    print_table(to, t)
    _say(
        f"{len(dois)} items labelled by {run.config.get('model', '?')}; pilot of {len(g.labels)} coded "
        f"items (error rates planned at their {round(100 * assurance)}% upper bounds). Half-widths in "
        "points; naive: the interval that takes the labels as truth would claim this, whatever the "
        "model's errors.",
        to,
    )
    for p in plans:
        if not p.reachable:
            _say(
                f"{p.category}: +-{100 * halfwidth:g} cannot be reached even by coding all {len(dois)} "
                "items; "
                f"the narrowest reachable is +-{100 * p.halfwidth_all_coded:.1f}",
                to,
            )
    if g.outside:
        _say(f"note: {len(g.outside)} pilot items are not among the run's items and were left out", console)
    _say(f"code {total} items in total: llmscisci code export {run_dir} --n {total} --strategy {design}", to)
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    if json_out is not None:
        _say(f"JSON written to {json_out}", console)
