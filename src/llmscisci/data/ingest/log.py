"""What the ingestion found, missed or could not decide, per report: one record per report folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Issue kinds (the ingestion log's vocabulary)
MISSING_DOI = "missing_doi"  # no usable DOI: the report is left out of the CSV
INVALID_DOI = "invalid_doi"
DUPLICATE_DOI = "duplicate_doi"
MISSING_METADATA = "missing_metadata"  # no metadata.yaml / metadata.tex, or a field absent
METADATA_CONFLICT = "metadata_conflict"  # metadata.yaml and metadata.tex disagree
METADATA_UNREADABLE = "metadata_unreadable"
NO_SOURCE = "no_source"  # no LaTeX entry file found
INPUT_MISSING = "input_missing"  # an \input file is not in the checkout
NO_EASY_DIFFICULT = "no_easy_difficult"  # neither form has easy/difficult headings
MISSING_PART = "missing_part"  # one part missing in one form
MERGED = "merged"  # one "What was easy and difficult" part
SPLIT = "merged_split"  # ... split at explicit labels
AMBIGUOUS = "ambiguous"  # several candidate headings, or a heading whose form is unclear
EMPTY_PART = "empty_part"  # heading found, no text under it
LATEX_FALLBACK = "latex_fallback"  # the LaTeX parser failed; crude conversion used
UNKNOWN_MACROS = "unknown_macros"  # macros dropped from the extracted text
SKIPPED = "skipped"  # not a report (editorial, ...)

LEVELS = ("error", "warning", "info")


@dataclass(frozen=True)
class Issue:
    kind: str
    level: str  # error (report left out), warning (a part missing/merged/ambiguous), info
    message: str
    field: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ReportLog:
    folder: str
    year: str
    doi: str = ""
    status: str = "ok"  # ok | incomplete | excluded | skipped
    main_file: str = ""
    found: dict = field(default_factory=dict)  # field -> where its text came from
    metadata: dict = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def add(self, kind: str, level: str, message: str, field_: str | None = None) -> None:
        self.issues.append(Issue(kind, level, message, field_))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["issues"] = [i.as_dict() for i in self.issues]
        return d
