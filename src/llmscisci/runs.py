"""Run folders: config.json, predictions.jsonl (appended item by item), predictions.csv, metrics.json.

Every run writes one, so a result can be reproduced, resumed and compared. Files other than the
append-only predictions are written atomically (temp file + rename): nothing is left half-written.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import shutil
import tempfile
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from llmscisci.errors import UserError

PACKAGES = ("llmscisci", "torch", "transformers", "trl", "peft", "outlines", "datasets", "scikit-learn",
            "numpy", "openai", "anthropic", "google-genai")


def versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def slug(text: str, *, keep: int | None = 40, default: str = "model", lower: bool = False) -> str:
    """`text` as a file-name part: runs of characters other than letters, digits, `.`, `_`, `-`
    become one `-`; the last `keep` characters are kept (a model name's tail is its distinctive part)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text.lower() if lower else text).strip("-")
    return (s[-keep:] if keep else s) or default


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def replace_path(src: Path, dest: Path) -> None:
    """Move `src` (a file or folder) to `dest`, replacing whatever is there; the swap of a folder is
    two renames, and the old content is removed only once the new one is in place."""
    dest = Path(dest)
    if dest.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}-old-", dir=dest.parent))
        os.replace(dest, trash / dest.name)
        try:
            os.replace(src, dest)
        finally:
            shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dest)


@contextlib.contextmanager
def atomic_folder(dest: str | Path, *, merge: Iterable[str] | None = None):
    """Build a folder in a temporary sibling (yielded) and move it into place when the block ends
    without an error; on an error the temporary folder is removed and `dest` is left untouched.

    With `merge` (the names this writer owns), an existing `dest` keeps its other files and only
    those names are replaced.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        yield tmp
        if merge is not None and dest.is_dir():
            for name in merge:
                if (dest / name).exists() and not (tmp / name).exists():
                    (dest / name).unlink()
            for p in tmp.iterdir():
                os.replace(p, dest / p.name)
            tmp.rmdir()
        else:
            replace_path(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


class BadLinesError(UserError):
    """A JSONL file holds an unreadable line that is not a torn last line."""


class Records(list):
    """The records read from a JSONL file, with the number of unreadable lines that were skipped (and
    their line numbers)."""

    bad_lines: int = 0
    torn_tail: bool = False

    def __init__(self, *args):
        super().__init__(*args)
        self.bad_at: list[int] = []


def iter_jsonl(path: Path, *, skip_bad: bool = True, into: Records | None = None,
               positions: bool = False, at: Iterable[int] | None = None, start: int = 0,
               mentions: bytes | None = None) -> Iterator:
    """The records of a JSONL file one at a time (bounded memory): the one reader of a run folder's
    JSONL files. A torn last line (no newline: a killed run's last write) is always skipped. Any other
    unreadable line (not JSON, not UTF-8, not a JSON object) is skipped and counted in `into.bad_lines`
    when `skip_bad`, else a `BadLinesError` names the file and line: results must never be computed
    silently from fewer records than were written.

    `positions`: yield (line number, byte offset of the line, record). `at`: read only the lines
    starting at these byte offsets (offsets an earlier pass yielded), in that order. `start`: read from
    this byte offset on (a line's start, as a checkpoint records it; line numbers count from there).
    `mentions`: parse only the lines whose bytes contain it (a cheap first filter; the others are
    passed over unread, bad or not)."""
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for no, (pos, raw) in enumerate(_lines(fh, at, start), start=1):
            if not raw.strip() or (mentions is not None and mentions not in raw):
                continue
            try:
                rec = json.loads(raw)
            except ValueError:  # JSON and UTF-8 decoding errors
                rec = None
            if not isinstance(rec, dict):
                if not raw.endswith(b"\n"):  # only the last line can lack its newline
                    if into is not None:
                        into.torn_tail = True
                    continue
                if not skip_bad:
                    what = "not a JSON object" if rec is not None else "unreadable JSON"
                    raise BadLinesError(
                        f"{path}, line {no}: {what} (not a torn last line); the file is damaged: "
                        "pass --skip-bad-lines to use the readable lines and count the others"
                    ) from None
                if into is not None:
                    into.bad_lines += 1
                    into.bad_at.append(no)
                continue
            yield (no, pos, rec) if positions else rec


def _lines(fh, at: Iterable[int] | None, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) of every line of a binary file from byte `start` on, or of the lines at the
    offsets `at`."""
    if at is not None:
        for o in at:
            fh.seek(o)
            yield o, fh.readline()
        return
    fh.seek(start)
    pos = start
    for raw in fh:
        yield pos, raw
        pos += len(raw)


def read_jsonl(path: Path, *, skip_bad: bool = True) -> Records:
    """All records of a JSONL file (see `iter_jsonl` for torn and unreadable lines)."""
    out = Records()
    out.extend(iter_jsonl(path, skip_bad=skip_bad, into=out))
    return out


def meta_column(run_dir: Path, column: str) -> tuple[dict[str, str], list[str]]:
    """(id -> value of item column `column`, the item columns seen) from a corpus run's own records (each
    prediction keeps its item's metadata under `meta`): `--by` on a run of one's own corpus needs
    neither the corpus file nor the reports table. Empty values are left out."""
    values: dict[str, str] = {}
    seen: dict[str, None] = {}
    for rec in iter_jsonl(Path(run_dir) / "predictions.jsonl"):
        meta = rec.get("meta")
        if not isinstance(meta, dict):
            continue
        seen |= dict.fromkeys(meta)
        v = meta.get(column)
        if v is not None and str(v).strip() and rec.get("doi") is not None:
            values[str(rec["doi"]).strip()] = str(v).strip()
    return values, list(seen)


LOCK_FILE = ".lock"
_held: dict[str, list] = {}  # resolved run folder -> [open lock file, depth]: re-entrant within a process


class RunFolder:
    """A run's folder. `config["hash"]` identifies the experiment; resuming checks it matches.

    A process writing into a run folder holds `writing()`, an OS lock (flock) on its `.lock` file:
    a second writer gets an error instead of interleaving predictions, and a killed run leaves no stale
    lock (the OS drops it with the process). Readers never lock.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.bad_lines = 0

    @contextlib.contextmanager
    def writing(self):
        """Hold the folder's write lock (re-entrant within this process); a second writer is refused."""
        self.path.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if key in _held:
            _held[key][1] += 1
        else:
            fh = open(self.path / LOCK_FILE, "a+", encoding="utf-8")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise UserError(f"{self.path} is being written by another run ({holder}); wait for it to "
                                "finish or choose another --out folder") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}\n")
            fh.flush()
            _held[key] = [fh, 1]
        try:
            yield self
        finally:
            _held[key][1] -= 1
            if _held[key][1] == 0:
                fh = _held.pop(key)[0]
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                fh.close()

    # --- creation and resume -------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: dict, resume: bool = True) -> "RunFolder":
        run = cls(path)
        cfg_path = run.path / "config.json"
        if cfg_path.is_file():
            old = json.loads(cfg_path.read_text("utf-8"))
            if old.get("hash") != config.get("hash"):
                raise UserError(
                    f"{run.path} holds a different run (config hash {old.get('hash')} != {config.get('hash')}); "
                    "choose another --out folder"
                )
            if not resume:
                raise UserError(f"{run.path} already holds this run; pass --resume to continue it")
        run.path.mkdir(parents=True, exist_ok=True)
        config = {**config, "versions": versions()}
        write_json(cfg_path, config)
        return run

    def update_config(self, fields: dict) -> None:
        """Replace top-level fields of config.json that do not define the run (never the hash)."""
        cfg = self.config
        if "hash" in fields:
            raise ValueError("the run's hash cannot be updated")
        write_json(self.path / "config.json", {**cfg, **fields})

    @property
    def config(self) -> dict:
        p = self.path / "config.json"
        if not p.is_file():
            raise UserError(f"{self.path} is not a run folder (no config.json)")
        return json.loads(p.read_text("utf-8"))

    # --- predictions -----------------------------------------------------------------------
    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions.jsonl"

    def predictions(self, skip_bad: bool = False) -> list:
        """The predictions as typed records (records.py), the class the run's kind writes
        (`LabelPrediction`, `JudgeCall`, `ExtractUnit`): one per call key (the last wins if a call was
        written twice): per item, per item and candidate order for a judge run.

        An unreadable line other than a torn last one is an error unless `skip_bad`; the number
        skipped is kept in `self.bad_lines`."""
        cls = self._record_type()
        seen: dict[tuple, dict] = {}
        lines = read_jsonl(self.predictions_path, skip_bad=skip_bad)
        self.bad_lines = lines.bad_lines
        for rec in lines:
            seen[cls.line_key(rec)] = rec
        return [cls.read(rec) for rec in seen.values()]

    def iter_predictions(self) -> Iterator:
        """The predictions as typed records, one per call key, the latest attempt of each, in file order
        of that attempt, in bounded memory: a call is written again only after an attempt that got no
        answer (`call_failed`), so only the calls with such an attempt can have an earlier line to pass
        over (`_latest_lines`; memory grows with the failed calls, not the corpus). Unreadable lines are
        skipped (a torn last line of a killed run)."""
        cls = self._record_type()
        last = self._latest_lines(cls.line_key)
        for no, rec in enumerate(iter_jsonl(self.predictions_path)):
            if not last or last.get(cls.line_key(rec), no) == no:
                yield cls.read(rec)

    def unanswered_keys(self) -> set[tuple]:
        """The call keys whose latest attempt got no answer (`call_failed`): asked again by a resumed run.
        A run whose calls all got their answer costs one scan of the bytes, no parse."""
        key = self._record_type().line_key
        last = self._latest_lines(key)
        if not last:
            return set()
        return {k for no, rec in enumerate(iter_jsonl(self.predictions_path))
                if last.get(k := key(rec)) == no and rec.get("call_failed")}

    def _latest_lines(self, key) -> dict[tuple, int]:
        """key -> line number (of the lines read) of the latest attempt, for the calls that have an attempt
        that got no answer: a first pass parses only the lines that mention `call_failed` (none where every
        call got its answer), a second, only if some did, finds the latest line of each such call."""
        path = self.predictions_path
        failed = {key(rec) for rec in iter_jsonl(path, mentions=b'"call_failed"') if rec.get("call_failed")}
        last: dict[tuple, int] = {}
        if failed:
            for no, rec in enumerate(iter_jsonl(path)):
                if (k := key(rec)) in failed:
                    last[k] = no
        return last

    # the names the typed readers had first (`Run.records()` in the Python API keeps the name)
    records = predictions
    iter_records = iter_predictions

    def _record_type(self):
        from llmscisci.records import record_type

        return record_type(self._kind())

    def _kind(self) -> str | None:
        p = self.path / "config.json"
        return json.loads(p.read_text("utf-8")).get("kind") if p.is_file() else None

    def done_keys(self) -> set[tuple]:
        """Items answered (or failed for good); an item whose call got no answer is asked again."""
        return {r.item_key for r in self.predictions() if not r.call_failed}

    def repair_tail(self) -> None:
        """Drop a torn last line left by a killed run, so appends start on a clean line."""
        p = self.predictions_path
        if not p.is_file():
            return
        data = p.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n")
            p.write_bytes(data[: cut + 1] if cut >= 0 else b"")

    def append(self, records: Iterable[dict]) -> None:
        with self.predictions_path.open("a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def rewrite_predictions(self, records: Iterable) -> None:
        """Replace predictions.jsonl atomically (after re-parsing raw outputs, say) with `records`
        (records, each written as its `to_json()`, or dicts)."""
        lines = (r if isinstance(r, dict) else r.to_json() for r in records)
        atomic_write(self.predictions_path,
                     "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in lines))

    # --- results ---------------------------------------------------------------------------
    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / "metrics.json", metrics)

    def metrics(self) -> dict:
        p = self.path / "metrics.json"
        return json.loads(p.read_text("utf-8")) if p.is_file() else {}

    def write_csv(self, rows: list[dict], name: str = "predictions.csv") -> None:
        if not rows:
            atomic_write(self.path / name, "")
            return
        fields = list(rows[0].keys())
        for r in rows[1:]:
            fields += [k for k in r if k not in fields]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        atomic_write(self.path / name, buf.getvalue())
