"""Experiment grids and reports: `llmscisci report RUN_OR_GRID_DIR` (and `llmscisci grid CONFIG.toml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.console import fmt
from llmscisci.cli.common import DataDirOpt, SkipBadLinesOpt, console, exit_if_unanswered, out


def report(
    run_dir: Annotated[Path, typer.Argument(
        help="A run folder, a grid folder, or any folder of run folders, training folders and agreement "
             "tables.",
        show_default=False)],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for report.html, report.md and the "
                                                   "figures (default: RUN_OR_GRID_DIR/report).",
                                                   show_default=False)] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples (of DOIs).")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 2025,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    adjust: Annotated[str, typer.Option("--adjust", help="Multiple-comparison adjustment of paired tests: "
                                                         "holm, fdr_bh or bonferroni.")] = "holm",
    title: Annotated[Optional[str], typer.Option("--title", help="Report title.", show_default=False)] = None,
    skip_bad_lines: SkipBadLinesOpt = False,
) -> None:
    """Write a self-contained HTML report and a Markdown twin: metrics with bootstrap CIs per cell, paired
    comparisons, per-label F1, confusion, invalid outputs, tokens/cost/time, agreement tables, robustness
    of conclusions (`llmscisci robustness --json-out` files) and training curves."""
    from llmscisci.api.measure import report as write

    w = write(run_dir, out_dir, n_boot=n_boot, seed=seed, level=level, adjust=adjust, title=title,
              skip_bad_lines=skip_bad_lines, progress=True)
    console.print(f"report: {w.n_label_runs} labelling run(s), {w.n_train_runs} training folder(s), "
                  f"{w.n_tables} table(s), {len(w.figures)} figure(s)")
    typer.echo(str(w.html))  # plain: paths must not be wrapped
    typer.echo(str(w.markdown))


def _usd(x: float | None) -> str:
    if x is None:
        return "?"
    if x == 0:
        return "$0"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


_num = fmt


def _cell_name(grid, c) -> str:
    name = f"{c.kind} {c.task}" + (f"/{c.variant}" if c.variant != "-" else "")
    if grid.spec.paraphrases > 0 and c.paraphrase is not None:
        name += f" p{c.paraphrase}"
    if len(grid.spec.seeds) > 1:
        name += f" s{c.seed}"
    return name


def _cell_tables(grid) -> list:
    """One table per model: its cells, their status, the calls left and their estimated tokens and cost."""
    from rich.table import Table

    from llmscisci.backends.registry import resolve_model
    from llmscisci.tasks import registry

    tables = []
    for m in grid.spec.models:
        cells = [(i, c) for i, c in enumerate(grid.cells, start=1) if c.model == m.name]
        if not cells:
            continue
        # token and cost columns for a model whose cells call a language model (not a classical baseline)
        tokens = any(registry.get(c.kind).needs_model for _, c in cells)
        t = Table(title=f"{m.name} ({resolve_model(m.name).kind})", title_justify="left")
        t.add_column("#", justify="right", no_wrap=True)
        t.add_column("cell", overflow="fold")
        t.add_column("status", no_wrap=True)
        for col in ("items", "calls") + (("tokens in", "out ≤", "cost") if tokens else ()):
            t.add_column(col, justify="right", no_wrap=True)
        for i, c in cells:
            row = [str(i), _cell_name(grid, c), c.status, _num(c.n_items), _num(c.calls)]
            if tokens:
                row += [_num(c.tokens_in), _num(c.tokens_out), _usd(c.cost_usd)]
            t.add_row(*row)
        tables.append(t)
    return tables


def _model_table(tot):
    from rich.table import Table

    t = Table(title="per model", title_justify="left")
    for col, just in (("model", "left"), ("kind", "left"), ("cells", "right"), ("to run", "right"),
                      ("calls", "right"), ("tokens in", "right"), ("out ≤", "right"), ("cost", "right")):
        t.add_column(col, justify=just, overflow="fold")
    for name, m in tot.per_model.items():
        t.add_row(name, m["kind"], _num(m["cells"]), _num(m["to_run"]), _num(m["calls"]),
                  _num(m["tokens_in"]), _num(m["tokens_out"]), _usd(m["cost_usd"]))
    return t


def _summary_lines(grid, tot) -> list[str]:
    lines = [f"grid {grid.spec.name}: {tot.cells} cells ({tot.done} finished, {tot.partial} partial, "
             f"{tot.to_run} to run); {_num(tot.calls)} model calls to make"]
    if tot.api_calls or any(m["kind"] == "api" for m in tot.per_model.values()):
        lines.append(f"API models: {_num(tot.api_calls)} calls, ~{_num(tot.api_tokens_in)} input tokens, "
                     f"at most {_num(tot.api_tokens_out)} output tokens; estimated cost "
                     f"{_usd(tot.api_cost_usd)} (list prices of the price table; output counted at each "
                     "call's max_new_tokens cap, so an upper bound for that part)")
    else:
        lines.append("no API models: estimated cost $0")
    return lines


def grid(
    config: Annotated[Path, typer.Argument(help="The grid's TOML file (see configs/grid_*.toml).",
                                           show_default=False)],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the cells, the calls still to make and, for API models, the estimated "
                          "tokens and cost; run nothing.")] = False,
    data_dir: DataDirOpt = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Output folder (default: the file's `out`).", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", help="Override every limit of the file: the first N items (judge: items, extract: units) "
                        "per cell.", show_default=False)] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failing cell (default: "
                                            "record the failure in grid.json and go on).")] = False,
) -> None:
    """Run an experiment grid: tasks x models x prompt variants (x paraphrases x seeds), one run folder per
    cell. Finished cells (same configuration hash) are skipped and partial ones resume item by item.
    Exit status 3 when cells ended with items the server never answered (a re-run asks them again)."""
    from llmscisci.api.grid import check_cells, failed_cells, plan_grid, unanswered_cells
    from llmscisci.tasks.grid import GRID_FILE, run_grid, totals

    g, inputs = plan_grid(config, data_dir=data_dir, out=out_dir, limit=limit)
    tot = totals(g)
    if dry_run:
        out.print(f"grid {g.spec.name}: output folder {inputs.out}", soft_wrap=True, markup=False)
        for table in _cell_tables(g):
            out.print(table)
        out.print(_model_table(tot))
        for note in g.notes:
            out.print(f"note: {note}", soft_wrap=True)
        for line in _summary_lines(g, tot):
            out.print(line, soft_wrap=True)
        return
    for note in g.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(_summary_lines(g, tot)[0], soft_wrap=True)
    run_grid(g, inputs, config_path=str(config), fail_fast=fail_fast)
    for table in _result_tables(g):
        out.print(table)
    for c in failed_cells(g):
        console.print(f"{c.id}: {c.status}: {c.error}", soft_wrap=True, markup=False)
    missing = unanswered_cells(g, inputs)
    for cid, m in missing.items():
        console.print(f"{cid}: {m['unanswered']} unanswered: {m.get('last_error')}", soft_wrap=True, markup=False)
    typer.echo(str(inputs.out / GRID_FILE))
    console.print(f"report: llmscisci report {inputs.out}", soft_wrap=True, markup=False)
    check_cells(g, inputs)
    exit_if_unanswered(list(missing.values()), where=f" in {len(missing)} of {len(g.cells)} cells")


def _result_tables(g) -> list:
    """The grid's results: one table per kind of task, in registry order (a kind may share another's
    table: baselines sit with the labelling cells); the kind names its title and headline columns."""
    from rich.table import Table

    from llmscisci.tasks import registry

    groups: dict[str, list] = {}
    for c in g.cells:
        k = registry.get(c.kind)
        groups.setdefault(k.results_with or k.name, []).append(c)
    tables = []
    for name in [n for n in registry.KINDS if n in groups]:
        kind, cells = registry.get(name), groups[name]
        title, cols = kind.results_title or name, kind.headline_columns
        t = Table(title=f"grid {g.spec.name}: {title}", title_justify="left")
        t.add_column(kind.task_column, no_wrap=True)
        t.add_column("model", overflow="fold", min_width=min(24, max(len(c.model) for c in cells)))
        t.add_column("variant", no_wrap=True)
        t.add_column(kind.items_column, justify="right", no_wrap=True)
        for col, _key in cols:
            t.add_column(col, justify="right", no_wrap=True)
        t.add_column("s", justify="right", no_wrap=True)
        for c in cells:
            variant = c.variant
            if g.spec.paraphrases and c.paraphrase is not None:
                variant += f" p{c.paraphrase}"
            if len(g.spec.seeds) > 1:
                variant += f" s{c.seed}"
            head = c.headline or {}
            if c.status == "done":
                vals = [f"{head[k]:.3f}" if isinstance(head.get(k), (int, float)) else "-"
                        for _col, k in cols]
            else:
                vals = [c.status] + [""] * (len(cols) - 1)
            secs = f"{c.seconds:.0f}" if c.seconds is not None else "-"
            t.add_row(kind.task_of(c, g.spec), c.model, variant, str(c.n_items),
                      *vals, secs)
        tables.append(t)
    return tables


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("grid")(grid)
