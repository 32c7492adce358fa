"""`llmscisci robustness`: does a conclusion drawn from model labels survive the configuration (model,
prompt variant, wording, seed) that produced the labels, once corrected with a human-coded sample?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from llmscisci.cli.common import DataDirOpt, JsonOpt, JsonOutOpt, console, out

LEGEND = (
    "verdicts n P D: naive, PPI, DSL; '>' above 0, '<' below 0, '.' not distinguishable from 0 "
    "(95% interval covers 0)"
)
SHORT = {">0": ">", "<0": "<", "n.d.": ".", None: "?"}


def _say(text: str, to=None) -> None:
    (to or out).print(text, markup=False, highlight=False)


def _pts(x: float | None, signed: bool) -> str:
    if x is None:
        return "-"
    r = round(100 * x)
    return "0" if r == 0 else (f"{r:+d}" if signed else f"{r:d}")


def _cell(p: dict, signed: bool) -> str:
    if p.get("estimate") is None:
        return "-"
    return f"{_pts(p['estimate'], signed)} [{_pts(p['low'], signed)},{_pts(p['high'], signed)}]"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def print_table(to, table: Table) -> None:
    """These tables are laid out for 80 columns (collapsed padding, value columns never wrap, the
    configuration column folds); cli.tables.fit_table would split them into parts, so rich prints them
    whole and wraps only the label column where a terminal is narrower."""
    to.print(table)


def _table(title: str) -> Table:
    return Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )


def estimand_table(res: dict, e: dict, names: list[str]) -> Table:
    signed = e["kind"] == "contrast"
    unit = "difference of shares, points" if signed else "share, %"
    pct = round(res["level"] * 100)
    t = _table(f"{e['category']} {e['what']} ({unit} [{pct}% CI])")
    t.add_column("configuration", overflow="fold", max_width=26)
    for col in ("naive", "PPI", "DSL", "n P D"):
        t.add_column(col, justify="right" if col != "n P D" else "center", no_wrap=True)
    for name, p in zip(names, e["per_configuration"]):
        t.add_row(
            name,
            *[_cell(p[m], signed) for m in ("naive", "ppi", "dsl")],
            " ".join(SHORT[p[m]["verdict"]] for m in ("naive", "ppi", "dsl")),
        )
    c = e["coded"]
    t.caption = f"coded sample alone: {_cell(c, signed)} ({SHORT[c['verdict']]})"
    t.caption_justify = "left"
    return t


def summary_table(task: str, res: dict, rows: list[dict]) -> Table:
    t = _table(f"{task}: across {len(res['configurations'])} configurations (rates in % of configurations)")
    t.add_column("estimand", overflow="fold", min_width=21, max_width=26)
    for col in ("range n", "range P", "modal", "disagr. n/P/D", "sign n/P/D"):
        t.add_column(col, justify="right", no_wrap=True)
    for e in rows:
        s = e["summary"]
        m = s["methods"]

        def rng(k: str, m: dict = m) -> str:
            sp = m[k]["spread"]
            return "-" if sp is None else f"{100 * sp['range']:.0f}"

        t.add_row(
            f"{e['category']} {e['what'].replace(' - ', '-')}",
            rng("naive"),
            rng("ppi"),
            s["modal_corrected_verdict"] or "-",
            "/".join(_rate(m[k]["disagreement_rate"]) for k in ("naive", "ppi", "dsl")),
            "/".join(_rate(m[k]["sign_error_rate"]) for k in ("naive", "ppi", "dsl")),
        )
    return t


def drivers_table(task: str, drivers: dict) -> Table | None:
    factors = list(drivers.get("naive", {}))
    if not factors:
        return None
    t = _table(f"{task}: drivers (eta^2 of the estimates, verdict flips)")
    t.add_column("factor")
    t.add_column("levels", justify="right")
    for col in ("eta2 naive", "eta2 PPI", "flips naive", "flips PPI"):
        t.add_column(col, justify="right", no_wrap=True)
    for f in factors:
        n, p = drivers["naive"][f], drivers["ppi"][f]

        def eta(d: dict) -> str:
            return "-" if d["eta_squared"] is None else f"{d['eta_squared']:.2f}"

        t.add_row(
            f,
            str(len(n["levels"])),
            eta(n),
            eta(p),
            f"{n['flips']}/{n['compared']}",
            f"{p['flips']}/{p['compared']}",
        )
    return t


def robustness(
    sources: Annotated[list[Path], typer.Argument(
        help="Configurations: a grid folder (every labelling run in it), run folders, or label files.",
        show_default=False)],
    gold: Annotated[Path, typer.Option(
        "--gold", help="The human-coded sample: a `code import` label file (its sampling probabilities are "
        "used) or any label file (taken as a simple random sample).", show_default=False)],
    task: Annotated[str | None, typer.Option(
        "--task", help="Only this task (default: every task the sources and the coded sample share).")] = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="Group items by this column (a column of your own corpus, which its runs keep, or of the "
        "reports table, e.g. mlrc_year) and compare the groups.")] = None,
    contrast: Annotated[str | None, typer.Option(
        "--contrast", help="A,B: the contrast A - B (several: A,B;C,D). Default: every pair of --by groups, "
        "later minus earlier.")] = None,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Does a conclusion survive the configuration? Naive vs corrected verdicts across configurations.

    Every category's share (overall and per group) and every contrast between groups, in every
    configuration, naive (labels as truth) and corrected with the coded sample (PPI, DSL), with 95%
    intervals and verdicts; then, per estimand, how far the configurations spread, how often their
    verdicts disagree with the most common corrected verdict or contradict the coded sample's sign, and
    which choices (model, variant, wording, seed) drive it."""
    from llmscisci.api.measure import robustness as measure
    from llmscisci.runs import write_json

    payload = measure(sources, gold, task=task, by=by, contrast=contrast, level=level, data_dir=data_dir)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_out, payload)
    render(payload, console if as_json else out)  # with --json the tables go to stderr
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    if json_out is not None:
        _say(f"JSON written to {json_out}", console)


def render(payload: dict, to) -> None:
    """The human tables of a robustness result, printed to the console `to`."""
    for t, res in payload["tasks"].items():
        names = [c["label"] for c in res["configurations"]]
        _say(
            f"{t}: {len(names)} configurations, {res['n_items']} items, {res['n_coded']} coded; "
            f"{res['design']}",
            to,
        )
        for note in res["notes"]:
            _say(f"- note: {note}", to)
        has_contrasts = any(e["kind"] == "contrast" for e in res["estimands"])
        rows = [
            e
            for e in res["estimands"]
            if (e["kind"] == "contrast") == has_contrasts and (has_contrasts or e["what"] == "all")
        ]
        for e in rows:
            print_table(to, estimand_table(res, e, names))
        _say(LEGEND, to)
        print_table(to, summary_table(t, res, rows))
        _say(
            "range: max - min of the point estimates (points); modal: the most common corrected verdict; "
            "disagr.: verdict differs from it; sign: significant with the sign opposite to the coded "
            "sample's estimate.",
            to,
        )
        dt = drivers_table(t, res["drivers"])
        if dt is not None:
            print_table(to, dt)
            _say(
                "eta2: share of the estimates' variance between the factor's levels; flips: pairs of "
                "configurations differing only in that factor whose verdicts differ.",
                to,
            )
    if not any(e["kind"] == "contrast" for r in payload["tasks"].values() for e in r["estimands"]):
        _say("no groups: pass --by COLUMN to compare groups (e.g. --by mlrc_year)", to)
    _say(
        "group shares are in --json / --json-out and the report (`llmscisci report` on a folder holding the "
        "--json-out file).",
        to,
    )


def register(app: typer.Typer) -> None:
    app.command("robustness")(robustness)
