"""Run `llmscisci ARGS` in-process through the console entry point, as a user's shell would."""

from __future__ import annotations

import sys

from llmscisci.cli import main


def run_console(args, capsys, monkeypatch) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `llmscisci ARGS`; a wide terminal so rich tables do not wrap."""
    monkeypatch.setattr(sys, "argv", ["llmscisci", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    cap = capsys.readouterr()
    return code, cap.out, cap.err
