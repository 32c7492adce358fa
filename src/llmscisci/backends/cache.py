"""Content-addressed response cache: one SQLite file (embedded, no server), shared by all runs.

key = sha256 of (backend identity, model, messages, generation parameters, schema). Output paths are
never part of the key, so a re-run into a new --out folder is answered from the cache with no call.
Each entry records when it was made and the provider's token usage. Only answers are cached (a
refusal or a schema-invalid answer is an answer); transport failures are not.
Nothing secret goes in: keys and headers are not part of requests as stored here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from llmscisci.backends.base import GenParams, Generation, Messages
from llmscisci.errors import UserError

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_unix REAL NOT NULL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    response TEXT NOT NULL
)
"""


def default_cache_path() -> Path:
    from llmscisci.paths import cache_dir

    return cache_dir() / "responses.sqlite"


@lru_cache(maxsize=64)
def schema_fingerprint(schema: type[BaseModel] | None) -> dict | None:
    if schema is None:
        return None
    return {"name": schema.__name__, "json_schema": schema.model_json_schema()}


def cache_key(backend: str, model: str, messages: Messages, params: GenParams,
              schema: type[BaseModel] | None) -> str:
    payload = {
        "v": SCHEMA_VERSION,
        "backend": backend,
        "model": model,
        "messages": messages,
        "params": params.as_dict(),
        "schema": schema_fingerprint(schema),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_STORED = ("text", "tokens_in", "tokens_out", "seconds", "model_version", "refusal", "cost_usd", "extra", "error")


class ResponseCache:
    """Thread-safe get/put over one SQLite connection."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_DDL)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the response cache {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        gen = Generation(**{k: data[k] for k in _STORED if k in data})
        gen.cached = True
        return gen

    def put(self, key: str, backend: str, model: str, gen: Generation) -> None:
        data = {k: getattr(gen, k) for k in _STORED}
        now = time.time()
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, backend, model, created, now, gen.tokens_in, gen.tokens_out,
                 json.dumps(data, ensure_ascii=False, default=str)),
            )

    def put_many(self, rows: list[tuple[str, str, str, Generation]]) -> None:
        """Several (key, backend, model, generation) entries in one transaction (batch results)."""
        now = time.time()
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        values = [(key, backend, model, created, now, gen.tokens_in, gen.tokens_out,
                   json.dumps({k: getattr(gen, k) for k in _STORED}, ensure_ascii=False, default=str))
                  for key, backend, model, gen in rows]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def entry(self, key: str) -> dict | None:
        """The stored row (with created_at and usage), for inspection."""
        with self._lock:
            cur = self._db.execute("SELECT * FROM responses WHERE key = ?", (key,))
            row = cur.fetchone()
            cols = [d[0] for d in cur.description]
        return dict(zip(cols, row)) if row else None

    def __bool__(self) -> bool:  # an empty cache is still a cache
        return True

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
