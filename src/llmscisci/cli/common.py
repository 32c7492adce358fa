"""Options and helpers shared by the subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from llmscisci.console import console, out

def _use_encoding(value: Optional[str]) -> Optional[str]:
    from llmscisci.data.textio import use_encoding

    return use_encoding(value)  # an unknown name is a one-line error before anything loads


EncodingOpt = Annotated[
    Optional[str],
    typer.Option("--encoding", help="Encoding of the input files you give (CSV, label files), when not UTF-8: "
                 "e.g. cp1252, latin-1. Default UTF-8, with or without BOM; any other byte is an error.",
                 callback=_use_encoding, show_default=False),
]
DataDirOpt = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data folder (mlrc_reports.csv, labels/); else $LLMSCISCI_DATA.",
                 show_default=False),
]
TaskOpt = Annotated[str, typer.Option("--task", help="easy, difficult, or a codebook .toml file.")]
TasksOpt = Annotated[str, typer.Option("--task", help="easy, difficult, a codebook .toml, or several joined by commas.")]
ModelOpt = Annotated[
    str,
    typer.Option("--model", help="Model: smollm2-135m (embedded), a catalogue name, a local folder, a hub id, "
                 "a trained output folder, or provider:model for APIs."),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder under which the run folder is created.")]
StructuredModeOpt = Annotated[
    str,
    typer.Option("--structured-mode", help="OpenAI-compatible servers: how structured output is asked for: "
                 "auto (try json_schema, then json_object + schema, then prompt only; remembered per "
                 "--base-url) | json_schema | json_object | prompt."),
]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (nothing else on stdout; logs go to stderr).")
]
def _json_out(value: Optional[Path]) -> Optional[Path]:
    if value is not None:
        from llmscisci.paths import check_output_path

        check_output_path(value, "file", "--json-out")  # before any work: a bad path is not found at the end
    return value


JsonOutOpt = Annotated[
    Optional[Path], typer.Option("--json-out", help="Also write the result as JSON to this file.", show_default=False,
                                 callback=_json_out)
]
SkipBadLinesOpt = Annotated[
    bool, typer.Option("--skip-bad-lines", help="Use the readable lines of a damaged predictions file (the "
                       "unreadable ones are counted and shown) instead of refusing it.")
]


def explicit(ctx: typer.Context | None, name: str) -> bool:
    """Whether the user gave option `name` (on the command line or through the environment): a resumed
    run refuses another value of an option given, and takes its own for the others."""
    if ctx is None:
        return False
    source = ctx.get_parameter_source(name)  # an enum of the click that typer ships (compared by name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def emit(result, table, as_json: bool, json_out: Optional[Path]) -> None:
    """The machine-output convention of every command that reports results: `--json` prints `result`
    as JSON on stdout and nothing else there (the human table goes to stderr); `--json-out PATH`
    writes the JSON to a file; otherwise the table goes to stdout. `table` may be a rich renderable,
    a list of them, or None."""
    import json

    text = json.dumps(result, indent=2, default=str, ensure_ascii=False)
    if json_out is not None:
        from llmscisci.runs import atomic_write

        json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(json_out, text + "\n")
    from llmscisci.cli.tables import print_table

    tables = table if isinstance(table, list) else ([] if table is None else [table])
    for t in tables:
        print_table(console if as_json else out, t)
    if as_json:
        print(text)
    if json_out is not None:
        console.print(f"JSON written to {json_out}")


def pending_result(task: str, exc) -> tuple[dict, str]:
    """A request file was written (exit status 0): the --json record and the line to print."""
    from llmscisci.api.label_runs import pending_line

    return {"task": task, "run_dir": str(exc.run_dir), "batch_file": exc.file}, pending_line(exc)


def run_result(task: str, run_dir, metrics: dict) -> dict:
    """One labelling run's --json record: where it is, its metrics, and (at the top, to be seen) whether
    its answers depend on the text."""
    res = {"task": task, "run_dir": str(run_dir), "metrics": metrics,
           "diagnostics": metrics.get("diagnostics"), "warnings": metrics.get("warnings", [])}
    if metrics.get("placebo"):
        res["placebo"] = metrics["placebo"]
    return res


def exit_if_unanswered(metrics: list[dict], noun: str = "items", where: str = "",
                       retry: str = "re-run the same command to retry them") -> None:
    """After the results are shown: a run that ended with items the server never answered exits 3
    with one line (ItemsFailed), so that a script or a pipeline notices; a re-run asks them again.
    `where` follows the count (a grid: " in 1 of 4 cells"); `retry` says how to ask them again."""
    from llmscisci.errors import ItemsFailed

    n = sum(int(m.get("unanswered") or 0) for m in metrics)
    if n:
        last = next(m.get("last_error") for m in reversed(metrics) if m.get("unanswered"))
        raise ItemsFailed(f"{n} {noun if n != 1 else noun.rstrip('s')}{where} failed (last error: {last}); "
                          f"{retry}")
