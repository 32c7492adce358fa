"""Score a JSONL file of completions with a reward mix (`llmscisci grpo score`).

Each input row is a JSON object with `completion` (a string, or a message list as TRL passes
conversational completions) and `truth` (the ground-truth 0/1 list). Every row comes back in input
order with its other fields kept, one field per reward of the mix and `total`; a reward field
replaces a same-named input field (the summary lists which). The summary gives, per reward, the mean
and how many rows it paid > 0 although the completion does not match the format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.errors import DataError
from llmscisci.rewards.core import format_matches
from llmscisci.rewards.registry import RewardMix
from llmscisci.rewards.trl import completion_text


@dataclass
class ScoreSummary:
    rows: int
    mix: dict
    mean: dict[str, float | None]
    paid_without_format: dict[str, int]
    without_format: int
    overwritten: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "rows_without_format": self.without_format, "mean": self.mean,
                "paid_without_format": self.paid_without_format, "overwritten_fields": self.overwritten,
                "mix": self.mix}


def _truth(value, path: Path, row: int) -> list[int]:
    if not isinstance(value, list) or not value or any(type(v) is not int or v not in (0, 1) for v in value):
        raise DataError(path, f"'truth' must be a non-empty list of 0/1 integers, got {json.dumps(value)[:60]}",
                        row=row, column="truth")
    return value


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file (blank lines skipped), each checked: a JSON object with a string or
    message-list `completion` and a 0/1 `truth` list. Row numbers are line numbers (from 1)."""
    if not path.is_file():
        raise DataError(path, "no such file")
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", row=i) from None
        if not isinstance(obj, dict):
            raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", row=i)
        for key in ("completion", "truth"):
            if key not in obj:
                raise DataError(path, f"missing field {key!r}", row=i)
        c = obj["completion"]
        if not isinstance(c, (str, list, dict)):
            raise DataError(path, f"'completion' must be a string or a message list, got {type(c).__name__}",
                            row=i, column="completion")
        _truth(obj["truth"], path, i)
        rows.append(obj)
    if not rows:
        raise DataError(path, "no rows")
    return rows


def score_rows(rows: Sequence[dict], mix: RewardMix) -> tuple[list[dict], ScoreSummary]:
    """(scored rows in input order, summary). Rows with a `task` field are grouped by it (group_f1,
    balanced with per-task prevalences)."""
    completions = [r["completion"] for r in rows]
    columns: dict = {"labels": [r["truth"] for r in rows]}
    if all(isinstance(r.get("task"), str) for r in rows):
        columns["task"] = [r["task"] for r in rows]
    scores = mix.score(completions, **columns)
    names = [*mix.names, "total"]
    formatted = [format_matches(completion_text(c)) for c in completions]
    out, overwritten = [], set()
    for i, r in enumerate(rows):
        overwritten.update(n for n in names if n in r)
        out.append({**r, **{n: scores[n][i] for n in names}})
    mean, paid = {}, {}
    for n in names:
        vals = [v for v in scores[n] if v is not None]
        mean[n] = sum(vals) / len(vals) if vals else None
        paid[n] = sum(1 for v, ok in zip(scores[n], formatted) if not ok and v is not None and v > 0)
    summary = ScoreSummary(len(rows), mix.describe(), mean, paid, formatted.count(False),
                           [n for n in names if n in overwritten])
    return out, summary


def write_rows(path: Path, rows: Sequence[dict]) -> None:
    """All rows at once, through a temporary file: an interrupted write leaves no half file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
