"""Build a reports dataset from a checkout of the ReScience MLRC repository.

Layout met in the repository: one folder per edition (`2020/`, `2021/`, ...) holding one folder per
report, whose published sources sit in `journal/` (`article.tex`, `content.tex`, `metadata.yaml`,
`metadata.tex`; `content.tex` often just inputs `../openreview/content.tex`) or, in later editions,
directly in the report folder. Output: `mlrc_reports.csv` (the toolkit's columns),
`mlrc_metadata.csv` (authors, URLs), `ingestion_log.jsonl` (one record per report folder) and
`ingestion_summary.txt`.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.data.ingest import log as L
from llmscisci.data.ingest.latex import read_document, strip_comments, user_macros
from llmscisci.data.ingest.metadata import Metadata, read_metadata
from llmscisci.data.ingest.sections import FIELDS as TEXT_FIELDS
from llmscisci.data.ingest.sections import extract_parts
from llmscisci.errors import UserError
from llmscisci.runs import atomic_folder

REPORT_COLUMNS = (
    "doi",
    "mlrc_year",
    "title",
    "volume",
    "issue",
    "review_id",
    "easy",
    "difficult",
    "easy_long",
    "difficult_long",
    "scope",
)
META_COLUMNS = ("doi", "mlrc_year", "folder", "authors", "review_url", "code_url", "article_type")
LOG_FILE = "ingestion_log.jsonl"
SUMMARY_FILE = "ingestion_summary.txt"
REPORTS_FILE = "mlrc_reports.csv"
META_FILE = "mlrc_metadata.csv"
MAIN_CANDIDATES = (
    "journal/article.tex",
    "article.tex",
    "journal/content.tex",
    "content.tex",
    "journal/main.tex",
    "main.tex",
    "openreview/main.tex",
    "openreview/content.tex",
)
SUMMARY_FILES = ("summary.tex",)  # 2022 layout: the summary box sits beside content.tex
MACRO_FILES = ("packages.tex", "macros.tex", "commands.tex")  # user macro definitions
NOT_REPORTS = {"editorial", "template", "templates", ".git", ".github", "__pycache__"}
MERGED_POLICIES = ("easy", "both")


@dataclass
class ReportFolder:
    year: str
    path: Path
    rel: str  # "2020/albanis2021on"

    @property
    def journal(self) -> Path:
        j = self.path / "journal"
        return j if j.is_dir() else self.path


@dataclass
class BuildResult:
    rows: list[dict]
    logs: list[L.ReportLog]
    meta_rows: list[dict] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(i.kind for lg in self.logs for i in lg.issues)

    def status_counts(self) -> Counter:
        return Counter(lg.status for lg in self.logs)


def edition_folders(root: Path, years: Iterable[str] | None = None) -> list[Path]:
    """The per-edition folders to read: `years` (all must exist) or every folder named like a year."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"MLRC checkout {root} does not exist or is not a folder")
    if years:
        out = []
        for y in years:
            p = root / str(y).strip()
            if not p.is_dir():
                have = ", ".join(
                    sorted(d.name for d in root.iterdir() if d.is_dir() and re.fullmatch(r"\d{4}", d.name))
                )
                raise UserError(f"no edition folder {p} (found: {have or 'none'})")
            out.append(p)
        return out
    out = sorted(d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"\d{4}", d.name))
    if not out:
        raise UserError(
            f"{root} has no edition folders (2020/, 2021/, ...): is it a ReScience MLRC checkout?"
        )
    return out


def _looks_like_report(p: Path) -> bool:
    if (p / "journal").is_dir() or (p / "openreview").is_dir():
        return True
    return any(
        (p / n).is_file() for n in ("metadata.yaml", "metadata.tex", "article.tex", "content.tex", "main.tex")
    )


def find_reports(
    root: Path, years: Iterable[str] | None = None
) -> tuple[list[ReportFolder], list[L.ReportLog]]:
    """Report folders under the edition folders, and log records for folders skipped on sight."""
    reports, skipped = [], []
    for ed in edition_folders(root, years):
        for p in sorted(ed.iterdir()):
            if not p.is_dir() or p.name.startswith("."):
                continue
            rel = f"{ed.name}/{p.name}"
            if p.name.lower() in NOT_REPORTS:
                lg = L.ReportLog(rel, ed.name, status="skipped")
                lg.add(L.SKIPPED, "info", f"'{p.name}' folder is not a report")
                skipped.append(lg)
            elif _looks_like_report(p):
                reports.append(ReportFolder(ed.name, p, rel))
            else:
                lg = L.ReportLog(rel, ed.name, status="skipped")
                lg.add(L.SKIPPED, "info", "no LaTeX sources or metadata in this folder")
                skipped.append(lg)
    return reports, skipped


def main_file(rep: ReportFolder) -> Path | None:
    for c in MAIN_CANDIDATES:
        p = rep.path / c
        if p.is_file() and p.stat().st_size > 0:
            return p
    for p in sorted(rep.path.rglob("*.tex")):
        try:
            if "\\begin{document}" in p.read_text(encoding="utf-8", errors="replace"):
                return p
        except OSError:
            continue
    return None


def _uninput(rep: ReportFolder, doc, names: tuple[str, ...]) -> list[Path]:
    """Files with these names in the report's source folders that the document does not input."""
    seen, out = set(doc.files), []
    for d in dict.fromkeys([rep.journal, rep.path, rep.path / "openreview"]):
        for n in names:
            p = d / n
            if p.is_file() and str(p.relative_to(rep.path)) not in seen and p not in out:
                out.append(p)
    return out


def ingest_report(
    rep: ReportFolder, merged_policy: str = "easy"
) -> tuple[dict | None, L.ReportLog, Metadata]:
    """One report folder -> its CSV row (None when it cannot be keyed by a DOI) and its log record."""
    lg = L.ReportLog(rep.rel, rep.year)
    meta, issues = read_metadata(
        rep.journal, rel=f"{rep.rel}/" if rep.journal == rep.path else f"{rep.rel}/journal/"
    )
    if not meta.doi and rep.journal != rep.path:
        alt, alt_issues = read_metadata(rep.path, rel=f"{rep.rel}/")
        if alt.doi:
            meta, issues = alt, alt_issues
    lg.issues.extend(issues)
    lg.doi = meta.doi
    lg.metadata = meta.as_dict()
    if meta.article_type and meta.article_type.lower() == "editorial":
        lg.status = "skipped"
        lg.add(L.SKIPPED, "info", "an editorial, not a report")
        return None, lg, meta

    values = {f: "" for f in TEXT_FIELDS}
    main = main_file(rep)
    if main is None:
        lg.add(L.NO_SOURCE, "warning", "no LaTeX entry file (article.tex, content.tex, main.tex) found")
    else:
        lg.main_file = str(main.relative_to(rep.path))
        search = [rep.journal, rep.path, rep.path / "openreview", rep.path / "journal"]
        dirs = [d for d in search if d.is_dir()]
        doc = read_document(main, dirs, root=rep.path)
        for extra in _uninput(rep, doc, SUMMARY_FILES):
            doc.prepend(read_document(extra, dirs, root=rep.path))
            lg.add(
                L.AMBIGUOUS,
                "info",
                f"{extra.relative_to(rep.path)} is not input by {lg.main_file}: read before it "
                "as the summary",
            )
        macro_src = doc.text + "".join(
            strip_comments(p.read_text("utf-8", "replace")) for p in _uninput(rep, doc, MACRO_FILES)
        )
        if doc.missing_inputs:
            lg.add(
                L.INPUT_MISSING,
                "info",
                f"{len(doc.missing_inputs)} \\input file(s) not in the checkout: "
                + "; ".join(doc.missing_inputs[:8])
                + (" ..." if len(doc.missing_inputs) > 8 else ""),
            )
        ex = extract_parts(doc.text, user_macros(macro_src), merged_policy=merged_policy)
        values.update(ex.values)
        lg.issues.extend(ex.issues)
        lg.found = {f: f"{doc.file_at(ex.positions[f])}: {d}" for f, d in ex.found.items()}
        if ex.unknown_macros:
            lg.add(
                L.UNKNOWN_MACROS,
                "info",
                "macros without a known meaning dropped from the extracted text: "
                + ", ".join("\\" + m for m in sorted(ex.unknown_macros)),
            )
        if ex.fallback:
            lg.add(
                L.LATEX_FALLBACK,
                "warning",
                "the LaTeX parser failed on part of the text; a crude conversion was used",
            )
    errors = [i for i in lg.issues if i.level == "error"]
    warnings = [i for i in lg.issues if i.level == "warning"]
    lg.status = "excluded" if errors else ("incomplete" if warnings else "ok")
    if errors:
        return None, lg, meta
    row = {
        "doi": meta.doi,
        "mlrc_year": rep.year,
        "title": meta.title,
        "volume": meta.volume,
        "issue": meta.issue,
        "review_id": meta.review_id,
        **values,
    }
    return row, lg, meta


def build(
    root: Path,
    years: Iterable[str] | None = None,
    merged_policy: str = "easy",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> BuildResult:
    """Ingest every report folder (no files written)."""
    if merged_policy not in MERGED_POLICIES:
        raise UserError(f"unknown merged policy {merged_policy!r} (use one of: {', '.join(MERGED_POLICIES)})")
    reports, skipped = find_reports(Path(root), years)
    rows: list[dict] = []
    meta_rows: list[dict] = []
    logs: list[L.ReportLog] = list(skipped)
    seen: dict[str, str] = {}
    for rep in progress(reports) if progress else reports:
        row, lg, meta = ingest_report(rep, merged_policy)
        logs.append(lg)
        if row is None:
            continue
        if row["doi"] in seen:
            lg.add(
                L.DUPLICATE_DOI, "error", f"DOI {row['doi']} already taken by {seen[row['doi']]}: left out"
            )
            lg.status = "excluded"
            continue
        seen[row["doi"]] = rep.rel
        rows.append(row)
        meta_rows.append(
            {
                "doi": meta.doi,
                "mlrc_year": rep.year,
                "folder": rep.rel,
                "authors": "; ".join(meta.authors),
                "review_url": meta.review_url,
                "code_url": meta.code_url,
                "article_type": meta.article_type,
            }
        )
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["mlrc_year"], rows[i]["doi"]))
    logs.sort(key=lambda lg: lg.folder)
    return BuildResult([rows[i] for i in order], logs, [meta_rows[i] for i in order])


def summary_text(result: BuildResult, root: str = "", details: bool = True) -> str:
    """A readable account of the ingestion: counts, then (details) every report's problems."""
    st = result.status_counts()
    lines = [
        f"Ingestion of {root or 'the MLRC checkout'}",
        f"report folders: {len(result.logs)}  rows written: {len(result.rows)}  "
        + "  ".join(f"{k}: {st[k]}" for k in ("ok", "incomplete", "excluded", "skipped") if st[k]),
        "",
    ]
    filled = {f: sum(1 for r in result.rows if r[f]) for f in TEXT_FIELDS}
    lines.append("non-empty texts: " + ", ".join(f"{f} {n}/{len(result.rows)}" for f, n in filled.items()))
    counts = result.counts()
    if counts:
        lines += ["", "issues by kind:"] + [f"  {k}: {n}" for k, n in counts.most_common()]
    for level in ("error", "warning", "info") if details else ():
        block = []
        for lg in result.logs:
            for i in lg.issues:
                if i.level == level:
                    block.append(f"  {lg.folder} ({lg.doi or 'no DOI'}): [{i.kind}] {i.message}")
        if block:
            lines += ["", f"{level}s:"] + block
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, columns, rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


INFO_FILE = "ingestion_info.json"


def write_output(
    result: BuildResult, out: Path, root: str = "", overwrite: bool = False, info: dict | None = None
) -> Path:
    """Write the data directory atomically (a temporary folder renamed into place)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} exists and is not empty (pass --overwrite to replace it)")
    with atomic_folder(out, merge=(REPORTS_FILE, META_FILE, LOG_FILE, SUMMARY_FILE, INFO_FILE)) as tmp:
        _write_csv(tmp / REPORTS_FILE, REPORT_COLUMNS, result.rows)
        _write_csv(tmp / META_FILE, META_COLUMNS, result.meta_rows)
        with (tmp / LOG_FILE).open("w", encoding="utf-8") as fh:
            for lg in result.logs:
                fh.write(json.dumps(lg.as_dict(), ensure_ascii=False) + "\n")
        (tmp / SUMMARY_FILE).write_text(summary_text(result, root), encoding="utf-8")
        info = {
            "source": root,
            "rows": len(result.rows),
            "status": dict(result.status_counts()),
            "issues": dict(result.counts()),
            **(info or {}),
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out
