"""A run's batch bookkeeping: `batches.json` (batch ids, the request id -> item map, their state) and
`batch_results.jsonl` (one line per answered request, appended as results are collected).

Both live in the run folder, so a killed process re-run with the same command finds the batches it
submitted and collects them instead of submitting (and paying) again. `batches.json` is replaced
atomically; the results file is append-only and is the record of what has been answered, so a crash
between the two never loses or duplicates an answer. Readers (`llmscisci batch status`) take no lock.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.backends.base import Generation
from llmscisci.errors import UserError
from llmscisci.runs import read_jsonl, write_json

STATE_FILE = "batches.json"
RESULTS_FILE = "batch_results.jsonl"
VERSION = 1
TERMINAL = ("completed", "failed", "expired", "cancelled")  # our normalised batch states


@dataclass
class BatchState:
    """In-memory view of batches.json plus the collected results; `path` None keeps it in memory only."""

    path: Path | None
    backend: str = ""
    base_url: str | None = None
    mode: str = "submit"  # submit | file
    requests: dict[str, dict] = field(default_factory=dict)  # custom_id -> {key, items, attempts, state, error}
    batches: list[dict] = field(default_factory=list)
    file: dict | None = None  # --batch-file: {path, model, rows}
    results: dict[str, dict] = field(default_factory=dict)  # custom_id -> stored Generation dict

    # --- files ---------------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: str | Path | None) -> "BatchState":
        if run_dir is None:
            return cls(None)
        path = Path(run_dir)
        st = cls(path)
        f = path / STATE_FILE
        if f.is_file():
            try:
                data = json.loads(f.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"{f}: unreadable ({exc})") from None
            st.backend = data.get("backend", "")
            st.base_url = data.get("base_url")
            st.mode = data.get("mode", "submit")
            st.requests = data.get("requests", {})
            st.batches = data.get("batches", [])
            st.file = data.get("file")
        for row in read_jsonl(path / RESULTS_FILE):
            if row.get("custom_id") in st.requests:
                st.results[row["custom_id"]] = row.get("generation") or {}
        for cid in st.results:
            st.requests[cid]["state"] = "done"
        return st

    @property
    def exists(self) -> bool:
        return self.path is not None and (self.path / STATE_FILE).is_file()

    def save(self) -> None:
        if self.path is None:
            return
        write_json(self.path / STATE_FILE, {
            "version": VERSION, "backend": self.backend, "base_url": self.base_url, "mode": self.mode, "file": self.file,
            "summary": self.summary(), "batches": self.batches, "requests": self.requests,
        })

    def add_results(self, rows: list[tuple[str, Generation, str | None]]) -> None:
        """Record answers (custom_id, generation, batch id): appended to the results file in one write."""
        lines = []
        for cid, gen, batch_id in rows:
            data = gen.as_dict()
            self.results[cid] = data
            self.requests[cid].update(state="done", error=None)
            lines.append(json.dumps({"custom_id": cid, "batch": batch_id, "generation": data},
                                    ensure_ascii=False, default=str) + "\n")
        if self.path is None or not lines:
            return
        with (self.path / RESULTS_FILE).open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())

    # --- requests ------------------------------------------------------------------------
    def by_key(self) -> dict[str, str]:
        return {r["key"]: cid for cid, r in self.requests.items()}

    def new_id(self) -> str:
        """A short id matching every provider's rule (Anthropic: ^[a-zA-Z0-9_-]{1,64}$)."""
        return f"q{len(self.requests) + 1:07d}"

    def result(self, cid: str) -> Generation | None:
        data = self.results.get(cid)
        if data is None:
            return None
        return Generation(**{k: v for k, v in data.items() if k in Generation.__dataclass_fields__})

    # --- batches -------------------------------------------------------------------------
    def open_batches(self) -> list[dict]:
        return [b for b in self.batches if not b.get("collected")]

    def batch(self, batch_id: str) -> dict:
        for b in self.batches:
            if b["id"] == batch_id:
                return b
        raise KeyError(batch_id)

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for r in self.requests.values():
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        return {"requests": len(self.requests), "by_state": dict(sorted(counts.items())),
                "batches": len(self.batches), "open_batches": len(self.open_batches())}


def read_state(run_dir: str | Path) -> dict:
    """batches.json as stored, for `llmscisci batch status` (read-only, no lock)."""
    f = Path(run_dir) / STATE_FILE
    if not f.is_file():
        raise UserError(f"{run_dir}: no {STATE_FILE} (not a batch run folder)")
    try:
        return json.loads(f.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{f}: unreadable ({exc})") from None
