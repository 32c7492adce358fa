"""The `llmscisci` command. Each subcommand group lives in its own module with a `register(app)`.

Errors the user can fix (UserError) print as one line on stderr and exit 2; no traceback. A run that
finished with failed items (ItemsFailed) prints its one line after the results and exits 3.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from llmscisci.errors import UserError

app = typer.Typer(
    name="llmscisci",
    help="Large language models for scientometrics: label, extract and judge scholarly text, "
    "measure it honestly, and tune small models with SFT, DPO and GRPO.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# One module per command family, in pipeline order; each defines register(app).
MODULES = ("label", "api", "extract", "judge", "baseline", "train", "grid", "data", "code", "robustness", "export", "batch")
for _name in MODULES:
    try:
        _mod = importlib.import_module(f"llmscisci.cli.{_name}")
    except ModuleNotFoundError as exc:  # a command family not installed in this build
        if exc.name != f"llmscisci.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from llmscisci.data.textio import use_encoding

    use_encoding(None)  # user files are UTF-8 unless this command's --encoding says otherwise
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
