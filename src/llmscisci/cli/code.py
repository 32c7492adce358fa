"""`llmscisci code export|import` (the human coding round trip) and `llmscisci prevalence` (category
shares from model labels, corrected with the human-coded sample: naive, PPI and DSL side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmscisci.cli.common import DataDirOpt, EncodingOpt, JsonOpt, console, emit, out
from llmscisci.errors import UserError


def _say(text: str, stderr: bool = False) -> None:
    (console if stderr else out).print(text, markup=False, highlight=False, soft_wrap=True)


# --- code export ---------------------------------------------------------------------------------
def export(
    runs: Annotated[list[Path], typer.Argument(help="The label run folder to sample (several, for --strategy "
                                                    "disagreement: the first one's items are sampled).")],
    n: Annotated[int, typer.Option("--n", help="How many items to draw for coding.")] = 40,
    strategy: Annotated[str, typer.Option(
        "--strategy", help="stratified (edition x rarest predicted category, square-root allocation) | "
                           "disagreement (most disputed items across the run folders drawn most often) | random")
    ] = "stratified",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draw and of the row order.")] = 2025,
    out_path: Annotated[Path, typer.Option(
        "--out", help="The coder sheet (.csv); beside it: .codebook.csv, .labelstudio.json, .labelstudio.xml "
                      "and .design.json.")] = Path("sample.csv"),
    edition: Annotated[str, typer.Option("--edition", help="Item metadata column that stratifies by edition.")
                       ] = "mlrc_year",
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing export files.")] = False,
) -> None:
    """Draw a sample of a label run's items for people to code: a CSV sheet with one empty 0/1 column per
    category, a second sheet explaining the columns with the codebook's descriptions, and the same
    sample as Label Studio tasks with a labelling config generated from the codebook."""
    from llmscisci.coding import STRATEGIES, check_export_target, draw_sample, load_run, write_export

    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if n < 1:
        raise UserError(f"--n {n}: must be at least 1")
    check_export_target(out_path, force)
    loaded = [load_run(r, data_dir) for r in runs]
    sample = draw_sample(loaded, n, strategy, seed, edition)
    paths = write_export(sample, out_path, force)
    d = sample.design
    _say(f"{d['strategy']} sample of {d['n']} of {d['N']} items ({d['task']}), seed {d['seed']}")
    t = Table(title="strata", title_justify="left")
    for col in ("stratum", "items", "expected", "drawn"):
        t.add_column(col, justify="left" if col == "stratum" else "right")
    for s, row in d["strata"].items():
        t.add_row(s, str(row["N"]), f"{row['expected']:.2f}", str(row["drawn"]))
    out.print(t)
    probs = [r.pi for r in sample.rows]
    _say(f"sampling probabilities {min(probs):.3f} to {max(probs):.3f} (recorded per item; the prevalence "
         "estimators weight by them)")
    for kind, p in paths.items():
        _say(f"{kind:>18}: {p}")
    _say(f"code it, then: llmscisci code import {paths['sheet'].resolve()}")


# --- code import ---------------------------------------------------------------------------------
def import_(
    file: Annotated[Path, typer.Argument(help="The coded sheet (.csv) or a Label Studio export (.json, JSON or "
                                              "JSON-MIN).")],
    coder: Annotated[str | None, typer.Option(
        "--coder", help="Coder name where the file does not give one (default: the file name).")] = None,
    task: Annotated[str | None, typer.Option(
        "--task", help="Task of rows that name none: easy, difficult or a codebook .toml.")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Label file to write (.jsonl; default FILE.coded.jsonl). Several coders: one file each, "
                      "OUT-stem.CODER.jsonl.")] = None,
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing label files.")] = False,
    encoding: EncodingOpt = None,
) -> None:
    """Read a coded sheet or a Label Studio export back, validate every code (one-line errors naming file,
    row and column) and store it as a label file, one per coder, usable wherever a label file is."""
    from llmscisci.api.coding import import_codes

    done = import_codes(file, coder=coder, task=task, out=out_path, data_dir=data_dir, force=force)
    t = Table(title=f"imported {file}", title_justify="left")
    for col in ("coder", "items", "tasks", "repaired", "label file"):
        t.add_column(col, justify="left" if col in ("coder", "label file", "tasks") else "right")
    for r in done.rows():
        t.add_row(r["coder"], str(r["items"]), r["tasks"], str(r["repaired"]), r["label_file"])
    out.print(t)
    if done.imported.skipped:
        _say(f"{done.imported.skipped} rows left uncoded (all category cells empty) were skipped")
    if not done.checked and done.book_file is None:  # the study's reports hold the built-in tasks' DOIs
        _say("DOIs not checked against the reports (pass --data-dir or set LLMSCISCI_DATA to check them)")
    files = " ".join(str(p.resolve()) for p in done.paths.values())
    humans = " ".join(f"--human {p.resolve()}" for p in done.paths.values())
    runs = done.design.get("runs") or ["RUN_DIR"]
    with_task = f" --task {done.book_file}" if done.book_file else ""
    _say(f"compare: llmscisci agree {' '.join(runs)} {files} {humans}{with_task}")
    if len(done.paths) == 1 and done.design.get("runs"):
        _say(f"prevalence: llmscisci prevalence {runs[0]} --gold {files}")


# --- prevalence ----------------------------------------------------------------------------------
def _cell(e: dict) -> str:
    """A share as a percentage with its interval: 68.6 [57.7, 79.4]."""
    if e.get("estimate") is None:
        return "-"
    return f"{100 * e['estimate']:.1f} [{100 * e['low']:.1f}, {100 * e['high']:.1f}]"


def prevalence_tables(result: dict, codebook) -> list[Table]:
    tables = []
    pct = round(result["level"] * 100)
    for short, rows in result["categories"].items():
        name = codebook.names[codebook.index(short)]
        t = Table(title=f"{short}: {name} (% of items [{pct}% CI])", title_justify="left")
        for col in ("group", "N", "coded", "naive", "coded only", "PPI", "DSL"):
            t.add_column(col, justify="left" if col == "group" else "right")
        for r in rows:
            t.add_row(r["group"], str(r["n_total"]), str(r["n_coded"]),
                      *[_cell(r[m]) for m in ("naive", "coded", "ppi", "dsl")])
        tables.append(t)
    return tables


def prevalence(
    run_dir: Annotated[Path, typer.Argument(help="The label run whose predictions cover the corpus.")],
    gold: Annotated[Path, typer.Option("--gold", help="Human codes of a sample of its items: a `code import` "
                                                      "label file (records the sampling design) or any label "
                                                      "file (taken as a simple random sample).")],
    by: Annotated[str | None, typer.Option("--by", help="Also estimate per group of this item column "
                                                           "(e.g. mlrc_year, split).")] = None,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    json_out: Annotated[Path | None, typer.Option(
        "--json-out", help="Where to write the estimates as JSON (default RUN_DIR/prevalence.json).")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """The share of each category in the corpus, three ways side by side: naive (the model's labels as
    truth), prediction-powered inference (Angelopoulos et al. 2023) and design-based supervised learning
    (Egami et al. 2023); the last two correct the model's errors with the human-coded sample and give
    valid confidence intervals. Also the human codes alone, for comparison."""
    from llmscisci.api.measure import check_level, estimate_prevalence
    from llmscisci.runs import write_json

    check_level(level)
    target = json_out or (run_dir / "prevalence.json")
    if json_out is not None and not json_out.parent.is_dir():
        raise UserError(f"--json-out {json_out}: folder {json_out.parent} does not exist")
    est = estimate_prevalence(run_dir, gold, by=by, level=level, data_dir=data_dir)
    payload, result, cb, run, g = est.payload, est.result, est.codebook, est.run, est.gold
    dois, valid, n_coded, design = run.dois, est.valid, len(g.labels), est.design
    emit(payload, prevalence_tables(result, cb), as_json, None)
    _say(f"{len(dois)} items labelled by {run.config.get('model', '?')} ({cb.task}, {run.config.get('variant', '?')}), "
         f"{int((~valid).sum())} invalid outputs; {n_coded} coded by people; {design}.", as_json)
    if g.outside:
        console.print(f"note: {len(g.outside)} coded items of {gold} are not in the run and were left out",
                      markup=False, highlight=False)
    _say("naive: model labels as truth (valid outputs; Wilson CI). coded only: the human codes alone. "
         "PPI: prediction-powered inference, ppi_python (lam=1). DSL: design-based supervised learning "
         "(pseudo-outcome mean, sandwich variance). PPI and DSL intervals cover the population share; for a "
         "corpus mostly coded they are conservative.", as_json)
    reasons = sorted({why for rows in result["categories"].values() for r in rows
                      for m in ("naive", "coded", "ppi", "dsl") if r[m]["reason"]
                      for why in r[m]["reason"].split("; ")})
    for reason in reasons:
        _say(f"- note: {reason}", as_json)
    write_json(target, payload)
    console.print(f"estimates written to {target}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Human coding round trip: export a sample of a label run for people to code "
                           "(CSV or Label Studio), import their codes as a label file.",
                      no_args_is_help=True)
    sub.command("export")(export)
    sub.command("import")(import_)
    from llmscisci.cli.code_plan import plan

    sub.command("plan")(plan)
    app.add_typer(sub, name="code")
    app.command("prevalence")(prevalence)
