"""Read the page to extract from: a local HTML file, or a URL fetched over HTTP(S)."""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bs4 import UnicodeDammit

from llmscisci.errors import UserError

USER_AGENT = "llmscisci-extract/0.1 (+https://pypi.org/project/llmscisci/)"
MAX_BYTES = 50_000_000


@dataclass(frozen=True)
class Page:
    text: str
    origin: str  # the path or URL as given
    sha256: str
    name: str  # a short name for run folders


def is_url(src: str) -> bool:
    return bool(re.match(r"^https?://", str(src).strip(), re.I))


def decode(data: bytes, origin: str, declared: str | None = None) -> str:
    """Bytes -> text: the declared charset, else the markup's own declaration or a guess."""
    guess = UnicodeDammit(data, [declared] if declared else [], is_html=True)
    if guess.unicode_markup is None:
        raise UserError(f"{origin}: cannot decode the page's bytes as text")
    return guess.unicode_markup


def _name(src: str) -> str:
    stem = Path(src.split("?")[0].rstrip("/")).stem if not is_url(src) else re.sub(r"^https?://", "", src)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-")[-40:] or "page"


def fetch(url: str, timeout: float = 30.0) -> tuple[bytes, str | None]:
    """The body of an HTTP(S) GET and its declared charset."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http/https checked)
            data = resp.read(MAX_BYTES + 1)
            charset = resp.headers.get_content_charset()
    except urllib.error.HTTPError as exc:
        raise UserError(f"could not fetch {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"could not fetch {url}: {reason} (no internet? save the page and pass the file)") from None
    if len(data) > MAX_BYTES:
        raise UserError(f"{url}: page larger than {MAX_BYTES // 1_000_000} MB")
    return data, charset


def read_page(src: str | Path, timeout: float = 30.0) -> Page:
    """The page's text. Missing, unreadable or empty input is a UserError (one line)."""
    src = str(src)
    charset = None
    if is_url(src):
        data, charset = fetch(src, timeout)
    else:
        p = Path(src).expanduser()
        if not p.exists():
            raise UserError(f"page {src} not found (give an HTML file or an http(s) URL)")
        if not p.is_file():
            raise UserError(f"page {src} is not a file")
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {src}: {exc.strerror}") from None
    if not data.strip():
        raise UserError(f"page {src} is empty")
    text = decode(data, src, charset)
    return Page(text=text, origin=src, sha256=hashlib.sha256(data).hexdigest(), name=_name(src))
