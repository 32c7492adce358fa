"""Download the ReScience MLRC repository archive (or any .tar.gz/.zip of a checkout) and unpack it.

The archive is downloaded to a temporary file (progress shown), optionally checked against a
SHA-256, unpacked into a temporary folder with path-traversal protection and renamed into place;
a single top-level folder (GitHub's `MLRC-<ref>/`) is unwrapped. `fetch.json` records the URL,
size, digest and date.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from llmscisci.errors import UserError
from llmscisci.runs import replace_path

DEFAULT_URL = "https://github.com/ReScience/MLRC/archive/HEAD.tar.gz"
CHUNK = 1 << 16
INFO_FILE = "fetch.json"

# progress(done_bytes, total_bytes_or_None)
Progress = Callable[[int, int | None], None]


def download(
    url: str, dest: Path, timeout: float = 60.0, progress: Progress | None = None
) -> tuple[int, str]:
    """Stream `url` to `dest`; returns (bytes, sha256)."""
    req = urllib.request.Request(url, headers={"User-Agent": "llmscisci-data-fetch"})
    digest = hashlib.sha256()
    n = 0
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, dest.open("wb") as fh:
            total = resp.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                digest.update(chunk)
                n += len(chunk)
                if progress:
                    progress(n, total_n)
    except urllib.error.HTTPError as exc:
        raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"download of {url} failed: {reason} (offline? pass --url to a reachable copy)"
        ) from None
    if total_n is not None and n != total_n:
        raise UserError(f"download of {url} incomplete: {n} of {total_n} bytes")
    return n, digest.hexdigest()


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return not p.is_absolute() and ".." not in p.parts


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a .tar(.gz/.bz2/.xz) or .zip archive into dest, refusing paths that leave it."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            bad = [n for n in zf.namelist() if not _safe_member(n)]
            if bad:
                raise UserError(f"archive has unsafe paths (e.g. {bad[0]!r}); not unpacked")
            zf.extractall(dest)
        return
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            bad = [
                m.name
                for m in members
                if not _safe_member(m.name) or ((m.issym() or m.islnk()) and not _safe_member(m.linkname))
            ]
            if bad:
                raise UserError(f"archive has unsafe paths (e.g. {bad[0]!r}); not unpacked")
            try:
                tf.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters
                tf.extractall(dest, members=[m for m in members if m.isfile() or m.isdir()])
        return
    raise UserError(f"{archive.name} is neither a tar nor a zip archive")


def fetch(
    url: str,
    out: str | Path,
    sha256: str | None = None,
    timeout: float = 60.0,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Download and unpack a checkout archive into `out`; returns what fetch.json records."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UserError(f"{out} exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.fetch.", dir=out.parent))
    try:
        archive = work / "archive"
        size, digest = download(url, archive, timeout=timeout, progress=progress)
        if sha256 and digest.lower() != sha256.strip().lower():
            raise UserError(f"SHA-256 mismatch for {url}: got {digest}, expected {sha256}")
        tree = work / "tree"
        tree.mkdir()
        unpack(archive, tree)
        entries = [p for p in tree.iterdir()]
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tree
        info = {
            "url": url,
            "bytes": size,
            "sha256": digest,
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "unwrapped": top.name if top != tree else None,
        }
        (top / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        replace_path(top, out)
        return info
    finally:
        shutil.rmtree(work, ignore_errors=True)
