"""export's row order and one-row-per-item rule, kept in a few numbers per line (report/export.py
`_scan`): the same rows as the plain per-item dictionary it replaced, also when item keys share a hash."""

import json
import random

import pytest

from llmscisci.data.codebook import Codebook
from llmscisci.report import export
from llmscisci.runs import RunFolder

EASY = Codebook(task="easy", title="t", categories=[{"short": s, "name": s, "description": s}
                                                    for s in ("a", "b", "none")])


def _run(tmp_path, lines) -> RunFolder:
    path = tmp_path / "run"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"kind": "label", "task": "easy", "codebook": EASY.model_dump()}))
    (path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return RunFolder(path)


def _expected(run: RunFolder) -> list[int]:
    """The rule written plainly: the last line of each item, by (row, the item's first line, offset)."""
    last: dict = {}
    with run.predictions_path.open("rb") as fh:
        offset = 0
        for i, raw in enumerate(fh):
            rec = json.loads(raw)
            key = (rec.get("doi"), rec.get("task"))
            row = rec.get("meta", {}).get("row")
            row = row if isinstance(row, int) else float("inf")
            last[key] = (row, last.get(key, (None, i))[1], offset)
            offset += len(raw)
    return [o for *_, o in sorted(last.values())]


def _lines(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    items = list(range(n))
    rng.shuffle(items)  # answers come back out of order
    retried = rng.sample(items, n // 5)  # some items answered again after a call that got no answer
    out = []
    for k in items + retried:
        meta = {"row": k} if k % 7 else {}  # some lines without an input row: file order
        out.append({"doi": f"w{k}", "task": "easy", "labels": [k % 2, 1 - k % 2, 0], "valid": True,
                    "raw": str(k), "call_failed": k in retried and len(out) < n, "meta": meta})
    return out


@pytest.mark.parametrize("collide", [False, True])
def test_scan_keeps_the_last_line_of_each_item_in_input_order(tmp_path, monkeypatch, collide):
    if collide:  # every key shares one hash: the keys themselves must tell the items apart
        monkeypatch.setattr(export, "_key_hash", lambda key: 7)
    run = _run(tmp_path, _lines(60, seed=3))
    _, offsets = export._scan(run, set(), text_numbers=False)
    assert list(offsets) == _expected(run)
    assert len(offsets) == 60


def test_export_writes_one_row_per_item_in_input_order(tmp_path):
    run = _run(tmp_path, _lines(40, seed=5))
    assert export.export_run(run.path, "jsonl", tmp_path / "x.jsonl") == 40
    rows = [json.loads(x) for x in (tmp_path / "x.jsonl").read_text().splitlines()]
    with_row = [r["id"] for r in rows if r.get("row") is not None]
    assert with_row == sorted(with_row, key=lambda d: int(d[1:]))  # input order first
    assert len({r["id"] for r in rows}) == 40
    assert all(r["raw"] == r["id"][1:] for r in rows)


def test_scan_of_an_empty_run(tmp_path):
    run = _run(tmp_path, [])
    meta, offsets = export._scan(run, set(), text_numbers=False)
    assert meta == {} and len(offsets) == 0
