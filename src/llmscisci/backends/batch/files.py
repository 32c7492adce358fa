"""OpenAI-format batch results files (OpenAI's output/error files, `vllm run-batch -o`), read back
into per-request results for `llmscisci batch import`."""

from __future__ import annotations

import json
from pathlib import Path

from llmscisci.backends.batch.openai_batch import parse_result
from llmscisci.backends.batch.provider import RowResult
from llmscisci.errors import DataError, UserError


def read_results(path: str | Path, known_ids: set[str]) -> dict[str, RowResult]:
    """custom_id -> RowResult. A line that is not a JSON object with a custom_id, or an id that is not in
    the run's map, is an error naming the file and row; nothing is imported then."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: results file not found")
    out: dict[str, RowResult] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"not JSON ({exc.msg})", row=n) from None
            if not isinstance(obj, dict) or not obj.get("custom_id"):
                raise DataError(path, "no custom_id (not an OpenAI-format batch result row)", row=n)
            cid = str(obj["custom_id"])
            if cid not in known_ids:
                raise DataError(path, f"custom_id {cid!r} is not in this run's batches.json", row=n)
            res = parse_result(obj)
            if cid in out and out[cid].reply is not None and res.reply is None:
                continue  # a success already read wins over a later error row
            out[cid] = res
    return out
