"""`--dry-run` of label, extract and judge: the plan of a run (calls, the first prompt in full, tokens in,
output cap, cost or ETA), computed without sending anything or writing a file."""

from __future__ import annotations

import sys


def emit_text(result, texts: list, as_json: bool = False, json_out=None) -> None:
    """`emit` for plain text that must reach the reader unchanged (a prompt: never wrapped or cropped):
    on stdout, or on stderr under --json; rich tables through the usual consoles."""
    from llmscisci.cli.common import console, emit, out

    stream = sys.stderr if as_json else sys.stdout
    for t in texts:
        if isinstance(t, str):
            stream.write(t.rstrip("\n") + "\n")
            stream.flush()
        else:
            (console if as_json else out).print(t)
    emit(result, None, as_json, json_out)
