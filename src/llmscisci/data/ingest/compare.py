"""Compare an ingestion's reports CSV with an existing one, field by field, joined on DOI.

Texts are compared after normalisation, because an older extraction may keep LaTeX that the
ingestion turns into text: LaTeX left in a reference text is converted the same way (unbalanced
braces closed first), whitespace is collapsed, blanks before closing punctuation are dropped and a
final full stop is ignored. Exact (raw) equality is counted too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from llmscisci.data.ingest.latex import tidy, to_text

TEXT_FIELDS = ("title", "easy", "difficult", "easy_long", "difficult_long", "scope")
META_FIELDS = ("mlrc_year", "volume", "issue", "review_id")
FIELDS = META_FIELDS + TEXT_FIELDS
_LATEX_HINT = re.compile(r"\\[A-Za-z]|[{}]|\\[&%_#$]")


def _balance(text: str) -> str:
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
        i += 1
    return text + "}" * depth


def normalise(text: str, latex: bool = True) -> str:
    """A text as compared: LaTeX remnants converted (when `latex`), whitespace and end punctuation
    normalised."""
    text = str(text or "")
    if latex and _LATEX_HINT.search(text):
        src = re.sub(r"(?<!\\)%", r"\\%", _balance(text))  # a bare % in plain text is not a comment
        text = to_text(src, comments_stripped=True).text
    text = tidy(text).replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'")
    return text.rstrip(" .")


@dataclass
class Difference:
    doi: str
    field: str
    built: str
    reference: str

    def __str__(self) -> str:
        return (
            f"{self.doi} {self.field}:\n  built:     {_clip(self.built)}\n"
            f"  reference: {_clip(self.reference)}"
        )


def _clip(s: str, n: int = 240) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


@dataclass
class Comparison:
    fields: tuple[str, ...]
    only_built: list[str] = field(default_factory=list)
    only_reference: list[str] = field(default_factory=list)
    common: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    exact: dict[str, int] = field(default_factory=dict)
    normalised: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        n = len(self.common)
        lines = [
            f"reports: {n} in both, {len(self.only_built)} only in the ingestion, "
            f"{len(self.only_reference)} only in the reference",
            "field            exact  normalised  (of reports in both)",
        ]
        for f in self.fields:
            lines.append(f"{f:<16} {self.exact.get(f, 0):>5}  {self.normalised.get(f, 0):>10}")
        total = n * len(self.fields)
        if total:
            lines.append(
                f"all fields: {sum(self.normalised.values())}/{total} equal after normalisation, "
                f"{sum(self.exact.values())}/{total} exactly"
            )
        return "\n".join(lines)


def compare(
    built: pd.DataFrame,
    reference: pd.DataFrame,
    fields: tuple[str, ...] = FIELDS,
    dois: list[str] | None = None,
) -> Comparison:
    """Compare two reports tables (strings) on the given fields for the DOIs in both (or `dois`)."""
    b = built.fillna("").astype(str).set_index("doi")
    r = reference.fillna("").astype(str).set_index("doi")
    fields = tuple(f for f in fields if f in b.columns and f in r.columns)
    out = Comparison(fields)
    out.only_built = sorted(set(b.index) - set(r.index))
    out.only_reference = sorted(set(r.index) - set(b.index))
    out.common = (
        sorted(set(b.index) & set(r.index))
        if dois is None
        else [d for d in dois if d in b.index and d in r.index]
    )
    for f in fields:
        out.exact[f] = out.normalised[f] = 0
    for doi in out.common:
        for f in fields:
            x, y = b.at[doi, f].strip(), r.at[doi, f].strip()
            if x == y:
                out.exact[f] += 1
            if normalise(x, latex=False) == normalise(y):
                out.normalised[f] += 1
            else:
                out.differences.append(Difference(doi, f, x, y))
    return out
