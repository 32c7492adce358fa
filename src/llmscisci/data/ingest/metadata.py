"""A ReScience article's metadata from `metadata.yaml` (the author-filled source) and `metadata.tex`
(generated from it, what the PDF was built with): DOI, title, authors, volume, issue, review URL,
code URL, article type. Where both exist and disagree the YAML value is used and the conflict
reported; a missing or malformed DOI is reported, never invented."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

from llmscisci.data.ingest import log as L
from llmscisci.data.ingest.latex import match_brace, strip_comments, to_text

DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
FIELDS = ("doi", "title", "authors", "volume", "issue", "review_url", "code_url", "article_type")


@dataclass
class Metadata:
    doi: str = ""
    title: str = ""
    authors: list[str] = field(default_factory=list)
    volume: str = ""
    issue: str = ""
    review_url: str = ""
    code_url: str = ""
    article_type: str = ""
    sources: dict[str, str] = field(default_factory=dict)  # field -> file it came from

    @property
    def review_id(self) -> str:
        return review_id(self.review_url)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["review_id"] = self.review_id
        return d


def normalise_doi(raw: str) -> str:
    doi = (raw or "").strip().strip("{}").strip()
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", doi, flags=re.I)
    return doi.strip()


def review_id(url: str) -> str:
    """The OpenReview forum id of a review URL (`...forum?id=XYZ`); empty for other URLs."""
    if not url:
        return ""
    parsed = urlparse(url.strip())
    if "openreview" not in parsed.netloc:
        return ""
    ids = parse_qs(parsed.query).get("id")
    return ids[0].strip() if ids else ""


def _flat(value) -> dict:
    """ReScience YAML writes records as lists of one-key maps (`- doi: ...`): merge them."""
    if isinstance(value, dict):
        return value
    out: dict = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                for k, v in item.items():
                    if k not in out or out[k] in (None, ""):
                        out[k] = v
    return out


def _s(value) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())


def _plain(latex_value: str) -> str:
    """Metadata values may hold LaTeX (`6{DoF}`, `\\textquoteleft`): readable text."""
    if not latex_value:
        return ""
    if not re.search(r"[\\{}$]", latex_value):
        return _s(latex_value)
    return to_text(latex_value.replace("%", "\\%"), comments_stripped=True).text


def from_yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a YAML mapping")
    article = _flat(data.get("article"))
    journal = _flat(data.get("journal"))
    review = _flat(data.get("review"))
    code = _flat(data.get("code"))
    authors = []
    for a in data.get("authors") or []:
        if isinstance(a, dict) and a.get("name"):
            authors.append(_plain(_s(a["name"])))
    return {
        "doi": normalise_doi(_s(article.get("doi"))),
        "title": _plain(_s(data.get("title"))),
        "authors": authors,
        "volume": _s(journal.get("volume")),
        "issue": _s(journal.get("issue")),
        "review_url": _s(review.get("url")),
        "code_url": _s(code.get("url")),
        "article_type": _s(data.get("type")),
    }


def _tex_defs(src: str) -> dict[str, str]:
    defs = {}
    for m in re.finditer(r"\\def\s*\\([A-Za-z]+)\s*\{", src):
        end = match_brace(src, m.end() - 1)
        defs.setdefault(m.group(1), src[m.end() : end - 1].strip())
    return defs


def from_tex(path: Path) -> dict:
    src = strip_comments(path.read_text(encoding="utf-8", errors="replace"))
    d = _tex_defs(src)
    authors = []
    for m in re.finditer(r"\\author\s*(?:\[[^\]]*\])?\s*\{", src):
        end = match_brace(src, m.end() - 1)
        authors.append(_plain(src[m.end() : end - 1]))
    return {
        "doi": normalise_doi(d.get("articleDOI", "")),
        "title": _plain(d.get("articleTITLE", "")),
        "authors": [a for a in authors if a],
        "volume": _s(d.get("journalVOLUME")),
        "issue": _s(d.get("journalISSUE")),
        "review_url": _s(d.get("reviewURL")),
        "code_url": _s(d.get("codeURL")),
        "article_type": _s(d.get("articleTYPE")),
    }


def _same(field_: str, a, b) -> bool:
    if field_ == "authors":
        return [x.lower() for x in a] == [x.lower() for x in b]
    if field_ == "title":
        return normalise_title_for_compare(a) == normalise_title_for_compare(b)
    return str(a).strip().rstrip("/") == str(b).strip().rstrip("/")


def normalise_title_for_compare(t: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", t.lower()).split())


def read_metadata(folder: Path, rel: str = "") -> tuple[Metadata, list[L.Issue]]:
    """Metadata of the article in `folder` (the one holding metadata.yaml/metadata.tex)."""
    issues: list[L.Issue] = []
    values: dict[str, dict] = {}
    for name, reader in (("metadata.yaml", from_yaml), ("metadata.tex", from_tex)):
        p = folder / name
        if not p.is_file():
            continue
        try:
            values[name] = reader(p)
        except (yaml.YAMLError, ValueError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            issues.append(L.Issue(L.METADATA_UNREADABLE, "warning", f"{rel}{name} unreadable ({first})"))
    meta = Metadata()
    if not values:
        issues.append(
            L.Issue(
                L.MISSING_METADATA,
                "warning",
                f"no readable metadata.yaml or metadata.tex in {rel or folder.name}",
            )
        )
    for f in FIELDS:
        present = {src: v[f] for src, v in values.items() if v.get(f)}
        if not present:
            continue
        src, val = next(iter(present.items()))  # YAML first
        setattr(meta, f, val)
        meta.sources[f] = src
        others = [(s, v) for s, v in present.items() if s != src and not _same(f, v, val)]
        for s, v in others:
            issues.append(
                L.Issue(
                    L.METADATA_CONFLICT,
                    "warning",
                    f"{f}: {src} has {val!r}, {s} has {v!r}; the {src} value is used",
                    f,
                )
            )
    if not meta.doi:
        issues.append(
            L.Issue(
                L.MISSING_DOI, "error", "no article DOI in the metadata: report left out of the CSV", "doi"
            )
        )
    elif not DOI_RE.match(meta.doi):
        issues.append(
            L.Issue(
                L.INVALID_DOI,
                "error",
                f"article DOI {meta.doi!r} is not a DOI: report left out of the CSV",
                "doi",
            )
        )
    for f in ("title", "volume", "issue", "review_url"):
        if not getattr(meta, f) and values:
            issues.append(
                L.Issue(
                    L.MISSING_METADATA, "warning" if f == "title" else "info", f"no {f} in the metadata", f
                )
            )
    if meta.review_url and not meta.review_id:
        issues.append(
            L.Issue(
                L.MISSING_METADATA, "info", f"review URL {meta.review_url} has no OpenReview id", "review_id"
            )
        )
    return meta, issues
