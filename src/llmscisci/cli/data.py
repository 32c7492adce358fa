"""`llmscisci data ...`: build a reports dataset from the ReScience MLRC LaTeX sources, fetch the
repository, import the JCDL 2023 study's files, validate a data directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, track

from llmscisci.cli.common import EncodingOpt, console, out
from llmscisci.errors import UserError


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _warn(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def build_cmd(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Data folder to write (mlrc_reports.csv, ingestion log).")
    ],
    mlrc: Annotated[
        Optional[Path],
        typer.Option(
            "--mlrc",
            help="Checkout of the ReScience MLRC repository (default: the folder `data fetch` writes).",
            show_default=False,
        ),
    ] = None,
    years: Annotated[
        Optional[str],
        typer.Option(
            "--years",
            help="Editions to read, comma-separated (default: every year folder).",
            show_default=False,
        ),
    ] = None,
    merged: Annotated[
        str,
        typer.Option(
            "--merged",
            help="Where a merged 'What was easy and difficult' part goes when it has no explicit "
            "easy/difficult labels: easy (difficult left empty) or both.",
        ),
    ] = "easy",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the files of an existing output.")
    ] = False,
) -> None:
    """Build mlrc_reports.csv from the LaTeX sources, with a per-report ingestion log."""
    from llmscisci.api.data import build_data, default_checkout
    from llmscisci.data.ingest.build import LOG_FILE, SUMMARY_FILE, summary_text

    def progress(items):
        return track(items, description="ingesting reports", console=console, transient=True,
                     disable=not console.is_terminal)

    result = build_data(out_dir, mlrc=mlrc, years=years, merged=merged, overwrite=overwrite, progress=progress)
    _say(summary_text(result, str(mlrc or default_checkout()), details=False).rstrip())
    _say(
        f"wrote {out_dir}: mlrc_reports.csv ({len(result.rows)} reports), {LOG_FILE}, {SUMMARY_FILE} "
        "(every report's problems)"
    )


def fetch_cmd(
    out_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--out", help="Folder for the unpacked checkout (default: the user cache).", show_default=False
        ),
    ] = None,
    url: Annotated[
        Optional[str],
        typer.Option(
            "--url",
            help="Archive to download (.tar.gz or .zip); default: the ReScience MLRC repository on GitHub.",
            show_default=False,
        ),
    ] = None,
    sha256: Annotated[
        Optional[str], typer.Option("--sha256", help="Expected SHA-256 of the archive.", show_default=False)
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Network timeout in seconds.")] = 60.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing checkout.")] = False,
) -> None:
    """Download the ReScience MLRC repository archive and unpack it (needs network)."""
    from llmscisci.api.data import default_checkout
    from llmscisci.data.fetch import DEFAULT_URL, fetch

    target = out_dir or default_checkout()
    source = url or DEFAULT_URL
    with Progress(
        TextColumn("downloading"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as prog:
        task = prog.add_task("download", total=None)

        def on_progress(done: int, total: int | None) -> None:
            prog.update(task, completed=done, total=total)

        info = fetch(
            source, target, sha256=sha256, timeout=timeout, overwrite=overwrite, progress=on_progress
        )
    _say(f"fetched {source} ({info['bytes']} bytes, sha256 {info['sha256']}) into {target}")
    _say(f"next: llmscisci data build --mlrc {target} --out DIR")


def import_seed_cmd(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="The study's ReScience_JCDL-23.csv and/or per-LLM *_effortly_labels_*.csv files."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Data folder to write.")],
    scheme: Annotated[
        str,
        typer.Option(
            "--scheme",
            help="Class numbering of the study file's reason_for_* columns: study (difficult 1 "
            "documentation, 2 algorithm, 3 math, 4 nuance) or lecture (1 algorithm, 2 nuance, "
            "3 documentation, "
            "4 math).",
        ),
    ] = "study",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output folder.")
    ] = False,
    encoding: EncodingOpt = None,
) -> None:
    """Convert the JCDL 2023 study's files into the toolkit's layout, numbering mapped by name."""
    from llmscisci.data.importseed import SCHEMES, check_inputs_outside, plan_import, report_lines, write_import

    if scheme not in SCHEMES:
        raise UserError(f"--scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    check_inputs_outside(files, out_dir)
    with _quiet_loaders():
        plan = plan_import(files, scheme)
    for p in plan.problems:
        _warn(str(p))
    if plan.errors:
        _warn(f"{len(plan.errors)} error(s) in the inputs; nothing written")
        raise typer.Exit(1)
    write_import(plan, out_dir, overwrite=overwrite)
    for line in report_lines(plan):
        _say(line)
    _say(f"wrote {out_dir} (import_report.json records the conversion)")


def validate_cmd(
    directory: Annotated[Optional[Path], typer.Argument(
        help="Data folder (mlrc_reports.csv, labels/); default $LLMSCISCI_DATA, else the bundled dataset.",
        show_default=False)] = None,
    encoding: EncodingOpt = None,
) -> None:
    """Check a data folder with every check of the data layer; print all problems; exit 1 on errors."""
    from llmscisci.data.ingest.checkdir import check_directory
    from llmscisci.paths import data_dir, data_label

    directory = data_dir(directory)

    with _quiet_loaders():
        problems, checked = check_directory(directory)
    for p in problems:
        _warn(str(p))
    errors = [p for p in problems if p.level == "error"]
    warnings = len(problems) - len(errors)
    files = ", ".join(f"{k} ({v})" for k, v in checked["label_files"].items()) or "none"
    _say(f"checked {data_label(directory)}: {checked['reports']} reports; label files: {files}")
    _say(f"{len(errors)} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


class _quiet_loaders:
    """The loaders log each warning; these commands print every problem themselves."""

    def __enter__(self):
        self.logger = logging.getLogger("llmscisci.data")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        help="Data: build the reports dataset from LaTeX sources, fetch them, import the study's "
        "files, validate a data folder.",
        no_args_is_help=True,
    )
    sub.command("build")(build_cmd)
    sub.command("fetch")(fetch_cmd)
    sub.command("import-seed")(import_seed_cmd)
    sub.command("validate")(validate_cmd)
    app.add_typer(sub, name="data")
